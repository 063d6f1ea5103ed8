"""`make lint` is ruff and mypy (configured in pyproject.toml: --strict flags for ops/, tracking/
and eval/), and `make test` runs it before pytest, so CI (.ci/run) checks the types."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STRICT_FLAGS = {
    "disallow_any_generics",
    "disallow_subclassing_any",
    "disallow_untyped_calls",
    "disallow_untyped_defs",
    "disallow_incomplete_defs",
    "disallow_untyped_decorators",
    "warn_return_any",
    "no_implicit_reexport",
}


def _target(makefile: str, name: str) -> str:
    return re.search(rf"^{name}:.*?(?=^\S)", makefile, re.M | re.S).group(0)


def test_make_lint_runs_mypy_and_make_test_runs_lint() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    lint = _target(makefile, "lint")
    assert "ruff check" in lint and "$(BIN)/mypy" in lint
    test = _target(makefile, "test")
    assert test.index("lint") < test.index("pytest")
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()


def test_mypy_is_strict_for_ops_tracking_and_eval() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert any(dep.startswith("mypy") for dep in project["project"]["optional-dependencies"]["dev"])
    mypy = project["tool"]["mypy"]
    assert mypy["files"] == ["src"]
    strict = [o for o in mypy["overrides"] if "qdtrack_pl.ops.*" in o["module"]]
    assert len(strict) == 1
    assert {"qdtrack_pl.tracking.*", "qdtrack_pl.eval.*"} <= set(strict[0]["module"])
    assert all(strict[0].get(flag) is True for flag in STRICT_FLAGS)


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    pytest.importorskip("mypy", reason="mypy is in the dev extra")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-6000:]
