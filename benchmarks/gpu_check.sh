#!/usr/bin/env bash
# The GPU checks in one prepared run, for a machine with an NVIDIA GPU that has
# PyTorch but not this project's other dependencies and no network:
#
#   benchmarks/gpu_check.sh OUTDIR [--device cuda|cpu] [--quick]
#
# 1. installs what is missing from wheels in .whl/ and unpacks bubblewrap and
#    libseccomp from .deb files in .gpu/ (both optional; see docs/benchmarks.md);
# 2. converts the CIFAR-10 JPEG archives in data/cifar10-jpeg/ (or .gpu/) into
#    torchvision's layout;
# 3. runs the CUDA tests (pytest -m gpu), benchmarks/gpu_speed.py (evaluation
#    of the test split: grader vs bare model vs handout loop; the retrain recipe;
#    the grader's retrain item in its sandbox) and benchmarks/gpu_batch.py
#    (several submissions graded at once on the GPU).
#
# Every step has its own time limit and writes its log to OUTDIR, so a step
# that fails or runs out of time leaves the others' results. --quick (with
# --device cpu) is the dry run: tiny sizes, the same code paths.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:?usage: gpu_check.sh OUTDIR [--device cuda|cpu] [--quick]}
shift
DEVICE=cuda QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift ;;
    --quick) QUICK=1 ;;
    *) echo "gpu_check.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
STEPS="$OUT/steps.log"
step() { echo "[$(date +%T)] $*" | tee -a "$STEPS"; }
run() {  # run LIMIT LOG CMD...: a step with its own time limit; its exit status goes to steps.log
  local limit=$1 log=$2; shift 2
  local start=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >>"$OUT/$log" 2>&1
  local rc=$?
  step "  exit $rc after $((SECONDS - start)) s: $* (log: $log)"
}

step "gpu_check: device $DEVICE, quick $QUICK, $(nproc) CPUs"
nvidia-smi >"$OUT/machine.txt" 2>&1 || echo "no nvidia-smi" >"$OUT/machine.txt"
"$PY" - >>"$OUT/machine.txt" 2>&1 <<'EOF'
import platform, sys, torch
print("python", sys.version.split()[0], platform.machine())
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), torch.cuda.get_device_properties(0).total_memory >> 20, "MiB")
EOF

if compgen -G ".whl/*.whl" >/dev/null; then
  step "installing $(ls .whl | wc -l) wheels"
  run 300 setup.log "$PY" -m pip install -q --no-index --no-deps --no-compile --disable-pip-version-check .whl/*.whl
fi
if compgen -G ".gpu/*.deb" >/dev/null && ! command -v bwrap >/dev/null; then
  step "unpacking $(ls .gpu/*.deb | wc -l) .deb files into /opt/autograder-debs"
  for deb in .gpu/*.deb; do dpkg -x "$deb" /opt/autograder-debs; done
  ln -sf /opt/autograder-debs/usr/bin/bwrap /usr/local/bin/bwrap
  echo /opt/autograder-debs/usr/lib/x86_64-linux-gnu >/etc/ld.so.conf.d/zz-autograder-debs.conf
  ldconfig
fi
"$PY" -c 'import autograder.grade, nbclient, thop, pyseccomp' >>"$OUT/setup.log" 2>&1 \
  && step "imports ok" || step "WARNING: imports failed (see setup.log)"
"$PY" -c 'from autograder.sandbox import detect_tier; print(detect_tier().as_dict())' >>"$OUT/setup.log" 2>&1
step "sandbox tier: $(tail -1 "$OUT/setup.log")"

mkdir -p data/cifar10-jpeg
cp -n .gpu/cifar10-jpeg-*.tar.xz data/cifar10-jpeg/ 2>/dev/null
run 300 setup.log "$PY" benchmarks/cifar_jpeg.py

if [ "$QUICK" = 1 ]; then
  speed=(--device "$DEVICE" --model simple --epochs 1 --grader-epochs 1 --images 500 --train-images 2000 --no-write)
  batch=(--device "$DEVICE" --submissions 2 --workers 2 --images 500)
else
  speed=(--device "$DEVICE" --epochs 8 --grader-epochs 8)
  batch=(--device "$DEVICE" --submissions 8 --workers 4)
fi
[ "$DEVICE" = cuda ] && run 150 pytest.log "$PY" -m pytest -q -m gpu -p no:cacheprovider
run 300 gpu_speed.log "$PY" benchmarks/gpu_speed.py "${speed[@]}"
cp docs/benchmarks.md "$OUT/benchmarks.md"
run 200 gpu_batch.log "$PY" benchmarks/gpu_batch.py "${batch[@]}"
step "done"
