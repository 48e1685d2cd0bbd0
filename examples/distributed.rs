//! A user's own training loop made data-parallel: the same program on every rank, each
//! rank training on its share of every global batch, the gradients summed across ranks by
//! [`DataParallel`] during backward. Classifies synthetic points (two noisy blobs per
//! class) with an mlp; rank 0 prints the loss, summed over the ranks.
//!
//! ```text
//! cargo run --release --example distributed -- --steps 200
//! cargo build --release --features mpi --example distributed
//! mpirun -np 2 target/release/examples/distributed --steps 200
//! ```
//!
//! `--print-pid` has each rank print its pid first (the kill test of `.ci/run` uses it);
//! `--w1 --steps 50` measures the throughput of the spec's W1 instead.
//! The PyTorch version of this program is `bench/pytorch/examples/distributed.py`.

use neurite::distributed::{self, DataParallel, DistributedSampler};
use neurite::nn::{Linear, Module, ModuleExt, Relu, Sequential};
use neurite::optim::{Adam, AdamConfig, Optimizer};
use neurite::Tensor;

fn flag(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} needs a number, got {v}"))
        })
        .unwrap_or(default)
}

/// `--w1`: the throughput of the spec's W1 (mlp 784-512-256-10, global batch 128, SGD with
/// momentum) on random images, timed on rank 0 over `--steps` steps after 5 warm-up steps.
fn w1(steps: usize) -> neurite::Result<()> {
    let world = distributed::world_size();
    neurite::manual_seed(1);
    let model = neurite::models::mlp(784, 10);
    let mut dp = DataParallel::new(&model)?;
    let config = neurite::optim::SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        ..Default::default()
    };
    let mut opt = neurite::optim::Sgd::new(model.named_parameters(), config);
    let rows = dp.batch_share(128);
    let x = Tensor::randn(&[rows.len(), 784], 0.0, 1.0); // [128 / N, 784]
    let y: Vec<usize> = (0..rows.len()).map(|i| i % 10).collect();
    let mut t0 = std::time::Instant::now();
    for step in 0..steps + 5 {
        if step == 5 {
            let mut sync = [0.0f64];
            dp.reduce_metrics(&mut sync); // start the clock together
            t0 = std::time::Instant::now();
        }
        model.zero_grad();
        let loss = model.forward(&x).cross_entropy(&y);
        dp.backward(&loss, dp.weight(rows.len(), 128))?;
        opt.step();
    }
    let mut sync = [0.0f64];
    dp.reduce_metrics(&mut sync);
    let secs = t0.elapsed().as_secs_f64();
    if distributed::is_root() {
        let rate = (steps * 128) as f64 / secs;
        println!("W1 mlp, global batch 128, {world} rank(s): {rate:.0} images/s");
    }
    Ok(())
}

fn main() -> neurite::Result<()> {
    let _mpi = distributed::init()?; // MPI ends when this is dropped, at the end of main
    let (rank, world) = (distributed::rank(), distributed::world_size());
    if std::env::args().any(|a| a == "--print-pid") {
        println!("rank {rank} pid {}", std::process::id());
    }
    let steps = flag("--steps", 300);
    if std::env::args().any(|a| a == "--w1") {
        return w1(steps);
    }
    let batch = flag("--batch-size", 64); // the global batch, whatever the number of ranks
    let samples = 4096;
    // The data: the same on every rank (seeded); points [n, 2] and labels.
    neurite::manual_seed(7);
    let points = Tensor::randn(&[samples, 2], 0.0, 1.0); // [n, 2]
    let labels: Vec<usize> = points
        .to_vec()
        .chunks(2)
        .map(|p| usize::from(p[0] * p[1] > 0.0))
        .collect();

    let model = Sequential::new()
        .push(Linear::new(2, 32, true))
        .push(Relu)
        .push(Linear::new(32, 2, true));
    let mut dp = DataParallel::new(&model)?; // rank 0's weights everywhere
    let mut opt = Adam::new(model.named_parameters(), AdamConfig::adam(1e-2));
    // Each rank reads its interleaved share of every epoch's permutation: with a local
    // batch of batch / N, the ranks' i-th batches together are the i-th global batch.
    let sampler = DistributedSampler::new(samples, rank, world).seed(1);
    let local = batch / world;
    let per_epoch = sampler.num_samples() / local.max(1);
    for step in 0..steps {
        let (epoch, b) = ((step / per_epoch) as u64, step % per_epoch);
        let mine = &sampler.indices(epoch)[b * local..(b + 1) * local];
        let x = points.index_select(0, mine); // [B / N, 2]
        let y: Vec<usize> = mine.iter().map(|&i| labels[i]).collect();
        model.zero_grad();
        let loss = model.forward(&x).cross_entropy(&y);
        dp.backward(&loss, 1.0 / world as f32)?; // the mean over the global batch
        opt.step();
        let mut l = [loss.item() as f64 / world as f64];
        dp.reduce_metrics(&mut l);
        if distributed::is_root() && (step + 1) % 50 == 0 {
            println!("step {:>4}  loss {:.4}  ({world} ranks)", step + 1, l[0]);
        }
    }
    Ok(())
}
