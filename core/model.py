"""The model abstraction: a GLM family as functions of the linear predictor.

A model says what its inverse link and its per-row loss are, as functions of
``Z = X @ W + b``, and the derivative of that loss with respect to ``Z``. The
core applies the chain rule through ``X`` once (:mod:`anyglm.glm`), averages
over rows and adds the L2 penalty, so a model never sees ``X``, the batch size
or the sample weights.

All array functions receive the namespace ``xp`` and arrays of shape
``(..., c)``: leading axes are rows and, when several configurations are
trained at once, configurations. They must work on any Array API namespace.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

__all__ = ["Model"]


class Model:
    """Base class for model plugins.

    Subclass it, set the class attributes, implement :meth:`inverse_link`,
    :meth:`loss` and :meth:`dloss` (and optionally :meth:`loss_and_dloss`, when
    the two share work), and register an instance from an
    ``anyglm_register_models`` hook.

    Attributes
    ----------
    name : str
        Name users select the model by.
    task : {"regression", "classification"}
        Classification models get labels encoded by the core: one output
        column of 0/1 when :attr:`binary` is true, one-hot columns otherwise.
    binary : bool
        For classification: exactly two classes and a single output.
    description : str
        One line shown by listings.
    curvature : float or None
        An upper bound on the second derivative of the per-row loss in ``Z``
        (the largest eigenvalue of its Hessian in ``z``, for any ``y``): 1 for
        squared error, 1/4 for the log loss, 1/2 for softmax cross-entropy.
        ``learning_rate="auto"`` derives the step from it; ``None`` (no bound,
        e.g. a Poisson loss) makes ``"auto"`` use 1, the bound of squared error.

    Examples
    --------
    >>> import anyglm
    >>> m = anyglm.get_model("logistic")
    >>> m.task, m.binary
    ('classification', True)
    """

    name: str = ""
    task: Literal["regression", "classification"] = "regression"
    binary: bool = False
    description: str = ""
    curvature: float | None = None

    def n_outputs(self, n_classes: int | None, n_targets: int) -> int:
        """Number of columns of ``W`` for ``n_classes`` classes or ``n_targets`` targets.

        Examples
        --------
        >>> import anyglm
        >>> softmax, logistic = anyglm.get_model("softmax"), anyglm.get_model("logistic")
        >>> softmax.n_outputs(10, 1), logistic.n_outputs(2, 1)
        (10, 1)
        """
        if self.task == "regression":
            return n_targets
        assert n_classes is not None
        return 1 if self.binary else n_classes

    def check_targets(self, y: np.ndarray) -> None:
        """Raise ``ValueError`` if regression targets lie outside the model's range.

        ``y`` is a finite float64 host array of shape ``(n, t)``. The default accepts
        every real number.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> anyglm.get_model("linear").check_targets(np.array([[-1.0], [2.0]]))  # any real value
        """

    def inverse_link(self, xp: Any, Z: Any) -> Any:
        """Mean prediction ``g(Z)``: probabilities for classifiers.

        Examples
        --------
        >>> import array_api_compat.numpy as xp, anyglm
        >>> anyglm.get_model("logistic").inverse_link(xp, xp.asarray([[0.0]])).tolist()
        [[0.5]]
        """
        raise NotImplementedError

    def loss(self, xp: Any, Z: Any, Y: Any) -> Any:
        """Per-row loss, shape ``Z.shape[:-1]`` (summed over the last axis).

        Examples
        --------
        >>> import array_api_compat.numpy as xp, anyglm
        >>> Z, Y = xp.asarray([[0.0, 0.0]]), xp.asarray([[1.0, 0.0]])
        >>> round(float(anyglm.get_model("softmax").loss(xp, Z, Y)[0]), 4)  # log 2
        0.6931
        """
        raise NotImplementedError

    def dloss(self, xp: Any, Z: Any, Y: Any) -> Any:
        """Derivative of the per-row loss with respect to ``Z``, shape ``Z.shape``.

        Examples
        --------
        >>> import array_api_compat.numpy as xp, anyglm
        >>> Z, Y = xp.asarray([[0.0, 0.0]]), xp.asarray([[1.0, 0.0]])
        >>> anyglm.get_model("softmax").dloss(xp, Z, Y).tolist()  # softmax(z) - y
        [[-0.5, 0.5]]
        """
        raise NotImplementedError

    def loss_and_dloss(self, xp: Any, Z: Any, Y: Any) -> tuple[Any, Any]:
        """``(loss(xp, Z, Y), dloss(xp, Z, Y))`` in one call; what the training loop uses.

        The default calls the two methods. Override it when they share work
        (softmax computes ``exp`` of the logits for both); an override must
        return the same values as the two methods, up to rounding.

        Examples
        --------
        >>> import anyglm, array_api_compat.numpy as xp
        >>> Z, Y = xp.asarray([[2.0], [0.5]]), xp.asarray([[1.0], [1.5]])
        >>> rows, dZ = anyglm.get_model("linear").loss_and_dloss(xp, Z, Y)
        >>> rows.tolist(), dZ.tolist()
        ([0.5, 0.5], [[1.0], [-1.0]])
        """
        return self.loss(xp, Z, Y), self.dloss(xp, Z, Y)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
