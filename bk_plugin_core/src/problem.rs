//! A problem validation finds in a value, in pydantic v1's words, and the list of them: what
//! coercion and the constraint checks both report.

/// The most problems one validation lists; the others are only counted.
pub const MAX_LISTED: usize = 40;

/// One reason a value does not fit its model, as pydantic v1 reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where: field names and list indexes from the model down (`["options", "name"]`,
    /// `["tags", "2"]`); `["__root__"]` for the value itself.
    pub loc: Vec<String>,
    /// What is wrong (`field required`).
    pub message: String,
    /// pydantic's error type (`value_error.missing`).
    pub kind: String,
    /// pydantic's error context, already rendered (`; enum_values=[...]`), or empty.
    pub context: String,
}

impl Problem {
    /// A problem at `loc`.
    pub fn new(loc: Vec<String>, message: impl Into<String>, kind: impl Into<String>) -> Self {
        Self {
            loc,
            message: message.into(),
            kind: kind.into(),
            context: String::new(),
        }
    }
}

impl std::fmt::Display for Problem {
    /// Two lines, as pydantic v1 prints each error: the location joined with ` -> `, then the
    /// indented message with its type.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n  {} (type={}{})",
            self.loc.join(" -> "),
            self.message,
            self.kind,
            self.context
        )
    }
}

/// Every problem found (at most [`MAX_LISTED`]) and how many there were in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    /// The first problems, in field order.
    pub listed: Vec<Problem>,
    /// How many problems there were, listed or not.
    pub total: usize,
}

impl Problems {
    /// Whether the value fits.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Records one problem.
    pub fn push(&mut self, problem: Problem) {
        self.total += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(problem);
        }
    }
}
