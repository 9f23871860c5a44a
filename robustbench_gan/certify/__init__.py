"""Certified robustness: randomized smoothing (Cohen, Rosenfeld & Kolter, ICML 2019,
https://arxiv.org/abs/1902.02918) and certified accuracy by radius."""

from .smoothing import (
    ABSTAIN,
    Certificate,
    CertifiedAccuracy,
    Prediction,
    certified_accuracy,
    certify,
    lower_confidence_bound,
    predict,
    radius_of,
)

__all__ = [
    "ABSTAIN",
    "Certificate",
    "CertifiedAccuracy",
    "Prediction",
    "certified_accuracy",
    "certify",
    "lower_confidence_bound",
    "predict",
    "radius_of",
]
