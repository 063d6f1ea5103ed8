"""MOTChallenge reader and writer.

Layout: ``<root>/<seq>/seqinfo.ini``, ``<seq>/img1/000001.jpg``, ``<seq>/gt/gt.txt`` with nine
columns ``frame, id, x, y, w, h, conf, class, visibility`` (MOT16 / MOT17 / MOT20; 1-based frames,
``xywh`` pixels). 2D MOT 2015 (``layout="mot15"``) has ten columns instead, ``frame, id, x, y, w,
h, conf, x_world, y_world, z_world``: the last three are world coordinates (or -1), never a class,
so every row is a pedestrian of visibility 1. Which rows become targets, which become ignore
regions and which are dropped is decided by a *class rule* passed by the caller, so the benchmark
rules and the multi-class synthetic data share this reader; each sequence logs one summary of what
the rule kept, ignored and dropped.

``seqinfo.ini`` needs ``name`` and ``seqLength``; MOT15 files often hold nothing else, so the other
keys fall back (``imDir=img1``, ``imExt`` from the first image's file name, the image size from
the first image's header, ``frameRate`` 30) and the reader says so once per sequence.

Boxes convert as ``xyxy = (x, y, x + w, y + h)`` with no pixel offset; the result writers use the
same convention, so evaluation compares like with like. Frame numbers become 0-based
``Frame.index`` and stay available as ``Frame.source_frame_id``.
"""

from __future__ import annotations

import configparser
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

import numpy as np
from PIL import Image

from qdtrack_pl.data.errors import DatasetFormatError, read_text
from qdtrack_pl.data.index import Frame, FrameAnnotations, Video, VideoIndex
from qdtrack_pl.data.loading.pairs import MIN_BOX_SIDE, training_mask

log = logging.getLogger(__name__)

GT_COLUMNS = ("frame", "id", "x", "y", "w", "h", "conf", "class", "visibility")
MOT15_COLUMNS = ("frame", "id", "x", "y", "w", "h", "conf", "x_world", "y_world", "z_world")
INTEGER_COLUMNS = frozenset({"frame", "id", "class"})
GtLayout = Literal["mot16", "mot15"]  # nine columns with class + visibility, or MOT15's ten
LAYOUT_COLUMNS: dict[str, tuple[str, ...]] = {"mot16": GT_COLUMNS, "mot15": MOT15_COLUMNS}
SEQINFO_SECTION = "Sequence"
SEQINFO_KEYS = ("name", "imDir", "frameRate", "seqLength", "imWidth", "imHeight", "imExt")
SEQINFO_REQUIRED = ("name", "seqLength")
DEFAULT_IM_DIR = "img1"
DEFAULT_FRAME_RATE = 30.0  # MOT15 seqinfo files may lack it; only visualisation uses the rate
FRAME_NAME_DIGITS = 6  # MOTChallenge image names: 000001.jpg
MOT17_PEDESTRIAN = 1
MOT17_DISTRACTORS = (2, 7, 8, 12)  # person on vehicle, static person, distractor, reflection


class ClassRuleResult(NamedTuple):
    """What a class rule decides for each gt row."""

    class_ids: np.ndarray  # (N,) int64, 0-based; meaningful where ``keep``
    keep: np.ndarray  # (N,) bool: the row enters the index
    ignore: np.ndarray  # (N,) bool: a kept row that is an ignore region (evaluation only)


class ClassRule(Protocol):
    """Turns the MOT ``class``, ``conf`` and ``visibility`` columns into index rows."""

    def __call__(
        self, mot_classes: np.ndarray, conf: np.ndarray, visibility: np.ndarray
    ) -> ClassRuleResult: ...


