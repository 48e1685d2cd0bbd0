//! Every bad table is an error that names the file, the line and the column where it
//! can, and says how to fix it; none panics, none is passed over.

mod common;

use neurite::data::table::{TableData, TableOptions, TableSchema, TaskChoice};

/// The error of reading `csv` with target `y`.
fn error(csv: &str) -> String {
    error_with(csv, &TableOptions::new("y"))
}

fn error_with(csv: &str, options: &TableOptions) -> String {
    match TableData::read_str("bad.csv", csv, options) {
        Ok(t) => panic!("{csv:?} was accepted: {}", t.description),
        Err(e) => format!("{e:#}"),
    }
}

fn says(e: &str, parts: &[&str]) {
    for p in parts {
        assert!(e.contains(p), "{p:?} not in: {e}");
    }
}

#[test]
fn missing_empty_header_only_and_not_utf8_files() {
    let dir = common::temp_dir("table-errors");
    let opts = TableOptions::new("y");
    let e = TableData::read(&dir.join("nope.csv"), &opts).unwrap_err();
    says(
        &format!("{e:#}"),
        &["cannot read the table", "nope.csv", "check the path"],
    );
    let latin1 = dir.join("latin1.csv");
    std::fs::write(&latin1, b"x,y\n1,caf\xe9\n").unwrap();
    let e = TableData::read(&latin1, &opts).unwrap_err().to_string();
    says(
        &e,
        &[
            "latin1.csv",
            "line 2 is not UTF-8",
            "save the table as UTF-8",
        ],
    );
    says(&error(""), &["bad.csv", "the table is empty"]);
    says(&error("\n  \n"), &["the table is empty"]);
    says(
        &error("x,y\n"),
        &["bad.csv", "a header row but no data rows"],
    );
    says(
        &error("x\n1\n2\n"),
        &["the header has 1 column(s) (`x`)", "at least one feature"],
    );
}

#[test]
fn ragged_rows_name_the_line_and_both_counts() {
    let e = error("a,b,y\n1,2,3\n4,5\n6,7,8\n");
    says(&e, &["bad.csv: line 3 has 2 field(s), the header has 3"]);
    let e = error("a,b,y\n1,2,3\n\n4,5,6,7\n");
    says(&e, &["line 4 has 4 field(s), the header has 3"]);
}

#[test]
fn missing_values_name_line_and_column_and_say_drop_or_fill() {
    for cell in ["", "NA", "NaN", "?", "null"] {
        let e = error(&format!("a,b,y\n1,2,0\n3,{cell},1\n5,6,0\n7,8,1\n"));
        says(
            &e,
            &[
                "bad.csv: line 3, column `b`: missing value",
                "drop the rows",
                "fill them",
            ],
        );
    }
    let e = error("a,b,y\n1,2,0\n3,4,NA\n5,6,1\n");
    says(
        &e,
        &[
            "line 3, target column `y`: missing value",
            "drop it or fill it in",
        ],
    );
}

#[test]
fn non_numeric_and_non_finite_features_name_the_value() {
    let e = error("a,colour,y\n1,2,0\n3,red,1\n5,6,0\n");
    says(
        &e,
        &[
            "line 3, column `colour`: \"red\" is not a number",
            "drop the column",
            "encode it",
        ],
    );
    for cell in ["inf", "-Infinity", "1e39"] {
        let e = error(&format!("a,b,y\n1,2,0\n3,4,1\n5,{cell},0\n"));
        says(&e, &["line 4, column `b`", "not a finite number"]);
    }
    let e = error_with(
        "a,y\n1,2\n3,x\n",
        &TableOptions::new("y").task(TaskChoice::Regression),
    );
    says(
        &e,
        &[
            "line 3, target column `y`: \"x\" is not a finite number",
            "regression",
        ],
    );
}

#[test]
fn unknown_target_or_dropped_column_lists_the_columns() {
    let csv = "sepal,petal,species\n1,2,a\n3,4,b\n";
    let e = error_with(csv, &TableOptions::new("label"));
    says(
        &e,
        &[
            "no target column `label`",
            "`sepal`, `petal`, `species`",
            "0-based",
        ],
    );
    let e = error_with(csv, &TableOptions::new("7"));
    says(&e, &["no target column `7`"]);
    let e = error_with(csv, &TableOptions::new("species").drop(&["id"]));
    says(
        &e,
        &["cannot drop column `id`", "`sepal`, `petal`, `species`"],
    );
    let e = error_with(csv, &TableOptions::new("species").drop(&["species"]));
    says(&e, &["`species` is the target"]);
    let e = error_with(csv, &TableOptions::new("species").drop(&["sepal", "petal"]));
    says(&e, &["no feature column is left"]);
}

