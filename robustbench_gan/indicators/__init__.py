"""Indicators of attack failure (Pintor et al. 2022) and the sanity checks, as one scheme."""

from .scheme import INDICATORS, RENAMED, Indicator, meaning, split

__all__ = ["INDICATORS", "RENAMED", "Indicator", "meaning", "split"]
