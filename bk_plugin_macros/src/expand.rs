//! Code generation, after parsing and validation succeeded.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use crate::ast::PluginDecl;
use crate::paths::framework;
use crate::valid::check_plugin;

/// `#[bk_plugin(...)]`.
pub(crate) fn plugin(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed: syn::Item = match syn::parse2(item.clone()) {
        Ok(i) => i,
        Err(e) => return e.to_compile_error(),
    };
    let keyword = crate::ast::item_keyword_span(&parsed);
    let syn::Item::Struct(item_struct) = parsed else {
        let error = syn::Error::new(
            keyword,
            "#[bk_plugin] goes on a struct: the plugin type, which then implements `Plugin`",
        );
        return with_errors(item, error);
    };
    let ident = item_struct.ident.clone();
    let generic = !item_struct.generics.params.is_empty();
    let decl = match PluginDecl::parse(args.clone(), item_struct)
        .and_then(|d| check_plugin(&d).map(|_| d))
    {
        Ok(d) => d,
        Err(e) => {
            // Keep the author's `impl Plugin` type-checking: declare the models that did parse.
            let models = if generic {
                TokenStream::new()
            } else {
                fallback_models(&ident, args)
            };
            let error = e.to_compile_error();
            return quote!(#item #models #error);
        }
    };
    expand_plugin(&decl)
}

/// `impl PluginModels` from whichever `inputs` / `context_inputs` / `outputs` arguments name a
/// type (the rest `Empty`), so that one mistake in the attribute does not cascade into errors
/// on every use of `Context<Self>`.
fn fallback_models(ident: &syn::Ident, args: TokenStream) -> TokenStream {
    let root = framework();
    let parsed = crate::attr::parse_args(args).unwrap_or_default();
    let find = |key: &str| {
        parsed
            .iter()
            .find(|a| a.key == key)
            .and_then(|a| crate::attr::type_path(&a.value, key).ok())
            .map_or_else(|| quote!(#root::Empty), |ty| quote!(#ty))
    };
    let (inputs, context_inputs, outputs) =
        (find("inputs"), find("context_inputs"), find("outputs"));
    quote! {
        #[automatically_derived]
        impl #root::PluginModels for #ident {
            type Inputs = #inputs;
            type ContextInputs = #context_inputs;
            type Outputs = #outputs;
        }
    }
}

fn expand_plugin(decl: &PluginDecl) -> TokenStream {
    let root = framework();
    let item = &decl.item;
    let ident = &item.ident;
    let version = &decl.version;
    let desc = decl
        .desc
        .as_ref()
        .map_or_else(|| quote!(""), |d| quote!(#d));
    let enable = decl
        .enable_plugin_callback
        .as_ref()
        .map_or_else(|| quote!(false), |b| quote!(#b));
    let model = |ty: &Option<syn::Type>| match ty {
        Some(ty) => quote_spanned!(ty.span()=> #ty),
        None => quote!(#root::Empty),
    };
    let (inputs, context_inputs, outputs) = (
        model(&decl.inputs),
        model(&decl.context_inputs),
        model(&decl.outputs),
    );
    // The only place the generated code requires `Plugin`: a missing impl is one error, on the
    // author's type name.
    let erase = quote_spanned!(ident.span()=> (#root::assert_plugin::<#ident>()));
    let build = match &decl.init {
        Some(init) => quote_spanned!(init.span()=>
            match #init() {
                ::core::result::Result::Ok(plugin) => ::core::result::Result::Ok(#erase(plugin)),
                ::core::result::Result::Err(error) => ::core::result::Result::Err(::std::string::ToString::to_string(&error)),
            }
        ),
        // A unit struct is its own value; any other struct is built with `Default` (a missing
        // impl is reported on the author's type name).
        None if matches!(item.fields, syn::Fields::Unit) => quote_spanned!(ident.span()=>
            ::core::result::Result::Ok(#erase(#ident))
        ),
        None => quote_spanned!(ident.span()=>
            ::core::result::Result::Ok(#erase(<#ident as #root::BuildPlugin>::build()))
        ),
    };
    let form = crate::forms::form_tokens(version);
    let callback_timeout = decl
        .callback_timeout
        .as_ref()
        .map_or_else(|| quote!(0), |s| quote!(#s));
    quote! {
        #item

        const _: () = {
            use #root::__private as __bkp;

            #[automatically_derived]
            impl #root::PluginModels for #ident {
                type Inputs = #inputs;
                type ContextInputs = #context_inputs;
                type Outputs = #outputs;
            }


            fn __bkp_build() -> ::core::result::Result<::std::boxed::Box<dyn __bkp::ErasedPlugin>, ::std::string::String> {
                #build
            }

            __bkp::inventory::submit! {
                __bkp::PluginRecord {
                    version: #version,
                    type_name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                    desc: #desc,
                    enable_plugin_callback: #enable,
                    form: #form,
                    callback_timeout_secs: #callback_timeout,
                    build: __bkp_build,
                }
            }
        };
    }
}

fn with_errors(item: TokenStream, error: syn::Error) -> TokenStream {
    let error = error.to_compile_error();
    quote!(#item #error)
}
