//! Writes a new BlueKing plugin project: the files under `template/` (embedded at compile time)
//! with their `{{placeholders}}` replaced by the project's name, app code, description, gateway
//! maintainers and where the framework comes from (`source.rs`). The `cargo bk-plugin new`
//! command (`main.rs`) asks for those values; this library checks and renders them.

mod names;
mod source;

use std::path::{Path, PathBuf};

pub use names::{check_app_code, check_name, parse_maintainers};
pub use source::{Framework, GitRef, default_source, is_fetchable_url, own_checkout};

/// The port the generated `Dockerfile`, `app_desc.yml` and the runtime agree on.
pub const PORT: u16 = 5000;

/// The framework version generated projects depend on (this crate's own version).
pub const FRAMEWORK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The oldest Rust the framework builds with; the Dockerfile's build image uses it too.
pub const RUST_VERSION: &str = env!("CARGO_PKG_RUST_VERSION");

/// The default gateway maintainer, as in the Python and Go templates.
pub const DEFAULT_MAINTAINER: &str = "admin";

/// A template: where it goes in the project, its text, and whether it is a script.
struct Template {
    path: &'static str,
    text: &'static str,
    executable: bool,
}

const fn file(path: &'static str, text: &'static str) -> Template {
    Template {
        path,
        text,
        executable: false,
    }
}

const TEMPLATES: &[Template] = &[
    file("Cargo.toml", include_str!("../template/Cargo.toml.tmpl")),
    file("src/main.rs", include_str!("../template/src/main.rs.tmpl")),
    file(
        "src/versions/mod.rs",
        include_str!("../template/src/versions/mod.rs.tmpl"),
    ),
    file(
        "src/versions/v1_0_0.rs",
        include_str!("../template/src/versions/v1_0_0.rs.tmpl"),
    ),
    file(
        "forms/1.0.0/form.js",
        include_str!("../template/forms/1.0.0/form.js.tmpl"),
    ),
    file("build.rs", include_str!("../template/build.rs.tmpl")),
    file(
        "tests/cli.rs",
        include_str!("../template/tests/cli.rs.tmpl"),
    ),
    file(
        "app_desc.yml",
        include_str!("../template/app_desc.yml.tmpl"),
    ),
    file("Dockerfile", include_str!("../template/Dockerfile.tmpl")),
    file(
        ".dockerignore",
        include_str!("../template/dockerignore.tmpl"),
    ),
    file(".gitignore", include_str!("../template/gitignore.tmpl")),
    Template {
        path: "bin/sync_apigateway.sh",
        text: include_str!("../template/bin/sync_apigateway.sh.tmpl"),
        executable: true,
    },
    file("README.md", include_str!("../template/README.md.tmpl")),
];

/// Why a project cannot be generated.
#[derive(Debug, thiserror::Error)]
pub enum NewError {
    /// The project name is not a usable package and binary name.
    #[error(
        "project name {0:?} is not usable: use 1-64 lowercase letters, digits, `-` or `_`, starting with a letter, and not a Rust keyword or reserved name"
    )]
    Name(String),
    /// The app code is not a usable PaaS app code.
    #[error(
        "app code {0:?} is not usable: use 1-32 lowercase letters, digits, `-` or `_`, starting with a letter"
    )]
    AppCode(String),
    /// The description would not fit on one line.
    #[error(
        "the description must be one line of at most 200 characters without control characters"
    )]
    Description,
    /// A maintainer name is empty or has characters a user name cannot have.
    #[error(
        "gateway maintainer {0:?} is not a user name: give comma-separated names of letters, digits, `_`, `-`, `.` or `@`"
    )]
    Maintainer(String),
    /// The target directory already has files.
    #[error("{0} already exists and is not empty: choose another name or --path")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

/// The values a project is generated from, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    name: String,
    app_code: String,
    description: String,
    maintainers: Vec<String>,
    framework: Framework,
    lock_file: Option<String>,
}

/// One generated file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// Its path inside the project, with `/` separators.
    pub path: &'static str,
    /// Its contents.
    pub contents: String,
    /// Whether it is a script (written with mode 755 on Unix).
    pub executable: bool,
}

