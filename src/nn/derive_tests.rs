//! `#[derive(Module)]`: the names, roles and counts it registers, the mode it passes down,
//! and the children it lists, for every kind of field.

use super::{
    BatchNorm, Conv2d, Dropout, Flatten, Linear, Module, ModuleExt, ModuleFields, Relu, Role,
    Sequential,
};
use crate::ops::conv::Conv2dOptions;
use crate::tensor::Tensor;

/// The state dict as `(name, role, shape)`.
fn listing(m: &dyn Module) -> Vec<(String, Role, Vec<usize>)> {
    let mut out = Vec::new();
    m.visit("", &mut |n, t, r| {
        out.push((n.to_string(), r, t.shape().to_vec()))
    });
    out
}

fn names(m: &dyn Module) -> Vec<String> {
    listing(m).into_iter().map(|(n, _, _)| n).collect()
}

/// A leaf of one's own: a parameter, a buffer, an optional parameter, configuration.
#[derive(Module)]
struct Scale {
    gain: Tensor,
    #[module(buffer)]
    seen: Tensor,
    shift: Option<Tensor>,
    eps: f32,
    label: String,
    flags: Vec<bool>,
    #[module(skip)]
    cache: std::sync::Mutex<Vec<f32>>,
}

impl Module for Scale {
    fn forward(&self, x: &Tensor) -> Tensor {
        x.mul(&self.gain)
    }
}

fn scale(n: usize, shift: bool) -> Scale {
    Scale {
        gain: Tensor::ones(&[n]).requires_grad_(),
        seen: Tensor::zeros(&[]),
        shift: shift.then(|| Tensor::zeros(&[n]).requires_grad_()),
        eps: 1e-5,
        label: "scale".into(),
        flags: vec![true],
        cache: Default::default(),
    }
}

/// Nesting of every kind: sub-modules, a `Vec`, an `Option` present and absent, a boxed
/// module, a `Sequential`, a skipped module, a batch norm and a dropout to switch.
#[derive(Module)]
struct Net {
    stem: Conv2d,
    norms: Vec<BatchNorm>,
    extra: Option<Scale>,
    missing: Option<Scale>,
    head: Box<dyn Module>,
    tail: Sequential,
    drop: Dropout,
    #[module(skip)]
    teacher: Linear,
    width: usize,
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.head.forward(x)
    }
}

fn net() -> Net {
    Net {
        stem: Conv2d::new(1, 2, 3, Conv2dOptions::default(), true),
        norms: vec![BatchNorm::new(2), BatchNorm::new(2)],
        extra: Some(scale(2, true)),
        missing: None,
        head: Box::new(Linear::new(4, 3, false)),
        tail: Sequential::new().push(BatchNorm::new(3)).push(Relu),
        drop: Dropout::new(0.5),
        teacher: Linear::new(4, 4, true),
        width: 2,
    }
}

#[test]
fn every_field_registers_under_its_name_with_its_role() {
    let m = net();
    let p = Role::Parameter;
    let b = Role::Buffer;
    let bn = |prefix: &str, c: usize| {
        vec![
            (format!("{prefix}.weight"), p, vec![c]),
            (format!("{prefix}.bias"), p, vec![c]),
            (format!("{prefix}.running_mean"), b, vec![c]),
            (format!("{prefix}.running_var"), b, vec![c]),
            (format!("{prefix}.num_batches_tracked"), b, vec![]),
        ]
    };
    let mut expected = vec![
        ("stem.weight".to_string(), p, vec![2, 1, 3, 3]),
        ("stem.bias".to_string(), p, vec![2]),
    ];
    expected.extend(bn("norms.0", 2));
    expected.extend(bn("norms.1", 2));
    expected.extend([
        ("extra.gain".to_string(), p, vec![2]),
        ("extra.seen".to_string(), b, vec![]),
        ("extra.shift".to_string(), p, vec![2]),
        ("head.weight".to_string(), p, vec![3, 4]),
    ]);
    expected.extend(bn("tail.0", 3));
    assert_eq!(listing(&m), expected);
    // 18 + 2 + 2*(2+2) + 2 + 2 + 12 + 3 + 3 trained scalars; `teacher` and `missing` absent.
    assert_eq!(m.num_parameters(), 18 + 2 + 8 + 2 + 2 + 12 + 3 + 3);
    assert_eq!(m.parameters().len(), 2 + 4 + 2 + 1 + 2);
    assert_eq!(m.state_dict().len(), expected.len());
    let _ = (&m.teacher, m.width, &m.missing);
    assert!(scale(1, false).cache.lock().unwrap().is_empty());
    assert_eq!(names(&scale(1, false)), ["gain", "seen"]);
}

