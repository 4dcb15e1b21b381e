"""The exception hierarchy: what callers can catch, and errors that cross processes."""

from __future__ import annotations

import pickle

import anyglm
import numpy as np
import pytest


def _diverge() -> None:
    X = np.array([[1000.0], [-1000.0]])
    anyglm.LinearRegression(
        learning_rate=1.0, epochs=200, n_iter_no_change=None, average=False
    ).fit(X, [1.0, 2.0])


@pytest.mark.parametrize("caught", [anyglm.DivergenceError, ValueError, ArithmeticError])
def test_divergence_is_caught_as_value_error_and_as_arithmetic_error(caught: type) -> None:
    with pytest.raises(caught) as info:
        _diverge()
    assert type(info.value) is anyglm.DivergenceError
    assert info.value.epoch >= 1


def test_divergence_error_bases_and_order() -> None:
    mro = anyglm.DivergenceError.__mro__
    assert mro.index(ValueError) < mro.index(ArithmeticError) < mro.index(Exception)
    # scikit-learn style handlers catch ValueError; code written for anyglm <= 0.1 caught
    # ArithmeticError: both keep working, neither catches the other's unrelated errors.
    assert not issubclass(ZeroDivisionError, anyglm.DivergenceError)
    assert not issubclass(anyglm.DivergenceError, (TypeError, ZeroDivisionError))


def test_divergence_error_pickles_with_its_attributes() -> None:
    with pytest.raises(anyglm.DivergenceError) as info:
        _diverge()
    err = info.value
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is anyglm.DivergenceError
    assert str(back) == str(err) and back.epoch == err.epoch
    W, b = back.last_finite
    assert np.array_equal(W, err.last_finite[0]) and np.array_equal(b, err.last_finite[1])
