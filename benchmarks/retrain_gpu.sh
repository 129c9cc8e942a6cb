#!/bin/bash
# The retrain recipe on a GPU, real CIFAR-10: ResNet-18 and SimpleCNN with the
# rubric's defaults (and a few epoch counts), plus the old recipe's settings for
# contrast. Needs the JPEG archives in data/cifar10-jpeg/ and writes one JSON per
# run (test accuracy after each epoch) and summary.txt under $OUT (default out/).
#     OUT=out/retrain-gpu bash benchmarks/retrain_gpu.sh
set -u
OUT=${OUT:-out/retrain-gpu}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
ROOT=${CIFAR_ROOT:-/tmp/cifar10-real}
$PY benchmarks/cifar_jpeg.py --archives data/cifar10-jpeg --out "$ROOT" || exit 1
run() {
    name=$1; shift
    echo "=== $name: $*"
    timeout 200 $PY benchmarks/retrain_real.py "$@" --device cuda --data-root "$ROOT" --budget 600 \
        --json "$OUT/$name.json" 2>&1 | grep -v '^ \|^{\|^}' | tail -14
}
run resnet18_e10 resnet18
run simple_e10 simple_cnn
run simple_e6 simple_cnn --epochs 6
run simple_old simple_cnn --epochs 6 --set WARMUP_FROM=0.2 --set CLIP=1e9 --set LABEL_SMOOTHING=0.2
run resnet18_e8 resnet18 --epochs 8
run resnet18_e12 resnet18 --epochs 12
$PY - "$OUT" <<'P' | tee "$OUT/summary.txt"
import glob, json, os, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.json")):
    r = json.load(open(f))
    print(os.path.basename(f), r["model"], r["recipe"]["epochs"], "epochs: train", r["train_seconds"], "s, estimate",
          r["estimate_seconds"], "s,", r["failure"] or "ok", [(a["lr"], a["failed"]) for a in r["attempts"]],
          "test", [round(e["test_accuracy"], 4) for e in r["epochs"]], "at", [round(e["seconds"], 1) for e in r["epochs"]])
P
