//! Printing tensors as PyTorch does (`torch/_tensor_str.py` with the default print options):
//! `tensor([[1.0000, 2.5000], ...])`, nested brackets by dimension, one width for every
//! element, lines wrapped at 80 columns, and beyond 1000 elements only the first and last 3
//! entries of each dimension with `...` between them.
//!
//! The number style is chosen as PyTorch chooses it, from the nonzero finite values shown:
//! integers print as `1.`, values spanning more than three orders of magnitude (or above
//! 1e8, or below 1e-4) in scientific notation `1.0000e+03`, others with 4 decimals.

use std::ops::Range;

/// PyTorch's default print options.
const THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;
const LINE_WIDTH: usize = 80;
/// `tensor(`: the prefix, and the indent of continued lines.
const PREFIX: &str = "tensor(";

/// Formats one element, without padding.
trait Element {
    fn text(&self, at: usize) -> String;
}

/// How f32 values are written, chosen from the values shown (`_Formatter`).
struct FloatStyle<'a> {
    values: &'a [f32],
    precision: usize,
    int_mode: bool,
    sci_mode: bool,
}

impl FloatStyle<'_> {
    fn fixed(&self, v: f64) -> String {
        format!("{v:.p$}", p = self.precision)
    }

    /// Python's `{:.4e}`: a signed exponent of at least two digits (`1.0000e+03`).
    fn scientific(&self, v: f64) -> String {
        let s = format!("{v:.p$e}", p = self.precision);
        let (mantissa, exp) = s.split_once('e').expect("an exponent");
        let exp: i32 = exp.parse().expect("a decimal exponent");
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

impl Element for FloatStyle<'_> {
    fn text(&self, at: usize) -> String {
        let v = self.values[at] as f64;
        if v.is_nan() {
            return "nan".into();
        }
        if v.is_infinite() {
            return if v > 0.0 { "inf" } else { "-inf" }.into();
        }
        if self.sci_mode {
            self.scientific(v)
        } else if self.int_mode {
            format!("{v:.0}.")
        } else {
            self.fixed(v)
        }
    }
}

struct Ints<'a>(&'a [i64]);

impl Element for Ints<'_> {
    fn text(&self, at: usize) -> String {
        self.0[at].to_string()
    }
}

struct Bools<'a>(&'a [bool]);

impl Element for Bools<'_> {
    fn text(&self, at: usize) -> String {
        if self.0[at] { "True" } else { "False" }.into()
    }
}

/// The positions of a dimension of size `n` that are shown: all of them, or the first and
/// the last `EDGE_ITEMS` (with `...` between the two runs).
fn edges(n: usize, summarize: bool) -> (Range<usize>, Option<Range<usize>>) {
    if summarize && n > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS, Some(n - EDGE_ITEMS..n))
    } else {
        (0..n, None)
    }
}

/// The row-major positions of the elements that are shown (PyTorch's
/// `get_summarized_data`): the number style is chosen from these alone.
fn shown_positions(shape: &[usize], summarize: bool) -> Vec<usize> {
    fn walk(shape: &[usize], base: usize, summarize: bool, out: &mut Vec<usize>) {
        let Some((&n, rest)) = shape.split_first() else {
            out.push(base);
            return;
        };
        let inner: usize = rest.iter().product();
        let (head, tail) = edges(n, summarize);
        for i in head.chain(tail.into_iter().flatten()) {
            walk(rest, base + i * inner, summarize, out);
        }
    }
    let mut out = Vec::new();
    walk(shape, 0, summarize, &mut out);
    out
}

/// The bracketed text of the elements (`_tensor_str_with_formatter`), each padded to
/// `width`.
struct Layout<'a> {
    element: &'a dyn Element,
    width: usize,
    summarize: bool,
}

impl Layout<'_> {
    fn padded(&self, at: usize) -> String {
        let s = self.element.text(at);
        format!(
            "{}{s}",
            " ".repeat(self.width.saturating_sub(s.chars().count()))
        )
    }

    fn block(&self, shape: &[usize], base: usize, indent: usize) -> String {
        match shape {
            [] => self.padded(base),
            [n] => self.vector(*n, base, indent),
            [n, rest @ ..] => {
                let inner: usize = rest.iter().product();
                let (head, tail) = edges(*n, self.summarize);
                let mut slices: Vec<String> = head
                    .map(|i| self.block(rest, base + i * inner, indent + 1))
                    .collect();
                if let Some(tail) = tail {
                    slices.push("...".into());
                    slices.extend(tail.map(|i| self.block(rest, base + i * inner, indent + 1)));
                }
                let sep = format!(
                    ",{}{}",
                    "\n".repeat(shape.len() - 1),
                    " ".repeat(indent + 1)
                );
                format!("[{}]", slices.join(&sep))
            }
        }
    }

    fn vector(&self, n: usize, base: usize, indent: usize) -> String {
        let per_line = (LINE_WIDTH.saturating_sub(indent) / (self.width + 2)).max(1);
        let (head, tail) = edges(n, self.summarize);
        let mut items: Vec<String> = head.map(|i| self.padded(base + i)).collect();
        if let Some(tail) = tail {
            items.push(" ...".into());
            items.extend(tail.map(|i| self.padded(base + i)));
        }
        let lines: Vec<String> = items.chunks(per_line).map(|l| l.join(", ")).collect();
        format!(
            "[{}]",
            lines.join(&format!(",\n{}", " ".repeat(indent + 1)))
        )
    }
}

