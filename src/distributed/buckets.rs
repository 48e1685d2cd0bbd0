//! How gradients are grouped for the all-reduce: PyTorch DDP's buckets.
//!
//! Parameters are taken in the **reverse** of their registration order, which is about the
//! order backward finishes their gradients (the last layer's first), and packed into
//! buckets of about `cap_bytes` (DDP's `bucket_cap_mb`, 25 MB by default); a parameter
//! larger than the cap is a bucket of its own. One all-reduce per bucket: few enough that
//! the per-message latency stays small, and the first buckets start while backward is still
//! computing the gradients of the early layers.

/// The default bucket size, PyTorch DDP's 25 MB.
pub const DEFAULT_BUCKET_BYTES: usize = 25 * 1024 * 1024;

/// One bucket: which parameters, and where each sits in its flat buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Indices into the parameter list, in the order they were packed.
    pub params: Vec<usize>,
    /// Each parameter's first element in the bucket's buffer.
    pub offsets: Vec<usize>,
    /// Elements in the buffer.
    pub len: usize,
}

/// Packs parameters of `sizes` elements (f32, in registration order) into buckets of at
/// most `cap_bytes`, last parameter first.
///
/// ```
/// use neurite::distributed::plan_buckets;
/// // Four parameters of 10, 20, 30 and 40 floats, buckets of 64 floats (256 bytes).
/// let b = plan_buckets(&[10, 20, 30, 40], 256);
/// assert_eq!(b.iter().map(|b| b.params.clone()).collect::<Vec<_>>(), vec![vec![3], vec![2, 1, 0]]);
/// assert_eq!(b[1].offsets, vec![0, 30, 50]);
/// ```
pub fn plan_buckets(sizes: &[usize], cap_bytes: usize) -> Vec<Bucket> {
    let cap = (cap_bytes / std::mem::size_of::<f32>()).max(1);
    let mut out: Vec<Bucket> = Vec::new();
    let mut current = Bucket {
        params: Vec::new(),
        offsets: Vec::new(),
        len: 0,
    };
    for i in (0..sizes.len()).rev() {
        if !current.params.is_empty() && current.len + sizes[i] > cap {
            out.push(std::mem::replace(
                &mut current,
                Bucket {
                    params: Vec::new(),
                    offsets: Vec::new(),
                    len: 0,
                },
            ));
        }
        current.params.push(i);
        current.offsets.push(current.len);
        current.len += sizes[i];
    }
    if !current.params.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_every_parameter_once_last_first_within_the_cap() {
        let sizes = [5usize, 300, 7, 64, 64, 1, 90];
        for cap in [4usize, 256, 400, 1000, 1 << 20] {
            let b = plan_buckets(&sizes, cap);
            let flat: Vec<usize> = b.iter().flat_map(|b| b.params.clone()).collect();
            assert_eq!(
                flat,
                (0..sizes.len()).rev().collect::<Vec<_>>(),
                "cap {cap}"
            );
            for bucket in &b {
                let total: usize = bucket.params.iter().map(|&i| sizes[i]).sum();
                assert_eq!(total, bucket.len);
                // Over the cap only as a single parameter larger than it.
                assert!(
                    bucket.len * 4 <= cap || bucket.params.len() == 1,
                    "cap {cap}: {bucket:?}"
                );
                let mut at = 0;
                for (&i, &o) in bucket.params.iter().zip(&bucket.offsets) {
                    assert_eq!(o, at);
                    at += sizes[i];
                }
            }
        }
        assert_eq!(plan_buckets(&sizes, 1 << 20).len(), 1);
        assert_eq!(plan_buckets(&sizes, 4).len(), sizes.len());
        assert!(plan_buckets(&[], 100).is_empty());
    }
}
