//! Threading: one rayon pool for the whole process, sized from `--threads`,
//! `NEURITE_NUM_THREADS` or the number of cores.

use rayon::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

/// Below this many elements an elementwise kernel runs on the calling thread: spreading it
/// over threads costs more than it saves.
pub const PAR_MIN_ELEMENTS: usize = 1 << 15;

/// How many worker threads per CPU [`init_threads`] allows at most: more only adds
/// switching between threads that wait for each other.
pub const MAX_THREADS_PER_CPU: usize = 4;

/// The most worker threads [`init_threads`] starts: [`MAX_THREADS_PER_CPU`] per CPU.
pub fn max_threads() -> usize {
    MAX_THREADS_PER_CPU
        * std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
}

/// Whether the pool has been started, by [`init_threads`] or on first use.
static POOL: Once = Once::new();

/// Starts the worker pool: `threads` workers, else `$NEURITE_NUM_THREADS`, else one per
/// core, pinned one to a CPU when they are as many (see [`pins_workers`]), with the
/// allocator told to keep freed memory for the next step ([`keep_freed_memory`]); returns
/// the number of workers. More than [`max_threads`] are capped there, with a warning on
/// stderr.
///
/// The library starts the pool itself with these defaults when it is first used (the first
/// tensor, the first parallel kernel), so a program need not call this; call it first in
/// `main` to choose the number of threads in code. Once the pool runs, a call changes
/// nothing (a different `threads` gets a warning on stderr).
///
/// ```
/// // First thing in main, before any tensor exists:
/// let workers = neurite::runtime::init_threads(None); // as NEURITE_NUM_THREADS or all cores
/// assert_eq!(workers, neurite::runtime::threads::num_threads());
/// ```
pub fn init_threads(threads: Option<usize>) -> usize {
    let mut started = false;
    POOL.call_once(|| {
        start_pool(threads);
        started = true;
    });
    let n = rayon::current_num_threads();
    if let Some(asked) = threads.filter(|&t| !started && t > 0 && t != n) {
        eprintln!(
            "warning: init_threads({asked}) after the worker pool started with {n} threads \
             (on first use) changes nothing; call it first in main, before any tensor exists"
        );
    }
    n
}

/// Starts the pool with the defaults of [`init_threads`] unless it runs already: every
/// entry point of the library that may reach a parallel kernel calls this (one atomic load
/// once started), so that a plain program gets the command's set-up.
#[inline]
pub fn ensure_started() {
    if !POOL.is_completed() {
        init_threads(None);
    }
}

