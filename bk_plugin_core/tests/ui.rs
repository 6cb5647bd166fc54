//! Compile-time checks of the authoring macros: every author mistake is a compile error on the
//! author's own token (`ui/fail/*.rs` with the expected `.stderr`), and every supported form
//! compiles (`ui/pass/*.rs`).
#![allow(missing_docs)]

#[test]
fn authoring_mistakes_are_compile_errors_on_the_authors_tokens() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
