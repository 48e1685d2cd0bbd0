//! A training run's output directory, held by one process at a time.
//!
//! [`RunDir::open`] creates the directory and takes an advisory lock on `OUT/.lock`
//! (`flock`), held until the [`RunDir`] is dropped and released by the kernel when the
//! process dies, so a killed run never leaves a stale lock. A second process that opens the
//! same directory stops at once with an error that names the holder's pid. Under the lock,
//! temporary files left by a killed write ([`crate::checkpoint::write_atomic`]) are removed.

use crate::checkpoint::is_temporary_name;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock file's name inside the output directory.
pub const LOCK_FILE: &str = ".lock";

/// Extensions of the files a run writes (what a leftover temporary file can be named after).
const RUN_FILE_EXTENSIONS: [&str; 4] = [".safetensors", ".jsonl", ".png", ".json"];

/// An output directory locked for this process.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    /// Holds the lock while open.
    _lock: File,
}

impl RunDir {
    /// Creates `path` if needed, locks it and removes leftover temporary files; fails when
    /// another process holds it.
    pub fn open(path: &Path) -> Result<RunDir> {
        std::fs::create_dir_all(path)
            .with_context(|| format!("cannot create the output directory {}", path.display()))?;
        let lock_path = path.join(LOCK_FILE);
        let mut lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot open the lock file {}", lock_path.display()))?;
        if !try_lock(&lock)? {
            let holder = read_holder(&mut lock);
            let who = if holder.is_empty() {
                "another neurite process".to_string()
            } else {
                format!("another neurite process (pid {holder})")
            };
            bail!(
                "{who} is writing to {}; wait for it to finish, or give another --out",
                path.display()
            );
        }
        // The pid, for the message above, written over a crashed holder's in place (padded to
        // a fixed width, so that a reader never finds the file empty but in its first
        // moments).
        let _ = lock
            .rewind()
            .and_then(|_| writeln!(lock, "{:<20}", std::process::id()))
            .and_then(|_| lock.set_len(21));
        let dir = RunDir {
            path: path.to_path_buf(),
            _lock: lock,
        };
        dir.remove_leftovers()?;
        Ok(dir)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A file inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Removes temporary files that a killed write left: no other process writes here.
    fn remove_leftovers(&self) -> Result<()> {
        let entries = std::fs::read_dir(&self.path)
            .with_context(|| format!("cannot list {}", self.path.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_leftover(&name) {
                let path = entry.path();
                std::fs::remove_file(&path).with_context(|| {
                    format!(
                        "cannot remove the leftover temporary file {}",
                        path.display()
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Removes `names` from the directory (those present), for a run that starts over.
    pub fn remove_files(&self, names: &[&str]) -> Result<()> {
        for name in names {
            let path = self.join(name);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()))
                }
            }
        }
        Ok(())
    }
}

/// Whether `name` is a temporary file of a run's own files (`.checkpoint.safetensors.PID.tmp`),
/// not some other hidden file the user keeps in the directory.
fn is_leftover(name: &str) -> bool {
    if !is_temporary_name(name) {
        return false;
    }
    let stem = &name[1..name.len() - crate::checkpoint::TEMPORARY_SUFFIX.len()];
    // Without the `.PID` that newer temporary names carry.
    let stem = match stem.rsplit_once('.') {
        Some((base, pid)) if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => stem,
    };
    RUN_FILE_EXTENSIONS.iter().any(|ext| stem.ends_with(ext))
}

/// The pid in the lock file of another process, which writes it right after taking the
/// lock: read again for a moment while the file is still empty.
fn read_holder(lock: &mut File) -> String {
    for _ in 0..20 {
        let mut text = String::new();
        let _ = lock.rewind().and_then(|_| lock.read_to_string(&mut text));
        let pid = text.trim();
        if !pid.is_empty() {
            return pid.to_string();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    String::new()
}

/// Takes an exclusive lock on `file` (`flock` on Unix) without waiting; false when another
/// process has it.
fn try_lock(file: &File) -> Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).context("cannot lock the output directory's lock file")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("neurite-rundir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = temp("lock");
        let first = RunDir::open(&dir).unwrap();
        let err = RunDir::open(&dir).unwrap_err().to_string();
        assert!(
            err.contains(&format!("pid {}", std::process::id())) && err.contains("--out"),
            "{err}"
        );
        drop(first);
        let again = RunDir::open(&dir).unwrap();
        assert_eq!(again.path(), dir.as_path());
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn leftover_temporary_files_of_the_run_are_removed_and_others_kept() {
        let dir = temp("leftovers");
        std::fs::create_dir_all(&dir).unwrap();
        let leftovers = [
            ".checkpoint.safetensors.4242.tmp",
            ".model.safetensors.tmp",
            ".metrics.jsonl.17.tmp",
            ".loss.png.9.tmp",
        ];
        let kept = [
            ".bashrc.tmp",
            "notes.tmp",
            "checkpoint.safetensors",
            ".x.safetensors.tmpx",
        ];
        for name in leftovers.iter().chain(&kept) {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let run = RunDir::open(&dir).unwrap();
        for name in leftovers {
            assert!(!dir.join(name).exists(), "{name} was kept");
        }
        for name in kept {
            assert!(dir.join(name).exists(), "{name} was removed");
        }
        drop(run);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
