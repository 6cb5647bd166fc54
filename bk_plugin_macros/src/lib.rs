//! Attribute macros of the BlueKing plugin framework.
//!
//! - `#[bk_plugin(version = "1.0.0", desc = "...", inputs = T, context_inputs = T,
//!   outputs = T, enable_plugin_callback = true, init = path)]` on a plugin struct: checks the
//!   declaration, implements `PluginModels` and registers the version at link time.
//! - `#[inputs]`, `#[context_inputs]`, `#[outputs]` on a model struct or enum: derive serde and
//!   JSON Schema, implement `Default` from the field defaults, and translate `#[field(title =
//!   "...", description = "...", default = expr, ge = 1, max_length = 64, regex = "...", ...)]`
//!   (pydantic's `Field` constraints, published and enforced).
//!
//! Each macro parses into a typed AST (`ast`, `attr`, `field`), validates (`valid`, `field`),
//! then generates (`expand`, `model`, `forms`). On any error the author's item is still emitted
//! (a model with its derives and the settings that parsed) beside `compile_error!`s, so the rest
//! of the crate keeps compiling and every mistake is reported at once, once.

use proc_macro::TokenStream;

mod ast;
mod attr;
mod expand;
mod field;
mod forms;
mod model;
mod paths;
mod valid;

/// Declares a plugin version. See the crate docs of `bk_plugin_core` for the arguments.
#[proc_macro_attribute]
pub fn bk_plugin(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::plugin(args.into(), item.into()).into()
}

/// Declares the Inputs model of a plugin version (or a nested model used inside it).
#[proc_macro_attribute]
pub fn inputs(args: TokenStream, item: TokenStream) -> TokenStream {
    model::expand("inputs", args.into(), item.into()).into()
}

/// Declares the ContextInputs model of a plugin version (or a nested model used inside it).
#[proc_macro_attribute]
pub fn context_inputs(args: TokenStream, item: TokenStream) -> TokenStream {
    model::expand("context_inputs", args.into(), item.into()).into()
}

/// Declares the Outputs model of a plugin version (or a nested model used inside it).
#[proc_macro_attribute]
pub fn outputs(args: TokenStream, item: TokenStream) -> TokenStream {
    model::expand("outputs", args.into(), item.into()).into()
}
