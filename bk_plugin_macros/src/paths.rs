//! Where generated code finds the framework: the author depends on either `bk_plugin_core` or
//! `bk_plugin_server` (which re-exports it), under whatever name their Cargo.toml gives it.

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Span, TokenStream};
use quote::quote;

/// The path of the crate that exports `PluginModels` and `__private`.
pub(crate) fn framework() -> TokenStream {
    for candidate in ["bk_plugin_core", "bk_plugin_server"] {
        match crate_name(candidate) {
            Ok(FoundCrate::Itself) => {
                let ident = syn::Ident::new(candidate, Span::call_site());
                return quote!(::#ident);
            }
            Ok(FoundCrate::Name(name)) => {
                let ident = syn::Ident::new(&name, Span::call_site());
                return quote!(::#ident);
            }
            Err(_) => continue,
        }
    }
    quote!(::bk_plugin_server)
}
