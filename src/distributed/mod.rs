//! Data-parallel training over MPI (feature `mpi`): N processes ("ranks"), each with the
//! same model, each computing the gradient of its share of every global batch; the
//! gradients are summed across ranks with MPI all-reduce before each optimizer step, so that
//! every rank takes the same step as one process on the whole batch would.
//!
//! A user's loop becomes data-parallel with a few calls:
//!
//! ```
//! use neurite::distributed::{self, DataParallel};
//! use neurite::nn::{Linear, Module, ModuleExt};
//! use neurite::optim::{Optimizer, Sgd, SgdConfig};
//! use neurite::Tensor;
//!
//! let _mpi = distributed::init()?; // keep until the end of main: dropping it ends MPI
//! neurite::manual_seed(1);
//! let model = Linear::new(4, 1, true);
//! let mut dp = DataParallel::new(&model)?; // rank 0's weights on every rank
//! let mut opt = Sgd::new(model.named_parameters(), SgdConfig { lr: 0.1, ..Default::default() });
//! let x = Tensor::from_vec((0..32).map(|i| i as f32 / 32.0).collect(), &[8, 4]); // [B, 4]
//! let rows = dp.batch_share(8); // this rank's rows of the global batch of 8
//! let mine = x.narrow(0, rows.start, rows.len()); // [B / N, 4]
//! model.zero_grad();
//! let loss = model.forward(&mine).pow(2.0).mean_all();
//! dp.backward(&loss, dp.weight(rows.len(), 8))?; // the gradient of the global batch's mean
//! opt.step();
//! # Ok::<(), neurite::Error>(())
//! ```
//!
//! Started by `mpirun -np N program` (or `srun`), every rank runs that program; without a
//! launcher (or in a build without the `mpi` feature) the world is one rank and every
//! collective is the identity, so the same program runs alone. `docs/distributed.md` says how
//! to launch on one machine, on several and under Slurm.
//!
//! All MPI calls come from the thread that runs the loop (MPI's `Serialized` level); a rank
//! that dies makes the others stop within seconds with an `error:` naming it (the
//! [watchdog](self#faults)) rather than hang.
//!
//! # Faults
//!
//! Every wait polls; between polls the ranks on the same host look whether their peers still
//! run, and a wait longer than `NEURITE_MPI_TIMEOUT` seconds (default 60) ends the job, so a
//! dead rank on another host ends it too. The job ends through `MPI_Abort` after an
//! `error: rank R (pid P) died during …` line.

#[cfg(not(feature = "mpi"))]
#[path = "local_backend.rs"]
mod backend;
#[cfg(feature = "mpi")]
#[path = "mpi_backend.rs"]
mod backend;
mod buckets;
mod parallel;
mod sampler;
mod watchdog;

pub use buckets::{plan_buckets, Bucket, DEFAULT_BUCKET_BYTES};
pub use parallel::DataParallel;
pub use sampler::{batch_share, DistributedSampler};

use crate::nn::{BatchNorm, Module, ModuleExt};
use crate::ops::norm_sync::StatsSync;
use anyhow::{bail, Result};
use std::sync::{Arc, OnceLock};
use watchdog::{Peers, Watchdog};

/// This process's place in the job, set once by [`init`].
struct World {
    rank: usize,
    size: usize,
    peers: Peers,
    timeout: std::time::Duration,
}

impl World {
    /// A watchdog for one wait.
    fn dog(&self) -> Watchdog {
        Watchdog::new(self.peers.clone(), self.timeout)
    }
}

static WORLD: OnceLock<World> = OnceLock::new();

/// Keeps MPI running: returned by [`init`], it finalizes MPI when dropped (keep it to the end
/// of `main`; every collective after that is an error of the MPI library).
#[must_use = "dropping it finalizes MPI at once"]
pub struct Distributed {
    /// `None` alone: MPI was not started (see [`init`]).
    _handle: Option<backend::Handle>,
}

impl Distributed {
    /// This process's rank.
    pub fn rank(&self) -> usize {
        rank()
    }

    /// The number of ranks.
    pub fn world_size(&self) -> usize {
        world_size()
    }
}

/// How many ranks a launcher (`mpirun`, `mpiexec`) started, read from its environment
/// (OpenMPI's `OMPI_COMM_WORLD_SIZE`, MPICH's `PMI_SIZE`); `None` when none started this
/// process.
pub fn launcher_world_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .find_map(|k| std::env::var(k).ok()?.trim().parse().ok())
}

/// Whether an MPI launcher started this process (`mpirun`, `mpiexec`, Slurm's `srun` with
/// PMI or PMIx): the environment variables each sets for its processes.
fn launched() -> bool {
    launcher_world_size().is_some()
        || ["PMIX_RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK"]
            .iter()
            .any(|k| std::env::var_os(k).is_some())
}

/// Starts MPI (threads at MPI's `Serialized` level) and finds this process's rank, the
/// number of ranks and where each runs (for the watchdog). Without a launcher, or in a build
/// without the `mpi` feature, the world is this one process and MPI is not started (a
/// singleton MPI starts helper processes and threads that slowed a single process: W3 by
/// a few percent here).
///
/// # Errors
///
/// A second call; a build without the `mpi` feature started as one of several ranks; an MPI
/// without thread support.
pub fn init() -> Result<Distributed> {
    if WORLD.get().is_some() {
        bail!("neurite::distributed::init was called twice: call it once, at the start of main");
    }
    if !launched() {
        let _ = WORLD.set(World {
            rank: 0,
            size: 1,
            peers: Peers::default(),
            timeout: watchdog::timeout_from_env(),
        });
        return Ok(Distributed { _handle: None });
    }
    let (rank, size, handle) = backend::init()?;
    let pids = backend::all_gather_u64(std::process::id() as u64);
    let hosts = backend::all_gather_u64(host_hash());
    let peers = Peers { rank, pids, hosts };
    let timeout = watchdog::timeout_from_env();
    let _ = WORLD.set(World {
        rank,
        size,
        peers,
        timeout,
    });
    Ok(Distributed {
        _handle: Some(handle),
    })
}

