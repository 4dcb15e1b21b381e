"""Class labels: exact matching of wide integers and mixed integer kinds."""

from __future__ import annotations

import anyglm
import numpy as np
import pytest

IDS = [1234567890123456789, 1234567890123456790]
X_IDS = np.array([[-1.0], [-0.5], [0.5], [1.0]])
Y_IDS = np.array([IDS[0], IDS[0], IDS[1], IDS[1]], dtype=np.uint64)


def test_uint64_labels_match_declared_int_classes() -> None:
    est = anyglm.LogisticRegression(random_state=0).partial_fit(X_IDS, Y_IDS, classes=IDS)
    assert [int(c) for c in est.classes_] == IDS
    assert [int(p) for p in est.predict(X_IDS)] == [int(v) for v in Y_IDS]


def test_uint64_validation_labels_against_int64_training_labels() -> None:
    est = anyglm.LogisticRegression(random_state=0, epochs=2)
    est.fit(X_IDS, Y_IDS.astype(np.int64), validation_data=(X_IDS, Y_IDS))
    assert len(est.history_["val_score"]) == 2


def test_an_integer_label_beyond_float_precision_is_not_taken_for_a_float_class() -> None:
    y = np.array([0.0, 0.0, 2.0**53, 2.0**53])
    y_val = np.array([0, 0, 2**53 + 1, 2**53 + 1])  # 2**53 + 1 is no class
    est = anyglm.LogisticRegression(random_state=0, epochs=2)
    with pytest.raises(ValueError, match="y_val contains the label 9007199254740993"):
        est.fit(X_IDS, y, validation_data=(X_IDS, y_val))
