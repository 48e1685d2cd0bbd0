//! Inputs that panicked before, and inputs that asked for unbounded resources.

use super::setups::*;
use super::{case, with_setup, Case};

/// The cases of this group.
pub fn cases() -> Vec<Case> {
    vec![
        // Panics before.
        with_setup(
            "vocab-65-text",
            setup_vocab65,
            &[
                "lm",
                "eval",
                "--weights",
                "{case}/v65.safetensors",
                "{text}",
            ],
            &[
                "v65.safetensors",
                "byte 104 (0x68) at position 0",
                "65 symbols",
            ],
        ),
        with_setup(
            "vocab-65-prompt",
            setup_vocab65,
            &[
                "lm",
                "sample",
                "--weights",
                "{case}/v65.safetensors",
                "--prompt",
                "é",
            ],
            &[
                "--prompt",
                "0xc3",
                "position 0",
                "65 symbols",
                "v65.safetensors",
            ],
        ),
        with_setup(
            "wte-1d",
            setup_wte_1d,
            &[
                "lm",
                "eval",
                "--weights",
                "{case}/wte1d.safetensors",
                "{text}",
            ],
            &["wte1d.safetensors", "transformer.wte.weight", "[2048]"],
        ),
        case(
            "perceptron-0-train",
            &["classic", "perceptron", "--data", "{empty_train}"],
            &["empty-train", "train-images-idx3-ubyte holds 0 images"],
        ),
        case(
            "linear-svm-0-train",
            &["classic", "linear-svm", "--data", "{empty_train}"],
            &["train-images-idx3-ubyte holds 0 images"],
        ),
        case(
            "lm-batch-overflow",
            lm_train!("--batch-size", "18446744073709551615"),
            &["--batch-size must be at most", "18446744073709551615"],
        ),
        // Unbounded resources.
        Case {
            name: "threads-capped",
            args: &["--threads", "100000", "bench", "W1", "--repeats", "0"],
            setup: None,
            env: &[],
            warnings: &["100000 threads asked for (--threads or NEURITE_NUM_THREADS); using"],
            expect: &["--repeats must be at least 1"],
        },
        case(
            "threads-0",
            &["--threads", "0", "bench", "W1"],
            &["--threads must be at least 1"],
        ),
        Case {
            name: "threads-env",
            args: &["bench", "W1"],
            setup: None,
            env: &[("NEURITE_NUM_THREADS", "lots")],
            warnings: &[],
            expect: &["NEURITE_NUM_THREADS", "\"lots\""],
        },
        case(
            "svm-degree",
            &[
                "classic", "svm", "--data", "{data}", "--kernel", "poly", "--degree", "1000000",
            ],
            &["--degree must be at most 10", "1000000"],
        ),
        case(
            "svm-gamma-inf",
            &["classic", "svm", "--data", "{data}", "--gamma", "inf"],
            &["--gamma", "finite"],
        ),
        case(
            "svm-c-minus-inf",
            &["classic", "svm", "--data", "{data}", "--c", "-inf"],
            &["--c must be a finite number above 0, got -inf"],
        ),
        case(
            "svm-coef0-nan",
            &["classic", "svm", "--data", "{data}", "--coef0", "NaN"],
            &["--coef0 must be a finite number, got NaN"],
        ),
        case(
            "svm-cache-0",
            &["classic", "svm", "--data", "{data}", "--cache-mb", "0"],
            &["--cache-mb must be at least 1"],
        ),
    ]
}
