//! Custom forms: `forms/<version>/form.js` in the author's package, compiled into the binary by
//! `#[bk_plugin]`.
//!
//! Three rules, so that what a caller sees is what the author wrote:
//! - The form of a version is `include_str!`ed, so changing it rebuilds the crate. Adding or
//!   removing a form is not seen by rustc (stable Rust has no way for a macro to track a
//!   directory), so a package with a `forms/` directory must have a build script that tells Cargo
//!   to watch it and says so: `println!("cargo::rerun-if-changed=forms");` and
//!   `println!("cargo::rustc-env=BK_PLUGIN_FORMS_WATCHED=forms");`. Without the second (no build
//!   script, or one that watches something else, such as `rerun-if-changed=build.rs`, which stops
//!   Cargo from watching anything else) it is a compile error.
//! - A `forms/<dir>/` whose name is no declared version is a compile error: the versions are the
//!   `version = "..."` of every `#[bk_plugin(...)]` in `src/`.
//! - A `forms/<version>/` without a `form.js` is a compile error.
//!
//! Each problem is reported once, on the version literal of one plugin (the lowest version), not
//! once per plugin.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use proc_macro2::{Delimiter, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::LitStr;

/// The build script lines that make Cargo rebuild when a form is added, changed or removed, and
/// tell the macro they are there.
const BUILD_SCRIPT: &str = "fn main() { println!(\"cargo::rerun-if-changed=forms\"); \
     println!(\"cargo::rustc-env=BK_PLUGIN_FORMS_WATCHED=forms\"); }";

/// What the build script sets (`cargo::rustc-env`) beside `cargo::rerun-if-changed=forms`.
const WATCHED_ENV: &str = "BK_PLUGIN_FORMS_WATCHED";

/// The `form` field of the version's record: `Some(include_str!(...))` or `None`, with a
/// `compile_error!` beside it for every problem this plugin reports.
pub(crate) fn form_tokens(version: &LitStr) -> TokenStream {
    let none = quote!(::core::option::Option::None);
    let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return none;
    };
    let root = Path::new(&dir);
    let forms = root.join("forms");
    if !forms.is_dir() {
        return none;
    }
    let own = version.value();
    let problems = if reports_for_package(root, &own) {
        package_problems(root, &forms)
    } else {
        Vec::new()
    };
    let errors = problems
        .iter()
        .map(|problem| quote_spanned!(version.span()=> ::core::compile_error!(#problem);));
    let file = forms.join(&own).join("form.js");
    let value = if file.is_file() {
        let path = file.to_string_lossy().into_owned();
        quote!(::core::option::Option::Some(::core::include_str!(#path)))
    } else {
        none
    };
    quote!({ #(#errors)* #value })
}

/// Whether the plugin with version `own` is the one that reports the package's form problems:
/// the lowest declared version, so that each problem is reported once.
fn reports_for_package(root: &Path, own: &str) -> bool {
    let mut versions = declared_versions(root);
    versions.insert(own.to_string());
    versions.first().is_some_and(|lowest| lowest == own)
}

fn package_problems(root: &Path, forms: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    if std::env::var(WATCHED_ENV).as_deref() != Ok("forms") {
        let has = if std::env::var_os("OUT_DIR").is_none() {
            "no build script"
        } else {
            "a build script that does not say it watches forms/"
        };
        problems.push(format!(
            "this package has a forms/ directory but {has}, so adding or removing a form would \
             not rebuild it: the build.rs must contain `{BUILD_SCRIPT}` (a \
             `cargo::rerun-if-changed` of anything else stops Cargo watching forms/)"
        ));
    }
    let versions = declared_versions(root);
    let listed = versions.iter().cloned().collect::<Vec<_>>().join(", ");
    let mut dirs: Vec<String> = std::fs::read_dir(forms)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    for name in dirs {
        if !versions.contains(&name) {
            problems.push(format!(
                "forms/{name}/ is the form of version {name}, but no #[bk_plugin(version = \
                 \"{name}\")] is declared in src/ (declared: {listed})"
            ));
        } else if !forms.join(&name).join("form.js").is_file() {
            problems.push(format!(
                "forms/{name}/ has no form.js: put the form in forms/{name}/form.js or remove \
                 the directory"
            ));
        }
    }
    problems
}

/// The `version = "..."` of every `#[bk_plugin(...)]` in the package's `src/`. Read afresh
/// each time (a few small files), so that a long-lived IDE macro server never answers from a
/// stale list.
fn declared_versions(root: &Path) -> BTreeSet<String> {
    let mut versions = BTreeSet::new();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for file in files {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(tokens) = text.parse::<TokenStream>()
        {
            collect_versions(tokens, &mut versions);
        }
    }
    versions
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Finds `#[bk_plugin(... version = "x" ...)]` (or `#[path::bk_plugin(...)]`) at any depth.
fn collect_versions(tokens: TokenStream, versions: &mut BTreeSet<String>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, token) in tokens.iter().enumerate() {
        let TokenTree::Group(group) = token else {
            continue;
        };
        let is_attribute = group.delimiter() == Delimiter::Bracket
            && i > 0
            && matches!(&tokens[i - 1], TokenTree::Punct(p) if p.as_char() == '#');
        if is_attribute && let Some(version) = plugin_version(group.stream()) {
            versions.insert(version);
        }
        collect_versions(group.stream(), versions);
    }
}

/// The version of an attribute's contents when it is `bk_plugin(...)`.
fn plugin_version(attribute: TokenStream) -> Option<String> {
    let tokens: Vec<TokenTree> = attribute.into_iter().collect();
    let args = tokens.iter().position(
        |t| matches!(t, TokenTree::Group(g) if g.delimiter() == Delimiter::Parenthesis),
    )?;
    let named_bk_plugin =
        args > 0 && matches!(&tokens[args - 1], TokenTree::Ident(ident) if ident == "bk_plugin");
    if !named_bk_plugin {
        return None;
    }
    let TokenTree::Group(group) = &tokens[args] else {
        return None;
    };
    let inner: Vec<TokenTree> = group.stream().into_iter().collect();
    inner.windows(3).find_map(|w| match w {
        [
            TokenTree::Ident(key),
            TokenTree::Punct(eq),
            TokenTree::Literal(value),
        ] if key == "version" && eq.as_char() == '=' => {
            syn::parse_str::<LitStr>(&value.to_string())
                .ok()
                .map(|s| s.value())
        }
        _ => None,
    })
}
