//! The link-time registry of plugin versions.
//!
//! `#[bk_plugin]` submits one [`PluginRecord`] per plugin type with `inventory`. At start-up
//! [`Registry::load`] collects them, rejects duplicates and bad declarations (before any port is
//! bound), builds each plugin once and sorts the versions newest first.

use std::collections::HashMap;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value, json};

use crate::executor::{ModelSchemas, StepInput, StepOutcome, StepServices, run_step};
use crate::plugin::Plugin;
use crate::schema::trim;
use crate::version::{check_version, compare_versions};

/// What `#[bk_plugin]` registers for one plugin type. Const-constructible.
#[derive(Debug)]
pub struct PluginRecord {
    /// The version string.
    pub version: &'static str,
    /// The plugin type's path, for error messages.
    pub type_name: &'static str,
    /// The version's description.
    pub desc: &'static str,
    /// Whether finished invocations notify `plugin_callback_info.url`.
    pub enable_plugin_callback: bool,
    /// The text of `forms/<version>/form.js`, when the plugin project has one.
    pub form: Option<&'static str>,
    /// How long a CALLBACK invocation waits for its callback, in seconds (0: the runtime's
    /// default, `BK_PLUGIN_CALLBACK_TIMEOUT_SECONDS`).
    pub callback_timeout_secs: u64,
    /// Builds the plugin instance (once, at start-up).
    pub build: fn() -> Result<Box<dyn ErasedPlugin>, String>,
}

inventory::collect!(PluginRecord);

/// A plugin instance with its type erased, as the registry holds it.
pub trait ErasedPlugin: Send + Sync {
    /// The schemas of its models.
    fn schemas(&self) -> ModelSchemas;
    /// Its per-field UI hints.
    fn inputs_form(&self) -> Map<String, Value>;
    /// Runs one step.
    fn run<'a>(
        &'a self,
        schemas: &'a ModelSchemas,
        input: StepInput,
        services: StepServices,
    ) -> BoxFuture<'a, StepOutcome>;
}

struct Erased<P>(P);

impl<P: Plugin> ErasedPlugin for Erased<P> {
    fn schemas(&self) -> ModelSchemas {
        ModelSchemas::of::<P>()
    }

    fn inputs_form(&self) -> Map<String, Value> {
        P::inputs_form()
    }

    fn run<'a>(
        &'a self,
        schemas: &'a ModelSchemas,
        input: StepInput,
        services: StepServices,
    ) -> BoxFuture<'a, StepOutcome> {
        Box::pin(run_step(&self.0, schemas, input, services))
    }
}

/// Erases a plugin's type. Used by the code `#[bk_plugin]` generates.
pub fn erase<P: Plugin>(plugin: P) -> Box<dyn ErasedPlugin> {
    Box::new(Erased(plugin))
}

/// Why the registry cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Two plugin types declare the same version.
    #[error("plugin version {version} is declared twice: by {first} and by {second}")]
    DuplicateVersion {
        /// The version.
        version: String,
        /// One type declaring it.
        first: String,
        /// The other.
        second: String,
    },
    /// A version string is not valid.
    #[error("{type_name}: {message}")]
    InvalidVersion {
        /// The plugin type.
        type_name: String,
        /// What is wrong.
        message: String,
    },
    /// Building a plugin instance failed.
    #[error("plugin {type_name} (version {version}) failed to start: {message}")]
    Init {
        /// The plugin type.
        type_name: String,
        /// Its version.
        version: String,
        /// Its error.
        message: String,
    },
    /// A model's schema has a keyword validation would not enforce (a hand-written `JsonSchema`).
    #[error(
        "plugin {type_name} (version {version}): the schema of its {model} publishes what validation does not check ({keywords}); if a field's type publishes it (a `format` such as \"email\" or \"date-time\"), use a String or number field with #[field(...)] constraints instead; in a hand-written JsonSchema, remove it"
    )]
    UnenforcedKeyword {
        /// The plugin type.
        type_name: String,
        /// Its version.
        version: String,
        /// Which model: `inputs`, `context_inputs` or `outputs`.
        model: &'static str,
        /// Where and which, `location: keyword`, comma-separated.
        keywords: String,
    },
    /// `enable_plugin_callback` without a `plugin_callback_info` context input.
    #[error(
        "plugin {type_name} (version {version}) enables plugin callback but its ContextInputs has no `plugin_callback_info` field"
    )]
    CallbackInfoMissing {
        /// The plugin type.
        type_name: String,
        /// Its version.
        version: String,
    },
}

