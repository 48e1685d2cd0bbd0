#!/usr/bin/env bash
# The test command: every unit, integration and gradient-check test, then the user-facing
# gradient check table.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release
cargo run --release --quiet -- gradcheck
# Every example runs, on small sizes.
cargo run --release --quiet --example fuzz -- all --runs 300
cargo run --release --quiet --example custom_cnn -- --limit-train 2000 --epochs 1 --rounds 1
