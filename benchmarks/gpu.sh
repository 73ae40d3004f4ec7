#!/usr/bin/env bash
# GPU checks in one go, under 8 minutes: the GPU tests (pytest -m gpu) and the GPU bench rows
# (torch on CUDA; ort-cuda when onnxruntime has the CUDA provider; trt when TensorRT imports),
# every step under `timeout` within one overall deadline. Needs a CUDA GPU, torch with CUDA and
# mspd-edge installed (pip install -e '.[all]'); downloads nothing. Run from the repository root:
#
#     bash benchmarks/gpu.sh                  # everything goes to benchmarks/results/gpu/
#     OUT=/tmp/gpu DATA=../shared/data/cifar10/test.npz bash benchmarks/gpu.sh
#
# Writes under $OUT: env.txt, <step>.log per step, gpu-tests.xml (JUnit), bench-<backend>.json
# per bench step, steps.json (exit status and seconds per step) and summary.json (all of it
# merged, throughput relative to torch fp32); prints a one-screen summary at the end. Exit
# status: 0 when every step passed, 1 when one failed or timed out, 2 without CUDA.
set -euo pipefail

OUT="${OUT:-benchmarks/results/gpu}"
PYTHON="${PYTHON:-python}"
DATA="${DATA:-}"                       # bench images; default: mspd-edge bench's own default
BATCH_SIZES="${BATCH_SIZES:-1,16,64,256}"
IMAGES="${IMAGES:-256}"                # images per batch size
DEADLINE_S="${DEADLINE_S:-450}"        # the whole script, all steps together (8 min = 480 s)
KILL_AFTER_S=10                        # grace after a step's timeout before SIGKILL
MIN_STEP_S=20                          # a step needs at least this much time left to start
# Per-step caps in seconds (each also bounded by the time left before the deadline).
TESTS_S=150 TORCH_S=120 ORT_CUDA_S=90 TRT_S=180

# ---- PRECISION AXIS -----------------------------------------------------------------------
# The torch CUDA rows are timed once per entry (`mspd-edge bench --precision P`: autocast bf16
# needs compute capability 8.0+; a precision the GPU cannot run fails its row in one line):
#     PRECISIONS="fp32 bf16" bash benchmarks/gpu.sh
PRECISIONS="${PRECISIONS:-fp32 bf16 fp16}"
# --------------------------------------------------------------------------------------------

mkdir -p "$OUT"
export MSPD_EDGE_CACHE="${MSPD_EDGE_CACHE:-$OUT/cache}"   # export and engines stay under $OUT
START=$(date +%s)
STEPS="$OUT/steps.tsv"
: > "$STEPS"

source "$(dirname "$0")/gpu_common.sh"
check_env

bench() {   # bench NAME CAP_S BACKEND [extra bench options]
    local name=$1 cap=$2 backend=$3
    shift 3
    local args=(bench --backends "$backend" --device cuda --batch-sizes "$BATCH_SIZES"
                --images "$IMAGES" --json "$OUT/bench-$name.json")
    [[ -n "$DATA" ]] && args+=(--data "$DATA")
    run_step "bench-$name" "$cap" "${MSPD[@]}" "${args[@]}" "$@"
}

# ---- the steps ----------------------------------------------------------------------------
run_step gpu-tests "$TESTS_S" "$PYTHON" -m pytest -q -m gpu tests -p no:cacheprovider \
    --junitxml="$OUT/gpu-tests.xml"

for precision in $PRECISIONS; do
    bench "torch-cuda-$precision" "$TORCH_S" torch --precision "$precision"
done

if timeout 30 "$PYTHON" -c "import onnxruntime, sys; sys.exit('CUDAExecutionProvider' not in onnxruntime.get_available_providers())" 2> /dev/null; then
    bench ort-cuda "$ORT_CUDA_S" ort-cuda
else
    echo "== bench-ort-cuda: skipped (onnxruntime has no CUDAExecutionProvider)"
fi
if timeout 30 "$PYTHON" -c "import tensorrt" 2> /dev/null; then
    bench trt "$TRT_S" trt
else
    echo "== bench-trt: skipped (TensorRT does not import)"
fi

# ---- summary ------------------------------------------------------------------------------
timeout 60 "$PYTHON" - "$OUT" "$(( $(date +%s) - START ))" <<'EOF'
import json, sys
import xml.etree.ElementTree as ET
from pathlib import Path

from mspd_edge.measure.bench import markdown_table, with_ratios

out, seconds = Path(sys.argv[1]), int(sys.argv[2])
steps = [dict(zip(("step", "rc", "seconds"), line.split("\t")))
         for line in (out / "steps.tsv").read_text().splitlines()]
records, failures = [], []
for path in sorted(out.glob("bench-*.json")):
    report = json.loads(path.read_text())
    run = path.stem[len("bench-"):]           # torch-cuda-fp32, ort-cuda, trt, ...
    for record in report["records"]:
        record.update(spec=record["backend"], backend=run)
    records += report["records"]
    failures += report.get("failures", [])
tests = {}
junit = out / "gpu-tests.xml"
if junit.is_file():
    suite = ET.parse(junit).getroot()
    suite = suite.find("testsuite") if suite.tag == "testsuites" else suite
    cases = list(suite.iter("testcase"))
    skipped = {c.find("skipped").get("message", "") for c in cases if c.find("skipped") is not None}
    tests = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    tests["passed"] = tests["tests"] - tests["failures"] - tests["errors"] - tests["skipped"]
    tests["skip_reasons"] = sorted(skipped)
    tests["failed"] = [f"{c.get('classname')}::{c.get('name')}" for c in cases
                       if c.find("failure") is not None or c.find("error") is not None]
REFERENCE = "torch-cuda-fp32"
with_ratios(records, REFERENCE)
summary = {"seconds": seconds, "steps": steps, "tests": tests, "records": records,
           "failures": failures, "env": (out / "env.txt").read_text().splitlines()[-4:]}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

print(f"\n== summary ({seconds} s; {out}/summary.json)")
print("steps: " + ", ".join(f"{s['step']} rc={s['rc']} {s['seconds']}s" for s in steps))
if tests:
    print(f"gpu tests: {tests['passed']} passed, {tests['failures'] + tests['errors']} failed, "
          f"{tests['skipped']} skipped")
    for name in tests["failed"]:
        print(f"  FAILED {name}")
    for reason in tests["skip_reasons"][:6]:
        print(f"  skipped: {reason[:150]}")
print(markdown_table(records, REFERENCE) if records else "no bench rows")
for failure in failures:
    print(f"bench failure: {failure['backend']}: {failure['error'][:150]}")
sys.exit(1 if any(s["rc"] not in ("0", "skipped") for s in steps) else 0)
EOF
