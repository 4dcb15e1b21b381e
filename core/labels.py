"""Targets: class labels and their encoding, regression targets, row weights.

Everything here works on host arrays of length ``n`` (labels, targets and
weights are small next to ``X``) and never builds an ``n x classes`` array:
classifiers keep one class index per row, and :class:`TargetCoder` encodes a
block of them (one-hot, or one 0/1 column for a binary model) when the block
is trained on.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .model import Model
from .validation import (
    check_labels,
    check_real,
    check_sample_weight,
    check_targets,
    to_host,
)

__all__ = ["EncodedTargets", "TargetCoder", "encode_targets", "label_indices", "unique_labels"]


def unique_labels(y: np.ndarray, name: str) -> np.ndarray:
    """The distinct labels of ``y``, sorted when they can be, else in order of appearance.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.labels import unique_labels
    >>> unique_labels(np.array(["b", "a", "b"]), "y").tolist()
    ['a', 'b']
    """
    try:
        return np.unique(y)
    except TypeError:
        # Mixed types that cannot be sorted: keep the order of first appearance.
        seen: dict[Any, None] = {}
        for v in y:
            try:
                seen.setdefault(v, None)
            except TypeError:
                raise TypeError(f"{name} contains an unhashable label {v!r}") from None
        out = np.empty(len(seen), dtype=object)
        out[:] = list(seen)
        return out


def _sorted_lookup(classes_: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    # Numbers (or strings) against sorted classes of the same kind: a binary
    # search, about 10x faster than a dictionary on 6e4 labels. Elsewhere
    # (objects, mixed kinds, unsorted classes) None. Same kind only:
    # searchsorted promotes int64 against uint64 (or int against float) to
    # float64, where integers above 2**53 collide.
    if classes_.dtype.kind != y.dtype.kind or classes_.dtype.kind not in "biufUS":
        return None
    if len(classes_) == 0:
        return None
    if len(classes_) > 1 and not bool(np.all(classes_[1:] > classes_[:-1])):
        return None
    pos = np.minimum(np.searchsorted(classes_, y), len(classes_) - 1)
    return np.where(classes_[pos] == y, pos, -1).astype(np.intp, copy=False)


def label_indices(classes_: np.ndarray, y: np.ndarray, name: str) -> np.ndarray:
    """Position of each label of ``y`` among ``classes_``; ``ValueError`` for an unknown one.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.labels import label_indices
    >>> label_indices(np.array([3, 7]), np.array([7, 3, 7]), "y").tolist()
    [1, 0, 1]
    """
    idx = _sorted_lookup(classes_, y)
    if idx is None:
        lookup: dict[Any, int] = {}
        for i, c in enumerate(classes_.tolist()):
            lookup[c] = i
        try:
            values = (lookup.get(v, -1) for v in y.tolist())
            idx = np.fromiter(values, dtype=np.intp, count=len(y))
        except TypeError:
            raise TypeError(f"{name} contains an unhashable label") from None
    if np.any(idx < 0):
        bad = y[np.argmax(idx < 0)]
        bad = bad.item() if isinstance(bad, np.generic) else bad  # 5, not np.int64(5)
        known = ", ".join(repr(c) for c in classes_.tolist()[:10])
        raise ValueError(
            f"{name} contains the label {bad!r}, which is not among the classes [{known}]"
        )
    return idx


@dataclass(frozen=True)
class TargetCoder:
    """Encodes a block of host targets as the model's output columns.

    ``kind`` is ``"binary"`` (class index 0/1 as one column), ``"onehot"``
    (class indices as one-hot columns) or ``"values"`` (real targets, as they are).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.labels import TargetCoder
    >>> TargetCoder("onehot", 3).encode(np.array([2, 0])).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """

    kind: str
    n_outputs: int

    def encode(self, codes: np.ndarray) -> np.ndarray:
        """``(m, n_outputs)`` float64 for the codes of ``m`` rows.

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.labels import TargetCoder
        >>> TargetCoder("binary", 1).encode(np.array([1, 0])).tolist()
        [[1.0], [0.0]]
        """
        m = codes.shape[0]
        if self.kind == "binary":
            return codes.astype(np.float64).reshape(m, 1)
        if self.kind == "onehot":
            out = np.zeros((m, self.n_outputs))
            out[np.arange(m), codes] = 1.0
            return out
        return np.asarray(codes, dtype=np.float64).reshape(m, self.n_outputs)


@dataclass(frozen=True)
class EncodedTargets:
    """The targets of a fit, in the form blocks are encoded from.

    Attributes
    ----------
    codes : numpy.ndarray
        Class indices (intp, shape (n,)) or real targets (float64, shape (n, t)).
    coder : TargetCoder
    classes : numpy.ndarray or None
        The sorted class labels (classifiers).
    y_ndim : int
        1 or 2 for regression targets as given; 2 for classifiers (``coef_``
        keeps scikit-learn's ``(n_outputs, n_features)`` shape).

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.labels import encode_targets
    >>> enc = encode_targets(anyglm.get_model("logistic"), np.array(["no", "yes", "no"]), 3)
    >>> enc.codes.tolist(), enc.encoded().ravel().tolist()
    ([0, 1, 0], [0.0, 1.0, 0.0])
    """

    codes: np.ndarray
    coder: TargetCoder
    classes: np.ndarray | None
    y_ndim: int

    def rows(self, rows: np.ndarray) -> EncodedTargets:
        """The same targets for a subset of rows.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.labels import encode_targets
        >>> enc = encode_targets(anyglm.get_model("softmax"), np.array([2, 0, 1]), 3)
        >>> enc.rows(np.array([0, 2])).codes.tolist()
        [2, 1]
        """
        return EncodedTargets(self.codes[rows], self.coder, self.classes, self.y_ndim)

    def encoded(self) -> np.ndarray:
        """All rows encoded (for data that is in memory anyway).

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.labels import encode_targets
        >>> encode_targets(anyglm.get_model("linear"), np.array([1.5, 2.5]), 2).encoded().tolist()
        [[1.5], [2.5]]
        """
        return self.coder.encode(self.codes)


def _declared_classes(classes: Any) -> np.ndarray:
    given = to_host(classes, "classes", None).ravel()
    declared = unique_labels(given, "classes")
    if len(declared) != len(given):
        raise ValueError("classes contains duplicates")
    return declared


def encode_targets(
    model: Model,
    y: np.ndarray,
    n: int,
    *,
    classes: Sequence[Hashable] | np.ndarray | None = None,
    name: str = "y",
    n_targets: int | None = None,
) -> EncodedTargets:
    """Check and encode the targets of ``n`` rows for ``model``.

    Classifiers: labels checked, classes found in ``y`` (or ``classes``, which
    must include every label), at least two, at most two for a binary model.
    Regressors: real, finite targets the model accepts, of ``n_targets``
    columns when given.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.labels import encode_targets
    >>> enc = encode_targets(anyglm.get_model("softmax"), np.array(["b", "a", "c"]), 3)
    >>> enc.classes.tolist(), enc.codes.tolist(), enc.coder.n_outputs
    (['a', 'b', 'c'], [1, 0, 2], 3)
    """
    if model.task != "classification":
        y64 = check_targets(y, n, name)
        Y = y64.reshape(n, -1)
        if n_targets is not None and Y.shape[1] != n_targets:
            raise ValueError(f"{name} has {Y.shape[1]} target columns but y has {n_targets}")
        model.check_targets(Y)
        return EncodedTargets(Y, TargetCoder("values", Y.shape[1]), None, y64.ndim)
    y = check_labels(y, n, name)
    classes_ = _declared_classes(classes) if classes is not None else unique_labels(y, name)
    k = len(classes_)
    if k < 2:
        raise ValueError(
            f"{name} has a single class ({classes_.tolist()[0]!r}); "
            "a classifier needs at least two. "
            "If other classes exist but are absent here, declare them: "
            "fit(X, y, classes=[...])"
        )
    if model.binary and k > 2:
        raise ValueError(
            f"Only binary classification is supported: model {model.name!r} is binary "
            f"but {name} has {k} classes; "
            "use SoftmaxRegression (model='softmax') for more than two classes"
        )
    codes = label_indices(classes_, y, name)
    coder = TargetCoder("binary" if model.binary else "onehot", model.n_outputs(k, 1))
    return EncodedTargets(codes, coder, classes_, 2)


def row_weights(
    targets: EncodedTargets,
    sample_weight: Any,
    class_weight: Mapping[Hashable, float] | str | None,
    n: int,
) -> np.ndarray | None:
    """Per-row weights: ``sample_weight`` times the class weights, or ``None`` for all ones.

    ``class_weight="balanced"`` gives class ``k`` the weight
    ``n / (n_classes * count_k)``, as scikit-learn does (with ``sample_weight``,
    ``n`` and ``count_k`` are sums of the sample weights).

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.labels import encode_targets, row_weights
    >>> enc = encode_targets(anyglm.get_model("logistic"), np.array([0, 0, 0, 1]), 4)
    >>> row_weights(enc, None, "balanced", 4).round(3).tolist()
    [0.667, 0.667, 0.667, 2.0]
    """
    w = None if sample_weight is None else check_sample_weight(sample_weight, n)
    if class_weight is None or targets.classes is None:
        return w
    classes_ = targets.classes
    idx = targets.codes
    # Weighted counts, as scikit-learn's "balanced" (with sample weights) uses.
    counts = np.bincount(idx, weights=w, minlength=len(classes_)).astype(np.float64)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(
                f"class_weight must be 'balanced', a dict or None, got {class_weight!r}"
            )
        total = counts.sum()
        per_class = np.where(
            counts > 0, total / (len(classes_) * np.where(counts > 0, counts, 1)), 0.0
        )
    elif isinstance(class_weight, Mapping):
        per_class = np.ones(len(classes_))
        for label, value in class_weight.items():
            pos = label_indices(classes_, np.asarray([label], dtype=object), "class_weight")
            per_class[pos[0]] = check_real(f"class_weight[{label!r}]", value, allow_zero=True)
    else:
        raise TypeError(f"class_weight must be 'balanced', a dict or None, got {class_weight!r}")
    w = per_class[idx] if w is None else w * per_class[idx]
    if not w.sum() > 0:
        raise ValueError("class_weight gives every sample a weight of zero")
    return w
