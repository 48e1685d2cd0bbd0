//! Training runs end to end: a synthetic set that a model must learn, resume equivalence,
//! the command's `--json` output and its errors, and (when installed) real Fashion-MNIST.

mod common;

use common::write_split;
use neurite::checkpoint::Checkpoint;
use neurite::data::{DatasetKind, ImageDataset, MnistData};
use neurite::nn::ModuleExt;
use neurite::train::{load_weights, train, OptimizerKind, RunOptions, TrainConfig};
use neurite::Tensor;

/// A fresh empty directory for the test `name`.
fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir(&format!("train-{name}"))
}
use std::path::{Path, PathBuf};
use std::process::Command;

/// `n` 28 x 28 images of two classes: class 0 has a light left half, class 1 a light
/// right half, both with pseudo-random noise.
fn two_halves(n: usize, salt: u64) -> (Vec<u8>, Vec<u8>) {
    let mut state = 0x2545_F491_4F6C_DD1D ^ salt;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 60) as u8
    };
    let mut images = Vec::with_capacity(n * 784);
    let labels: Vec<u8> = (0..n).map(|i| (i % 2) as u8).collect();
    for &label in &labels {
        for _y in 0..28 {
            for x in 0..28 {
                let light = (x < 14) == (label == 0);
                images.push(if light { 150 + noise() } else { noise() });
            }
        }
    }
    (images, labels)
}

fn synthetic(n_train: usize, n_test: usize) -> MnistData {
    let names = vec!["left".to_string(), "right".to_string()];
    let split = |n, salt| {
        let (images, labels) = two_halves(n, salt);
        ImageDataset::new(images, labels, [1, 28, 28], names.clone()).unwrap()
    };
    MnistData {
        train: split(n_train, 1),
        test: split(n_test, 2),
    }
}

fn quiet(out: &Path) -> RunOptions {
    RunOptions {
        out: out.to_path_buf(),
        ..Default::default()
    }
}

#[test]
fn mlp_learns_a_separable_synthetic_set() {
    let out = temp_dir("separable");
    let config = TrainConfig {
        epochs: 2,
        batch_size: 32,
        ..TrainConfig::recipe("mlp", OptimizerKind::Sgd).unwrap()
    };
    let s = train(&config, &synthetic(256, 100).into(), &quiet(&out)).unwrap();
    assert!(s.accuracy > 0.95, "test accuracy {}", s.accuracy);
    assert_eq!(s.epochs, 2);
    assert!(s.history[1].train_loss < s.history[0].train_loss);
    let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2);
    for name in ["checkpoint.safetensors", "model.safetensors"] {
        assert!(out.join(name).is_file(), "{name}");
    }
    // The checkpoint is the whole resumable state in one file: the model, the optimizer's
    // momentum buffers and the metrics of both epochs.
    assert!(!out.join("optimizer.safetensors").exists());
    let ck = Checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    let optimizer = ck
        .tensors
        .iter()
        .filter(|(n, _)| n.starts_with("optimizer.") && n.ends_with("momentum_buffer"))
        .count();
    assert_eq!(optimizer, 6);
    assert_eq!(ck.metadata["epoch"], "2");
    assert_eq!(ck.metadata["metrics"].lines().count(), 2);
    // The model file holds model tensors only (PyTorch loads it strictly) plus metadata.
    let ck = Checkpoint::load(&out.join("model.safetensors")).unwrap();
    let names: Vec<&str> = ck.tensors.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("fc")));
    assert_eq!(ck.metadata["model"], "mlp");
    assert!(ck.metadata.contains_key("normalize.mean"));
    std::fs::remove_dir_all(&out).unwrap();
}