/// `tensor(` + the elements + the suffixes + `)`, as `_str_intern` and `_add_suffixes`
/// put them together. `dtype` is the suffix an empty tensor of a non-f32 type gets.
fn render(
    shape: &[usize],
    element: &dyn Element,
    width: usize,
    dtype: Option<&str>,
    mut suffixes: Vec<String>,
) -> String {
    let indent = PREFIX.len();
    let numel: usize = shape.iter().product();
    let body = if numel == 0 {
        let mut empty = Vec::new();
        if shape.len() != 1 {
            let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
            empty.push(format!("size=({})", dims.join(", ")));
        }
        empty.extend(dtype.map(|d| format!("dtype={d}")));
        suffixes.splice(0..0, empty);
        "[]".to_string()
    } else {
        let layout = Layout {
            element,
            width,
            summarize: numel > THRESHOLD,
        };
        layout.block(shape, 0, indent)
    };
    let mut out = format!("{PREFIX}{body}");
    // As PyTorch counts it (`len(s) - s.rfind("\n") + 1`, with -1 when there is no
    // newline), so that a suffix wraps exactly where PyTorch wraps it.
    let mut last_line = out.len() + 1 - out.rfind('\n').map_or(-1, |p| p as isize) as usize;
    for suffix in suffixes {
        if last_line + suffix.len() + 2 > LINE_WIDTH {
            out.push_str(&format!(",\n{}{suffix}", " ".repeat(indent)));
            last_line = indent + suffix.len();
        } else {
            out.push_str(&format!(", {suffix}"));
            last_line += suffix.len() + 2;
        }
    }
    out.push(')');
    out
}

/// PyTorch's text of an f32 tensor with `precision` decimals and the given suffixes
/// (`requires_grad=True`, `grad_fn=<…>`).
pub(crate) fn render_floats(
    values: &[f32],
    shape: &[usize],
    precision: usize,
    suffixes: Vec<String>,
) -> String {
    let summarize = values.len() > THRESHOLD;
    let shown: Vec<f64> = shown_positions(shape, summarize)
        .into_iter()
        .filter(|&p| p < values.len())
        .map(|p| values[p] as f64)
        .filter(|v| v.is_finite() && *v != 0.0)
        .collect();
    let mut style = FloatStyle {
        values,
        precision,
        int_mode: true,
        sci_mode: false,
    };
    let mut width = 1;
    if !shown.is_empty() {
        let (min, max) = shown.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v.abs()), hi.max(v.abs()))
        });
        style.int_mode = shown.iter().all(|v| v.ceil() == *v);
        style.sci_mode = max / min > 1000.0 || max > 1.0e8 || min < 1.0e-4;
        width = shown
            .iter()
            .map(|&v| {
                if style.sci_mode {
                    style.scientific(v).len()
                } else if style.int_mode {
                    format!("{v:.0}").len() + 1
                } else {
                    style.fixed(v).len()
                }
            })
            .max()
            .unwrap_or(1);
    }
    render(shape, &style, width, None, suffixes)
}

/// PyTorch's text of an i64 tensor.
pub(crate) fn render_ints(values: &[i64], shape: &[usize]) -> String {
    let summarize = values.len() > THRESHOLD;
    let width = shown_positions(shape, summarize)
        .into_iter()
        .filter(|&p| p < values.len())
        .map(|p| values[p].to_string().len())
        .max()
        .unwrap_or(1)
        .max(1);
    render(shape, &Ints(values), width, Some("torch.int64"), Vec::new())
}

/// PyTorch's text of a bool tensor.
pub(crate) fn render_bools(values: &[bool], shape: &[usize]) -> String {
    let summarize = values.len() > THRESHOLD;
    let width = shown_positions(shape, summarize)
        .into_iter()
        .filter(|&p| p < values.len())
        .map(|p| if values[p] { 4 } else { 5 })
        .max()
        .unwrap_or(1);
    render(shape, &Bools(values), width, Some("torch.bool"), Vec::new())
}

/// PyTorch's name of the backward node of an op (`grad_fn=<AddBackward0>`): the op's name
/// in CamelCase, with the names PyTorch gives differently mapped.
pub(crate) fn grad_fn_name(op: &str) -> String {
    let torch = match op {
        "add_scalar" => "add",
        "mul_scalar" => "mul",
        "narrow" | "split" => "slice",
        "reshape" => "view",
        "matmul" => "mm",
        "contiguous" => "clone",
        "cross_entropy" => "nll_loss",
        "log_softmax" => "_log_softmax",
        "softmax" => "_softmax",
        other => other,
    };
    let camel: String = torch
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("{camel}Backward0")
}
