"""scikit-learn's bundled 8x8 handwritten digits: the offline default dataset."""

from __future__ import annotations

from pathlib import Path

import torch
from sklearn.datasets import load_digits

from ..bounds import Count, Fraction
from ..contract.data import DataSplit
from ..registry import DATASETS
from .split import images_to_tensor, labels_to_tensor, official_test_split, stratified_split

DIGIT_NAMES = tuple(str(d) for d in range(10))


@DATASETS.register("digits", default=True)  # the dataset of a suite that names none
def digits(
    *,
    root: str | Path | None = None,
    seed: int = 0,
    test_fraction: Fraction = 0.2,
    download: bool = False,
    max_train: Count | None = None,
    max_test: Count | None = None,
    test_only: bool = False,
) -> DataSplit:
    """1,797 digits as (N, 1, 8, 8) in [0, 1], split stratified with ``seed``.

    ``root`` and ``download`` are accepted for a uniform signature and ignored. Digits has no
    official test set: ``test_only = true`` returns the usual test part (the same images as
    without it, for the same ``seed`` and ``test_fraction``) in the order of scikit-learn's
    array, cut to its first ``max_test`` images (``max_train`` is ignored), the train part
    being the same tensors.
    """
    bunch = load_digits()
    x = images_to_tensor(bunch.images[:, None], scale=16.0)
    y = labels_to_tensor(bunch.target)
    if test_only:
        index = torch.arange(len(y))
        test_index = stratified_split(index, y, test_fraction=test_fraction, seed=seed)[2]
        test_index = test_index.sort().values
        return official_test_split(
            "digits", x[test_index], y[test_index], DIGIT_NAMES, max_test=max_test
        )
    split = DataSplit(
        "digits", *stratified_split(x, y, test_fraction=test_fraction, seed=seed), 10, DIGIT_NAMES
    )
    return split.limited(max_train=max_train, max_test=max_test, seed=seed)
