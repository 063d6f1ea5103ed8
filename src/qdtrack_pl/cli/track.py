"""`qdtrack-track`: track any video file, image folder or MOTChallenge sequence folder with a
trained checkpoint, built as the checkpoint's own config says (``model=`` overrides it).

Writes ``<name>.txt`` (MOTChallenge format, 1-based frames) and ``<name>.mp4`` (boxes + ids),
``<name>`` the video's or the sequence's name (never ``img1``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from qdtrack_pl.cli.config_check import validate_config
from qdtrack_pl.cli.run import checkpoint_module
from qdtrack_pl.cli.utils import apply_extras, config_path, log
from qdtrack_pl.data.loading.frames import FrameSource
from qdtrack_pl.eval.mot_results import TrackResults, TrackResultsBuilder, write_mot_results
from qdtrack_pl.models.qdtrack import QDTrackModel
from qdtrack_pl.tracking.base import Tracker
from qdtrack_pl.vis import draw_tracks, write_video


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to_tensor(frame: np.ndarray, input_size: tuple[int, int] | None) -> tuple[torch.Tensor, float]:
    """(1, 3, H, W) float [0, 1] image, resized to fit ``input_size`` (w, h) keeping the ratio."""
    frame = np.require(frame, requirements="W")  # torch.from_numpy warns on read-only arrays
    image = torch.from_numpy(frame).permute(2, 0, 1).float().div_(255.0)[None]
    if input_size is None:
        return image, 1.0
    height, width = frame.shape[:2]
    scale = min(input_size[0] / width, input_size[1] / height)
    size = (round(height * scale), round(width * scale))
    resized = torch.nn.functional.interpolate(
        image, size=size, mode="bilinear", align_corners=False
    )
    return resized, scale


def track_frames(
    model: QDTrackModel,
    tracker: Tracker,
    frames: Iterator[np.ndarray],
    device: torch.device,
    rows: TrackResultsBuilder,
    input_size: tuple[int, int] | None = None,
) -> Iterator[tuple[np.ndarray, TrackResults]]:
    """Track ``frames`` into ``rows``; yield each frame with its rows (boxes in frame pixels)."""
    for frame_id, frame in enumerate(frames):
        image, scale = _to_tensor(frame, input_size)
        with torch.inference_mode():
            dets = model.predict(image.to(device))[0]
            boxes = dets.boxes / scale
            out = tracker.update(boxes, dets.scores, dets.class_ids, dets.embeddings, frame_id)
        yield frame, rows.add(frame_id, out, boxes, dets.class_ids)


def run_tracking(cfg: DictConfig) -> Path:
    """Track ``cfg.input``; return the MOT results file."""
    validate_config(cfg, groups=("model", "tracker"))
    apply_extras(cfg)
    source = FrameSource.open(cfg.input)
    device = _device(cfg.device)
    loaded = checkpoint_module(cfg)
    model = loaded.module.model.to(device).eval()
    tracker = instantiate(cfg.tracker)
    class_names = list(loaded.class_names or [])
    size = tuple(cfg.input_size) if cfg.input_size else None

    rows = TrackResultsBuilder()

    def annotated() -> Iterator[np.ndarray]:
        for frame, tracks in track_frames(model, tracker, iter(source), device, rows, size):
            yield draw_tracks(
                frame, tracks.boxes, tracks.track_ids, tracks.class_ids, class_names or None
            )

    output_dir = Path(cfg.output_dir)
    video_path = output_dir / f"{source.name}.mp4"
    if cfg.write_video:
        write_video(video_path, annotated(), fps=cfg.fps or source.fps())
    else:
        for _ in annotated():
            pass
    results = rows.build()
    txt_path = output_dir / f"{source.name}.txt"
    write_mot_results(txt_path, results)
    log.info("wrote %s%s", txt_path, f" and {video_path}" if cfg.write_video else "")
    return txt_path


@hydra.main(version_base="1.3", config_path=config_path(), config_name="track")
def main(cfg: DictConfig) -> None:
    run_tracking(cfg)


if __name__ == "__main__":
    main()
