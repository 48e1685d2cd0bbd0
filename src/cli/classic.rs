//! `neurite classic METHOD`: the perceptron and the SVMs on Fashion-MNIST, with the same data
//! options and preprocessing as `neurite train`; `neurite classic eval` scores a saved model.

use crate::classic::{
    accuracy, Classifier, FitProgress, KernelKind, LinearSvm, LinearSvmParams, Loss, Penalty,
    Perceptron, PerceptronParams, Svc, SvcParams,
};
use crate::data::{find_data_dir, DatasetKind, ImageDataset, MnistData, Normalization};
use anyhow::{bail, Context};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Averaged multi-class perceptron.
    Perceptron,
    /// Linear SVM, one-vs-rest, dual coordinate descent.
    LinearSvm,
    /// Kernel SVM (RBF or polynomial), one-vs-one, SMO.
    Svm,
    /// Test accuracy of a model saved with --save (needs --weights).
    Eval,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum KernelArg {
    Rbf,
    Poly,
    Linear,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// perceptron, linear-svm, svm, or eval.
    #[arg(value_enum)]
    method: Method,
    /// The Fashion-MNIST directory (default: $NEURITE_DATA, the cache, /usr/share/datasets).
    #[arg(long, env = "NEURITE_DATA")]
    data: Option<PathBuf>,
    /// Fit on the first N training images only.
    #[arg(long)]
    limit_train: Option<usize>,
    /// Regularization C of the SVMs, finite and above 0 (default: 0.01 for linear-svm, 10 for
    /// svm).
    #[arg(long, allow_hyphen_values = true)]
    c: Option<f64>,
    /// Perceptron epochs (1 to 10000).
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Perceptron penalty: none, l1 or l2.
    #[arg(long, default_value = "none")]
    penalty: String,
    /// Perceptron penalty strength, finite and 0 or above.
    #[arg(long, default_value_t = 1e-4, allow_hyphen_values = true)]
    alpha: f32,
    /// Linear SVM loss: hinge or squared-hinge.
    #[arg(long, default_value = "squared-hinge")]
    loss: String,
    /// Kernel: rbf, poly or linear (svm).
    #[arg(long, value_enum, default_value = "rbf")]
    kernel: KernelArg,
    /// Degree of the polynomial kernel (1 to 10).
    #[arg(long, default_value_t = 3)]
    degree: u32,
    /// Constant term of the polynomial kernel (finite).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    coef0: f32,
    /// Kernel coefficient: scale, auto or a finite number above 0 (svm).
    #[arg(long, default_value = "scale", allow_hyphen_values = true)]
    gamma: String,
    /// Kernel row cache per class pair, in MB (svm; 1 to 1048576).
    #[arg(long, default_value_t = 600)]
    cache_mb: usize,
    /// Seed of the shuffling (perceptron, linear SVM).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Save the fitted model (safetensors) here.
    #[arg(long)]
    save: Option<PathBuf>,
    /// The model to evaluate (with `eval`).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Print one JSON object as the last line of standard output.
    #[arg(long)]
    json: bool,
}

/// `[n, pixels]` normalized pixels and the labels.
fn features(set: &ImageDataset, norm: &Normalization) -> (Vec<f32>, Vec<usize>) {
    let mut x: Vec<f32> = set.images.iter().map(|&p| p as f32 / 255.0).collect();
    norm.apply(&mut x, [set.n, set.channels, set.height, set.width]);
    (x, set.labels.iter().map(|&l| l as usize).collect())
}

/// The most perceptron epochs.
const MAX_EPOCHS: usize = 10_000;
/// The largest kernel row cache, in MB.
const MAX_CACHE_MB: usize = 1 << 20;

