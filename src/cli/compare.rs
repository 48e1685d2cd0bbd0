//! `neurite compare`: the classical methods and `lenet5` at several training-set sizes, on
//! the same preprocessing and the same 10,000 test images; a table, `compare.json` and
//! `compare.png` (test accuracy against training-set size, log x).
//!
//! Every method sees the first N training images, pixels / 255, normalized by those N
//! images' mean and std (what `neurite classic` and `neurite train` do). LeNet-5 trains
//! with its recipe (SGD momentum 0.9, lr 0.05 cosine, batch 128, crop + flip) for
//! `--lenet-epochs` epochs; on a small set that is only a few optimizer steps (500 images:
//! 4 steps an epoch), so each epoch repeats the N images (each copy augmented afresh) until
//! the run has at least `--lenet-min-steps` steps. The repeated set has the same
//! normalization statistics, and the per-epoch test evaluation stays at one per epoch.

use crate::classic::{
    accuracy, no_progress, Classifier, Gamma, KernelKind, LinearSvm, LinearSvmParams, Loss,
    Perceptron, PerceptronParams, Svc, SvcParams,
};
use crate::data::{find_data_dir, DatasetKind, ImageDataset, MnistData, Normalization};
use crate::train::{train, OptimizerKind, RunOptions, TrainConfig};
use crate::viz::{plot_curves_with, CurveChart, Series};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The methods `compare` knows, in table order.
const METHODS: &[&str] = &["perceptron", "linear-svm", "svm", "lenet5"];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Training-set sizes, comma-separated (the first N training images).
    #[arg(long, value_delimiter = ',', default_value = "500,1000,5000,60000")]
    limit_train: Vec<usize>,
    /// Methods, comma-separated: perceptron, linear-svm, svm, lenet5.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "perceptron,linear-svm,svm,lenet5"
    )]
    methods: Vec<String>,
    /// LeNet-5 epochs at every size.
    #[arg(long, default_value_t = 10)]
    lenet_epochs: usize,
    /// LeNet-5 optimizer steps at least (small sets repeat their images within an epoch).
    #[arg(long, default_value_t = 1000)]
    lenet_min_steps: usize,
    /// Skip the kernel SVM above this many training images (it grows about as N^2).
    #[arg(long, default_value_t = 20000)]
    max_svm: usize,
    /// The Fashion-MNIST directory (default: $NEURITE_DATA, the cache, /usr/share/datasets).
    #[arg(long, env = "NEURITE_DATA")]
    data: Option<PathBuf>,
    /// Output directory (compare.json, compare.png, the LeNet-5 runs).
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
    /// Print one JSON object (what compare.json holds) as the last line of standard output.
    #[arg(long)]
    json: bool,
}

/// One cell of the table: a method at a size.
#[derive(Clone, Debug)]
struct Cell {
    method: String,
    n_train: usize,
    /// `None` when skipped.
    accuracy: Option<f64>,
    fit_seconds: Option<f64>,
    note: String,
}

/// `[n, pixels]` normalized pixels and the labels.
fn features(set: &ImageDataset, norm: &Normalization) -> (Vec<f32>, Vec<usize>) {
    let mut x: Vec<f32> = set.images.iter().map(|&p| p as f32 / 255.0).collect();
    norm.apply(&mut x, [set.n, set.channels, set.height, set.width]);
    (x, set.labels.iter().map(|&l| l as usize).collect())
}

/// `set` repeated `times` times, one copy after the other.
fn repeat(set: &ImageDataset, times: usize) -> ImageDataset {
    let mut r = set.clone();
    r.images = set.images.repeat(times);
    r.labels = set.labels.repeat(times);
    r.n = set.n * times;
    r
}

