//! Preparing a callback: the id and URL a third-party system posts to when its work is done.
//!
//! Core does no IO, so the runtime provides a [`CallbackIssuer`] (the server signs a token and
//! builds the URL; the test harness records what was asked for).

/// What `prepare_callback` returns: the callback id and the URL to hand to the other system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackPreparation {
    /// 32 lowercase hex characters; the same id arrives as `context.callback().id` on the re-run.
    pub id: String,
    /// The URL the other system POSTs its JSON result to.
    pub url: String,
}

/// Why a callback could not be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot prepare a callback: {0}")]
pub struct IssueCallbackError(pub String);

/// Issues callback ids and URLs for an invocation. Implemented by the runtime.
pub trait CallbackIssuer: Send + Sync {
    /// A new callback for `trace_id` with the given id.
    fn issue(&self, trace_id: &str, callback_id: &str) -> Result<String, IssueCallbackError>;
}

/// An issuer that refuses, for contexts where no callback can be prepared.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCallbacks;

impl CallbackIssuer for NoCallbacks {
    fn issue(&self, _trace_id: &str, _callback_id: &str) -> Result<String, IssueCallbackError> {
        Err(IssueCallbackError(
            "this runtime does not accept callbacks".into(),
        ))
    }
}