#[test]
fn the_mode_reaches_every_leaf() {
    let mut m = net();
    let modes = |m: &Net| {
        let tail_bn = (m.tail.layers().next().unwrap().1 as &dyn std::any::Any)
            .downcast_ref::<BatchNorm>()
            .unwrap()
            .is_training();
        [
            m.norms[0].is_training(),
            m.norms[1].is_training(),
            tail_bn,
            m.drop.is_training(),
        ]
    };
    assert_eq!(modes(&m), [true; 4]);
    m.eval();
    assert_eq!(modes(&m), [false; 4]);
    assert!(
        m.teacher.weight.requires_grad(),
        "skip leaves the field alone"
    );
    m.set_training(true);
    assert_eq!(modes(&m), [true; 4]);
    // Through a trait object as well.
    let mut boxed: Box<dyn Module> = Box::new(net());
    boxed.set_training(false);
    let inner = (boxed.as_ref() as &dyn std::any::Any)
        .downcast_ref::<Net>()
        .unwrap();
    assert_eq!(modes(inner), [false; 4]);
}

#[test]
fn children_are_listed_by_name_in_field_order() {
    let m = net();
    let kids: Vec<String> = m.named_children().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        kids,
        ["stem", "norms.0", "norms.1", "extra", "head", "tail", "drop"]
    );
    let all: Vec<String> = m.named_modules().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        all,
        ["stem", "norms.0", "norms.1", "extra", "head", "tail", "tail.0", "tail.1", "drop"]
    );
    // The boxed child is the module inside, not the box.
    let head = m.named_children()[4].1;
    assert!((head as &dyn std::any::Any).is::<Linear>());
}

/// A generic container: `Vec<M>` of any module, and a generic field.
#[derive(Module)]
struct Stack<M, N> {
    layers: Vec<M>,
    last: N,
    depth: usize,
}

impl<M: Module, N: Module> Module for Stack<M, N> {
    fn forward(&self, x: &Tensor) -> Tensor {
        let h = self.layers.iter().fold(x.clone(), |h, l| l.forward(&h));
        self.last.forward(&h)
    }
}

#[test]
fn generic_structs_register_their_type_parameters() {
    let mut s = Stack {
        layers: vec![Linear::new(3, 3, true), Linear::new(3, 3, false)],
        last: Dropout::new(0.1),
        depth: 2,
    };
    assert_eq!(
        names(&s),
        ["layers.0.weight", "layers.0.bias", "layers.1.weight"]
    );
    s.eval();
    assert!(!s.last.is_training());
    assert_eq!(s.forward(&Tensor::ones(&[2, 3])).shape(), &[2, 3]);
    assert_eq!(s.depth, 2);
    // Nested generics, and a stack of stacks.
    let outer = Stack {
        layers: vec![s],
        last: Relu,
        depth: 1,
    };
    assert_eq!(outer.named_parameters()[2].0, "layers.0.layers.1.weight");
    assert_eq!(
        super::summary::short_type_name(outer.type_name()).as_str(),
        "Stack<Stack<Linear, Dropout>, Relu>"
    );
}

/// Renamed and flattened fields, a tuple struct, a mode flag of another name.
#[derive(Module)]
struct Wrapped(#[module(rename = "encoder.layers")] Vec<Linear>, Flatten);

#[derive(Module)]
struct Flat {
    #[module(flatten)]
    body: Sequential,
    #[module(training)]
    active: bool,
    #[module(rename = "out.proj")]
    proj: Linear,
}

impl Module for Wrapped {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.1.forward(x)
    }
}

impl Module for Flat {
    fn forward(&self, x: &Tensor) -> Tensor {
        self.proj.forward(&self.body.forward(x))
    }
}

#[test]
fn rename_flatten_tuple_fields_and_mode_flags() {
    let w = Wrapped(vec![Linear::new(2, 2, false)], Flatten);
    assert_eq!(names(&w), ["encoder.layers.0.weight"]);
    let kids: Vec<String> = w.named_children().into_iter().map(|(n, _)| n).collect();
    assert_eq!(kids, ["encoder.layers.0", "1"]);
    let mut f = Flat {
        body: Sequential::new().add("fc", Linear::new(2, 2, true)),
        active: true,
        proj: Linear::new(2, 1, true),
    };
    assert_eq!(
        names(&f),
        ["fc.weight", "fc.bias", "out.proj.weight", "out.proj.bias"]
    );
    let kids: Vec<String> = f.named_children().into_iter().map(|(n, _)| n).collect();
    assert_eq!(kids, ["fc", "out.proj"]);
    f.eval();
    assert!(!f.active);
}

#[test]
fn a_forgotten_field_is_impossible_the_issue_s_example() {
    // The issue's trap: `fc2` left out of a hand-written `visit`. Derived, all 3 layers
    // (6 tensors) are there, and a checkpoint round trip restores every one.
    #[derive(Module)]
    struct Mlp3 {
        fc1: Linear,
        fc2: Linear,
        fc3: Linear,
    }
    impl Module for Mlp3 {
        fn forward(&self, x: &Tensor) -> Tensor {
            self.fc3
                .forward(&self.fc2.forward(&self.fc1.forward(x).relu()).relu())
        }
    }
    let make = || Mlp3 {
        fc1: Linear::new(4, 5, true),
        fc2: Linear::new(5, 5, true),
        fc3: Linear::new(5, 2, true),
    };
    let (a, b) = (make(), make());
    assert_eq!(a.parameters().len(), 6);
    b.load_state_dict(&a.state_dict()).unwrap();
    assert_eq!(b.fc2.weight.to_vec(), a.fc2.weight.to_vec());
}
