//! Per-sample transforms of an image input `[C, H, W]` (torchvision's `transforms`):
//! [`Resize`] (bilinear), [`CenterCrop`], [`RandomCrop`], [`Normalize`], the augmentations of
//! [`Augment`], and [`Compose`] to chain them. Apply them to a data set with
//! [`super::DatasetExt::map`].
//!
//! A transform gets a generator only in training (`Some(rng)`, seeded by the loader from
//! (seed, epoch, position in the epoch), so batches never depend on the number of workers);
//! in evaluation (`None`) a random transform does its deterministic counterpart:
//! [`RandomCrop`] cuts the centre, [`Augment`] does nothing.
//!
//! ```
//! use neurite::data::{Compose, Dataset, DatasetExt, Normalize, RandomCrop, Resize, TensorDataset};
//! use neurite::Tensor;
//! let x = Tensor::from_vec((0..2 * 3 * 8 * 8).map(|v| v as f32).collect(), &[2, 3, 8, 8]);
//! let ds = TensorDataset::classes(x, &[0, 1]).unwrap().map(
//!     Compose::new()
//!         .then(Resize::new(6, 6))
//!         .then(RandomCrop::new(4, 4, 0))
//!         .then(Normalize::new(vec![0.5; 3], vec![0.25; 3])),
//! );
//! assert_eq!(ds.get(1).unwrap().inputs[0].shape, vec![3, 4, 4]);
//! ```

use super::augment::Augment;
use super::dataset::Input;
use rand::{Rng, RngCore};

/// A change to one input, deterministic or drawing from `rng` (`None` in evaluation).
pub trait Transform: Send + Sync {
    /// Transforms `input` in place (its shape may change).
    fn apply(&self, input: &mut Input, rng: Option<&mut dyn RngCore>);
}

/// `[C, H, W]` of an image input; panics with the transform's name on another rank.
fn chw(input: &Input, what: &str) -> [usize; 3] {
    match input.shape[..] {
        [c, h, w] => [c, h, w],
        [h, w] => [1, h, w],
        _ => panic!(
            "{what}: expects an image input [C, H, W], got shape {:?}",
            input.shape
        ),
    }
}

/// Transforms applied in order.
#[derive(Default)]
pub struct Compose {
    steps: Vec<Box<dyn Transform>>,
}

impl Compose {
    /// No transform yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `t`.
    pub fn then(mut self, t: impl Transform + 'static) -> Self {
        self.steps.push(Box::new(t));
        self
    }
}

impl Transform for Compose {
    fn apply(&self, input: &mut Input, mut rng: Option<&mut dyn RngCore>) {
        for t in &self.steps {
            match rng {
                Some(ref mut r) => t.apply(input, Some(&mut **r)),
                None => t.apply(input, None),
            }
        }
    }
}

/// Bilinear resize to `height x width`, as PyTorch's `interpolate(mode="bilinear",
/// align_corners=False)` without antialiasing (half-pixel centres, edges clamped).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resize {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
}

impl Resize {
    /// A resize to `height x width` (both positive).
    pub fn new(height: usize, width: usize) -> Self {
        assert!(height > 0 && width > 0, "Resize: the size must be positive");
        Resize { height, width }
    }
}

/// For each output position along an axis of `n_in` -> `n_out`: the first source index,
/// whether there is a next one, and the weight of the next one.
fn bilinear_axis(n_in: usize, n_out: usize) -> Vec<(usize, usize, f32)> {
    let scale = n_in as f32 / n_out as f32;
    (0..n_out)
        .map(|d| {
            let src = ((d as f32 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src as usize).min(n_in - 1);
            let step = usize::from(i0 + 1 < n_in);
            (i0, step, src - i0 as f32)
        })
        .collect()
}

impl Transform for Resize {
    fn apply(&self, input: &mut Input, _rng: Option<&mut dyn RngCore>) {
        let [c, h, w] = chw(input, "Resize");
        let (oh, ow) = (self.height, self.width);
        if (h, w) == (oh, ow) {
            input.shape = vec![c, h, w];
            return;
        }
        let (ys, xs) = (bilinear_axis(h, oh), bilinear_axis(w, ow));
        let mut out = vec![0.0f32; c * oh * ow]; // [C, oh, ow]
        for (plane, dst) in input
            .data
            .chunks_exact(h * w)
            .zip(out.chunks_exact_mut(oh * ow))
        {
            for (row, &(y0, dy, ly)) in dst.chunks_exact_mut(ow).zip(&ys) {
                let (r0, r1) = (&plane[y0 * w..][..w], &plane[(y0 + dy) * w..][..w]);
                for (o, &(x0, dx, lx)) in row.iter_mut().zip(&xs) {
                    let top = r0[x0] + (r0[x0 + dx] - r0[x0]) * lx;
                    let bottom = r1[x0] + (r1[x0 + dx] - r1[x0]) * lx;
                    *o = top + (bottom - top) * ly;
                }
            }
        }
        *input = Input {
            data: out,
            shape: vec![c, oh, ow],
        };
    }
}

/// Cuts the `height x width` window at `(top, left)`; a window past the image is zero there
/// (as torchvision pads a crop larger than the image).
fn crop(input: &mut Input, [c, h, w]: [usize; 3], [oh, ow]: [usize; 2], top: isize, left: isize) {
    let mut out = vec![0.0f32; c * oh * ow]; // [C, oh, ow]
    for (plane, dst) in input
        .data
        .chunks_exact(h * w)
        .zip(out.chunks_exact_mut(oh * ow))
    {
        for (y, row) in dst.chunks_exact_mut(ow).enumerate() {
            let sy = y as isize + top;
            if sy < 0 || sy >= h as isize {
                continue;
            }
            for (x, o) in row.iter_mut().enumerate() {
                let sx = x as isize + left;
                if sx >= 0 && sx < w as isize {
                    *o = plane[sy as usize * w + sx as usize];
                }
            }
        }
    }
    *input = Input {
        data: out,
        shape: vec![c, oh, ow],
    };
}

/// The centre `height x width` window (torchvision's `CenterCrop`: the offset rounds as
/// `round((H - h) / 2)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CenterCrop {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
}

