//! `neurite classic`: fit, save, evaluate a saved model, and refuse bad input.

use std::path::Path;
use std::process::Command;

fn neurite(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_neurite"))
        .args(args)
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

fn last_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn perceptron_fits_saves_and_evaluates_on_real_data() {
    let data = "/usr/share/datasets/fashion-mnist";
    if !Path::new(data).exists() {
        eprintln!("skipped: {data} is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("neurite-classic-{}", std::process::id()));
    let model = dir.join("p.safetensors");
    let model = model.to_str().unwrap();
    let (code, out, err) = neurite(&[
        "classic",
        "perceptron",
        "--data",
        data,
        "--limit-train",
        "2000",
        "--epochs",
        "3",
        "--save",
        model,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let fit = last_json(&out);
    let acc = fit["accuracy"].as_f64().unwrap();
    assert!(
        acc > 0.6,
        "accuracy {acc} on 2,000 images should be far above chance"
    );
    assert!(fit["fit_seconds"].as_f64().unwrap() >= 0.0);
    let (code, out, err) = neurite(&[
        "classic",
        "eval",
        "--data",
        data,
        "--weights",
        model,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        (last_json(&out)["accuracy"].as_f64().unwrap() - acc).abs() < 1e-6,
        "a saved model scores the same"
    );

    // A network checkpoint is not a classic model: one-line error, non-zero exit.
    std::fs::write(dir.join("junk.safetensors"), b"not a model").unwrap();
    let (code, _, err) = neurite(&[
        "classic",
        "eval",
        "--data",
        data,
        "--weights",
        dir.join("junk.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("error:") && err.trim().lines().count() == 1,
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
