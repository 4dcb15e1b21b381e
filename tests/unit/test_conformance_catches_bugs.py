"""The shipped conformance suite fails on a wrong gradient or epoch kernel, and says where."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = '''
import anyglm
from anyglm.plugins.logistic import Logistic


class HalfGradient(Logistic):
    """Logistic regression whose dloss forgot a factor: half the true gradient."""

    name = "halfgrad"

    def dloss(self, xp, Z, Y):
        return Logistic.dloss(self, xp, Z, Y) / 2

    def loss_and_dloss(self, xp, Z, Y):
        return self.loss(xp, Z, Y), self.dloss(xp, Z, Y)


@anyglm.hookimpl
def anyglm_register_models(register):
    register(HalfGradient())
'''


def _install(site: Path, name: str = "halfgrad", source: str = PLUGIN) -> Path:
    """Install module ``<name>_plugin`` with entry point ``name``; return its dist-info."""
    site.mkdir()
    module = f"{name}_plugin"
    (site / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: 1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[anyglm.plugins]\n{name} = {module}\n", encoding="utf-8"
    )
    return info


def _run_suite(site: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("ANYGLM_DISABLE_PLUGINS", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--pyargs",
            "anyglm.conformance",
            "-q",
            "-p",
            "no:cacheprovider",
            *options,
        ],
        cwd=site,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_missing_factor_in_the_gradient_fails_the_suite_with_a_precise_message(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    _install(site)
    proc = _run_suite(site, "--anyglm-model", "halfgrad", "--anyglm-backend", "numpy")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "failed" in out.splitlines()[-1]
    assert "model 'halfgrad' on backend 'numpy'" in out
    assert "finite differences" in out
    assert "max relative error 0.5" in out  # the size of the error: half the gradient


def test_the_same_suite_passes_the_correct_model(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install(site)
    proc = _run_suite(site, "--anyglm-model", "logistic", "--anyglm-backend", "numpy")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "passed" in out.splitlines()[-1] and "failed" not in out.splitlines()[-1]


KERNEL_PLUGIN = '''
import dataclasses

import anyglm
from anyglm.optim import build
from anyglm.sources import Block
from anyglm.trainer import run_block


class ForgetsThePenalty:
    """An accelerator that runs the portable loop without the L2 term."""

    def __init__(self, spec):
        self.spec = spec

    def __call__(self, task):
        be = anyglm.get_backend("numpy")
        columns = dataclasses.replace(task.columns, l2=0.0 * task.columns.l2)
        block = Block(task.X, task.Y, task.weights, task.order, 0, be)
        return run_block(self.spec.model, build(self.spec.optimizer, be.xp), block,
                         task.batch_size, task.W, task.b, task.state, task.t, columns,
                         task.average_from, task.n_configs)


@anyglm.hookimpl
def anyglm_accelerator(backend, spec):
    if backend.name == "numpy" and spec.optimizer.plain:
        return ForgetsThePenalty(spec)
    return None
'''


def test_an_accelerator_that_drops_the_penalty_fails_the_suite(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = _install(site, "nodecay", KERNEL_PLUGIN)
    proc = _run_suite(
        site, "--anyglm-backend", "numpy", "--anyglm-model", "softmax", "-k", "accelerator"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "model 'softmax' on backend 'numpy'" in out
    assert "accelerator gives W different from the portable loop" in out
    # Without the plugin the same selection passes (or, numba's accelerator declining
    # blocks this small, skips): the accelerator, not the test, is wrong.
    (info / "entry_points.txt").unlink()
    proc = _run_suite(
        site, "--anyglm-backend", "numpy", "--anyglm-model", "softmax", "-k", "accelerator"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "failed" not in out.splitlines()[-1]


def test_a_raising_accelerator_hook_fails_its_cases_instead_of_hiding_them(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    _install(
        site,
        "raising",
        """
        import anyglm


        @anyglm.hookimpl
        def anyglm_accelerator(backend, spec):
            raise RuntimeError("accelerator lookup exploded")
        """,
    )
    proc = _run_suite(
        site, "--anyglm-backend", "numpy", "--anyglm-model", "linear", "-k", "accelerator"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "numpy-cpu-float64-linear-sgd-broken" in out
    assert "the anyglm_accelerator hook raised RuntimeError: accelerator lookup exploded" in out


NAIVE_PROBIT = '''
import math

import anyglm
import numpy as np

_erf = np.frompyfunc(math.erf, 1, 1)


def _cdf(Z):
    return (0.5 * (1.0 + _erf(Z / math.sqrt(2.0)))).astype(Z.dtype)


def _pdf(Z):
    return np.exp(-0.5 * Z * Z) / math.sqrt(2.0 * math.pi)


class NaiveProbit(anyglm.Model):
    """Probit regression the textbook way; NumPy only. Phi(-40) is 0, so log(Phi) is -inf."""

    name = "naiveprobit"
    task = "classification"
    binary = True
    description = "probit, -y log Phi(z) - (1 - y) log(1 - Phi(z))"

    def inverse_link(self, xp, Z):
        return _cdf(Z)

    def loss(self, xp, Z, Y):
        P = _cdf(Z)
        return np.sum(-Y * np.log(P) - (1 - Y) * np.log(1 - P), axis=-1)

    def dloss(self, xp, Z, Y):
        P, d = _cdf(Z), _pdf(Z)
        return -Y * d / P + (1 - Y) * d / (1 - P)


@anyglm.hookimpl
def anyglm_register_models(register):
    register(NaiveProbit())
'''


def _failed_tests(out: str) -> list[str]:
    """Names of the failed tests (without parameters) in pytest's short summary."""
    return [
        line.split("::")[1].split("[")[0]
        for line in out.splitlines()
        if line.startswith("FAILED ") and "::" in line
    ]


