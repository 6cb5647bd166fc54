//! The plugin's OpenAPI 3.1 document: every protocol route, `/metrics`, the author's data APIs,
//! and each version's inputs, context inputs and outputs as components. Served at
//! `GET /schema/` (JSON; YAML with `?format=yaml`) and printed by the `openapi` command.
//!
//! The version schemas are the ones `detail` already answers (draft-07 style, nested models under
//! `definitions`). OpenAPI 3.1 speaks JSON Schema 2020-12, so each schema is moved into
//! `components/schemas` as `Inputs_<version>`, `ContextInputs_<version>`, `Outputs_<version>`;
//! its nested models are hoisted beside it as `<that name>_<Model>` and every
//! `#/definitions/<Model>` reference is rewritten to point there. Invoke has one path per version
//! (`/bk_plugin/invoke/1.0.0`), so each request body and result names its own models.

use bk_plugin_core::{PluginVersion, Registry};
use serde_json::{Map, Value, json};

mod components;
mod data_apis;
mod hoist;
mod yaml;

pub(crate) use yaml::to_yaml;

use crate::plugin_api::PluginApis;
use components::{common_responses, common_schemas};
use data_apis::add_data_apis;
use hoist::{component_name, hoist};

/// The OpenAPI version the document follows.
pub(crate) const OPENAPI_VERSION: &str = "3.1.0";

/// What the document describes: the plugin's code and description, its versions and data APIs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Described<'a> {
    /// The app code (`BKPAAS_APP_ID`).
    pub app_code: &'a str,
    /// The path prefix PaaS serves the app under (`""` or `/a/b`): the document's `servers`.
    pub root: &'a str,
    /// The plugin's description.
    pub description: &'a str,
    /// Every version.
    pub registry: &'a Registry,
    /// The author's data APIs.
    pub apis: &'a PluginApis,
}

/// The OpenAPI document as JSON.
pub(crate) fn document(plugin: Described<'_>) -> Value {
    let mut schemas = common_schemas();
    let mut paths = Map::new();
    paths.insert("/bk_plugin/meta/".into(), meta_path());
    paths.insert(
        "/bk_plugin/detail/{version}".into(),
        detail_path(plugin.registry),
    );
    for version in plugin.registry.versions() {
        add_version(version, &mut schemas, &mut paths);
    }
    paths.insert("/bk_plugin/schedule/{trace_id}".into(), schedule_path());
    paths.insert("/bk_plugin/callback/{token}/".into(), callback_path());
    paths.insert("/bk_plugin/logs/{trace_id}".into(), logs_path());
    paths.insert("/bk_plugin/plugin_api_dispatch/".into(), dispatch_path());
    add_data_apis(plugin.apis, &mut paths);
    paths.insert("/metrics".into(), metrics_path());
    let description = format!(
        "{}\n\nThe BlueKing plugin protocol served by bk-plugin-framework for Rust. Every route \
         under `/bk_plugin/` answers with and without its trailing slash; every JSON answer is \
         the envelope `{{result, message, data}}` (plus `trace_id` on invoke, schedule and \
         dispatch). Outside dev, invoke, callback, dispatch and the data APIs need the API \
         gateway's `X-Bkapi-JWT`.",
        if plugin.description.is_empty() {
            plugin.app_code
        } else {
            plugin.description
        }
    );
    let mut doc = json!({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": plugin.app_code,
            "description": description,
            "version": plugin.registry.version_names().first().copied().unwrap_or("0.0.0"),
            "x-framework": format!("bk-plugin-framework-rust {}", env!("CARGO_PKG_VERSION")),
        },
        "tags": [
            {"name": "protocol", "description": "meta, detail, schedule, callback and logs"},
            {"name": "invoke", "description": "one path per plugin version"},
            {"name": "data APIs", "description": "the author's handlers for form widgets"},
            {"name": "operations", "description": "metrics"},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": common_responses(),
            "securitySchemes": {
                "ApiGatewayJwt": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Bkapi-JWT",
                    "description": "The JWT the BlueKing API gateway adds (RS512, `kid` = gateway \
                        name). Required outside dev; in dev every request is let through.",
                },
            },
        },
    });
    // Behind a path prefix the paths are relative to it (OpenAPI's default server is `/`).
    if !plugin.root.is_empty() {
        doc["servers"] = json!([{
            "url": plugin.root,
            "description": "the path prefix BK PaaS serves this app under",
        }]);
    }
    doc
}

