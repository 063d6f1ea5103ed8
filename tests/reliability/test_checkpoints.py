"""Checkpoints: atomic writes (a kill mid-write never leaves a truncated file), clear errors for
unreadable ones, the resumable training order and the RNG state that make a resume exact."""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from torch.utils.data import Dataset

from qdtrack_pl.data.loading.samplers import EpochSampler, ResumableDataLoader
from qdtrack_pl.lit.checkpointing import (
    AtomicCheckpointIO,
    CheckpointReadError,
    resolve_ckpt_path,
    save_atomic,
)
from qdtrack_pl.lit.fault_tolerance import ResumeCheckpoint, capture_rng_state, restore_rng_state

REPO_ROOT = Path(__file__).resolve().parents[2]


def checkpoint(value: float, size: int = 1000) -> dict:
    return {"state_dict": {"w": torch.full((size,), value)}, "global_step": int(value)}


# ---------------------------------------------------------------- atomic writes


def test_a_kill_in_the_middle_of_a_write_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    """A child process is SIGKILLed after writing part of a new checkpoint over last.ckpt."""
    target = tmp_path / "last.ckpt"
    save_atomic(checkpoint(1.0), target)
    script = textwrap.dedent(
        f"""
        import os, signal, torch
        from qdtrack_pl.lit import checkpointing

        real_save = torch.save
        def save_then_die(obj, f, *args, **kwargs):
            f.write(b"PK\\x03\\x04 half of a zip archive")  # the first bytes reach the disk
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        checkpointing.torch.save = save_then_die
        checkpointing.save_atomic({{"state_dict": {{"w": torch.zeros(1000)}}}}, {str(target)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, timeout=120)
    assert proc.returncode == -9
    loaded = torch.load(target, weights_only=False)
    assert torch.equal(loaded["state_dict"]["w"], torch.full((1000,), 1.0))
    save_atomic(checkpoint(2.0), target)  # the left-over temporary file does not get in the way
    assert torch.load(target, weights_only=False)["global_step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_writes_stay_in_the_checkpoint_folder_and_are_fsynced(tmp_path, monkeypatch) -> None:
    """No temporary file in the system temp folder (a move across file systems is a copy, not
    atomic), and the data is fsynced before the rename."""

    def no_system_temp(*args, **kwargs):
        raise AssertionError("a checkpoint write used the system temp folder")

    monkeypatch.setattr(tempfile, "mkstemp", no_system_temp)
    synced = []
    real_fsync = __import__("os").fsync
    monkeypatch.setattr("os.fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    AtomicCheckpointIO().save_checkpoint(checkpoint(3.0), tmp_path / "ckpts" / "a.ckpt")
    assert synced, "the checkpoint was not fsynced"
    assert AtomicCheckpointIO().load_checkpoint(tmp_path / "ckpts" / "a.ckpt")["global_step"] == 3


def test_a_truncated_checkpoint_is_reported_by_name(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    torch.save(checkpoint(1.0, size=100_000), path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointReadError, match=r"checkpoint .*last\.ckpt cannot be read.*trunc"):
        AtomicCheckpointIO().load_checkpoint(path)


def test_the_trainer_config_writes_checkpoints_atomically(compose_config) -> None:
    cfg = compose_config("train", ["trainer.accelerator=cpu"])
    trainer = instantiate(cfg.trainer, logger=False, enable_progress_bar=False)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_ckpt_path_last_starts_fresh_without_a_checkpoint(tmp_path: Path) -> None:
    assert resolve_ckpt_path("last", tmp_path) is None
    save_atomic(checkpoint(1.0), tmp_path / "checkpoints" / "last.ckpt")
    assert resolve_ckpt_path("last", tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")


# ---------------------------------------------------------------- the resumable training order


class Items(Dataset):
    def __len__(self) -> int:
        return 10

    def __getitem__(self, item):
        return item  # (index, seed) from the EpochSampler


def loader(seed: int = 3) -> ResumableDataLoader:
    return ResumableDataLoader(
        Items(), batch_size=3, sampler=EpochSampler(10, seed=seed), collate_fn=list
    )


def epoch(dl: ResumableDataLoader, number: int) -> list:
    dl.sampler.set_epoch(number)
    return list(dl)


def test_each_epoch_order_follows_from_seed_and_epoch_alone() -> None:
    a, b = loader(), loader()
    first = [epoch(a, e) for e in range(3)]
    assert epoch(b, 2) == first[2]  # no state carried from earlier epochs
    assert first[0] != first[1]
    assert sorted(i for batch in first[1] for i, _ in batch) == list(range(10))
    assert first[0] != epoch(loader(seed=4), 0)


def test_a_resumed_loader_skips_exactly_the_batches_already_trained_on() -> None:
    uninterrupted = epoch(loader(), 1)
    dl = loader()
    dl.sampler.set_epoch(1)
    it = iter(dl)
    trained = [next(it), next(it)]
    state = dl.state_dict()
    assert state == {"epoch": 1, "batches": 2}
    resumed = loader()
    resumed.load_state_dict(state)
    rest = list(resumed)  # before Lightning's set_epoch(1), as in its restart order
    assert trained + rest == uninterrupted
    assert resumed.state_dict() == {"epoch": 1, "batches": 4}
    after_epoch = loader()
    after_epoch.load_state_dict(resumed.state_dict())  # a finished epoch: the next one starts
    assert list(after_epoch) == epoch(loader(), 2)


def test_ranks_get_disjoint_shards_of_equal_length() -> None:
    shards = [EpochSampler(10, seed=1, num_replicas=3, rank=r) for r in range(3)]
    orders = [[i for i, _ in s] for s in shards]
    assert {len(o) for o in orders} == {4}
    assert set().union(*orders) == set(range(10))


def test_the_rng_state_round_trips_through_a_checkpoint(tmp_path: Path) -> None:
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    callback = ResumeCheckpoint(tmp_path)
    save_atomic({"callback": callback.state_dict()}, tmp_path / "rng.ckpt")
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    state = torch.load(tmp_path / "rng.ckpt", weights_only=False)["callback"]
    restore_rng_state(state["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected
    assert capture_rng_state().keys() >= {"python", "numpy", "torch"}