/// `--eval-every 2` over 5 epochs evaluates after epochs 2, 4 and 5 only; the weights are
/// those of a run that evaluates every epoch, and test-time flips change the test figures
/// only.
#[test]
fn eval_every_and_test_time_flips() {
    let data = synthetic(96, 40);
    let config = TrainConfig {
        epochs: 5,
        batch_size: 32,
        ..TrainConfig::recipe("mlp", OptimizerKind::Sgd).unwrap()
    };
    let every = temp_dir("eval-every-1");
    let a = train(&config, &data.clone().into(), &quiet(&every)).unwrap();
    let sparse = temp_dir("eval-every-2");
    let opts = RunOptions {
        eval_every: Some(2),
        ..quiet(&sparse)
    };
    let b = train(&config, &data.clone().into(), &opts).unwrap();
    let evaluated: Vec<usize> = b
        .history
        .iter()
        .filter(|m| m.test_accuracy.is_some())
        .map(|m| m.epoch)
        .collect();
    assert_eq!(evaluated, [2, 4, 5]);
    assert!(b
        .history
        .iter()
        .all(|m| m.test_loss.is_some() == m.test_accuracy.is_some()));
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!(x.train_loss, y.train_loss);
        if y.test_loss.is_some() {
            assert_eq!(x.test_loss, y.test_loss);
        }
    }
    assert_eq!((a.accuracy, a.loss), (b.accuracy, b.loss));
    let log = std::fs::read_to_string(sparse.join("metrics.jsonl")).unwrap();
    let first = log.lines().next().unwrap();
    assert!(!first.contains("test_"), "{first}");
    assert!(sparse.join("loss.png").is_file() && sparse.join("accuracy.png").is_file());

    // Flip averaging: the same training, other test figures (the images are not symmetric),
    // and recorded for `neurite eval`.
    let flipped = temp_dir("tta-flip");
    let tta = TrainConfig {
        tta: "flip".parse().unwrap(),
        ..config.clone()
    };
    let c = train(&tta, &data.into(), &quiet(&flipped)).unwrap();
    assert_eq!(a.history[4].train_loss, c.history[4].train_loss);
    assert_ne!(a.loss, c.loss);
    let ck = Checkpoint::load(&flipped.join("model.safetensors")).unwrap();
    assert_eq!(ck.metadata["tta"], "flip");
    let ck = Checkpoint::load(&flipped.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.metadata["train.tta"], "flip");
    for dir in [every, sparse, flipped] {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// Three epochs straight, and one epoch then a resume, give the same weights and metrics.
fn check_resume(optimizer: OptimizerKind) {
    let data = synthetic(96, 40);
    let config = TrainConfig {
        epochs: 3,
        batch_size: 16,
        augment: "crop,flip,brightness".parse().unwrap(),
        ..TrainConfig::recipe("mlp", optimizer).unwrap()
    };
    let straight = temp_dir(&format!("straight-{optimizer}"));
    let a = train(&config, &data.clone().into(), &quiet(&straight)).unwrap();

    let split = temp_dir(&format!("split-{optimizer}"));
    let stopped = RunOptions {
        stop_after: Some(1),
        ..quiet(&split)
    };
    assert_eq!(
        train(&config, &data.clone().into(), &stopped)
            .unwrap()
            .epochs,
        1
    );
    let resumed = RunOptions {
        resume: true,
        ..quiet(&split)
    };
    let b = train(&config, &data.clone().into(), &resumed).unwrap();

    assert_eq!(b.epochs, 3);
    for (x, y) in a.history.iter().zip(&b.history) {
        assert_eq!(
            (x.epoch, x.train_loss, x.test_loss, x.lr),
            (y.epoch, y.train_loss, y.test_loss, y.lr)
        );
    }
    let wa = Checkpoint::load(&straight.join("model.safetensors")).unwrap();
    let wb = Checkpoint::load(&split.join("model.safetensors")).unwrap();
    for ((na, ta), (nb, tb)) in wa.tensors.iter().zip(&wb.tensors) {
        assert_eq!(na, nb);
        assert_eq!(
            ta.to_vec(),
            tb.to_vec(),
            "{optimizer}: {na} differs after resume"
        );
    }
    // The same weights and metadata give the same file, byte for byte.
    assert_eq!(
        std::fs::read(straight.join("model.safetensors")).unwrap(),
        std::fs::read(split.join("model.safetensors")).unwrap(),
        "{optimizer}: the two model files differ"
    );
    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&split).unwrap();
}

