"""Bad input: every case has a documented rule (README "Reliability") or an error that names the
file and the line/field and says what was expected; never a raw error from inside PIL, json or
torch."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from hydra.utils import instantiate
from PIL import Image

from fixtures.bdd100k import VIDEO_B, make_bdd100k
from fixtures.crowdhuman import IMAGE_SIZES, make_crowdhuman
from fixtures.tao import make_tao
from qdtrack_pl.data.datamodule import VideoDataModule
from qdtrack_pl.data.datasets.bdd100k import read_bdd100k_tracking
from qdtrack_pl.data.datasets.crowdhuman import read_crowdhuman
from qdtrack_pl.data.datasets.tao import read_tao
from qdtrack_pl.data.errors import DatasetFormatError, DatasetNotFoundError, ImageReadError
from qdtrack_pl.data.formats.mot import read_mot_sequence, synth_class_rule
from qdtrack_pl.data.index import VideoIndex
from qdtrack_pl.data.loading.collate import collate_pairs
from qdtrack_pl.data.loading.frames import FrameSource
from qdtrack_pl.data.loading.pairs import MAX_REPLACEMENTS, PairDataset
from qdtrack_pl.data.loading.sequence import SequenceDataset
from qdtrack_pl.data.loading.transforms import AugmentParams, FrameTransform, load_image

WIDTH, HEIGHT = 64, 48


def rows(length: int) -> str:
    """One 20x20 box of track 1 per frame, at x = 3 + frame number."""
    return "".join(f"{i},1,{3 + i},4,20,20,1,1,1\n" for i in range(1, length + 1))


GOOD_ROWS = rows(3)


def mot_sequence(root: Path, gt: str | bytes | None = None, length: int = 3) -> Path:
    """A MOTChallenge sequence folder with ``length`` 64x48 frames and the given gt.txt."""
    gt = rows(length) if gt is None else gt
    seq = root / "seq"
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    (seq / "seqinfo.ini").write_text(
        f"[Sequence]\nname=seq\nimDir=img1\nframeRate=10\nseqLength={length}\n"
        f"imWidth={WIDTH}\nimHeight={HEIGHT}\nimExt=.jpg\n"
    )
    for i in range(1, length + 1):
        Image.new("RGB", (WIDTH, HEIGHT), (40 * i, 90, 160)).save(seq / "img1" / f"{i:06d}.jpg")
    gt_path = seq / "gt" / "gt.txt"
    gt_path.write_bytes(gt if isinstance(gt, bytes) else gt.encode())
    return seq


def read(seq: Path):
    return read_mot_sequence(seq, synth_class_rule(3))


def pair_dataset(seq: Path, scope: int = 1) -> PairDataset:
    index = VideoIndex((read(seq),), ("a", "b", "c"), name="tiny")
    return PairDataset(index, FrameTransform(image_size=(WIDTH, HEIGHT)), scope)


def corrupt(path: Path) -> Path:
    path.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    return path


def truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


# ------------------------------------------------------- truncated / malformed annotation files


def test_truncated_mot_gt_names_file_line_and_the_columns(tmp_path: Path) -> None:
    seq = mot_sequence(tmp_path, GOOD_ROWS[: len(GOOD_ROWS) - 12])  # the last line is cut
    with pytest.raises(DatasetFormatError, match=r"gt\.txt:3: expected 9 comma-separated columns"):
        read(seq)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("1,1,4,4,nan,20,1,1,1", r"gt\.txt:1: column 'w' must be a finite number"),
        ("1,1,4,4,-3,20,1,1,1", r"gt\.txt:1: box width and height must be >= 0"),
        ("1,1,4,4,x,20,1,1,1", r"gt\.txt:1: column 'w' must be a number, got 'x'"),
    ],
)
def test_malformed_mot_rows_name_file_line_and_column(tmp_path: Path, row: str, message: str):
    with pytest.raises(DatasetFormatError, match=message):
        read(mot_sequence(tmp_path, row + "\n"))


def test_binary_mot_files_are_format_errors_not_unicode_errors(tmp_path: Path) -> None:
    seq = mot_sequence(tmp_path, b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(DatasetFormatError, match=r"gt\.txt: not a UTF-8 text file"):
        read(seq)
    (seq / "seqinfo.ini").write_bytes(b"\xff\xfe[Sequence]")
    with pytest.raises(DatasetFormatError, match=r"seqinfo\.ini: not a UTF-8 text file"):
        read(seq)


def _bdd_labels(root: Path) -> Path:
    return root / "labels" / "box_track_20" / "val" / f"{VIDEO_B}.json"


def test_truncated_bdd_json_names_file_line_and_column(tmp_path: Path) -> None:
    root = make_bdd100k(tmp_path / "BDD100K")
    truncate(_bdd_labels(root))
    with pytest.raises(
        DatasetFormatError, match=rf"{VIDEO_B}\.json: line \d+, column \d+: invalid"
    ):
        read_bdd100k_tracking(root, "val")
    _bdd_labels(root).write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DatasetFormatError, match=rf"{VIDEO_B}\.json: not a UTF-8 json file"):
        read_bdd100k_tracking(root, "val")


def test_truncated_tao_json_names_file_line_and_column(tmp_path: Path) -> None:
    root = make_tao(tmp_path / "TAO")
    truncate(root / "annotations" / "validation.json")
    with pytest.raises(DatasetFormatError, match=r"validation\.json: line \d+, column \d+"):
        read_tao(root, "val")


def test_truncated_crowdhuman_odgt_names_file_and_line(tmp_path: Path) -> None:
    root = make_crowdhuman(tmp_path / "CrowdHuman")
    odgt = root / "annotation_val.odgt"
    odgt.write_text(odgt.read_text()[:-25])  # the last record is cut mid-json
    with pytest.raises(DatasetFormatError, match=r"annotation_val\.odgt: line 3, column \d+"):
        read_crowdhuman(root, "val")


# ---------------------------------------------------------------- boxes: negative, NaN, outside


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_negative_or_nan_boxes_in_json_files_name_record_and_field(tmp_path: Path) -> None:
    bdd = make_bdd100k(tmp_path / "BDD100K")
    _edit_json(_bdd_labels(bdd), lambda f: f[1]["labels"][0]["box2d"].update(x2=-5.0))
    with pytest.raises(DatasetFormatError, match=r"frame 1: labels\[0\]: box2d: negative box"):
        read_bdd100k_tracking(bdd, "val")
    _edit_json(_bdd_labels(bdd), lambda f: f[1]["labels"][0]["box2d"].update(x2=float("nan")))
    with pytest.raises(DatasetFormatError, match=r"field 'x2': expected a finite number"):
        read_bdd100k_tracking(bdd, "val")

    tao = make_tao(tmp_path / "TAO")
    _edit_json(
        tao / "annotations" / "validation.json",
        lambda d: d["annotations"][2].update(bbox=[1, 1, -4, 5]),
    )
    with pytest.raises(DatasetFormatError, match=r"annotations\[2\]: field 'bbox': negative box"):
        read_tao(tao, "val")

    crowd = make_crowdhuman(tmp_path / "CrowdHuman")
    odgt = crowd / "annotation_val.odgt"
    records = [json.loads(line) for line in odgt.read_text().splitlines()]
    records[0]["gtboxes"][0]["fbox"] = [1, 1, 5, -2]
    odgt.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    with pytest.raises(DatasetFormatError, match=r"line 1: gtboxes\[0\]: field 'fbox': negative"):
        read_crowdhuman(crowd, "val")


def test_zero_size_and_outside_boxes_are_kept_for_evaluation_but_never_trained_on(tmp_path):
    rows = (
        "1,1,4,4,20,20,1,1,1\n"  # a normal target
        "1,2,30,30,0,10,1,1,1\n"  # zero width: not a target
        "1,3,100,10,10,10,1,1,1\n"  # entirely right of the 64 px image: not a target
        "1,4,-8,-8,20,20,1,1,1\n"  # partly outside: target, box unclipped (docs/method.md §4.4)
        "2,1,5,4,20,20,1,1,1\n"
        "2,4,-7,-8,20,20,1,1,1\n"
    )
    seq = mot_sequence(tmp_path, rows, length=2)
    video = read(seq)
    assert video.frames[0].annotations.track_ids.tolist() == [1, 2, 3, 4]  # evaluation sees all
    dataset = pair_dataset(seq)
    key = dataset.load_pair(0, 0, 1, AugmentParams()).key_targets
    assert key.track_ids.tolist() == [1, 4]
    assert key.boxes[1].tolist() == [-8.0, -8.0, 12.0, 12.0]


# ---------------------------------------------------------------- classes


def test_unknown_classes_follow_each_readers_rule(tmp_path: Path) -> None:
    # MOT / synth: classes outside the rule are dropped (MOT17 drops vehicles this way).
    seq = mot_sequence(tmp_path, GOOD_ROWS + "1,2,30,10,8,8,1,9,1\n")
    assert read(seq).frames[0].annotations.track_ids.tolist() == [1]
    # BDD100K: an error naming the field, or counted and skipped with data.on_unknown=skip.
    bdd = make_bdd100k(tmp_path / "BDD100K")
    _edit_json(_bdd_labels(bdd), lambda f: f[0]["labels"][0].update(category="tram"))
    with pytest.raises(DatasetFormatError, match=r"field 'category': unknown class 'tram'"):
        read_bdd100k_tracking(bdd, "val")
    index = read_bdd100k_tracking(bdd, "val", on_unknown="skip")
    assert index.metadata["skipped_unknown"] == {"tram": 1}
    # TAO: categories outside the vocabulary are dropped and counted per category id.
    tao = make_tao(tmp_path / "TAO")
    _edit_json(
        tao / "annotations" / "validation.json",
        lambda d: d["annotations"][0].update(category_id=9999),
    )
    assert read_tao(tao, "val").metadata["dropped_categories"] == {9999: 1}
    # CrowdHuman: an unknown tag is an error naming the line and field.
    crowd = make_crowdhuman(tmp_path / "CrowdHuman")
    odgt = crowd / "annotation_val.odgt"
    odgt.write_text(odgt.read_text().replace('"tag": "person"', '"tag": "robot"', 1))
    with pytest.raises(DatasetFormatError, match=r"line 1: gtboxes\[0\]: field 'tag'.*'robot'"):
        read_crowdhuman(crowd, "val")


# ---------------------------------------------------------------- frames and sequences


def test_frames_without_annotations_are_never_keys(tmp_path: Path) -> None:
    seq = mot_sequence(tmp_path, "1,1,4,4,20,20,1,1,1\n3,1,6,4,20,20,1,1,1\n")
    assert pair_dataset(seq).keys == [(0, 0), (0, 2)]


def test_a_one_frame_sequence_pairs_its_frame_with_itself(tmp_path: Path) -> None:
    seq = mot_sequence(tmp_path, "1,1,4,4,20,20,1,1,1\n", length=1)
    pair = pair_dataset(seq, scope=3)[(0, 123)]
    assert pair.ref_image is pair.key_image
    assert pair.ref_targets.track_ids.tolist() == pair.key_targets.track_ids.tolist() == [1]
    frames = SequenceDataset(VideoIndex((read(seq),), ("a", "b", "c")), FrameTransform())
    assert len(frames) == 1 and frames[0].frame_index == 0


def test_a_train_split_without_any_target_fails_naming_the_split(tmp_path: Path) -> None:
    seq = mot_sequence(tmp_path, "1,1,4,4,0,20,1,1,1\n")  # only a zero-width box

    class OneVideo(VideoDataModule):
        class_names = ("a", "b", "c")

        def build_index(self, split: str) -> VideoIndex:
            return VideoIndex((read(seq),), self.class_names, name=f"tiny_{split}")

    with pytest.raises(DatasetFormatError, match=r"train split \(tiny_train, 1 videos\) has no"):
        OneVideo().train_dataloader()


# ---------------------------------------------------------------- images


def test_unreadable_images_raise_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = corrupt(tmp_path / "bad.jpg")
    with pytest.raises(ImageReadError, match=r"bad\.jpg: cannot decode image") as info:
        load_image(bad)
    assert info.value.path == bad
    with pytest.raises(ImageReadError, match=r"gone\.jpg: image file is missing"):
        load_image(tmp_path / "gone.jpg")
    good = tmp_path / "good.jpg"
    Image.new("RGB", (WIDTH, HEIGHT)).save(good)
    truncate(good)
    with pytest.raises(ImageReadError, match=r"good\.jpg: cannot decode image"):
        load_image(good)


def test_training_pairs_with_unreadable_images_are_replaced_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seq = mot_sequence(tmp_path, length=5)
    dataset = pair_dataset(seq)
    bad = corrupt(seq / "img1" / "000005.jpg")
    caplog.set_level(logging.WARNING, logger="qdtrack_pl.data.loading.pairs")
    item = dataset[(4, 5)]  # key frame 5 is unreadable: the next key's pair (frame 1) replaces it
    assert item.skipped_images == (str(bad),)
    assert item.key_targets.boxes[0, 0].item() == pytest.approx(4.0)  # frame 1's box
    assert "skipping training pair 4" in caplog.text and "000005.jpg" in caplog.text
    batch = collate_pairs([dataset[(2, 1)], item])
    assert batch.skipped_images == (str(bad),) and len(batch) == 2
    assert dataset[(2, 5)].skipped_images == ()


def test_when_every_image_is_unreadable_training_stops_naming_one(tmp_path: Path) -> None:
    seq = mot_sequence(tmp_path)
    dataset = pair_dataset(seq)
    for path in (seq / "img1").iterdir():
        path.unlink()  # e.g. data.root points at annotations whose images were never extracted
    with pytest.raises(ImageReadError, match=r"3 training pairs in a row have unreadable images"):
        dataset[(0, 1)]
    assert MAX_REPLACEMENTS >= 3


def test_an_unreadable_evaluation_frame_names_file_video_and_frame(tmp_path: Path) -> None:
    seq = mot_sequence(tmp_path)
    frames = SequenceDataset(VideoIndex((read(seq),), ("a", "b", "c")), FrameTransform())
    corrupt(seq / "img1" / "000003.jpg")
    with pytest.raises(ImageReadError, match=r"000003\.jpg: cannot decode.*video 'seq', frame 2"):
        frames[2]


def test_crowdhuman_image_with_a_broken_header_is_a_format_error(tmp_path: Path) -> None:
    root = make_crowdhuman(tmp_path / "CrowdHuman")
    corrupt(root / "Images" / f"{next(iter(IMAGE_SIZES))}.jpg")
    with pytest.raises(DatasetFormatError, match=r"\.jpg: not a readable image"):
        read_crowdhuman(root, "val")


def test_tracking_an_image_folder_with_a_broken_image_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    Image.new("RGB", (WIDTH, HEIGHT)).save(folder / "0001.jpg")
    corrupt(folder / "0002.jpg")
    frames = iter(FrameSource(folder))
    assert next(frames).shape == (HEIGHT, WIDTH, 3)
    with pytest.raises(ValueError, match=r"cannot read image .*0002\.jpg"):
        next(frames)


# ---------------------------------------------------------------- a wrong data.root


@pytest.mark.parametrize("dataset", ["mot17", "bdd100k", "tao", "crowdhuman", "waymo"])
def test_a_wrong_data_root_names_the_missing_path(compose_config, tmp_path: Path, dataset: str):
    missing = tmp_path / "not-here"
    cfg = compose_config("train", [f"data={dataset}", f"data.root={missing}"])
    with pytest.raises(Exception) as info:  # noqa: PT011 - TAO fails inside Hydra's instantiate
        instantiate(cfg.data).setup("fit")
    error = info.value
    while error.__cause__ is not None and not isinstance(error, DatasetNotFoundError):
        error = error.__cause__
    assert isinstance(error, DatasetNotFoundError), repr(info.value)
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)