impl Args {
    /// Checks every number before any data is read; errors name the flag.
    fn check(&self) -> anyhow::Result<()> {
        use crate::validate::{count, finite, non_negative, positive};
        count("--epochs", self.epochs, 1, MAX_EPOCHS)?;
        non_negative("--alpha", self.alpha)?;
        if let Some(c) = self.c {
            positive("--c", c)?;
        }
        count(
            "--degree",
            self.degree as usize,
            1,
            crate::classic::kernel::MAX_DEGREE as usize,
        )?;
        finite("--coef0", self.coef0)?;
        count("--cache-mb", self.cache_mb, 1, MAX_CACHE_MB)?;
        if let Some(0) = self.limit_train {
            bail!("--limit-train must be at least 1");
        }
        self.gamma
            .parse::<crate::classic::Gamma>()
            .context("--gamma")?;
        self.penalty.parse::<Penalty>().context("--penalty")?;
        self.loss.parse::<Loss>().context("--loss")?;
        Ok(())
    }
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    args.check()?;
    let dir = find_data_dir(args.data.as_deref())?;
    let data = MnistData::load(&dir, DatasetKind::FashionMnist)?;
    super::check_splits(
        &dir,
        (args.method != Method::Eval).then_some(&data.train),
        Some(&data.test),
    )?;
    crate::validate::check_limit(args.limit_train, data.train.n)?;
    let train = match args.limit_train {
        Some(n) => data.train.limit(n),
        None => data.train,
    };
    if args.method == Method::Eval {
        let path = args
            .weights
            .context("`neurite classic eval` needs --weights PATH")?;
        let source = path.display().to_string();
        let ck = crate::checkpoint::Checkpoint::load(&path)?;
        let model = crate::classic::from_checkpoint(&ck)
            .with_context(|| format!("cannot load a classic model from {source}"))?;
        ck.check_finite(&source)?;
        if model.dim() != data.test.image_len() {
            bail!(
                "{source} holds a model of {} features, but the test images have {} pixels",
                model.dim(),
                data.test.image_len()
            );
        }
        let norm = match Normalization::from_metadata_map(&ck.metadata)
            .with_context(|| format!("in {source}"))?
        {
            Some(norm) => {
                norm.check_channels(data.test.channels)
                    .with_context(|| format!("in {source}"))?;
                norm
            }
            None => {
                super::check_splits(&dir, Some(&train), None)?;
                Normalization::from_dataset(&train)
            }
        };
        let (xt, yt) = features(&data.test, &norm);
        let acc = accuracy(&model.predict(&xt, data.test.n), &yt);
        println!("{} test accuracy {:.4}", model.method(), acc);
        if args.json {
            println!(
                "{{\"method\":\"{}\",\"accuracy\":{acc:.6}}}",
                model.method()
            );
        }
        return Ok(0);
    }
    let norm = Normalization::from_dataset(&train);
    let (x, y) = features(&train, &norm);
    let (xt, yt) = features(&data.test, &norm);
    let (n, d) = (train.n, train.image_len());
    let progress = |p: FitProgress| {
        if !args.json {
            eprint!("\r{} {}/{}   ", p.unit, p.done, p.total);
        }
    };
    let start = Instant::now();
    let model: Box<dyn Classifier> = match args.method {
        Method::Perceptron => {
            let params = PerceptronParams {
                epochs: args.epochs,
                penalty: args.penalty.parse()?,
                alpha: args.alpha,
                seed: args.seed,
                ..Default::default()
            };
            Box::new(Perceptron::fit(&x, &y, n, d, &params, &progress))
        }
        Method::LinearSvm => {
            let params = LinearSvmParams {
                c: args.c.unwrap_or(0.01),
                loss: args.loss.parse()?,
                seed: args.seed,
                ..Default::default()
            };
            Box::new(LinearSvm::fit(&x, &y, n, d, &params, &progress))
        }
        Method::Svm => {
            let params = SvcParams {
                c: args.c.unwrap_or(10.0),
                kernel: match args.kernel {
                    KernelArg::Rbf => KernelKind::Rbf,
                    KernelArg::Poly => KernelKind::Poly {
                        degree: args.degree,
                        coef0: args.coef0,
                    },
                    KernelArg::Linear => KernelKind::Linear,
                },
                gamma: args.gamma.parse()?,
                cache_mb: args.cache_mb,
                ..Default::default()
            };
            Box::new(Svc::fit(&x, &y, n, d, &params, &progress))
        }
        Method::Eval => unreachable!(),
    };
    let fit_seconds = start.elapsed().as_secs_f64();
    if !args.json {
        eprintln!();
    }
    let acc = accuracy(&model.predict(&xt, data.test.n), &yt);
    if let Some(path) = &args.save {
        let mut ck = model.to_checkpoint();
        ck.metadata.extend(norm.to_metadata());
        ck.save(path)?;
    }
    println!(
        "{} on {n} images: test accuracy {:.4}, fit {:.1} s",
        model.method(),
        acc,
        fit_seconds
    );
    if args.json {
        println!("{{\"method\":\"{}\",\"n_train\":{n},\"accuracy\":{acc:.6},\"fit_seconds\":{fit_seconds:.3}}}", model.method());
    }
    Ok(0)
}