/// A hash of this host's name: ranks with equal hashes share a machine.
fn host_hash() -> u64 {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    name.trim().bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

fn world() -> Option<&'static World> {
    WORLD.get().filter(|w| w.size > 1)
}

/// This process's rank, 0 to [`world_size`] - 1 (0 before [`init`] or alone).
pub fn rank() -> usize {
    WORLD.get().map_or(0, |w| w.rank)
}

/// The number of ranks (1 before [`init`] or alone).
pub fn world_size() -> usize {
    WORLD.get().map_or(1, |w| w.size)
}

/// Whether this is rank 0, the one that prints progress and writes files.
pub fn is_root() -> bool {
    rank() == 0
}

/// Sums `values` over the ranks, in place, on every rank (evaluation sums, counts).
pub fn all_reduce_sum(values: &mut [f32]) {
    if let Some(w) = world() {
        backend::all_reduce_sum_f32(values, &w.dog(), "an all-reduce");
    }
}

/// Sums `values` over the ranks, in place, in f64 (metrics: losses times counts, counts).
///
/// ```
/// let mut v = [2.5f64, 1.0]; // [loss sum, count] of this rank
/// neurite::distributed::all_reduce_sum_f64(&mut v);
/// assert_eq!(v[1] as usize, neurite::distributed::world_size());
/// ```
pub fn all_reduce_sum_f64(values: &mut [f64]) {
    if let Some(w) = world() {
        backend::all_reduce_sum_f64(values, &w.dog(), "a metrics all-reduce");
    }
}

/// Copies rank 0's `values` to every rank.
pub fn broadcast(values: &mut [f32]) {
    if let Some(w) = world() {
        backend::broadcast_f32(values, &w.dog(), "a broadcast");
    }
}

/// Copies rank 0's parameters and buffers (its `state_dict`, in one message) into `module`
/// on every rank, so that all start from the same weights.
pub fn broadcast_parameters(module: &dyn Module) {
    let Some(w) = world() else { return };
    let state = module.state_dict();
    let mut flat: Vec<f32> = Vec::with_capacity(state.iter().map(|(_, t)| t.numel()).sum());
    for (_, t) in &state {
        t.with_slice(|s| flat.extend_from_slice(s));
    }
    backend::broadcast_f32(&mut flat, &w.dog(), "the broadcast of the parameters");
    let mut at = 0;
    for (_, t) in &state {
        let n = t.numel();
        t.with_slice_mut(|s| s.copy_from_slice(&flat[at..at + n]));
        at += n;
    }
}

/// Whether `ok` holds on every rank (each rank says whether its part went well; all learn
/// whether any failed), so that the ranks stop together rather than wait for a rank that
/// has left.
pub fn all_ranks_ok(ok: bool) -> bool {
    let mut failed = [f64::from(u8::from(!ok))];
    all_reduce_sum_f64(&mut failed);
    failed[0] == 0.0
}

/// The weight of this rank's loss in the global loss during the current
/// [`DataParallel::backward`] (as f32 bits; none outside it).
static LOSS_WEIGHT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(u64::MAX);

/// The statistics of synchronized batch norms summed over the ranks by MPI.
struct RankStats;

impl StatsSync for RankStats {
    fn all_reduce_sum(&self, values: &mut [f64]) {
        if let Some(w) = world() {
            backend::all_reduce_sum_f64(values, &w.dog(), "a synchronized batch norm");
        }
    }

    fn loss_weight(&self) -> f64 {
        match LOSS_WEIGHT.load(std::sync::atomic::Ordering::Relaxed) {
            // Outside `DataParallel::backward`: equal shares, as PyTorch assumes.
            u64::MAX => 1.0 / world_size() as f64,
            bits => f32::from_bits(bits as u32) as f64,
        }
    }
}

/// Makes every batch norm of `module` normalize, in training, by the statistics of the
/// global batch over all ranks (PyTorch's `SyncBatchNorm.convert_sync_batchnorm`), so that
/// N ranks train as one process on the whole batch would, batch norms included. Costs one
/// small all-reduce per batch norm in the forward and one in the backward. Every rank must
/// call it. Alone it changes nothing.
///
/// ```
/// let model = neurite::models::resnet20(1, 10);
/// neurite::distributed::sync_batch_norm(&model);
/// ```
pub fn sync_batch_norm(module: &dyn Module) {
    let sync: Arc<dyn StatsSync> = Arc::new(RankStats);
    let each = |m: &dyn Module| {
        if let Some(bn) = (m as &dyn std::any::Any).downcast_ref::<BatchNorm>() {
            bn.set_sync((world_size() > 1).then(|| sync.clone()));
        }
    };
    each(module);
    for (_, m) in module.named_modules() {
        each(m);
    }
}

/// Prints `error: {message}` and ends every rank of the job (`MPI_Abort`; alone: exit).
pub fn abort(message: &str) -> ! {
    eprintln!("error: {message}");
    backend::abort(1)
}

/// The watchdog of this process's waits (the world's, or one over this process alone).
fn watchdog() -> Watchdog {
    WORLD.get().map_or_else(
        || Watchdog::new(Peers::default(), watchdog::timeout_from_env()),
        World::dog,
    )
}
