//! `neurite gradcheck [OP]`: the finite-difference check of every op (the cases of
//! `crate::ops::FAMILIES`), as a table.

use crate::gradcheck::{cases, check, op_names, table_problems};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Check only this op (for example `conv2d`); `--list` shows the names.
    op: Option<String>,
    /// List the ops that have checks and exit.
    #[arg(long)]
    list: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let all = cases();
    if args.list {
        println!("{}", op_names().join("\n"));
        return Ok(0);
    }
    let selected: Vec<_> = all
        .iter()
        .filter(|c| args.op.as_deref().is_none_or(|o| o == c.op))
        .collect();
    if selected.is_empty() {
        anyhow::bail!(
            "no gradient check for op '{}'; run `neurite gradcheck --list` for the names",
            args.op.unwrap_or_default()
        );
    }
    println!(
        "{:<30} {:<34} {:>11} {:>11} {:>6}  result",
        "op", "input shapes", "max abs err", "max rel err", "probes"
    );
    let mut failed = 0;
    for case in selected.iter() {
        let r = check(case);
        failed += usize::from(!r.passed);
        println!(
            "{:<30} {:<34} {:>11.2e} {:>11.2e} {:>6}  {}",
            r.op,
            r.shapes,
            r.max_abs_err,
            r.max_rel_err,
            r.probes,
            if r.passed { "pass" } else { "FAIL" }
        );
    }
    println!("{} passed, {} failed", selected.len() - failed, failed);
    // The table itself: every op listed once and checked (only for a full run).
    let problems = if args.op.is_none() {
        table_problems(&all)
    } else {
        Vec::new()
    };
    for p in &problems {
        println!("table: {p}");
    }
    Ok(if failed == 0 && problems.is_empty() {
        0
    } else {
        1
    })
}
