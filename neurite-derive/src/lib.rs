//! `#[derive(Module)]` for neurite: writes a struct's `neurite::nn::ModuleFields` (every
//! parameter, buffer and sub-module registered under its field name, train/eval mode passed
//! down, the child modules listed by name), so that a module's author writes only `forward`.
//!
//! The rules, field by field (the trait `neurite::nn::Visit` says what each type does):
//!
//! - a `Tensor` is a parameter named after the field (`weight`); `Option<Tensor>` when
//!   present;
//! - a sub-module registers its own tensors under the field's name (`conv1.weight`); a
//!   `Vec` of them as `blocks.0`, `blocks.1`, …; an `Option` when present; a
//!   `Box<dyn Module>` as the module inside;
//! - configuration (`usize`, `f32`, `bool`, `String`, …) registers nothing and needs no
//!   attribute; a type that is none of these is a compile error that says to add
//!   `#[module(skip)]`;
//! - a `bool` field named `training` is the module's mode flag: `set_training` sets it.
//!
//! Field attributes: `#[module(skip)]` (not registered), `#[module(buffer)]` (its tensors are
//! buffers, not trained: running statistics), `#[module(rename = "transformer.h")]` (the
//! name it registers under, dots allowed), `#[module(flatten)]` (a sub-module whose tensors
//! and children register directly under this module's prefix), `#[module(training)]` (a
//! `bool` mode flag of another name).
//!
//! Struct attribute: `#[module(lower = "conv1, relu, pool, fc")]` also implements
//! `neurite::infer::Lower` with those fields as the layers `forward` applies in order
//! (a field may repeat), so `neurite::infer::Plan::of` fuses the module.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{parse_macro_input, Data, DeriveInput, Fields, LitStr, Member, Type};

/// Derives `neurite::nn::ModuleFields` (see the crate docs for the rules and attributes).
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// What a field's `#[module(...)]` attributes say.
#[derive(Default)]
struct FieldAttrs {
    skip: bool,
    buffer: bool,
    flatten: bool,
    training: bool,
    rename: Option<String>,
}

fn field_attrs(field: &syn::Field) -> syn::Result<FieldAttrs> {
    let mut a = FieldAttrs::default();
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                a.skip = true;
            } else if meta.path.is_ident("buffer") {
                a.buffer = true;
            } else if meta.path.is_ident("flatten") {
                a.flatten = true;
            } else if meta.path.is_ident("training") {
                a.training = true;
            } else if meta.path.is_ident("rename") {
                let s: LitStr = meta.value()?.parse()?;
                a.rename = Some(s.value());
            } else {
                return Err(meta.error(
                    "unknown #[module] field attribute; use skip, buffer, flatten, training or rename = \"...\"",
                ));
            }
            Ok(())
        })?;
    }
    let conflicts = [a.skip, a.flatten, a.training]
        .iter()
        .filter(|&&b| b)
        .count();
    if conflicts > 1 || (a.training && (a.buffer || a.rename.is_some())) {
        return Err(syn::Error::new(
            field.span(),
            "#[module]: skip, flatten and training exclude each other (and training takes no buffer or rename)",
        ));
    }
    if a.flatten && a.rename.is_some() {
        return Err(syn::Error::new(
            field.span(),
            "#[module(flatten)] registers under the parent's own prefix: it takes no rename",
        ));
    }
    Ok(a)
}

/// The layer list of a struct's `#[module(lower = "a, b, ...")]`, if any. (A string, not
/// `lower(a, b)`: a layer may repeat, which clippy reports as a duplicated attribute.)
fn lower_list(input: &DeriveInput) -> syn::Result<Option<Vec<Member>>> {
    let mut list = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("lower") {
                let s: LitStr = meta.value()?.parse()?;
                let mut names = Vec::new();
                for part in s
                    .value()
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                {
                    let member = match part.parse::<usize>() {
                        Ok(i) => Member::Unnamed(syn::Index {
                            index: i as u32,
                            span: s.span(),
                        }),
                        Err(_) => {
                            Member::Named(syn::parse_str::<syn::Ident>(part).map_err(|_| {
                                syn::Error::new(
                                    s.span(),
                                    format!("lower: `{part}` is not a field name"),
                                )
                            })?)
                        }
                    };
                    names.push(member);
                }
                list = Some(names);
                Ok(())
            } else {
                Err(meta
                    .error("unknown #[module] struct attribute; use lower = \"field, field, ...\""))
            }
        })?;
    }
    Ok(list)
}

/// Whether a type is written as plain `bool`.
fn is_bool(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.is_ident("bool"))
}

