#!/usr/bin/env bash
# Set up the autograder on a Debian/Ubuntu machine (or Gradescope's image).
#
#   ./setup.sh            grader + sandbox (bubblewrap), in ./.venv
#   ./setup.sh --dev      also test tools, Chromium (report screenshot test), and Slurm +
#                         munge (the single-node cluster the batch tests start)
#   ./setup.sh --data     also download CIFAR-10 / Fashion-MNIST / MNIST into ./data
#   ./setup.sh --cpu      the CPU-only torch build: no CUDA libraries, ~290 MB less
#                         memory per process (Gradescope's 768 MB); needs network
#
# Installs the exact versions in constraints.txt (grades are reproducible with them).
# Never fails for lack of internet: a dataset that cannot be downloaded is
# skipped with a message. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

DEV=0 DATA=0 CPU=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    --data) DATA=1 ;;
    --cpu) CPU=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

# --- system packages: bubblewrap (tier A sandbox), libseccomp (tier B), chromium (tests)
packages=(bubblewrap libseccomp2)
[ "$DEV" = 1 ] && packages+=(chromium slurm-wlm munge)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${missing[@]}" >/dev/null; } \
      || say "WARNING: could not install ${missing[*]}; the grader will use a weaker sandbox tier"
  else
    say "WARNING: please install ${missing[*]} (sudo apt-get install ${missing[*]})"
  fi
fi

# --- Python: a world-readable interpreter, so the sandbox's own uid can run it
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in /usr/bin/python3 python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys, venv; assert sys.version_info >= (3, 11)' 2>/dev/null; then
      PY="$candidate"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "setup: Python >= 3.11 with venv is required: the pinned versions in constraints.txt need it (Ubuntu 22.04: apt-get install python3.11 python3.11-venv, then PYTHON=python3.11 ./setup.sh)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PY"
  "$PY" -m venv .venv
fi
if [ "$CPU" = 1 ]; then
  # The same pinned versions, as PyTorch's CPU wheels (2.14.1+cpu satisfies ==2.14.1).
  pins=$(grep -E '^torch(vision)?==' constraints.txt | tr '\n' ' ')
  say "installing the CPU-only build of $pins"
  # shellcheck disable=SC2086
  .venv/bin/python -m pip install -q --disable-pip-version-check \
      --index-url "${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}" $pins \
    || say "WARNING: the CPU-only torch build could not be installed (no network?); using the default build"
fi
extras=""
[ "$DEV" = 1 ] && extras="[test]"
say "installing the autograder$extras with the versions in constraints.txt (torch is large the first time)"
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".${extras}"
# Lecture 15 code may use the course book's helpers (from d2l import torch as d2l). d2l 1.0.3
# pins numpy 1.23.5, pandas 2.0.3, matplotlib 3.7.2, jupyter 1.0.0, ...: installed without
# them; what it imports at run time is in the grader's pins (requests among them). docs/labs.md
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -c constraints.txt d2l

# The sandbox runs Python as a dedicated unprivileged uid: it must be able to read .venv.
dir="$(pwd)"
while [ "$dir" != "/" ]; do
  case "$(stat -c %A "$dir" | cut -c10)" in x|t) ;; *)
    say "WARNING: $dir is not traversable by other users; the sandbox uid cannot use .venv here."
    say "         Move the checkout (e.g. to /opt) or run: chmod o+x $dir"
    break ;;
  esac
  dir="$(dirname "$dir")"
done

if [ "$DATA" = 1 ]; then
  .venv/bin/autograder data all --data-root data \
    || say "dataset download skipped (no network?); grading needs --data-root with the test splits"
fi
say "done. Try: .venv/bin/autograder demo"
