//! The image-folder reader against torchvision: `tests/data/pil_resize.json` holds what
//! `transforms.Resize((H, W))` (Pillow's antialiased bilinear) and `convert("L")` give for
//! random images (written by `bench/pytorch/check_pil_resize.py`); neurite must give the same
//! bytes.

use neurite::data::folder::decode::luma;
use neurite::data::folder::resize_bilinear;
use serde_json::Value;

fn bytes(v: &Value) -> Vec<u8> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u8)
        .collect()
}

fn dims(v: &Value) -> [usize; 2] {
    let a = v.as_array().unwrap();
    [
        a[0].as_u64().unwrap() as usize,
        a[1].as_u64().unwrap() as usize,
    ]
}

/// Interleaved `[H, W, C]` bytes to planes `[C, H, W]`.
fn planar(hwc: &[u8], c: usize) -> Vec<u8> {
    let n = hwc.len() / c;
    (0..c)
        .flat_map(|ch| (0..n).map(move |i| hwc[i * c + ch]))
        .collect()
}

#[test]
fn resize_gives_torchvision_bytes_for_gray_and_rgb_images() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pil_resize.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let cases = doc["resize"].as_array().unwrap();
    assert_eq!(cases.len(), 2 * (9 + 40) + 2);
    for case in cases {
        let c = if case["mode"] == "L" { 1 } else { 3 };
        let [h, w] = dims(&case["size"]);
        let [oh, ow] = dims(&case["out"]);
        let src = planar(&bytes(&case["pixels"]), c);
        let mut out = vec![0u8; c * oh * ow];
        resize_bilinear(&src, [c, h, w], &mut out, [oh, ow]);
        assert_eq!(
            out,
            planar(&bytes(&case["expected"]), c),
            "{} {h}x{w} -> {oh}x{ow}",
            case["mode"]
        );
    }
}

#[test]
fn luma_gives_pillow_l_bytes() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pil_resize.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let rgb = bytes(&doc["luma"]["rgb"]);
    let ours: Vec<u8> = rgb.chunks(3).map(|p| luma(p[0], p[1], p[2])).collect();
    assert_eq!(ours, bytes(&doc["luma"]["expected"]));
}