impl Project {
    /// Checks the values; the error says which one is wrong and what would do.
    pub fn new(
        name: &str,
        app_code: &str,
        description: &str,
        maintainers: &str,
        framework: Framework,
    ) -> Result<Self, NewError> {
        check_name(name)?;
        check_app_code(app_code)?;
        let description = description.trim();
        if description.chars().count() > 200 || description.chars().any(char::is_control) {
            return Err(NewError::Description);
        }
        let description = if description.is_empty() {
            format!("The {name} plugin.")
        } else {
            description.to_string()
        };
        Ok(Self {
            name: name.to_string(),
            app_code: app_code.to_string(),
            description,
            maintainers: parse_maintainers(maintainers)?,
            framework,
            lock_file: None,
        })
    }

    /// Starts the project with this `Cargo.lock` (the framework checkout's own): the dependency
    /// versions the framework was tested with, which Cargo then trims to what the project uses.
    #[must_use]
    pub fn with_lock_file(mut self, contents: String) -> Self {
        self.lock_file = Some(contents);
        self
    }

    /// Where the project takes the framework from.
    pub fn framework(&self) -> &Framework {
        &self.framework
    }

    /// The description (`The <name> plugin.` when none was given).
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The package and binary name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's type name in `src/versions/v1_0_0.rs`: the name in CamelCase, ending in
    /// `Plugin` (`my-checker` → `MyCheckerPlugin`, `ticket-plugin` → `TicketPlugin`).
    pub fn type_name(&self) -> String {
        let mut camel: String = self
            .name
            .split(['-', '_'])
            .filter(|part| !part.is_empty())
            .map(|part| {
                let mut chars = part.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        if camel == "Plugin" || !camel.ends_with("Plugin") {
            camel.push_str("Plugin");
        }
        camel
    }

    fn placeholders(&self) -> Vec<(&'static str, String)> {
        let quoted = self.description.replace('\\', "\\\\").replace('"', "\\\"");
        let (source_comment, source_text, dockerfile_note) = self.framework_notes();
        let description_doc = self.description.clone();
        vec![
            ("project_name", self.name.clone()),
            ("type_name", self.type_name()),
            ("app_code", self.app_code.clone()),
            ("description", description_doc.clone()),
            ("description_doc", description_doc),
            ("description_toml", quoted.clone()),
            ("description_rust", quoted),
            ("maintainers", self.maintainers.join(",")),
            ("framework_version", FRAMEWORK_VERSION.to_string()),
            ("framework_dependency", self.framework.dependency_line()),
            ("framework_comment", source_comment),
            ("framework_source", source_text),
            ("dockerfile_note", dockerfile_note),
            ("rust_version", RUST_VERSION.to_string()),
        ]
    }

    /// What `Cargo.toml` (a comment), the README (a paragraph) and the `Dockerfile` (a comment,
    /// empty when the image can build the project) say about the framework's source.
    fn framework_notes(&self) -> (String, String, String) {
        let described = self.framework.describe();
        if self.framework.builds_in_image() {
            let fetch = match &self.framework {
                Framework::Git { .. } => {
                    " The image build fetches it from there too, so the build machine must be able to read that repository."
                }
                _ => "",
            };
            (
                format!("# The framework: {described} (README.md says how to switch)."),
                format!("This project takes {described}.{fetch}"),
                String::new(),
            )
        } else {
            (
                format!(
                    "# The framework: {described}. The Dockerfile cannot build this: switch\n# to a git repository or crates.io before deploying (README.md says how)."
                ),
                format!(
                    "This project takes {described}. **Its Dockerfile cannot build it**: the image build sees only this directory, and the framework is outside it. It builds and tests on this machine; switch to a git repository or to crates.io (below) before deploying to PaaS."
                ),
                format!(
                    "# NOTE: Cargo.toml takes the framework from outside this directory ({described}),\n# which this build cannot see: switch it to a git repository or crates.io first (README.md).\n"
                ),
            )
        }
    }

    /// Every file of the project, rendered (and `Cargo.lock` when one was given).
    pub fn files(&self) -> Vec<GeneratedFile> {
        let values = self.placeholders();
        let mut files: Vec<GeneratedFile> = TEMPLATES
            .iter()
            .map(|t| GeneratedFile {
                path: t.path,
                contents: render(t.text, &values),
                executable: t.executable,
            })
            .collect();
        if let Some(lock) = &self.lock_file {
            files.push(GeneratedFile {
                path: "Cargo.lock",
                contents: lock.clone(),
                executable: false,
            });
        }
        files
    }

    /// Writes the project into `dir`, which must not exist or be empty. Nothing is left
    /// half-written on failure: the files go to a sibling temporary directory first, which is
    /// then renamed into place.
    pub fn write(&self, dir: &Path) -> Result<(), NewError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| NewError::Io { path, source }
        };
        let existed = dir.exists();
        if existed {
            let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
            if entries.next().is_some() {
                return Err(NewError::Exists(dir.to_path_buf()));
            }
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(io(&parent))?;
        let staging = parent.join(format!(".{}.new-{}", self.name, std::process::id()));
        let result = self.write_files(&staging);
        let result = result.and_then(|()| {
            if existed {
                std::fs::remove_dir(dir).map_err(io(dir))?;
            }
            std::fs::rename(&staging, dir).map_err(io(dir))
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        result
    }

    fn write_files(&self, root: &Path) -> Result<(), NewError> {
        for generated in self.files() {
            let path = root.join(generated.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| NewError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            std::fs::write(&path, &generated.contents).map_err(|source| NewError::Io {
                path: path.clone(),
                source,
            })?;
            #[cfg(unix)]
            if generated.executable {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(
                    |source| NewError::Io {
                        path: path.clone(),
                        source,
                    },
                )?;
            }
        }
        Ok(())
    }
}

/// Replaces every `{{key}}` of `values` in `template`.
fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(name: &str, description: &str) -> Project {
        Project::new(
            name,
            "demo-app",
            description,
            "alice, bob",
            Framework::Registry("0.1.0".into()),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_placeholder_in_every_template_is_filled() {
        let files = project("demo", "says \"hi\" \\ back").files();
        assert_eq!(files.len(), TEMPLATES.len());
        for generated in &files {
            assert!(
                !generated.contents.contains("{{"),
                "{} keeps a placeholder:\n{}",
                generated.path,
                generated.contents
            );
        }
        let cargo = &files[0].contents;
        assert!(
            cargo.contains(r#"description = "says \"hi\" \\ back""#),
            "{cargo}"
        );
        assert!(cargo.contains(r#"bk_plugin_server = "0.1.0""#), "{cargo}");
    }

    #[test]
    fn a_local_framework_checkout_becomes_a_path_dependency() {
        let project = Project::new(
            "demo",
            "demo",
            "",
            "admin",
            Framework::Path(PathBuf::from("/src/bk-plugin-framework")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let cargo = &project.files()[0].contents;
        assert!(
            cargo.contains(
                r#"bk_plugin_server = { path = "/src/bk-plugin-framework/bk_plugin_server" }"#
            ),
            "{cargo}"
        );
        assert!(
            project.files()[1]
                .contents
                .starts_with("//! The demo plugin.\n")
        );
    }

    #[test]
    fn names_app_codes_and_maintainers_are_checked() {
        for bad in [
            "",
            "1abc",
            "My-Plugin",
            "fn",
            "test",
            "a b",
            "x".repeat(65).as_str(),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["demo", "my-plugin", "ticket_v2"] {
            assert!(check_name(good).is_ok(), "{good:?} refused");
        }
        assert!(check_app_code("bk-demo").is_ok());
        assert!(check_app_code("BK").is_err());
        assert_eq!(
            parse_maintainers("alice, bob@corp").ok(),
            Some(vec!["alice".to_string(), "bob@corp".to_string()])
        );
        let message = parse_maintainers("alice,,bob")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("gateway maintainer \"\""), "{message}");
        let multi_line = Project::new("demo", "demo", "a\nb", "admin", Framework::Path(".".into()));
        assert!(matches!(multi_line, Err(NewError::Description)));
    }

    #[test]
    fn the_plugin_type_is_the_name_in_camel_case_ending_in_plugin() {
        assert_eq!(project("my-checker", "").type_name(), "MyCheckerPlugin");
        assert_eq!(project("ticket_plugin", "").type_name(), "TicketPlugin");
        assert_eq!(project("plugin", "").type_name(), "PluginPlugin");
    }

    #[test]
    fn writing_into_a_directory_with_files_is_refused_and_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("bkp-new-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join("keep.txt"), "mine").unwrap_or_else(|e| panic!("{e}"));
        let result = project("demo", "").write(&dir);
        assert!(matches!(result, Err(NewError::Exists(_))), "{result:?}");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(names, ["keep.txt"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
