//! `neurite bench WORKLOAD`: throughput of the spec's benchmark workloads.

use crate::distributed::{self, DataParallel};
use crate::kernels::gemm::{sgemm, Gemm};
use crate::models;
use crate::models::gpt::{Gpt, GptConfig, SampleOptions};
use crate::nn::ModuleExt;
use crate::ops::conv::{resnet20_conv_shapes, time_conv2d};
use crate::optim::{Adam, AdamConfig};
use crate::optim::{Optimizer, Sgd, SgdConfig};
use crate::runtime::threads::num_threads;
use crate::tensor::Tensor;
use anyhow::bail;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Workload id: W1 (mlp train step), W2 (lenet5), W3 (resnet20), W4 (gpt), W5 (matrix
    /// product and resnet20 convolutions), W6 (inference), W7 (gpt sampling); `all` runs
    /// every one; `gemm` times the products given with `--shapes`; `allreduce` times MPI
    /// all-reduces of 1 KB to 64 MB (under `mpirun -np N`). Under `mpirun -np N`, W1-W4
    /// split their global batch over the ranks and report the global rate.
    workload: String,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 9)]
    repeats: usize,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    json: bool,
    /// For the `gemm` workload: products to time, as `MxKxN` with an optional `/tn`-style
    /// suffix saying which operand is used transposed (`n` as stored, `t` transposed; A
    /// then B), comma-separated. Example: `2048x128x384/nt,384x2048x128/tn`.
    #[arg(long, default_value = "1024x1024x1024")]
    shapes: String,
    /// Under `mpirun -np N`, for W1-W4: reduce the gradients after backward instead of
    /// during it (to measure what the overlap saves).
    #[arg(long)]
    no_overlap: bool,
}

/// One measured figure.
pub struct Measurement {
    pub id: String,
    pub what: String,
    pub value: f64,
    pub unit: &'static str,
}

