//! The components every document has: the protocol's schemas (trace id, state, the envelopes of
//! each route's answer) and its common error responses.

use serde_json::{Map, Value, json};

use super::{envelope, json_content, object, schema_ref};

pub(super) fn common_schemas() -> Map<String, Value> {
    let mut schemas = Map::new();
    let mut put = |name: &str, schema: Value| {
        schemas.insert(name.to_string(), schema);
    };
    put(
        "TraceId",
        json!({"type": "string", "pattern": "^[0-9a-f]{32}$",
               "description": "Names one invocation: a UUID4 as 32 lowercase hex characters."}),
    );
    put(
        "State",
        json!({"type": "integer", "enum": [1, 2, 3, 4, 5],
               "description": "1 EMPTY (first run), 2 POLL (runs again after its interval), \
                   3 CALLBACK (runs again when its callback URL is POSTed), 4 SUCCESS, 5 FAIL. \
                   4 and 5 are terminal."}),
    );
    put(
        "Failure",
        json!({"type": "object",
               "description": "Every failed answer: `result` false, what went wrong in `message`.",
               "properties": {
                   "result": {"type": "boolean", "const": false},
                   "message": {"type": "string"},
                   "data": {"type": "null"},
                   "trace_id": {"$ref": "#/components/schemas/TraceId"},
               },
               "required": ["result", "message", "data"]}),
    );
    put(
        "JsonSchema",
        json!({"type": "object",
               "description": "A JSON Schema (draft-07 style: `type`, `properties`, `required`, \
                   `definitions`)."}),
    );
    put(
        "Meta",
        envelope(
            object(
                json!({
                "code": {"type": "string", "description": "The app code."},
                "description": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"},
                             "description": "Every version, newest first (semantic order)."},
                "language": {"type": "string", "const": "rust"},
                "framework_version": {"type": "string"},
                "runtime_version": {"type": "string"},
                "allow_scope": {"type": "object", "additionalProperties": {
                    "type": "object",
                    "properties": {"type": {"type": "string"},
                                   "value": {"type": "array", "items": {"type": "string"}}},
                }},
                }),
                &[
                    "code",
                    "description",
                    "versions",
                    "language",
                    "framework_version",
                    "runtime_version",
                    "allow_scope",
                ],
            ),
            false,
        ),
    );
    put(
        "Detail",
        envelope(
            object(
                json!({
                "desc": {"type": "string"},
                "version": {"type": "string"},
                "enable_plugin_callback": {"type": "boolean"},
                "inputs": schema_ref("JsonSchema"),
                "context_inputs": schema_ref("JsonSchema"),
                "outputs": schema_ref("JsonSchema"),
                "forms": {"type": "object", "properties": {
                    "renderform": {"type": ["string", "null"],
                                   "description": "The text of forms/<version>/form.js."},
                }},
                }),
                &[
                    "desc",
                    "version",
                    "enable_plugin_callback",
                    "inputs",
                    "context_inputs",
                    "outputs",
                    "forms",
                ],
            ),
            false,
        ),
    );
    put(
        "Schedule",
        envelope(
            object(
                json!({
                "trace_id": schema_ref("TraceId"),
                "plugin_version": {"type": "string"},
                "version": {"type": "string", "description": "Alias of plugin_version."},
                "state": schema_ref("State"),
                "invoke_count": {"type": "integer"},
                "outputs": {"type": "object", "description": "The outputs set so far."},
                "err": {"type": "string", "description": "\"\" when there is none."},
                "created_at": {"type": "string", "description": "YYYY-mm-dd HH:MM:SS, TIME_ZONE."},
                "create_at": {"type": "string", "description": "Alias of created_at."},
                "finish_at": {"type": "string", "description": "\"\" until SUCCESS or FAIL."},
                }),
                &[
                    "trace_id",
                    "plugin_version",
                    "state",
                    "outputs",
                    "err",
                    "created_at",
                    "finish_at",
                ],
            ),
            true,
        ),
    );
    put(
        "Logs",
        envelope(
            object(
                json!({
                "log": {"type": "string", "description": "Every line logged for the trace, oldest first."},
                }),
                &["log"],
            ),
            false,
        ),
    );
    put("CallbackAccepted", envelope(json!({"type": "null"}), false));
    put(
        "DispatchRequest",
        json!({"type": "object", "properties": {
            "url": {"type": "string", "pattern": "^/bk_plugin/plugin_api/",
                    "description": "The data API to call, with an optional query string."},
            "method": {"type": "string", "enum": ["GET", "POST"]},
            "username": {"type": "string", "description": "The user the handler runs as."},
            "data": {"type": "object", "description": "Query parameters (GET) or the JSON body (POST)."},
            "dumped_data": {"type": "string", "description": "A JSON object as text, merged into data."},
        }, "required": ["url", "method", "username"]}),
    );
    put(
        "DispatchResult",
        envelope(
            json!({"description": "The handler's JSON, as it returned it."}),
            true,
        ),
    );
    schemas
}

pub(super) fn common_responses() -> Value {
    let failure = |description: &str| json!({"description": description, "content": json_content(schema_ref("Failure"))});
    json!({
        "BadRequest": failure("The request is not what the route takes: the message says what is wrong."),
        "Unauthorized": failure("Outside dev: the API gateway's X-Bkapi-JWT is missing or invalid."),
        "Forbidden": failure("allow_scope: the caller's Bkplugin-Scope-Type/Value are not allowed."),
        "NotFound": failure("Unknown version, trace or route."),
        "PayloadTooLarge": failure("The body is larger than BK_PLUGIN_MAX_BODY_BYTES."),
        "UnsupportedMediaType": failure("The body is not JSON and was sent as another content type."),
        "InternalError": failure("The database or a handler failed."),
    })
}
