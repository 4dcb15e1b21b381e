"""Smoke tests of benchmarks/epoch.py on tiny data (run with ``pytest benchmarks/``).

They check that the script runs, that its hand-written loops do the same math as
anyglm (the parameters after one epoch agree), and that what it writes is complete.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent


def _load():
    spec = importlib.util.spec_from_file_location("anyglm_bench_epoch", HERE / "epoch.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


epoch = _load()
FAST = ["read X once", "numpy slices", "numpy gather", "anyglm epoch", "anyglm fit"]


@pytest.mark.parametrize("model", ["softmax", "logistic", "linear"])
def test_hand_loops_match_anyglm(model: str) -> None:
    args = epoch.parse_args(["--n", "600", "--d", "20", "--classes", "4", "--batch", "64"])
    s = epoch.make_setup(np, args, model, 64, "float64", 600, 100)
    for name in ("numpy gather", "numpy slices", "anyglm epoch", "anyglm portable"):
        epoch.SETUPS[name](s)()
    diffs = epoch.verify(s)
    assert set(diffs) == {"numpy gather", "numpy slices", "anyglm portable"}
    for name, d in diffs.items():
        assert d < 1e-12, (name, d)
    W, _ = s.params["anyglm epoch"]
    assert np.any(W != 0)  # it trained: a zero W would agree with anything untrained


def test_verify_notices_different_math() -> None:
    args = epoch.parse_args(["--n", "600", "--d", "20", "--classes", "4"])
    s = epoch.make_setup(np, args, "softmax", 64, "float64", 600, 100)
    epoch.SETUPS["anyglm epoch"](s)()
    W, b = s.params["anyglm epoch"]
    s.params["numpy gather"] = (W * 1.01, b)
    assert epoch.verify(s)["numpy gather"] == pytest.approx(0.01, rel=1e-6)


def test_main_writes_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    argv = ["--n", "2000", "--n-test", "200", "--d", "30", "--repeats", "2"]
    rc = epoch.main([*argv, "--batch", "128", "512", "--methods", *FAST, "--json", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "anyglm epoch <= 1.05 x numpy gather" in text
    report = json.loads(out.read_text())
    assert report["meta"]["cpu_count"] >= 1
    assert [r["batch"] for r in report["results"]] == [128, 512]
    for res in report["results"]:
        rows = {r["method"]: r for r in res["rows"]}
        assert set(rows) == set(FAST)
        for r in rows.values():
            assert len(r["runs_s"]) == 2 and r["median_s"] > 0
        assert rows["anyglm epoch"]["ratio_vs_anyglm_epoch"] == 1.0
        assert res["same_math_param_diff"]["numpy gather"] < 1e-5  # float32
        assert {t["target"] for t in res["targets"]} >= {"anyglm epoch <= 1.05 x numpy gather"}


def test_paired_ratio() -> None:
    a, b = epoch.Row("a", wall=[1.0, 4.0, 9.0]), epoch.Row("b", wall=[2.0, 2.0, 3.0])
    assert a.paired(b) == 2.0  # median of 0.5, 2, 3
    assert a.paired(epoch.Row("c", wall=[1.0])) is None


def test_scaling_and_memory(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    argv = ["--n", "3000", "--d", "30", "--repeats", "1", "--methods", "anyglm fit"]
    assert epoch.main([*argv, "--memory", "--json", str(out)]) == 0
    mem = json.loads(out.read_text())["results"][0]["memory"]
    assert [m["method"] for m in mem] == ["anyglm fit"]
    assert mem[0]["peak_rss_bytes"] > 0 and mem[0]["data_bytes"] == 3000 * 30 * 4 + 3000 * 10 * 4
    # the scaling table alone, at the two smallest sizes
    assert epoch.main([*argv, "--scaling-only", "--json", str(out)]) == 0
    scaling = json.loads(out.read_text())["scaling"]
    assert [s["n"] for s in scaling["sizes"]] == [10_000, 100_000]
    assert scaling["per_row_growth"]["anyglm fit"] > 0


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_cuda_without_cupy_is_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    assert epoch.main(["--device", "cuda"]) == epoch.SKIPPED_EXIT
    assert "CuPy is not importable" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("compiled", "eager", "library"),
    [
        ("anyglm jax jit", "anyglm jax eager", "jax"),
        ("anyglm torch compile", "anyglm torch eager", "torch"),
    ],
)
def test_framework_rows_match_anyglm_and_report_the_compile_time(
    compiled: str, eager: str, library: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if importlib.util.find_spec(library) is None:
        pytest.skip(f"{library} is not installed")
    monkeypatch.setenv("ANYGLM_TORCH_COMPILE_MIN_ELEMENTS", "0")  # compile even this tiny X
    args = epoch.parse_args(["--n", "600", "--d", "20", "--classes", "4"])
    s = epoch.make_setup(np, args, "softmax", 64, "float32", 600, 100)
    for name in ("anyglm epoch", compiled, eager):
        epoch.SETUPS[name](s)()
    diffs = epoch.verify(s)
    assert diffs[compiled] < 1e-5 and diffs[eager] < 1e-5  # float32, same rows, same math
    assert s.notes[compiled] in ("jax.jit + lax.scan", "torch.compile")
    assert s.compile_s[compiled] > 0 and eager not in s.compile_s
    epoch.SETUPS[compiled](s)()  # a second fit finds the compiled step cached
    rows = epoch.time_methods(s, [compiled], 1)
    assert rows[compiled].compile_s == s.compile_s[compiled]
    tg = {t["target"] for t in epoch.targets(epoch.time_methods(s, [compiled, eager], 1), s)}
    assert {"anyglm jax jit <= 0.9 x anyglm epoch", "anyglm torch eager <= 1.05 x torch"} <= tg
