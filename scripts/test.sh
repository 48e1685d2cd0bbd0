#!/usr/bin/env bash
# The test command: every unit, integration and gradient-check test, then the user-facing
# gradient check table.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release
cargo run --release --quiet -- gradcheck
# Every example runs, on small sizes.
cargo run --release --quiet --example fuzz -- all --runs 300
cargo run --release --quiet --example char_lm -- --steps 30 --batch-size 8 --block-size 32
cargo run --release --quiet --example train_loop -- --epochs 1 --limit 1000
cargo run --release --quiet --example regression -- --epochs 5 --samples 256
cargo run --release --quiet --example custom_op -- --rows 4 --width 8
cargo run --release --quiet --example spirals -- --points 100 --steps 100
cargo run --release --quiet --example table -- --epochs 5
cargo run --release --quiet --example table -- --data tests/data/diabetes.csv --target target \
    --epochs 5
cargo run --release --quiet --example image_folder -- --per-class 30 --epochs 1
cargo run --release --quiet --example distributed -- --steps 100
# Fine-tuning a "PyTorch" LeNet-5: the command makes the checkpoint here (CI has no torch;
# bench/pytorch/examples/export_lenet5.py makes it from PyTorch).
cargo run --release --quiet -- train lenet5 --limit-train 500 --epochs 1 \
    --out target/finetune-pretrained --overwrite --json > /dev/null
cargo run --release --quiet --example finetune -- \
    --weights target/finetune-pretrained/model.safetensors --images 300 --epochs 2 \
    --out target/finetune-pretrained/finetuned.safetensors
cargo run --release --quiet --example custom_cnn -- --limit-train 2000 --epochs 1 --rounds 1
cargo run --release --quiet --example loader -- --samples 400 --epochs 3
# The core alone builds (what `default-features = false` gives a library user).
cargo build --release --quiet --no-default-features
