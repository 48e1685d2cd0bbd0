//! Checkpoints as safetensors files with PyTorch `state_dict` names and layouts.
//!
//! Tensors are written as F32, except the names PyTorch keeps as integers
//! (`num_batches_tracked`), written as I64 so `load_state_dict` in PyTorch accepts the file.
//! Reading accepts F32, F64, F16-free integer types (I64, I32, U8) and converts them to f32.
//! Files are written to a temporary name and renamed, so a crash never leaves a broken one.
//! The same checkpoint always gives the same bytes: the header's entries are written in
//! name order (see [`canonical_header`]).

use crate::tensor::Tensor;
use anyhow::{bail, Context};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// A checkpoint's free-form string metadata, in key order.
pub type Metadata = BTreeMap<String, String>;

/// Tensors by name plus free-form string metadata.
#[derive(Default)]
pub struct Checkpoint {
    /// The tensors, in the order they are written, each under its PyTorch name.
    pub tensors: Vec<(String, Tensor)>,
    /// String metadata stored in the safetensors header (model, recipe, normalization).
    pub metadata: Metadata,
}

/// Whether PyTorch stores this buffer as an integer.
fn is_integer_buffer(name: &str) -> bool {
    name.ends_with("num_batches_tracked")
}

impl Checkpoint {
    /// A checkpoint of `tensors` with empty metadata.
    pub fn new(tensors: Vec<(String, Tensor)>) -> Checkpoint {
        Checkpoint {
            tensors,
            metadata: Metadata::new(),
        }
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Serializes to safetensors bytes.
    pub fn to_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let values = t.to_vec();
                let (dtype, bytes) = if is_integer_buffer(name) {
                    (
                        Dtype::I64,
                        values
                            .iter()
                            .flat_map(|&v| (v as i64).to_le_bytes())
                            .collect(),
                    )
                } else {
                    (
                        Dtype::F32,
                        values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    )
                };
                (name.clone(), dtype, t.shape().to_vec(), bytes)
            })
            .collect();
        let views = buffers
            .iter()
            .map(|(n, d, s, b)| Ok((n.clone(), TensorView::new(*d, s.clone(), b)?)))
            .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
        let metadata: Option<HashMap<String, String>> = (!self.metadata.is_empty()).then(|| {
            self.metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        });
        let bytes = safetensors::serialize(views, &metadata)?;
        Ok(canonical_header(bytes))
    }

    /// Parses safetensors bytes; `source` names the file in errors.
    pub fn from_bytes(bytes: &[u8], source: &str) -> anyhow::Result<Checkpoint> {
        let (_, meta) = SafeTensors::read_metadata(bytes).with_context(|| {
            format!("{source} is not a readable safetensors file (truncated or corrupt?)")
        })?;
        let st = SafeTensors::deserialize(bytes)
            .with_context(|| format!("{source} is not a valid safetensors file"))?;
        let mut tensors = Vec::new();
        // Keep the file's order of names stable (sorted) for reproducible listings.
        let mut names: Vec<String> = st.names().into_iter().cloned().collect();
        names.sort();
        for name in names {
            let view = st.tensor(&name)?;
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
                Dtype::F64 => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
                Dtype::I64 => data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
                Dtype::I32 => data.chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32).collect(),
                Dtype::U8 => data.iter().map(|&b| b as f32).collect(),
                other => bail!("{source}: tensor '{name}' has type {other:?}; neurite reads F32, F64, I64, I32 and U8"),
            };
            tensors.push((name, Tensor::from_vec(values, view.shape())));
        }
        Ok(Checkpoint {
            tensors,
            metadata: meta
                .metadata()
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        })
    }

    /// Writes the file atomically (temporary file, then rename). A checkpoint with a
    /// non-finite value is refused before anything is written (see `Checkpoint::check_finite`).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        self.check_finite(&format!("refusing to write {}", path.display()))?;
        let bytes = self.to_bytes()?;
        write_atomic(path, &bytes)
    }

    /// Reads a checkpoint file with errors that name it.
    pub fn load(path: &Path) -> anyhow::Result<Checkpoint> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
        Checkpoint::from_bytes(&bytes, &path.display().to_string())
    }
}

/// `bytes` (a safetensors file) with its JSON header's keys in name order, at every level.
///
/// The safetensors crate writes the metadata from a `HashMap`, so its key order (and the
/// file's bytes) changed from one save to the next. The rewritten header has the same keys
/// and values, so the same length; it is padded with spaces as the crate pads it. Tensor
/// entries carry their own data offsets, so their order in the header is free.
fn canonical_header(mut bytes: Vec<u8>) -> Vec<u8> {
    let Some(len) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize)
    else {
        return bytes;
    };
    let Some(header) = bytes.get(8..8 + len) else {
        return bytes;
    };
    // Parsed into sorted maps (also with serde_json's `preserve_order` feature), nested ones
    // included.
    let Ok(entries) = serde_json::from_slice::<BTreeMap<String, serde_json::Value>>(header) else {
        return bytes;
    };
    // Every entry is an object (a tensor's, or the metadata's); anything else is left as it
    // was written.
    let Some(sorted) = entries
        .into_iter()
        .map(|(k, v)| Some((k, serde_json::from_value(v).ok()?)))
        .collect::<Option<BTreeMap<String, BTreeMap<String, serde_json::Value>>>>()
    else {
        return bytes;
    };
    let text = serde_json::to_string(&sorted).unwrap_or_default();
    if text.len() <= len && !text.is_empty() {
        let (new, pad) = bytes[8..8 + len].split_at_mut(text.len());
        new.copy_from_slice(text.as_bytes());
        pad.fill(b' ');
    }
    bytes
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// readers see either the old file or the complete new one.
///
/// The temporary name carries the process id (`.NAME.PID.tmp`), so two processes never
/// write the same temporary file; it is removed when the write fails (a full disk, say).
/// The data reaches the disk before the rename, and the rename before this returns, so a
/// crash of the machine also leaves the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let file_name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let tmp = dir.join(temporary_name(&file_name.to_string_lossy()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|_| {
            std::fs::rename(&tmp, path)
                .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    // The rename itself is durable once the directory is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The temporary name under which this process writes `file_name` before renaming it.
