"""The notebooks are committed without outputs and run in `make test` (nbmake): see the
Makefile's test-notebooks target."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def test_the_three_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01_dataset_explorer.ipynb",
        "02_embedding_similarity.ipynb",
        "03_tracking_results.ipynb",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_stripped(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: outputs"
    source = "\n".join(c.source for c in book.cells if c.cell_type == "code")
    # the newest `make train` run by default, the smoke model under QDTRACK_NOTEBOOK_SMOKE=1
    # (api.notebook_run: trained into a temporary folder, nothing written into the repository)
    assert "api.notebook_run(" in source and "RUN_DIR = None" in source
    assert "OVERRIDES" not in source and "CKPT" not in source


def test_make_test_executes_the_notebooks() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    target = re.search(r"^test:.*?(?=^\S)", makefile, re.M | re.S).group(0)
    assert "test-notebooks" in target
    assert re.search(r"^test-notebooks:.*\n\t.*--nbmake.*notebooks", makefile, re.M)
    # one environment variable selects the smoke model for the whole run
    assert re.search(r"^test-notebooks:.*\n\tQDTRACK_NOTEBOOK_SMOKE=1 ", makefile, re.M)
