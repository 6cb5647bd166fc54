//! `#[inputs]`, `#[context_inputs]` and `#[outputs]`: take a model's `#[field(...)]` settings
//! (parsed and checked in `field`), refuse attributes that would let the schema promise more
//! than validation checks, and generate serde, schemars and `Default` for it.
//!
//! Every mistake is one spanned error; the model is still emitted with its derives and with the
//! settings that did parse, so a typo in one field does not turn into errors wherever the model is
//! used.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Fields, Item, Meta, Token, Type};

use crate::attr::combine;
use crate::field::{Applies, take_field_settings};
use crate::paths::framework;

/// `#[inputs]`, `#[context_inputs]`, `#[outputs]` on `item`.
pub(crate) fn expand(kind: &str, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut item: Item = match syn::parse2(item) {
        Ok(i) => i,
        Err(e) => return e.to_compile_error(),
    };
    let mut errors = None;
    if !args.is_empty() {
        combine(
            &mut errors,
            syn::Error::new_spanned(&args, format!("#[{kind}] takes no arguments")),
        );
    }
    let generated = match &mut item {
        Item::Struct(s) => {
            refuse_schema_attributes(&mut s.attrs, &mut errors);
            refuse_derived_default(&mut s.attrs, &mut errors);
            struct_model(s, &mut errors)
        }
        Item::Enum(e) => {
            refuse_schema_attributes(&mut e.attrs, &mut errors);
            for variant in e.variants.iter_mut() {
                refuse_schema_attributes(&mut variant.attrs, &mut errors);
                refuse_field_attributes(&mut variant.attrs, &mut errors);
                for field in variant.fields.iter_mut() {
                    refuse_schema_attributes(&mut field.attrs, &mut errors);
                    refuse_field_attributes(&mut field.attrs, &mut errors);
                }
            }
            add_derives(&mut e.attrs);
            TokenStream::new()
        }
        other => {
            combine(
                &mut errors,
                syn::Error::new(
                    crate::ast::item_keyword_span(other),
                    format!("#[{kind}] goes on a struct or an enum (a model)"),
                ),
            );
            TokenStream::new()
        }
    };
    let errors = errors.map(|e| e.to_compile_error());
    quote! {
        #item
        #generated
        #errors
    }
}

