//! [`load_folder`]: scan, decide the shape, decode (or reuse the cache), split.

use super::cache::{self, CacheTarget, Decoded};
use super::decode::{preprocess_into, read_header, read_image, ImageHeader};
use super::describe::{CacheUse, FolderDescription, SkippedFile, SplitSource};
use super::scan::{scan, ImageFile};
use super::{FolderData, FolderOptions, FolderSplit, LazyImages};
use crate::data::split::{check_fraction, split_indices};
use crate::data::ImageDataset;
use anyhow::{bail, Result};
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::Path;

/// The share of the machine's memory that decoded images may take by default.
const DEFAULT_MEMORY_SHARE: f64 = 0.5;

/// The machine's memory in bytes (Linux's `/proc/meminfo`), or 8 GiB where unknown.
fn total_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("MemTotal:"))?.to_owned();
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(8 << 30)
}

/// Reads an image folder into a training and a test split (the module's documentation has
/// the rules: layout, shape, unreadable images, cache, memory budget).
pub fn load_folder(root: &Path, opts: &FolderOptions) -> Result<FolderData> {
    check_options(opts)?;
    let scan = scan(root)?;
    if scan.ignored > 0 && !opts.quiet {
        eprintln!(
            "note: ignored {} file(s) under {} that are hidden or not .png/.jpg/.jpeg images \
             (for example {})",
            scan.ignored,
            root.display(),
            scan.ignored_example
                .as_deref()
                .unwrap_or(Path::new("?"))
                .display()
        );
    }
    let test_files: &[ImageFile] = scan.test.as_ref().map_or(&[], |(_, f)| f.as_slice());
    let all: Vec<&ImageFile> = scan.train.iter().chain(test_files).collect();
    let target = CacheTarget {
        root,
        channels: opts.channels,
        size: opts.size,
    };
    let key = target.key(&scan.train, test_files);
    let cache_path = opts.cache_dir.as_ref().map(|d| target.path(d));
    let cached = cache_path
        .as_ref()
        .and_then(|p| cache::read(p, key, opts.quiet).map(|d| (p.clone(), d)));
    let (decoded, cache_use) = match cached {
        Some((path, d)) if d.skipped.len() == all.len() => (d, CacheUse::Reused(path)),
        _ => {
            let mut skipped = vec![None; all.len()];
            let shape = decide_shape(&all, opts, &mut skipped)?;
            check_bad(root, &skipped, opts.max_bad_fraction)?;
            let good = skipped.iter().filter(|s| s.is_none()).count();
            let budget = opts
                .memory_budget
                .unwrap_or_else(|| (total_memory() as f64 * DEFAULT_MEMORY_SHARE) as u64);
            if (good * shape.iter().product::<usize>()) as u64 > budget {
                return lazy(&scan, &all, &skipped, shape, opts);
            }
            let decoded = decode_all(&all, shape, skipped);
            check_bad(root, &decoded.skipped, opts.max_bad_fraction)?;
            let cache_use = match &cache_path {
                None => CacheUse::Off,
                Some(p) => match cache::write(p, key, &decoded) {
                    Ok(()) => CacheUse::Written(p.clone()),
                    Err(e) => {
                        if !opts.quiet {
                            eprintln!("warning: {e:#}; going on without a cache");
                        }
                        CacheUse::Failed(format!("{e:#}"))
                    }
                },
            };
            (decoded, cache_use)
        }
    };
    let skipped = report_skipped(&all, &decoded.skipped, opts.quiet);
    let labels: Vec<u8> = all
        .iter()
        .zip(&decoded.skipped)
        .filter(|(_, s)| s.is_none())
        .map(|(f, _)| f.label as u8)
        .collect();
    let in_train = good_in_train(&scan, &decoded.skipped);
    let (train_idx, test_idx, split) = split_good(&scan, &labels, in_train, opts)?;
    let shape = decoded.shape;
    let classes = scan.classes.clone();
    let test = gather(&decoded.pixels, &labels, &test_idx, shape);
    let mut pixels = decoded.pixels;
    compact(&mut pixels, &train_idx, shape.iter().product());
    let train_labels: Vec<u8> = train_idx.iter().map(|&i| labels[i]).collect();
    let train = ImageDataset::new(pixels, train_labels, shape, classes.clone())?;
    let test = ImageDataset::new(test.0, test.1, shape, classes.clone())?;
    let description = describe(
        &scan,
        shape,
        split,
        skipped,
        false,
        cache_use,
        &train.labels,
        &test.labels,
    );
    Ok(FolderData {
        train: FolderSplit::Memory(train),
        test: FolderSplit::Memory(test),
        description,
    })
}