/// Fits a classical method on `train` and scores it on `test`: (accuracy, fit seconds).
fn classic(method: &str, train: &ImageDataset, test: &ImageDataset) -> (f64, f64) {
    let norm = Normalization::from_dataset(train);
    let (x, y) = features(train, &norm);
    let (xt, yt) = features(test, &norm);
    let (n, d) = (train.n, train.image_len());
    let start = Instant::now();
    let model: Box<dyn Classifier> = match method {
        "perceptron" => Box::new(Perceptron::fit(
            &x,
            &y,
            n,
            d,
            &PerceptronParams::default(),
            &no_progress,
        )),
        "linear-svm" => {
            let params = LinearSvmParams {
                c: 0.01,
                loss: Loss::SquaredHinge,
                ..Default::default()
            };
            Box::new(LinearSvm::fit(&x, &y, n, d, &params, &no_progress))
        }
        "svm" => {
            let params = SvcParams {
                c: 10.0,
                kernel: KernelKind::Rbf,
                gamma: Gamma::Scale,
                ..Default::default()
            };
            Box::new(Svc::fit(&x, &y, n, d, &params, &no_progress))
        }
        other => unreachable!("compare: unknown classical method {other}"),
    };
    let fit_seconds = start.elapsed().as_secs_f64();
    (accuracy(&model.predict(&xt, test.n), &yt), fit_seconds)
}

/// Trains LeNet-5 on `train` (repeated for the step floor): (accuracy, training seconds
/// without the per-epoch test evaluation, the note for the table).
fn lenet(args: &Args, train_set: &ImageDataset, test: &ImageDataset) -> Result<(f64, f64, String)> {
    let mut config = TrainConfig::recipe("lenet5", OptimizerKind::Sgd)?;
    config.epochs = args.lenet_epochs;
    // Steps wanted per epoch, then copies of the set that give them.
    let wanted = args.lenet_min_steps.div_ceil(args.lenet_epochs);
    let times = (wanted * config.batch_size).div_ceil(train_set.n).max(1);
    let repeated = repeat(train_set, times);
    let data = MnistData {
        train: repeated,
        test: test.clone(),
    };
    let opts = RunOptions {
        out: args.out.join(format!("lenet5-{}", train_set.n)),
        // `compare` writes its whole table again, and its runs with it.
        overwrite: true,
        ..Default::default()
    };
    let n_train = data.train.n;
    let summary = train(&config, &data.into(), &opts)?;
    let images = (n_train * summary.epochs) as f64;
    let seconds = images / summary.images_per_second.max(1e-9);
    let steps = n_train.div_ceil(config.batch_size) * summary.epochs;
    let note = if times > 1 {
        format!("{} epochs x{times}, {steps} steps", summary.epochs)
    } else {
        format!("{} epochs, {steps} steps", summary.epochs)
    };
    // The f32 accuracy as the decimal it is (0.8056, not 0.8055999875).
    let acc: f64 = format!("{}", summary.accuracy).parse()?;
    Ok((acc, seconds, note))
}

/// The table: one row per size, accuracy and fit seconds per method.
fn table(sizes: &[usize], methods: &[String], cells: &[Cell]) -> String {
    let mut s = format!("{:>7}", "n_train");
    for m in methods {
        s += &format!("  {:>20}", m);
    }
    s += "\n";
    for &n in sizes {
        s += &format!("{n:>7}");
        for m in methods {
            let c = cells.iter().find(|c| &c.method == m && c.n_train == n);
            let text = match c {
                Some(Cell {
                    accuracy: Some(a),
                    fit_seconds: Some(t),
                    ..
                }) => format!("{:.2}% {:>8.1}s", 100.0 * a, t),
                Some(_) => "skipped".into(),
                None => "-".into(),
            };
            s += &format!("  {text:>20}");
        }
        s += "\n";
    }
    s
}

fn to_json(args: &Args, sizes: &[usize], methods: &[String], cells: &[Cell]) -> serde_json::Value {
    serde_json::json!({
        "sizes": sizes,
        "methods": methods,
        "lenet_epochs": args.lenet_epochs,
        "lenet_min_steps": args.lenet_min_steps,
        "max_svm": args.max_svm,
        "results": cells.iter().map(|c| serde_json::json!({
            "method": c.method,
            "n_train": c.n_train,
            "accuracy": c.accuracy,
            "fit_seconds": c.fit_seconds,
            "skipped": c.accuracy.is_none(),
            "note": c.note,
        })).collect::<Vec<_>>(),
    })
}