@dataclass(frozen=True)
class MappingClassRule:
    """A class rule from two tables, enough for MOT17 and for the synthetic data.

    Rows whose MOT class is in ``targets`` are kept as that 0-based class; rows in ``ignored`` are
    kept as ignore regions of that class; every other class is dropped. A kept row also becomes an
    ignore region when its conf flag is 0 (MOTChallenge's "not considered") and
    ``ignore_zero_conf``, or when its visibility is below ``min_visibility``.
    """

    targets: Mapping[int, int]
    ignored: Mapping[int, int] = field(default_factory=dict)
    ignore_zero_conf: bool = True
    min_visibility: float = 0.0

    def __call__(
        self, mot_classes: np.ndarray, conf: np.ndarray, visibility: np.ndarray
    ) -> ClassRuleResult:
        mot_classes = np.asarray(mot_classes, np.int64)
        class_ids = np.zeros(len(mot_classes), np.int64)
        is_target = np.zeros(len(mot_classes), bool)
        is_ignored = np.zeros(len(mot_classes), bool)
        for table, hit in ((self.targets, is_target), (self.ignored, is_ignored)):
            for mot_class, class_id in table.items():
                rows = mot_classes == mot_class
                hit |= rows
                class_ids[rows] = class_id
        ignore = is_ignored | (np.asarray(visibility) < self.min_visibility)
        if self.ignore_zero_conf:
            ignore |= np.asarray(conf) == 0
        keep = is_target | is_ignored
        return ClassRuleResult(class_ids, keep, ignore & keep)


def synth_class_rule(num_classes: int) -> MappingClassRule:
    """Synthetic data: MOT class k (1-based) is class k-1; conf-0 rows are ignore regions."""
    return MappingClassRule(targets={k + 1: k for k in range(num_classes)})


def mot17_class_rule() -> MappingClassRule:
    """MOT17: pedestrians are targets, distractor classes and conf-0 rows are ignore regions, the
    rest (vehicles, occluders, ...) is dropped."""
    return MappingClassRule(
        targets={MOT17_PEDESTRIAN: 0}, ignored={c: 0 for c in MOT17_DISTRACTORS}
    )


@dataclass(frozen=True)
class SeqInfo:
    """The fields of ``seqinfo.ini`` the reader needs. ``None``: the key is not in the file (MOT15
    files may hold only ``name`` and ``seqLength``); :func:`read_mot_sequence` fills it in."""

    name: str
    im_dir: str
    frame_rate: float | None
    seq_length: int
    width: int | None
    height: int | None
    im_ext: str | None
    absent: tuple[str, ...] = ()  # optional keys the file lacks, in SEQINFO_KEYS order


class _GtRows(NamedTuple):
    values: np.ndarray  # (N, 9) float64 in GT_COLUMNS order
    line_numbers: np.ndarray  # (N,) 1-based line of each row in the file


def _seqinfo_number(section: configparser.SectionProxy, key: str, path: Path) -> int | float:
    """A numeric key; the error names the file, the key and the text (``imWidth=640px``)."""
    text = section[key].strip()
    kind, expected = (
        (float, "a positive number") if key == "frameRate" else (int, "a positive integer")
    )
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not value > 0 or not np.isfinite(value):
        raise DatasetFormatError(
            f"{path}: [{SEQINFO_SECTION}] key '{key}': expected {expected}, got {text!r}"
        )
    return value


def read_seqinfo(path: Path) -> SeqInfo:
    """Parse ``seqinfo.ini``: ``name`` and ``seqLength`` are required, the other keys of
    :data:`SEQINFO_KEYS` are optional (``None`` / the default image folder when absent)."""
    if not path.is_file():
        raise DatasetFormatError(f"missing sequence info file: expected {path}")
    parser = configparser.ConfigParser()
    parser.optionxform = str  # type: ignore[assignment, method-assign]  # keep camelCase keys
    try:
        parser.read_string(read_text(path), source=str(path))
    except configparser.Error as err:
        raise DatasetFormatError(f"{path}: not a valid ini file ({err})") from err
    if not parser.has_section(SEQINFO_SECTION):
        raise DatasetFormatError(f"{path}: missing the [{SEQINFO_SECTION}] section")
    section = parser[SEQINFO_SECTION]
    missing = [key for key in SEQINFO_REQUIRED if key not in section]
    if missing:
        raise DatasetFormatError(f"{path}: missing keys {missing} in [{SEQINFO_SECTION}]")

    def number(key: str) -> int | float | None:
        return _seqinfo_number(section, key, path) if key in section else None

    frame_rate, width, height = number("frameRate"), number("imWidth"), number("imHeight")
    return SeqInfo(
        name=section["name"].strip(),
        im_dir=section.get("imDir", DEFAULT_IM_DIR).strip(),
        frame_rate=None if frame_rate is None else float(frame_rate),
        seq_length=int(_seqinfo_number(section, "seqLength", path)),
        width=None if width is None else int(width),
        height=None if height is None else int(height),
        im_ext=section["imExt"].strip() if "imExt" in section else None,
        absent=tuple(key for key in SEQINFO_KEYS if key not in section),
    )