fn expand(input: &DeriveInput) -> syn::Result<TokenStream2> {
    let fields =
        match &input.data {
            Data::Struct(s) => &s.fields,
            _ => return Err(syn::Error::new(
                input.ident.span(),
                "#[derive(Module)] needs a struct (its fields are the parameters and sub-modules)",
            )),
        };
    let nn = quote!(::neurite::nn);
    let mut visit = Vec::new();
    let mut train = Vec::new();
    let mut children = Vec::new();
    let mut bounds = Vec::new();
    let members: Vec<(Member, &syn::Field)> = match fields {
        Fields::Named(f) => f
            .named
            .iter()
            .map(|f| (Member::Named(f.ident.clone().unwrap()), f))
            .collect(),
        Fields::Unnamed(f) => f
            .unnamed
            .iter()
            .enumerate()
            .map(|(i, f)| (Member::Unnamed(i.into()), f))
            .collect(),
        Fields::Unit => Vec::new(),
    };
    for (member, field) in &members {
        let a = field_attrs(field)?;
        let ty = &field.ty;
        let span = ty.span();
        let is_flag = a.training
            || (!a.skip && matches!(member, Member::Named(id) if id == "training") && is_bool(ty));
        if a.skip {
            continue;
        }
        if is_flag {
            train.push(quote_spanned!(span=> self.#member = training;));
            continue;
        }
        if a.flatten {
            bounds.push(quote_spanned!(span=> #ty: #nn::ModuleFields));
            visit.push(quote_spanned!(span=> #nn::ModuleFields::visit(&self.#member, prefix, f);));
            train.push(
                quote_spanned!(span=> #nn::ModuleFields::set_training_mode(&mut self.#member, training);),
            );
            children.push(
                quote_spanned!(span=> #nn::ModuleFields::visit_children(&self.#member, prefix, f);),
            );
            continue;
        }
        let name = a.rename.clone().unwrap_or_else(|| match member {
            Member::Named(id) => id.to_string().trim_start_matches("r#").to_string(),
            Member::Unnamed(i) => i.index.to_string(),
        });
        let name = LitStr::new(&name, Span::call_site());
        bounds.push(quote_spanned!(span=> #ty: #nn::Visit));
        let visit_fn = if a.buffer {
            quote_spanned!(span=> #nn::visit_as_buffer)
        } else {
            quote_spanned!(span=> #nn::Visit::visit_field)
        };
        visit.push(quote_spanned!(span=> #visit_fn(&self.#member, &#nn::join(prefix, #name), f);));
        train.push(
            quote_spanned!(span=> #nn::Visit::set_training_field(&mut self.#member, training);),
        );
        children.push(
            quote_spanned!(span=> #nn::Visit::children_field(&self.#member, &#nn::join(prefix, #name), f);),
        );
    }

    let ident = &input.ident;
    let (impl_g, ty_g, where_c) = input.generics.split_for_impl();
    // Generic structs: each field's type must register (`Vec<M>: Visit`); a concrete
    // struct is checked at each call instead, where the error points at the field.
    let mut where_all: Vec<TokenStream2> = where_c
        .map(|w| w.predicates.iter().map(|p| quote!(#p)).collect())
        .unwrap_or_default();
    if !input.generics.params.is_empty() {
        where_all.extend(bounds);
    }
    let where_tokens = if where_all.is_empty() {
        quote!()
    } else {
        quote!(where #(#where_all),*)
    };
    let unused = if members.is_empty() || visit.is_empty() {
        quote!(let _ = (prefix, &f);)
    } else {
        quote!()
    };
    let unused_train = if train.is_empty() {
        quote!(let _ = training;)
    } else {
        quote!()
    };
    let unused_children = if children.is_empty() {
        quote!(let _ = (prefix, &f);)
    } else {
        quote!()
    };
    let mut out = quote! {
        #[automatically_derived]
        impl #impl_g #nn::ModuleFields for #ident #ty_g #where_tokens {
            fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &::neurite::Tensor, #nn::Role)) {
                #unused
                #(#visit)*
            }
            fn set_training_mode(&mut self, training: bool) {
                #unused_train
                #(#train)*
            }
            fn visit_children<'neurite_a>(
                &'neurite_a self,
                prefix: &str,
                f: &mut dyn FnMut(String, &'neurite_a dyn #nn::Module),
            ) {
                #unused_children
                #(#children)*
            }
        }
    };
    if let Some(list) = lower_list(input)? {
        for m in &list {
            let known = members.iter().any(|(mm, _)| mm == m);
            if !known {
                let name = match m {
                    Member::Named(id) => id.to_string(),
                    Member::Unnamed(i) => i.index.to_string(),
                };
                return Err(syn::Error::new(
                    Span::call_site(),
                    format!("#[module(lower = ...)] names `{name}`, which is not a field of this struct"),
                ));
            }
        }
        let layers = list
            .iter()
            .map(|m| quote!(#nn::AsModule::as_module(&self.#m)));
        let where_lower = if where_all.is_empty() {
            quote!(where #ident #ty_g: #nn::Module)
        } else {
            quote!(where #ident #ty_g: #nn::Module, #(#where_all),*)
        };
        out.extend(quote! {
            #[automatically_derived]
            impl #impl_g ::neurite::infer::Lower for #ident #ty_g #where_lower {
                fn lower(&self) -> Vec<&dyn #nn::Module> {
                    vec![#(#layers),*]
                }
            }
        });
    }
    Ok(out)
}
