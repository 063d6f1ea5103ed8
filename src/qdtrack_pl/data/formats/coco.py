"""One image's COCO-format annotation records -> ``FrameAnnotations`` (TAO and LVIS/COCO jsons).

Both files list boxes as ``bbox: [x, y, w, h]`` with a ``category_id`` and an ``iscrowd`` flag; TAO
adds a ``track_id`` and merges some LVIS categories into others. Boxes of categories outside the
class list are dropped and counted, so that a reader can report how many it left out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import TypeGuard

from qdtrack_pl.data.errors import DatasetFormatError
from qdtrack_pl.data.formats.json_fields import field, xywh_box
from qdtrack_pl.data.index import FrameAnnotations


def group_video_records(
    video_ids: Collection[int],
    images: Sequence[dict],
    annotations: Sequence[dict],
    frame_key: str,
    where: str,
) -> tuple[dict[int, list[dict]], dict[int, list[tuple[int, dict]]]]:
    """Images per video id and ``(index, annotation)`` pairs per image id, for the video-COCO
    jsons (TAO: ``frame_key="frame_index"``, CocoVID: ``"frame_id"``), which share this layout.

    One place checks that every reference resolves, so that no reader drops rows or doubles
    frames silently: an image of an unknown video, two images at the same ``frame_key`` of one
    video, an image id used twice and an annotation of an unknown image are errors naming the
    record (and the earlier one it clashes with) at ``where``."""
    images_of_video: dict[int, list[dict]] = defaultdict(list)
    image_at: dict[tuple[int, int], int] = {}
    image_ids: set[int] = set()
    for i, image in enumerate(images):
        at = f"{where}: images[{i}]"
        for key in ("id", "video_id", frame_key):
            field(image, key, int, at)
        field(image, "file_name", str, at)
        video_id, frame = image["video_id"], image[frame_key]
        if video_id not in video_ids:
            raise DatasetFormatError(
                f"{at}: field 'video_id': {video_id} is not the id of any entry of 'videos'"
            )
        first = image_at.setdefault((video_id, frame), i)
        if first != i:
            raise DatasetFormatError(
                f"{at}: field {frame_key!r}: video {video_id} already has an image at "
                f"{frame_key} {frame} (images[{first}]); expected one image per frame"
            )
        if image["id"] in image_ids:
            raise DatasetFormatError(f"{at}: field 'id': image id {image['id']} is used twice")
        image_ids.add(image["id"])
        images_of_video[video_id].append(image)
    anns_of_image: dict[int, list[tuple[int, dict]]] = defaultdict(list)
    for i, ann in enumerate(annotations):
        at = f"{where}: annotations[{i}]"
        image_id = field(ann, "image_id", int, at)
        if image_id not in image_ids:
            raise DatasetFormatError(
                f"{at}: field 'image_id': {image_id} is not the id of any entry of 'images'"
            )
        anns_of_image[image_id].append((i, ann))
    return images_of_video, anns_of_image


def video_size(video: dict, first_image: dict, at: str) -> tuple[int, int]:
    """``(width, height)`` of a video record, else of its first image (CocoVID and TAO allow
    either place); ``at`` names the record in the error."""
    width = video.get("width", first_image.get("width"))
    height = video.get("height", first_image.get("height"))
    if not (_is_size(width) and _is_size(height)):
        raise DatasetFormatError(
            f"{at}: expected positive integer 'width'/'height' on the video or its images, "
            f"got {width!r} / {height!r}"
        )
    return width, height


def _is_size(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def frame_annotations(
    anns: list[tuple[int, dict]],
    where: str,
    class_of_category: Mapping[int, int],
    dropped: Counter,
    merged: Mapping[int, int] | None = None,
    with_track_ids: bool = True,
    track_key: str = "track_id",
    ignore_keys: tuple[str, ...] = ("iscrowd",),
    visibility_key: str | None = None,
) -> FrameAnnotations:
    """``anns`` are ``(index in the json's annotations, record)`` pairs of one image (the index
    names a bad record in errors, at ``where``). Categories are first renamed by ``merged`` (if
    given), then mapped to class indices; the others are dropped and counted in ``dropped``.
    A box with any of the ``ignore_keys`` flags set (``iscrowd``; CocoVID also ``ignore``) becomes
    an ignore region. Identities are the ``track_key`` fields (TAO ``track_id``, CocoVID
    ``instance_id``; an identity twice in one image is an error), or 0..N-1 for static images
    (``with_track_ids=False``). ``visibility_key``, where given and present, is the visible
    fraction in [0, 1]; otherwise visibility is 1."""
    boxes, track_ids, class_ids, ignore, visibility = [], [], [], [], []
    first_of_id: dict[int, int] = {}
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
            track_id = field(ann, track_key, int, at)
            first = first_of_id.setdefault(track_id, i)
            if first != i:
                raise DatasetFormatError(
                    f"{at}: field {track_key!r}: identity {track_id} appears twice in image "
                    f"{ann.get('image_id')} (first in annotations[{first}])"
                )
            track_ids.append(track_id)
        class_ids.append(class_of_category[category_id])
        ignore.append(any(bool(ann.get(key, 0)) for key in ignore_keys))
        visibility.append(_visibility(ann, visibility_key, at))
    if not boxes:
        return FrameAnnotations.empty()
    identities = track_ids if with_track_ids else range(len(boxes))
    return FrameAnnotations.from_rows(boxes, identities, class_ids, visibility, ignore)


def _visibility(ann: dict, key: str | None, where: str) -> float:
    if key is None or key not in ann:
        return 1.0
    value = field(ann, key, (int, float), where)
    if not 0.0 <= value <= 1.0:
        raise DatasetFormatError(
            f"{where}: field {key!r}: expected the visible fraction in [0, 1], got {value!r}"
        )
    return float(value)
