//! `#[field(...)]` on a model's field: its settings (title, description, default) and pydantic's
//! `Field` constraints, parsed and checked. Each mistake is a spanned error; what parsed is kept,
//! so the model is generated anyway.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Attribute, Expr, LitStr, Token};

use crate::attr::combine;

/// What a constraint applies to, which decides the trait its field type must implement.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applies {
    Number,
    Text,
    List,
}

/// A `#[field(...)]` constraint key: its pydantic name, the JSON Schema keyword pydantic publishes
/// it as, and what kind of field it applies to.
pub(crate) struct ConstraintKey {
    pub(crate) name: &'static str,
    pub(crate) keyword: &'static str,
    pub(crate) applies: Applies,
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
pub(crate) struct Constraint {
    pub(crate) key: syn::Ident,
    pub(crate) spec: &'static ConstraintKey,
    pub(crate) value: TokenStream,
    /// The value as a number, for `min <= max` checks.
    number: Option<f64>,
}

/// One field's `#[field(...)]` settings (those that parsed).
pub(crate) struct FieldSettings {
    pub(crate) title: Option<LitStr>,
    pub(crate) description: Option<LitStr>,
    /// `Some(None)` for a bare `default`, `Some(Some(expr))` for `default = expr`; the key's span.
    pub(crate) default: Option<(Span, Option<Expr>)>,
    pub(crate) constraints: Vec<Constraint>,
}

/// Takes the `#[field(...)]` attributes off `field` and returns what parsed; each mistake is
/// added to `errors`.
pub(crate) fn take_field_settings(
    field: &mut syn::Field,
    errors: &mut Option<syn::Error>,
) -> FieldSettings {
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
