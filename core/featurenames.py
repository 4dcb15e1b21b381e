"""Column names of data frames, scikit-learn's way: ``feature_names_in_`` and its checks.

A frame whose column names are all strings gives an estimator its
``feature_names_in_`` at fit; predicting on columns in another order or with
other names is then a ``ValueError`` naming them, and names at fit but not at
predict (or the reverse) a :class:`UserWarning`, as scikit-learn does.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["check_feature_names", "feature_names"]


def feature_names(X: Any) -> np.ndarray | None:
    """The column names of a data frame when all are strings, else ``None`` (scikit-learn's rule).

    Raises
    ------
    TypeError
        Some column names are strings and others are not.

    Examples
    --------
    >>> import pandas as pd
    >>> from anyglm.featurenames import feature_names
    >>> feature_names(pd.DataFrame({"age": [1.0], "bmi": [2.0]})).tolist()
    ['age', 'bmi']
    """
    top = type(X).__module__.partition(".")[0]
    if top in ("pandas", "polars", "modin") and hasattr(X, "columns"):
        names = list(X.columns)
    elif top == "pyarrow" and hasattr(X, "column_names"):
        names = list(X.column_names)
    else:
        return None
    if not names:
        return None
    types = sorted({type(n).__qualname__ for n in names})
    if len(types) > 1 and "str" in types:
        raise TypeError(
            "Feature names are only supported if all input features have string names, but "
            f"your input has {types} as feature name / column name types. Convert them all "
            "to strings (X.columns = X.columns.astype(str)) to have them stored and checked, "
            "or remove the column names"
        )
    if types != ["str"]:
        return None
    out = np.empty(len(names), dtype=object)
    out[:] = names
    return out


def _listed(names: list[Any]) -> str:
    shown = [f"- {n}" for n in names[:5]] + (["- ..."] if len(names) > 5 else [])
    return "\n".join(shown) + "\n"


def check_feature_names(fitted: np.ndarray | None, X: Any, owner: str) -> None:
    """scikit-learn's rules for column names at predict time (``fitted``: ``feature_names_in_``).

    Names at fit but none now, or the reverse: a :class:`UserWarning`. Both
    present but different (other names, or the same in another order): a
    ``ValueError`` naming them.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from anyglm.featurenames import check_feature_names
    >>> fitted = np.array(["a", "b"], dtype=object)
    >>> check_feature_names(fitted, pd.DataFrame({"b": [1.0], "a": [2.0]}), "Estimator")
    Traceback (most recent call last):
    ...
    ValueError: The feature names should match those that were passed during fit.
    Feature names must be in the same order as they were in fit.
    <BLANKLINE>
    """
    names = feature_names(X)
    if fitted is None and names is None:
        return
    if fitted is None:
        warnings.warn(
            f"X has feature names, but {owner} was fitted without feature names", stacklevel=4
        )
        return
    if names is None:
        warnings.warn(
            f"X does not have valid feature names, but {owner} was fitted with feature names",
            stacklevel=4,
        )
        return
    if len(fitted) == len(names) and bool(np.all(fitted == names)):
        return
    message = "The feature names should match those that were passed during fit.\n"
    unexpected = sorted(set(names) - set(fitted))
    missing = sorted(set(fitted) - set(names))
    if unexpected:
        message += "Feature names unseen at fit time:\n" + _listed(unexpected)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + _listed(missing)
    if not unexpected and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)
