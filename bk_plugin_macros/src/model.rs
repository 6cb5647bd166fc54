//! `#[inputs]`, `#[context_inputs]` and `#[outputs]`: parse a model and its `#[field(...)]`
//! settings, check them, and generate serde, schemars and `Default` for it.
//!
//! Every mistake is one spanned error; the model is still emitted with its derives and with the
//! settings that did parse, so a typo in one field does not turn into errors wherever the model is
//! used.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, Fields, Item, LitStr, Meta, Token, Type};

use crate::attr::combine;
use crate::paths::framework;

/// What a constraint applies to, which decides the trait its field type must implement.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Applies {
    Number,
    Text,
    List,
}

/// A `#[field(...)]` constraint key: its pydantic name, the JSON Schema keyword pydantic publishes
/// it as, and what kind of field it applies to.
struct ConstraintKey {
    name: &'static str,
    keyword: &'static str,
    applies: Applies,
}

const CONSTRAINTS: &[ConstraintKey] = &[
    ConstraintKey {
        name: "gt",
        keyword: "exclusiveMinimum",
        applies: Applies::Number,
    },
    ConstraintKey {
        name: "ge",
        keyword: "minimum",
        applies: Applies::Number,
    },
    ConstraintKey {
        name: "lt",
        keyword: "exclusiveMaximum",
        applies: Applies::Number,
    },
    ConstraintKey {
        name: "le",
        keyword: "maximum",
        applies: Applies::Number,
    },
    ConstraintKey {
        name: "multiple_of",
        keyword: "multipleOf",
        applies: Applies::Number,
    },
    ConstraintKey {
        name: "min_length",
        keyword: "minLength",
        applies: Applies::Text,
    },
    ConstraintKey {
        name: "max_length",
        keyword: "maxLength",
        applies: Applies::Text,
    },
    ConstraintKey {
        name: "regex",
        keyword: "pattern",
        applies: Applies::Text,
    },
    ConstraintKey {
        name: "min_items",
        keyword: "minItems",
        applies: Applies::List,
    },
    ConstraintKey {
        name: "max_items",
        keyword: "maxItems",
        applies: Applies::List,
    },
    ConstraintKey {
        name: "unique_items",
        keyword: "uniqueItems",
        applies: Applies::List,
    },
];

const FIELD_KEYS: &str = "title, description, default, gt, ge, lt, le, multiple_of, \
                          min_length, max_length, regex, min_items, max_items, unique_items";

/// One constraint as written: the key (for spans) and the JSON value it publishes.
struct Constraint {
    key: syn::Ident,
    spec: &'static ConstraintKey,
    value: TokenStream,
    /// The value as a number, for `min <= max` checks.
    number: Option<f64>,
}