fn temporary_name(file_name: &str) -> String {
    format!(".{file_name}.{}{TEMPORARY_SUFFIX}", std::process::id())
}

/// The metadata key that names a classical model's method (`perceptron`, `linear-svm`,
/// `svm`; see `crate::classic`): a checkpoint that has it holds no network.
pub const CLASSIC_METHOD_KEY: &str = "classic.method";

/// How every temporary file of [`write_atomic`] ends.
pub const TEMPORARY_SUFFIX: &str = ".tmp";

/// Whether `name` is a temporary file that [`write_atomic`] leaves behind when its process
/// is killed mid-write (also those of earlier versions, `.NAME.tmp`).
pub fn is_temporary_name(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(TEMPORARY_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_integer_buffers_and_metadata() {
        let mut ck = Checkpoint::new(vec![
            (
                "fc.weight".into(),
                Tensor::from_vec(vec![1.5, -2.0, 3.25, 0.0], &[2, 2]),
            ),
            ("bn1.num_batches_tracked".into(), Tensor::scalar(42.0)),
        ]);
        ck.metadata.insert("normalize.mean".into(), "0.2860".into());
        let bytes = ck.to_bytes().unwrap();
        let back = Checkpoint::from_bytes(&bytes, "test").unwrap();
        assert_eq!(
            back.get("fc.weight").unwrap().to_vec(),
            vec![1.5, -2.0, 3.25, 0.0]
        );
        assert_eq!(back.get("fc.weight").unwrap().shape(), &[2, 2]);
        assert_eq!(back.get("bn1.num_batches_tracked").unwrap().item(), 42.0);
        assert_eq!(back.metadata["normalize.mean"], "0.2860");
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(
            st.tensor("bn1.num_batches_tracked").unwrap().dtype(),
            Dtype::I64
        );
    }

    #[test]
    fn the_same_checkpoint_always_gives_the_same_bytes() {
        // Two checkpoints with the same contents, built apart: the crate's metadata map
        // iterated its 24 keys in a different order each time before the header was sorted.
        let build = || {
            let mut ck = Checkpoint::new(vec![
                ("b.weight".into(), Tensor::from_vec(vec![1.0, 2.0], &[2])),
                ("a.num_batches_tracked".into(), Tensor::scalar(3.0)),
            ]);
            for i in 0..24 {
                ck.metadata.insert(format!("key{i}"), format!("value {i}"));
            }
            ck.to_bytes().unwrap()
        };
        let first = build();
        for _ in 0..4 {
            assert_eq!(build(), first);
        }
        let header_len = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&first[8..8 + header_len]).unwrap();
        let key0 = header.find("\"key0\"").unwrap();
        assert!(key0 < header.find("\"key1\"").unwrap());
        assert!(header.find("\"key10\"").unwrap() < header.find("\"key2\"").unwrap());
        let back = Checkpoint::from_bytes(&first, "test").unwrap();
        assert_eq!(back.metadata.len(), 24);
        assert_eq!(back.metadata["key7"], "value 7");
        assert_eq!(back.get("b.weight").unwrap().to_vec(), vec![1.0, 2.0]);
        assert_eq!(back.get("a.num_batches_tracked").unwrap().item(), 3.0);
    }

    #[test]
    fn truncated_file_gets_a_clear_error() {
        let ck = Checkpoint::new(vec![("w".into(), Tensor::ones(&[10]))]);
        let bytes = ck.to_bytes().unwrap();
        let err = Checkpoint::from_bytes(&bytes[..bytes.len() - 5], "model.safetensors")
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("model.safetensors"), "{err:#}");
        let err = Checkpoint::from_bytes(b"not a checkpoint", "x.safetensors")
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("x.safetensors"));
    }

    #[test]
    fn atomic_write_leaves_no_temporary_file() {
        let dir = std::env::temp_dir().join(format!("neurite-ck-{}", std::process::id()));
        let path = dir.join("a.safetensors");
        Checkpoint::new(vec![("w".into(), Tensor::ones(&[3]))])
            .save(&path)
            .unwrap();
        assert_eq!(
            Checkpoint::load(&path).unwrap().get("w").unwrap().to_vec(),
            vec![1.0; 3]
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
