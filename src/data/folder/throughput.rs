//! How many images per second the folder reader prepares: decode, convert, resize, then
//! the training augmentation (random crop and flip) on `[0, 1]` floats — the work a loader
//! worker does per image when the folder is decoded on demand, for comparison with
//! torchvision's `ImageFolder` + `DataLoader(num_workers=N)`
//! (`bench/pytorch/imagefolder_loader.py`).

use super::decode::{preprocess_into, read_image};
use crate::data::Augment;
use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;
use std::path::PathBuf;
use std::time::Instant;

/// A throughput measurement.
#[derive(Clone, Copy, Debug)]
pub struct Throughput {
    /// Images prepared.
    pub images: usize,
    /// Wall-clock seconds it took.
    pub seconds: f64,
    /// `images / seconds`.
    pub images_per_second: f64,
}

/// Prepares every file of `files` `passes` times on a pool of `threads` threads: decode,
/// convert and resize to `shape` (`[C, H, W]`), scale to `[0, 1]`, then `augment`; returns
/// the images per second. An unreadable file is an error.
pub fn decode_throughput(
    files: &[PathBuf],
    shape: [usize; 3],
    augment: &Augment,
    threads: usize,
    passes: usize,
) -> Result<Throughput> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .context("cannot start the decoding threads")?;
    let len: usize = shape.iter().product();
    let start = Instant::now();
    let checksum: f64 = pool.install(|| -> Result<f64> {
        let mut total = 0.0;
        for pass in 0..passes {
            let sums: Vec<f64> = files
                .par_iter()
                .enumerate()
                .map_init(
                    || (vec![0u8; len], vec![0f32; len], Vec::new()),
                    |(bytes, floats, scratch), (i, path)| -> Result<f64> {
                        let img = read_image(path)?;
                        preprocess_into(&img, shape, bytes);
                        for (f, &b) in floats.iter_mut().zip(bytes.iter()) {
                            *f = b as f32 / 255.0;
                        }
                        let mut rng = StdRng::seed_from_u64((pass * files.len() + i) as u64);
                        augment.apply(floats, shape, &mut rng, scratch);
                        Ok(floats[0] as f64)
                    },
                )
                .collect::<Result<_>>()?;
            total += sums.iter().sum::<f64>();
        }
        Ok(total)
    })?;
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(checksum);
    let images = files.len() * passes;
    Ok(Throughput {
        images,
        seconds,
        images_per_second: images as f64 / seconds.max(1e-9),
    })
}
