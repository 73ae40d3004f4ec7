#!/bin/bash
# The protection effect of each precision (README "Precision"): first 1,000 CIFAR-10 test images,
# the three robust targets, PGD-10 L-inf, conditions none and mspd, seed 0,
# the first default pair (measured before issue #21's defaults).
# Resumable (run it again to continue); THREADS=N sets torch threads (default 1: a shared machine).
# Then: python benchmarks/precision_table.py. Run from the repository root.
set -e
OUT=benchmarks/results/precision-evaluate
COMMON="--data ../shared/data/cifar10/test.npz --images 1000 --threads ${THREADS:-1} -q
        --targets cifar10-target-resnet18,cifar10-target-preact,cifar10-target-wrn
        --attacks pgd-linf --conditions none,mspd
        --backbone cifar10-backbone-v1 --classifier cifar10-classifier"
mspd-edge evaluate $COMMON -o $OUT/fp32 --precision fp32
mspd-edge evaluate $COMMON -o $OUT/bf16 --precision bf16
mspd-edge evaluate $COMMON -o $OUT/int8 --backend ort --precision int8
# fp16: torch autocast on the CPU; refused by the CLI since (no AMX-FP16 here: no faster than
# fp32), measured at commit fe2710c, which still ran it:
# mspd-edge evaluate $COMMON -o $OUT/fp16 --precision fp16
