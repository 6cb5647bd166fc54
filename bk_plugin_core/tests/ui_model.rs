//! Compile-time checks of the model macros (`#[inputs]`, `#[context_inputs]`, `#[outputs]` and
//! `#[field(...)]`), with no plugin declared: each mistake in `ui_model/fail/*.rs` is exactly one
//! error on the author's own token, the whole `.stderr` is asserted, and the model is still
//! generated (each case uses it, so a missing derive would show as more errors). Every supported
//! form compiles (`ui_model/pass/*.rs`).
#![allow(missing_docs)]

#[test]
fn model_mistakes_are_one_error_each_on_the_authors_tokens() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui_model/fail/*.rs");
    cases.pass("tests/ui_model/pass/*.rs");
}

/// No message sends the author into the framework's private module. (One case,
/// `non_serializable_field`, still shows a note inside serde's own private module: those errors
/// come from serde's derive on a field type that is not serde at all.)
#[test]
fn no_expected_error_names_a_private_path() {
    // The model cases here, and the plugin cases of `tests/ui.rs`.
    for (folder, at_least) in [("ui_model", 8), ("ui", 8)] {
        let dir = format!("{}/tests/{folder}/fail", env!("CARGO_MANIFEST_DIR"));
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
            let path = entry.map(|e| e.path()).unwrap_or_default();
            if path.extension().is_some_and(|x| x == "stderr") {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                for private in ["bk_plugin_core::__private", "bk_plugin_server::__private"] {
                    assert!(!text.contains(private), "{}:\n{text}", path.display());
                }
                checked += 1;
            }
        }
        assert!(checked >= at_least, "only {checked} .stderr files in {dir}");
    }
}