#[test]
fn resume_matches_an_uninterrupted_run_sgd() {
    check_resume(OptimizerKind::Sgd);
}

#[test]
fn resume_matches_an_uninterrupted_run_adamw() {
    check_resume(OptimizerKind::AdamW);
}

#[test]
fn weights_of_another_model_are_refused() {
    let out = temp_dir("other-model");
    let config = TrainConfig {
        epochs: 1,
        limit_train: Some(32),
        ..TrainConfig::recipe("mlp", OptimizerKind::Sgd).unwrap()
    };
    train(&config, &synthetic(64, 10).into(), &quiet(&out)).unwrap();
    let path = out.join("model.safetensors");
    let lenet = neurite::models::build("lenet5", &neurite::models::MNIST_INPUT, 2).unwrap();
    let err = format!("{:#}", load_weights(&*lenet, "lenet5", &path).unwrap_err());
    assert!(
        err.contains("mlp") && err.contains("model.safetensors"),
        "{err}"
    );
    // Without the `model` metadata (a PyTorch export), the names tell.
    let mut ck = Checkpoint::load(&path).unwrap();
    ck.metadata.clear();
    ck.save(&path).unwrap();
    let err = format!("{:#}", load_weights(&*lenet, "lenet5", &path).unwrap_err());
    assert!(
        err.contains("missing") && err.contains("model.safetensors"),
        "{err}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

/// An MNIST-layout directory of the two-halves images (labels 0 and 1 of 10 classes).
fn fake_data_dir(dir: &Path) {
    for (prefix, n, salt) in [("train", 160u32, 1), ("t10k", 40u32, 2)] {
        let (images, labels) = two_halves(n as usize, salt);
        write_split(dir, prefix, &images, &labels);
    }
}

fn neurite(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_neurite"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn command_json_output_and_errors() {
    let dir = temp_dir("cli");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    fake_data_dir(&data);
    let (d, run) = (data.to_str().unwrap(), dir.join("run"));
    let run = run.to_str().unwrap();

    let (code, stdout, stderr) = neurite(&[
        "train",
        "mlp",
        "--data",
        d,
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--out",
        run,
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let last: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["model"], "mlp");
    assert_eq!(last["epochs"], 2);
    for key in ["accuracy", "loss", "seconds", "images_per_second"] {
        assert!(last[key].as_f64().is_some(), "{key} in {last}");
    }
    assert!(last["accuracy"].as_f64().unwrap() > 0.9, "{last}");

    let weights = format!("{run}/model.safetensors");
    let (code, stdout, _) = neurite(&["eval", "mlp", "--weights", &weights, "--data", d, "--json"]);
    assert_eq!(code, 0);
    let e: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(e["model"], "mlp");
    assert_eq!(e["accuracy"], last["accuracy"]);

    // Each bad input: exit code 1 and one line `error: ...` naming the problem.
    let missing = dir.join("no-such-dir");
    let not_image = dir.join("notes.png");
    std::fs::write(&not_image, "plain text").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "mlp", "--data", d, "--lr", "-0.1"], "--lr"),
        (
            vec!["train", "mlp", "--data", d, "--batch-size", "0"],
            "--batch-size",
        ),
        (
            vec!["train", "mlp", "--data", missing.to_str().unwrap()],
            "no-such-dir",
        ),
        (vec!["train", "vgg", "--data", d], "unknown model"),
        (
            vec!["eval", "lenet5", "--weights", &weights, "--data", d],
            "mlp",
        ),
        (
            vec![
                "predict",
                "mlp",
                "--weights",
                &weights,
                not_image.to_str().unwrap(),
            ],
            "notes.png",
        ),
        (
            vec![
                "train", "mlp", "--data", d, "--out", run, "--resume", "--lr", "0.1",
            ],
            "--resume",
        ),
    ];
    // The help lists every model of the table with its recipe.
    let (code, help, _) = neurite(&["train", "--help"]);
    assert_eq!(code, 0);
    for m in neurite::models::MODELS {
        assert!(help.contains(m.name) && help.contains(m.about), "{help}");
    }
    assert!(
        help.contains("adamw lr 0.001, 30 epochs of batch 128"),
        "{help}"
    );
    for (args, needle) in cases {
        let (code, _, stderr) = neurite(&args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fast_recipe_flags_override_it_and_resume_checks_label_smoothing() {
    let dir = temp_dir("fast-recipe");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    fake_data_dir(&data);
    let (d, run) = (data.to_str().unwrap(), dir.join("run"));
    let run = run.to_str().unwrap();
    let meta = || {
        Checkpoint::load(&Path::new(run).join("checkpoint.safetensors"))
            .unwrap()
            .metadata
    };
    // The fast recipe's values, but for the flags given (epochs, batch, smoothing).
    let args = [
        "train",
        "mlp",
        "--recipe",
        "fast",
        "--data",
        d,
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        run,
        "--json",
    ];
    let (code, _, stderr) = neurite(&args);
    assert_eq!(code, 0, "{stderr}");
    let fast = neurite::models::MLP_FAST;
    let m = meta();
    assert_eq!(m["train.recipe"], "fast");
    assert_eq!(m["train.epochs"], "1");
    assert_eq!(m["train.batch_size"], "16");
    assert_eq!(m["train.lr"], fast.lr.to_string());
    assert_eq!(m["train.schedule"], fast.schedule);
    assert_eq!(m["train.label_smoothing"], fast.label_smoothing.to_string());
    let mut more = args.to_vec();
    more.extend([
        "--label-smoothing",
        "0.05",
        "--schedule",
        "cosine",
        "--overwrite",
    ]);
    let (code, _, stderr) = neurite(&more);
    assert_eq!(code, 0, "{stderr}");
    let m = meta();
    assert_eq!(
        (
            m["train.label_smoothing"].as_str(),
            m["train.schedule"].as_str()
        ),
        ("0.05", "cosine")
    );
    // The spec's recipe (the default) trains without smoothing.
    let spec = [
        "train",
        "mlp",
        "--data",
        d,
        "--epochs",
        "1",
        "--out",
        run,
        "--overwrite",
    ];
    let (code, _, stderr) = neurite(&spec);
    assert_eq!(code, 0, "{stderr}");
    let m = meta();
    assert_eq!(
        (
            m["train.recipe"].as_str(),
            m["train.label_smoothing"].as_str()
        ),
        ("spec", "0")
    );

    // --resume refuses another label smoothing or recipe; the same one continues.
    let resume = |extra: &[&str]| {
        let mut a = vec![
            "train", "mlp", "--data", d, "--epochs", "2", "--out", run, "--resume",
        ];
        a.extend(extra);
        neurite(&a)
    };
    let (code, _, stderr) = resume(&["--label-smoothing", "0.1"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--label-smoothing differs from it"),
        "{stderr}"
    );
    let (code, _, stderr) = resume(&["--recipe", "fast"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--recipe"), "{stderr}");
    let (code, _, stderr) = resume(&["--label-smoothing", "0", "--recipe", "spec"]);
    assert_eq!(code, 0, "{stderr}");

    // Bad values: one line naming the flag, or the models that have a fast recipe.
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "mlp",
            &["--label-smoothing", "1"],
            "--label-smoothing must lie in [0, 1), got 1",
        ),
        (
            "mlp",
            &["--label-smoothing", "-0.1"],
            "--label-smoothing must lie in [0, 1), got -0.1",
        ),
        (
            "mlp",
            &["--recipe", "slow"],
            "unknown recipe 'slow'; choose one of: spec, fast",
        ),
        (
            "mlp",
            &["--tta", "mirror"],
            "unknown test-time augmentation 'mirror'; choose one of: none, flip",
        ),
    ];
    for (model, extra, expected) in cases {
        let mut a = vec!["train", model, "--data", d, "--out", run, "--overwrite"];
        a.extend(extra);
        let (code, _, stderr) = neurite(&a);
        assert_eq!(code, 1, "{a:?}");
        assert_eq!(stderr.trim_end(), format!("error: {expected}"), "{a:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lenet5_learns_real_fashion_mnist() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    if !dir.is_dir() {
        eprintln!("skipped: {} is not installed", dir.display());
        return;
    }
    let data = MnistData::load(dir, DatasetKind::FashionMnist).unwrap();
    let out = temp_dir("real");
    let config = TrainConfig {
        epochs: 1,
        batch_size: 32,
        limit_train: Some(2000),
        augment: neurite::data::Augment::none(),
        ..TrainConfig::recipe("lenet5", OptimizerKind::Sgd).unwrap()
    };
    let s = train(&config, &data.clone().into(), &quiet(&out)).unwrap();
    eprintln!(
        "lenet5, 2,000 images, 1 epoch: test accuracy {:.4}, {:.0} images/s",
        s.accuracy, s.images_per_second
    );
    assert!(s.accuracy > 0.5, "test accuracy {}", s.accuracy);
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
#[cfg(unix)]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    // `neurite gradcheck | head -1`: the reader closes the pipe after its first line; the
    // command must end without a panic message.
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_neurite"))
        .arg("gradcheck")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(!first.is_empty(), "a first line");
    // The reader is dropped here: the pipe is closed.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_diverging_run_stops_and_keeps_its_last_good_checkpoint() {
    // A good first epoch, then the learning rate grows a thousandfold per epoch.
    let out = temp_dir("diverging");
    let config = TrainConfig {
        epochs: 4,
        batch_size: 16,
        schedule: "exp:1000".into(),
        ..TrainConfig::recipe("mlp", OptimizerKind::Sgd).unwrap()
    };
    // Labels that do not follow the images: the loss never reaches 0, the gradients stay.
    let (images, _) = two_halves(128, 1);
    let labels = (0..128).map(|i| ((i / 3) % 2) as u8).collect();
    let names = vec!["a".to_string(), "b".to_string()];
    let data = MnistData {
        train: ImageDataset::new(images, labels, [1, 28, 28], names).unwrap(),
        test: synthetic(1, 40).test,
    };
    let err = format!(
        "{:#}",
        train(&config, &data.clone().into(), &quiet(&out)).unwrap_err()
    );
    assert!(err.contains("diverged") && err.contains("at step"), "{err}");
    assert!(
        err.contains("checkpoint.safetensors (epoch 1), is untouched"),
        "{err}"
    );
    // The checkpoint and the model file are those of epoch 1, whole and finite.
    let ck = Checkpoint::load(&out.join("checkpoint.safetensors")).unwrap();
    ck.check_finite("checkpoint").unwrap();
    assert_eq!(ck.metadata["epoch"], "1");
    let model = Checkpoint::load(&out.join("model.safetensors")).unwrap();
    model.check_finite("model").unwrap();
    for (name, t) in &model.tensors {
        assert_eq!(ck.get(name).unwrap().to_vec(), t.to_vec(), "{name}");
    }
    let log = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 1);
    // The weights of epoch 1 still load and predict.
    let mlp = neurite::models::build("mlp", &neurite::models::MNIST_INPUT, 2).unwrap();
    load_weights(&*mlp, "mlp", &out.join("model.safetensors")).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
}

/// The optimizer state of the checkpoint in `dir` rewritten by `f` (name, tensor) -> entry.
fn rewrite_optimizer_state(dir: &Path, f: impl Fn(&str, &Tensor) -> Option<(String, Tensor)>) {
    let path = dir.join("checkpoint.safetensors");
    let mut ck = Checkpoint::load(&path).unwrap();
    ck.tensors = std::mem::take(&mut ck.tensors)
        .into_iter()
        .filter_map(|(n, t)| match n.strip_prefix("optimizer.") {
            None => Some((n, t)),
            Some(rest) => f(rest, &t).map(|(n, t)| (format!("optimizer.{n}"), t)),
        })
        .collect();
    ck.save(&path).unwrap();
}

/// A checkpoint in the layout of earlier versions (optimizer state keyed by parameter
/// position, flat, no schedule state: the rate was a function of the step count) resumes
/// to the weights of an uninterrupted run; a state that names a parameter the model lacks
/// is refused, naming it, and the checkpoint stays as it was.
fn check_earlier_layout_resumes(optimizer: OptimizerKind) {
    let data = synthetic(96, 40);
    let config = TrainConfig {
        epochs: 2,
        batch_size: 16,
        ..TrainConfig::recipe("mlp", optimizer).unwrap()
    };
    let straight = temp_dir(&format!("layout-straight-{optimizer}"));
    train(&config, &data.clone().into(), &quiet(&straight)).unwrap();
    let split = temp_dir(&format!("layout-split-{optimizer}"));
    let stopped = RunOptions {
        stop_after: Some(1),
        ..quiet(&split)
    };
    train(&config, &data.clone().into(), &stopped).unwrap();
    let names: Vec<String> = neurite::models::build("mlp", &neurite::models::MNIST_INPUT, 2)
        .unwrap()
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let ck = Checkpoint::load(&split.join("checkpoint.safetensors")).unwrap();
    assert!(
        ck.get("optimizer.fc1.weight.momentum_buffer").is_some()
            || ck.get("optimizer.fc1.weight.exp_avg").is_some()
    );
    assert!(ck.get("optimizer.scheduler.last_epoch").is_some());

    // A parameter the model lacks: an error naming it, the file untouched.
    let good = std::fs::read(split.join("checkpoint.safetensors")).unwrap();
    rewrite_optimizer_state(&split, |n, t| {
        Some((n.replace("fc2.bias", "fc9.bias"), t.clone()))
    });
    let before = std::fs::read(split.join("checkpoint.safetensors")).unwrap();
    let resumed = RunOptions {
        resume: true,
        ..quiet(&split)
    };
    let e = format!(
        "{:#}",
        train(&config, &data.clone().into(), &resumed).unwrap_err()
    );
    assert!(e.contains("no parameter 'fc9.bias'"), "{e}");
    assert_eq!(
        std::fs::read(split.join("checkpoint.safetensors")).unwrap(),
        before
    );
    std::fs::write(split.join("checkpoint.safetensors"), good).unwrap();

    // The earlier layout.
    rewrite_optimizer_state(&split, |n, t| {
        if n.starts_with("scheduler.") {
            return None;
        }
        let Some(i) = names.iter().position(|p| n.starts_with(&format!("{p}."))) else {
            return Some((n.to_string(), t.clone()));
        };
        let suffix = &n[names[i].len() + 1..];
        Some((format!("{i}.{suffix}"), t.reshape(&[t.numel()])))
    });
    train(&config, &data.clone().into(), &resumed).unwrap();
    assert_eq!(
        std::fs::read(straight.join("model.safetensors")).unwrap(),
        std::fs::read(split.join("model.safetensors")).unwrap(),
        "{optimizer}: a resume from the earlier layout differs"
    );
    std::fs::remove_dir_all(&straight).unwrap();
    std::fs::remove_dir_all(&split).unwrap();
}

#[test]
fn a_checkpoint_of_the_earlier_layout_resumes_sgd() {
    check_earlier_layout_resumes(OptimizerKind::Sgd);
}

#[test]
fn a_checkpoint_of_the_earlier_layout_resumes_adamw() {
    check_earlier_layout_resumes(OptimizerKind::AdamW);
}