/// An object schema with these `properties`, of which `required` are required.
fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

/// A component reference.
fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn response_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

/// `{"result": true, "message": <message>, "data": <data>}`, with `trace_id` when asked.
fn envelope(data: Value, with_trace: bool) -> Value {
    let mut properties = json!({
        "result": {"type": "boolean", "const": true},
        "message": {"type": "string"},
        "data": data,
    });
    let mut required = vec!["result", "message", "data"];
    if with_trace {
        properties["trace_id"] = schema_ref("TraceId");
        required.push("trace_id");
    }
    json!({"type": "object", "properties": properties, "required": required})
}

fn json_content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": json_content(schema)})
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

fn gateway_security() -> Value {
    json!([{"ApiGatewayJwt": []}])
}

fn meta_path() -> Value {
    json!({"get": {
        "tags": ["protocol"],
        "operationId": "meta",
        "summary": "The plugin's code, description and versions",
        "responses": {"200": ok("The plugin's meta.", schema_ref("Meta"))},
    }})
}

fn detail_path(registry: &Registry) -> Value {
    json!({"get": {
        "tags": ["protocol"],
        "operationId": "detail",
        "summary": "One version's description, schemas and form",
        "parameters": [path_param("version", "A plugin version.",
                                  json!({"type": "string", "enum": registry.version_names()}))],
        "responses": {
            "200": ok("The version's detail.", schema_ref("Detail")),
            "404": response_ref("NotFound"),
        },
    }})
}

/// Adds one version's models and its invoke path.
fn add_version(
    version: &PluginVersion,
    schemas: &mut Map<String, Value>,
    paths: &mut Map<String, Value>,
) {
    let name = version.version();
    let detail = version.detail();
    let inputs = format!("Inputs_{}", component_name(name));
    let context = format!("ContextInputs_{}", component_name(name));
    let outputs = format!("Outputs_{}", component_name(name));
    for (key, component) in [
        ("inputs", &inputs),
        ("context_inputs", &context),
        ("outputs", &outputs),
    ] {
        hoist(&detail[key], component, schemas);
    }
    let request = format!("InvokeRequest_{}", component_name(name));
    schemas.insert(
        request.clone(),
        json!({"type": "object", "properties": {
            "inputs": schema_ref(&inputs),
            "context": schema_ref(&context),
        }, "required": ["inputs", "context"]}),
    );
    let result = format!("InvokeResult_{}", component_name(name));
    schemas.insert(
        result.clone(),
        envelope(
            json!({"type": "object", "properties": {
                "outputs": {
                    "description": "SUCCESS: the outputs. POLL/CALLBACK: the outputs set so far \
                        (possibly incomplete). FAIL: null.",
                    "anyOf": [schema_ref(&outputs), {"type": "object"}, {"type": "null"}],
                },
                "state": schema_ref("State"),
                "err": {"type": ["string", "null"],
                        "description": "Why it failed (state 5), else null."},
            }, "required": ["outputs", "state", "err"]}),
            true,
        ),
    );
    let desc = version.desc();
    paths.insert(
        format!("/bk_plugin/invoke/{name}"),
        json!({"post": {
            "tags": ["invoke"],
            "operationId": format!("invoke_{}", component_name(name)),
            "summary": format!("Invoke {name}{}", if desc.is_empty() { String::new() } else { format!(": {desc}") }),
            "description": "Runs the first step now. SUCCESS and FAIL come back at once; POLL and \
                CALLBACK are stored before the answer, then followed with the schedule route. \
                Inputs are coerced like pydantic v1 (\"7\" for an integer) before validation; a \
                validation failure is a 200 with state 5 and `err` naming the field.",
            "security": gateway_security(),
            "requestBody": {"required": true, "content": json_content(schema_ref(&request))},
            "responses": {
                "200": ok("The first step ran.", schema_ref(&result)),
                "400": response_ref("BadRequest"),
                "401": response_ref("Unauthorized"),
                "403": response_ref("Forbidden"),
                "404": response_ref("NotFound"),
                "413": response_ref("PayloadTooLarge"),
                "415": response_ref("UnsupportedMediaType"),
            },
        }}),
    );
}

