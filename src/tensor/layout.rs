//! Shapes, strides and broadcasting: the bookkeeping that lets views share storage.

/// Number of elements of a shape (1 for a scalar of rank 0).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Row-major (C-order) strides of a shape, in elements.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; shape.len()];
    let mut acc = 1;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc *= d;
    }
    strides
}

/// The shape two operands broadcast to, as NumPy and PyTorch define it: dimensions are
/// aligned from the right and each pair must be equal or contain a 1.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() {
            1
        } else {
            a[i - (rank - a.len())]
        };
        let db = if i < rank - b.len() {
            1
        } else {
            b[i - (rank - b.len())]
        };
        out[i] = match (da, db) {
            _ if da == db => da,
            (1, d) | (d, 1) => d,
            _ => return None,
        };
    }
    Some(out)
}

/// Where a tensor's elements sit in its storage: `storage[offset + sum(index[i] * strides[i])]`.
/// A stride of 0 repeats an element along that dimension (broadcasting without copying).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Size of each dimension.
    pub shape: Vec<usize>,
    /// Elements between consecutive indices of each dimension (0 for a broadcast one).
    pub strides: Vec<usize>,
    /// Position of the first element in the storage.
    pub offset: usize,
}

impl Layout {
    /// A dense row-major layout starting at element 0.
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// True when the elements are dense and in row-major order (dimensions of size 1 may
    /// carry any stride).
    pub fn is_contiguous(&self) -> bool {
        let mut expected = 1;
        for (&d, &s) in self.shape.iter().zip(&self.strides).rev() {
            if d != 1 && s != expected {
                return false;
            }
            expected *= d;
        }
        true
    }

    /// The layout seen with `shape` as a broadcast of this one (stride 0 on new or
    /// stretched dimensions). `None` if the shapes do not broadcast that way.
    pub fn broadcast_to(&self, shape: &[usize]) -> Option<Layout> {
        if shape.len() < self.shape.len() {
            return None;
        }
        let lead = shape.len() - self.shape.len();
        let mut strides = vec![0; shape.len()];
        for i in 0..self.shape.len() {
            let (d, t) = (self.shape[i], shape[lead + i]);
            strides[lead + i] = if d == t {
                self.strides[i]
            } else if d == 1 {
                0
            } else {
                return None;
            };
        }
        Some(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// The storage index of every element, in row-major order of the logical index, passed
    /// to `f` as runs: `f(start, stride, len)` covers `start + k * stride` for `k < len`.
    pub fn for_each_run(&self, mut f: impl FnMut(usize, usize, usize)) {
        let rank = self.shape.len();
        if rank == 0 {
            f(self.offset, 1, 1);
            return;
        }
        if self.numel() == 0 {
            return;
        }
        let inner = self.shape[rank - 1];
        let inner_stride = self.strides[rank - 1];
        let mut index = vec![0usize; rank - 1];
        let mut start = self.offset;
        loop {
            f(start, inner_stride, inner);
            // Odometer increment over the outer dimensions.
            let mut d = rank - 1;
            loop {
                if d == 0 {
                    return;
                }
                d -= 1;
                index[d] += 1;
                start += self.strides[d];
                if index[d] < self.shape[d] {
                    break;
                }
                start -= self.strides[d] * self.shape[d];
                index[d] = 0;
            }
        }
    }
}

/// Copies the elements `layout` selects from `src` into `dst` in row-major order.
pub fn gather_strided(src: &[f32], layout: &Layout, dst: &mut [f32]) {
    let mut pos = 0;
    layout.for_each_run(|start, stride, len| {
        let out = &mut dst[pos..pos + len];
        if stride == 1 {
            out.copy_from_slice(&src[start..start + len]);
        } else {
            for (k, o) in out.iter_mut().enumerate() {
                *o = src[start + k * stride];
            }
        }
        pos += len;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_rules_match_numpy() {
        assert_eq!(broadcast_shapes(&[2, 3], &[3]), Some(vec![2, 3]));
        assert_eq!(broadcast_shapes(&[4, 1, 5], &[3, 1]), Some(vec![4, 3, 5]));
        assert_eq!(broadcast_shapes(&[], &[2]), Some(vec![2]));
        assert_eq!(broadcast_shapes(&[2, 3], &[2]), None);
    }

    #[test]
    fn strided_gather_follows_a_transpose() {
        let src: Vec<f32> = (0..6).map(|x| x as f32).collect();
        // [2, 3] transposed to [3, 2].
        let layout = Layout {
            shape: vec![3, 2],
            strides: vec![1, 3],
            offset: 0,
        };
        assert!(!layout.is_contiguous());
        let mut dst = vec![0.0; 6];
        gather_strided(&src, &layout, &mut dst);
        assert_eq!(dst, vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]);
    }

    #[test]
    fn broadcast_layout_repeats_with_stride_zero() {
        let l = Layout::contiguous(&[3, 1])
            .broadcast_to(&[2, 3, 4])
            .unwrap();
        assert_eq!(l.strides, vec![0, 1, 0]);
        assert!(Layout::contiguous(&[3]).broadcast_to(&[2]).is_none());
    }
}
