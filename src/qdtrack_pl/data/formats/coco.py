"""One image's COCO-format annotation records -> ``FrameAnnotations`` (TAO and LVIS/COCO jsons).

Both files list boxes as ``bbox: [x, y, w, h]`` with a ``category_id`` and an ``iscrowd`` flag; TAO
adds a ``track_id`` and merges some LVIS categories into others. Boxes of categories outside the
class list are dropped and counted, so that a reader can report how many it left out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from qdtrack_pl.data.formats.json_fields import field, xywh_box
from qdtrack_pl.data.index import FrameAnnotations


def frame_annotations(
    anns: list[tuple[int, dict]],
    where: str,
    class_of_category: Mapping[int, int],
    dropped: Counter,
    merged: Mapping[int, int] | None = None,
    with_track_ids: bool = True,
) -> FrameAnnotations:
    """``anns`` are ``(index in the json's annotations, record)`` pairs of one image (the index
    names a bad record in errors, at ``where``). Categories are first renamed by ``merged`` (if
    given), then mapped to class indices; the others are dropped and counted in ``dropped``.
    ``iscrowd`` boxes become ignore regions. Identities are the ``track_id`` fields, or 0..N-1
    for static images (``with_track_ids=False``)."""
    boxes, track_ids, class_ids, ignore = [], [], [], []
    for i, ann in anns:
        at = f"{where}: annotations[{i}]"
        category_id = field(ann, "category_id", int, at)
        if merged:
            category_id = merged.get(category_id, category_id)
        if category_id not in class_of_category:
            dropped[category_id] += 1
            continue
        boxes.append(xywh_box(ann, "bbox", at))
        if with_track_ids:
            track_ids.append(field(ann, "track_id", int, at))
        class_ids.append(class_of_category[category_id])
        ignore.append(bool(ann.get("iscrowd", 0)))
    if not boxes:
        return FrameAnnotations.empty()
    identities = track_ids if with_track_ids else range(len(boxes))
    return FrameAnnotations.from_rows(boxes, identities, class_ids, ignore=ignore)