def complete_seqinfo(info: SeqInfo, seq_dir: Path) -> SeqInfo:
    """Fill what ``seqinfo.ini`` left out: the image extension from the first frame's file name,
    the size from its header (no decoding), the frame rate with :data:`DEFAULT_FRAME_RATE`.
    Logs one warning naming the file and the values taken, so the fallback is never silent."""
    if not info.absent:
        return info
    image_dir = seq_dir / info.im_dir
    first = f"{1:0{FRAME_NAME_DIGITS}d}"
    im_ext = info.im_ext
    if im_ext is None:
        candidates = sorted(image_dir.glob(f"{first}.*")) if image_dir.is_dir() else []
        if not candidates:
            raise DatasetFormatError(
                f"{seq_dir / 'seqinfo.ini'}: no imExt key and no image {first}.<ext> in "
                f"{image_dir} to take the extension from"
            )
        im_ext = candidates[0].suffix
    width, height = info.width, info.height
    if width is None or height is None:
        first_image = image_dir / f"{first}{im_ext}"
        try:
            with Image.open(first_image) as image:
                size = image.size
        except (FileNotFoundError, OSError) as err:
            raise DatasetFormatError(
                f"{seq_dir / 'seqinfo.ini'}: no imWidth/imHeight, and the first image "
                f"{first_image} cannot be read for its size ({err})"
            ) from None
        width = size[0] if width is None else width
        height = size[1] if height is None else height
    frame_rate = DEFAULT_FRAME_RATE if info.frame_rate is None else info.frame_rate
    log.warning(
        "%s lacks %s; using imDir=%s imExt=%s imWidth=%d imHeight=%d (first image) frameRate=%g",
        seq_dir / "seqinfo.ini",
        ", ".join(info.absent),
        info.im_dir,
        im_ext,
        width,
        height,
        frame_rate,
    )
    return replace(info, im_ext=im_ext, width=width, height=height, frame_rate=frame_rate)


def write_seqinfo(info: SeqInfo, path: Path) -> None:
    """Write ``seqinfo.ini`` so :func:`read_seqinfo` returns ``info`` again."""
    values = (
        info.name,
        info.im_dir,
        f"{info.frame_rate:g}",
        info.seq_length,
        info.width,
        info.height,
        info.im_ext,
    )
    pairs = zip(SEQINFO_KEYS, values, strict=True)
    lines = [f"[{SEQINFO_SECTION}]"] + [f"{key}={value}" for key, value in pairs]
    path.write_text("\n".join(lines) + "\n")


