#!/usr/bin/env bash
# W1/W2 through neurite train (old binary = main before issue 22, new) and PyTorch, 1 epoch, alternating.
set -u
# Usage: bench/loader_speed.sh OLD_BINARY NEW_BINARY  (PyTorch from $PYTHON, default /work/venv/bin/python)
OLD=${1:?old neurite binary}; NEW=${2:?new neurite binary}; PY=${PYTHON:-/work/venv/bin/python}
HERE=$(cd "$(dirname "$0")" && pwd)
cd /tmp
for round in 1 2 3; do
  for m in mlp lenet5; do
    for side in old new torch; do
      case $side in
        old) r=$($OLD train $m --epochs 1 --out /tmp/m-$m-old --overwrite --json 2>/dev/null | tail -1 | python3 -c "import json,sys; print(round(json.load(sys.stdin)['images_per_second']))");;
        new) r=$($NEW train $m --epochs 1 --out /tmp/m-$m-new --overwrite --json 2>/dev/null | tail -1 | python3 -c "import json,sys; d=json.load(sys.stdin); print(round(d['images_per_second']))");;
        torch) r=$($PY $HERE/pytorch/train.py $m --epochs 1 --threads 2 2>&1 | grep -o "[0-9.]* s$" | head -1);;
      esac
      echo "round $round $m $side $r"
    done
  done
done
grep -o '"data_wait_seconds":[0-9.e-]*' /tmp/m-mlp-new/metrics.jsonl /tmp/m-lenet5-new/metrics.jsonl