/// The start-up checks on a plugin's models: every schema keyword is one validation enforces,
/// and `enable_plugin_callback` comes with a `plugin_callback_info` context input. The server
/// runs them before binding a port, and `testing::Harness` runs the same ones, so an author's
/// own tests fail where the binary would refuse to start.
pub(crate) fn check_schemas(
    type_name: &str,
    version: &str,
    enable_plugin_callback: bool,
    schemas: &ModelSchemas,
) -> Result<(), RegistryError> {
    for (model, schema) in [
        ("inputs", &schemas.inputs),
        ("context_inputs", &schemas.context_inputs),
        ("outputs", &schemas.outputs),
    ] {
        let keywords = crate::constraint::unenforced_keywords(schema);
        if !keywords.is_empty() {
            return Err(RegistryError::UnenforcedKeyword {
                type_name: type_name.to_string(),
                version: version.to_string(),
                model,
                keywords: keywords.join(", "),
            });
        }
    }
    if enable_plugin_callback
        && schemas.context_inputs["properties"]
            .get("plugin_callback_info")
            .is_none()
    {
        return Err(RegistryError::CallbackInfoMissing {
            type_name: type_name.to_string(),
            version: version.to_string(),
        });
    }
    Ok(())
}

/// The registered record of the plugin type named `type_name` (as `std::any::type_name` spells
/// it), if it is linked into this binary.
pub(crate) fn record_named(type_name: &str) -> Option<&'static PluginRecord> {
    inventory::iter::<PluginRecord>
        .into_iter()
        .find(|record| record.type_name == type_name)
}

/// One registered plugin version, built and ready to run.
pub struct PluginVersion {
    record: &'static PluginRecord,
    plugin: Box<dyn ErasedPlugin>,
    schemas: ModelSchemas,
    detail: Value,
}

impl std::fmt::Debug for PluginVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginVersion")
            .field("version", &self.record.version)
            .field("type_name", &self.record.type_name)
            .finish()
    }
}

impl PluginVersion {
    fn build(record: &'static PluginRecord) -> Result<Self, RegistryError> {
        check_version(record.version).map_err(|message| RegistryError::InvalidVersion {
            type_name: record.type_name.to_string(),
            message,
        })?;
        let plugin = (record.build)().map_err(|message| RegistryError::Init {
            type_name: record.type_name.to_string(),
            version: record.version.to_string(),
            message,
        })?;
        let schemas = plugin.schemas();
        check_schemas(
            record.type_name,
            record.version,
            record.enable_plugin_callback,
            &schemas,
        )?;
        let detail = detail_json(record, &schemas, &plugin.inputs_form());
        Ok(Self {
            record,
            plugin,
            schemas,
            detail,
        })
    }

    /// The version string.
    pub fn version(&self) -> &'static str {
        self.record.version
    }

    /// The description.
    pub fn desc(&self) -> &'static str {
        self.record.desc
    }

    /// Whether finished invocations notify `plugin_callback_info.url`.
    pub fn enable_plugin_callback(&self) -> bool {
        self.record.enable_plugin_callback
    }

    /// This version's own callback timeout, when it declares one.
    pub fn callback_timeout(&self) -> Option<std::time::Duration> {
        (self.record.callback_timeout_secs > 0)
            .then(|| std::time::Duration::from_secs(self.record.callback_timeout_secs))
    }

    /// The full model schemas.
    pub fn schemas(&self) -> &ModelSchemas {
        &self.schemas
    }

    /// The `data` of `GET /bk_plugin/detail/{version}`.
    pub fn detail(&self) -> &Value {
        &self.detail
    }

    /// Runs one step of an invocation of this version.
    pub fn run(&self, input: StepInput, services: StepServices) -> BoxFuture<'_, StepOutcome> {
        self.plugin.run(&self.schemas, input, services)
    }
}

fn detail_json(
    record: &PluginRecord,
    schemas: &ModelSchemas,
    inputs_form: &Map<String, Value>,
) -> Value {
    let mut inputs = trim(&schemas.inputs);
    if let Some(Value::Object(properties)) = inputs.get_mut("properties") {
        for (field, hints) in inputs_form {
            if let (Some(Value::Object(property)), Value::Object(hints)) =
                (properties.get_mut(field), hints)
            {
                property.extend(hints.clone());
            }
        }
    }
    json!({
        "desc": record.desc,
        "version": record.version,
        "enable_plugin_callback": record.enable_plugin_callback,
        "inputs": inputs,
        "context_inputs": trim(&schemas.context_inputs),
        "outputs": trim(&schemas.outputs),
        "forms": {"renderform": record.form},
    })
}

/// Every plugin version in this binary, newest first.
#[derive(Debug)]
pub struct Registry {
    versions: Vec<PluginVersion>,
    index: HashMap<&'static str, usize>,
}

impl Registry {
    /// Collects every version registered with `#[bk_plugin]` in this binary.
    pub fn load() -> Result<Self, RegistryError> {
        Self::from_records(inventory::iter::<PluginRecord>)
    }

