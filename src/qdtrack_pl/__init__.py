"""qdtrack-pl: QDTrack (quasi-dense similarity learning for MOT) in PyTorch Lightning + Hydra."""

__version__ = "0.1.0"
