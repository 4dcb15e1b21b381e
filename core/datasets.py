"""Small real data sets shipped with anyglm, and host-side helpers to split and scale.

=================  ======================  ===================================
name               task                    shape
=================  ======================  ===================================
``digits``         softmax, 10 classes     1797 x 64 (8x8 pixel counts 0..16)
``breast_cancer``  logistic, 2 classes     569 x 30 (0 = malignant, 1 = benign)
``diabetes``       linear regression       442 x 10, real target
``xor``            linear regression       4 x 2, the XOR truth table
``all-positive``   logistic, one class     64 x 2, every label 1
=================  ======================  ===================================

Sources and licences are in ``anyglm/data/README.md`` and the docs.
"""

from __future__ import annotations

import gzip
import io
from importlib import resources
from typing import Any

import numpy as np

__all__ = ["DATASETS", "load_dataset", "standardize", "train_test_split"]

DATASETS: dict[str, str] = {
    "digits": "UCI optical recognition of handwritten digits (test set), 10 classes; CC BY 4.0",
    "breast_cancer": "UCI breast cancer Wisconsin (diagnostic), 0=malignant 1=benign; CC BY 4.0",
    "diabetes": "Efron et al. (2004) diabetes progression, 10 raw features, real target",
    "xor": "the XOR truth table (Goodfellow et al., Deep Learning, section 6.1)",
    "all-positive": "64 points in 2-D whose labels are all 1 (the seed's divergence experiment)",
}


def _read(name: str) -> bytes:
    return gzip.decompress(resources.files("anyglm").joinpath("data").joinpath(name).read_bytes())


def load_dataset(name: str, *, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Load a shipped data set as NumPy arrays ``(X, y)``.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    dtype : numpy dtype, default=float64
        dtype of ``X`` (and of ``y`` for regression sets).

    Returns
    -------
    X : numpy.ndarray of shape (n_samples, n_features)
    y : numpy.ndarray of shape (n_samples,)
        Integer class labels, or real targets for regression sets.

    Examples
    --------
    >>> import anyglm
    >>> X, y = anyglm.datasets.load_dataset("digits")
    >>> X.shape, sorted(set(y.tolist()))[:3]
    ((1797, 64), [0, 1, 2])
    """
    if name == "digits":
        data = np.loadtxt(io.BytesIO(_read("digits.csv.gz")), delimiter=",")
        return data[:, :-1].astype(dtype), data[:, -1].astype(np.int64)
    if name == "breast_cancer":
        data = np.loadtxt(io.BytesIO(_read("breast_cancer.csv.gz")), delimiter=",", skiprows=1)
        return data[:, :-1].astype(dtype), data[:, -1].astype(np.int64)
    if name == "diabetes":
        X = np.loadtxt(io.BytesIO(_read("diabetes_data_raw.csv.gz")))
        y = np.loadtxt(io.BytesIO(_read("diabetes_target.csv.gz")))
        return X.astype(dtype), y.astype(dtype)
    if name == "xor":
        X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
        return X, np.array([0, 1, 1, 0], dtype=dtype)
    if name == "all-positive":
        X = np.random.default_rng(0).normal(size=(64, 2)).astype(dtype)
        return X, np.ones(64, dtype=np.int64)
    import difflib

    close = difflib.get_close_matches(name, list(DATASETS), n=1)
    hint = f". Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown data set {name!r}; shipped: {', '.join(DATASETS)}{hint}")


def train_test_split(
    X: Any, y: Any, *, test_size: float = 0.2, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle rows with a seeded generator and split off ``test_size`` of them.

    Returns ``X_train, X_test, y_train, y_test`` (copies; the inputs are untouched).

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> X_tr, X_te, y_tr, y_te = anyglm.datasets.train_test_split(np.eye(10), np.arange(10))
    >>> X_tr.shape, X_te.shape
    ((8, 10), (2, 10))
    """
    X, y = np.asarray(X), np.asarray(y)
    n = X.shape[0]
    if y.shape[0] != n:
        raise ValueError(f"X has {n} rows but y has {y.shape[0]}")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    n_test = round(test_size * n)
    if not 0 < n_test < n:
        raise ValueError(f"test_size={test_size} of {n} rows leaves an empty part")
    perm = np.random.default_rng(random_state).permutation(n)
    test, train = perm[:n_test], perm[n_test:]
    return X[train], X[test], y[train], y[test]


def standardize(X_train: Any, *others: Any) -> tuple[np.ndarray, ...]:
    """Scale columns to zero mean and unit variance using ``X_train``'s statistics.

    Returns new arrays ``(X_train_scaled, *others_scaled)``; constant columns
    are centred and left unscaled.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> a, b = anyglm.datasets.standardize(np.array([[1.0], [3.0]]), np.array([[5.0]]))
    >>> a.ravel().tolist(), b.ravel().tolist()
    ([-1.0, 1.0], [3.0])
    """
    Xt = np.asarray(X_train)
    mean = Xt.mean(axis=0)
    std = Xt.std(axis=0)
    std = np.where(std > 0, std, 1.0).astype(Xt.dtype)
    return tuple(((np.asarray(A) - mean) / std).astype(Xt.dtype) for A in (Xt, *others))
