//! The author's data APIs in the OpenAPI document: one path per pattern, one operation per
//! method, path parameters from the actix pattern.

use serde_json::{Map, Value, json};

use super::hoist::component_name;
use super::{gateway_security, json_content, path_param, response_ref};
use crate::plugin_api::{ApiGroup, ApiMethod, PluginApis};

/// One path per data-API pattern, one operation per method.
pub(super) fn add_data_apis(apis: &PluginApis, paths: &mut Map<String, Value>) {
    for (group, method, pattern) in apis.routes() {
        let (template, parameters) = path_template(pattern);
        let prefix = group.prefix().trim_end_matches('/');
        let path = format!("{prefix}{template}");
        let group_name = match group {
            ApiGroup::PluginApi => "plugin_api",
            ApiGroup::OpenApi => "openapi",
            ApiGroup::Private => "private",
        };
        let method_name = method.as_str().to_ascii_lowercase();
        let mut operation = json!({
            "tags": ["data APIs"],
            "operationId": format!("{group_name}_{method_name}{}", component_name(&template.replace(['{', '}'], ""))),
            "summary": format!("{} {path}", method.as_str()),
            "description": "An author's data API. Query parameters reach the handler as they \
                come; the answer is the handler's JSON as it returned it (not wrapped), or the \
                failure envelope with the handler's status.",
            "security": gateway_security(),
            "parameters": parameters,
            "responses": {
                "200": {"description": "The handler's JSON.", "content": json_content(json!({}))},
                "400": response_ref("BadRequest"),
                "401": response_ref("Unauthorized"),
                "404": response_ref("NotFound"),
                "500": response_ref("InternalError"),
            },
        });
        if method == ApiMethod::Post {
            operation["requestBody"] = json!({"content": json_content(json!({}))});
        }
        let item = paths.entry(path).or_insert_with(|| json!({}));
        if item.get(&method_name).is_none() {
            item[method_name] = operation;
        }
    }
}

/// An actix pattern (`/task_list/{biz_id:\d+}`) as an OpenAPI template (`/task_list/{biz_id}`)
/// and its path parameters (a restricted segment keeps its regex as `pattern`).
fn path_template(pattern: &str) -> (String, Vec<Value>) {
    let mut template = String::new();
    let mut parameters = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '{' {
            template.push(c);
            continue;
        }
        let mut depth = 1;
        let mut inner = String::new();
        for c in chars.by_ref() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                break;
            }
            inner.push(c);
        }
        let tail = chars.peek() == Some(&'*');
        if tail {
            chars.next();
        }
        let (name, regex) = match inner.split_once(':') {
            Some((name, regex)) => (name.to_string(), Some(regex.to_string())),
            None => (inner, tail.then(|| ".*".to_string())),
        };
        let mut schema = json!({"type": "string"});
        if let Some(regex) = regex {
            schema["pattern"] = json!(format!("^(?:{regex})$"));
        }
        template.push_str(&format!("{{{name}}}"));
        parameters.push(path_param(
            &name,
            "A path segment of the handler's pattern.",
            schema,
        ));
    }
    (template, parameters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_segments_become_templates_with_patterns() {
        let (template, parameters) = path_template("/task_list/{biz_id:\\d{1,9}}/{rest}*");
        assert_eq!(template, "/task_list/{biz_id}/{rest}");
        assert_eq!(parameters[0]["name"], "biz_id");
        assert_eq!(parameters[0]["schema"]["pattern"], "^(?:\\d{1,9})$");
        assert_eq!(parameters[1]["schema"]["pattern"], "^(?:.*)$");
    }
}
