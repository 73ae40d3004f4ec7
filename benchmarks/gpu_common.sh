# Shared by the GPU scripts (gpu.sh, gpu_train.sh): sourced after they set OUT, PYTHON, START,
# STEPS, DEADLINE_S, KILL_AFTER_S and MIN_STEP_S. Defines die, check_cuda, check_env (fail fast: a CUDA
# GPU, torch with CUDA, mspd-edge installed; writes $OUT/env.txt; sets MSPD to the CLI) and run_step.

die() { echo "error: $*" >&2; exit 2; }

# check_cuda: nvidia-smi and torch's view of the GPUs into $OUT/env.txt; dies without CUDA.
check_cuda() {
    if command -v nvidia-smi > /dev/null; then
        timeout 20 nvidia-smi > "$OUT/env.txt" 2>&1 || die "nvidia-smi failed: $(tail -1 "$OUT/env.txt")"
    else
        echo "nvidia-smi: not found" > "$OUT/env.txt"
    fi
    timeout 60 "$PYTHON" - >> "$OUT/env.txt" 2>&1 <<'EOF' || die "no CUDA here: $(tail -1 "$OUT/env.txt") (this script needs a GPU and torch with CUDA)"
import platform, sys
try:
    import torch
except ImportError:
    sys.exit("torch is not installed")
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}")
if not torch.cuda.is_available():
    sys.exit("torch sees no CUDA device")
for i in range(torch.cuda.device_count()):
    print(f"cuda:{i} {torch.cuda.get_device_name(i)}, capability {torch.cuda.get_device_capability(i)}")
EOF
}

# check_env [cpu]: check_cuda (with "cpu" skipped: a smoke run of a script on a CPU), then
# mspd-edge's install; sets MSPD to the CLI and prints env.txt.
check_env() {
    if [[ "${1:-cuda}" == cpu ]]; then
        echo "device: cpu (smoke run)" > "$OUT/env.txt"
    else
        check_cuda
    fi
    timeout 60 "$PYTHON" -c "import mspd_edge.measure.bench" >> "$OUT/env.txt" 2>&1 \
        || die "mspd-edge is not installed for $PYTHON (pip install -e '.[all]' in the repository root)"
    if command -v mspd-edge > /dev/null; then MSPD=(mspd-edge); else MSPD=("$PYTHON" -m mspd_edge.cli); fi
    cat "$OUT/env.txt"
}

# run_step NAME CAP_S COMMAND...: COMMAND under `timeout`, logged to $OUT/NAME.log; never aborts.
run_step() {
    local name=$1 cap=$2 left rc=0 t0
    shift 2
    left=$(( START + DEADLINE_S - $(date +%s) ))
    if (( left < MIN_STEP_S )); then
        echo "== $name: skipped (${left}s left before the deadline)"
        printf '%s\t%s\t%s\n' "$name" skipped 0 >> "$STEPS"
        return 0
    fi
    (( cap > left )) && cap=$left
    echo "== $name (at most ${cap}s): $*"
    t0=$(date +%s)
    timeout --kill-after="$KILL_AFTER_S" "$cap" "$@" > "$OUT/$name.log" 2>&1 || rc=$?
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(( $(date +%s) - t0 ))" >> "$STEPS"
    tail -3 "$OUT/$name.log"
}
