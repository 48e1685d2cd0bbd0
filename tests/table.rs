//! CSV tables on real data (tests/data/iris.csv, tests/data/diabetes.csv, see the README
//! there): the task decided, the standardization against numpy's values, the split, the
//! schema's round trip through a checkpoint and its use on new rows.

mod common;

use neurite::checkpoint::Checkpoint;
use neurite::data::table::{TableData, TableOptions, TableSchema, TableTargets, Task, TaskChoice};
use neurite::Tensor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn iris_is_a_three_class_classification_standardized_like_numpy() {
    // The file as its own test file: every row trains, so the statistics are numpy's
    // `a.mean(0)` and `a.std(0)` over all 150 rows.
    let iris = data("iris.csv");
    let t = TableData::read(&iris, &TableOptions::new("species").test_file(&iris)).unwrap();
    assert_eq!(t.schema.task, Task::Classification);
    assert_eq!(t.schema.class_names, ["setosa", "versicolor", "virginica"]);
    assert_eq!(
        t.schema.features,
        ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    );
    assert_eq!((t.train_rows(), t.test_rows(), t.features()), (150, 150, 4));
    let mean = [
        5.843333333333335,
        3.057333333333334,
        3.7580000000000027,
        1.199333333333334,
    ];
    let std = [
        0.8253012917851409,
        0.43441096773549437,
        1.7594040657753032,
        0.7596926279021594,
    ];
    for i in 0..4 {
        assert!(
            close(t.schema.standardization.mean[i], mean[i], 1e-14),
            "mean {i}"
        );
        assert!(
            close(t.schema.standardization.std[i], std[i], 1e-14),
            "std {i}"
        );
    }
    // numpy: ((a - a.mean(0)) / a.std(0)).astype(float32), rows 0 and 149.
    let first = [-0.9006812f32, 1.0190043, -1.3402265, -1.3154444];
    let last = [0.068661794f32, -0.13197948, 0.76275826, 0.79067063];
    for i in 0..4 {
        assert!((t.train_x[i] - first[i]).abs() < 1e-6, "row 0 col {i}");
        assert!(
            (t.train_x[149 * 4 + i] - last[i]).abs() < 1e-6,
            "row 149 col {i}"
        );
    }
    assert_eq!(t.train_x, t.test_x);
    let TableTargets::Classes { labels, .. } = &t.train_y else {
        panic!("classes")
    };
    assert_eq!((labels[0], labels[50], labels[149]), (0, 1, 2));
    assert!(
        t.description
            .contains("classification of `species` into 3 classes"),
        "{}",
        t.description
    );
    assert!(
        t.description.contains("a non-numeric target"),
        "{}",
        t.description
    );
}

#[test]
fn diabetes_integer_target_with_many_values_is_a_regression() {
    let path = data("diabetes.csv");
    let t = TableData::read(&path, &TableOptions::new("target").test_file(&path)).unwrap();
    assert_eq!(t.schema.task, Task::Regression);
    assert!(
        t.description.contains("214 distinct values (over 20)"),
        "{}",
        t.description
    );
    let TableTargets::Values(y) = &t.train_y else {
        panic!("values")
    };
    assert_eq!((y.len(), y[0], y[1], y[441]), (442, 151.0, 75.0, 57.0));
    let mean = [
        48.51809954751131,
        1.4683257918552035,
        26.37579185520364,
        94.64701357466065,
    ];
    let std = [
        13.09419020798002,
        0.49899573599220226,
        4.413120855492464,
        13.815628311857537,
    ];
    for i in 0..4 {
        assert!(
            close(t.schema.standardization.mean[i], mean[i], 1e-14),
            "mean {i}"
        );
        assert!(
            close(t.schema.standardization.std[i], std[i], 1e-14),
            "std {i}"
        );
    }
    // numpy's standardized row 0, all ten features.
    let row0 = [
        0.8005001f32,
        1.0654885,
        1.2970885,
        0.45984057,
        -0.9297458,
        -0.7320646,
        -0.91245055,
        -0.054499187,
        0.41853094,
        -0.37098855,
    ];
    for (i, &v) in row0.iter().enumerate() {
        assert!(
            (t.train_x[i] - v).abs() < 1e-6,
            "col {i}: {} vs {v}",
            t.train_x[i]
        );
    }
    // Forced to classification, each distinct value is a class, in numeric order.
    let opts = TableOptions::new("target").task(TaskChoice::Classification);
    let c = TableData::read(&path, &opts).unwrap();
    assert_eq!(c.schema.class_names.len(), 214);
    assert_eq!(c.schema.class_names[0], "25");
}

#[test]
fn split_is_stratified_seeded_and_statistics_come_from_training_rows_only() {
    let iris = data("iris.csv");
    let t = TableData::read(&iris, &TableOptions::new("species").split(0.2, 3)).unwrap();
    let s = t.split.as_ref().unwrap();
    assert_eq!((s.train.len(), s.test.len()), (120, 30));
    let TableTargets::Classes { labels, .. } = &t.test_y else {
        panic!()
    };
    for c in 0..3 {
        assert_eq!(
            labels.iter().filter(|&&l| l == c).count(),
            10,
            "class {c} in test"
        );
    }
    let again = TableData::read(&iris, &TableOptions::new("species").split(0.2, 3)).unwrap();
    assert_eq!(
        (again.split, again.train_x),
        (t.split.clone(), t.train_x.clone())
    );
    // The training rows' statistics by hand, from the raw file.
    let text = std::fs::read_to_string(&iris).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(4).map(|v| v.parse().unwrap()).collect())
        .collect();
    let stats = &t.schema.standardization;
    for (c, (&mean, &std)) in stats.mean.iter().zip(&stats.std).enumerate() {
        let col: Vec<f64> = s.train.iter().map(|&r| rows[r][c]).collect();
        let m = col.iter().sum::<f64>() / 120.0;
        let sd = (col.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 120.0).sqrt();
        assert!(close(mean, m, 1e-12) && close(std, sd, 1e-12), "column {c}");
        // Test rows use the same statistics.
        let r = s.test[0];
        assert!((t.test_x[c] as f64 - (rows[r][c] - m) / sd).abs() < 1e-6);
    }
    assert!(t
        .description
        .contains("30 test rows (a stratified split of 0.2 held out, seed 3)"));
    let t = TableData::read(
        &iris,
        &TableOptions::new("species").split(0.2, 3).test_file(&iris),
    );
    assert!(t.unwrap().split.is_none());
}