/// [`init_threads`]'s work, once.
fn start_pool(threads: Option<usize>) {
    let mut n = threads
        .or_else(|| {
            std::env::var("NEURITE_NUM_THREADS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
        })
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    if n > max_threads() {
        eprintln!(
            "warning: {n} threads asked for (--threads or NEURITE_NUM_THREADS); using {}, \
             {MAX_THREADS_PER_CPU} per CPU",
            max_threads()
        );
        n = max_threads();
    }
    keep_freed_memory();
    // One worker per allowed CPU: keep worker `i` on the `i`-th (see `pins_workers`).
    let cpus = allowed_cpus();
    let pin = pins_workers(n, cpus.len(), std::env::var("NEURITE_PIN").ok().as_deref());
    // The commands run on a worker (`run_on_worker`): give the workers the main thread's
    // usual stack.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .stack_size(8 << 20)
        .start_handler(move |i| {
            if pin {
                pin_to(cpus[i]);
            }
        })
        .build_global();
}

/// Whether the `n` workers are pinned, one to each of the process's `cpus` CPUs: when they
/// are as many (the default, all cores) and `NEURITE_PIN` is not `0`.
///
/// Unpinned, a process's first products split over the cores could run at one core's speed
/// while Linux spread the fresh workers; pinned, they start where they stay
/// (docs/performance.md, change 42). With fewer workers than CPUs nothing is pinned, so that
/// two such processes do not share the first cores.
fn pins_workers(n: usize, cpus: usize, env: Option<&str>) -> bool {
    n > 1 && n == cpus && env.map(str::trim) != Some("0")
}

/// The CPUs this process may run on, in order.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bit set that sched_getaffinity fills.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Keeps the calling thread on `cpu`.
fn pin_to(cpu: usize) {
    // SAFETY: as in `allowed_cpus`; a failure leaves the thread where it was.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

thread_local! {
    /// Whether this worker thread runs a [`run_on_worker`] driver (not a piece of a kernel).
    static DRIVER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// How many [`as_piece`] calls this thread is inside.
    static PIECES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `f` on one of the pool's worker threads instead of the calling thread, and returns
/// its result; a call from a worker runs `f` where it is. A parallel kernel started from
/// outside the pool hands its work to the workers and puts the caller to sleep until they
/// finish: two thread wake-ups per kernel, which dominate loops of small kernels (a
/// training step of a small model, sampling). Started from a worker, the kernel's pieces go
/// to that worker's own queue, it starts on them at once, and the other workers steal the
/// rest. Kernels inside `f` split their work as they would outside. The `neurite` command
/// runs every subcommand this way; a program of its own should run its loop of training
/// steps inside one call.
///
/// While `f` runs, the other workers stay awake ([`keep_awake`]): between two kernels an
/// idle rayon worker goes to sleep after a few dozen rounds of looking for work, and the
/// next kernel's first piece then waits for its wake-up (a futex call on each side).
pub fn run_on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    ensure_started();
    if rayon::current_thread_index().is_some() {
        return f();
    }
    let done = AtomicBool::new(false);
    let done = &done;
    rayon::scope(move |s| {
        let driver = rayon::current_thread_index();
        for _ in 1..num_threads() {
            s.spawn(move |_| keep_awake(done, driver));
        }
        // `done` also when `f` panics: the scope waits for the helpers before it unwinds.
        struct Done<'a>(&'a AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let _done = Done(done);
        DRIVER.with(|d| d.set(true));
        let out = f();
        DRIVER.with(|d| d.set(false));
        out
    })
}

/// Runs the pool's jobs on this worker as they come, until `done`: a worker that never
/// sleeps picks up a kernel's pieces at once. When idle it gives its core away
/// (`sched_yield`) rather than spin, so other threads of the process still run. On the
/// driver's own thread (it may run a queued helper while it waits inside a kernel) it
/// returns at once: spinning there would stop the work it waits for.
fn keep_awake(done: &AtomicBool, driver: Option<usize>) {
    if rayon::current_thread_index() == driver {
        return;
    }
    while !done.load(Ordering::Acquire) {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::thread::yield_now();
        }
    }
}

/// Runs `f` as one piece of a parallel kernel: products and layers inside it stay on the
/// calling thread ([`inside_kernel`] is true), also when the thread is a driver's. Kernels
/// whose pieces start products (a convolution's slices of images, a batch of products,
/// the two gradients of a linear layer side by side) wrap each piece in it.
pub fn as_piece<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            PIECES.with(|p| p.set(p.get() - 1));
        }
    }
    PIECES.with(|p| p.set(p.get() + 1));
    let _leave = Leave;
    f()
}

/// Whether a parallel job started here would spread over threads: there is more than one,
/// and the caller is not itself a piece of a parallel job (whose work stays on its thread).
/// Layers above the kernels ask this instead of reading the thread marks.
pub fn can_split() -> bool {
    num_threads() > 1 && !inside_kernel()
}

/// `f(i)` for every `i` in `0..n`, in parallel, each call one piece of the job (the kernels
/// it starts stay on its thread, [`as_piece`]); the results in order.
pub fn map_pieces<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync + Send) -> Vec<R> {
    ensure_started();
    (0..n).into_par_iter().map(|i| as_piece(|| f(i))).collect()
}

/// `f(i, piece)` for the consecutive pieces of `chunk` elements of `out` (the last may be
/// shorter), in parallel, each call one piece of the job ([`as_piece`]).
pub fn for_each_piece_mut<T: Send>(
    out: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    ensure_started();
    out.par_chunks_mut(chunk.max(1))
        .enumerate()
        .for_each(|(i, piece)| as_piece(|| f(i, piece)));
}

/// `a` and `b` side by side, each one piece of the job (each on one thread), rather than
/// one after the other with each split over the threads.
pub fn join_pieces<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    ensure_started();
    rayon::join(|| as_piece(a), || as_piece(b))
}

/// Whether the calling thread runs inside a piece of a parallel kernel: a worker thread
/// that is not a [`run_on_worker`] driver, or any thread inside [`as_piece`]. Products
/// there stay on the thread.
pub fn inside_kernel() -> bool {
    rayon::current_thread_index().is_some()
        && (!DRIVER.with(|d| d.get()) || PIECES.with(|p| p.get() > 0))
}

/// Number of threads kernels spread work over.
pub fn num_threads() -> usize {
    ensure_started();
    rayon::current_num_threads()
}

