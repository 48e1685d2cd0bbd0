//! The transport over a real MPI (feature `mpi`: rsmpi over the system's OpenMPI or MPICH).
//! Every collective is started non-blocking and waited for by polling, so that a wait can
//! notice a peer that died (the watchdog) instead of hanging in `MPI_Wait`; polling also
//! drives the progress of the reductions that are in flight (OpenMPI progresses a
//! non-blocking collective only inside MPI calls).

use super::watchdog::Watchdog;
use anyhow::{bail, Result};
use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::request::{LocalScope, Request};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use mpi::Threading;

/// Keeps MPI initialized; dropping it finalizes MPI (once, at the end of the program).
pub(crate) struct Handle {
    _universe: Universe,
}

fn world() -> SimpleCommunicator {
    SimpleCommunicator::world()
}

/// Initializes MPI with threads: `Serialized`, because the `neurite` command runs its loop on
/// a worker of the kernel pool rather than on the thread that started the process, and a test
/// harness runs each test on a thread of its own; the kernels' own threads never call MPI.
pub(crate) fn init() -> Result<(usize, usize, Handle)> {
    let Some((universe, level)) = mpi::initialize_with_threading(Threading::Serialized) else {
        bail!("MPI was initialized already, outside neurite::distributed::init");
    };
    if level < Threading::Funneled {
        bail!(
            "the MPI library offers thread level {level:?}; neurite needs at least Funneled \
             (its kernels run on threads): use an MPI built with thread support"
        );
    }
    let w = universe.world();
    Ok((
        w.rank() as usize,
        w.size() as usize,
        Handle {
            _universe: universe,
        },
    ))
}

/// Every rank's `value`, in rank order.
pub(crate) fn all_gather_u64(value: u64) -> Vec<u64> {
    let w = world();
    let mut out = vec![0u64; w.size() as usize];
    w.all_gather_into(&value, &mut out[..]);
    out
}

/// Waits for `request`, polling, under the watchdog.
fn wait<'a>(mut request: Request<'a, [f32], &LocalScope<'a>>, dog: &Watchdog, what: &str) {
    loop {
        match request.test() {
            Ok(_) => return,
            Err(r) => {
                request = r;
                dog.check(what);
                std::thread::yield_now();
            }
        }
    }
}

/// Sums `values` over the ranks, in place.
pub(crate) fn all_reduce_sum_f32(values: &mut [f32], dog: &Watchdog, what: &str) {
    let send = values.to_vec();
    let w = world();
    mpi::request::scope(|scope| {
        let r = w.immediate_all_reduce_into(scope, &send[..], values, SystemOperation::sum());
        wait(r, &dog.started(), what);
    });
}

/// Sums `values` over the ranks, in place (metrics: f64, so that sums of many losses keep
/// their digits).
pub(crate) fn all_reduce_sum_f64(values: &mut [f64], dog: &Watchdog, what: &str) {
    let send = values.to_vec();
    let w = world();
    let dog = dog.started();
    mpi::request::scope(|scope| {
        let mut r = w.immediate_all_reduce_into(scope, &send[..], values, SystemOperation::sum());
        loop {
            match r.test() {
                Ok(_) => return,
                Err(again) => {
                    r = again;
                    dog.check(what);
                    std::thread::yield_now();
                }
            }
        }
    });
}

/// Copies rank 0's `values` to every rank.
pub(crate) fn broadcast_f32(values: &mut [f32], dog: &Watchdog, what: &str) {
    let w = world();
    let dog = dog.started();
    mpi::request::scope(|scope| {
        let mut r = w.process_at_rank(0).immediate_broadcast_into(scope, values);
        loop {
            match r.test() {
                Ok(_) => return,
                Err(again) => {
                    r = again;
                    dog.check(what);
                    std::thread::yield_now();
                }
            }
        }
    });
}

/// Ends every rank of the job (`MPI_Abort`) with exit status `code`.
pub(crate) fn abort(code: i32) -> ! {
    world().abort(code)
}

/// Starts the all-reduce of one bucket after another while `body` (a backward pass) goes
/// on, and waits for all of them when it returns.
pub(crate) struct Starter<'a, 's> {
    send: Vec<Option<&'a mut Vec<f32>>>,
    recv: Vec<Option<&'a mut Vec<f32>>>,
    in_flight: Vec<Option<Request<'a, [f32], &'s LocalScope<'a>>>>,
    scope: &'s LocalScope<'a>,
    world: SimpleCommunicator,
}

impl<'a, 's> Starter<'a, 's> {
    /// The send buffer of bucket `k`, to fill before [`Starter::start`].
    pub(crate) fn buffer(&mut self, k: usize) -> &mut [f32] {
        self.send[k]
            .as_deref_mut()
            .expect("a bucket's buffer is written after its all-reduce started")
    }

    /// Whether bucket `k`'s all-reduce has started.
    pub(crate) fn started(&self, k: usize) -> bool {
        self.send[k].is_none()
    }

    /// Starts bucket `k`'s all-reduce (non-blocking).
    pub(crate) fn start(&mut self, k: usize) {
        let send: &'a Vec<f32> = self.send[k].take().expect("a bucket is started once");
        let recv: &'a mut Vec<f32> = self.recv[k].take().expect("a bucket is started once");
        let r = self.world.immediate_all_reduce_into(
            self.scope,
            &send[..],
            &mut recv[..],
            SystemOperation::sum(),
        );
        self.in_flight[k] = Some(r);
    }

    /// Lets MPI progress the reductions in flight (one `MPI_Test` each).
    pub(crate) fn progress(&mut self) {
        for slot in self.in_flight.iter_mut() {
            if let Some(r) = slot.take() {
                if let Err(r) = r.test() {
                    *slot = Some(r);
                }
            }
        }
    }
}

/// Runs `body` with a [`Starter`] over the buckets' buffers, then starts every bucket that
/// `body` left (in bucket order, the same on every rank) and waits for all of them.
pub(crate) fn overlapped<R>(
    send: &mut [Vec<f32>],
    recv: &mut [Vec<f32>],
    dog: &Watchdog,
    what: &str,
    body: impl FnOnce(&mut Starter) -> R,
) -> R {
    let world = world();
    mpi::request::scope(|scope| {
        let n = send.len();
        let mut starter = Starter {
            send: send.iter_mut().map(Some).collect(),
            recv: recv.iter_mut().map(Some).collect(),
            in_flight: (0..n).map(|_| None).collect(),
            scope,
            world,
        };
        let out = body(&mut starter);
        for k in 0..n {
            if !starter.started(k) {
                starter.start(k);
            }
        }
        let dog = dog.started();
        for slot in starter.in_flight.iter_mut() {
            if let Some(r) = slot.take() {
                wait(r, &dog, what);
            }
        }
        out
    })
}
