//! `neurite train / eval / predict` on the user's own data: an image folder written from
//! Fashion-MNIST images (some RGB, some 32 x 32), the iris table (classification) and the
//! diabetes table (regression), and the command's errors for data that does not fit.

mod folder_support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// Runs the command; returns (exit code, stdout, stderr).
fn neurite(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_neurite"))
        .args(args)
        .env("NEURITE_NUM_THREADS", "2")
        .env(
            "XDG_CACHE_HOME",
            std::env::temp_dir().join("neurite-own-data-cache"),
        )
        .output()
        .expect("the neurite binary runs");
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

/// The JSON object of the last stdout line.
fn last_json(stdout: &str) -> Value {
    serde_json::from_str(stdout.lines().last().expect("a line")).expect("JSON")
}

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn a_table_classifier_trains_evaluates_the_same_rows_and_predicts_class_names() {
    let out = folder_support::temp_dir("iris-run");
    let out = out.to_str().unwrap();
    let iris = data("iris.csv");
    let (code, stdout, stderr) = neurite(&[
        "train",
        "mlp",
        "--data",
        &iris,
        "--target",
        "species",
        "--epochs",
        "40",
        "--out",
        out,
        "--overwrite",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("classification of `species` into 3 classes"),
        "{stderr}"
    );
    let j = last_json(&stdout);
    let accuracy = j["accuracy"].as_f64().unwrap();
    assert!(accuracy > 0.8, "iris test accuracy {accuracy}");
    assert!(j.get("rmse").is_none());
    // split.json lists the 30 held-out rows, disjoint from the 120 training rows.
    let split: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{out}/split.json")).unwrap())
            .unwrap();
    assert_eq!(split["test"].as_array().unwrap().len(), 30);
    assert_eq!(split["train"].as_array().unwrap().len(), 120);

    // eval finds the same held-out rows: the same accuracy, to the digit.
    let weights = format!("{out}/model.safetensors");
    let (code, stdout, stderr) = neurite(&[
        "eval",
        "mlp",
        "--weights",
        &weights,
        "--data",
        &iris,
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let e = last_json(&stdout);
    assert_eq!(e["accuracy"].as_f64().unwrap(), accuracy);
    assert_eq!(e["samples"].as_u64().unwrap(), 30);

    // predict: rows with the columns in another order and an extra column.
    let rows = folder_support::temp_dir("iris-rows").join("rows.csv");
    std::fs::write(
        &rows,
        "id,petal_width,petal_length,sepal_width,sepal_length\n1,0.2,1.4,3.5,5.1\n2,2.3,5.9,3.0,6.8\n",
    )
    .unwrap();
    let (code, stdout, stderr) = neurite(&[
        "predict",
        "mlp",
        "--weights",
        &weights,
        rows.to_str().unwrap(),
        "--top",
        "1",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("id"),
        "the ignored column is named: {stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[1].contains("line 2") && lines[2].contains("setosa"),
        "{stdout}"
    );
    assert!(
        lines[3].contains("line 3") && lines[4].contains("virginica"),
        "{stdout}"
    );
}

#[test]
fn a_table_regression_reports_rmse_and_mae_in_the_target_units() {
    let out = folder_support::temp_dir("diabetes-run");
    let out = out.to_str().unwrap();
    let diabetes = data("diabetes.csv");
    let (code, stdout, stderr) = neurite(&[
        "train",
        "mlp",
        "--data",
        &diabetes,
        "--target",
        "target",
        "--epochs",
        "20",
        "--batch-size",
        "32",
        "--lr",
        "0.01",
        "--out",
        out,
        "--overwrite",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let j = last_json(&stdout);
    assert!(j.get("accuracy").is_none(), "{j}");
    let (rmse, mae) = (j["rmse"].as_f64().unwrap(), j["mae"].as_f64().unwrap());
    // The target's standard deviation is about 77: a model that learned something is below
    // it, and RMSE is never below MAE.
    assert!(
        rmse < 77.0 && mae <= rmse && mae > 10.0,
        "rmse {rmse} mae {mae}"
    );
    assert!((j["loss"].as_f64().unwrap() - rmse * rmse).abs() < 1e-2 * rmse * rmse);
    let weights = format!("{out}/model.safetensors");
    let (code, stdout, stderr) = neurite(&[
        "eval",
        "mlp",
        "--weights",
        &weights,
        "--data",
        &diabetes,
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!((last_json(&stdout)["rmse"].as_f64().unwrap() - rmse).abs() < 1e-3 * rmse);
    // predict maps the output back to the target's units (the disease measure is 25-346).
    let rows = folder_support::temp_dir("diabetes-rows").join("rows.csv");
    let text = std::fs::read_to_string(&diabetes).unwrap();
    std::fs::write(&rows, text.lines().take(3).collect::<Vec<_>>().join("\n")).unwrap();
    let (code, stdout, stderr) = neurite(&[
        "predict",
        "mlp",
        "--weights",
        &weights,
        rows.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    for line in stdout.lines().skip(1) {
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((20.0..400.0).contains(&v), "{line}");
    }
}

#[test]
fn an_image_folder_trains_lenet5_sized_to_its_images_and_predicts_its_classes() {
    let root = folder_support::temp_dir("cli-folder");
    folder_support::write_fashion_folder(&root, 30);
    let out = folder_support::temp_dir("cli-folder-run");
    let (root, out) = (root.to_str().unwrap(), out.to_str().unwrap());
    let (code, stdout, stderr) = neurite(&[
        "train",
        "lenet5",
        "--data",
        root,
        "--epochs",
        "6",
        "--batch-size",
        "16",
        "--augment",
        "none",
        "--image-size",
        "32",
        "--out",
        out,
        "--overwrite",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("3 x 32 x 32"), "{stderr}");
    let accuracy = last_json(&stdout)["accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.15,
        "better than chance on 10 classes: {accuracy}"
    );
    let weights = format!("{out}/model.safetensors");
    let (code, stdout, stderr) = neurite(&[
        "eval",
        "lenet5",
        "--weights",
        &weights,
        "--data",
        root,
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(last_json(&stdout)["accuracy"].as_f64().unwrap(), accuracy);
    // Without --data, eval says which data it needs.
    let (code, _, stderr) = neurite(&["eval", "lenet5", "--weights", &weights]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("image folder") && stderr.contains("--data"),
        "{stderr}"
    );
    // predict prints the folder's class names for an image of any size.
    let image = std::fs::read_dir(Path::new(root).join(folder_support::class_folder(1)))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let (code, stdout, stderr) = neurite(&[
        "predict",
        "lenet5",
        "--weights",
        &weights,
        image.to_str().unwrap(),
        "--top",
        "10",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 11, "{stdout}");
    assert!(
        stdout.contains(&folder_support::class_folder(1)),
        "{stdout}"
    );
}

#[test]
fn data_that_does_not_fit_the_flags_or_the_model_is_a_named_error() {
    let iris = data("iris.csv");
    let diabetes = data("diabetes.csv");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "mlp", "--data", &iris], "--target"),
        (
            vec![
                "train", "mlp", "--data", &diabetes, "--target", "target", "--recipe", "fast",
            ],
            "--label-smoothing 0.1 applies to classes, and this data is a regression",
        ),
        (
            vec!["train", "lenet5", "--data", &iris, "--target", "species"],
            "use mlp",
        ),
        (
            vec!["train", "mlp", "--data", &iris, "--target", "colour"],
            "species",
        ),
        (
            vec![
                "train",
                "mlp",
                "--data",
                &iris,
                "--target",
                "species",
                "--image-size",
                "32",
            ],
            "--image-size",
        ),
        (
            vec!["train", "mlp", "--data", "/no/such/data"],
            "/no/such/data",
        ),
        (
            vec![
                "train",
                "mlp",
                "--data",
                &iris,
                "--target",
                "species",
                "--test-split",
                "1.5",
            ],
            "--test-split",
        ),
    ];
    for (args, needle) in cases {
        let (code, _, stderr) = neurite(&args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