#[test]
fn duplicate_and_unnamed_columns() {
    says(
        &error("a,b,a,y\n1,2,3,4\n"),
        &["`a` appears twice", "columns 0 and 2", "rename"],
    );
    says(
        &error(",a,y\n0,1,2\n"),
        &[
            "column 0 (0-based) of the header has no name",
            "index=False",
        ],
    );
}

#[test]
fn one_class_and_too_few_rows() {
    let e = error("a,y\n1,cat\n2,cat\n3,cat\n");
    says(
        &e,
        &[
            "target column `y` has one class only (\"cat\")",
            "at least two",
        ],
    );
    let e = error("a,y\n1,0.5\n");
    says(
        &e,
        &["bad.csv: cannot split the rows", "cannot split 1 sample(s)"],
    );
    // Two classes of one row each: nothing can be held out stratified.
    let e = error("a,y\n1,cat\n2,dog\n");
    says(
        &e,
        &["cannot split the rows", "no class has 2 or more samples"],
    );
    let e = error_with("a,y\n1,0.5\n2,1.5\n", &TableOptions::new("y").split(1.5, 0));
    says(&e, &["--test-split 1.5"]);
}

#[test]
fn a_test_file_must_match_the_training_columns_and_classes() {
    let dir = common::temp_dir("table-test-file");
    let train = "a,b,y\n1,2,cat\n3,4,dog\n5,6,cat\n";
    let test = dir.join("test.csv");
    std::fs::write(&test, "b,a,y,extra\n1,2,cat,0\n").unwrap();
    let e = error_with(train, &TableOptions::new("y").test_file(&test));
    says(
        &e,
        &[
            "test.csv must have the columns of the training table bad.csv",
            "missing none, extra `extra`",
        ],
    );
    std::fs::write(&test, "b,a,y\n1,2,bird\n").unwrap();
    let e = error_with(train, &TableOptions::new("y").test_file(&test));
    says(
        &e,
        &[
            "test.csv: line 2, target column `y`: \"bird\" is not one of the 2 classes",
            "`cat`, `dog`",
        ],
    );
    std::fs::write(&test, "b,a,y\n1,x,cat\n").unwrap();
    let e = error_with(train, &TableOptions::new("y").test_file(&test));
    says(&e, &["test.csv: line 2, column `a`: \"x\" is not a number"]);
    std::fs::write(&test, "b,a,y\n").unwrap();
    let e = error_with(train, &TableOptions::new("y").test_file(&test));
    says(
        &e,
        &["test.csv: the table has a header row but no data rows"],
    );
    // In a different column order, the test rows are matched by name.
    std::fs::write(&test, "y,b,a\ndog,4,3\n").unwrap();
    let t = TableData::read_str("t.csv", train, &TableOptions::new("y").test_file(&test)).unwrap();
    assert_eq!(&t.test_x[..], &t.train_x[2..4]);
}

#[test]
fn prediction_rows_need_every_feature_and_known_values() {
    let train = "a,b,y\n1,2,0.5\n3,4,1.5\n5,6,2.5\n7,8,3.5\n";
    let t = TableData::read_str("t.csv", train, &TableOptions::new("y")).unwrap();
    let s: &TableSchema = &t.schema;
    let e = s
        .read_rows_from_str("new.csv", "a,c\n1,2\n")
        .unwrap_err()
        .to_string();
    says(
        &e,
        &[
            "new.csv",
            "feature column(s) `b` are not in the file",
            "`a`, `c`",
        ],
    );
    let e = s
        .read_rows_from_str("new.csv", "b,a\n1,NA\n")
        .unwrap_err()
        .to_string();
    says(&e, &["new.csv: line 2, column `a`: missing value"]);
    let e = s
        .read_rows_from_str("new.csv", "b,a,y\n1,2,?\n")
        .unwrap_err()
        .to_string();
    says(&e, &["line 2, target column `y`", "regression"]);
    let rows = s.read_rows_from_str("new.csv", "b,a\n2,1\n").unwrap();
    assert_eq!(rows.x, s.standardization.apply(&[1.0, 2.0]));
    assert_ne!(rows.x, [1.0, 2.0]);
}
