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
grep -q 'rank 1' <(grep -v '^rank 1 pid' "$log") || { echo "FAILED: no message names rank 1"; exit 1; }
echo "killed rank: the job exited with status $status within $took s ($(( killed - start )) s after start)"
rm -f "$log"
