//! Differentiable ops of your own, written outside the crate with neurite's public API and
//! checked with `neurite::gradcheck` (finite differences), as the library checks its own:
//!
//! - `softsign(x) = x / (1 + |x|)`: an elementwise op, from its function and derivative
//!   (`Tensor::elementwise`);
//! - `hypot(a, b) = sqrt(a^2 + b^2)`: two inputs, a backward that reads the output
//!   (`Tensor::from_op_with_output`);
//! - `rms_norm(x)` over the last dimension: a row-wise op whose backward uses statistics
//!   saved by the forward (`Tensor::from_op`), compared with the same op composed of
//!   library ops.
//!
//! ```text
//! cargo run --release --example custom_op
//! cargo run --release --example custom_op -- --rows 64 --width 256
//! ```
//!
//! The PyTorch version of this program (`torch.autograd.Function` and
//! `torch.autograd.gradcheck`) is `bench/pytorch/examples/custom_op.py`.

use neurite::gradcheck::{check, Case};
use neurite::ops::map::Reads;
use neurite::{manual_seed, Tensor};

/// `x / (1 + |x|)`; its derivative `1 / (1 + |x|)^2` reads the input.
fn softsign(x: &Tensor) -> Tensor {
    x.elementwise(
        "softsign",
        |v| v / (1.0 + v.abs()),
        Reads::Input,
        |dy, x| dy / ((1.0 + x.abs()) * (1.0 + x.abs())),
    )
}

/// `sqrt(a^2 + b^2)` elementwise (same shapes); `dh/da = a / h`, `dh/db = b / h`.
fn hypot(a: &Tensor, b: &Tensor) -> Tensor {
    assert_eq!(a.shape(), b.shape(), "hypot: shapes differ");
    let h: Vec<f32> =
        a.with_slice(|xs| b.with_slice(|ys| xs.iter().zip(ys).map(|(x, y)| x.hypot(*y)).collect()));
    let (a0, b0) = (a.detach(), b.detach());
    // The closure gets the output gradient `g` and the output `h` itself (capturing the
    // output would make a cycle); it returns one gradient per input, in order.
    Tensor::from_op_with_output(h, a.shape(), "hypot", &[a, b], move |g, h| {
        let da = g.mul(&a0).div(h);
        let db = g.mul(&b0).div(h);
        vec![Some(da), Some(db)]
    })
}

/// `x / sqrt(mean(x^2) + eps)` over the last dimension of `x` (`[rows, width]`).
fn rms_norm(x: &Tensor, eps: f32) -> Tensor {
    let width = x.dim(-1);
    let x0 = x.detach().contiguous();
    // Saved for backward: each row's 1 / rms.
    let inv_rms: Vec<f32> = x0.with_slice(|xs| {
        xs.chunks(width)
            .map(|row| 1.0 / (row.iter().map(|v| v * v).sum::<f32>() / width as f32 + eps).sqrt())
            .collect()
    });
    let y: Vec<f32> = x0.with_slice(|xs| {
        xs.chunks(width)
            .zip(&inv_rms)
            .flat_map(|(row, &r)| row.iter().map(move |v| v * r))
            .collect()
    });
    let shape = x.shape().to_vec();
    Tensor::from_op(y, &shape.clone(), "rms_norm", &[x], move |g| {
        // dx = r * (g - y * mean(g * y)), y = x * r, row by row.
        let dx: Vec<f32> = g.with_slice(|gs| {
            x0.with_slice(|xs| {
                let rows = gs.chunks(width).zip(xs.chunks(width)).zip(&inv_rms);
                rows.flat_map(|((gr, xr), &r)| {
                    let mean_gy =
                        gr.iter().zip(xr).map(|(g, x)| g * x * r).sum::<f32>() / width as f32;
                    gr.iter()
                        .zip(xr)
                        .map(move |(g, x)| r * (g - x * r * mean_gy))
                        .collect::<Vec<_>>()
                })
                .collect()
            })
        });
        vec![Some(Tensor::from_vec(dx, &shape))]
    })
}

/// The same RMS norm from library ops (their gradients come with them): the oracle.
fn rms_norm_composed(x: &Tensor, eps: f32) -> Tensor {
    let ms = x.mul(x).mean(-1, true).add_scalar(eps); // [rows, 1]
    x.div(&ms.sqrt())
}

fn main() -> neurite::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut rows, mut width) = (8, 16);
    while let Some(flag) = args.next() {
        let value: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
            eprintln!("custom_op: {flag} needs a whole number");
            std::process::exit(2)
        });
        match flag.as_str() {
            "--rows" => rows = value,
            "--width" => width = value,
            _ => {
                eprintln!("custom_op: unknown flag {flag}: use --rows, --width");
                std::process::exit(2)
            }
        }
    }
    manual_seed(0);
    let cases = vec![
        // softsign has a kink at 0 only in its second derivative: any inputs will do.
        Case::new(
            "softsign",
            vec![Tensor::randn(&[rows, width], 0.0, 2.0)],
            |x| softsign(&x[0]),
        ),
        // Inputs away from the origin, where hypot is smooth.
        Case::new(
            "hypot",
            vec![
                Tensor::rand(&[rows, width], 0.5, 2.0),
                Tensor::randn(&[rows, width], 0.0, 1.0),
            ],
            |x| hypot(&x[0], &x[1]),
        ),
        Case::new(
            "rms_norm",
            vec![Tensor::randn(&[rows, width], 0.0, 1.0)],
            |x| rms_norm(&x[0], 1e-5),
        ),
    ];
    let mut all_passed = true;
    println!(
        "{:<10} {:>12} {:>12} {:>7}  result",
        "op", "max abs err", "max rel err", "probes"
    );
    for case in &cases {
        let r = check(case);
        println!(
            "{:<10} {:>12.2e} {:>12.2e} {:>7}  {}",
            r.op,
            r.max_abs_err,
            r.max_rel_err,
            r.probes,
            if r.passed { "pass" } else { "FAIL" }
        );
        all_passed &= r.passed;
    }

    // The hand-written backward agrees with the composition of library ops.
    let x = Tensor::randn(&[rows, width], 0.0, 1.0).requires_grad_();
    let weights = Tensor::randn(&[rows, width], 0.0, 1.0);
    let mut results = Vec::new();
    for composed in [false, true] {
        let y = if composed {
            rms_norm_composed(&x, 1e-5)
        } else {
            rms_norm(&x, 1e-5)
        };
        y.mul(&weights).sum_all().backward()?;
        results.push((y.to_vec(), x.grad().unwrap().to_vec()));
        x.zero_grad();
    }
    let max_diff = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    };
    let (dy, dg) = (
        max_diff(&results[0].0, &results[1].0),
        max_diff(&results[0].1, &results[1].1),
    );
    println!(
        "rms_norm against library ops: max difference {dy:.2e} (values), {dg:.2e} (gradients)"
    );
    all_passed &= dy < 1e-5 && dg < 1e-4;
    if !all_passed {
        eprintln!("custom_op: a check failed");
        std::process::exit(1);
    }
    Ok(())
}