impl CenterCrop {
    /// A centre crop to `height x width` (both positive).
    pub fn new(height: usize, width: usize) -> Self {
        assert!(
            height > 0 && width > 0,
            "CenterCrop: the size must be positive"
        );
        CenterCrop { height, width }
    }
}

/// torchvision's centre offset: `int(round((n_in - n_out) / 2.0))` (ties to even).
fn centre(n_in: usize, n_out: usize) -> isize {
    ((n_in as f64 - n_out as f64) / 2.0).round_ties_even() as isize
}

impl Transform for CenterCrop {
    fn apply(&self, input: &mut Input, _rng: Option<&mut dyn RngCore>) {
        let s = chw(input, "CenterCrop");
        let (top, left) = (centre(s[1], self.height), centre(s[2], self.width));
        crop(input, s, [self.height, self.width], top, left);
    }
}

/// A `height x width` window at a random offset of the image padded by `padding` zeros
/// (torchvision's `RandomCrop(size, padding)`); the centre window in evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomCrop {
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    /// Zero pixels added on each side before cutting.
    pub padding: usize,
}

impl RandomCrop {
    /// A random crop to `height x width` after padding by `padding`.
    pub fn new(height: usize, width: usize, padding: usize) -> Self {
        assert!(
            height > 0 && width > 0,
            "RandomCrop: the size must be positive"
        );
        RandomCrop {
            height,
            width,
            padding,
        }
    }
}

impl Transform for RandomCrop {
    fn apply(&self, input: &mut Input, rng: Option<&mut dyn RngCore>) {
        let s @ [_, h, w] = chw(input, "RandomCrop");
        let (ph, pw) = (h + 2 * self.padding, w + 2 * self.padding);
        let p = self.padding as isize;
        let (top, left) = match rng {
            Some(rng) => {
                let top = rng.gen_range(0..=ph.saturating_sub(self.height)) as isize;
                let left = rng.gen_range(0..=pw.saturating_sub(self.width)) as isize;
                (top - p, left - p)
            }
            None => (centre(h, self.height), centre(w, self.width)),
        };
        crop(input, s, [self.height, self.width], top, left);
    }
}

/// Per-channel `(x - mean) / std` (torchvision's `Normalize`).
#[derive(Debug, Clone, PartialEq)]
pub struct Normalize {
    /// One mean per channel.
    pub mean: Vec<f32>,
    /// One standard deviation per channel.
    pub std: Vec<f32>,
}

impl Normalize {
    /// Normalization by `mean` and `std` (one each per channel, std positive).
    pub fn new(mean: Vec<f32>, std: Vec<f32>) -> Self {
        assert!(
            mean.len() == std.len() && std.iter().all(|&s| s > 0.0),
            "Normalize: needs one mean and one positive std per channel, got {mean:?} and {std:?}"
        );
        Normalize { mean, std }
    }
}

impl From<super::Normalization> for Normalize {
    fn from(n: super::Normalization) -> Self {
        Normalize::new(n.mean, n.std)
    }
}

impl Transform for Normalize {
    fn apply(&self, input: &mut Input, _rng: Option<&mut dyn RngCore>) {
        let [c, h, w] = chw(input, "Normalize");
        assert_eq!(
            c,
            self.mean.len(),
            "Normalize: {} channels of statistics for an input of {c} channels",
            self.mean.len()
        );
        for (ch, plane) in input.data.chunks_exact_mut(h * w).enumerate() {
            let (m, inv) = (self.mean[ch], 1.0 / self.std[ch]);
            for p in plane {
                *p = (*p - m) * inv;
            }
        }
    }
}

