//! Inputs whose messages misled before, and the other commands.

use super::setups::*;
use super::{case, with_setup, Case};

/// The cases of this group.
pub fn cases() -> Vec<Case> {
    vec![
        // Misleading messages before.
        with_setup(
            "gpt-n-head-0",
            setup_n_head_0,
            &[
                "lm",
                "eval",
                "--weights",
                "{case}/nhead0.safetensors",
                "{text}",
            ],
            &["nhead0.safetensors: metadata gpt.n_head must be at least 1, got 0"],
        ),
        with_setup(
            "gpt-empty-wpe",
            setup_empty_wpe,
            &[
                "lm",
                "eval",
                "--weights",
                "{case}/wpe0.safetensors",
                "{text}",
            ],
            &[
                "wpe0.safetensors: transformer.wpe.weight",
                "block_size",
                "got 0",
            ],
        ),
        with_setup(
            "gpt-n-layer-disagrees",
            setup_n_layer_mismatch,
            &[
                "lm",
                "eval",
                "--weights",
                "{case}/nlayer.safetensors",
                "{text}",
            ],
            &["nlayer.safetensors: metadata gpt.n_layer is 3", "1"],
        ),
        // Other commands.
        case(
            "bench-repeats-0",
            &["bench", "W1", "--repeats", "0"],
            &["--repeats must be at least 1"],
        ),
        case(
            "bench-gemm-huge",
            &["bench", "gemm", "--shapes", "100000x100000x100000"],
            &["--shapes", "100000x100000x100000", "elements"],
        ),
        case(
            "predict-top-0",
            &[
                "predict",
                "mlp",
                "--weights",
                "{mlp}/model.safetensors",
                "--top",
                "0",
                "{case}/x.png",
            ],
            &["--top must be at least 1"],
        ),
        case(
            "compare-limit-beyond-data",
            &[
                "compare",
                "--data",
                "{data}",
                "--limit-train",
                "100,1000",
                "--methods",
                "perceptron",
                "--out",
                "{case}/compare",
            ],
            &["--limit-train 1000", "160 training images"],
        ),
    ]
}
