//! Rules that span the whole declaration, checked before anything is generated.

use syn::spanned::Spanned;

use crate::ast::PluginDecl;
use crate::attr::combine;

const MAX_VERSION_LEN: usize = 128;

/// Checks a parsed `#[bk_plugin]` declaration; every problem is reported.
pub(crate) fn check_plugin(decl: &PluginDecl) -> syn::Result<()> {
    let mut errors = None;
    let version = decl.version.value();
    if let Some(problem) = version_problem(&version) {
        combine(&mut errors, syn::Error::new(decl.version.span(), problem));
    }
    if !decl.item.generics.params.is_empty() {
        combine(
            &mut errors,
            syn::Error::new(
                decl.item.generics.span(),
                "a plugin type cannot be generic: the runtime builds exactly one instance of it",
            ),
        );
    }
    match errors {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The protocol's version syntax, at compile time: the same grammar and messages as
/// `bk_plugin_core::version::check_version` (the rule's home, which this crate cannot call;
/// see docs/architecture.md): `^[0-9]+\.[0-9]+\.[0-9][a-z0-9]*$`, at most 128 characters.
fn version_problem(version: &str) -> Option<String> {
    if version.len() > MAX_VERSION_LEN {
        return Some(format!(
            "version is {} characters long, at most {MAX_VERSION_LEN} are allowed",
            version.len()
        ));
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = version.splitn(3, '.');
    let ok = match (parts.next(), parts.next(), parts.next()) {
        (Some(major), Some(minor), Some(rest)) => {
            digits(major)
                && digits(minor)
                && rest.bytes().next().is_some_and(|b| b.is_ascii_digit())
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        }
        _ => false,
    };
    (!ok).then(|| format!("version \"{version}\" must look like 1.0.0 (major.minor.patch[suffix])"))
}