fn schedule_path() -> Value {
    json!({"get": {
        "tags": ["protocol"],
        "operationId": "schedule",
        "summary": "The state, outputs and err of an invocation that went through the scheduler",
        "description": "An invocation that finished in its invoke call is not stored: the answer \
            is then a 200 with result false, `can not find schedule for trace_id <id>`.",
        "parameters": [path_param("trace_id", "From the invoke answer.", schema_ref("TraceId"))],
        "responses": {
            "200": {"description": "Found (result true), or not found (result false).",
                    "content": json_content(json!({"oneOf": [schema_ref("Schedule"), schema_ref("Failure")]}))},
        },
    }})
}

fn callback_path() -> Value {
    json!({"post": {
        "tags": ["protocol"],
        "operationId": "callback",
        "summary": "Wake an invocation waiting for a callback (the URL prepare_callback gave)",
        "security": gateway_security(),
        "parameters": [path_param("token", "The signed token from the callback URL.", json!({"type": "string"}))],
        "requestBody": {"required": true, "description": "Any JSON: the re-run sees it as context.callback.data.",
                        "content": json_content(json!({}))},
        "responses": {
            "200": ok("Accepted: the invocation runs again.", schema_ref("CallbackAccepted")),
            "400": response_ref("BadRequest"),
            "401": response_ref("Unauthorized"),
            "413": response_ref("PayloadTooLarge"),
        },
    }})
}

fn logs_path() -> Value {
    json!({"get": {
        "tags": ["protocol"],
        "operationId": "logs",
        "summary": "Every line logged while running a trace (dev, or BK_PLUGIN_LOGS_API=1)",
        "parameters": [path_param("trace_id", "From the invoke answer.", schema_ref("TraceId"))],
        "responses": {
            "200": ok("The trace's lines.", schema_ref("Logs")),
            "404": response_ref("NotFound"),
        },
    }})
}

fn dispatch_path() -> Value {
    json!({"post": {
        "tags": ["data APIs"],
        "operationId": "plugin_api_dispatch",
        "summary": "Call a data API in-process as a user",
        "security": gateway_security(),
        "requestBody": {"required": true, "content": json_content(schema_ref("DispatchRequest"))},
        "responses": {
            "200": ok("The handler's answer, in the envelope.", schema_ref("DispatchResult")),
            "400": response_ref("BadRequest"),
            "401": response_ref("Unauthorized"),
            "403": response_ref("Forbidden"),
            "404": response_ref("NotFound"),
            "500": response_ref("InternalError"),
        },
    }})
}

fn metrics_path() -> Value {
    json!({"get": {
        "tags": ["operations"],
        "operationId": "metrics",
        "summary": "Prometheus metrics",
        "responses": {"200": {"description": "Prometheus text exposition.",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}},
    }})
}

/// Prints the document for the `openapi` command.
pub(crate) fn print(
    config: &crate::config::Config,
    registry: &Registry,
    meta: &bk_plugin_core::PluginMeta,
    apis: &PluginApis,
    yaml: bool,
) -> Result<(), serde_json::Error> {
    let doc = document(Described {
        app_code: &config.app_code,
        root: &config.sub_path,
        description: &meta.description,
        registry,
        apis,
    });
    if yaml {
        print!("{}", to_yaml(&doc));
    } else {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}
