"""Datasets: each loader registers in DATASETS and returns a DataSplit.

Importing this package imports every loader module, so they all register (the DATASETS
registry also imports every module of this package on first use).
"""

from ..contract.data import DataSplit, resolve_root
from . import digits, idx, imagefolder, vision
from .split import stratified_split

__all__ = [
    "DataSplit",
    "digits",
    "idx",
    "imagefolder",
    "resolve_root",
    "stratified_split",
    "vision",
]
