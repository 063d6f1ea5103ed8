"""qdtrack-vis: tracking results drawn on their frames, written as a GIF or an mp4."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import tomllib

from qdtrack_pl.cli.vis import main as vis_main
from qdtrack_pl.eval.mot_results import TrackResults
from qdtrack_pl.vis import render_tracks, track_color

REPO_ROOT = Path(__file__).resolve().parents[2]


def _val_dir(data_dir: Path) -> Path:
    (val,) = data_dir.glob("synth/synth-*/val")
    return val


def test_console_script_is_declared() -> None:
    scripts = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, func = scripts["qdtrack-vis"].split(":")
    assert getattr(import_module(module), func) is vis_main


def test_render_draws_each_track_in_its_colour() -> None:
    frames = [np.zeros((40, 60, 3), np.uint8) for _ in range(3)]
    results = TrackResults(
        frame_indices=np.array([0, 2]),
        track_ids=np.array([7, 7]),
        boxes=np.array([[10, 10, 30, 30], [20, 12, 40, 32]], np.float32),
        scores=np.ones(2, np.float32),
        class_ids=np.array([0, 0]),
    )
    out = list(render_tracks(frames, results, label_frames=False))
    assert len(out) == 3
    assert tuple(out[0][20, 10]) == track_color(7)  # left edge of the frame-0 box
    assert not out[1].any()  # nothing on frame 1
    assert tuple(out[2][25, 40]) == track_color(7)


@pytest.mark.slow
def test_vis_cli_renders_a_results_folder_and_a_single_sequence(
    wandb_run: Path, tiny_data_dir: Path, tmp_path: Path
) -> None:
    results = wandb_run / "results" / "val"
    val = _val_dir(tiny_data_dir)
    vis_main([str(results), str(val), "-o", str(tmp_path / "gifs"), "--format", "gif"])
    gifs = sorted((tmp_path / "gifs").glob("*.gif"))
    assert [g.stem for g in gifs] == sorted(p.stem for p in results.glob("*.txt"))
    seq = val / gifs[0].stem
    raw = sorted((seq / "img1").glob("*.jpg"))
    drawn = imageio.mimread(gifs[0])
    assert len(drawn) == len(raw)

    mp4 = tmp_path / "one.mp4"
    vis_main(
        [str(results / f"{seq.name}.txt"), str(seq), "-o", str(mp4)]
        + ["--classes", "person,car,box", "--step", "2"]
    )
    with imageio.get_reader(mp4) as reader:
        count = sum(1 for _ in reader)
    assert count == -(-len(raw) // 2)


def test_vis_cli_rejects_an_unknown_output_format(tmp_path: Path) -> None:
    txt = tmp_path / "a.txt"
    txt.write_text("1,1,0,0,5,5,1,1,-1,-1\n")
    (tmp_path / "img").mkdir()
    imageio.imwrite(tmp_path / "img" / "000001.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="must end in one of"):
        vis_main([str(txt), str(tmp_path / "img"), "-o", str(tmp_path / "out.avi2")])
