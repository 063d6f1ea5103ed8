"""`qdtrack-track`: track any video file or image folder with a trained checkpoint.

Writes ``<name>.txt`` (MOTChallenge format, 1-based frames) and ``<name>.mp4`` (boxes + ids).
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
from qdtrack_pl.cli.utils import apply_extras, config_dir, log
from qdtrack_pl.data.loading.frames import FrameSource
from qdtrack_pl.eval.mot_results import TrackResults, write_mot_results
from qdtrack_pl.lit.checkpointing import load_weights
from qdtrack_pl.vis import draw_tracks, write_video


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _to_tensor(frame: np.ndarray, input_size: tuple[int, int] | None) -> tuple[torch.Tensor, float]:
    """(1, 3, H, W) float [0, 1] image, resized to fit ``input_size`` (w, h) keeping the ratio."""
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
    model: torch.nn.Module,
    tracker,
    frames: Iterator[np.ndarray],
    device: torch.device,
    input_size: tuple[int, int] | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield (frame, track_ids, boxes, scores, class_ids) per frame, boxes in frame pixels."""
    for frame_id, frame in enumerate(frames):
        image, scale = _to_tensor(frame, input_size)
        with torch.inference_mode():
            dets = model.predict(image.to(device))[0]
            out = tracker.update(
                dets.boxes / scale, dets.scores, dets.class_ids, dets.embeddings, frame_id=frame_id
            )
        keep = out.det_indices
        yield (
            frame,
            out.track_ids.cpu().numpy(),
            (dets.boxes[keep] / scale).cpu().numpy(),
            out.scores.cpu().numpy(),
            dets.class_ids[keep].cpu().numpy(),
        )


def run_tracking(cfg: DictConfig) -> Path:
    """Track ``cfg.input``; return the MOT results file."""
    validate_config(cfg, groups=("model", "tracker"))
    apply_extras(cfg)
    source = FrameSource(Path(cfg.input))
    device = _device(cfg.device)
    module = instantiate(cfg.model)
    load_weights(module, cfg.ckpt_path)
    model = module.model.to(device).eval()
    tracker = instantiate(cfg.tracker)
    class_names = list(cfg.data.get("class_names") or [])
    size = tuple(cfg.input_size) if cfg.input_size else None

    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("frames", "ids", "boxes", "scores", "cls")}

    def annotated() -> Iterator[np.ndarray]:
        for frame_id, (frame, ids, boxes, scores, classes) in enumerate(
            track_frames(model, tracker, iter(source), device, size)
        ):
            rows["frames"].append(np.full(len(ids), frame_id, np.int64))
            rows["ids"].append(ids)
            rows["boxes"].append(boxes)
            rows["scores"].append(scores)
            rows["cls"].append(classes)
            yield draw_tracks(frame, boxes, ids, classes, class_names or None)

    output_dir = Path(cfg.output_dir)
    video_path = output_dir / f"{source.name}.mp4"
    if cfg.write_video:
        write_video(video_path, annotated(), fps=cfg.fps or source.fps())
    else:
        for _ in annotated():
            pass
    results = TrackResults(
        frame_indices=np.concatenate(rows["frames"]),
        track_ids=np.concatenate(rows["ids"]),
        boxes=np.concatenate(rows["boxes"]).reshape(-1, 4),
        scores=np.concatenate(rows["scores"]),
        class_ids=np.concatenate(rows["cls"]),
    )
    txt_path = output_dir / f"{source.name}.txt"
    write_mot_results(txt_path, results)
    log.info("wrote %s%s", txt_path, f" and {video_path}" if cfg.write_video else "")
    return txt_path


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="track")
def main(cfg: DictConfig) -> None:
    run_tracking(cfg)


if __name__ == "__main__":
    main()