/// Median seconds of `repeats` runs of `f` after two warm-up runs.
pub fn median_seconds(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    f();
    let mut times: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// The most elements of one matrix of a `--shapes` product.
const MAX_GEMM_ELEMENTS: usize = 1 << 28;

/// The most `--repeats`.
const MAX_REPEATS: usize = 10_000;

/// Parses one `MxKxN[/xy]` product of `--shapes`.
fn parse_gemm_shape(text: &str) -> anyhow::Result<Gemm> {
    let bad = || {
        anyhow::anyhow!(
            "bad product '{text}' in --shapes: write MxKxN with an optional /nn, /nt, /tn or /tt, for example 2048x128x384/nt"
        )
    };
    let (dims, flags) = text.split_once('/').unwrap_or((text, "nn"));
    let d: Vec<usize> = dims
        .split('x')
        .map(|v| v.trim().parse().map_err(|_| bad()))
        .collect::<anyhow::Result<_>>()?;
    let f: Vec<char> = flags.chars().collect();
    if d.len() != 3 || d.contains(&0) || f.len() != 2 || f.iter().any(|c| !"nt".contains(*c)) {
        return Err(bad());
    }
    // Each of A, B and C must fit in memory (1 GiB of floats at most).
    let largest = [(d[0], d[1]), (d[1], d[2]), (d[0], d[2])]
        .into_iter()
        .map(|(a, b)| a.saturating_mul(b))
        .max()
        .unwrap_or(0);
    if largest > MAX_GEMM_ELEMENTS {
        anyhow::bail!(
            "product '{text}' in --shapes: a matrix of {largest} elements is more than \
             {MAX_GEMM_ELEMENTS}; give smaller sizes"
        );
    }
    Ok(Gemm::new(d[0], d[2], d[1])
        .trans_a(f[0] == 't')
        .trans_b(f[1] == 't'))
}

/// `neurite bench gemm --shapes ...`: the rate of each listed product.
fn bench_gemm(shapes: &str, repeats: usize) -> anyhow::Result<Vec<Measurement>> {
    let mut out = Vec::new();
    for text in shapes.split(',') {
        let g = parse_gemm_shape(text.trim())?;
        let a: Vec<f32> = (0..g.m * g.k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..g.k * g.n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0.0; g.m * g.n];
        let secs = median_seconds(repeats, || sgemm(g, &a, &b, &mut c));
        out.push(Measurement {
            id: "gemm".into(),
            what: format!("sgemm {}", text.trim()),
            value: 2.0 * (g.m * g.k * g.n) as f64 / secs / 1e9,
            unit: "GFLOP/s",
        });
    }
    Ok(out)
}

fn bench_w5(repeats: usize) -> Vec<Measurement> {
    [(1024, 1024, 1024), (128, 1024, 4096)]
        .iter()
        .map(|&(m, k, n)| {
            let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
            let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
            let mut c = vec![0.0; m * n];
            // Timed in groups of 10 products, as bench/pytorch/bench.py times numpy's.
            let group = 10;
            let secs = median_seconds(repeats, || {
                (0..group).for_each(|_| sgemm(Gemm::new(m, n, k), &a, &b, &mut c))
            }) / group as f64;
            Measurement {
                id: "W5".into(),
                what: format!("sgemm {m}x{k}x{n}"),
                value: 2.0 * (m * k * n) as f64 / secs / 1e9,
                unit: "GFLOP/s",
            }
        })
        .collect()
}

/// The resnet20 convolutions (batch 128), forward plus backward, as one rate.
fn bench_conv(repeats: usize) -> Measurement {
    let shapes = resnet20_conv_shapes(128);
    let iters = repeats.clamp(1, 3);
    let (mut flops, mut secs) = (0.0, 0.0);
    for (shape, count) in &shapes {
        let (fwd, bwd) = time_conv2d(shape, iters);
        // Backward computes two products of the forward's size (input and weight gradients).
        flops += *count as f64 * 3.0 * shape.forward_flops();
        secs += *count as f64 * (fwd + bwd);
    }
    Measurement {
        id: "W5".into(),
        what: "conv2d fwd+bwd, resnet20 shapes, batch 128".into(),
        value: flops / secs / 1e9,
        unit: "GFLOP/s",
    }
}

/// Random images and labels standing in for a batch already in memory.
fn synthetic_batch(batch: usize) -> (Tensor, Vec<usize>) {
    let x = Tensor::randn(&[batch, 1, 28, 28], 0.0, 1.0);
    let y = (0..batch).map(|i| (i * 7) % 10).collect();
    (x, y)
}

/// One training step's backward on this rank: alone a plain backward; on several ranks
/// the gradients summed across them during backward, or after it with `no_overlap`.
struct Backward {
    dp: Option<DataParallel>,
    no_overlap: bool,
    /// This rank's rows of the global batch, and its weight.
    rows: std::ops::Range<usize>,
    weight: f32,
}

impl Backward {
    fn new(model: &dyn crate::nn::Module, batch: usize, no_overlap: bool) -> Backward {
        let (rank, world) = (distributed::rank(), distributed::world_size());
        let dp = (world > 1).then(|| DataParallel::new(model).expect("the broadcast works"));
        let rows = distributed::batch_share(batch, rank, world);
        let weight = rows.len() as f32 / batch as f32;
        Backward {
            dp,
            no_overlap,
            rows,
            weight,
        }
    }

    fn run(&mut self, loss: &Tensor) {
        let fresh = "a fresh graph back-propagates";
        match &mut self.dp {
            None => loss.backward().expect(fresh),
            Some(dp) if self.no_overlap => {
                loss.backward().expect(fresh);
                dp.finish_gradients(self.weight);
            }
            Some(dp) => dp.backward(loss, self.weight).expect(fresh),
        }
    }
}

/// What a workload's name says of the ranks: "" alone, ", 2 ranks" on several.
fn ranks_note(no_overlap: bool) -> String {
    match distributed::world_size() {
        1 => String::new(),
        n if no_overlap => format!(", {n} ranks, reduced after backward"),
        n => format!(", {n} ranks"),
    }
}

/// Steady-state training steps of an image model (W1-W3), in images per second (of the
/// global batch, split over the ranks under mpirun).
fn bench_train(
    id: &str,
    model: &str,
    batch: usize,
    sgd: SgdConfig,
    opts: &Opts,
) -> anyhow::Result<Measurement> {
    crate::manual_seed(0);
    let mut net = models::build(model, &crate::models::MNIST_INPUT, 10)?;
    net.set_training(true);
    let mut opt = Sgd::new(net.named_parameters(), sgd);
    let mut backward = Backward::new(&*net, batch, opts.no_overlap);
    let (x, y) = synthetic_batch(batch);
    let rows = backward.rows.clone();
    let x = x.narrow(0, rows.start, rows.len()).contiguous(); // [B / N, 1, 28, 28]
    let y = y[rows].to_vec();
    let mut step = || {
        net.zero_grad();
        let loss = net.forward(&x).cross_entropy(&y);
        backward.run(&loss);
        opt.step();
    };
    // Short steps are timed in groups so that timer resolution and noise matter less.
    let group = if model == "resnet20" { 1 } else { 10 };
    let secs = median_seconds(opts.repeats, || (0..group).for_each(|_| step())) / group as f64;
    Ok(Measurement {
        id: id.into(),
        what: format!(
            "{model} train step, batch {batch}{}",
            ranks_note(opts.no_overlap)
        ),
        value: batch as f64 / secs,
        unit: "images/s",
    })
}

/// Steady-state `gpt` training steps on 16 x 128 random bytes, AdamW lr 3e-4, wd 0.1
/// (W4), in tokens per second (of the global batch, split over the ranks under mpirun).
fn bench_gpt_train(opts: &Opts) -> Measurement {
    crate::manual_seed(0);
    let model = Gpt::new(GptConfig::default());
    let config = AdamConfig {
        weight_decay: 0.1,
        ..AdamConfig::adamw(3e-4)
    };
    let mut opt = Adam::new(model.named_parameters(), config);
    let (b, t) = (16, model.config.block_size);
    let mut backward = Backward::new(&model, b, opts.no_overlap);
    let mut rng = StdRng::seed_from_u64(0);
    let ids: Vec<usize> = (0..b * t).map(|_| rng.gen_range(0..256)).collect();
    let targets: Vec<usize> = (0..b * t).map(|_| rng.gen_range(0..256)).collect();
    let rows = backward.rows.clone();
    let (ids, targets) = (
        ids[rows.start * t..rows.end * t].to_vec(),
        targets[rows.start * t..rows.end * t].to_vec(),
    );
    let secs = median_seconds(opts.repeats, || {
        model.zero_grad();
        backward.run(&model.loss(&ids, &targets, rows.len(), t));
        opt.step();
    });
    Measurement {
        id: "W4".into(),
        what: format!(
            "gpt train step, batch {b}x{t}{}",
            ranks_note(opts.no_overlap)
        ),
        value: (b * t) as f64 / secs,
        unit: "tokens/s",
    }
}

/// The time of one all-reduce (sum) of f32 buffers from 1 KB to 64 MB across the ranks
/// (`mpirun -np N neurite bench allreduce`), in microseconds: the measurements the
/// communication model of docs/distributed.md is calibrated on.
fn bench_all_reduce(repeats: usize) -> anyhow::Result<Vec<Measurement>> {
    let world = distributed::world_size();
    if world < 2 {
        bail!("the allreduce workload measures MPI between ranks: run it under mpirun -np 2 (a build with --features mpi)");
    }
    let mut out = Vec::new();
    for kb in [1usize, 16, 256, 1024, 4096, 16384, 65536] {
        let mut v = vec![1.0f32; kb * 256];
        // Every rank times the same calls; the ranks' medians are averaged.
        let mut secs = [median_seconds(repeats, || {
            distributed::all_reduce_sum(&mut v)
        })];
        distributed::all_reduce_sum_f64(&mut secs);
        out.push(Measurement {
            id: "ALLREDUCE".into(),
            what: format!("all-reduce of {kb} KB, {world} ranks (mean over ranks)"),
            value: secs[0] / world as f64 * 1e6,
            unit: "us",
        });
    }
    Ok(out)
}

/// `gpt` sampling of 256 bytes after a one-byte prompt, temperature 1 (W7), with and
/// without the key/value cache, in tokens per second.
fn bench_gpt_sample(repeats: usize) -> Vec<Measurement> {
    crate::manual_seed(0);
    let model = Gpt::new(GptConfig::default());
    let new = 256;
    [(true, "kv cache"), (false, "no cache")]
        .iter()
        .map(|&(use_cache, label)| {
            let opts = SampleOptions {
                temperature: 1.0,
                top_k: None,
                seed: 0,
                use_cache,
            };
            let secs = median_seconds(repeats.min(5), || {
                model.generate(&[b'\n' as usize], new, opts, &mut |_| {});
            });
            Measurement {
                id: "W7".into(),
                what: format!("gpt sampling {new} tokens, batch 1, {label}"),
                value: new as f64 / secs,
                unit: "tokens/s",
            }
        })
        .collect()
}

/// Inference over 10,000 images in batches of 1,000 (W6).
fn bench_inference(model: &str, repeats: usize) -> anyhow::Result<Measurement> {
    crate::manual_seed(0);
    let mut net = models::build(model, &crate::models::MNIST_INPUT, 10)?;
    net.set_training(false);
    let (x, _) = synthetic_batch(1000);
    let plan = crate::infer::Plan::new(&*net);
    let secs = median_seconds(repeats.min(5), || {
        for _ in 0..10 {
            plan.forward(&x);
        }
    });
    Ok(Measurement {
        id: "W6".into(),
        what: format!("{model} inference, batch 1000"),
        value: 10_000.0 / secs,
        unit: "images/s",
    })
}

fn sgd(lr: f32, momentum: f32, weight_decay: f32) -> SgdConfig {
    SgdConfig {
        lr,
        momentum,
        weight_decay,
        ..Default::default()
    }
}

/// What the workloads of one command share.
struct Opts {
    repeats: usize,
    no_overlap: bool,
}

fn workload(id: &str, opts: &Opts, shapes: &str) -> anyhow::Result<Vec<Measurement>> {
    let repeats = opts.repeats;
    Ok(match id {
        "GEMM" => bench_gemm(shapes, repeats)?,
        "ALLREDUCE" => bench_all_reduce(repeats)?,
        "W1" => vec![bench_train("W1", "mlp", 128, sgd(0.01, 0.9, 0.0), opts)?],
        "W2" => vec![bench_train("W2", "lenet5", 64, sgd(0.01, 0.9, 0.0), opts)?],
        "W3" => vec![bench_train(
            "W3",
            "resnet20",
            128,
            sgd(0.1, 0.9, 5e-4),
            opts,
        )?],
        "W4" => vec![bench_gpt_train(opts)],
        "W5" => {
            let mut m = bench_w5(repeats);
            m.push(bench_conv(repeats));
            m
        }
        "W6" => vec![
            bench_inference("lenet5", repeats)?,
            bench_inference("resnet20", repeats)?,
        ],
        "W7" => bench_gpt_sample(repeats),
        other => bail!("unknown workload '{other}'; available: W1 to W7, all, gemm, allreduce"),
    })
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    crate::validate::count("--repeats", args.repeats, 1, MAX_REPEATS)?;
    // Under `mpirun -np N`: W1-W4 split the global batch over the ranks; rank 0 prints.
    let _mpi = distributed::init()?;
    let opts = Opts {
        repeats: args.repeats,
        no_overlap: args.no_overlap,
    };
    let id = args.workload.to_uppercase();
    let ids: Vec<&str> = if id == "ALL" {
        vec!["W1", "W2", "W3", "W4", "W5", "W6", "W7"]
    } else {
        vec![id.as_str()]
    };
    let mut noted = false;
    for id in ids {
        for m in workload(id, &opts, &args.shapes)? {
            if distributed::is_root() {
                // Once, with the first figure (an error in the arguments stays one line).
                if !std::mem::replace(&mut noted, true) {
                    note_blas_kernels();
                }
                print_measurement(&m, args.json);
            }
        }
    }
    Ok(0)
}

/// A `note:` on stderr when OpenBLAS's own choice of kernels was replaced (see
/// [`crate::kernels::gemm::ensure_fast_kernels`]): the figures are not those of its choice.
fn note_blas_kernels() {
    let core = crate::kernels::gemm::ensure_fast_kernels();
    if core.replaced() {
        eprintln!(
            "note: OpenBLAS chose {} kernels for this CPU; running {} instead (OPENBLAS_CORETYPE overrides)",
            core.loaded.as_deref().unwrap_or("?"),
            core.running.as_deref().unwrap_or("?")
        );
    }
}

fn print_measurement(m: &Measurement, json: bool) {
    if json {
        println!(
            "{{\"id\":\"{}\",\"what\":\"{}\",\"value\":{:.2},\"unit\":\"{}\",\"threads\":{}}}",
            m.id,
            m.what,
            m.value,
            m.unit,
            num_threads()
        );
    } else {
        println!(
            "{:<4} {:<44} {:>10.2} {}  ({} threads)",
            m.id,
            m.what,
            m.value,
            m.unit,
            num_threads()
        );
    }
}
