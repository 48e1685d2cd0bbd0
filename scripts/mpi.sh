#!/usr/bin/env bash
# The multi-process checks of the `mpi` feature (.ci/run runs this): the tests of
# tests/mpi.rs on 2 and 3 ranks, the example on 2, and a killed rank ending the job.
# On this 2-core machine 3 ranks need --oversubscribe; as root mpirun needs
# --allow-run-as-root; vader's single-copy (CMA) needs ptrace rights a container may lack.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMPI_MCA_btl_vader_single_copy_mechanism=none
flags=(--oversubscribe --bind-to none)
[ "$(id -u)" -ne 0 ] || flags+=(--allow-run-as-root)
cargo build --release --quiet --features mpi --example distributed
test_bin=$(cargo test --release --features mpi --test mpi --no-run 2>&1 |
  grep -o 'target/release/deps/mpi-[0-9a-f]*' | head -1)
for n in 2 3; do
  echo "== mpirun -np $n tests/mpi.rs"
  timeout 300 mpirun "${flags[@]}" -np "$n" "$test_bin"
done
echo "== mpirun -np 2 examples/distributed"
timeout 120 mpirun "${flags[@]}" -np 2 target/release/examples/distributed --steps 100

echo "== lm train: 2 ranks take the steps of 1 (the same losses up to float summation order)"
cargo build --release --quiet --features mpi --bin neurite
lm=(lm train --steps 20 --eval-interval 10 --batch-size 8 --n-layer 1 --n-head 2 --n-embd 32
    --block-size 32 --threads 1 --overwrite --json)
one=$(target/release/neurite "${lm[@]}" --out target/mpi-lm-1 2>/dev/null | tail -1)
two=$(timeout 120 mpirun "${flags[@]}" -np 2 target/release/neurite "${lm[@]}" --out target/mpi-lm-2 2>/dev/null | tail -1)
field() { sed -n "s/.*\"$1\":\([-0-9.e]*\).*/\1/p" <<<"$2"; }
for k in train_loss val_loss; do
  a=$(field "$k" "$one"); b=$(field "$k" "$two")
  awk -v a="$a" -v b="$b" -v k="$k" 'BEGIN { d = a - b; if (d < 0) d = -d;
    if (a == "" || d > 1e-4 * a) { print "FAILED: " k " " a " (1 rank) vs " b " (2 ranks)"; exit 1 }
    print k ": " a " (1 rank), " b " (2 ranks)" }'
done

echo "== a killed rank ends the job"
log=$(mktemp)
start=$(date +%s)
timeout 60 mpirun "${flags[@]}" -np 2 target/release/examples/distributed \
  --print-pid --steps 100000000 >"$log" 2>&1 &
job=$!
for _ in $(seq 100); do grep -q '^rank 1 pid' "$log" && break; sleep 0.1; done
pid=$(sed -n 's/^rank 1 pid \([0-9]*\)$/\1/p' "$log")
sleep 1
kill -9 "$pid"
killed=$(date +%s)
status=0
wait "$job" || status=$?
took=$(( $(date +%s) - killed ))
cat "$log" | tail -5
if [ "$status" -eq 0 ] || [ "$status" -eq 124 ] || [ "$took" -gt 20 ]; then
  echo "FAILED: the job exited with $status $took s after rank 1 was killed"
  exit 1
fi
grep -q 'error: rank 1 (pid' "$log" || { cat "$log"; echo "FAILED: no error names rank 1"; exit 1; }
echo "killed rank: the job exited with status $status within $took s ($(( killed - start )) s after start)"
rm -f "$log"

