"""Suite files: TOML in, frozen dataclasses out (``load_suite``); see load.py for the format."""

from .load import DEVICE_TYPES, load_suite, parse_suite, per_device
from .specs import (
    BASELINE_GAN_LABEL,
    WORST_CASE_LABEL,
    AttackSpec,
    DefenseSpec,
    GeneratorSpec,
    PluginSpec,
    Suite,
    TargetSpec,
)

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
