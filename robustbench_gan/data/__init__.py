"""Datasets: each loader registers in DATASETS and returns a DataSplit.

Importing this package imports every loader module, so they all register.
"""

from . import digits, idx, vision
from .split import DataSplit, resolve_root, stratified_split

__all__ = ["DataSplit", "digits", "idx", "resolve_root", "stratified_split", "vision"]
