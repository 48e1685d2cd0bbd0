//! Bad inputs to the `neurite` command, table-driven: each [`Case`] runs the release binary
//! and checks that it ends with exit code 1 and exactly one `error:` line on stderr (only
//! the documented warnings may precede it) holding the expected words, without a panic,
//! and without writing or changing any file in the case's directory (which holds a copy of
//! an earlier good run of each kind, compared byte for byte).
//!
//! To add a case, push a [`Case`] in [`cases`]: its arguments may use the placeholders of
//! [`Fixture::expand`]; `setup` writes what the case needs (a broken checkpoint) into the
//! case's directory before the snapshot is taken.

mod common;

use common::write_split;
use neurite::checkpoint::Checkpoint;
use neurite::models::{Gpt, GptConfig};
use neurite::nn::ModuleExt;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One bad invocation and what its error must say.
struct Case {
    /// A short name, also the case's directory.
    name: &'static str,
    /// The arguments, with placeholders (see [`Fixture::expand`]).
    args: &'static [&'static str],
    /// Writes files the case needs into its directory (given), before the snapshot.
    setup: Option<fn(&Path)>,
    /// Environment variables for the run.
    env: &'static [(&'static str, &'static str)],
    /// The text each warning line must hold, one per line in order, before the error line
    /// (documented warnings only; usually none).
    warnings: &'static [&'static str],
    /// Words the error line must hold.
    expect: &'static [&'static str],
}

/// A case with no setup, environment or warnings.
const fn case(
    name: &'static str,
    args: &'static [&'static str],
    expect: &'static [&'static str],
) -> Case {
    Case {
        name,
        args,
        setup: None,
        env: &[],
        warnings: &[],
        expect,
    }
}

/// A case whose `setup` writes files first.
const fn with_setup(
    name: &'static str,
    setup: fn(&Path),
    args: &'static [&'static str],
    expect: &'static [&'static str],
) -> Case {
    Case {
        name,
        args,
        setup: Some(setup),
        env: &[],
        warnings: &[],
        expect,
    }
}

/// The small inputs every case starts from, built once.
struct Fixture {
    root: PathBuf,
    /// A fake Fashion-MNIST directory: 160 training and 40 test images of 28 x 28.
    data: PathBuf,
    /// The same with 0 training images.
    empty_train: PathBuf,
    /// The same with 0 test images.
    empty_test: PathBuf,
    /// A short ASCII text.
    text: PathBuf,
    /// A good `neurite train mlp` run directory.
    mlp: PathBuf,
    /// A good tiny gpt checkpoint directory (model.safetensors).
    gpt: PathBuf,
    /// A good perceptron saved by `neurite classic perceptron --save`.
    perceptron: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let root = std::env::temp_dir().join(format!("neurite-bad-inputs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let f = Fixture {
            data: root.join("data"),
            empty_train: root.join("empty-train"),
            empty_test: root.join("empty-test"),
            text: root.join("text.txt"),
            mlp: root.join("mlp"),
            gpt: root.join("gpt"),
            perceptron: root.join("perceptron.safetensors"),
            root,
        };
        fake_data(&f.data, 160, 40);
        fake_data(&f.empty_train, 0, 40);
        fake_data(&f.empty_test, 160, 0);
        std::fs::write(&f.text, "hello, small world. ".repeat(40)).unwrap();
        let (code, _, err) = neurite(
            &[
                "--threads",
                "1",
                "train",
                "mlp",
                "--data",
                f.data.to_str().unwrap(),
                "--epochs",
                "1",
                "--batch-size",
                "32",
                "--out",
                f.mlp.to_str().unwrap(),
                "--json",
            ],
            &[],
        );
        assert_eq!(code, 0, "the good mlp run failed: {err}");
        let (code, _, err) = neurite(
            &[
                "--threads",
                "1",
                "classic",
                "perceptron",
                "--data",
                f.data.to_str().unwrap(),
                "--epochs",
                "1",
                "--save",
                f.perceptron.to_str().unwrap(),
            ],
            &[],
        );
        assert_eq!(code, 0, "the good perceptron run failed: {err}");
        std::fs::create_dir_all(&f.gpt).unwrap();
        tiny_gpt().save(&f.gpt.join("model.safetensors")).unwrap();
        f
    }

