//! Threading: one rayon pool for the whole process, sized from `--threads`,
//! `NEURITE_NUM_THREADS` or the number of cores.

use rayon::prelude::*;

/// Below this many elements an elementwise kernel runs on the calling thread: spreading it
/// over threads costs more than it saves.
pub const PAR_MIN_ELEMENTS: usize = 1 << 15;

/// Sets the number of worker threads: `threads`, else `$NEURITE_NUM_THREADS`, else all
/// cores. Call once at start-up, before any kernel runs; later calls are ignored.
pub fn init_threads(threads: Option<usize>) -> usize {
    let n = threads
        .or_else(|| {
            std::env::var("NEURITE_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
        })
        .filter(|&n| n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
    keep_freed_memory();
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global();
    rayon::current_num_threads()
}

thread_local! {
    /// Whether this worker thread runs a [`run_on_worker`] driver (not a piece of a kernel).
    static DRIVER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` on one of the pool's worker threads instead of the calling thread, and returns
/// its result. A parallel kernel started from outside the pool hands its work to the
/// workers and puts the caller to sleep until they finish: two thread wake-ups per kernel,
/// which dominate loops of small kernels (sampling). Started from a worker, the kernel's
/// pieces go to that worker's own queue, it starts on them at once, and the other workers
/// steal the rest. Kernels inside `f` split their work as they would outside.
pub fn run_on_worker<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if num_threads() == 1 || rayon::current_thread_index().is_some() {
        return f();
    }
    let grad = crate::is_grad_enabled();
    rayon::join(
        move || {
            DRIVER.with(|d| d.set(true));
            let out = if grad { f() } else { crate::no_grad(f) };
            DRIVER.with(|d| d.set(false));
            out
        },
        || (),
    )
    .0
}

/// Whether the calling thread runs inside a piece of a parallel kernel (a worker thread
/// that is not a [`run_on_worker`] driver): products there stay on the thread. Pieces that
/// the driver's own thread runs count as outside (a product there may split again); only
/// sampling drives from a worker so far, and its pieces start no products.
pub fn inside_kernel() -> bool {
    rayon::current_thread_index().is_some() && !DRIVER.with(|d| d.get())
}

/// Number of threads kernels spread work over.
pub fn num_threads() -> usize {
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
/// every step; by default each buffer over 128 KiB was a fresh `mmap`, so every step paid a
/// page fault and a page clear per 4 KiB of activations (about 8% of W3's time).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_driver_on_a_worker_keeps_grad_mode_and_still_splits_products() {
        let (value, inside, grad) = crate::no_grad(|| {
            run_on_worker(|| (41 + 1, inside_kernel(), crate::is_grad_enabled()))
        });
        assert_eq!(value, 42);
        assert!(!inside, "the driver itself is not inside a kernel");
        assert!(!grad, "no_grad carries over to the driver");
        assert!(run_on_worker(crate::is_grad_enabled));
        // A product started by the driver gives the reference's values.
        let (m, k, n) = (96, 80, 112);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 - 2.0).collect();
        let g = crate::kernels::gemm::Gemm::new(m, n, k);
        let mut want = vec![0.0; m * n];
        crate::kernels::gemm::sgemm_reference(g, &a, &b, &mut want);
        let got = run_on_worker(|| {
            let mut c = vec![0.0; m * n];
            crate::kernels::gemm::sgemm(g, &a, &b, &mut c);
            c
        });
        assert_eq!(got, want);
    }
}
