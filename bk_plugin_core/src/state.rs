//! The five states of an invocation, with the integer values the wire protocol uses.

use serde::{Deserialize, Serialize};

/// The state of an invocation. The integer values are part of the wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "i32", try_from = "i32")]
pub enum State {
    /// The first run of `execute`.
    Empty = 1,
    /// `execute` returned `Next::Poll`: it runs again after the interval.
    Poll = 2,
    /// `execute` returned `Next::Callback`: it runs again when the callback URL is posted.
    Callback = 3,
    /// `execute` returned `Next::Done` and the outputs fit. Terminal.
    Success = 4,
    /// `execute` failed, or the runtime could not go on. Terminal.
    Fail = 5,
}

impl State {
    /// The protocol's integer value.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The state for a protocol integer, if it names one.
    pub fn from_i32(value: i32) -> Option<Self> {
        Some(match value {
            1 => Self::Empty,
            2 => Self::Poll,
            3 => Self::Callback,
            4 => Self::Success,
            5 => Self::Fail,
            _ => return None,
        })
    }

    /// Whether nothing more happens to an invocation in this state.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Success | Self::Fail)
    }

    /// The protocol's name of the state, as Python's `State` enum spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "EMPTY",
            Self::Poll => "POLL",
            Self::Callback => "CALLBACK",
            Self::Success => "SUCCESS",
            Self::Fail => "FAIL",
        }
    }
}

impl From<State> for i32 {
    fn from(state: State) -> Self {
        state.as_i32()
    }
}

impl TryFrom<i32> for State {
    type Error = String;
    fn try_from(value: i32) -> Result<Self, Self::Error> {
        Self::from_i32(value).ok_or_else(|| format!("{value} is not a plugin state (1..=5)"))
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialize_as_their_protocol_integers() {
        assert_eq!(
            serde_json::to_string(&State::Callback).ok().as_deref(),
            Some("3")
        );
        let back: Result<State, _> = serde_json::from_str("4");
        assert_eq!(back.ok(), Some(State::Success));
        assert!(serde_json::from_str::<State>("9").is_err());
    }

    #[test]
    fn only_success_and_fail_are_terminal() {
        let terminal: Vec<_> = (1..=5)
            .filter_map(State::from_i32)
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(terminal, vec![State::Success, State::Fail]);
    }
}
