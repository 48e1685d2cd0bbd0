//! Registration: what a module holds ([`ModuleFields`], written by `#[derive(Module)]`)
//! and what each kind of field contributes to it ([`Visit`]).

use super::{join, Activation, Module, Role};
use crate::ops::conv::Conv2dOptions;
use crate::tensor::Tensor;

/// A module's tensors, mode and sub-modules, by name. `#[derive(Module)]` writes it from
/// the struct's fields (a field of each kind registers as [`Visit`] says), so nothing can be
/// left out by hand; [`super::ModuleExt`] builds `parameters`, `state_dict`,
/// `set_training` and the rest on it.
///
/// Write it by hand only for a module whose names are not its fields
/// ([`super::Sequential`]'s layers are named at run time).
pub trait ModuleFields {
    /// Calls `f` with every parameter and buffer, named under `prefix` as PyTorch names them.
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Tensor, Role));

    /// Sets the mode of this module and of every sub-module (batch statistics, dropout);
    /// call it through [`super::ModuleExt::set_training`].
    fn set_training_mode(&mut self, training: bool);

    /// Calls `f` with every direct sub-module, named under `prefix` (`conv1`, `blocks.0`).
    fn visit_children<'a>(&'a self, prefix: &str, f: &mut dyn FnMut(String, &'a dyn Module));

    /// The module's type, as `std::any::type_name` spells it (for summaries).
    fn type_name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// What a field of a `#[derive(Module)]` struct registers under its name:
///
/// | field | registers |
/// |---|---|
/// | `Tensor` | a parameter (`#[module(buffer)]`: a buffer) |
/// | a module (`Conv2d`, a struct of your own) | its tensors under `name.` and itself as a child |
/// | `Vec<T>`, `[T; N]` | element `i` under `name.i` |
/// | `Option<T>` | the value when present |
/// | `Box<dyn Module>` | the module inside |
/// | `usize`, `f32`, `bool`, `String`, … (configuration) | nothing |
///
/// Any other type is a compile error asking for `#[module(skip)]`; a configuration type of
/// your own can instead `impl Visit for MyConfig {}` (every method has a no-op default).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is neither a tensor, a module nor plain configuration, so #[derive(Module)] cannot register it",
    label = "this field's type does not implement `neurite::nn::Visit`",
    note = "add `#[module(skip)]` to the field to leave it out, or `impl neurite::nn::Visit for {Self} {{}}` if it is configuration"
)]
pub trait Visit {
    /// Calls `f` with the field's tensors, named under `name`.
    fn visit_field(&self, name: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
        let _ = (name, f);
    }

    /// Passes the mode to the field's modules.
    fn set_training_field(&mut self, training: bool) {
        let _ = training;
    }

    /// Calls `f` with the field's modules, named under `name`.
    fn children_field<'a>(&'a self, name: &str, f: &mut dyn FnMut(String, &'a dyn Module)) {
        let _ = (name, f);
    }
}

impl Visit for Tensor {
    fn visit_field(&self, name: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
        f(name, self, Role::Parameter);
    }
}

impl<M: Module> Visit for M {
    fn visit_field(&self, name: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
        self.visit(name, f);
    }

    fn set_training_field(&mut self, training: bool) {
        self.set_training_mode(training);
    }

    fn children_field<'a>(&'a self, name: &str, f: &mut dyn FnMut(String, &'a dyn Module)) {
        f(name.to_string(), self);
    }
}

impl Visit for Box<dyn Module> {
    fn visit_field(&self, name: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
        self.visit(name, f);
    }

    fn set_training_field(&mut self, training: bool) {
        self.set_training_mode(training);
    }

    fn children_field<'a>(&'a self, name: &str, f: &mut dyn FnMut(String, &'a dyn Module)) {
        f(name.to_string(), &**self);
    }
}

impl<T: Visit> Visit for Option<T> {
    fn visit_field(&self, name: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
        if let Some(v) = self {
            v.visit_field(name, f);
        }
    }

    fn set_training_field(&mut self, training: bool) {
        if let Some(v) = self {
            v.set_training_field(training);
        }
    }

    fn children_field<'a>(&'a self, name: &str, f: &mut dyn FnMut(String, &'a dyn Module)) {
        if let Some(v) = self {
            v.children_field(name, f);
        }
    }
}

/// Elements under `name.0`, `name.1`, … (PyTorch's `ModuleList` and `ParameterList`).
fn visit_items<T: Visit>(items: &[T], name: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
    for (i, v) in items.iter().enumerate() {
        v.visit_field(&join(name, &i.to_string()), f);
    }
}

fn children_items<'a, T: Visit>(
    items: &'a [T],
    name: &str,
    f: &mut dyn FnMut(String, &'a dyn Module),
) {
    for (i, v) in items.iter().enumerate() {
        v.children_field(&join(name, &i.to_string()), f);
    }
}

impl<T: Visit> Visit for Vec<T> {
    fn visit_field(&self, name: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
        visit_items(self, name, f);
    }

    fn set_training_field(&mut self, training: bool) {
        self.iter_mut().for_each(|v| v.set_training_field(training));
    }

    fn children_field<'a>(&'a self, name: &str, f: &mut dyn FnMut(String, &'a dyn Module)) {
        children_items(self, name, f);
    }
}

impl<T: Visit, const N: usize> Visit for [T; N] {
    fn visit_field(&self, name: &str, f: &mut dyn FnMut(&str, &Tensor, Role)) {
        visit_items(self, name, f);
    }

    fn set_training_field(&mut self, training: bool) {
        self.iter_mut().for_each(|v| v.set_training_field(training));
    }

    fn children_field<'a>(&'a self, name: &str, f: &mut dyn FnMut(String, &'a dyn Module)) {
        children_items(self, name, f);
    }
}

/// Configuration: registers nothing.
macro_rules! config_fields {
    ($($t:ty),* $(,)?) => {
        $(impl Visit for $t {})*
    };
}

config_fields!(
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    String,
    &'static str,
    (),
    Conv2dOptions,
    Activation,
);

impl<T: ?Sized> Visit for std::marker::PhantomData<T> {}

/// `#[module(buffer)]`: the field's tensors as buffers (carried in `state_dict`, not
/// trained), whatever [`Visit`] makes them.
pub fn visit_as_buffer<T: Visit + ?Sized>(
    field: &T,
    name: &str,
    f: &mut dyn FnMut(&str, &Tensor, Role),
) {
    field.visit_field(name, &mut |n, t, _| f(n, t, Role::Buffer));
}

/// A field as the `&dyn Module` the planner walks (`#[module(lower = "...")]`): a module
/// itself, or the module inside a `Box<dyn Module>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a module, so #[module(lower = ...)] cannot list it as a layer",
    note = "list only fields that are modules (Conv2d, Relu, a struct of your own, Box<dyn Module>)"
)]
pub trait AsModule {
    /// The module.
    fn as_module(&self) -> &dyn Module;
}

impl<M: Module> AsModule for M {
    fn as_module(&self) -> &dyn Module {
        self
    }
}

impl AsModule for Box<dyn Module> {
    fn as_module(&self) -> &dyn Module {
        &**self
    }
}
