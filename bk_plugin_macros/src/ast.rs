//! The typed syntax of what the macros are applied to, keeping the original `syn` nodes.

use proc_macro2::TokenStream;
use syn::spanned::Spanned;
use syn::{Expr, Item, LitBool, LitStr, Type};

use crate::attr::{Arg, bool_literal, combine, parse_args, string_literal, type_path};

/// A `#[bk_plugin(...)]` declaration.
pub(crate) struct PluginDecl {
    pub(crate) item: syn::ItemStruct,
    pub(crate) version: LitStr,
    pub(crate) desc: Option<LitStr>,
    pub(crate) enable_plugin_callback: Option<LitBool>,
    pub(crate) inputs: Option<Type>,
    pub(crate) context_inputs: Option<Type>,
    pub(crate) outputs: Option<Type>,
    pub(crate) init: Option<syn::ExprPath>,
    pub(crate) callback_timeout: Option<syn::LitInt>,
}

const PLUGIN_KEYS: &str = "version, desc, enable_plugin_callback, inputs, context_inputs, outputs, init, callback_timeout";

impl PluginDecl {
    /// Parses the attribute arguments against the struct; every problem is reported.
    pub(crate) fn parse(args: TokenStream, item: syn::ItemStruct) -> syn::Result<Self> {
        let args = parse_args(args)?;
        let mut errors = None;
        let mut version = None;
        let mut desc = None;
        let mut enable_plugin_callback = None;
        let mut inputs = None;
        let mut context_inputs = None;
        let mut outputs = None;
        let mut init = None;
        let mut callback_timeout = None;
        let mut seen: Vec<String> = Vec::new();
        for Arg { key, value } in &args {
            let name = key.to_string();
            if seen.contains(&name) {
                combine(
                    &mut errors,
                    syn::Error::new(
                        key.span(),
                        format!("duplicate bk_plugin attribute `{name}`"),
                    ),
                );
                continue;
            }
            seen.push(name.clone());
            let result = match name.as_str() {
                "version" => string_literal(value, &name).map(|v| version = Some(v)),
                "desc" => string_literal(value, &name).map(|v| desc = Some(v)),
                "enable_plugin_callback" => {
                    bool_literal(value, &name).map(|v| enable_plugin_callback = Some(v))
                }
                "inputs" => type_path(value, &name).map(|v| inputs = Some(v)),
                "context_inputs" => type_path(value, &name).map(|v| context_inputs = Some(v)),
                "outputs" => type_path(value, &name).map(|v| outputs = Some(v)),
                "callback_timeout" => match value {
                    Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Int(seconds),
                        ..
                    }) if seconds.base10_parse::<u64>().is_ok_and(|s| s > 0) => {
                        callback_timeout = Some(seconds.clone());
                        Ok(())
                    }
                    other => Err(syn::Error::new_spanned(
                        other,
                        "`callback_timeout` takes a positive number of seconds",
                    )),
                },
                "init" => match value {
                    Expr::Path(p) => {
                        init = Some(p.clone());
                        Ok(())
                    }
                    other => Err(syn::Error::new_spanned(
                        other,
                        "`init` takes the path of a function returning `Result<Self, E>`",
                    )),
                },
                _ => Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown bk_plugin attribute `{name}` (expected one of: {PLUGIN_KEYS})"
                    ),
                )),
            };
            if let Err(e) = result {
                combine(&mut errors, e);
            }
        }
        if version.is_none() && !seen.iter().any(|k| k == "version") {
            combine(
                &mut errors,
                syn::Error::new(
                    item.ident.span(),
                    "missing bk_plugin attribute `version`, e.g. #[bk_plugin(version = \"1.0.0\")]",
                ),
            );
        }
        if let Some(e) = errors {
            return Err(e);
        }
        let Some(version) = version else {
            return Err(syn::Error::new(item.span(), "missing version"));
        };
        Ok(Self {
            item,
            version,
            desc,
            enable_plugin_callback,
            inputs,
            context_inputs,
            outputs,
            init,
            callback_timeout,
        })
    }
}

/// The span of an item's keyword (`fn`, `enum`, ...), where a misplaced attribute is reported.
pub(crate) fn item_keyword_span(item: &Item) -> proc_macro2::Span {
    match item {
        Item::Fn(f) => f.sig.fn_token.span,
        Item::Union(u) => u.union_token.span,
        Item::Type(t) => t.type_token.span,
        Item::Trait(t) => t.trait_token.span,
        Item::Impl(i) => i.impl_token.span,
        Item::Const(c) => c.const_token.span,
        Item::Static(s) => s.static_token.span,
        Item::Mod(m) => m.mod_token.span,
        Item::Enum(e) => e.enum_token.span,
        other => other.span(),
    }
}