fn check_options(opts: &FolderOptions) -> Result<()> {
    if let Some(c) = opts.channels {
        if c != 1 && c != 3 {
            bail!("{c} channels asked of an image folder: images have 1 (gray) or 3 (RGB)");
        }
    }
    if let Some([h, w]) = opts.size {
        if h == 0 || w == 0 {
            bail!("an image size of {h} x {w} asked of an image folder: give a positive size");
        }
    }
    if !(0.0..=1.0).contains(&opts.max_bad_fraction) {
        bail!(
            "max_bad_fraction {} is not a share between 0 and 1",
            opts.max_bad_fraction
        );
    }
    check_fraction(opts.test_fraction)
}

/// The target shape `[C, H, W]`: as given, else from the headers (which also finds the
/// files that cannot be read, marked in `skipped`).
fn decide_shape(
    all: &[&ImageFile],
    opts: &FolderOptions,
    skipped: &mut [Option<String>],
) -> Result<[usize; 3]> {
    if let (Some(c), Some([h, w])) = (opts.channels, opts.size) {
        return Ok([c, h, w]);
    }
    let headers: Vec<Result<ImageHeader>> = all.par_iter().map(|f| read_header(&f.path)).collect();
    let mut colour = false;
    let mut sizes: HashMap<(usize, usize), (usize, usize)> = HashMap::new(); // size -> (count, first)
    for (i, header) in headers.into_iter().enumerate() {
        match header {
            Ok(hd) => {
                colour |= hd.colour;
                let e = sizes.entry((hd.height, hd.width)).or_insert((0, i));
                e.0 += 1;
            }
            Err(e) => skipped[i] = Some(format!("{e:#}")),
        }
    }
    let common = sizes
        .iter()
        .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
        .map(|(&(h, w), _)| [h, w]);
    let Some([h, w]) = opts.size.or(common) else {
        bail!("none of the {} images could be read", all.len());
    };
    let c = opts.channels.unwrap_or(if colour { 3 } else { 1 });
    Ok([c, h, w])
}

/// Errors when more than `max_bad` of the images (and more than one) failed.
fn check_bad(root: &Path, skipped: &[Option<String>], max_bad: f64) -> Result<()> {
    let bad = skipped.iter().filter(|s| s.is_some()).count();
    let n = skipped.len();
    if bad > 1 && bad as f64 > max_bad * n as f64 {
        let first = skipped.iter().flatten().next().map_or("", |s| s.as_str());
        bail!(
            "{bad} of the {n} images under {} cannot be read (more than {}% of them; for \
             example: {first}); check that this is the folder you meant and that its copy is \
             complete, or remove the broken files",
            root.display(),
            max_bad * 100.0
        );
    }
    Ok(())
}

/// Decodes every file not already skipped on the rayon pool; the failures join `skipped`.
fn decode_all(all: &[&ImageFile], shape: [usize; 3], skipped: Vec<Option<String>>) -> Decoded {
    let per: usize = shape.iter().product();
    let mut pixels = vec![0u8; all.len() * per]; // [n, C, H, W]
    let skipped: Vec<Option<String>> = pixels
        .par_chunks_mut(per)
        .zip(all.par_iter())
        .zip(skipped.into_par_iter())
        .map(|((out, f), s)| match s {
            Some(s) => Some(s),
            None => match read_image(&f.path) {
                Ok(img) => {
                    preprocess_into(&img, shape, out);
                    None
                }
                Err(e) => Some(format!("{e:#}")),
            },
        })
        .collect();
    let good: Vec<usize> = (0..all.len()).filter(|&i| skipped[i].is_none()).collect();
    compact(&mut pixels, &good, per);
    Decoded {
        shape,
        skipped,
        pixels,
    }
}

/// Keeps images `keep` (increasing indices) of `pixels`, moved to the front in order.
fn compact(pixels: &mut Vec<u8>, keep: &[usize], per: usize) {
    for (k, &i) in keep.iter().enumerate() {
        if k != i {
            pixels.copy_within(i * per..(i + 1) * per, k * per);
        }
    }
    pixels.truncate(keep.len() * per);
}

