//! Custom forms (`forms/<version>/form.js`) and the key they register.
//!
//! BK-SOPS evaluates a version's form and then reads `$.atoms[<plugin code>]`, where the plugin
//! code is the app code (`BKPAAS_APP_ID`, `code` in meta). A form that registers another key shows
//! an empty node editor. So that one form works wherever the plugin is deployed, the runtime
//! replaces every [`CODE_PLACEHOLDER`] in the form text with the app code before publishing it;
//! [`foreign_keys`] finds literal keys that are not the app code, for a start-up warning.

/// Written in a form where the app code belongs: `$.atoms["__BK_PLUGIN_CODE__"] = [...]`.
pub const CODE_PLACEHOLDER: &str = "__BK_PLUGIN_CODE__";

/// The form text as published for the plugin whose app code is `code`.
pub fn render(form: &str, code: &str) -> String {
    form.replace(CODE_PLACEHOLDER, code)
}

/// The literal string keys the form assigns with `$.atoms["..."]` or `$.atoms['...']` that are not
/// `code` (after [`render`]). Keys computed at run time are not seen.
pub fn foreign_keys(form: &str, code: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = form;
    while let Some(at) = rest.find("$.atoms[") {
        rest = &rest[at + "$.atoms[".len()..];
        let trimmed = rest.trim_start();
        let Some(quote) = trimmed.chars().next().filter(|c| *c == '"' || *c == '\'') else {
            continue;
        };
        let body = &trimmed[1..];
        if let Some(end) = body.find(quote) {
            let key = &body[..end];
            if key != code && !keys.iter().any(|k| k == key) {
                keys.push(key.to_string());
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_placeholder_becomes_the_app_code_everywhere() {
        let form = "$.atoms[\"__BK_PLUGIN_CODE__\"] = []; // __BK_PLUGIN_CODE__";
        assert_eq!(
            render(form, "my-app"),
            "$.atoms[\"my-app\"] = []; // my-app"
        );
    }

    #[test]
    fn literal_keys_other_than_the_code_are_found_once() {
        let form = "$.atoms[\"other\"] = []; $.atoms[ 'my-app' ] = []; $.atoms['other'] = [];\
                    $.atoms[code] = [];";
        assert_eq!(foreign_keys(form, "my-app"), vec!["other".to_string()]);
        assert!(foreign_keys(&render("$.atoms['__BK_PLUGIN_CODE__']", "x"), "x").is_empty());
    }
}
