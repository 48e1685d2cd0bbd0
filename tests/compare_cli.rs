//! `neurite compare`: every method at two small sizes, the table, compare.json and the plot.

use std::path::Path;
use std::process::Command;

#[test]
fn compare_small_sizes_writes_table_json_and_plot() {
    let data = "/usr/share/datasets/fashion-mnist";
    if !Path::new(data).exists() {
        eprintln!("skipped: {data} is not installed");
        return;
    }
    let dir = std::env::temp_dir().join(format!("neurite-compare-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_neurite"))
        .args([
            "compare",
            "--data",
            data,
            "--limit-train",
            "200,500",
            "--lenet-epochs",
            "1",
            "--lenet-min-steps",
            "100",
            "--max-svm",
            "300",
            "--out",
            dir.to_str().unwrap(),
            "--json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("n_train") && stdout.contains("lenet5"),
        "{stdout}"
    );
    let json: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 8, "2 sizes x 4 methods: {json}");
    for r in results {
        let (method, n) = (
            r["method"].as_str().unwrap(),
            r["n_train"].as_u64().unwrap(),
        );
        if method == "svm" && n == 500 {
            assert!(r["skipped"].as_bool().unwrap(), "svm above --max-svm: {r}");
            assert!(r["accuracy"].is_null());
            continue;
        }
        let acc = r["accuracy"].as_f64().unwrap();
        // 10 classes: chance is 0.1; even 200 images put every method well above it.
        assert!(acc > 0.3 && acc <= 1.0, "{method} at {n}: accuracy {acc}");
        assert!(r["fit_seconds"].as_f64().unwrap() >= 0.0);
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("compare.json")).unwrap()).unwrap();
    assert_eq!(saved, json);
    let png = std::fs::read(dir.join("compare.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(dir.join("lenet5-200").is_dir());
    let _ = std::fs::remove_dir_all(&dir);
}
