//! The transport of a build without the `mpi` feature: one process, so every collective is
//! the identity (a sum over one rank, a broadcast from oneself). `init` refuses to run as one
//! rank of several, which would silently train N separate models.

use super::watchdog::Watchdog;
use anyhow::{bail, Result};

/// Nothing to keep alive without MPI.
pub(crate) struct Handle;

/// One rank of one, unless a launcher started several of this process.
pub(crate) fn init() -> Result<(usize, usize, Handle)> {
    if let Some(n) = super::launcher_world_size() {
        if n > 1 {
            bail!(
                "this neurite was built without the `mpi` feature, but a launcher started {n} \
                 ranks of it: rebuild with `cargo build --release --features mpi` (it needs \
                 libopenmpi-dev; scripts/setup.sh installs it)"
            );
        }
    }
    Ok((0, 1, Handle))
}

/// Every rank's `value`: this one's.
pub(crate) fn all_gather_u64(value: u64) -> Vec<u64> {
    vec![value]
}

/// A sum over one rank.
pub(crate) fn all_reduce_sum_f32(_values: &mut [f32], _dog: &Watchdog, _what: &str) {}

/// A sum over one rank.
pub(crate) fn all_reduce_sum_f64(_values: &mut [f64], _dog: &Watchdog, _what: &str) {}

/// A broadcast from oneself.
pub(crate) fn broadcast_f32(_values: &mut [f32], _dog: &Watchdog, _what: &str) {}

/// Ends the process with status `code`.
pub(crate) fn abort(code: i32) -> ! {
    std::process::exit(code)
}

/// The buckets' buffers: starting a bucket copies its sum (its own values) into place.
pub(crate) struct Starter<'a> {
    send: &'a mut [Vec<f32>],
    recv: &'a mut [Vec<f32>],
    started: Vec<bool>,
}

impl Starter<'_> {
    /// The send buffer of bucket `k`, to fill before [`Starter::start`].
    pub(crate) fn buffer(&mut self, k: usize) -> &mut [f32] {
        assert!(
            !self.started[k],
            "a bucket's buffer is written after its all-reduce started"
        );
        &mut self.send[k]
    }

    /// Whether bucket `k`'s all-reduce has started.
    pub(crate) fn started(&self, k: usize) -> bool {
        self.started[k]
    }

    /// The sum over one rank.
    pub(crate) fn start(&mut self, k: usize) {
        assert!(!self.started[k], "a bucket is started once");
        self.started[k] = true;
        self.recv[k].copy_from_slice(&self.send[k]);
    }

    /// Nothing is in flight.
    pub(crate) fn progress(&mut self) {}
}

/// Runs `body`, then completes the buckets it left.
pub(crate) fn overlapped<R>(
    send: &mut [Vec<f32>],
    recv: &mut [Vec<f32>],
    _dog: &Watchdog,
    _what: &str,
    body: impl FnOnce(&mut Starter) -> R,
) -> R {
    let n = send.len();
    let mut starter = Starter {
        send,
        recv,
        started: vec![false; n],
    };
    let out = body(&mut starter);
    for k in 0..n {
        if !starter.started(k) {
            starter.start(k);
        }
    }
    out
}
