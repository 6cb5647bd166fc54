//! The path prefix BK PaaS serves the app under, and the module address it comes from.
//!
//! PaaS gives each module an address per environment in `BKPAAS_DEFAULT_PREALLOCATED_URLS`
//! (`{"stag": "http://apps.example.com/stag--my-plugin/", "prod": ...}`). When that address has
//! a path, the platform's ingress strips it before the request reaches the process (its
//! `rewrite-target` keeps only what follows the prefix) and names it in the `X-Script-Name`
//! header; the Python runtime sets Django's `FORCE_SCRIPT_NAME` from the same path. The routes
//! therefore stay where they are; only the URLs the server hands to a browser (the pages'
//! links and fetches, the OpenAPI document's `servers`) must start with the prefix.

use reqwest::Url;
use serde_json::Value;

use super::env::var;

/// `BKPAAS_DEFAULT_PREALLOCATED_URLS[environment]`: `None` when the variable is unset or has no
/// address for the environment; an error when it is not a JSON object or the address is not a
/// URL.
pub(crate) fn preallocated_url(environment: &str) -> Result<Option<Url>, String> {
    let Some(raw) = var("BKPAAS_DEFAULT_PREALLOCATED_URLS") else {
        return Ok(None);
    };
    let urls: Value = serde_json::from_str(&raw)
        .map_err(|e| format!("BKPAAS_DEFAULT_PREALLOCATED_URLS is not a JSON object: {e}"))?;
    let Some(url) = urls.get(environment).and_then(Value::as_str) else {
        return Ok(None);
    };
    Url::parse(url).map(Some).map_err(|e| {
        format!("BKPAAS_DEFAULT_PREALLOCATED_URLS[{environment:?}]={url:?} is not a URL: {e}")
    })
}

/// The prefix: `BK_PLUGIN_SUB_PATH` when set (`/` for none), else the path of this
/// environment's address in `BKPAAS_DEFAULT_PREALLOCATED_URLS`, else none. Returned as `""` or
/// `/a/b` (a leading `/`, no trailing one), ready to put before `/bk_plugin/...`.
pub(super) fn sub_path(environment: &str) -> Result<String, String> {
    if let Some(given) = var("BK_PLUGIN_SUB_PATH") {
        return normalize(&given).map_err(|e| format!("BK_PLUGIN_SUB_PATH={given:?}: {e}"));
    }
    match preallocated_url(environment)? {
        Some(url) => normalize(url.path()).map_err(|e| {
            format!("the path of BKPAAS_DEFAULT_PREALLOCATED_URLS[{environment:?}]: {e}")
        }),
        None => Ok(String::new()),
    }
}

/// `"/a/b/"`, `"a/b"` → `"/a/b"`; `"/"`, `""` → `""`. Only unreserved URL characters, `%` and
/// `/` are accepted, so the prefix can go into a page's HTML and script as it is.
fn normalize(path: &str) -> Result<String, String> {
    let trimmed = path.trim().trim_matches('/');
    if let Some(bad) = trimmed
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~%/".contains(*c)))
    {
        return Err(format!(
            "{bad:?} cannot be in a path prefix: use letters, digits, `-`, `.`, `_`, `~`, `%` and `/`"
        ));
    }
    if !trimmed.is_empty()
        && trimmed
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err("a path prefix has no empty, `.` or `..` segment".into());
    }
    Ok(if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    })
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn a_prefix_gets_one_leading_slash_and_no_trailing_one() {
        assert_eq!(normalize("/stag--demo/").as_deref(), Ok("/stag--demo"));
        assert_eq!(normalize("a/b").as_deref(), Ok("/a/b"));
        assert_eq!(normalize("/").as_deref(), Ok(""));
        assert_eq!(normalize("").as_deref(), Ok(""));
    }

    #[test]
    fn a_prefix_that_could_break_out_of_a_page_or_a_path_is_refused() {
        for bad in [
            "/a\"b",
            "/<script>",
            "/a b",
            "/a//b",
            "/a/../b",
            "/a?x=1",
            "/a#b",
        ] {
            assert!(normalize(bad).is_err(), "{bad:?} accepted");
        }
    }
}
