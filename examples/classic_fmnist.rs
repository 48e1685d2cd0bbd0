//! Measures the classical classifiers on Fashion-MNIST: test accuracy and fit time.
//!
//! Pixels are scaled to [0, 1] and normalized with the mean and standard deviation of the
//! training images, as for the networks.
//!
//! ```text
//! cargo run --release --example classic_fmnist -- --method perceptron
//! cargo run --release --example classic_fmnist -- --method linear-svm --c 0.1
//! cargo run --release --example classic_fmnist -- --method svm --c 10 --limit 10000
//! ```
//!
//! Measured on the 2-core development machine shared with other jobs (load ~15), test
//! accuracy / fit seconds: perceptron (10 epochs, averaged) 0.8449 / 2.2; linear SVM
//! (squared hinge, C=0.01) 0.8395 / 51; RBF SVM C=10 on 10,000 images 0.8666 / 23, on all
//! 60,000 images 0.9002 / 512 (18,802 support vectors). scikit-learn's published figures:
//! 0.782, 0.836 and 0.897.

use anyhow::Result;
use clap::Parser;
use neurite::classic::*;
use neurite::data::{find_data_dir, DatasetKind, ImageDataset, MnistData, Normalization};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// perceptron, linear-svm or svm.
    #[arg(long, default_value = "perceptron")]
    method: String,
    /// The data directory (default: the usual places).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Train on the first N training images only.
    #[arg(long)]
    limit: Option<usize>,
    /// C of the SVMs.
    #[arg(long, default_value_t = 1.0)]
    c: f64,
    /// Perceptron epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Linear SVM loss (hinge or squared-hinge).
    #[arg(long, default_value = "squared-hinge")]
    loss: String,
    /// Linear SVM tolerance.
    #[arg(long, default_value_t = 0.1)]
    tol: f64,
    /// Linear SVM passes per class.
    #[arg(long, default_value_t = 1000)]
    max_iter: usize,
    /// Kernel SVM cache per pair, MB.
    #[arg(long, default_value_t = 600)]
    cache_mb: usize,
    /// Kernel SVM gamma (scale, auto or a number).
    #[arg(long, default_value = "scale")]
    gamma: String,
    /// Save the model here.
    #[arg(long)]
    save: Option<PathBuf>,
}

/// `[n, 784]` normalized pixels and the labels.
fn features(set: &ImageDataset, norm: &Normalization) -> (Vec<f32>, Vec<usize>) {
    let mut x: Vec<f32> = set.images.iter().map(|&p| p as f32 / 255.0).collect();
    norm.apply(&mut x, [set.n, set.channels, set.height, set.width]);
    (x, set.labels.iter().map(|&l| l as usize).collect())
}

fn main() -> Result<()> {
    let args = Args::parse();
    neurite::kernels::parallel::init_threads(None);
    let dir = find_data_dir(args.data.as_deref())?;
    let data = MnistData::load(&dir, DatasetKind::FashionMnist)?;
    let train = match args.limit {
        Some(n) => data.train.limit(n),
        None => data.train,
    };
    let norm = Normalization::from_dataset(&train);
    let (x, y) = features(&train, &norm);
    let (xt, yt) = features(&data.test, &norm);
    let (n, d) = (train.n, train.image_len());
    let progress = |p: FitProgress| eprint!("\r{} {}/{}   ", p.unit, p.done, p.total);
    let start = Instant::now();
    let model: Box<dyn Classifier> = match args.method.as_str() {
        "perceptron" => {
            let params = PerceptronParams {
                epochs: args.epochs,
                ..Default::default()
            };
            Box::new(Perceptron::fit(&x, &y, n, d, &params, &progress))
        }
        "linear-svm" => {
            let params = LinearSvmParams {
                c: args.c,
                loss: args.loss.parse()?,
                tol: args.tol,
                max_iter: args.max_iter,
                ..Default::default()
            };
            let m = LinearSvm::fit(&x, &y, n, d, &params, &progress);
            eprintln!("\npasses per class: {:?}", m.iterations);
            Box::new(m)
        }
        "svm" => {
            let params = SvcParams {
                c: args.c,
                gamma: args.gamma.parse()?,
                cache_mb: args.cache_mb,
                ..Default::default()
            };
            let m = Svc::fit(&x, &y, n, d, &params, &progress);
            eprintln!("\nsupport vectors: {} (gamma {})", m.n_sv(), m.kernel.gamma);
            Box::new(m)
        }
        other => anyhow::bail!("unknown method {other}"),
    };
    let fit_seconds = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let acc = accuracy(&model.predict(&xt, data.test.n), &yt);
    let predict_seconds = start.elapsed().as_secs_f64();
    let train_acc = accuracy(&model.predict(&x, n), &y);
    println!(
        "{{\"method\": \"{}\", \"n_train\": {n}, \"train_accuracy\": {train_acc:.4}, \
         \"predict_seconds\": {predict_seconds:.2}, \"accuracy\": {acc:.4}, \"fit_seconds\": {fit_seconds:.2}}}",
        args.method
    );
    if let Some(path) = args.save {
        let mut ck = model.to_checkpoint();
        ck.metadata.extend(norm.to_metadata());
        ck.save(&path)?;
        let back = load_model(&path)?;
        assert_eq!(
            back.predict(&xt[..784 * 100], 100),
            model.predict(&xt[..784 * 100], 100)
        );
    }
    Ok(())
}
