"""`python -m qdtrack_pl.train`: the main job, as `qdtrack-train` (`qdtrack_pl.cli.train`)."""

from qdtrack_pl.cli.train import main

if __name__ == "__main__":
    main()
