"""What the command line prints: result tables, JSON, progress bars, the listings and doctor.

Part of :mod:`anyglm.cli`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import datasets, registry

#: Longest cell of the ``backends`` and ``doctor`` tables but their last column;
#: ``--json`` has every value whole.
CELL_WIDTH = 40


def _model_names() -> str:
    try:
        return ", ".join(m["name"] for m in registry.list_models())
    except Exception:  # help must work even when a plugin is broken
        return "see 'anyglm models'"


def _emit(
    args: argparse.Namespace, result: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    if getattr(args, "metrics", None):
        from .modelfile import atomic_write_bytes

        payload = {**result, **(extra or {})}
        atomic_write_bytes(args.metrics, (_json(payload) + "\n").encode())
    if args.json:
        print(_json(result))
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {text}")


def _json(value: Any) -> str:
    """Strict JSON: NaN and infinities (a diverged configuration) become null."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), indent=2, allow_nan=False)


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(
    rows: list[dict[str, Any]], columns: Sequence[str], *, max_width: int | None = None
) -> bool:
    """Print rows as aligned columns; returns whether a cell was cut to ``max_width``.

    Every column but the last is cut to ``max_width`` characters (None: none is).
    """

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value)
        return str(value)

    full = [[cell(r.get(c)) for c in columns] for r in rows]
    # The last column may run long without pushing any other out of line.
    cells = [
        [
            v if max_width is None or i == len(row) - 1 else _shorten(v, max_width)
            for i, v in enumerate(row)
        ]
        for row in full
    ]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return cells != full


def _bar_disabled(args: argparse.Namespace) -> bool | None:
    # None: tqdm shows the bar only when stderr is a terminal (not in logs, CI).
    return True if args.quiet else None


def _progress(args: argparse.Namespace, total: int, desc: str, unit: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=_bar_disabled(args), file=sys.stderr)


def _listing(args: argparse.Namespace) -> int:
    if args.command == "doctor":
        _doctor(args)
        return 0
    if args.command == "backends":
        rows = registry.list_backends()
        columns = ["name", "available", "dtypes", "devices", "origin", "reason"]
    elif args.command == "models":
        rows = registry.list_models()
        columns = ["name", "task", "description", "origin"]
    else:
        rows = [{"name": k, "description": v} for k, v in datasets.DATASETS.items()]
        columns = ["name", "description"]
    if args.json:
        print(json.dumps(rows, indent=2))
    elif _table(rows, columns, max_width=CELL_WIDTH if args.command == "backends" else None):
        _cut_note()
    return 0


def _cut_note() -> None:
    print(f"\n(cells longer than {CELL_WIDTH} characters are cut; --json shows every value whole)")


def _doctor(args: argparse.Namespace) -> None:
    from .doctor import doctor

    report = doctor()
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"anyglm {report['anyglm']} on Python {report['python']} ({report['platform']})")
    print("libraries: " + ", ".join(f"{k} {v}" for k, v in report["libraries"].items()))
    print("\nbackends:")
    if _table(
        report["backends"],
        ["name", "available", "version", "dtypes", "devices", "origin", "reason"],
        max_width=CELL_WIDTH,
    ):
        _cut_note()
    print("\nmodels:")
    _table(report["models"], ["name", "task", "origin"])
    print("\nplugins that failed to load:" + ("" if report["failed_plugins"] else " none"))
    for f in report["failed_plugins"]:
        print(f"  {f['name']} ({f['origin']}): {f['error']}")
    if report["disabled_plugins"]:
        print("disabled by ANYGLM_DISABLE_PLUGINS: " + ", ".join(report["disabled_plugins"]))
    print("\naccelerators (default optimiser):")
    for name, models in report["accelerators"].items():
        print(f"  {name}: {', '.join(models) if models else 'none (portable loop)'}")
    nb = report["backend_details"].get("numpy", {}).get("numba")
    if nb is None:
        return
    if nb["version"] is None:
        print("  numba: not installed (pip install 'anyglm[numba]': a faster NumPy epoch)")
    elif isinstance(nb["min_elements"], str):  # "error: ..." from a bad setting
        print(f"  numba {nb['version']}: {nb['min_elements'].removeprefix('error: ')}")
    elif not nb["enabled"]:
        print(f"  numba {nb['version']}: compiled loop turned off (ANYGLM_DISABLE_NUMBA)")
    else:
        print(f"  numba {nb['version']}: compiled NumPy loop for {', '.join(nb['models'])} "
              f"when X holds >= {nb['min_elements']} values")  # fmt: skip
