//! Recycled tensor buffers.
//!
//! A training step allocates the same activation and gradient buffers as the step before and
//! frees them when the graph goes. When a tensor's storage is dropped its buffer comes here
//! (by length); [`take`] hands it out again to a kernel that overwrites every element, so the
//! new tensor skips both the allocation and the clearing pass of `vec![0.0; n]` (`memset`
//! was 4-6% of the W3 and W4 profiles). The contents of a recycled buffer are old values,
//! never uninitialised memory: this is safe Rust, and a kernel that forgot an element would
//! give a wrong number that the tests see, not undefined behaviour.
//!
//! Only buffers of at least [`MIN_LEN`] elements are kept (small ones are cheap to allocate
//! and clear), and at most [`MAX_BYTES`] in all: a buffer that would overflow the pool
//! empties it first, so buffers of a phase that is over (evaluation's larger batches) do not
//! sit there while training allocates around them.

use std::collections::HashMap;
use std::sync::Mutex;

/// Shorter buffers are not recycled.
pub const MIN_LEN: usize = 4096;
/// Most bytes the pool holds.
pub const MAX_BYTES: usize = 64 << 20;

#[derive(Default)]
struct Pool {
    by_len: HashMap<usize, Vec<Vec<f32>>>,
    bytes: usize,
}

static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// A buffer of `n` elements with unspecified (but initialised) contents: for an output that
/// the caller overwrites completely.
pub fn take(n: usize) -> Vec<f32> {
    if n >= MIN_LEN {
        let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pool) = guard.as_mut() {
            if let Some(v) = pool.by_len.get_mut(&n).and_then(Vec::pop) {
                pool.bytes -= n * 4;
                return v;
            }
        }
    }
    vec![0.0; n]
}

/// A buffer of `n` zeros (a recycled one cleared, or a fresh one).
pub fn take_zeroed(n: usize) -> Vec<f32> {
    let mut v = take(n);
    v.fill(0.0);
    v
}

/// Gives a buffer back for reuse (dropped instead when small or oddly sized; when the pool
/// is full, the buffers it held are dropped first).
pub fn give(v: Vec<f32>) {
    let n = v.len();
    if n < MIN_LEN || v.capacity() != n {
        return;
    }
    let mut guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let pool = guard.get_or_insert_with(Pool::default);
    if pool.bytes + n * 4 > MAX_BYTES {
        // Full: most likely of buffers some other phase used (evaluation's larger batch,
        // a different model). Let them all go (the allocator reuses that memory) and keep
        // collecting what is freed now.
        pool.by_len.clear();
        pool.bytes = 0;
    }
    if n * 4 <= MAX_BYTES {
        pool.bytes += n * 4;
        pool.by_len.entry(n).or_default().push(v);
    }
}

/// Bytes the pool holds now.
pub fn held_bytes() -> usize {
    let guard = POOL.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().map_or(0, |p| p.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_and_small_ones_do_not() {
        // A length no other test uses, so that parallel tests do not take it first.
        let n = MIN_LEN + 12_345;
        let mut v = take(n);
        v[7] = 42.0;
        let ptr = v.as_ptr();
        give(v);
        let again = take(n);
        assert_eq!(again.as_ptr(), ptr, "the freed buffer is handed out again");
        assert_eq!(
            again[7], 42.0,
            "contents are kept (the caller overwrites them)"
        );
        assert!(take_zeroed(n).iter().all(|&x| x == 0.0));
        give(vec![1.0; 10]);
        assert_eq!(take(10), vec![0.0; 10], "small buffers are fresh");
        assert!(held_bytes() <= MAX_BYTES);
    }
}
