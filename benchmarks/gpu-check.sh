#!/usr/bin/env bash
# One prepared check for a machine with an NVIDIA GPU (written for an H100 or H200 with no
# network): the conformance suite on the GPU backends (CuPy; PyTorch on CUDA and JAX on the GPU,
# their compiled steps included), then the epoch benchmark on the GPU (anyglm on CuPy, torch and
# jax, compiled and eager; the same math by hand in CuPy; a PyTorch CUDA loop), FMNIST-shaped
# (60000 x 784) and 1e6 x 784, then a summary. Each step has a time limit; the whole script
# finishes in under 8 minutes.
#
# usage: benchmarks/gpu-check.sh [WHEELS]
#   WHEELS  a wheel of array-api-compat, or a folder holding one; used only where
#           array-api-compat is not installed. Default: benchmarks/wheels/, then .whl/.
# environment:
#   PYTHON         the interpreter with CuPy, PyTorch and JAX (default: python3)
#   OUT            folder for the logs and JSON tables (default: /tmp/anyglm-gpu-check)
#   GPU_CHECK_SMALL=1  small sizes (1e4 and 2e4 rows), to try the script out quickly
#
# Exit status: 0 when the conformance suite passed on CuPy and on each of PyTorch and JAX that
# sees a GPU (one that sees none is reported as skipped), 1 otherwise (without a usable GPU the
# CuPy suite skips every test and fails by design). Benchmark targets are reported, not
# enforced. On a machine without a GPU the script still runs end to end: a dry run.
set -u -o pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
OUTDIR=${OUT:-/tmp/anyglm-gpu-check}
mkdir -p "$OUTDIR"
SITE=$(mktemp -d "${TMPDIR:-/tmp}/anyglm-site.XXXXXX")
START=$(date +%s)
if [ "${GPU_CHECK_SMALL:-0}" = 1 ]; then
    N_FMNIST=10000 N_BIG=20000
else
    N_FMNIST=60000 N_BIG=1000000
fi

say() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - START))"; }

find_wheel() {  # $1: a .whl file or a folder; prints the array-api-compat wheel found
    local where=$1
    if [ -f "$where" ]; then
        echo "$where"
    elif [ -d "$where" ]; then
        find "$where" -maxdepth 1 -name 'array_api_compat-*.whl' | sort | tail -n 1
    fi
}

say "machine"
"$PY" --version
command -v nvidia-smi >/dev/null && nvidia-smi -L
date -u +%Y-%m-%dT%H:%M:%SZ

say "install (offline)"
if "$PY" -c "import array_api_compat" 2>/dev/null; then
    echo "array-api-compat: already installed"
else
    WHEEL=""
    for where in "${1:-}" "$REPO/benchmarks/wheels" "$REPO/.whl"; do
        [ -n "$where" ] || continue
        WHEEL=$(find_wheel "$where")
        [ -n "$WHEEL" ] && break
    done
    if [ -z "$WHEEL" ]; then
        echo "no array-api-compat wheel found (give one as the first argument)" >&2
        exit 1
    fi
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHEEL" || exit 1
    echo "array-api-compat: installed from $WHEEL"
fi
# anyglm from this tree, laid out as its install would be (core/ -> anyglm, with backends/,
# plugins/ and tests/conformance/ inside), with the metadata that registers its pytest
# plugin. No build step: nothing to fetch, nothing written into the tree.
cp -r "$REPO/core" "$SITE/anyglm"
cp -r "$REPO/backends" "$SITE/anyglm/backends"
cp -r "$REPO/plugins" "$SITE/anyglm/plugins"
cp -r "$REPO/tests/conformance" "$SITE/anyglm/conformance"
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$REPO/core/_version.py")
DIST="$SITE/anyglm-${VERSION:-0}.dist-info"
mkdir -p "$DIST"
printf 'Metadata-Version: 2.1\nName: anyglm\nVersion: %s\n' "${VERSION:-0}" >"$DIST/METADATA"
printf '[pytest11]\nanyglm = anyglm.conformance.plugin\n' >"$DIST/entry_points.txt"
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
(cd / && "$PY" -c "import anyglm, array_api_compat; print('anyglm', anyglm.__version__, \
'from', anyglm.__file__); print('array-api-compat', array_api_compat.__version__)") || exit 1
(cd / && "$PY" -m anyglm backends) | tee "$OUTDIR/backends.txt"

say "conformance suite on the CuPy backend"
cd "$REPO" || exit 1
timeout 110 "$PY" -m pytest --pyargs anyglm.conformance --anyglm-backend cupy -q \
    2>&1 | tee "$OUTDIR/conformance.log"
CONF=$?
CONF_LINE=$(grep -E '(passed|failed|skipped|error)' "$OUTDIR/conformance.log" | tail -n 1)