/// Puts serde's and schemars' derives (through the framework's re-exports) on the model.
fn add_derives(attrs: &mut Vec<Attribute>) {
    let root = framework();
    let serde_crate = format!("{root}::deps::serde").replace(' ', "");
    let schemars_crate = format!("{root}::deps::schemars").replace(' ', "");
    let generated: [Attribute; 3] = [
        syn::parse_quote!(
            #[derive(#root::deps::serde::Serialize, #root::deps::serde::Deserialize, #root::deps::schemars::JsonSchema)]
        ),
        syn::parse_quote!(#[serde(crate = #serde_crate)]),
        syn::parse_quote!(#[schemars(crate = #schemars_crate)]),
    ];
    attrs.splice(0..0, generated);
}

/// `#[schemars(...)]`, `#[validate(...)]` and `#[garde(...)]` could make the schema publish a
/// keyword (a range, a length, a pattern, a whole schema) that validation does not check. They
/// are refused; `#[field(...)]` publishes and enforces the same constraints.
fn refuse_schema_attributes(attrs: &mut Vec<Attribute>, errors: &mut Option<syn::Error>) {
    attrs.retain(|attr| {
        let path = attr.path();
        let Some(name) = ["schemars", "validate", "garde"]
            .into_iter()
            .find(|name| path.is_ident(name))
        else {
            return true;
        };
        combine(
            errors,
            syn::Error::new(
                path.span(),
                format!(
                    "`#[{name}(...)]` is not allowed in a model: the schema would publish what \
                     validation does not check; use #[field(title, description, default, ge, \
                     le, min_length, regex, ...)]"
                ),
            ),
        );
        false
    });
}

fn refuse_field_attributes(attrs: &mut Vec<Attribute>, errors: &mut Option<syn::Error>) {
    attrs.retain(|attr| {
        if !attr.path().is_ident("field") {
            return true;
        }
        combine(
            errors,
            syn::Error::new(
                attr.path().span(),
                "#[field(...)] goes on a named field of a struct model",
            ),
        );
        false
    });
}

/// A derived `Default` would give every field its type's zero, not the field's default; the
/// model macro implements `Default` from the field defaults instead.
fn refuse_derived_default(attrs: &mut [Attribute], errors: &mut Option<syn::Error>) {
    for attr in attrs.iter_mut() {
        if !attr.path().is_ident("derive") {
            continue;
        }
        let Ok(paths) = attr.parse_args_with(Punctuated::<syn::Path, Token![,]>::parse_terminated)
        else {
            continue;
        };
        let is_default = |p: &syn::Path| {
            p.segments
                .last()
                .is_some_and(|s| s.ident == "Default" && s.arguments.is_empty())
        };
        let Some(default) = paths.iter().find(|p| is_default(p)) else {
            continue;
        };
        combine(
            errors,
            syn::Error::new(
                default.span(),
                "do not derive `Default` on a model: it would give each field its type's zero, \
                 not its #[field(default)]; the model implements `Default` from its field \
                 defaults when every field has one (or is an `Option`)",
            ),
        );
        let kept: Vec<&syn::Path> = paths.iter().filter(|p| !is_default(p)).collect();
        if let Meta::List(list) = &mut attr.meta {
            list.tokens = quote!(#(#kept),*);
        }
    }
}

fn struct_model(item: &mut syn::ItemStruct, errors: &mut Option<syn::Error>) -> TokenStream {
    let root = framework();
    let ident = item.ident.clone();
    let mut extra = Vec::new();
    let mut default_values = Vec::new();
    let mut every_field_has_a_default = true;
    let named = matches!(item.fields, Fields::Named(_));
    for field in item.fields.iter_mut() {
        refuse_schema_attributes(&mut field.attrs, errors);
        let Some(field_ident) = field.ident.clone() else {
            refuse_field_attributes(&mut field.attrs, errors);
            continue;
        };
        let settings = take_field_settings(field, errors);
        let ty = field.ty.clone();
        if let Some(title) = &settings.title {
            field
                .attrs
                .push(syn::parse_quote!(#[schemars(title = #title)]));
        }
        if let Some(description) = &settings.description {
            field
                .attrs
                .push(syn::parse_quote!(#[schemars(description = #description)]));
        }
        for constraint in &settings.constraints {
            let keyword = constraint.spec.keyword;
            let value = &constraint.value;
            field
                .attrs
                .push(syn::parse_quote!(#[schemars(extend(#keyword = #value))]));
            let check = match constraint.spec.applies {
                Applies::Number => quote!(number),
                Applies::Text => quote!(text),
                Applies::List => quote!(list),
            };
            let span = constraint.key.span();
            extra.push(quote_spanned! {span=>
                const _: () = #root::field::#check::<#ty>();
            });
        }
        match &settings.default {
            Some((span, expr)) => {
                let fn_ident = format_ident!("__bkp_default_{}_{}", ident, field_ident);
                let body = match expr {
                    Some(expr) => literal_default(expr, &ty),
                    None => {
                        quote_spanned!(*span=> <#ty as #root::field::FieldDefault>::field_default())
                    }
                };
                extra.push(quote! {
                    #[doc(hidden)]
                    #[allow(non_snake_case)]
                    fn #fn_ident() -> #ty {
                        #body
                    }
                });
                let fn_name = fn_ident.to_string();
                field
                    .attrs
                    .push(syn::parse_quote!(#[serde(default = #fn_name)]));
                default_values.push(quote!(#field_ident: #fn_ident()));
            }
            None if is_option(&ty) => {
                default_values.push(quote!(#field_ident: ::core::option::Option::None));
            }
            None => every_field_has_a_default = false,
        }
    }
    add_derives(&mut item.attrs);
    let unit = matches!(item.fields, Fields::Unit);
    if every_field_has_a_default && (named || unit) && item.generics.params.is_empty() {
        let body = if unit {
            quote!(Self)
        } else {
            quote!(Self { #(#default_values),* })
        };
        extra.push(quote! {
            /// Every field at its `#[field(default)]` (`None` for an `Option` without one), the
            /// same values validation fills in for omitted fields.
            #[automatically_derived]
            impl ::core::default::Default for #ident {
                fn default() -> Self {
                    #body
                }
            }
        });
    }
    if !every_field_has_a_default && named && item.generics.params.is_empty() {
        extra.push(refuse_default_impl(&ident));
    }
    quote!(#(#extra)*)
}

/// A model with a required field gets no generated `Default`; one derived above the model
/// macro (which the macro cannot see) would give a parent's bare `#[field(default)]` each
/// field's zero. This fails to compile when `ident: Default`: with a `Default` impl, two impls of
/// the probe trait apply and the `_` cannot be inferred (static_assertions' `assert_not_impl_any!`
/// trick), and rustc's error names the probe trait, whose name says what to do.
fn refuse_default_impl(ident: &syn::Ident) -> TokenStream {
    quote_spanned! {ident.span()=>
        const _: fn() = || {
            #[allow(non_camel_case_types, dead_code)]
            trait do_not_implement_Default_on_a_model_with_a_required_field_give_each_field_a_field_default_instead<Probe> {
                fn probe() {}
            }
            impl<T: ?::core::marker::Sized>
                do_not_implement_Default_on_a_model_with_a_required_field_give_each_field_a_field_default_instead<()> for T {}
            #[allow(dead_code)]
            struct ImplementsDefault;
            impl<T: ?::core::marker::Sized + ::core::default::Default>
                do_not_implement_Default_on_a_model_with_a_required_field_give_each_field_a_field_default_instead<ImplementsDefault> for T {}
            let _ = <#ident as do_not_implement_Default_on_a_model_with_a_required_field_give_each_field_a_field_default_instead<_>>::probe;
        };
    }
}

/// The body of a `#[field(default = expr)]` function returning `ty`.
///
/// A number literal is bound with the field's type (`let v: u8 = 5;`): passed through
/// `Into::into` an unsuffixed literal would fall back to `i32`/`f64`, which converts into
/// neither `u8` nor `f32`. On an `Option<T>` field a literal is the `Some` value (typed as `T`,
/// or converted into `T`, so `"text"` fills an `Option<String>`). Any other expression is
/// converted with `Into::into` (`"text"` into a `String`, `Mode::Fast` as itself).
fn literal_default(expr: &syn::Expr, ty: &Type) -> TokenStream {
    let (target, wrap_some) = match option_inner(ty) {
        Some(inner) if is_literal(expr) => (inner, true),
        _ => (ty, false),
    };
    let value = if is_number_literal(expr) {
        quote_spanned!(expr.span()=> { let value: #target = #expr; value })
    } else {
        quote_spanned!(expr.span()=> <_ as ::core::convert::Into<#target>>::into(#expr))
    };
    if wrap_some {
        quote_spanned!(expr.span()=> ::core::option::Option::Some(#value))
    } else {
        value
    }
}

/// A literal, or a negated one (`-5`).
fn is_literal(expr: &syn::Expr) -> bool {
    match expr {
        syn::Expr::Lit(_) => true,
        syn::Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => is_literal(&u.expr),
        syn::Expr::Group(g) => is_literal(&g.expr),
        syn::Expr::Paren(p) => is_literal(&p.expr),
        _ => false,
    }
}

/// An integer or float literal, possibly negated.
fn is_number_literal(expr: &syn::Expr) -> bool {
    match expr {
        syn::Expr::Lit(l) => matches!(l.lit, syn::Lit::Int(_) | syn::Lit::Float(_)),
        syn::Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => is_number_literal(&u.expr),
        syn::Expr::Group(g) => is_number_literal(&g.expr),
        syn::Expr::Paren(p) => is_number_literal(&p.expr),
        _ => false,
    }
}

/// `T` when `ty` is written `Option<T>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(inner) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}

/// Whether `ty` is written `Option<...>` (serde then treats the field as optional, `None` when
/// omitted, as pydantic treats `Optional[...]`).
fn is_option(ty: &Type) -> bool {
    let Type::Path(path) = ty else {
        return false;
    };
    path.qself.is_none()
        && path
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Option" && !s.arguments.is_empty())
}
