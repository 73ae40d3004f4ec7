#!/usr/bin/env bash
# Issue #21's training on a lent GPU, in one call under 8 minutes: backbone candidates (FGSM-RS,
# width x epochs) each trained and then judged by the protection it gives (scripts/compare_recipes.py:
# 500 held-out training images, PGD-10 L-inf on the three robust targets), and the airbench label
# classifier for longer (scripts/train_embedded.py, checked on the full test split). Every step is
# resumable (run again with the same OUT to continue) and runs under `timeout` within one overall
# deadline. Needs a CUDA GPU, torch with CUDA, mspd-edge installed and the CIFAR-10 npz files;
# downloads nothing. Run from the repository root:
#
#     bash benchmarks/gpu_train.sh                      # everything under benchmarks/results/gpu-train/
#     OUT=$OUT BACKBONES="16:6 32:10" bash benchmarks/gpu_train.sh
#     DEVICE=cpu LIMIT=2048 IMAGES=20 TEST_IMAGES=200 BACKBONES=8:1 CLASSIFIER_EPOCHS=1 \
#         OUT=/tmp/gpu-train bash benchmarks/gpu_train.sh  # a smoke run of this script on a CPU
#
# Writes under $OUT: env.txt, <step>.log per step, backbone-w<W>-e<E>/ (run, weights, manifest,
# evaluate results, recipes.json), runs/ and weights/ (the classifier's run, fp16 weights and
# manifest), steps.tsv and summary.json; prints the comparison table and the classifier's
# accuracy at the end. Exit status: 0 when every step passed, 1 when one failed or timed out,
# 2 without CUDA (DEVICE=cuda).
set -euo pipefail

OUT="${OUT:-benchmarks/results/gpu-train}"
PYTHON="${PYTHON:-python}"
DEVICE="${DEVICE:-cuda}"
DATA="${DATA:-../shared/data/cifar10}"
BACKBONES="${BACKBONES:-16:6 24:6 32:6 32:10 64:6}"   # width:epochs of each FGSM-RS candidate
IMAGES="${IMAGES:-500}"                # held-out images of the protection check
CLASSIFIER="${CLASSIFIER:-cifar10-classifier-airbench}"
CLASSIFIER_EPOCHS="${CLASSIFIER_EPOCHS:-40}"
TEST_IMAGES="${TEST_IMAGES:-10000}"    # the classifier's check: the full test split
LIMIT="${LIMIT:-0}"                    # > 0: train on the first LIMIT images (smoke runs)
DEADLINE_S="${DEADLINE_S:-450}"        # the whole script, all steps together (8 min = 480 s)
KILL_AFTER_S=10
MIN_STEP_S=20
BACKBONE_S=75 CLASSIFIER_S=150         # per-step caps in seconds (also bounded by the deadline)

mkdir -p "$OUT"
START=$(date +%s)
STEPS="$OUT/steps.tsv"
: > "$STEPS"
source "$(dirname "$0")/gpu_common.sh"
check_env "$DEVICE"
SMOKE=()
(( LIMIT > 0 )) && SMOKE=(--limit "$LIMIT")

run_step classifier "$CLASSIFIER_S" "$PYTHON" scripts/train_embedded.py "$CLASSIFIER" --data "$DATA" \
    --device "$DEVICE" --epochs "$CLASSIFIER_EPOCHS" --test-images "$TEST_IMAGES" \
    --runs "$OUT/runs" --weights "$OUT/weights" "${SMOKE[@]}"
for candidate in $BACKBONES; do
    width=${candidate%:*} epochs=${candidate#*:}
    run_step "backbone-w$width-e$epochs" "$BACKBONE_S" "$PYTHON" scripts/compare_recipes.py \
        --recipes fgsm-rs --width "$width" --epochs "$epochs" --images "$IMAGES" --data "$DATA" \
        --device "$DEVICE" --out "$OUT/backbone-w$width-e$epochs" "${SMOKE[@]}"
done

timeout 60 "$PYTHON" - "$OUT" "$(( $(date +%s) - START ))" "$CLASSIFIER" <<'EOF'
import json, sys
from pathlib import Path

sys.path.insert(0, "scripts")
from compare_recipes import markdown

out, seconds, classifier = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
steps = [dict(zip(("step", "rc", "seconds"), line.split("\t")))
         for line in (out / "steps.tsv").read_text().splitlines()]
table = {}
for path in sorted(out.glob("backbone-w*/recipes.json")):
    for row in json.loads(path.read_text()).values():
        table[path.parent.name] = row
manifest = out / "weights" / f"{classifier}.json"
check = json.loads(manifest.read_text())["training_check"] if manifest.is_file() else None
summary = {"seconds": seconds, "steps": steps, "backbones": table, "classifier": check}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(f"\n== summary ({seconds} s; {out}/summary.json)")
print("steps: " + ", ".join(f"{s['step']} rc={s['rc']} {s['seconds']}s" for s in steps))
print(markdown(table) if table else "no backbone finished")
print(f"{classifier}: " + (f"{100 * check['clean']:.2f}% on {check['test_images']} test images"
                           if check else "not finished"))
sys.exit(1 if any(s["rc"] not in ("0", "skipped") for s in steps) else 0)
EOF
