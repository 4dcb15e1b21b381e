"""The shipped conformance suite fails on a wrong gradient or epoch kernel, and says where."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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
from anyglm.backends.numpy_epoch import NumpyEpochKernel


class ForgetsThePenalty(NumpyEpochKernel):
    """A NumPy epoch kernel that drops the L2 term."""

    def __call__(self, task):
        return super().__call__(dataclasses.replace(task, alpha=0.0))


@anyglm.hookimpl
def anyglm_epoch_kernel(backend, model):
    if backend.name == "numpy":
        return ForgetsThePenalty(model, backend.xp)
    return None
'''


def test_an_epoch_kernel_that_drops_the_penalty_fails_the_suite(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = _install(site, "nodecay", KERNEL_PLUGIN)
    proc = _run_suite(
        site, "--anyglm-backend", "numpy", "--anyglm-model", "softmax", "-k", "kernel"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "model 'softmax' on backend 'numpy'" in out
    assert "epoch kernel gives W different from the portable loop" in out
    # Without the plugin the same selection passes: the kernel, not the test, is wrong.
    (info / "entry_points.txt").unlink()
    proc = _run_suite(
        site, "--anyglm-backend", "numpy", "--anyglm-model", "softmax", "-k", "kernel"
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "passed" in out.splitlines()[-1]


def test_a_raising_kernel_hook_fails_its_pairs_instead_of_hiding_them(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install(
        site,
        "raising",
        """
        import anyglm


        @anyglm.hookimpl
        def anyglm_epoch_kernel(backend, model):
            raise RuntimeError("kernel lookup exploded")
        """,
    )
    proc = _run_suite(site, "--anyglm-backend", "numpy", "--anyglm-model", "linear", "-k", "kernel")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "numpy-cpu-float64-linear-broken" in out
    assert "the anyglm_epoch_kernel hook raised RuntimeError: kernel lookup exploded" in out
