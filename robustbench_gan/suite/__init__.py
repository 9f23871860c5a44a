"""Suite files: TOML in, frozen dataclasses out (``load_suite``); see load.py for the format."""

from ..contract.fields import DEVICE_TYPES, per_device
from ..contract.suite import (
    BASELINE_GAN_LABEL,
    WORST_CASE_LABEL,
    AttackSpec,
    DefenseSpec,
    GeneratorSpec,
    PluginSpec,
    Suite,
    TargetSpec,
)
from .load import load_suite, parse_suite

__all__ = [
    "BASELINE_GAN_LABEL",
    "DEVICE_TYPES",
    "WORST_CASE_LABEL",
    "AttackSpec",
    "DefenseSpec",
    "GeneratorSpec",
    "PluginSpec",
    "Suite",
    "TargetSpec",
    "load_suite",
    "parse_suite",
    "per_device",
]
