"""`qdtrack-vis`: draw tracking results (MOTChallenge txt) on their frames, write an mp4 or GIF.

One sequence::

    qdtrack-vis results/val/synth-val-00.txt data/synth/<hash>/val/synth-val-00 -o tracks.gif

A whole split (every ``<seq>.txt`` of a results folder, frames from ``<frames>/<seq>``)::

    qdtrack-vis logs/train/runs/<run>/results/val data/synth/<hash>/val -o vis/ --format mp4

``FRAMES`` is a MOTChallenge sequence folder (``seqinfo.ini`` gives the image folder and frame
rate), a folder of images (sorted by name, frame 1 = first image) or a video file.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from qdtrack_pl.progress import progress_bar
from qdtrack_pl.vis.render import write_tracks_video

FORMATS = ("gif", "mp4")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qdtrack-vis",
        description="Draw tracks (MOTChallenge results) on frames and write an mp4 or GIF.",
    )
    parser.add_argument("results", type=Path, help="a results .txt, or a folder of <seq>.txt")
    parser.add_argument(
        "frames",
        type=Path,
        help="sequence folder / image folder / video file; for a results folder, the folder "
        "holding one sequence folder per results file",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="output .mp4/.gif (one sequence) or folder (a results folder)",
    )
    parser.add_argument("--format", choices=FORMATS, default="gif", help="for a results folder")
    parser.add_argument("--fps", type=float, default=None, help="default: the sequence's own")
    parser.add_argument(
        "--classes", default=None, help="comma-separated class names, in class-id order"
    )
    parser.add_argument("--start", type=int, default=0, help="first frame (0-based)")
    parser.add_argument("--stop", type=int, default=None, help="stop before this frame")
    parser.add_argument("--step", type=int, default=1, help="draw every n-th frame")
    return parser


def render_results(
    results: Path,
    frames: Path,
    output: Path,
    fmt: str = "gif",
    fps: float | None = None,
    class_names: Sequence[str] | None = None,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    show_progress: bool = True,
) -> list[Path]:
    """Render one results file or a folder of them; return the written videos."""
    if results.is_dir():
        files = sorted(results.glob("*.txt"))
        if not files:
            raise FileNotFoundError(f"{results} holds no <sequence>.txt results files")
        jobs = [(f, frames / f.stem, output / f"{f.stem}.{fmt}") for f in files]
        missing = [str(seq) for _, seq, _ in jobs if not seq.exists()]
        if missing:
            raise FileNotFoundError(f"no frames for {len(missing)} sequences, e.g. {missing[0]}")
    else:
        if output.suffix.lower().lstrip(".") not in FORMATS:
            raise ValueError(f"output {output} must end in one of {['.' + f for f in FORMATS]}")
        jobs = [(results, frames, output)]
    written = []
    with progress_bar(len(jobs), "rendering tracks", enabled=show_progress) as advance:
        for txt, seq, out in jobs:
            video = write_tracks_video(txt, seq, out, fps, class_names, start, stop, step)
            written.append(video)
            advance(1)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    for path in render_results(
        args.results,
        args.frames,
        args.output,
        args.format,
        args.fps,
        classes,
        args.start,
        args.stop,
        args.step,
    ):
        print(path)


if __name__ == "__main__":
    main()