    /// Builds a registry from explicit records (tests; embedding).
    pub fn from_records(
        records: impl IntoIterator<Item = &'static PluginRecord>,
    ) -> Result<Self, RegistryError> {
        let mut records: Vec<&'static PluginRecord> = records.into_iter().collect();
        records.sort_by(|a, b| {
            compare_versions(b.version, a.version).then(a.type_name.cmp(b.type_name))
        });
        for pair in records.windows(2) {
            // `01.0.0` and `1.0.0` name the same version too.
            if compare_versions(pair[0].version, pair[1].version).is_eq() {
                return Err(RegistryError::DuplicateVersion {
                    version: pair[0].version.to_string(),
                    first: pair[0].type_name.to_string(),
                    second: pair[1].type_name.to_string(),
                });
            }
        }
        let versions = records
            .into_iter()
            .map(PluginVersion::build)
            .collect::<Result<Vec<_>, _>>()?;
        let index = versions
            .iter()
            .enumerate()
            .map(|(i, v)| (v.version(), i))
            .collect();
        Ok(Self { versions, index })
    }

    /// The version strings, newest first.
    pub fn version_names(&self) -> Vec<&'static str> {
        self.versions.iter().map(PluginVersion::version).collect()
    }

    /// Every version, newest first.
    pub fn versions(&self) -> &[PluginVersion] {
        &self.versions
    }

    /// The version with this exact string.
    pub fn get(&self, version: &str) -> Option<&PluginVersion> {
        self.index.get(version).map(|&i| &self.versions[i])
    }

    /// Whether no version is registered.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// Publishes every custom form for the plugin whose app code is `code`: replaces
    /// [`crate::form::CODE_PLACEHOLDER`] with it. Returns one warning per version whose form
    /// registers a literal `$.atoms` key other than `code` (BK-SOPS would find no form there).
    pub fn bind_plugin_code(&mut self, code: &str) -> Vec<String> {
        let mut warnings = Vec::new();
        for version in &mut self.versions {
            let Some(form) = version.record.form else {
                continue;
            };
            let rendered = crate::form::render(form, code);
            let foreign = crate::form::foreign_keys(&rendered, code);
            if !foreign.is_empty() {
                warnings.push(format!(
                    "the form of version {} registers $.atoms[{}], but BK-SOPS reads $.atoms[\"{code}\"] (the app code, BKPAAS_APP_ID): write $.atoms[\"{}\"] in forms/{}/form.js",
                    version.record.version,
                    foreign
                        .iter()
                        .map(|k| format!("\"{k}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                    crate::form::CODE_PLACEHOLDER,
                    version.record.version,
                ));
            }
            version.detail["forms"]["renderform"] = Value::String(rendered);
        }
        warnings
    }
}

/// Used by the code `#[bk_plugin]` generates: the one place that requires, on the author's type
/// name, that the plugin type implements `Plugin` (so a missing impl is one error), returning
/// what erases a built plugin's type. It lives here, beside `erase`, so that `plugin` needs
/// nothing from the registry (no module imports one that imports it back).
pub const fn assert_plugin<T: Plugin>() -> fn(T) -> Box<dyn ErasedPlugin> {
    erase::<T>
}

#[cfg(test)]
#[allow(unreachable_pub)]
mod tests {
    use super::*;
    use crate::plugin::PluginModels;
    use crate::prelude::*;
    use serde_json::json;

    /// A plugin type `$name` with `$inputs` and no context inputs or outputs.
    macro_rules! plugin_type {
        ($name:ident, $inputs:ty) => {
            #[derive(Default)]
            pub struct $name;

            impl PluginModels for $name {
                type Inputs = $inputs;
                type ContextInputs = Empty;
                type Outputs = Empty;
            }
        };
    }

    #[inputs]
    pub struct FormInputs {
        pub biz: i64,
    }

    plugin_type!(Formed, FormInputs);

    impl Plugin for Formed {
        async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
            Ok(Next::Done(Empty {}))
        }

        fn inputs_form() -> Map<String, Value> {
            json!({"biz": {"ui:component": {"name": "bk-select"}}, "absent": {"x": 1}})
                .as_object()
                .cloned()
                .unwrap_or_default()
        }
    }

    fn build_formed() -> Result<Box<dyn ErasedPlugin>, String> {
        Ok(erase(Formed))
    }

    const fn record(
        version: &'static str,
        type_name: &'static str,
        callback: bool,
    ) -> PluginRecord {
        PluginRecord {
            version,
            type_name,
            desc: "d",
            enable_plugin_callback: callback,
            form: None,
            callback_timeout_secs: 0,
            build: build_formed,
        }
    }

    static A: PluginRecord = record("1.9.0", "crate::A", false);
    static B: PluginRecord = record("1.10.0", "crate::B", false);
    static C: PluginRecord = record("1.9.0", "crate::C", false);
    static CALLBACK: PluginRecord = record("2.0.0", "crate::NoInfo", true);
    static BAD: PluginRecord = record("1.0", "crate::Bad", false);
    static PADDED: PluginRecord = record("01.9.0", "crate::Padded", false);
    static PLACEHOLDER_FORM: PluginRecord = PluginRecord {
        form: Some("$.atoms[\"__BK_PLUGIN_CODE__\"] = [];"),
        ..record("3.0.0", "crate::Placeholder", false)
    };
    static LITERAL_FORM: PluginRecord = PluginRecord {
        form: Some("$.atoms['someone-else'] = [];"),
        ..record("3.1.0", "crate::Literal", false)
    };

    #[test]
    fn forms_get_the_app_code_and_a_foreign_literal_key_is_warned_about() {
        let registry = Registry::from_records([&PLACEHOLDER_FORM, &LITERAL_FORM, &A]);
        let Ok(mut registry) = registry else {
            panic!("{registry:?}");
        };
        let warnings = registry.bind_plugin_code("my-app");
        let form = |v: &str| {
            registry
                .get(v)
                .map(|v| v.detail()["forms"]["renderform"].clone())
        };
        assert_eq!(form("3.0.0"), Some(json!("$.atoms[\"my-app\"] = [];")));
        assert_eq!(form("3.1.0"), Some(json!("$.atoms['someone-else'] = [];")));
        assert_eq!(form("1.9.0"), Some(Value::Null));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("version 3.1.0")
                && warnings[0].contains("\"someone-else\"")
                && warnings[0].contains("$.atoms[\"my-app\"]"),
            "{}",
            warnings[0]
        );
    }

    /// A hand-written schema publishing a keyword that validation does not enforce.
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Promising {}

    impl schemars::JsonSchema for Promising {
        fn schema_name() -> std::borrow::Cow<'static, str> {
            "Promising".into()
        }

        fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
            schemars::json_schema!({"type": "object", "properties": {}, "minProperties": 1})
        }
    }

    plugin_type!(Promises, Promising);

    impl Plugin for Promises {
        async fn execute(&self, _: Promising, _: &mut Context<Self>) -> Step<Self> {
            Ok(Next::Done(Empty {}))
        }
    }

    fn build_promises() -> Result<Box<dyn ErasedPlugin>, String> {
        Ok(erase(Promises))
    }

    static PROMISES: PluginRecord = PluginRecord {
        build: build_promises,
        ..record("4.0.0", "crate::Promises", false)
    };

    #[test]
    fn a_model_publishing_an_unenforced_keyword_is_refused_at_start() {
        let err = Registry::from_records([&PROMISES, &A])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "plugin crate::Promises (version 4.0.0): the schema of its inputs publishes what validation does not check (__root__: minProperties); if a field's type publishes it (a `format` such as \"email\" or \"date-time\"), use a String or number field with #[field(...)] constraints instead; in a hand-written JsonSchema, remove it"
            )
        );
    }

    #[test]
    fn versions_are_sorted_semantically_newest_first() {
        let registry = Registry::from_records([&A, &B]);
        let names = registry.map(|r| r.version_names()).unwrap_or_default();
        assert_eq!(names, vec!["1.10.0", "1.9.0"]);
    }

    #[test]
    fn two_types_with_one_version_are_an_error_naming_both() {
        let err = Registry::from_records([&A, &B, &C])
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("plugin version 1.9.0 is declared twice: by crate::A and by crate::C")
        );
    }

    /// Loading `records` fails with the `RegistryError` variant named.
    macro_rules! assert_refused {
        ($records:expr, $variant:ident) => {{
            let err = Registry::from_records($records).err();
            assert!(
                matches!(err, Some(RegistryError::$variant { .. })),
                "{err:?}"
            );
        }};
    }

    #[test]
    fn versions_equal_but_for_leading_zeros_are_duplicates() {
        assert_refused!([&A, &PADDED], DuplicateVersion);
    }

    #[test]
    fn enable_plugin_callback_requires_plugin_callback_info() {
        assert_refused!([&CALLBACK], CallbackInfoMissing);
    }

    #[test]
    fn an_invalid_version_is_refused_at_load() {
        assert_refused!([&BAD], InvalidVersion);
    }

    #[test]
    fn ui_hints_are_merged_into_their_input_properties_only() {
        let registry = Registry::from_records([&A]).ok();
        let detail = registry
            .as_ref()
            .and_then(|r| r.get("1.9.0"))
            .map(|v| v.detail().clone());
        let detail = detail.unwrap_or_default();
        assert_eq!(
            detail["inputs"]["properties"]["biz"],
            json!({"title": "Biz", "type": "integer", "ui:component": {"name": "bk-select"}})
        );
        assert!(detail["inputs"]["properties"].get("absent").is_none());
        assert_eq!(detail["forms"], json!({"renderform": null}));
    }
}