echo "== train: 2 ranks take the steps of 1 (lenet5; the same losses up to float summation order)"
tr=(train lenet5 --limit-train 2000 --batch-size 64 --threads 1 --overwrite --json)
one=$(target/release/neurite "${tr[@]}" --epochs 2 --out target/mpi-tr-1 2>/dev/null | tail -1)
two=$(timeout 300 mpirun "${flags[@]}" -np 2 target/release/neurite "${tr[@]}" --epochs 2 --out target/mpi-tr-2 2>/dev/null | tail -1)
close() { # name a b relative-tolerance
  awk -v k="$1" -v a="$2" -v b="$3" -v t="$4" 'BEGIN { d = a - b; if (d < 0) d = -d;
    if (a == "" || b == "" || d > t * (a < 0 ? -a : a)) { print "FAILED: " k " " a " vs " b; exit 1 }
    print k ": " a " vs " b }'
}
close "test loss, 1 rank vs 2 ranks" "$(field loss "$one")" "$(field loss "$two")" 1e-4

echo "== train --resume onto another number of ranks (2 -> 1, 2 -> 3) continues the same run"
# Epoch 1 on 2 ranks, then epoch 2 on 1, 2 or 3 ranks: the same results up to float order.
for n in 1 2 3; do
  timeout 300 mpirun "${flags[@]}" -np 2 target/release/neurite "${tr[@]}" --epochs 1 --out "target/mpi-re-$n" >/dev/null 2>&1
  res=(train lenet5 --limit-train 2000 --batch-size 64 --threads 1 --json --resume --epochs 2 --out "target/mpi-re-$n")
  if [ "$n" -eq 1 ]; then
    r=$(target/release/neurite "${res[@]}" 2>/dev/null | tail -1)
  else
    r=$(timeout 300 mpirun "${flags[@]}" -np "$n" target/release/neurite "${res[@]}" 2>/dev/null | tail -1)
  fi
  [ "$n" -eq 2 ] && base=$r
  eval "res_$n=\$r"
done
close "resumed test loss, 2 ranks then 1 vs 2 then 2" "$(field loss "$base")" "$(field loss "$res_1")" 1e-4
close "resumed test loss, 2 ranks then 3 vs 2 then 2" "$(field loss "$base")" "$(field loss "$res_3")" 1e-4

echo "== train: a killed rank ends the job with an error naming it; the last checkpoint resumes"
out=target/mpi-kill
rm -rf "$out" # A checkpoint of an earlier run would end the wait below at once.
log=$(mktemp)
timeout 300 mpirun "${flags[@]}" -np 2 target/release/neurite train lenet5 --limit-train 6000 \
  --epochs 20 --threads 1 --overwrite --out "$out" >"$log" 2>&1 &
job=$!
for _ in $(seq 600); do [ -f "$out/checkpoint.safetensors" ] && break; sleep 0.1; done
[ -f "$out/checkpoint.safetensors" ] || { cat "$log"; echo "FAILED: no checkpoint"; exit 1; }
# Rank 1: the neurite process whose environment says so.
pid=""
for _ in $(seq 50); do
  for p in $(pgrep -f "neurite train lenet5 --limit-train 6000"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && pid=$p
  done
  [ -n "$pid" ] && break
  sleep 0.1
done
[ -n "$pid" ] || { echo "FAILED: rank 1 not found"; exit 1; }
kill -9 "$pid"
killed=$(date +%s)
status=0
wait "$job" || status=$?
took=$(( $(date +%s) - killed ))
tail -3 "$log"
if [ "$status" -eq 0 ] || [ "$status" -eq 124 ] || [ "$took" -gt 20 ]; then
  echo "FAILED: the job exited with $status $took s after rank 1 was killed"
  exit 1
fi
grep 'error: rank 1 (pid' "$log" || { cat "$log"; echo "FAILED: no error names rank 1"; exit 1; }
r=$(target/release/neurite train lenet5 --limit-train 6000 --threads 1 --out "$out" \
  --resume --epochs 2 --json 2>/dev/null | tail -1)
[ "$(field epochs "$r")" = 2 ] || { echo "FAILED: the run did not resume: $r"; exit 1; }
echo "killed rank: the job exited with status $status within $took s; resumed to epoch 2: $r"
rm -f "$log"
