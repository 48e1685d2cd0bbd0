//! The shape of the source tree, checked on every test run (docs/architecture.md):
//!
//! - **the layer rule**: a module imports only from its own layer and the layers below it
//!   ([`LAYERS`]); test modules (`#[cfg(test)] mod tests` at the end of a file) may import
//!   anything;
//! - `unsafe` appears only in `src/kernels/` and `src/runtime/` (none in the derive crate,
//!   `neurite-derive/`), and so do the thread marks
//!   (`inside_kernel`, `as_piece`) that decide how a parallel kernel splits;
//! - no source file, test or example is over [`MAX_LINES`] lines;
//! - every top-level module is in [`LAYERS`] and declared in `lib.rs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The layers, bottom up; a module may use its own layer and those below.
const LAYERS: &[&[&str]] = &[
    &["runtime"],
    &["kernels"],
    &["tensor", "autograd"],
    &["ops", "gradcheck", "init", "checkpoint", "validate"],
    &["nn", "optim"],
    &["infer", "models"],
    &["data", "viz", "distributed"],
    &["train", "lm", "classic"],
    &["cli", "fuzz"],
];

/// What the crate root re-exports, by the module that defines it (`crate::Tensor` is a use
/// of `tensor`).
const ROOT_EXPORTS: &[(&str, &str)] = &[
    ("Tensor", "tensor"),
    ("manual_seed", "tensor"),
    ("no_grad", "autograd"),
    ("is_grad_enabled", "autograd"),
    ("NoGradGuard", "autograd"),
    ("run_on_worker", "autograd"),
    ("Error", "anyhow"),
    ("Result", "anyhow"),
    ("BackwardOptions", "autograd"),
];

/// The longest a file may be.
const MAX_LINES: usize = 700;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The top-level module a file of `src/` belongs to (`None`: `lib.rs`, `main.rs`).
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    let name = first.trim_end_matches(".rs").to_string();
    (name != "lib" && name != "main").then_some(name)
}

/// The code of a file without comments and without its trailing test module.
fn code_of(text: &str) -> String {
    let body = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    body.lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names through `crate::`.
fn crate_uses(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let names: Vec<&str> = if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            group[..end]
                .split(',')
                .map(|s| s.trim().split("::").next().unwrap_or(""))
                .collect()
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            vec![&rest[..end]]
        };
        for n in names.into_iter().filter(|n| !n.is_empty()) {
            let module = ROOT_EXPORTS
                .iter()
                .find(|(item, _)| *item == n)
                .map_or(n, |(_, m)| m);
            out.push(module.to_string());
        }
    }
    out
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

#[test]
fn modules_import_only_from_their_layer_and_below() {
    let src = root().join("src");
    let mut problems = Vec::new();
    for file in rust_files(&src) {
        let Some(module) = top_module(&src, &file) else {
            continue;
        };
        let Some(mine) = layer_of(&module) else {
            problems.push(format!(
                "{}: module `{module}` is in no layer",
                file.display()
            ));
            continue;
        };
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        let mut seen = BTreeMap::new();
        for used in crate_uses(&code) {
            match layer_of(&used) {
                Some(theirs) if theirs > mine => {
                    seen.insert(used, theirs);
                }
                Some(_) => {}
                None => problems.push(format!(
                    "{}: `crate::{used}` is neither a module in a layer nor a known re-export",
                    file.display()
                )),
            }
        }
        for (used, theirs) in seen {
            problems.push(format!(
                "{}: `{module}` (layer {mine}) imports `{used}` (layer {theirs}, above it)",
                file.strip_prefix(root()).unwrap().display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn unsafe_code_stays_in_the_kernels_and_the_runtime() {
    let src = root().join("src");
    let allowed = [src.join("kernels"), src.join("runtime")];
    let mut problems = Vec::new();
    // The derive crate (`neurite-derive/`, outside src/) is held to the same rule.
    let mut files = rust_files(&src);
    files.extend(rust_files(&root().join("neurite-derive")));
    for file in files {
        if allowed.iter().any(|a| file.starts_with(a)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text
            .lines()
            .map(|l| l.find("//").map_or(l, |at| &l[..at]))
            .collect::<Vec<_>>()
            .join("\n");
        let mut words = code.split(|c: char| !(c.is_alphanumeric() || c == '_'));
        if words.any(|w| w == "unsafe") {
            problems.push(file.strip_prefix(root()).unwrap().display().to_string());
        }
    }
    assert!(
        problems.is_empty(),
        "`unsafe` outside src/kernels and src/runtime: {problems:?}"
    );
}

#[test]
fn only_the_kernels_and_the_runtime_read_the_thread_marks() {
    // Above the kernels, code asks `runtime::threads::can_split` or runs pieces through
    // `map_pieces`, `for_each_piece_mut` and `join_pieces`; the marks themselves decide
    // nothing outside the layers that set them.
    let src = root().join("src");
    let allowed = [src.join("kernels"), src.join("runtime")];
    let mut problems = Vec::new();
    // The derive crate (`neurite-derive/`, outside src/) is held to the same rule.
    let mut files = rust_files(&src);
    files.extend(rust_files(&root().join("neurite-derive")));
    for file in files {
        if allowed.iter().any(|a| file.starts_with(a)) {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&file).unwrap());
        for mark in ["inside_kernel", "as_piece"] {
            if code.contains(mark) {
                problems.push(format!(
                    "{}: {mark}",
                    file.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "thread marks read above the kernels: {problems:?}"
    );
}

#[test]
fn no_file_is_longer_than_the_limit() {
    let mut long = Vec::new();
    for dir in ["src", "tests", "examples", "neurite-derive"] {
        for file in rust_files(&root().join(dir)) {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            if lines > MAX_LINES {
                long.push(format!(
                    "{} ({lines} lines)",
                    file.strip_prefix(root()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines: {}",
        long.join(", ")
    );
}

#[test]
fn every_module_is_in_a_layer_and_declared_in_lib_rs() {
    let src = root().join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let mut modules: Vec<String> = rust_files(&src)
        .iter()
        .filter_map(|f| top_module(&src, f))
        .collect();
    modules.dedup();
    assert!(modules.len() >= 10, "found only {modules:?}");
    for m in &modules {
        assert!(
            layer_of(m).is_some(),
            "module `{m}` is in no layer of LAYERS"
        );
        assert!(
            lib.contains(&format!("pub mod {m};")),
            "lib.rs does not declare `pub mod {m};`"
        );
        assert!(
            lib.contains(&format!("[`{m}`]")) || lib.contains(&format!("`{m}`")),
            "lib.rs's module map does not name `{m}`"
        );
    }
    for layer in LAYERS {
        for m in *layer {
            assert!(
                modules.iter().any(|x| x == m),
                "LAYERS names `{m}`, which does not exist"
            );
        }
    }
}

#[test]
fn the_checks_find_what_they_look_for() {
    assert_eq!(
        crate_uses(
            "use crate::nn::Module; x = crate::Tensor::zeros(); use crate::{ops, train::fit};"
        ),
        vec!["nn", "tensor", "ops", "train"]
    );
    assert_eq!(
        code_of("a // crate::cli\nb\n#[cfg(test)]\nmod tests { crate::cli }"),
        "a \nb"
    );
    assert!(layer_of("runtime") < layer_of("kernels"));
    assert!(layer_of("models") < layer_of("train"));
}
