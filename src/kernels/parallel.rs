//! Threading: one rayon pool for the whole process, sized from `--threads`,
//! `NEURITE_NUM_THREADS` or the number of cores.

use rayon::prelude::*;
use std::mem::MaybeUninit;

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

/// A new vector of `n` elements written by `f(chunk_start, chunk)` over consecutive chunks
/// (as [`for_each_chunk_mut`]), without clearing the memory first: for outputs that a
/// kernel overwrites anyway, the clearing pass was a tenth of some training steps
/// (`memset` in the profiles).
///
/// # Safety
/// `f` must write every element of every chunk it is given.
pub unsafe fn collect_chunks(
    n: usize,
    align: usize,
    f: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    let mut v: Vec<f32> = Vec::with_capacity(n);
    for_each_chunk_mut(&mut v.spare_capacity_mut()[..n], align, f);
    // SAFETY: the caller's `f` initialised all `n` elements.
    unsafe { v.set_len(n) };
    v
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