/// One field's `#[field(...)]` settings (those that parsed).
struct FieldSettings {
    title: Option<LitStr>,
    description: Option<LitStr>,
    /// `Some(None)` for a bare `default`, `Some(Some(expr))` for `default = expr`; the key's span.
    default: Option<(Span, Option<Expr>)>,
    constraints: Vec<Constraint>,
}

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
                    Some(expr) => quote_spanned!(expr.span()=> ::core::convert::Into::into(#expr)),
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
    quote!(#(#extra)*)
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

/// Takes the `#[field(...)]` attributes off `field` and returns what parsed; each mistake is
/// added to `errors`.
fn take_field_settings(field: &mut syn::Field, errors: &mut Option<syn::Error>) -> FieldSettings {
    let mut settings = FieldSettings {
        title: None,
        description: None,
        default: None,
        constraints: Vec::new(),
    };
    let mut seen: Vec<String> = Vec::new();
    let mut kept = Vec::new();
    for attr in field.attrs.drain(..) {
        if !attr.path().is_ident("field") {
            kept.push(attr);
            continue;
        }
        if let Err(e) = parse_field_attr(&attr, &mut settings, &mut seen, errors) {
            combine(errors, e);
        }
    }
    field.attrs = kept;
    check_ranges(&settings, errors);
    settings
}

fn parse_field_attr(
    attr: &Attribute,
    settings: &mut FieldSettings,
    seen: &mut Vec<String>,
    errors: &mut Option<syn::Error>,
) -> syn::Result<()> {
    attr.parse_nested_meta(|meta| {
        let Some(key) = meta.path.get_ident().cloned() else {
            return Err(meta.error("expected a plain name"));
        };
        let name = key.to_string();
        let value: Option<Expr> = if meta.input.peek(Token![=]) {
            Some(meta.value()?.parse()?)
        } else {
            None
        };
        if seen.contains(&name) {
            combine(
                errors,
                syn::Error::new(key.span(), format!("duplicate field attribute `{name}`")),
            );
            return Ok(());
        }
        seen.push(name.clone());
        if let Err(e) = apply_key(&key, &name, value, settings) {
            combine(errors, e);
        }
        Ok(())
    })
}

fn apply_key(
    key: &syn::Ident,
    name: &str,
    value: Option<Expr>,
    settings: &mut FieldSettings,
) -> syn::Result<()> {
    match name {
        "title" | "description" => {
            let text = string_value(key, name, value)?;
            if name == "title" {
                settings.title = Some(text);
            } else {
                settings.description = Some(text);
            }
        }
        "default" => settings.default = Some((key.span(), value)),
        _ => {
            let Some(spec) = CONSTRAINTS.iter().find(|c| c.name == name) else {
                return Err(syn::Error::new(
                    key.span(),
                    format!("unknown field attribute `{name}` (expected one of: {FIELD_KEYS})"),
                ));
            };
            let (value, number) = constraint_value(key, spec, value)?;
            settings.constraints.push(Constraint {
                key: key.clone(),
                spec,
                value,
                number,
            });
        }
    }
    Ok(())
}

fn string_value(key: &syn::Ident, name: &str, value: Option<Expr>) -> syn::Result<LitStr> {
    match value {
        Some(Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        })) => Ok(s),
        Some(other) => Err(syn::Error::new_spanned(
            other,
            format!("`{name}` takes a string literal"),
        )),
        None => Err(syn::Error::new(
            key.span(),
            format!("`{name}` takes a string literal: `{name} = \"...\"`"),
        )),
    }
}

/// The JSON a constraint publishes, checked for its kind: a number for `gt`/`ge`/`lt`/`le`, a
/// positive number for `multiple_of`, a count for the lengths, a regex for `regex`, `true` or
/// `false` for `unique_items` (bare means `true`).
fn constraint_value(
    key: &syn::Ident,
    spec: &ConstraintKey,
    value: Option<Expr>,
) -> syn::Result<(TokenStream, Option<f64>)> {
    let name = spec.name;
    if name == "unique_items" {
        return match value {
            None => Ok((quote!(true), None)),
            Some(Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Bool(b),
                ..
            })) => Ok((quote!(#b), None)),
            Some(other) => Err(syn::Error::new_spanned(
                other,
                "`unique_items` takes `true` or `false`",
            )),
        };
    }
    let Some(value) = value else {
        return Err(syn::Error::new(
            key.span(),
            format!("`{name}` needs a value: `{name} = ...`"),
        ));
    };
    if name == "regex" {
        let Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(pattern),
            ..
        }) = &value
        else {
            return Err(syn::Error::new_spanned(
                value,
                "`regex` takes a string literal",
            ));
        };
        if let Err(e) = regex_syntax::Parser::new().parse(&pattern.value()) {
            let why = match &e {
                regex_syntax::Error::Parse(e) => e.kind().to_string(),
                regex_syntax::Error::Translate(e) => e.kind().to_string(),
                other => other.to_string(),
            };
            return Err(syn::Error::new(
                pattern.span(),
                format!("`regex` is not a valid regular expression: {why}"),
            ));
        }
        return Ok((quote!(#pattern), None));
    }
    let number = literal_number(&value);
    match spec.applies {
        Applies::Number => match number {
            Some(n) if name == "multiple_of" && n <= 0.0 => Err(syn::Error::new_spanned(
                value,
                "`multiple_of` takes a number greater than 0",
            )),
            Some(n) => Ok((quote!(#value), Some(n))),
            None => Err(syn::Error::new_spanned(
                value,
                format!("`{name}` takes a number literal"),
            )),
        },
        Applies::Text | Applies::List => match &value {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(count),
                ..
            }) if count.base10_parse::<u64>().is_ok() && count.suffix().is_empty() => {
                Ok((quote!(#count), number))
            }
            other => Err(syn::Error::new_spanned(
                other,
                format!("`{name}` takes a whole number, 0 or more"),
            )),
        },
    }
}

/// The value of a number literal, or of a negated one.
fn literal_number(value: &Expr) -> Option<f64> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Int(i),
            ..
        }) if i.suffix().is_empty() => i.base10_parse::<f64>().ok(),
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Float(f),
            ..
        }) if f.suffix().is_empty() => f.base10_parse::<f64>().ok(),
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr,
            ..
        }) => literal_number(expr).map(|n| -n),
        _ => None,
    }
}

/// A lower bound above an upper bound accepts nothing: `ge = 5, le = 1`, `min_length = 3,
/// max_length = 2`.
fn check_ranges(settings: &FieldSettings, errors: &mut Option<syn::Error>) {
    let find = |names: &[&str]| {
        settings
            .constraints
            .iter()
            .filter(|c| names.contains(&c.spec.name))
            .filter_map(|c| c.number.map(|n| (c, n)))
            .collect::<Vec<_>>()
    };
    for (lower, upper) in [
        (&["gt", "ge"][..], &["lt", "le"][..]),
        (&["min_length"][..], &["max_length"][..]),
        (&["min_items"][..], &["max_items"][..]),
    ] {
        for (low, l) in find(lower) {
            for (high, h) in find(upper) {
                if l > h {
                    combine(
                        errors,
                        syn::Error::new(
                            high.key.span(),
                            format!(
                                "`{}` is below `{}`: no value can satisfy both",
                                high.spec.name, low.spec.name
                            ),
                        ),
                    );
                }
            }
        }
    }
}