/// Copies images `idx` out of `pixels`, with their labels.
fn gather(pixels: &[u8], labels: &[u8], idx: &[usize], shape: [usize; 3]) -> (Vec<u8>, Vec<u8>) {
    let per: usize = shape.iter().product();
    let mut out = Vec::with_capacity(idx.len() * per);
    for &i in idx {
        out.extend_from_slice(&pixels[i * per..(i + 1) * per]);
    }
    (out, idx.iter().map(|&i| labels[i]).collect())
}

/// Warns about each skipped file (once) and lists them.
fn report_skipped(all: &[&ImageFile], skipped: &[Option<String>], quiet: bool) -> Vec<SkippedFile> {
    let list: Vec<SkippedFile> = all
        .iter()
        .zip(skipped)
        .filter_map(|(f, s)| {
            s.as_ref().map(|reason| SkippedFile {
                path: f.path.clone(),
                reason: reason.clone(),
            })
        })
        .collect();
    if !quiet && !list.is_empty() {
        for s in &list {
            eprintln!("warning: skipping an unreadable image: {}", s.reason);
        }
        eprintln!(
            "warning: skipped {} of {} images that could not be read",
            list.len(),
            all.len()
        );
    }
    list
}

/// How many readable images belong to the training split (they come first).
fn good_in_train(scan: &super::scan::Scan, skipped: &[Option<String>]) -> usize {
    skipped[..scan.train.len()]
        .iter()
        .filter(|s| s.is_none())
        .count()
}

/// Splits the readable images (indices into them) into train and test.
fn split_good(
    scan: &super::scan::Scan,
    labels: &[u8],
    in_train: usize,
    opts: &FolderOptions,
) -> Result<(Vec<usize>, Vec<usize>, SplitSource)> {
    Ok(match &scan.test {
        Some((name, _)) => (
            (0..in_train).collect(),
            (in_train..labels.len()).collect(),
            SplitSource::Folder(name.clone()),
        ),
        None => {
            let labels: Vec<usize> = labels.iter().map(|&l| l as usize).collect();
            let s = split_indices(labels.len(), Some(&labels), opts.test_fraction, opts.seed)?;
            (
                s.train,
                s.test,
                SplitSource::Fraction {
                    fraction: opts.test_fraction,
                    seed: opts.seed,
                },
            )
        }
    })
}

/// The splits as lists of files decoded on demand.
fn lazy(
    scan: &super::scan::Scan,
    all: &[&ImageFile],
    skipped: &[Option<String>],
    shape: [usize; 3],
    opts: &FolderOptions,
) -> Result<FolderData> {
    let skipped_list = report_skipped(all, skipped, opts.quiet);
    let good: Vec<&ImageFile> = all
        .iter()
        .zip(skipped)
        .filter(|(_, s)| s.is_none())
        .map(|(f, _)| *f)
        .collect();
    let labels: Vec<u8> = good.iter().map(|f| f.label as u8).collect();
    let (train_idx, test_idx, split) =
        split_good(scan, &labels, good_in_train(scan, skipped), opts)?;
    let part = |idx: &[usize]| {
        LazyImages::new(
            idx.iter().map(|&i| good[i].path.clone()).collect(),
            idx.iter().map(|&i| labels[i]).collect(),
            shape,
            scan.classes.clone(),
        )
    };
    let (train, test) = (part(&train_idx), part(&test_idx));
    let description = describe(
        scan,
        shape,
        split,
        skipped_list,
        true,
        CacheUse::Off,
        train.labels(),
        test.labels(),
    );
    Ok(FolderData {
        train: FolderSplit::Lazy(train),
        test: FolderSplit::Lazy(test),
        description,
    })
}

#[allow(clippy::too_many_arguments)]
fn describe(
    scan: &super::scan::Scan,
    shape: [usize; 3],
    split: SplitSource,
    skipped: Vec<SkippedFile>,
    lazy: bool,
    cache: CacheUse,
    train_labels: &[u8],
    test_labels: &[u8],
) -> FolderDescription {
    let per_class = |labels: &[u8]| {
        let mut n = vec![0; scan.classes.len()];
        for &l in labels {
            n[l as usize] += 1;
        }
        n
    };
    FolderDescription {
        root: scan.root.clone(),
        class_names: scan.classes.clone(),
        train_per_class: per_class(train_labels),
        test_per_class: per_class(test_labels),
        shape,
        split,
        skipped,
        ignored: scan.ignored,
        lazy,
        cache,
    }
}
