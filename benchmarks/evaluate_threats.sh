#!/bin/bash
# The threat runs of issue #23 (resumable: run again to continue), after the three models are
# trained and shipped (python scripts/train_embedded.py cifar10-smoothed-025 cifar10-smoothed-050
# cifar10-target-l0). Seed 0. THREADS=N sets torch threads (default 2). Steps 1 and 2 ran with the
# first default pair (FIRST_PAIR), before issue #21's defaults; step 3 uses the default pair.
# 1. certified L2 accuracy of the smoothed targets, first 500 test images, n = 1,000 (CPU);
# 2. sparse-l0 (k = 20, 300 iterations) on the robust targets and the L0-robust one, first 500;
#    the L0-robust one again at 1,000 iterations (not levelled off at 300 there);
# 3. AutoAttack standard L-inf 8/255 beside PGD-10 on the same images: PreAct on the first 1,000,
#    the other two robust targets on the first 500 (about 8 s per image and condition on the
#    2-core Xeon: ~9 h in all; a GPU: DEVICE=cuda). The folders resume; PGD joins a finished one.
# On the 2-core Xeon (2026-12-07): step 1 took 26 minutes, step 2 19 minutes (+ 40 at 1,000).
# Run from the repository root.
set -e
DATA=../shared/data/cifar10/test.npz
FIRST_PAIR="--backbone cifar10-backbone-v1 --classifier cifar10-classifier"
RUN="--data $DATA --threads ${THREADS:-2} --device ${DEVICE:-cpu}"
mspd-edge evaluate $RUN --images 500 -o benchmarks/results/evaluate-cifar10-certify-500 \
    --targets cifar10-smoothed-025,cifar10-smoothed-050 --certify --conditions none,mspd,reverted-white $FIRST_PAIR
mspd-edge evaluate $RUN --images 500 -o benchmarks/results/evaluate-cifar10-sparse-l0-500 \
    --targets cifar10-target-resnet18,cifar10-target-preact,cifar10-target-wrn,cifar10-target-l0 \
    --attacks sparse-l0 --conditions none,mspd $FIRST_PAIR
mspd-edge evaluate $RUN --images 500 -o benchmarks/results/evaluate-cifar10-sparse-l0-1000-target-l0 \
    --targets cifar10-target-l0 --attacks sparse-l0 --sparse-steps 1000 --conditions none,mspd $FIRST_PAIR
mspd-edge evaluate $RUN --images 1000 -o benchmarks/results/evaluate-cifar10-autoattack-1000-preact \
    --targets cifar10-target-preact --attacks pgd-linf,autoattack --conditions none,mspd
mspd-edge evaluate $RUN --images 500 -o benchmarks/results/evaluate-cifar10-autoattack-500 \
    --targets cifar10-target-resnet18,cifar10-target-wrn --attacks pgd-linf,autoattack --conditions none,mspd
