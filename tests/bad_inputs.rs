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
pub struct Case {
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
pub const fn case(
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
pub const fn with_setup(
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

#[path = "bad_inputs/crashes_and_limits.rs"]
mod crashes_and_limits;
#[path = "bad_inputs/messages.rs"]
mod messages;
#[path = "bad_inputs/setups.rs"]
mod setups;
#[path = "bad_inputs/silently_accepted.rs"]
mod silently_accepted;

/// Every case, by group.
fn cases() -> Vec<Case> {
    let mut all = crashes_and_limits::cases();
    all.extend(silently_accepted::cases());
    all.extend(messages::cases());
    all
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
