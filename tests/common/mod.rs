//! What the integration tests share: fresh temporary directories and MNIST-layout data
//! written as IDX files. (Each test binary uses a part of it.)
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fresh, empty directory under the system's temporary directory, named after the test
/// and this process.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("neurite-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes an uncompressed IDX file of unsigned bytes.
pub fn write_idx(path: &Path, dims: &[u32], data: &[u8]) {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// Writes one split (`train` or `t10k`) of an MNIST-layout directory: `labels.len()` images
/// of 28 x 28 pixels, row after row in `images`.
pub fn write_split(dir: &Path, prefix: &str, images: &[u8], labels: &[u8]) {
    let n = labels.len() as u32;
    assert_eq!(images.len(), labels.len() * 784, "28 x 28 pixels per label");
    std::fs::create_dir_all(dir).unwrap();
    write_idx(
        &dir.join(format!("{prefix}-images-idx3-ubyte")),
        &[n, 28, 28],
        images,
    );
    write_idx(
        &dir.join(format!("{prefix}-labels-idx1-ubyte")),
        &[n],
        labels,
    );
}