/// Applies `f(chunk_start, chunk)` to consecutive chunks of `out`, in parallel when `out`
/// is large. Chunks are multiples of `align` elements so a kernel can keep rows whole.
pub fn for_each_chunk_mut<T: Send>(
    out: &mut [T],
    align: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let n = out.len();
    let align = align.max(1);
    if n < PAR_MIN_ELEMENTS || num_threads() == 1 {
        f(0, out);
        return;
    }
    let pieces = num_threads() * 4;
    let chunk = n.div_ceil(pieces).div_ceil(align) * align;
    out.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(i, c)| f(i * chunk, c));
}

/// Tells glibc's allocator to keep freed blocks for reuse instead of returning them to the
/// kernel. A training step frees and reallocates the same activation and gradient buffers
/// every step; by default each buffer over 128 KiB is a fresh `mmap`, so every step would
/// pay a page fault and a page clear per 4 KiB of activations (docs/performance.md).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator thresholds; called before the worker threads
    // exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// A pointer that may cross to another rayon thread: each thread writes a disjoint block
/// (a block of `C` in `gemm` and `packed_gemm`, a head's elements in `attention`).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub(crate) *mut T);
// SAFETY: the blocks handed to different threads never overlap (see the users:
// `sgemm_blas_split`, `gemm_packed_on`, the attention's `forward_with` and `backward_with`).
unsafe impl<T> Send for SendPtr<T> {}
// SAFETY: as for `Send`; a shared `&SendPtr` only lets a thread copy the pointer out.
unsafe impl<T> Sync for SendPtr<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_are_pinned_only_when_there_is_one_per_cpu() {
        assert!(pins_workers(2, 2, None));
        assert!(pins_workers(8, 8, Some("1")));
        assert!(!pins_workers(2, 2, Some("0")));
        assert!(!pins_workers(2, 2, Some(" 0 ")));
        // Fewer workers than CPUs (`--threads 1` on two cores), or more: left to Linux.
        assert!(!pins_workers(1, 2, None));
        assert!(!pins_workers(1, 1, None));
        assert!(!pins_workers(4, 2, None));
    }

    #[test]
    fn the_allowed_cpus_include_the_one_this_thread_runs_on() {
        let cpus = allowed_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]), "{cpus:?}");
        // SAFETY: a plain query.
        let here = unsafe { libc::sched_getcpu() };
        assert!(
            here >= 0 && cpus.contains(&(here as usize)),
            "{here} not in {cpus:?}"
        );
    }

    #[test]
    fn a_driver_runs_on_a_worker_and_is_not_inside_a_kernel() {
        assert_eq!(rayon::current_thread_index(), None);
        let (value, on_worker, inside) = run_on_worker(|| {
            (
                41 + 1,
                rayon::current_thread_index().is_some(),
                inside_kernel(),
            )
        });
        assert_eq!(value, 42);
        assert!(on_worker, "the driver runs on a pool worker");
        assert!(!inside, "the driver itself is not inside a kernel");
    }

    #[test]
    fn a_panicking_driver_releases_its_helpers_and_the_panic_reaches_the_caller() {
        // The helpers spin until the driver is done: a panic must end them too, or the call
        // would never return.
        let caught = std::panic::catch_unwind(|| {
            run_on_worker(|| -> usize {
                let sum: usize = (0..1000usize).into_par_iter().sum();
                panic!("driver failed after {sum}")
            })
        });
        let message = caught.expect_err("the panic reaches the caller");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert_eq!(text, "driver failed after 499500");
        // The pool still works afterwards.
        assert_eq!(
            run_on_worker(|| (0..10usize).into_par_iter().sum::<usize>()),
            45
        );
    }

    #[test]
    fn every_piece_of_a_drivers_kernel_counts_as_inside_one() {
        let (before, pieces, after) = run_on_worker(|| {
            let before = inside_kernel();
            // The driver runs some of these pieces itself.
            let pieces: Vec<bool> = (0..16)
                .into_par_iter()
                .map(|_| as_piece(inside_kernel))
                .collect();
            (before, pieces, inside_kernel())
        });
        assert!(
            !before && !after,
            "the driver outside its pieces is not inside a kernel"
        );
        assert_eq!(pieces, vec![true; 16]);
        // Nested pieces leave the count where it was.
        let nested = run_on_worker(|| as_piece(|| (as_piece(inside_kernel), inside_kernel())));
        assert_eq!(nested, (true, true));
    }
}