    /// The case's arguments with `{data}`, `{empty_train}`, `{empty_test}`, `{text}`,
    /// `{perceptron}` (the fixture's files), `{mlp}`, `{gpt}` (the case's copies of the good
    /// runs) and `{case}` (the case's directory) replaced.
    fn expand(&self, arg: &str, case_dir: &Path) -> String {
        let p = |p: &Path| p.to_str().unwrap().to_string();
        arg.replace("{data}", &p(&self.data))
            .replace("{empty_train}", &p(&self.empty_train))
            .replace("{empty_test}", &p(&self.empty_test))
            .replace("{text}", &p(&self.text))
            .replace("{perceptron}", &p(&self.perceptron))
            .replace("{mlp}", &p(&case_dir.join("mlp")))
            .replace("{gpt}", &p(&case_dir.join("gpt")))
            .replace("{case}", &p(case_dir))
    }
}

/// A gpt of 1 layer, 2 heads, 8 channels, block 8, vocabulary 256, as `lm train` saves it.
fn tiny_gpt() -> Checkpoint {
    let config = GptConfig {
        vocab: 256,
        block_size: 8,
        n_layer: 1,
        n_head: 2,
        n_embd: 8,
    };
    let model = Gpt::new(config);
    let mut ck = Checkpoint::new(model.state_dict());
    ck.metadata.insert("model".into(), "gpt".into());
    ck.metadata.extend(config.to_metadata());
    ck
}

/// An MNIST-layout directory of `n_train` and `n_test` patterned images, labels 0 to 9.
fn fake_data(dir: &Path, n_train: u32, n_test: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n) in [("train", n_train), ("t10k", n_test)] {
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        let images: Vec<u8> = (0..n as usize * 784)
            .map(|i| ((i % 784) * 7 + (i / 784 % 10) * 25) as u8)
            .collect();
        write_split(dir, prefix, &images, &labels);
    }
}

