#!/usr/bin/env bash
# Trains `vit` with variants of the spec's Q4 recipe side by side (one process each), in
# PyTorch, on a GPU: the search that chose neurite's `vit` defaults (docs/recipes.md).
#
#   bash bench/pytorch/search_vit_recipe.sh DATA_DIR LOG_DIR [DEVICE]
#
# One log per variant in LOG_DIR (its per-epoch test accuracy); a summary line each at the end.
set -u
data=${1:?Fashion-MNIST directory}
logs=${2:?log directory}
device=${3:-cuda}
here=$(dirname "$0")
mkdir -p "$logs"
run() { # NAME ARGS...
    local name=$1
    shift
    PYTHONUNBUFFERED=1 python3 "$here/train.py" vit --data "$data" --device "$device" --threads 1 "$@" \
        >"$logs/$name.log" 2>&1 &
}
run spec                                   # crop + flip, decay on all parameters, 30 epochs
run spec-seed1 --seed 1
run matrices --decay matrices              # no decay on biases, norms, class token, positions
run flip --augment flip
run none --augment none
run flip-matrices --augment flip --decay matrices
run matrices-45 --decay matrices --epochs 45
run spec-60 --epochs 60
wait
for f in "$logs"/*.log; do
    printf '%-16s %s\n' "$(basename "$f" .log)" "$(grep '^epoch' "$f" | tail -1)"
done
