"""Draw boxes with track ids on a frame; one stable colour per track id."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

GOLDEN_RATIO_CONJUGATE = 0.618033988749895  # spreads consecutive ids around the hue circle


def track_color(track_id: int) -> tuple[int, int, int]:
    """A bright colour that is the same for a track id in every frame and every video."""
    hue = (track_id * GOLDEN_RATIO_CONJUGATE) % 1.0
    sector, frac = divmod(hue * 6.0, 1.0)
    rising, falling = int(255 * frac), int(255 * (1.0 - frac))
    return [
        (255, rising, 0),
        (falling, 255, 0),
        (0, 255, rising),
        (0, falling, 255),
        (rising, 0, 255),
        (255, 0, falling),
    ][int(sector) % 6]


def draw_tracks(
    image: np.ndarray,
    boxes: np.ndarray,
    track_ids: np.ndarray,
    class_ids: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    line_width: int = 2,
) -> np.ndarray:
    """Return a copy of ``image`` (H, W, 3 uint8) with each ``xyxy`` box outlined in its track's
    colour and labelled ``id`` (or ``class:id`` when class names are given)."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if len(boxes) != len(track_ids):
        raise ValueError(f"{len(boxes)} boxes but {len(track_ids)} track ids")
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    for i, (box, track_id) in enumerate(zip(boxes, track_ids, strict=True)):
        color = track_color(int(track_id))
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle((x1, y1, x2, y2), outline=color, width=line_width)
        label = str(int(track_id))
        if class_ids is not None and class_names is not None:
            label = f"{class_names[int(class_ids[i])]}:{label}"
        left, top, right, bottom = draw.textbbox((x1, y1), label)
        text_y = max(y1 - (bottom - top) - 2, 0)
        draw.rectangle((x1, text_y, x1 + right - left + 2, text_y + bottom - top + 2), fill=color)
        draw.text((x1 + 1, text_y), label, fill=(0, 0, 0))
    return np.asarray(canvas)