/// Runs the binary: (exit code, stdout, stderr).
fn neurite(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_neurite"))
        .args(args)
        .env_remove("NEURITE_NUM_THREADS")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Copies the regular files of `from` into `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// Loads `from`, lets `edit` change it, writes it as `to` (as it is: `Checkpoint::save`
/// would refuse the non-finite weights some cases need).
fn edit_checkpoint(from: &Path, to: &Path, edit: impl FnOnce(&mut Checkpoint)) {
    let mut ck = Checkpoint::load(from).unwrap();
    edit(&mut ck);
    std::fs::write(to, ck.to_bytes().unwrap()).unwrap();
}

/// Replaces the tensor `name` of `ck`.
fn set_tensor(ck: &mut Checkpoint, name: &str, t: neurite::Tensor) {
    let slot = ck.tensors.iter_mut().find(|(n, _)| n == name).unwrap();
    slot.1 = t;
}

/// The case's gpt checkpoint edited into `{case}/NAME.safetensors`.
fn gpt_variant(dir: &Path, name: &str, edit: impl FnOnce(&mut Checkpoint)) {
    edit_checkpoint(
        &dir.join("gpt/model.safetensors"),
        &dir.join(format!("{name}.safetensors")),
        edit,
    );
}

/// Every float tensor of `ck` set to NaN.
fn all_nan(ck: &mut Checkpoint) {
    for (_, t) in ck.tensors.iter_mut() {
        *t = neurite::Tensor::from_vec(vec![f32::NAN; t.numel()], t.shape());
    }
}

fn setup_vocab65(dir: &Path) {
    gpt_variant(dir, "v65", |ck| {
        for name in ["transformer.wte.weight", "lm_head.weight"] {
            let t = ck.get(name).unwrap().clone();
            let rows = t.to_vec()[..65 * 8].to_vec();
            set_tensor(ck, name, neurite::Tensor::from_vec(rows, &[65, 8]));
        }
        ck.metadata.insert("gpt.vocab".into(), "65".into());
    });
}

fn setup_wte_1d(dir: &Path) {
    gpt_variant(dir, "wte1d", |ck| {
        let t = ck.get("transformer.wte.weight").unwrap().clone();
        set_tensor(
            ck,
            "transformer.wte.weight",
            neurite::Tensor::from_vec(t.to_vec(), &[256 * 8]),
        );
    });
}

fn setup_n_head_0(dir: &Path) {
    gpt_variant(dir, "nhead0", |ck| {
        ck.metadata.insert("gpt.n_head".into(), "0".into());
    });
}

fn setup_empty_wpe(dir: &Path) {
    gpt_variant(dir, "wpe0", |ck| {
        set_tensor(
            ck,
            "transformer.wpe.weight",
            neurite::Tensor::from_vec(vec![], &[0, 8]),
        );
    });
}

fn setup_n_layer_mismatch(dir: &Path) {
    gpt_variant(dir, "nlayer", |ck| {
        ck.metadata.insert("gpt.n_layer".into(), "3".into());
    });
}

fn setup_gpt_says_resnet(dir: &Path) {
    gpt_variant(dir, "resnet", |ck| {
        ck.metadata.insert("model".into(), "resnet20".into());
    });
}

fn setup_gpt_nan(dir: &Path) {
    gpt_variant(dir, "nan", all_nan);
}

fn setup_mlp_nan(dir: &Path) {
    edit_checkpoint(
        &dir.join("mlp/model.safetensors"),
        &dir.join("nan.safetensors"),
        all_nan,
    );
}

fn setup_mlp_std_0(dir: &Path) {
    edit_checkpoint(
        &dir.join("mlp/model.safetensors"),
        &dir.join("std0.safetensors"),
        |ck| {
            ck.metadata.insert("normalize.std".into(), "0".into());
        },
    );
}

fn setup_mlp_3_channels(dir: &Path) {
    edit_checkpoint(
        &dir.join("mlp/model.safetensors"),
        &dir.join("rgb.safetensors"),
        |ck| {
            ck.metadata
                .insert("normalize.mean".into(), "0.5,0.5,0.5".into());
            ck.metadata.insert("normalize.std".into(), "1,1,1".into());
        },
    );
}

fn setup_resume_bad_lr(dir: &Path) {
    let path = dir.join("mlp/checkpoint.safetensors");
    edit_checkpoint(&path, &path, |ck| {
        ck.metadata.insert("train.lr".into(), "-1".into());
    });
}

fn setup_perceptron_nan(dir: &Path) {
    let from = dir.join("p.safetensors");
    std::fs::copy(dir.join("../../perceptron.safetensors"), &from).unwrap();
    edit_checkpoint(&from, &dir.join("pnan.safetensors"), all_nan);
}

fn setup_perceptron_no_classes(dir: &Path) {
    let from = dir.join("p.safetensors");
    std::fs::copy(dir.join("../../perceptron.safetensors"), &from).unwrap();
    edit_checkpoint(&from, &dir.join("p0.safetensors"), |ck| {
        ck.metadata.insert("classic.classes".into(), "0".into());
    });
}

/// Common arguments of a quick image training run into the case's copy of the mlp run.
macro_rules! train_mlp {
    ($($extra:expr),*) => {
        &["train", "mlp", "--data", "{data}", "--epochs", "1", "--out", "{mlp}", $($extra),*]
    };
}

/// Common arguments of a quick gpt training run into the case's copy of the gpt run.
macro_rules! lm_train {
    ($($extra:expr),*) => {
        &["lm", "train", "{text}", "--n-layer", "1", "--n-head", "2", "--n-embd", "8",
          "--block-size", "8", "--steps", "1", "--out", "{gpt}", $($extra),*]
    };
}

fn cases() -> Vec<Case> {
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
        // Silently accepted before.
        case(
            "train-0-images",
            &[
                "train",
                "mlp",
                "--data",
                "{empty_train}",
                "--epochs",
                "1",
                "--out",
                "{mlp}",
            ],
            &["train-images-idx3-ubyte holds 0 images"],
        ),
        case(
            "train-limit-0",
            train_mlp!("--limit-train", "0"),
            &["--limit-train must be at least 1"],
        ),
        case(
            "train-limit-beyond-data",
            train_mlp!("--limit-train", "1000"),
            &["--limit-train 1000", "160 training images"],
        ),
        case(
            "eval-0-test-images",
            &[
                "eval",
                "mlp",
                "--data",
                "{empty_test}",
                "--weights",
                "{mlp}/model.safetensors",
            ],
            &["t10k-images-idx3-ubyte holds 0 images"],
        ),
        case(
            "classic-0-test-images",
            &["classic", "perceptron", "--data", "{empty_test}"],
            &["t10k-images-idx3-ubyte holds 0 images"],
        ),
        case(
            "sample-temperature-nan",
            &[
                "lm",
                "sample",
                "--weights",
                "{gpt}/model.safetensors",
                "--temperature",
                "NaN",
            ],
            &["--temperature must be a finite number, 0 or above, got NaN"],
        ),
        case(
            "sample-temperature-negative",
            &[
                "lm",
                "sample",
                "--weights",
                "{gpt}/model.safetensors",
                "--temperature",
                "-1",
            ],
            &["--temperature", "got -1"],
        ),
        case(
            "sample-tokens-0",
            &[
                "lm",
                "sample",
                "--weights",
                "{gpt}/model.safetensors",
                "--tokens",
                "0",
            ],
            &["--tokens must be at least 1, got 0"],
        ),
        case(
            "sample-top-k",
            &[
                "lm",
                "sample",
                "--weights",
                "{gpt}/model.safetensors",
                "--top-k",
                "300",
            ],
            &["--top-k 300", "256"],
        ),
        case(
            "lm-lr-0",
            lm_train!("--lr", "0"),
            &["--lr must be a finite number above 0, got 0"],
        ),
        case(
            "lm-lr-minus-inf",
            lm_train!("--lr", "-inf"),
            &["--lr must be a finite number above 0, got -inf"],
        ),
        case(
            "lm-n-embd-huge",
            &[
                "lm",
                "train",
                "{text}",
                "--n-embd",
                "18446744073709551615",
                "--out",
                "{gpt}",
            ],
            &["--n-embd must be at most"],
        ),
        case(
            "lm-block-huge",
            &[
                "lm",
                "train",
                "{text}",
                "--block-size",
                "100000",
                "--out",
                "{gpt}",
            ],
            &["--block-size must be at most"],
        ),
        case(
            "train-lr-0",
            train_mlp!("--lr", "0"),
            &["--lr must be a finite number above 0, got 0"],
        ),
        case(
            "train-lr-minus-inf",
            train_mlp!("--lr", "-inf"),
            &["--lr must be a finite number above 0, got -inf"],
        ),
        case(
            "train-lr-nan",
            train_mlp!("--lr", "NaN"),
            &["--lr must be a finite number above 0, got NaN"],
        ),
        case(
            "train-momentum-nan",
            train_mlp!("--momentum", "NaN"),
            &["--momentum must lie in [0, 1), got NaN"],
        ),
        case(
            "train-weight-decay-minus-inf",
            train_mlp!("--weight-decay", "-inf"),
            &["--weight-decay", "got -inf"],
        ),
        case(
            "train-clip-grad-0",
            train_mlp!("--clip-grad", "0"),
            &["--clip-grad must be a finite number above 0"],
        ),
        case(
            "train-batch-huge",
            train_mlp!("--batch-size", "18446744073709551615"),
            &["--batch-size must be at most 65536"],
        ),
        case(
            "train-epochs-huge",
            &[
                "train",
                "mlp",
                "--data",
                "{data}",
                "--epochs",
                "18446744073709551615",
                "--out",
                "{mlp}",
            ],
            &["--epochs must be at most"],
        ),
        case(
            "train-warmup-negative",
            train_mlp!("--warmup", "-1"),
            &["--warmup '-1'"],
        ),
        case(
            "train-warmup-steps-beyond-run",
            train_mlp!("--warmup", "1000steps"),
            &["--warmup 1000steps is longer than the run"],
        ),
        case(
            "train-warmup-epochs-beyond-run",
            train_mlp!("--warmup", "3"),
            &["--warmup 3 (epochs) is longer than the run"],
        ),
        case(
            "classic-epochs-0",
            &["classic", "perceptron", "--data", "{data}", "--epochs", "0"],
            &["--epochs must be at least 1, got 0"],
        ),
        case(
            "classic-alpha-nan",
            &[
                "classic",
                "perceptron",
                "--data",
                "{data}",
                "--alpha",
                "NaN",
            ],
            &["--alpha must be a finite number, 0 or above, got NaN"],
        ),
        case(
            "classic-penalty",
            &[
                "classic",
                "perceptron",
                "--data",
                "{data}",
                "--penalty",
                "l3",
            ],
            &["--penalty", "l3"],
        ),
        case(
            "schedule-negative-period",
            train_mlp!("--schedule", "step:-1:2"),
            &["--schedule \"step:-1:2\"", "period"],
        ),
        case(
            "schedule-missing-factor",
            train_mlp!("--schedule", "step:2"),
            &["--schedule", "unknown schedule \"step:2\""],
        ),
        case(
            "schedule-factor-nan",
            train_mlp!("--schedule", "exp:NaN"),
            &["--schedule \"exp:NaN\"", "factor", "finite number above 0"],
        ),
        case(
            "train-over-an-earlier-run",
            train_mlp!("--seed", "3"),
            &[
                "already holds a mlp run (epoch 1 of 1)",
                "--resume",
                "--overwrite",
            ],
        ),
        case(
            "augment-crop-beyond-image",
            train_mlp!("--augment", "crop=1000"),
            &["--augment crop=1000", "28x28", "crop=27"],
        ),
        with_setup(
            "gpt-file-says-resnet20",
            setup_gpt_says_resnet,
            &[
                "lm",
                "eval",
                "--weights",
                "{case}/resnet.safetensors",
                "{text}",
            ],
            &["resnet.safetensors holds weights of a resnet20, not of a gpt"],
        ),
        case(
            "image-model-file-given-to-lm",
            &["lm", "sample", "--weights", "{mlp}/model.safetensors"],
            &["model.safetensors holds weights of a mlp, not of a gpt"],
        ),
        case(
            "gpt-file-given-to-eval",
            &[
                "eval",
                "mlp",
                "--data",
                "{data}",
                "--weights",
                "{gpt}/model.safetensors",
            ],
            &["model.safetensors holds weights of a gpt, not of a mlp"],
        ),
        case(
            "gpt-file-given-to-classic-eval",
            &[
                "classic",
                "eval",
                "--data",
                "{data}",
                "--weights",
                "{gpt}/model.safetensors",
            ],
            &["model.safetensors", "not a classical model"],
        ),
        with_setup(
            "eval-nan-weights",
            setup_mlp_nan,
            &[
                "eval",
                "mlp",
                "--data",
                "{data}",
                "--weights",
                "{case}/nan.safetensors",
            ],
            &["nan.safetensors: tensor", "holds NaN"],
        ),
        with_setup(
            "predict-nan-weights",
            setup_mlp_nan,
            &[
                "predict",
                "mlp",
                "--weights",
                "{case}/nan.safetensors",
                "{case}/none.png",
            ],
            &["nan.safetensors: tensor", "holds NaN"],
        ),
        with_setup(
            "train-init-nan-weights",
            setup_mlp_nan,
            train_mlp!("--init", "{case}/nan.safetensors"),
            &["--init", "nan.safetensors: tensor", "holds NaN"],
        ),
        with_setup(
            "lm-eval-nan-weights",
            setup_gpt_nan,
            &[
                "lm",
                "eval",
                "--weights",
                "{case}/nan.safetensors",
                "{text}",
            ],
            &["nan.safetensors: tensor transformer.wte.weight holds NaN"],
        ),
        with_setup(
            "lm-sample-nan-weights",
            setup_gpt_nan,
            &["lm", "sample", "--weights", "{case}/nan.safetensors"],
            &["nan.safetensors: tensor", "holds NaN"],
        ),
        with_setup(
            "classic-eval-nan-weights",
            setup_perceptron_nan,
            &[
                "classic",
                "eval",
                "--data",
                "{data}",
                "--weights",
                "{case}/pnan.safetensors",
            ],
            &["pnan.safetensors: tensor", "holds NaN"],
        ),
        with_setup(
            "classic-eval-0-classes",
            setup_perceptron_no_classes,
            &[
                "classic",
                "eval",
                "--data",
                "{data}",
                "--weights",
                "{case}/p0.safetensors",
            ],
            &[
                "p0.safetensors",
                "metadata classic.classes must be at least 2, got 0",
            ],
        ),
        with_setup(
            "eval-normalize-std-0",
            setup_mlp_std_0,
            &[
                "eval",
                "mlp",
                "--data",
                "{data}",
                "--weights",
                "{case}/std0.safetensors",
            ],
            &["std0.safetensors", "metadata normalize.std holds 0"],
        ),
        with_setup(
            "eval-normalize-3-channels",
            setup_mlp_3_channels,
            &[
                "eval",
                "mlp",
                "--data",
                "{data}",
                "--weights",
                "{case}/rgb.safetensors",
            ],
            &[
                "rgb.safetensors",
                "normalize.mean",
                "3 channels",
                "the images have 1",
            ],
        ),
        with_setup(
            "resume-metadata-lr",
            setup_resume_bad_lr,
            &[
                "train", "mlp", "--data", "{data}", "--resume", "--out", "{mlp}",
            ],
            &["checkpoint.safetensors: metadata train.lr must be a finite number above 0, got -1"],
        ),
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

#[test]
fn bad_inputs_end_in_one_clear_error_and_write_nothing() {
    let f = Fixture::new();
    let mut failures = Vec::new();
    let cases = cases();
    for c in &cases {
        let dir = f.root.join("cases").join(c.name);
        copy_dir(&f.mlp, &dir.join("mlp"));
        copy_dir(&f.gpt, &dir.join("gpt"));
        if let Some(setup) = c.setup {
            setup(&dir);
        }
        let before = snapshot(&dir);
        let args: Vec<String> = c.args.iter().map(|a| f.expand(a, &dir)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, stderr) = neurite(&args, c.env);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut problems = Vec::new();
        if code != 1 {
            problems.push(format!("exit code {code}, not 1"));
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            problems.push("a panic".to_string());
        }
        if lines.len() != c.warnings.len() + 1 {
            problems.push(format!(
                "{} lines on stderr, not {}",
                lines.len(),
                c.warnings.len() + 1
            ));
        } else {
            for (line, words) in lines.iter().zip(c.warnings) {
                if !(line.starts_with("warning: ") && line.contains(words)) {
                    problems.push(format!("not the warning {words:?}: {line}"));
                }
            }
            let error = lines.last().unwrap();
            if !error.starts_with("error: ") {
                problems.push("the last line does not start with `error: `".to_string());
            }
            for w in c.expect {
                if !error.contains(w) {
                    problems.push(format!("the error lacks {w:?}"));
                }
            }
        }
        if snapshot(&dir) != before {
            problems.push("files in the case's directory were written or changed".to_string());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: neurite {}\n  {}\n  stderr: {}",
                c.name,
                args.join(" "),
                problems.join("; "),
                stderr.trim_end()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    std::fs::remove_dir_all(&f.root).unwrap();
}
