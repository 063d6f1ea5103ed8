"""CrowdHuman reader: ``annotation_<split>.odgt`` (one json per line) -> static one-frame videos.

The full-body ``fbox`` is the box (MMTracking's ``crowdhuman2coco``), ``tag == 'mask'`` (crowd /
reflection regions) and ``extra.ignore == 1`` become ignore regions, and the visible ``vbox``
gives the visibility as the visible share of the full box. Each image is its own static video with
track ids ``arange(n)``; training pairs it with itself (docs/method.md §4.3, static-image pairs).
Image ids contain commas (``273271,c9db000d5146c15``); the video name swaps them for ``_`` because
TrackEval's MOTChallenge seqmap is a CSV file, while the image path keeps the real name.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from qdtrack_pl.data.datamodule import NativeDataModule
from qdtrack_pl.data.errors import DatasetFormatError, read_text, require_path
from qdtrack_pl.data.formats.json_fields import field, number_list, parse_json_line, xywh_box
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex

DOWNLOAD_URL = "https://www.crowdhuman.org/download.html"
CLASS_NAMES: tuple[str, ...] = ("pedestrian",)
PERSON_TAG = "person"
IGNORE_TAG = "mask"
SPLITS = ("train", "val")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the file header only; the pixels are not decoded."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError as err:
        raise DatasetFormatError(f"{path}: image listed in the annotation file is missing") from err
    except OSError as err:  # PIL.UnidentifiedImageError and unreadable files
        raise DatasetFormatError(
            f"{path}: not a readable image ({err}); expected a JPEG file (re-download it)"
        ) from err


def parse_record(record: dict, where: str) -> FrameAnnotations:
    """One odgt record's ``gtboxes`` as pedestrian boxes plus ignore regions."""
    rows = []
    for i, gtbox in enumerate(field(record, "gtboxes", list, where)):
        at = f"{where}: gtboxes[{i}]"
        tag = field(gtbox, "tag", str, at)
        if tag not in (PERSON_TAG, IGNORE_TAG):
            raise DatasetFormatError(
                f"{at}: field 'tag': expected {PERSON_TAG!r} or {IGNORE_TAG!r}, got {tag!r}"
            )
        x1, y1, x2, y2 = xywh_box(gtbox, "fbox", at)
        extra = gtbox.get("extra") or {}
        ignore = tag == IGNORE_TAG or extra.get("ignore", 0) == 1
        rows.append(([x1, y1, x2, y2], _visibility(gtbox, (x2 - x1) * (y2 - y1), at), ignore))
    if not rows:
        return FrameAnnotations.empty()
    boxes, visibility, ignore = zip(*rows, strict=True)
    n = len(rows)
    return FrameAnnotations.from_rows(boxes, range(n), [0] * n, visibility, ignore)


def _visibility(gtbox: dict, full_area: float, where: str) -> float:
    """Visible share of the full box: area(vbox) / area(fbox), 1 when ``vbox`` is absent."""
    if "vbox" not in gtbox or full_area <= 0:
        return 1.0
    _, _, vw, vh = number_list(gtbox, "vbox", 4, where)
    return float(min(max(vw * vh / full_area, 0.0), 1.0))


def read_crowdhuman(root: Path, split: str) -> VideoIndex:
    """Every image of ``<root>/annotation_<split>.odgt``, pixels in ``<root>/Images/<ID>.jpg``."""
    if split not in SPLITS:
        raise ValueError(f"CrowdHuman split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    odgt = require_path(
        root / f"annotation_{split}.odgt",
        dataset="CrowdHuman",
        what=f"the {split} annotation file",
        download_url=DOWNLOAD_URL,
    )
    image_dir = require_path(
        root / "Images",
        dataset="CrowdHuman",
        what="the extracted Images/ folder",
        download_url=DOWNLOAD_URL,
    )
    videos = []
    first_line: dict[str, int] = {}  # video name -> line it first appeared on
    for line_no, line in enumerate(read_text(odgt).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{odgt}: line {line_no}"
        record = parse_json_line(line, odgt, line_no)
        image_id = field(record, "ID", str, where)
        name = image_id.replace(",", "_")
        seen = first_line.setdefault(name, line_no)
        if seen != line_no:  # results are keyed by video name: two records would collide
            raise DatasetFormatError(
                f"{where}: field 'ID': {image_id!r} is a second record of the image of line "
                f"{seen} (video name {name!r}); expected every image once per file"
            )
        image_path = image_dir / f"{image_id}.jpg"
        width, height = image_size(image_path)
        frame = Frame(
            index=0,
            image_path=image_path,
            annotations=parse_record(record, where),
            source_frame_id=0,
        )
        videos.append(
            Video(
                name=name,
                frames=(frame,),
                width=width,
                height=height,
                is_static=True,
            )
        )
    return VideoIndex(videos=tuple(videos), class_names=CLASS_NAMES, name=f"crowdhuman_{split}")


PEDESTRIAN: tuple[str, ...] = ("pedestrian",)


class CrowdHumanDataModule(NativeDataModule):
    """CrowdHuman static images (train / val); "test" re-reads val."""

    @property
    def class_names(self) -> tuple[str, ...]:
        return PEDESTRIAN

    def build_index(self, split: str) -> VideoIndex:
        return read_crowdhuman(self.root, self.dataset_split(split))