#[test]
fn target_by_index_semicolons_and_dropped_columns() {
    let csv = "id;a;b;y\n10;1;2;0.5\n11;2;4;1.5\n12;3;8;2.5\n13;4;16;3.5\n";
    let t = TableData::read_str("s.csv", csv, &TableOptions::new("3").drop(&["id"])).unwrap();
    assert_eq!(t.schema.target, "y");
    assert_eq!(t.schema.features, ["a", "b"]);
    assert_eq!(t.schema.task, Task::Regression);
    assert!(t.description.contains("a numeric target"));
    assert!(t.description.contains("(dropped `id`)"));
    // Integer labels with few values are classes named as written, in numeric order.
    let csv = "x,y\n1,10\n2,2\n3,2.0\n4,10\n5,-1\n6,2\n";
    let t = TableData::read_str("i.csv", csv, &TableOptions::new("y")).unwrap();
    assert_eq!(t.schema.class_names, ["-1", "2", "10"]);
    let y = TableData::read_str(
        "i.csv",
        csv,
        &TableOptions::new("y").task(TaskChoice::Regression),
    );
    assert_eq!(y.unwrap().schema.task, Task::Regression);
}

#[test]
fn schema_survives_a_checkpoint_and_reads_new_rows_as_training_did() {
    let dir = common::temp_dir("table-schema");
    let iris = data("iris.csv");
    let t = TableData::read(&iris, &TableOptions::new("species").split(0.25, 1)).unwrap();
    let mut ck = Checkpoint::new(vec![("w".into(), Tensor::zeros(&[1]))]);
    ck.metadata.extend(t.schema.to_metadata());
    let file = dir.join("model.safetensors");
    ck.save(&file).unwrap();
    let back = Checkpoint::load(&file).unwrap();
    let schema = TableSchema::from_metadata(&back.metadata).unwrap();
    assert_eq!(schema, t.schema);
    let map: HashMap<String, String> = back.metadata.clone().into_iter().collect();
    assert_eq!(TableSchema::from_metadata(&map).unwrap(), t.schema);
    assert_eq!(
        (schema.outputs(), schema.class_name(2), schema.class_name(3)),
        (3, Some("virginica"), None)
    );

    // The whole file again, columns reordered, an extra `id`, no target: the rows'
    // features are bit for bit those training used.
    let text = std::fs::read_to_string(&iris).unwrap();
    let mut shuffled = String::from("petal_width,id,sepal_length,petal_length,sepal_width\n");
    for (i, l) in text.lines().skip(1).enumerate() {
        let v: Vec<&str> = l.split(',').collect();
        shuffled += &format!("{},{i},{},{},{}\n", v[3], v[0], v[2], v[1]);
    }
    let rows = schema.read_rows_from_str("new.csv", &shuffled).unwrap();
    assert_eq!(
        (rows.rows, rows.ignored.clone(), rows.targets.clone()),
        (150, vec!["id".to_string()], None)
    );
    let s = t.split.as_ref().unwrap();
    for (k, &r) in s.train.iter().enumerate() {
        assert_eq!(
            rows.x[r * 4..r * 4 + 4],
            t.train_x[k * 4..k * 4 + 4],
            "row {r}"
        );
    }
    // With the target column, the targets are read too (for evaluation).
    let rows = schema.read_rows(&iris).unwrap();
    assert_eq!(rows.targets.unwrap().select(&s.test), t.test_y);
}

#[test]
fn schema_metadata_errors_name_the_key() {
    let t = TableData::read(&data("iris.csv"), &TableOptions::new("species")).unwrap();
    let good: HashMap<String, String> = t.schema.to_metadata().into_iter().collect();
    for key in [
        "table.features",
        "table.mean",
        "table.std",
        "table.target",
        "table.task",
        "table.classes",
    ] {
        let mut m = good.clone();
        m.remove(key);
        let e = TableSchema::from_metadata(&m).unwrap_err().to_string();
        assert!(e.contains(&format!("no `{key}`")), "{e}");
    }
    for (key, value, says) in [
        (
            "table.features",
            "sepal_length",
            "not a JSON array of names",
        ),
        ("table.mean", "1,2,x,4", "\"x\" is not a number"),
        ("table.mean", "1,2,3", "3 values for 4 features"),
        ("table.std", "1,0,1,1", "not a positive number"),
        (
            "table.task",
            "clustering",
            "expected classification or regression",
        ),
        ("table.classes", "[\"only\"]", "names 1 class(es)"),
    ] {
        let mut m = good.clone();
        m.insert(key.into(), value.into());
        let e = TableSchema::from_metadata(&m).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains(says), "{key}={value}: {e}");
    }
    // A regression needs no classes.
    let mut m = good.clone();
    m.insert("table.task".into(), "regression".into());
    m.remove("table.classes");
    assert_eq!(TableSchema::from_metadata(&m).unwrap().outputs(), 1);
}
