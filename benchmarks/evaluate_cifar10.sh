#!/bin/bash
# The documented `mspd-edge evaluate` run of README "Evaluation" (resumable: run it again to
# continue). First 1,000 CIFAR-10 test images, the first default pair (the run predates issue
# #21's defaults: FIRST_PAIR), seed 0; PGD L-inf and L2 on the
# main conditions, PGD L-inf on the ablations; AutoAttack standard on the first 100 images.
# THREADS=N sets torch threads (default 2). Run from the repository root.
set -e
OUT=benchmarks/results/evaluate-cifar10-1000
DATA=../shared/data/cifar10/test.npz
FIRST_PAIR="--backbone cifar10-backbone-v1 --classifier cifar10-classifier"
TARGETS=cifar10-target-resnet18,cifar10-target-preact,cifar10-target-wrn,cifar10-target-nonrobust
COMMON="--data $DATA --images 1000 -o $OUT --threads ${THREADS:-2} --targets $TARGETS $FIRST_PAIR"
mspd-edge evaluate $COMMON --attacks pgd-linf,pgd-l2 --conditions main
mspd-edge evaluate $COMMON --attacks pgd-linf --conditions ablations
mspd-edge evaluate --data $DATA --images 100 -o benchmarks/results/evaluate-cifar10-autoattack-100 \
    --threads ${THREADS:-2} --targets cifar10-target-preact --attacks autoattack --conditions none,mspd \
    $FIRST_PAIR
