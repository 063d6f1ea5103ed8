"""Build step that ships the Hydra configs inside the package (everything else is pyproject.toml).

``conf/`` at the top of the clone is the one source of the configs. A wheel (``pip install .``,
``pip wheel .``) gets a copy of it as ``qdtrack_pl/conf/`` (with an ``__init__.py``, so that Hydra
finds it as ``pkg://qdtrack_pl.conf``); an editable install (``pip install -e .``) copies nothing
and the entry points read the clone's ``conf/`` directly (``qdtrack_pl.cli.utils.config_path``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONF = Path(__file__).resolve().parent / "conf"
PACKAGED = Path("qdtrack_pl") / "conf"  # inside the build folder
CONFIG_SUFFIXES = (".yaml", ".yml")
PRIVATE = "local"  # conf/local/: a user's own machine settings (git-ignored), never shipped


class BuildPyWithConfigs(build_py):
    """``build_py`` that also copies ``conf/**/*.yaml`` to ``<build>/qdtrack_pl/conf/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # editable: the package reads the clone's conf/
        target = Path(self.build_lib) / PACKAGED
        shutil.rmtree(target, ignore_errors=True)
        for source in sorted(CONF.rglob("*")):
            relative = source.relative_to(CONF)
            if (
                source.suffix in CONFIG_SUFFIXES
                and source.is_file()
                and relative.parts[0] != PRIVATE
            ):
                copy = target / relative
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, copy)
        (target / "__init__.py").write_text(
            '"""The Hydra configs (a copy of the clone\'s conf/)."""\n'
        )


setup(cmdclass={"build_py": BuildPyWithConfigs})
