"""`qdtrack-ablation` (`make ablation`, `make ablation-smoke`): the paper's ablations, resumable.

Steps and settings: ``conf/ablation.yaml``. ``train=false`` scores the jobs already trained.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from qdtrack_pl.ablation.report import write_report
from qdtrack_pl.ablation.runner import run_ablation
from qdtrack_pl.cli.utils import config_path, log


@hydra.main(version_base="1.3", config_path=config_path(), config_name="ablation")
def main(cfg: DictConfig) -> None:
    results = run_ablation(cfg, train=cfg.get("train", True))
    table = write_report(results, Path(cfg.out_dir), cfg.report_split)
    log.info("ablation results (%s):\n%s", Path(cfg.out_dir) / "results.md", table)


if __name__ == "__main__":
    main()
