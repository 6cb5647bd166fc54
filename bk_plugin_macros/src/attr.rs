//! Attribute arguments: `#[bk_plugin(key = value, ...)]` and `#[field(key = value, ...)]`.

use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::{Expr, Lit, MetaNameValue, Token};

/// One `key = value` argument, keeping the key's and the value's tokens for error spans.
pub(crate) struct Arg {
    pub(crate) key: syn::Ident,
    pub(crate) value: Expr,
}

/// Parses `key = value, ...` into arguments. Keys must be plain identifiers.
pub(crate) fn parse_args(tokens: proc_macro2::TokenStream) -> syn::Result<Vec<Arg>> {
    let pairs = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(tokens)?;
    let mut args = Vec::new();
    let mut errors: Option<syn::Error> = None;
    for pair in pairs {
        match pair.path.get_ident() {
            Some(key) => args.push(Arg {
                key: key.clone(),
                value: pair.value,
            }),
            None => combine(
                &mut errors,
                syn::Error::new_spanned(&pair.path, "expected a plain name"),
            ),
        }
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(args),
    }
}

/// Adds `error` to the collected ones.
pub(crate) fn combine(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(e) => e.combine(error),
        None => *errors = Some(error),
    }
}

/// The string literal of `value`, or an error on it.
pub(crate) fn string_literal(value: &Expr, key: &str) -> syn::Result<syn::LitStr> {
    literal(value, key, "a string literal", |lit| match lit {
        Lit::Str(s) => Some(s.clone()),
        _ => None,
    })
}

/// The boolean literal of `value`, or an error on it.
pub(crate) fn bool_literal(value: &Expr, key: &str) -> syn::Result<syn::LitBool> {
    literal(value, key, "`true` or `false`", |lit| match lit {
        Lit::Bool(b) => Some(b.clone()),
        _ => None,
    })
}

/// The literal `pick` takes from `value`, or an error on `value` saying what `key` takes.
fn literal<T>(
    value: &Expr,
    key: &str,
    takes: &str,
    pick: impl Fn(&Lit) -> Option<T>,
) -> syn::Result<T> {
    match value {
        Expr::Lit(syn::ExprLit { lit, .. }) => pick(lit),
        _ => None,
    }
    .ok_or_else(|| syn::Error::new_spanned(value, format!("`{key}` takes {takes}")))
}

/// The type named by `value` (a path such as `EchoInputs` or `crate::models::Inputs`).
pub(crate) fn type_path(value: &Expr, key: &str) -> syn::Result<syn::Type> {
    match value {
        Expr::Path(p) if p.qself.is_none() => Ok(syn::Type::Path(syn::TypePath {
            qself: None,
            path: p.path.clone(),
        })),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` takes a type name, e.g. `{key} = MyModel`"),
        )),
    }
}
