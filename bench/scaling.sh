#!/usr/bin/env bash
# Data-parallel scaling on this machine, 1 thread per rank (issue 23's figures): W1, W3 and
# W4 on 1 rank and on 2 ranks (shared memory; TCP; gradients reduced after backward instead
# of during it), and PyTorch DDP (Gloo) on 1 and 2 ranks, alternating, ROUNDS rounds.
#
#   bash bench/scaling.sh [ROUNDS] [PYTHON]      # PYTHON: a venv's python with torch
#
# Prints one line per measurement, "side config workload value"; take medians per
# (side, config, workload). Needs `cargo build --release --features mpi` first.
set -uo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
py=${2:-}
export OMPI_MCA_btl_vader_single_copy_mechanism=none
flags=(--oversubscribe --bind-to none)
[ "$(id -u)" -ne 0 ] || flags+=(--allow-run-as-root)
bin=target/release/neurite
value() { sed -n 's/.*"value":\([0-9.]*\).*/\1/p'; }
for r in $(seq "$rounds"); do
  for w in W1 W3 W4; do
    echo "neurite 1rank $w $($bin bench $w --threads 1 --repeats 7 --json | value)"
    echo "neurite 2shm $w $(mpirun "${flags[@]}" -np 2 $bin bench $w --threads 1 --repeats 7 --json | value)"
    echo "neurite 2tcp $w $(mpirun "${flags[@]}" --mca btl tcp,self -np 2 $bin bench $w --threads 1 --repeats 7 --json | value)"
    echo "neurite 2shm-no-overlap $w $(mpirun "${flags[@]}" -np 2 $bin bench $w --threads 1 --repeats 7 --json --no-overlap | value)"
  done
  if [ -n "$py" ]; then
    torchrun="$(dirname "$py")/torchrun"
    for n in 1 2; do
      OMP_NUM_THREADS=1 "$torchrun" --nproc_per_node "$n" bench/pytorch/ddp.py W1 W3 W4 2>/dev/null |
        sed -n "s/^\(W[0-9]\) .*: \([0-9,]*\) .*/pytorch ${n}rank \1 \2/p" | tr -d ,
    done
  fi
  echo "round $r done"
done
