"""COCO-format records of one image -> FrameAnnotations (TAO and LVIS/COCO readers)."""

from __future__ import annotations

from collections import Counter

import pytest

from qdtrack_pl.data.errors import DatasetFormatError
from qdtrack_pl.data.formats.coco import frame_annotations, video_size

CLASS_OF_CATEGORY = {10: 0, 20: 1}  # json category id -> class index


def record(category_id: int, x: float, **extra: object) -> dict:
    return {"category_id": category_id, "bbox": [x, 5.0, 10.0, 20.0], **extra}


def test_tracks_merged_categories_dropped_boxes_and_crowds() -> None:
    anns = [
        (0, record(10, 0.0, track_id=7)),
        (1, record(99, 50.0, track_id=8)),  # merged into category 20
        (2, record(30, 80.0, track_id=9)),  # outside the class list: dropped
        (3, record(20, 90.0, track_id=4, iscrowd=1)),
    ]
    dropped: Counter = Counter()
    out = frame_annotations(anns, "ann.json", CLASS_OF_CATEGORY, dropped, merged={99: 20})
    assert out.track_ids.tolist() == [7, 8, 4]
    assert out.class_ids.tolist() == [0, 1, 1]
    assert out.ignore.tolist() == [False, False, True]
    assert out.boxes[0].tolist() == [0.0, 5.0, 10.0, 25.0]  # xywh -> xyxy
    assert dropped == Counter({30: 1})


def test_static_images_number_their_instances() -> None:
    anns = [(0, record(20, 0.0)), (1, record(10, 40.0))]
    out = frame_annotations(anns, "lvis.json", CLASS_OF_CATEGORY, Counter(), with_track_ids=False)
    assert out.track_ids.tolist() == [0, 1]


def test_missing_track_id_names_the_record() -> None:
    with pytest.raises(DatasetFormatError, match=r"tao.json: annotations\[5\].*track_id"):
        frame_annotations([(5, record(10, 0.0))], "tao.json", CLASS_OF_CATEGORY, Counter())


def test_no_box_of_the_class_list_gives_an_empty_frame() -> None:
    dropped: Counter = Counter()
    out = frame_annotations([(0, record(30, 0.0, track_id=1))], "a", CLASS_OF_CATEGORY, dropped)
    assert len(out) == 0 and dropped[30] == 1


def test_video_size_falls_back_to_the_first_image_and_names_the_record() -> None:
    assert video_size({"width": 640, "height": 480}, {"width": 1, "height": 2}, "v") == (640, 480)
    assert video_size({}, {"width": 1280, "height": 720}, "v") == (1280, 720)
    with pytest.raises(DatasetFormatError, match=r"videos\[3\].*'width'/'height'.*'640' / None"):
        video_size({"width": "640"}, {}, "ann.json: videos[3]")
    for bad in (True, 0, -4):
        with pytest.raises(DatasetFormatError, match="positive integer"):
            video_size({"width": bad, "height": 480}, {}, "v")
