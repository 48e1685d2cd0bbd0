//! What cases write into their directory before the snapshot: edited checkpoints.

use neurite::checkpoint::Checkpoint;
use std::path::Path;

/// Loads `from`, lets `edit` change it, writes it as `to` (as it is: `Checkpoint::save`
/// would refuse the non-finite weights some cases need).
fn edit_checkpoint(from: &Path, to: &Path, edit: impl FnOnce(&mut Checkpoint)) {
    let mut ck = Checkpoint::load(from).unwrap();
    edit(&mut ck);
    std::fs::write(to, ck.to_bytes().unwrap()).unwrap();
}

/// Replaces the tensor `name` of `ck`.
fn set_tensor(ck: &mut Checkpoint, name: &str, t: neurite::Tensor) {
    let slot = ck.tensors.iter_mut().find(|(n, _)| n == name).unwrap();
    slot.1 = t;
}

/// The case's gpt checkpoint edited into `{case}/NAME.safetensors`.
fn gpt_variant(dir: &Path, name: &str, edit: impl FnOnce(&mut Checkpoint)) {
    edit_checkpoint(
        &dir.join("gpt/model.safetensors"),
        &dir.join(format!("{name}.safetensors")),
        edit,
    );
}

/// Every float tensor of `ck` set to NaN.
fn all_nan(ck: &mut Checkpoint) {
    for (_, t) in ck.tensors.iter_mut() {
        *t = neurite::Tensor::from_vec(vec![f32::NAN; t.numel()], t.shape());
    }
}

pub fn setup_vocab65(dir: &Path) {
    gpt_variant(dir, "v65", |ck| {
        for name in ["transformer.wte.weight", "lm_head.weight"] {
            let t = ck.get(name).unwrap().clone();
            let rows = t.to_vec()[..65 * 8].to_vec();
            set_tensor(ck, name, neurite::Tensor::from_vec(rows, &[65, 8]));
        }
        ck.metadata.insert("gpt.vocab".into(), "65".into());
    });
}

pub fn setup_wte_1d(dir: &Path) {
    gpt_variant(dir, "wte1d", |ck| {
        let t = ck.get("transformer.wte.weight").unwrap().clone();
        set_tensor(
            ck,
            "transformer.wte.weight",
            neurite::Tensor::from_vec(t.to_vec(), &[256 * 8]),
        );
    });
}

pub fn setup_n_head_0(dir: &Path) {
    gpt_variant(dir, "nhead0", |ck| {
        ck.metadata.insert("gpt.n_head".into(), "0".into());
    });
}

pub fn setup_empty_wpe(dir: &Path) {
    gpt_variant(dir, "wpe0", |ck| {
        set_tensor(
            ck,
            "transformer.wpe.weight",
            neurite::Tensor::from_vec(vec![], &[0, 8]),
        );
    });
}

pub fn setup_n_layer_mismatch(dir: &Path) {
    gpt_variant(dir, "nlayer", |ck| {
        ck.metadata.insert("gpt.n_layer".into(), "3".into());
    });
}

pub fn setup_gpt_says_resnet(dir: &Path) {
    gpt_variant(dir, "resnet", |ck| {
        ck.metadata.insert("model".into(), "resnet20".into());
    });
}

pub fn setup_gpt_nan(dir: &Path) {
    gpt_variant(dir, "nan", all_nan);
}

pub fn setup_mlp_nan(dir: &Path) {
    edit_checkpoint(
        &dir.join("mlp/model.safetensors"),
        &dir.join("nan.safetensors"),
        all_nan,
    );
}

pub fn setup_mlp_std_0(dir: &Path) {
    edit_checkpoint(
        &dir.join("mlp/model.safetensors"),
        &dir.join("std0.safetensors"),
        |ck| {
            ck.metadata.insert("normalize.std".into(), "0".into());
        },
    );
}

pub fn setup_mlp_3_channels(dir: &Path) {
    edit_checkpoint(
        &dir.join("mlp/model.safetensors"),
        &dir.join("rgb.safetensors"),
        |ck| {
            ck.metadata
                .insert("normalize.mean".into(), "0.5,0.5,0.5".into());
            ck.metadata.insert("normalize.std".into(), "1,1,1".into());
        },
    );
}

pub fn setup_resume_bad_lr(dir: &Path) {
    let path = dir.join("mlp/checkpoint.safetensors");
    edit_checkpoint(&path, &path, |ck| {
        ck.metadata.insert("train.lr".into(), "-1".into());
    });
}

pub fn setup_perceptron_nan(dir: &Path) {
    let from = dir.join("p.safetensors");
    std::fs::copy(dir.join("../../perceptron.safetensors"), &from).unwrap();
    edit_checkpoint(&from, &dir.join("pnan.safetensors"), all_nan);
}

pub fn setup_perceptron_no_classes(dir: &Path) {
    let from = dir.join("p.safetensors");
    std::fs::copy(dir.join("../../perceptron.safetensors"), &from).unwrap();
    edit_checkpoint(&from, &dir.join("p0.safetensors"), |ck| {
        ck.metadata.insert("classic.classes".into(), "0".into());
    });
}
