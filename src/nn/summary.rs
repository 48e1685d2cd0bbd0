//! Model summaries, as torchinfo's `summary` and Keras's `model.summary()`: each layer with
//! its dotted name, type, output shape and parameter count, then the totals and memory.
//!
//! The layers are the module's children as `#[derive(Module)]` lists them
//! ([`super::ModuleExt::named_modules`]); their output shapes come from one forward pass in
//! which the library's layers report their outputs ([`recorded`]). That report is a check of
//! one thread-local flag that is set only while [`summary()`] runs: it decides no op's path
//! and keeps nothing otherwise.

use super::{Module, ModuleExt, Role};
use crate::tensor::Tensor;
use std::any::{Any, TypeId};
use std::cell::{Cell, RefCell};
use std::fmt;

/// One layer call seen while a summary is taken: which module (address and type) and the
/// shape of what it returned.
struct Call {
    addr: usize,
    ty: TypeId,
    shape: Vec<usize>,
}

thread_local! {
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    static CALLS: RefCell<Vec<Call>> = const { RefCell::new(Vec::new()) };
}

/// Returns `out`, noting it as `layer`'s output while a summary is taken on this thread.
/// The library's layers call it at the end of `forward`; a leaf module of your own (one
/// with tensors but no sub-modules) may too, to show its output shape in summaries.
#[inline]
pub fn recorded<M: Module>(layer: &M, out: Tensor) -> Tensor {
    if RECORDING.with(Cell::get) {
        push(
            layer as *const M as *const () as usize,
            TypeId::of::<M>(),
            &out,
        );
    }
    out
}

/// [`recorded`] for a layer known only as `&dyn Module` (a `Sequential`'s fused pair).
#[inline]
pub fn record_dyn(layer: &dyn Module, out: &Tensor) {
    if RECORDING.with(Cell::get) {
        let ty = (layer as &dyn Any).type_id();
        push(layer as *const dyn Module as *const () as usize, ty, out);
    }
}

#[cold]
fn push(addr: usize, ty: TypeId, out: &Tensor) {
    CALLS.with(|c| {
        c.borrow_mut().push(Call {
            addr,
            ty,
            shape: out.shape().to_vec(),
        })
    });
}

/// Turns recording on for its lifetime (off again on drop, also when a forward panics).
struct Recording;

impl Recording {
    fn start() -> Recording {
        CALLS.with(|c| c.borrow_mut().clear());
        RECORDING.with(|r| r.set(true));
        Recording
    }

    fn take(&self) -> Vec<Call> {
        CALLS.with(|c| std::mem::take(&mut *c.borrow_mut()))
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        RECORDING.with(|r| r.set(false));
        CALLS.with(|c| c.borrow_mut().clear());
    }
}

/// One row of a [`Summary`]: a module of the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryRow {
    /// The dotted name (`layer1.0.conv1`); empty for the model itself.
    pub name: String,
    /// The type, without module paths (`Conv2d`, `Stack<Linear>`).
    pub type_name: String,
    /// Nesting: 0 for the model, 1 for its children, …
    pub depth: usize,
    /// The output of its first call in the summary's forward; `None` when it was not called
    /// or does not report (a container of your own: its layers do).
    pub output_shape: Option<Vec<usize>>,
    /// Trained scalars in it and its sub-modules.
    pub parameters: usize,
    /// Times it ran in the forward pass (a layer reused for several steps runs more often).
    pub calls: usize,
}

/// A model's layers, output shapes and sizes for one input shape; `Display` prints it as a
/// table. Made by [`summary()`] or [`ModuleExt::summary`].
#[derive(Clone, Debug)]
pub struct Summary {
    /// The model, then every sub-module depth first.
    pub rows: Vec<SummaryRow>,
    /// The input the forward pass ran on.
    pub input_shape: Vec<usize>,
    /// Trained scalars (`parameters()`), as PyTorch counts `p.numel()` over `parameters()`.
    pub trainable: usize,
    /// Scalars carried but not trained (buffers: batch-norm running statistics), as Keras
    /// counts non-trainable parameters.
    pub non_trainable: usize,
    /// Bytes of the input tensor (f32).
    pub input_bytes: usize,
    /// Bytes of every reported layer output of the forward pass (f32): what a forward keeps
    /// alive for backward, roughly; the activation memory of one step at this batch size.
    pub activation_bytes: usize,
    /// Bytes of the parameters and buffers (f32).
    pub parameter_bytes: usize,
}