def test_a_naive_probit_fails_the_suite_where_its_loss_overflows(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install(site, "naiveprobit", NAIVE_PROBIT)
    proc = _run_suite(site, "--anyglm-model", "naiveprobit", "--anyglm-backend", "numpy")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    for dtype in ("float64", "float32"):
        assert (
            f"model 'naiveprobit' on backend 'numpy', device cpu, {dtype}: "
            f"loss is not finite at z = -40 (class " in out
        ), out
    assert "dloss is not finite at z = -40" in out
    # Only the extreme-value test catches it: the rest of the suite, which trains and
    # differentiates at moderate z, passes this model (as the whole suite did before).
    failed = _failed_tests(out)
    assert failed == ["test_loss_is_finite_at_extreme_linear_predictors"] * 2, out


WRONG_SHAPE = '''
import anyglm
from anyglm.plugins.logistic import Logistic


class WrongShape(Logistic):
    """Logistic regression whose per-row loss is {what}."""

    name = "wrongshape"

    def loss(self, xp, Z, Y):
        rows = xp.logaddexp(xp.zeros_like(Z), Z) - Y * Z
        return {expression}

    def loss_and_dloss(self, xp, Z, Y):
        return self.loss(xp, Z, Y), self.dloss(xp, Z, Y)


@anyglm.hookimpl
def anyglm_register_models(register):
    register(WrongShape())
'''


@pytest.mark.parametrize(
    ("what", "expression", "got"),
    [
        ("kept its last axis", "xp.sum(rows, axis=-1, keepdims=True)", "(24, 2, 1)"),
        ("a mean over rows", "xp.mean(xp.sum(rows, axis=-1), axis=0)", "(2,)"),
    ],
    ids=["keepdims", "mean"],
)
def test_a_loss_of_the_wrong_shape_gets_one_contract_message(
    tmp_path: Path, what: str, expression: str, got: str
) -> None:
    site = tmp_path / "site"
    _install(site, "wrongshape", WRONG_SHAPE.format(what=what, expression=expression))
    proc = _run_suite(site, "--anyglm-model", "wrongshape", "--anyglm-backend", "numpy")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    contract = (
        f"loss_and_dloss returned loss of shape {got} but the contract is (24, 2) "
        f"(Z.shape[:-1] for Z of shape (24, 2, 1))"
    )
    assert f"model 'wrongshape' on backend 'numpy', device cpu, float64: {contract}" in out, out
    assert f"model 'wrongshape' on NumPy, float64 (the reference): {contract}" in out, out
    # Every test of the model fails, each with the contract message and nothing raw.
    failed = [line for line in out.splitlines() if line.startswith("FAILED ")]
    errors = [line for line in out.splitlines() if line.startswith("E ") and "Error" in line]
    assert len(failed) >= 10, out
    assert len(errors) == len(failed), "\n".join(errors)
    assert all(
        "AssertionError: model 'wrongshape'" in line
        and "loss_and_dloss returned loss of shape" in line
        and "but the contract is" in line
        for line in errors
    ), "\n".join(errors)
    for raw in ("IndexError", "AxisError", "broadcast"):
        assert raw not in out, out
