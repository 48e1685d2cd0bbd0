//! Finding the data directory: `--data DIR`, then `$NEURITE_DATA`, then the user's cache
//! directory, then the system-wide package location.
//!
//! A place the user named (`--data` or `$NEURITE_DATA`) that lacks the files is an error
//! naming it, not a silent fall-back to another copy: training on data other than the
//! one asked for is worse than stopping.

use super::mnist::{find_file, DatasetKind, MNIST_FILES};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The environment variable that names a data directory.
pub const DATA_ENV: &str = "NEURITE_DATA";

/// The directory of the `dataset-fashion-mnist` package.
pub const SYSTEM_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// Where to look for Fashion-MNIST: see [`find_data_dir_for`].
pub fn find_data_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    find_data_dir_for(DatasetKind::FashionMnist, explicit)
}

/// The directory holding the four files of `kind`: `explicit` (from `--data`), else
/// `$NEURITE_DATA`, else `<cache>/neurite/<kind>` (e.g. `~/.cache/neurite/fashion-mnist`),
/// else `/usr/share/datasets/<kind>`.
pub fn find_data_dir_for(kind: DatasetKind, explicit: Option<&Path>) -> Result<PathBuf> {
    let env = std::env::var_os(DATA_ENV).filter(|v| !v.is_empty());
    let mut fallbacks = Vec::new();
    if let Some(cache) = dirs::cache_dir() {
        fallbacks.push(cache.join("neurite").join(kind.name()));
    }
    fallbacks.push(Path::new("/usr/share/datasets").join(kind.name()));
    search(kind, explicit, env.as_deref().map(Path::new), &fallbacks)
}

/// The names of the files of [`MNIST_FILES`] that `dir` lacks.
pub fn missing_files(dir: &Path) -> Vec<&'static str> {
    MNIST_FILES
        .iter()
        .copied()
        .filter(|base| find_file(dir, base).is_none())
        .collect()
}

/// The search itself, with its places given, so that tests need not touch the environment.
fn search(
    kind: DatasetKind,
    explicit: Option<&Path>,
    env: Option<&Path>,
    fallbacks: &[PathBuf],
) -> Result<PathBuf> {
    let named = [(explicit, "--data"), (env, DATA_ENV)];
    for (dir, origin) in named {
        if let Some(dir) = dir {
            let missing = missing_files(dir);
            if missing.is_empty() {
                return Ok(dir.to_path_buf());
            }
            bail!(
                "the data directory {} (from {origin}) {}; put the four {} files there \
                 (plain or .gz): {}",
                dir.display(),
                describe_missing(dir, &missing),
                kind.name(),
                MNIST_FILES.join(", ")
            );
        }
    }
    let mut looked = String::new();
    for dir in fallbacks {
        let missing = missing_files(dir);
        if missing.is_empty() {
            return Ok(dir.clone());
        }
        looked.push_str(&format!(
            "\n  {}: {}",
            dir.display(),
            describe_missing(dir, &missing)
        ));
    }
    bail!(
        "no {} data found. Looked in:{looked}\nInstall it with `apt-get install \
         dataset-fashion-mnist` (Debian), or put the four files ({}, plain or .gz) in one of \
         those places, or pass --data DIR or set {DATA_ENV}=DIR",
        kind.name(),
        MNIST_FILES.join(", ")
    )
}

/// "does not exist" or "lacks a, b".
fn describe_missing(dir: &Path, missing: &[&str]) -> String {
    if !dir.is_dir() {
        "does not exist".to_string()
    } else if missing.len() == MNIST_FILES.len() {
        "holds none of the files".to_string()
    } else {
        format!("lacks {}", missing.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::idx::tests::temp_dir;

    fn fill(dir: &Path, files: &[&str]) {
        for f in files {
            std::fs::write(dir.join(format!("{f}.gz")), b"").unwrap();
        }
    }

    #[test]
    fn order_is_explicit_env_then_fallbacks() {
        let root = temp_dir("discover-order");
        let (a, b, c) = (root.join("a"), root.join("b"), root.join("c"));
        for d in [&a, &b, &c] {
            std::fs::create_dir_all(d).unwrap();
            fill(d, &MNIST_FILES);
        }
        let k = DatasetKind::FashionMnist;
        let fb = [c.clone()];
        assert_eq!(search(k, Some(&a), Some(&b), &fb).unwrap(), a);
        assert_eq!(search(k, None, Some(&b), &fb).unwrap(), b);
        assert_eq!(search(k, None, None, &fb).unwrap(), c);
    }

    #[test]
    fn explicit_without_files_is_an_error_not_a_fallback() {
        let root = temp_dir("discover-explicit");
        let (good, partial) = (root.join("good"), root.join("partial"));
        std::fs::create_dir_all(&good).unwrap();
        std::fs::create_dir_all(&partial).unwrap();
        fill(&good, &MNIST_FILES);
        fill(&partial, &MNIST_FILES[..2]);
        let k = DatasetKind::FashionMnist;
        let msg = search(k, Some(&partial), None, std::slice::from_ref(&good))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("(from --data)"), "{msg}");
        assert!(
            msg.contains("lacks t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte"),
            "{msg}"
        );
        let msg = search(k, None, Some(&root.join("nope")), &[good])
            .unwrap_err()
            .to_string();
        assert!(msg.contains("(from NEURITE_DATA) does not exist"), "{msg}");
    }

    #[test]
    fn nothing_found_lists_every_place_and_the_package() {
        let root = temp_dir("discover-none");
        let empty = root.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let gone = root.join("gone");
        let msg = search(
            DatasetKind::FashionMnist,
            None,
            None,
            &[empty.clone(), gone.clone()],
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains(&format!("{}: holds none of the files", empty.display())),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("{}: does not exist", gone.display())),
            "{msg}"
        );
        assert!(
            msg.contains("apt-get install dataset-fashion-mnist"),
            "{msg}"
        );
    }
}
