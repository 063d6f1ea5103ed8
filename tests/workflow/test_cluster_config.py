"""Scale-out configs: trainer=ddp for multi-GPU / multi-node, cluster=slurm for the submitit
launcher (optional extra [slurm]); the SLURM job is rendered, never submitted."""

from __future__ import annotations

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

SLURM_MISSING = "the SLURM launcher is an optional extra: pip install -e '.[slurm]'"


def test_ddp_trainer_configs_keep_the_datamodule_samplers(compose_config) -> None:
    for trainer in ("ddp", "ddp_cpu"):
        cfg = compose_config("train", [f"trainer={trainer}"])
        assert cfg.trainer.strategy == "ddp"
        assert cfg.trainer.use_distributed_sampler is False  # pairs sharded, videos kept whole
    assert compose_config("train", ["trainer=ddp_cpu"]).trainer.devices == 2


def test_slurm_cluster_config_renders_one_task_per_gpu(
    compose_config, monkeypatch, tmp_path
) -> None:
    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher", reason=SLURM_MISSING
    )
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cfg = compose_config(
        "train",
        [
            "cluster=slurm",
            "trainer.devices=4",
            "trainer.num_nodes=2",
            "hydra.launcher.partition=gpu",
            "hydra.launcher.timeout_min=90",
        ],
    )
    assert cfg.hydra.runtime.choices["hydra/launcher"] == "submitit_slurm"
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.accelerator == "gpu"
    HydraConfig.instance().set_config(cfg)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert params["_target_"].endswith("SlurmLauncher")
    assert (params["nodes"], params["tasks_per_node"], params["gpus_per_node"]) == (2, 4, 4)

    # what SlurmLauncher.launch hands to submitit, rendered into an sbatch script (no srun here)
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    executor = submitit.AutoExecutor(cluster="slurm", folder=tmp_path / "submitit")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    skip = {"_target_", "submitit_folder", "max_num_timeout"}
    executor.update_parameters(
        **{k if k in base else f"slurm_{k}": v for k, v in params.items() if k not in skip}
    )
    sbatch = executor._executor._make_submission_file_text("python -m qdtrack_pl.cli.train", "0")
    for line in (
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=90",
    ):
        assert line in sbatch, sbatch