/// The summary of `model` for an input of `input_shape` (`[1, 1, 28, 28]`; a `gpt` takes
/// token ids `[1, T]`): one forward pass without autograd on zeros, in the module's current
/// mode. The module is left as it was: buffers a training-mode forward would update (batch
/// norm's running statistics) and the random generator (dropout's draws) are restored.
///
/// ```
/// use neurite::models::lenet5;
/// use neurite::nn::ModuleExt;
///
/// let s = lenet5(1, 10).summary(&[1, 1, 28, 28]);
/// assert_eq!(s.trainable, 61_706);
/// let conv1 = s.rows.iter().find(|r| r.name == "conv1").unwrap();
/// assert_eq!(conv1.output_shape.as_deref(), Some(&[1, 6, 28, 28][..]));
/// println!("{s}");
/// ```
pub fn summary<M: Module + ?Sized>(model: &M, input_shape: &[usize]) -> Summary {
    let mut buffers = Vec::new();
    let (mut trainable, mut non_trainable) = (0, 0);
    model.visit("", &mut |_, t, role| match role {
        Role::Parameter => trainable += t.numel(),
        Role::Buffer => {
            non_trainable += t.numel();
            buffers.push((t.clone(), t.to_vec()));
        }
    });
    let rng = crate::tensor::rng::with_rng(|r| r.clone());
    let x = Tensor::zeros(input_shape);
    let (y, calls) = {
        let rec = Recording::start();
        let y = crate::no_grad(|| model.forward(&x));
        (y, rec.take())
    };
    crate::tensor::rng::with_rng(|r| *r = rng);
    // The same tensor may be listed twice (gpt's tied head): restore in reverse so that
    // the first listing's saved values win, as they were before.
    for (t, v) in buffers.iter().rev() {
        t.copy_from(&Tensor::from_vec(v.clone(), t.shape()));
    }

    let mut rows = vec![SummaryRow {
        name: String::new(),
        type_name: short_type_name(model.type_name()),
        depth: 0,
        output_shape: Some(y.shape().to_vec()),
        parameters: trainable,
        calls: 1,
    }];
    let mut ids = vec![(model as *const M as *const () as usize, Any::type_id(model))];
    for (name, m) in model.named_modules() {
        ids.push((
            m as *const dyn Module as *const () as usize,
            (m as &dyn Any).type_id(),
        ));
        rows.push(SummaryRow {
            depth: depth_of(&rows, &name),
            type_name: short_type_name(m.type_name()),
            output_shape: None,
            parameters: m.num_parameters(),
            calls: 0,
            name,
        });
    }
    // A row is a leaf when the next one is not inside it.
    let leaf: Vec<bool> = (0..rows.len())
        .map(|i| {
            rows.get(i + 1)
                .is_none_or(|next| next.depth <= rows[i].depth)
        })
        .collect();
    let mut activation_bytes = 0;
    for call in &calls {
        // Several modules can share an address (zero-sized layers such as `Relu`, a struct
        // and its first field): the one of the right type not yet called, in order.
        let matches: Vec<usize> = (0..rows.len())
            .filter(|&i| ids[i] == (call.addr, call.ty))
            .collect();
        let found = matches
            .iter()
            .find(|&&i| rows[i].calls == 0)
            .or(matches.first())
            .copied();
        // Containers' outputs are their last layer's: count each output once.
        if found.is_none_or(|i| leaf[i]) {
            activation_bytes += call.shape.iter().product::<usize>() * 4;
        }
        if let Some(i) = found {
            if rows[i].output_shape.is_none() {
                rows[i].output_shape = Some(call.shape.clone());
            }
            rows[i].calls += 1;
        }
    }
    rows[0].calls = 1;
    Summary {
        rows,
        input_shape: input_shape.to_vec(),
        trainable,
        non_trainable,
        input_bytes: x.numel() * 4,
        activation_bytes,
        parameter_bytes: (trainable + non_trainable) * 4,
    }
}

