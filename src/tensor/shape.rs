//! [`IntoShape`]: the shapes `reshape` accepts, with PyTorch's `-1` for "whatever size
//! makes the element count match".

/// A requested shape: `&[usize]`, `&Vec<usize>`, arrays of `usize`, or signed sizes
/// (`&[isize]`, `&[i32; N]`, …) where one entry may be `-1`. A literal such as
/// `&[-1, 10]` is an `&[i32; 2]`; `&[2, 3]` works as well. `usize::MAX` also stands for
/// an inferred size, as it did before signed shapes were accepted.
pub trait IntoShape {
    /// The dimensions, with `None` for the one to infer. `op` names the caller in panics.
    fn dims(&self, op: &str) -> Vec<Option<usize>>;

    /// The full shape for `count` elements (the inferred size filled in). `from` is the
    /// shape being reshaped, for the message when the sizes do not fit.
    fn resolve(&self, count: usize, from: &[usize], op: &str) -> Vec<usize> {
        let dims = self.dims(op);
        let unknown = dims.iter().filter(|d| d.is_none()).count();
        let show = || {
            dims.iter()
                .map(|d| d.map_or("-1".to_string(), |v| v.to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        assert!(
            unknown <= 1,
            "{op}: only one dimension can be -1, got [{}]",
            show()
        );
        let known: usize = dims.iter().flatten().product();
        let shape: Vec<usize> = if unknown == 1 {
            assert!(
                known > 0 && count.is_multiple_of(known),
                "{op}: shape [{}] is invalid for input of shape {from:?} ({count} elements)",
                show()
            );
            dims.iter().map(|d| d.unwrap_or(count / known)).collect()
        } else {
            dims.iter().flatten().copied().collect()
        };
        assert_eq!(
            shape.iter().product::<usize>(),
            count,
            "{op}: shape [{}] is invalid for input of shape {from:?} ({count} elements)",
            show()
        );
        shape
    }
}

fn unsigned(v: usize) -> Option<usize> {
    (v != usize::MAX).then_some(v)
}

fn signed(v: i64, op: &str) -> Option<usize> {
    match v {
        -1 => None,
        v if v < 0 => {
            panic!("{op}: invalid shape dimension {v} (sizes are >= 0, or -1 to infer one)")
        }
        v => Some(v as usize),
    }
}

impl IntoShape for &[usize] {
    fn dims(&self, _op: &str) -> Vec<Option<usize>> {
        self.iter().map(|&v| unsigned(v)).collect()
    }
}

impl<const N: usize> IntoShape for &[usize; N] {
    fn dims(&self, _op: &str) -> Vec<Option<usize>> {
        self.iter().map(|&v| unsigned(v)).collect()
    }
}

impl IntoShape for &Vec<usize> {
    fn dims(&self, _op: &str) -> Vec<Option<usize>> {
        self.iter().map(|&v| unsigned(v)).collect()
    }
}

impl IntoShape for Vec<usize> {
    fn dims(&self, _op: &str) -> Vec<Option<usize>> {
        self.iter().map(|&v| unsigned(v)).collect()
    }
}

/// Signed shapes: slices, arrays and vectors of `isize`, `i32` and `i64`.
macro_rules! signed_shapes {
    ($($t:ty),*) => {$(
        impl IntoShape for &[$t] {
            fn dims(&self, op: &str) -> Vec<Option<usize>> {
                self.iter().map(|&v| signed(v as i64, op)).collect()
            }
        }
        impl<const N: usize> IntoShape for &[$t; N] {
            fn dims(&self, op: &str) -> Vec<Option<usize>> {
                self.iter().map(|&v| signed(v as i64, op)).collect()
            }
        }
        impl IntoShape for &Vec<$t> {
            fn dims(&self, op: &str) -> Vec<Option<usize>> {
                self.iter().map(|&v| signed(v as i64, op)).collect()
            }
        }
    )*};
}

signed_shapes!(isize, i32, i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_resolves() {
        assert_eq!((&[-1, 10]).resolve(30, &[30], "reshape"), vec![3, 10]);
        assert_eq!((&[2, 3]).resolve(6, &[6], "reshape"), vec![2, 3]);
        let v: Vec<usize> = vec![3, 2];
        let by_ref: &Vec<usize> = &v;
        assert_eq!(by_ref.resolve(6, &[6], "reshape"), vec![3, 2]);
        assert_eq!((&v[..]).resolve(6, &[6], "reshape"), vec![3, 2]);
        assert_eq!((&[usize::MAX, 2]).resolve(6, &[6], "reshape"), vec![3, 2]);
        let s: &[isize] = &[2, -1, 1];
        assert_eq!(s.resolve(6, &[6], "reshape"), vec![2, 3, 1]);
        assert_eq!((&[-1]).resolve(0, &[0, 4], "reshape"), vec![0]);
        let empty: &[usize] = &[];
        assert_eq!(empty.resolve(1, &[1, 1], "reshape"), Vec::<usize>::new());
    }

    #[test]
    #[should_panic(expected = "reshape: only one dimension can be -1, got [-1, -1]")]
    fn two_inferred_dimensions_are_refused() {
        (&[-1, -1]).resolve(6, &[6], "reshape");
    }

    #[test]
    #[should_panic(
        expected = "reshape: shape [-1, 4] is invalid for input of shape [2, 3] (6 elements)"
    )]
    fn an_inferred_size_that_does_not_divide_is_refused() {
        (&[-1, 4]).resolve(6, &[2, 3], "reshape");
    }

    #[test]
    #[should_panic(
        expected = "reshape: shape [4, 2] is invalid for input of shape [2, 3] (6 elements)"
    )]
    fn a_size_mismatch_is_refused() {
        (&[4, 2]).resolve(6, &[2, 3], "reshape");
    }

    #[test]
    #[should_panic(expected = "reshape: invalid shape dimension -3")]
    fn a_negative_size_is_refused() {
        (&[-3, 2]).resolve(6, &[6], "reshape");
    }
}