def _parse_field(text: str, column: str, path: Path, line_no: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DatasetFormatError(
            f"{path}:{line_no}: column '{column}' must be a number, got {text.strip()!r}"
        ) from None
    if not np.isfinite(value):
        raise DatasetFormatError(
            f"{path}:{line_no}: column '{column}' must be a finite number, got {text.strip()!r}"
        )
    if column in INTEGER_COLUMNS and not value.is_integer():
        raise DatasetFormatError(
            f"{path}:{line_no}: column '{column}' must be an integer, got {text.strip()!r}"
        )
    return value


def read_gt_rows(path: Path, layout: GtLayout = "mot16") -> _GtRows:
    """Parse ``gt.txt`` strictly: the layout's numeric columns on every non-blank line (CRLF line
    ends are fine), w and h non-negative, visibility in [0, 1]. Rows come back in
    :data:`GT_COLUMNS` order; MOT15 rows (no class, no visibility) as pedestrians (class 1) of
    visibility 1."""
    if layout not in LAYOUT_COLUMNS:
        raise ValueError(f"layout must be one of {sorted(LAYOUT_COLUMNS)}, got {layout!r}")
    columns = LAYOUT_COLUMNS[layout]
    if not path.is_file():
        raise DatasetFormatError(f"missing ground-truth file: expected {path}")
    rows: list[list[float]] = []
    line_numbers: list[int] = []
    for line_no, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        if len(fields) != len(columns):
            raise DatasetFormatError(
                f"{path}:{line_no}: expected {len(columns)} comma-separated columns "
                f"({', '.join(columns)}), got {len(fields)}"
            )
        row = [_parse_field(t, c, path, line_no) for t, c in zip(fields, columns, strict=True)]
        if row[4] < 0 or row[5] < 0:
            raise DatasetFormatError(f"{path}:{line_no}: box width and height must be >= 0")
        if layout == "mot15":
            row = [*row[:7], float(MOT17_PEDESTRIAN), 1.0]
        elif not 0.0 <= row[8] <= 1.0:
            raise DatasetFormatError(
                f"{path}:{line_no}: column 'visibility' must be in [0, 1] (the visible fraction of "
                f"the box), got {fields[8].strip()!r}"
            )
        rows.append(row)
        line_numbers.append(line_no)
    values = np.asarray(rows, np.float64).reshape(-1, len(GT_COLUMNS))
    return _GtRows(values, np.asarray(line_numbers, np.int64))


def _check_frames(rows: _GtRows, seq_length: int, path: Path) -> None:
    frames = rows.values[:, 0].astype(np.int64)
    outside = np.flatnonzero((frames < 1) | (frames > seq_length))
    if len(outside):
        i = outside[0]
        raise DatasetFormatError(
            f"{path}:{rows.line_numbers[i]}: frame {frames[i]} is outside 1..{seq_length} "
            "(seqLength in seqinfo.ini)"
        )
    ids = rows.values[:, 1].astype(np.int64)
    seen: dict[tuple[int, int], int] = {}
    for frame, track_id, line_no in zip(frames, ids, rows.line_numbers, strict=True):
        first = seen.setdefault((int(frame), int(track_id)), int(line_no))
        if first != line_no:
            raise DatasetFormatError(
                f"{path}:{line_no}: id {track_id} appears twice in frame {frame} "
                f"(first on line {first})"
            )


def _image_paths(seq_dir: Path, info: SeqInfo) -> list[Path]:
    image_dir = seq_dir / info.im_dir
    if not image_dir.is_dir():
        raise DatasetFormatError(f"missing image folder: expected {image_dir}")
    names = [f"{i:0{FRAME_NAME_DIGITS}d}{info.im_ext}" for i in range(1, info.seq_length + 1)]
    present = {p.name for p in image_dir.iterdir()}
    missing = [n for n in names if n not in present]
    if missing:
        raise DatasetFormatError(
            f"{image_dir}: {len(missing)} of {info.seq_length} frames are missing "
            f"(seqLength={info.seq_length}), the first is {image_dir / missing[0]}"
        )
    return [image_dir / n for n in names]


def _frame_annotations(
    rows: np.ndarray, class_ids: np.ndarray, ignore: np.ndarray
) -> FrameAnnotations:
    x, y, w, h = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
    return FrameAnnotations(
        boxes=np.stack([x, y, x + w, y + h], axis=1).astype(np.float32),
        track_ids=rows[:, 1].astype(np.int64),
        class_ids=class_ids,
        visibility=rows[:, 8].astype(np.float32),
        ignore=ignore,
    )


def _log_rule_summary(
    gt_path: Path, values: np.ndarray, rule: ClassRuleResult, video: Video
) -> None:
    """One line per sequence: how many gt rows the class rule kept as targets or ignore regions,
    how many it dropped (by MOT class), and how many kept rows can never be a training target
    (narrower or shorter than a pixel, or outside the image). A warning when anything is left out,
    so no row goes missing without a count."""
    kept, ignore = rule.keep, rule.ignore & rule.keep
    conf_zero = ignore & (values[:, 6] == 0)
    dropped = Counter(int(c) for c in values[~kept, 7])
    boxes = np.concatenate([f.annotations.boxes for f in video.frames])
    annotations = [f.annotations for f in video.frames]
    target = np.concatenate([training_mask(a, video.width, video.height) for a in annotations])
    ignored_rows = np.concatenate([a.ignore for a in annotations])
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    degenerate = ~ignored_rows & ((w < MIN_BOX_SIDE) | (h < MIN_BOX_SIDE))
    outside = ~ignored_rows & ~degenerate & ~target
    dropped_text = ", ".join(f"class {c}: {n}" for c, n in sorted(dropped.items())) or "none"
    message = (
        "%s: %d rows: %d targets, %d ignore regions (conf 0: %d, ignored class or low visibility: "
        "%d), %d dropped (%s); %d kept rows can never be training targets (%d narrower or "
        "shorter than %g px, %d outside the %dx%d image)"
    )
    args = (
        gt_path,
        len(values),
        int(kept.sum() - ignore.sum()),
        int(ignore.sum()),
        int(conf_zero.sum()),
        int(ignore.sum() - conf_zero.sum()),
        int((~kept).sum()),
        dropped_text,
        int(degenerate.sum() + outside.sum()),
        int(degenerate.sum()),
        MIN_BOX_SIDE,
        int(outside.sum()),
        video.width,
        video.height,
    )
    level = logging.WARNING if dropped or degenerate.any() or outside.any() else logging.INFO
    log.log(level, message, *args)


def read_mot_sequence(
    seq_dir: str | Path,
    class_rule: ClassRule,
    *,
    gt_file: str = "gt/gt.txt",
    require_gt: bool = True,
    layout: GtLayout = "mot16",
) -> Video:
    """Read one sequence folder into a :class:`Video`.

    Every frame ``1..seqLength`` becomes a :class:`Frame`, with or without gt rows. With
    ``require_gt=False`` a sequence without its gt file (a test split) reads as unannotated frames.
    ``layout`` is the gt file's column layout (``"mot15"``: 2D MOT 2015's ten columns).
    """
    seq_dir = Path(seq_dir)
    if not seq_dir.is_dir():
        raise DatasetFormatError(f"missing sequence folder: expected {seq_dir}")
    info = complete_seqinfo(read_seqinfo(seq_dir / "seqinfo.ini"), seq_dir)
    assert info.width is not None and info.height is not None and info.frame_rate is not None
    image_paths = _image_paths(seq_dir, info)
    gt_path = seq_dir / gt_file
    if not require_gt and not gt_path.exists():
        unannotated = tuple(
            Frame(i, p, FrameAnnotations.empty(), i + 1, annotated=False)
            for i, p in enumerate(image_paths)
        )
        return Video(info.name, unannotated, info.width, info.height, info.frame_rate)
    gt = read_gt_rows(gt_path, layout)
    if len(gt.values) == 0:
        raise DatasetFormatError(f"{gt_path}: the sequence has no annotations (empty file)")
    _check_frames(gt, info.seq_length, gt_path)
    all_values = gt.values
    rule = class_rule(all_values[:, 7].astype(np.int64), all_values[:, 6], all_values[:, 8])
    if not rule.keep.any():
        raise DatasetFormatError(
            f"{gt_path}: the sequence has no annotations of the selected classes "
            f"(classes present: {sorted(set(all_values[:, 7].astype(int).tolist()))})"
        )
    values = all_values[rule.keep]
    class_ids, ignore = rule.class_ids[rule.keep], rule.ignore[rule.keep]
    frame_of_row = values[:, 0].astype(np.int64) - 1
    order = np.argsort(frame_of_row, kind="stable")  # group by frame, keep file order inside
    bounds = np.searchsorted(frame_of_row[order], np.arange(info.seq_length + 1))
    frames: list[Frame] = []
    for i, path in enumerate(image_paths):
        sel = order[bounds[i] : bounds[i + 1]]
        ann = _frame_annotations(values[sel], class_ids[sel], ignore[sel])
        frames.append(Frame(i, path, ann, i + 1))
    video = Video(info.name, tuple(frames), info.width, info.height, info.frame_rate)
    _log_rule_summary(gt_path, all_values, rule, video)
    return video


def list_mot_sequences(root: str | Path) -> list[Path]:
    """Sequence folders below ``root``, sorted by name. Every sub-folder must be a sequence (hold
    a ``seqinfo.ini``): one without is an error naming it rather than a sequence silently left
    out. Hidden folders (``.ipynb_checkpoints``, ...) are not sequences and are passed over."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"missing split folder: expected {root}")
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    without = [p for p in folders if not (p / "seqinfo.ini").is_file()]
    if without:
        raise DatasetFormatError(
            f"{without[0]}: sequence folder without seqinfo.ini (expected "
            f"{without[0] / 'seqinfo.ini'}; {len(without)} of the {len(folders)} folders in {root} "
            "lack one). Restore the file or move the folder out of the split"
        )
    if not folders:
        raise DatasetFormatError(f"{root}: no sequence folders (a folder with seqinfo.ini) found")
    return folders


def read_mot_split(
    root: str | Path,
    class_rule: ClassRule,
    class_names: Sequence[str],
    *,
    name: str = "",
    sequences: Sequence[str] | None = None,
    gt_file: str = "gt/gt.txt",
    require_gt: bool = True,
    layout: GtLayout = "mot16",
) -> VideoIndex:
    """Read every sequence below ``root`` (or only ``sequences``, in that order) into an index."""
    root = Path(root)
    seq_dirs = list_mot_sequences(root) if sequences is None else [root / s for s in sequences]
    videos = tuple(
        read_mot_sequence(d, class_rule, gt_file=gt_file, require_gt=require_gt, layout=layout)
        for d in seq_dirs
    )
    return VideoIndex(videos, tuple(class_names), name=name or root.name)


def _exact(value: float) -> str:
    """Shortest text that reads back to the same float64 (integers without a decimal point)."""
    return np.format_float_positional(np.float64(value), trim="-")


def _gt_lines(frame: Frame) -> list[str]:
    ann = frame.annotations
    lines = []
    for box, track_id, class_id, vis, ignore in zip(
        ann.boxes.astype(np.float64),
        ann.track_ids,
        ann.class_ids,
        ann.visibility,
        ann.ignore,
        strict=True,
    ):
        x1, y1, x2, y2 = box
        conf = 0 if ignore else 1
        visibility = np.format_float_positional(np.float32(vis), trim="-")
        xywh = [_exact(x1), _exact(y1), _exact(x2 - x1), _exact(y2 - y1)]
        fields = [frame.index + 1, track_id, *xywh, conf, class_id + 1, visibility]
        lines.append(",".join(map(str, fields)))
    return lines


def write_mot_sequence(video: Video, seq_dir: str | Path, *, im_dir: str = "img1") -> None:
    """Write ``gt/gt.txt`` and ``seqinfo.ini`` for ``video`` (images are the caller's business).

    Class id k is written as MOT class k+1 and ignore rows get conf 0, so reading back with
    :func:`synth_class_rule` reproduces ``video`` exactly (float32 boxes included: ``w = x2 - x1``
    is exact in float64 and printed with a round-tripping repr).
    """
    seq_dir = Path(seq_dir)
    (seq_dir / "gt").mkdir(parents=True, exist_ok=True)
    suffix = video.frames[0].image_path.suffix if video.frames else ".jpg"
    info = SeqInfo(video.name, im_dir, video.fps, len(video), video.width, video.height, suffix)
    write_seqinfo(info, seq_dir / "seqinfo.ini")
    lines = [line for frame in video.frames for line in _gt_lines(frame)]
    (seq_dir / "gt" / "gt.txt").write_text("".join(f"{line}\n" for line in lines))