# PyTorch and JAX: their GPU cases only (the CPU ones run in CI), every test but the
# accelerator comparisons, of which one demanding spec per model and dtype (averaging,
# two configurations, weights: the traced step count, optimiser state and gathers), with
# torch.compile's size threshold off so that the compiled steps run on these small problems.
GPU_ONLY='not cpu and (not test_accelerator or average-k2-weighted)'
gpu_suite() {  # $1: backend, $2: time limit (s), $3: a Python check that it sees a GPU
    local name=$1 limit=$2 probe=$3 why
    why=$( (cd / && "$PY" -c "$probe") 2>&1 | tail -n 1)
    if [ "$why" != "gpu" ]; then
        echo "skipped: ${why:-the check printed nothing}" | tee "$OUTDIR/conformance-$name.log"
        return 3
    fi
    ANYGLM_TORCH_COMPILE_MIN_ELEMENTS=0 timeout "$limit" "$PY" -m pytest --pyargs \
        anyglm.conformance --anyglm-backend "$name" -k "$GPU_ONLY" -q 2>&1 |
        tee "$OUTDIR/conformance-$name.log"
}
TORCH_PROBE='import torch
print("gpu" if torch.cuda.is_available() else "PyTorch sees no CUDA device")'
JAX_PROBE='import jax
print("gpu" if any(d.platform != "cpu" for d in jax.devices()) else "JAX sees no GPU")'

say "conformance suite on the PyTorch backend (CUDA)"
gpu_suite torch 110 "$TORCH_PROBE"
CONF_TORCH=$?
say "conformance suite on the JAX backend (GPU)"
gpu_suite jax 80 "$JAX_PROBE"
CONF_JAX=$?

say "epoch benchmark, ${N_FMNIST} x 784, batch 1024 and 256"
PYTHONUNBUFFERED=1 timeout 130 "$PY" benchmarks/epoch.py --device cuda --n "$N_FMNIST" \
    --batch 1024 256 --repeats 7 --json "$OUTDIR/gpu-fmnist.json" 2>&1 |
    tee "$OUTDIR/gpu-fmnist.txt"
B1=$?

say "epoch benchmark, ${N_BIG} x 784, batch 1024"
PYTHONUNBUFFERED=1 timeout 60 "$PY" benchmarks/epoch.py --device cuda --n "$N_BIG" \
    --n-test 1000 --batch 1024 --repeats 5 --skip "anyglm fit/epoch" "anyglm jax eager" \
    "anyglm torch eager" --json "$OUTDIR/gpu-big.json" 2>&1 | tee "$OUTDIR/gpu-big.txt"
B2=$?

say "summary"
status_of() {
    case $1 in
    0) echo "ran" ;;
    3) echo "skipped: no usable GPU for CuPy" ;;
    124) echo "stopped at its time limit" ;;
    *) echo "failed (exit $1)" ;;
    esac
}
suite_line() {  # $1: backend, $2: exit status
    local log="$OUTDIR/conformance-$1.log"
    case $2 in
    3) head -n 1 "$log" ;;
    124) echo "stopped at its time limit" ;;
    *) echo "$(grep -E '(passed|failed|skipped|error)' "$log" | tail -n 1) [exit $2]" ;;
    esac
}
echo "conformance (cupy): ${CONF_LINE:-no summary line} [exit $CONF]"
echo "conformance (torch, cuda): $(suite_line torch "$CONF_TORCH")"
echo "conformance (jax, gpu): $(suite_line jax "$CONF_JAX")"
echo "benchmark ${N_FMNIST} x 784: $(status_of "$B1")"
echo "benchmark ${N_BIG} x 784: $(status_of "$B2")"
"$PY" - "$OUTDIR/gpu-fmnist.json" "$OUTDIR/gpu-big.json" <<'EOF'
import json, sys

for path in sys.argv[1:]:
    try:
        with open(path) as f:
            report = json.load(f)
    except OSError:
        continue
    gpu = report["meta"].get("gpu", "?")
    for res in report["results"]:
        print(f"\n{res['model']} {res['dtype']} n={res['n']} batch={res['batch']} on {gpu}:")
        for row in res["rows"]:
            if "median_s" in row:
                ratio = row.get("ratio_vs_anyglm_epoch")
                r = f"{ratio:6.2f} x anyglm epoch" if ratio else ""
                if row.get("compile_s") is not None:
                    r += f"  (compiled once in {row['compile_s']:.1f} s)"
                if row.get("note") and "portable" in row["note"]:
                    r += f"  ({row['note']})"
                print(f"  {row['method']:20s} {row['median_s'] * 1e3:9.2f} ms  {r}")
            elif "skipped" in row:
                print(f"  {row['method']:20s} skipped: {row['skipped']}")
        for t in res["targets"]:
            state = {True: "holds", False: "FAILS", None: "n/a"}[t["holds"]]
            value = "-" if t["value"] is None else f"{t['value']:.2f}"
            print(f"  [{state}] {t['target']}: {value}")
EOF
echo
echo "logs and JSON tables: $OUTDIR; total $(($(date +%s) - START)) s"
rm -rf "$SITE"
ok_or_no_gpu() { [ "$1" = 0 ] || [ "$1" = 3 ]; }
if [ "$CONF" = 0 ] && ok_or_no_gpu "$CONF_TORCH" && ok_or_no_gpu "$CONF_JAX"; then
    exit 0
fi
exit 1
