"""scikit-learn's bundled digits data set, split and standardised the same way everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

SPLIT_SEED = 0  # fixed: every trial and worker sees the same train/validation split
VALIDATION_FRACTION = 0.2
NUM_CLASSES = 10


@dataclass(frozen=True)
class DigitsSplit:
    x_train: np.ndarray  # float32, standardised with the training set's statistics
    y_train: np.ndarray  # int64
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def num_features(self) -> int:
        return int(self.x_train.shape[1])


@lru_cache(maxsize=1)
def load_split() -> DigitsSplit:
    """The 1,797 8x8 digits, 80/20 stratified split; no download (shipped with sklearn).

    Called in the trial process, which hands the arrays to its Train workers: they then
    need not import scikit-learn (seconds per worker on a busy machine).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=VALIDATION_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0  # pixels that are always blank
    return DigitsSplit(
        x_train=((x_train - mean) / std).astype(np.float32),
        y_train=y_train.astype(np.int64),
        x_val=((x_val - mean) / std).astype(np.float32),
        y_val=y_val.astype(np.int64),
    )