fn plot(path: &Path, methods: &[String], cells: &[Cell]) -> Result<()> {
    let series: Vec<Series> = methods
        .iter()
        .map(|m| {
            let points = cells
                .iter()
                .filter(|c| &c.method == m)
                .filter_map(|c| c.accuracy.map(|a| (c.n_train as f64, a)))
                .collect();
            Series::new(m.clone(), points)
        })
        .collect();
    let chart = CurveChart {
        title: "Fashion-MNIST: test accuracy against training-set size".into(),
        x_label: "training images (log scale)".into(),
        y_label: "test accuracy".into(),
        log_x: true,
        y_range: None,
    };
    plot_curves_with(path, &chart, &series)
}

pub fn run(args: Args) -> Result<i32> {
    let methods: Vec<String> = args.methods.iter().map(|m| m.trim().to_string()).collect();
    if let Some(bad) = methods.iter().find(|m| !METHODS.contains(&m.as_str())) {
        bail!(
            "unknown method '{bad}' in --methods; choose from {}",
            METHODS.join(", ")
        );
    }
    if methods.is_empty() || args.limit_train.is_empty() {
        bail!("--methods and --limit-train need at least one value each");
    }
    if args.limit_train.contains(&0) {
        bail!("--limit-train sizes must be at least 1");
    }
    crate::validate::count("--lenet-epochs", args.lenet_epochs, 1, 100_000)?;
    crate::validate::count("--lenet-min-steps", args.lenet_min_steps, 0, 100_000_000)?;
    let dir = find_data_dir(args.data.as_deref())?;
    let data = MnistData::load(&dir, DatasetKind::FashionMnist)?;
    super::check_splits(&dir, Some(&data.train), Some(&data.test))?;
    for &n in &args.limit_train {
        crate::validate::check_limit(Some(n), data.train.n)?;
    }
    let mut sizes: Vec<usize> = args.limit_train.clone();
    sizes.dedup();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;

    let mut cells = Vec::new();
    for &n in &sizes {
        let train_set = data.train.clone().limit(n);
        for m in &methods {
            let cell = if m == "svm" && n > args.max_svm {
                Cell {
                    method: m.clone(),
                    n_train: n,
                    accuracy: None,
                    fit_seconds: None,
                    note: format!("skipped (> --max-svm {})", args.max_svm),
                }
            } else if m == "lenet5" {
                let (a, t, note) = lenet(&args, &train_set, &data.test)?;
                Cell {
                    method: m.clone(),
                    n_train: n,
                    accuracy: Some(a),
                    fit_seconds: Some(t),
                    note,
                }
            } else {
                let (a, t) = classic(m, &train_set, &data.test);
                Cell {
                    method: m.clone(),
                    n_train: n,
                    accuracy: Some(a),
                    fit_seconds: Some(t),
                    note: String::new(),
                }
            };
            eprintln!(
                "{:>10} n={n:>6}: {}",
                m,
                match (cell.accuracy, cell.fit_seconds) {
                    (Some(a), Some(t)) => format!("{:.2}% in {t:.1} s {}", 100.0 * a, cell.note),
                    _ => cell.note.clone(),
                }
            );
            cells.push(cell);
            // Written after every cell, so a long run that is stopped keeps what it did.
            let json = to_json(&args, &sizes, &methods, &cells);
            std::fs::write(args.out.join("compare.json"), format!("{json:#}\n"))?;
        }
    }
    plot(&args.out.join("compare.png"), &methods, &cells)?;
    print!("{}", table(&sizes, &methods, &cells));
    println!(
        "wrote {} and {}",
        args.out.join("compare.json").display(),
        args.out.join("compare.png").display()
    );
    if args.json {
        println!("{}", to_json(&args, &sizes, &methods, &cells));
    }
    Ok(0)
}