impl Transform for Augment {
    /// The augmentations in training; nothing in evaluation.
    fn apply(&self, input: &mut Input, rng: Option<&mut dyn RngCore>) {
        if let (Some(mut rng), true) = (rng, self.is_active()) {
            let s = chw(input, "Augment");
            Augment::apply(self, &mut input.data, s, &mut rng, &mut Vec::new());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn input(data: &[f32], shape: &[usize]) -> Input {
        Input::new(data.to_vec(), shape)
    }

    #[test]
    fn resize_matches_pytorch_bilinear_by_hand() {
        // F.interpolate(tensor([[0., 1.], [2., 3.]])[None, None], size=4, mode="bilinear")
        let mut x = input(&[0.0, 1.0, 2.0, 3.0], &[1, 2, 2]);
        Resize::new(4, 4).apply(&mut x, None);
        #[rustfmt::skip]
        let want = [
            0.0, 0.25, 0.75, 1.0,
            0.5, 0.75, 1.25, 1.5,
            1.5, 1.75, 2.25, 2.5,
            2.0, 2.25, 2.75, 3.0,
        ];
        assert_eq!(x.shape, vec![1, 4, 4]);
        assert_eq!(x.data, want);
        // Down by 2 averages each 2 x 2 block's centre: the mean of the block.
        let mut y = input(&(0..16).map(|v| v as f32).collect::<Vec<_>>(), &[1, 4, 4]);
        Resize::new(2, 2).apply(&mut y, None);
        assert_eq!(y.data, vec![2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn center_crop_takes_the_middle_of_each_channel() {
        let data: Vec<f32> = (0..2 * 4 * 4).map(|v| v as f32).collect();
        let mut x = input(&data, &[2, 4, 4]);
        CenterCrop::new(2, 2).apply(&mut x, None);
        assert_eq!(x.data, vec![5.0, 6.0, 9.0, 10.0, 21.0, 22.0, 25.0, 26.0]);
        // Larger than the image: zeros around it.
        let mut x = input(&[1.0], &[1, 1, 1]);
        CenterCrop::new(3, 3).apply(&mut x, None);
        assert_eq!(x.data, vec![0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn random_crop_is_a_window_of_the_padded_image_and_the_centre_in_eval() {
        let data: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut seen = std::collections::HashSet::new();
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..200 {
            let mut x = input(&data, &[1, 3, 3]);
            RandomCrop::new(2, 2, 1).apply(&mut x, Some(&mut rng));
            // Every window of the padded 5 x 5 image is one of 16 offsets.
            assert!(x.data.iter().all(|v| (0.0..=9.0).contains(v)));
            seen.insert(x.data.iter().map(|&v| v as i32).collect::<Vec<_>>());
        }
        assert_eq!(seen.len(), 16, "every offset is drawn");
        let mut x = input(&data, &[1, 3, 3]);
        RandomCrop::new(2, 2, 1).apply(&mut x, None);
        // torchvision's offset round(0.5) = 0.
        assert_eq!(x.data, vec![1.0, 2.0, 4.0, 5.0]);
    }

    #[test]
    fn normalize_is_per_channel() {
        let mut x = input(&[1.0, 3.0, 10.0, 20.0], &[2, 1, 2]);
        Normalize::new(vec![1.0, 10.0], vec![2.0, 5.0]).apply(&mut x, None);
        assert_eq!(x.data, vec![0.0, 1.0, 0.0, 2.0]);
    }

    #[test]
    fn augment_draws_in_training_only_and_compose_chains() {
        let flip: Augment = "flip".parse().unwrap();
        let mut x = input(&[1.0, 2.0], &[1, 1, 2]);
        Transform::apply(&flip, &mut x, None);
        assert_eq!(x.data, vec![1.0, 2.0]);
        let mut rng = StdRng::seed_from_u64(0);
        let flipped = (0..20).any(|_| {
            let mut x = input(&[1.0, 2.0], &[1, 1, 2]);
            Transform::apply(&flip, &mut x, Some(&mut rng));
            x.data == [2.0, 1.0]
        });
        assert!(flipped);
        let mut x = input(&[0.0, 1.0, 2.0, 3.0], &[1, 2, 2]);
        let t = Compose::new()
            .then(Resize::new(4, 4))
            .then(CenterCrop::new(2, 2))
            .then(Normalize::new(vec![1.0], vec![0.5]));
        t.apply(&mut x, None);
        assert_eq!(x.data, vec![-0.5, 0.5, 1.5, 2.5]);
    }
}
