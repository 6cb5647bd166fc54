//! The OpenTelemetry settings: the standard SDK variables (`OTEL_*`) and the names BlueKing's
//! PaaS APM add-on and blueapps use (`OTEL_GRPC_URL`, `OTEL_BK_DATA_TOKEN`, `OTEL_SAMPLER`,
//! `BKAPP_OTEL_*`, `ENABLE_TRACE`), read once. `docs/operations.md#traces` has the table.

use std::time::Duration;

use super::env::{flag, parsed, var};

/// How spans leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// OTLP over gRPC (what BK-APM's add-on URL speaks).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (`POST <endpoint>/v1/traces`).
    HttpProtobuf,
}

impl Protocol {
    /// The name `OTEL_EXPORTER_OTLP_PROTOCOL` uses.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Which traces are kept (`OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SamplerChoice {
    /// Every trace.
    AlwaysOn,
    /// None.
    AlwaysOff,
    /// This fraction of new traces, by trace id.
    Ratio(f64),
    /// Follow the caller's decision; for a trace that starts here, the inner choice.
    ParentBased(RootChoice),
}

/// What a parent-based sampler does with a trace that starts here.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum RootChoice {
    /// Keep it.
    AlwaysOn,
    /// Drop it.
    AlwaysOff,
    /// Keep this fraction.
    Ratio(f64),
}

/// Tracing settings; present only when tracing is on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct OtelConfig {
    /// Where spans go (for gRPC as given; for HTTP the full URL of the traces path).
    pub endpoint: String,
    /// Which variable gave the endpoint, for messages.
    pub endpoint_source: &'static str,
    /// How.
    pub protocol: Protocol,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Every resource attribute besides `service.name`, in order (`bk.data.token` included).
    pub resource: Vec<(String, String)>,
    /// The sampler.
    pub sampler: SamplerChoice,
    /// The longest one export may take (`OTEL_EXPORTER_OTLP_TIMEOUT`, default 10 s).
    pub export_timeout: Duration,
    /// How long a finished span may wait before its batch is sent (`OTEL_BSP_SCHEDULE_DELAY`,
    /// default 5 s).
    pub schedule_delay: Duration,
    /// Finished spans waiting to be sent at most; past it they are dropped and counted
    /// (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    pub max_queue: usize,
    /// Spans per export at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512).
    pub max_batch: usize,
}

/// The first of `names` that is set, with its name.
fn first_of(names: &[&'static str]) -> Option<(String, &'static str)> {
    names.iter().find_map(|name| var(name).map(|v| (v, *name)))
}

/// Reads the tracing settings: `Ok(None)` when tracing is off. `app_code` is the plugin's app
/// code (the default service name is `<app code>-<module>`, as blueapps names it).
pub(crate) fn from_env(app_code: &str) -> Result<Option<OtelConfig>, String> {
    if flag("OTEL_SDK_DISABLED", false)? {
        return Ok(None);
    }
    if let Some(exporter) = var("OTEL_TRACES_EXPORTER") {
        match exporter.trim().to_ascii_lowercase().as_str() {
            "none" => return Ok(None),
            "otlp" => {}
            other => {
                return Err(format!(
                    "OTEL_TRACES_EXPORTER={other:?} is not supported: use otlp or none"
                ));
            }
        }
    }
    let data_token = first_of(&["BKAPP_OTEL_BK_DATA_TOKEN", "OTEL_BK_DATA_TOKEN"]);
    let standard = first_of(&[
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]);
    let blueking = first_of(&["BKAPP_OTEL_GRPC_HOST", "OTEL_GRPC_URL"]);
    let asked = flag("ENABLE_TRACE", false)? || flag("BKAPP_ENABLE_OTEL_TRACE", false)?;
    if data_token.is_none() && standard.is_none() && blueking.is_none() && !asked {
        return Ok(None);
    }
    let protocol = match first_of(&[
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]) {
        Some((value, name)) => match value.trim().to_ascii_lowercase().as_str() {
            "grpc" => Protocol::Grpc,
            "http/protobuf" => Protocol::HttpProtobuf,
            other => {
                return Err(format!(
                    "{name}={other:?} is not supported: use grpc or http/protobuf"
                ));
            }
        },
        // BlueKing's names give a gRPC URL; the standard variables default to HTTP.
        None if standard.is_none() => Protocol::Grpc,
        None => Protocol::HttpProtobuf,
    };
    let (endpoint, endpoint_source) = endpoint(protocol, standard, blueking);
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(format!(
            "{endpoint_source}={endpoint:?} is not a URL: give http://host:port"
        ));
    }
    if protocol == Protocol::Grpc && endpoint.starts_with("https://") {
        return Err(format!(
            "{endpoint_source}={endpoint:?}: gRPC export is plain HTTP/2 here (as BK-APM's add-on gives it); for TLS use OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"
        ));
    }
    let attributes = resource_attributes()?;
    let module = var("BKPAAS_APP_MODULE_NAME").unwrap_or_else(|| "default".into());
    let service_name = var("OTEL_SERVICE_NAME")
        .or_else(|| var("BKAPP_OTEL_SERVICE_NAME"))
        .or_else(|| {
            attributes
                .iter()
                .find(|(k, _)| k == "service.name")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| format!("{app_code}-{module}"));
    let mut resource: Vec<(String, String)> = attributes
        .into_iter()
        .filter(|(k, _)| k != "service.name")
        .collect();
    if let Some((token, _)) = data_token {
        resource.retain(|(k, _)| k != "bk.data.token");
        resource.push(("bk.data.token".into(), token));
    }
    if let Some(id) = var("BKAPP_OTEL_BK_DATA_ID") {
        resource.retain(|(k, _)| k != "bk_data_id");
        resource.push(("bk_data_id".into(), id));
    }
    let timeout_ms = match var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") {
        Some(_) => parsed("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", 10_000u64)?,
        None => parsed("OTEL_EXPORTER_OTLP_TIMEOUT", 10_000u64)?,
    };
    let max_queue = parsed("OTEL_BSP_MAX_QUEUE_SIZE", 2048usize)?.max(1);
    Ok(Some(OtelConfig {
        endpoint,
        endpoint_source,
        protocol,
        service_name,
        resource,
        sampler: sampler()?,
        export_timeout: Duration::from_millis(timeout_ms.max(1)),
        schedule_delay: Duration::from_millis(parsed("OTEL_BSP_SCHEDULE_DELAY", 5000u64)?.max(1)),
        max_queue,
        max_batch: parsed("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512usize)?.clamp(1, max_queue),
    }))
}

/// The endpoint and the variable it came from: the standard variables first (a signal-wide
/// HTTP endpoint gets `/v1/traces` appended, as the specification says), then BlueKing's gRPC
/// URL, then the protocol's local default.
fn endpoint(
    protocol: Protocol,
    standard: Option<(String, &'static str)>,
    blueking: Option<(String, &'static str)>,
) -> (String, &'static str) {
    match (standard, blueking, protocol) {
        (Some((url, name @ "OTEL_EXPORTER_OTLP_ENDPOINT")), _, Protocol::HttpProtobuf) => (
            format!("{}/v1/traces", url.trim().trim_end_matches('/')),
            name,
        ),
        (Some((url, name)), _, _) | (None, Some((url, name)), _) => (url.trim().to_string(), name),
        (None, None, Protocol::Grpc) => ("http://localhost:4317".into(), "the gRPC default"),
        (None, None, Protocol::HttpProtobuf) => {
            ("http://localhost:4318/v1/traces".into(), "the HTTP default")
        }
    }
}

/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs separated by commas, values percent-decoded.
fn resource_attributes() -> Result<Vec<(String, String)>, String> {
    let Some(text) = var("OTEL_RESOURCE_ATTRIBUTES") else {
        return Ok(Vec::new());
    };
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("OTEL_RESOURCE_ATTRIBUTES: {pair:?} is not key=value"))?;
            Ok((key.trim().to_string(), percent_decode(value.trim())))
        })
        .collect()
}

