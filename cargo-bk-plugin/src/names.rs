//! What a project may be called: its crate name, its app code, its gateway maintainers.

use crate::NewError;

const RESERVED: &[&str] = &[
    // Rust keywords (the crate name must be an identifier once `-` becomes `_`).
    "as",
    "async",
    "await",
    "break",
    "const",
    "continue",
    "crate",
    "dyn",
    "else",
    "enum",
    "extern",
    "false",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "let",
    "loop",
    "match",
    "mod",
    "move",
    "mut",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "trait",
    "true",
    "type",
    "unsafe",
    "use",
    "where",
    "while",
    "abstract",
    "become",
    "box",
    "do",
    "final",
    "macro",
    "override",
    "priv",
    "try",
    "typeof",
    "unsized",
    "virtual",
    "yield",
    // Names cargo refuses or that shadow the standard library.
    "test",
    "std",
    "core",
    "alloc",
    "proc_macro",
    "proc-macro",
    "build",
    "deps",
    "examples",
    "incremental",
];

fn lowercase_identifier(value: &str, max: usize) -> bool {
    let mut chars = value.chars();
    matches!(chars.next(), Some('a'..='z'))
        && value.len() <= max
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_'))
}

/// Checks a project name (package and binary name).
pub fn check_name(name: &str) -> Result<(), NewError> {
    let ident = name.replace('-', "_");
    if lowercase_identifier(name, 64)
        && !RESERVED.contains(&name)
        && !RESERVED.contains(&ident.as_str())
    {
        Ok(())
    } else {
        Err(NewError::Name(name.to_string()))
    }
}

/// Checks an app code.
pub fn check_app_code(app_code: &str) -> Result<(), NewError> {
    if lowercase_identifier(app_code, 32) {
        Ok(())
    } else {
        Err(NewError::AppCode(app_code.to_string()))
    }
}

/// Splits and checks a comma-separated maintainer list.
pub fn parse_maintainers(list: &str) -> Result<Vec<String>, NewError> {
    list.split(',')
        .map(str::trim)
        .map(|name| {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.@".contains(c));
            if ok {
                Ok(name.to_string())
            } else {
                Err(NewError::Maintainer(name.to_string()))
            }
        })
        .collect()
}