/// The nesting of `name` under the rows so far: one more than the last row it is inside.
fn depth_of(rows: &[SummaryRow], name: &str) -> usize {
    rows.iter()
        .rev()
        .find(|r| r.name.is_empty() || name.starts_with(&format!("{}.", r.name)))
        .map_or(1, |r| r.depth + 1)
}

/// `neurite::nn::conv::Conv2d` -> `Conv2d`, `my::Stack<neurite::nn::linear::Linear>` ->
/// `Stack<Linear>`.
pub fn short_type_name(full: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(word.rsplit("::").next().unwrap_or(word));
        word.clear();
    };
    for ch in full.chars() {
        if matches!(
            ch,
            '<' | '>' | ',' | ' ' | '(' | ')' | '[' | ']' | ';' | '&'
        ) {
            flush(&mut word, &mut out);
            out.push(ch);
        } else {
            word.push(ch);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `1234567` -> `1,234,567`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as KiB or MiB.
fn size(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.2} MiB", b / (1024.0 * 1024.0))
    } else {
        format!("{:.2} KiB", b / 1024.0)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cells: Vec<[String; 3]> = self
            .rows
            .iter()
            .map(|r| {
                let indent = "  ".repeat(r.depth);
                let label = if r.name.is_empty() {
                    r.type_name.clone()
                } else {
                    format!("{indent}{} ({})", r.name, r.type_name)
                };
                let mut shape = r
                    .output_shape
                    .as_ref()
                    .map_or("--".to_string(), |s| format!("{s:?}"));
                if r.calls > 1 {
                    shape.push_str(&format!(" x{}", r.calls));
                }
                [label, shape, thousands(r.parameters)]
            })
            .collect();
        let header = ["Layer (type)", "Output shape", "Param #"];
        let w = |k: usize| {
            cells
                .iter()
                .map(|c| c[k].chars().count())
                .chain([header[k].len()])
                .max()
                .unwrap_or(0)
        };
        let (w0, w1, w2) = (w(0), w(1), w(2));
        let rule = "=".repeat(w0 + w1 + w2 + 4);
        writeln!(
            f,
            "{:<w0$}  {:<w1$}  {:>w2$}",
            header[0], header[1], header[2]
        )?;
        writeln!(f, "{rule}")?;
        for c in &cells {
            writeln!(f, "{:<w0$}  {:<w1$}  {:>w2$}", c[0], c[1], c[2])?;
        }
        writeln!(f, "{rule}")?;
        writeln!(f, "Trainable params: {}", thousands(self.trainable))?;
        writeln!(
            f,
            "Non-trainable params (buffers): {}",
            thousands(self.non_trainable)
        )?;
        writeln!(
            f,
            "Input {:?}: {}",
            self.input_shape,
            size(self.input_bytes)
        )?;
        writeln!(
            f,
            "Forward activations (layer outputs): {}",
            size(self.activation_bytes)
        )?;
        writeln!(f, "Parameters and buffers: {}", size(self.parameter_bytes))?;
        write!(
            f,
            "Estimated total: {}",
            size(self.input_bytes + self.activation_bytes + self.parameter_bytes)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::{BatchNorm, Conv2d, Dropout, Linear, MaxPool2d, Relu};
    use crate::ops::conv::Conv2dOptions;

    /// A block of one's own inside a model of one's own.
    #[derive(Module)]
    struct ConvBlock {
        conv: Conv2d,
        bn: BatchNorm,
    }

    impl Module for ConvBlock {
        fn forward(&self, x: &Tensor) -> Tensor {
            self.bn.forward(&self.conv.forward(x))
        }
    }

    #[derive(Module)]
    struct Custom {
        blocks: Vec<ConvBlock>,
        relu: Relu,
        pool: MaxPool2d,
        drop: Dropout,
        head: Linear,
    }

    impl Module for Custom {
        fn forward(&self, x: &Tensor) -> Tensor {
            let mut h = x.clone();
            for b in &self.blocks {
                h = self.relu.forward(&b.forward(&h)); // the one ReLU, used twice
            }
            let h = self.drop.forward(&self.pool.forward(&h).flatten(1));
            self.head.forward(&h)
        }
    }

    fn custom() -> Custom {
        let block = |cin, cout| ConvBlock {
            conv: Conv2d::new(cin, cout, 3, Conv2dOptions::with(1, 1), false),
            bn: BatchNorm::new(cout),
        };
        Custom {
            blocks: vec![block(1, 4), block(4, 8)],
            relu: Relu,
            pool: MaxPool2d::new(2),
            drop: Dropout::new(0.5),
            head: Linear::new(8 * 4 * 4, 10, true),
        }
    }

    #[test]
    fn a_custom_module_s_summary_names_each_layer_and_counts_it() {
        let m = custom();
        let before: Vec<Vec<f32>> = m.state_dict().iter().map(|(_, t)| t.to_vec()).collect();
        let draw = || crate::tensor::rng::with_rng(|r| r.clone());
        crate::manual_seed(5);
        let rng_before = draw();
        let s = summary(&m, &[2, 1, 8, 8]);
        type Row = (String, String, usize, Option<Vec<usize>>, usize, usize);
        let rows: Vec<Row> = s
            .rows
            .iter()
            .map(|r| {
                (
                    r.name.clone(),
                    r.type_name.clone(),
                    r.depth,
                    r.output_shape.clone(),
                    r.parameters,
                    r.calls,
                )
            })
            .collect();
        let row = |n: &str, t: &str, d, shape: Option<&[usize]>, p, c| {
            (
                n.to_string(),
                t.to_string(),
                d,
                shape.map(<[usize]>::to_vec),
                p,
                c,
            )
        };
        assert_eq!(
            rows,
            [
                row("", "Custom", 0, Some(&[2, 10]), 36 + 8 + 288 + 16 + 1290, 1),
                // A container of one's own reports no shape of its own: its layers do.
                row("blocks.0", "ConvBlock", 1, None, 44, 0),
                row("blocks.0.conv", "Conv2d", 2, Some(&[2, 4, 8, 8]), 36, 1),
                row("blocks.0.bn", "BatchNorm", 2, Some(&[2, 4, 8, 8]), 8, 1),
                row("blocks.1", "ConvBlock", 1, None, 304, 0),
                row("blocks.1.conv", "Conv2d", 2, Some(&[2, 8, 8, 8]), 288, 1),
                row("blocks.1.bn", "BatchNorm", 2, Some(&[2, 8, 8, 8]), 16, 1),
                row("relu", "Relu", 1, Some(&[2, 4, 8, 8]), 0, 2),
                row("pool", "MaxPool2d", 1, Some(&[2, 8, 4, 4]), 0, 1),
                row("drop", "Dropout", 1, Some(&[2, 128]), 0, 1),
                row("head", "Linear", 1, Some(&[2, 10]), 1290, 1),
            ]
        );
        assert_eq!(s.trainable, m.num_parameters());
        assert_eq!(s.non_trainable, 2 * 4 + 2 * 8 + 2);
        // Every output once: conv, bn, relu per block, pool, dropout, linear.
        let outputs = 3 * (2 * 4 * 64) + 3 * (2 * 8 * 64) + 2 * 8 * 16 + 2 * 128 + 2 * 10;
        assert_eq!(s.activation_bytes, outputs * 4);
        // Taking it changed nothing: running statistics, step counts, the generator.
        let after: Vec<Vec<f32>> = m.state_dict().iter().map(|(_, t)| t.to_vec()).collect();
        assert_eq!(before, after);
        let rng_after = draw();
        use rand::Rng;
        let (mut a, mut b) = (rng_before, rng_after);
        assert_eq!(a.gen::<u64>(), b.gen::<u64>());
        assert!(s.to_string().contains("    blocks.1.conv (Conv2d)"));
        // Recording is off again: a forward now records nothing.
        m.forward(&Tensor::zeros(&[1, 1, 8, 8]));
        assert!(CALLS.with(|c| c.borrow().is_empty()));
    }

    #[test]
    fn type_names_lose_their_paths() {
        assert_eq!(short_type_name("neurite::nn::conv::Conv2d"), "Conv2d");
        assert_eq!(
            short_type_name("a::Stack<neurite::nn::linear::Linear, alloc::vec::Vec<b::C>>"),
            "Stack<Linear, Vec<C>>"
        );
    }
}