/// Decodes `%XX` escapes; a malformed escape is kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `OTEL_TRACES_SAMPLER` (else blueapps' `BKAPP_OTEL_SAMPLER`, else the add-on's
/// `OTEL_SAMPLER`, else `parentbased_always_on`) with `OTEL_TRACES_SAMPLER_ARG` (default 1.0).
fn sampler() -> Result<SamplerChoice, String> {
    let Some((name, source)) =
        first_of(&["OTEL_TRACES_SAMPLER", "BKAPP_OTEL_SAMPLER", "OTEL_SAMPLER"])
    else {
        return Ok(SamplerChoice::ParentBased(RootChoice::AlwaysOn));
    };
    let ratio = || -> Result<f64, String> {
        let ratio: f64 = parsed("OTEL_TRACES_SAMPLER_ARG", 1.0)?;
        if (0.0..=1.0).contains(&ratio) {
            Ok(ratio)
        } else {
            Err(format!(
                "OTEL_TRACES_SAMPLER_ARG={ratio} is not a ratio between 0 and 1"
            ))
        }
    };
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "always_on" => SamplerChoice::AlwaysOn,
        "always_off" => SamplerChoice::AlwaysOff,
        "traceidratio" => SamplerChoice::Ratio(ratio()?),
        "parentbased_always_on" => SamplerChoice::ParentBased(RootChoice::AlwaysOn),
        "parentbased_always_off" => SamplerChoice::ParentBased(RootChoice::AlwaysOff),
        "parentbased_traceidratio" => SamplerChoice::ParentBased(RootChoice::Ratio(ratio()?)),
        other => {
            return Err(format!(
                "{source}={other:?} is not a sampler: use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_attribute_values_are_percent_decoded() {
        assert_eq!(percent_decode("a%20b%2Cc"), "a b,c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn a_signal_wide_http_endpoint_gets_the_traces_path() {
        let standard = Some((
            "http://apm:4318/".to_string(),
            "OTEL_EXPORTER_OTLP_ENDPOINT",
        ));
        assert_eq!(
            endpoint(Protocol::HttpProtobuf, standard.clone(), None).0,
            "http://apm:4318/v1/traces"
        );
        assert_eq!(
            endpoint(Protocol::Grpc, standard, None).0,
            "http://apm:4318/"
        );
        let signal = Some((
            "http://apm:4318/custom".to_string(),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ));
        assert_eq!(
            endpoint(Protocol::HttpProtobuf, signal, None).0,
            "http://apm:4318/custom"
        );
    }

    #[test]
    fn the_blueking_grpc_url_is_used_when_no_standard_endpoint_is_set() {
        let blueking = Some(("http://bkapm:4317".to_string(), "OTEL_GRPC_URL"));
        assert_eq!(
            endpoint(Protocol::Grpc, None, blueking),
            ("http://bkapm:4317".to_string(), "OTEL_GRPC_URL")
        );
    }
}
