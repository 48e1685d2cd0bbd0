#!/usr/bin/env bash
# Time to accuracy (issue 24): `neurite train MODEL --recipe fast` (or any flags) for each
# seed, the whole command under `/usr/bin/time -v`, on an otherwise idle machine.
#
#   bash bench/time_to_accuracy.sh MODEL "SEEDS" [FLAGS...]
#   bash bench/time_to_accuracy.sh resnet20 "0 1 2"
#   bash bench/time_to_accuracy.sh lenet5 "0 1 2" --recipe fast --epochs 9
#
# Without FLAGS the run is `--recipe fast`. Prints one line per seed: the final test
# accuracy, the wall time of the whole command, the peak RSS; each run's directory (with its
# metrics.jsonl: test accuracy and wall seconds per epoch, the time-to-accuracy curve) is
# runs/tta-MODEL-sSEED. Needs `cargo build --release` first (or NEURITE=path/to/binary).
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?usage: time_to_accuracy.sh MODEL "SEEDS" [FLAGS...]}
seeds=${2:?usage: time_to_accuracy.sh MODEL "SEEDS" [FLAGS...]}
shift 2
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(--recipe fast)
bin=${NEURITE:-target/release/neurite}
for s in $seeds; do
  out=runs/tta-$model-s$s
  log=$(mktemp)
  /usr/bin/time -v "$bin" train "$model" "${flags[@]}" --seed "$s" --out "$out" --overwrite \
    --json >"$log.json" 2>"$log"
  acc=$(sed -n 's/.*"accuracy":\([0-9.]*\).*/\1/p' "$log.json" | tail -1)
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
  echo "$model seed $s: test accuracy $acc, wall $wall, peak RSS ${rss} KB (${flags[*]})"
  rm -f "$log" "$log.json"
done
