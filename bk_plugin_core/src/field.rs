//! What `#[field(...)]` settings ask of a field's type, checked at compile time on the author's
//! own type: `gt`, `ge`, `lt`, `le`, `multiple_of` need a number, `min_length`, `max_length`,
//! `regex` a string, `min_items`, `max_items`, `unique_items` a list; an `Option` of one of these
//! is fine too (the constraint applies when a value is given). A bare `#[field(default)]` needs
//! `Default`, which a model implements when each of its fields has a default.

use std::collections::{BTreeSet, HashSet, VecDeque};

/// A type `gt`, `ge`, `lt`, `le` and `multiple_of` apply to: an integer or a float.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a number: `gt`, `ge`, `lt`, `le` and `multiple_of` apply to integer and float fields",
    label = "not a number"
)]
pub trait NumberField {}

/// A type `min_length`, `max_length` and `regex` apply to: a string.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a string: `min_length`, `max_length` and `regex` apply to `String` fields (use `min_items`/`max_items` for lists)",
    label = "not a string"
)]
pub trait TextField {}

/// A type `min_items`, `max_items` and `unique_items` apply to: a list.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a list: `min_items`, `max_items` and `unique_items` apply to `Vec` fields (use `min_length`/`max_length` for strings)",
    label = "not a list"
)]
pub trait ListField {}

macro_rules! numbers {
    ($($t:ty),*) => { $(impl NumberField for $t {})* };
}
numbers!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, f32, f64
);
impl<T: NumberField> NumberField for Option<T> {}
impl TextField for String {}
impl<T: TextField> TextField for Option<T> {}
impl<T> ListField for Vec<T> {}
impl<T> ListField for VecDeque<T> {}
impl<T> ListField for BTreeSet<T> {}
impl<T, S> ListField for HashSet<T, S> {}
impl<T: ListField> ListField for Option<T> {}

/// Checks at compile time that a constrained field is a number. Used by generated code.
pub const fn number<T: NumberField>() {}
/// Checks at compile time that a constrained field is a string. Used by generated code.
pub const fn text<T: TextField>() {}
/// Checks at compile time that a constrained field is a list. Used by generated code.
pub const fn list<T: ListField>() {}

/// The value of a bare `#[field(default)]`: the type's `Default`. A model implements `Default`
/// from its field defaults when every field has one (or is an `Option`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no default value for a bare `#[field(default)]`",
    label = "no `Default` for `{Self}`",
    note = "a model implements `Default` when every one of its fields has a `#[field(default ...)]` or is an `Option`; otherwise write `#[field(default = <expression>)]`"
)]
pub trait FieldDefault {
    /// The default value.
    fn field_default() -> Self;
}

impl<T: Default> FieldDefault for T {
    fn field_default() -> Self {
        T::default()
    }
}
