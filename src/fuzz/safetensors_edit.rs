//! Structure-aware edits of safetensors files: the JSON header is parsed, one field of it
//! is changed, and the file is rebuilt with a correct header length, so the edit reaches
//! the code behind the container's own checks (shapes, types, names, metadata values).
//!
//! Byte-level mutations alone rarely turn `"shape":[256,8]` into `"shape":[2048]` with
//! every length still right; these edits do it directly.

use super::mutate::Mutator;
use serde_json::{Map, Value};

/// Metadata keys that neurite reads.
const KEYS: [&str; 9] = [
    "model",
    "gpt.n_head",
    "gpt.vocab",
    "gpt.block_size",
    "normalize.mean",
    "normalize.std",
    "step",
    "epoch",
    "optimizer",
];

/// Metadata values on the edge of a check.
const VALUES: [&str; 16] = [
    "",
    "0",
    "1",
    "-1",
    "3",
    "nan",
    "inf",
    "-inf",
    "1e30",
    "99999999999999999999",
    "gpt",
    "resnet20",
    "mlp",
    "0.5,0.5",
    "0.5,",
    ",",
];

/// The size in bytes of one value of a safetensors type (none for an unknown name).
fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 1,
        "U16" | "I16" | "F16" | "BF16" => 2,
        "U32" | "I32" | "F32" => 4,
        "U64" | "I64" | "F64" => 8,
        _ => return None,
    })
}

/// A shape with `n` values, other than `old` when possible: flattened, split, transposed,
/// or with a unit dimension added.
fn reshape(m: &mut Mutator, old: &[usize], n: usize) -> Vec<usize> {
    match m.below(6) {
        0 => vec![n],
        1 => old.iter().rev().copied().collect(),
        2 => {
            let mut s = old.to_vec();
            let at = m.below(s.len() + 1);
            s.insert(at, 1);
            s
        }
        3 => vec![],
        4 if n.is_multiple_of(2) && n > 0 => vec![2, n / 2],
        _ => {
            let mut s = old.to_vec();
            if !s.is_empty() {
                let i = m.below(s.len());
                s[i] = [0, 1, 2, usize::MAX / 2][m.below(4)];
            }
            s
        }
    }
}

/// `bytes` with one structured edit, or `None` when it is not a safetensors file.
pub fn edit(m: &mut Mutator, bytes: &[u8]) -> Option<Vec<u8>> {
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header = bytes.get(8..8usize.checked_add(len)?)?;
    let data = &bytes[8 + len..];
    let mut root: Map<String, Value> = serde_json::from_slice(header).ok()?;
    let names: Vec<String> = root
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    match m.below(5) {
        0 | 1 if !names.is_empty() => {
            // A tensor's shape (or type) changed, its bytes kept when the count allows.
            let name = &names[m.below(names.len())];
            let entry = root.get_mut(name)?.as_object_mut()?;
            let shape: Vec<usize> = entry
                .get("shape")?
                .as_array()?
                .iter()
                .map(|v| v.as_u64().map(|x| x as usize))
                .collect::<Option<_>>()?;
            let dtype = entry.get("dtype")?.as_str()?.to_string();
            let n: usize = shape.iter().product();
            if m.below(4) == 0 {
                let new = [
                    "F32", "I32", "U32", "F16", "BF16", "I64", "F64", "U8", "BOOL", "C64",
                ][m.below(10)];
                let bytes_per = dtype_size(&dtype)? * n;
                let new_n = dtype_size(new).map_or(n, |s| bytes_per / s);
                entry.insert("dtype".into(), Value::from(new));
                entry.insert("shape".into(), Value::from(vec![new_n]));
            } else {
                entry.insert("shape".into(), Value::from(reshape(m, &shape, n)));
            }
        }
        2 if names.len() >= 2 => {
            // Two tensors' names swapped, or one renamed.
            let a = names[m.below(names.len())].clone();
            let b = names[m.below(names.len())].clone();
            let va = root.remove(&a)?;
            if m.below(2) == 0 {
                let vb = root.remove(&b).unwrap_or(Value::Null);
                root.insert(b, va);
                if !vb.is_null() {
                    root.insert(a, vb);
                }
            } else {
                let renamed = match m.below(3) {
                    0 => format!("{a}.x"),
                    1 => a.replace(".0.", ".7."),
                    _ => a.trim_end_matches("weight").to_string(),
                };
                root.insert(renamed, va);
            }
        }
        _ => {
            // A metadata value set, added or removed.
            let meta = root
                .entry("__metadata__")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()?;
            let key = KEYS[m.below(KEYS.len())];
            if m.below(5) == 0 {
                meta.remove(key);
            } else {
                meta.insert(key.into(), Value::from(VALUES[m.below(VALUES.len())]));
            }
        }
    }
    let mut text = serde_json::to_string(&root).ok()?.into_bytes();
    while text.len() % 8 != 0 {
        text.push(b' ');
    }
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&text);
    out.extend_from_slice(data);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Checkpoint;
    use crate::Tensor;

    #[test]
    fn edits_keep_a_readable_container_and_change_it() {
        let mut ck = Checkpoint::new(vec![
            ("a.weight".into(), Tensor::from_vec(vec![1.0; 8], &[2, 4])),
            ("b.weight".into(), Tensor::from_vec(vec![2.0; 3], &[3])),
        ]);
        ck.metadata.insert("model".into(), "mlp".into());
        let bytes = ck.to_bytes().unwrap();
        let mut m = Mutator::new(3, 1 << 16);
        let (mut parsed, mut changed) = (0, 0);
        for _ in 0..200 {
            let out = edit(&mut m, &bytes).expect("a safetensors file");
            changed += usize::from(out != bytes);
            parsed += usize::from(safetensors::SafeTensors::read_metadata(&out).is_ok());
        }
        assert!(changed > 150, "{changed}");
        // The header stays parseable JSON with a right length; whether the shapes still
        // fit the data is what the edit probes, so not every one passes.
        assert!(parsed > 20, "{parsed}");
        assert!(edit(&mut m, b"not safetensors").is_none());
    }
}
