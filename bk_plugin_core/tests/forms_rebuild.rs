//! Forms are part of the build, as a user would see it: a real package with two plugin versions
//! and a `forms/` directory is built with Cargo; adding, changing and removing
//! `forms/<version>/form.js` each change what the rebuilt binary publishes, a form for a version
//! that does not exist fails the build (once, however many plugins there are), and so does a
//! `forms/` directory without the build script that makes Cargo watch it.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The target directory this test was built in (`<target>/<profile>/deps/<test>`), so that only
/// the small package compiles.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("unexpected test location {}", exe.display()))
}

struct Package(PathBuf);

impl Drop for Package {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const MAIN: &str = r#"
use bk_plugin_core::prelude::*;

#[bk_plugin(version = "1.0.0")]
pub struct First;

impl Plugin for First {
    async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
        Ok(Next::Done(Empty {}))
    }
}

#[bk_plugin(version = "1.1.0")]
pub struct Second;

impl Plugin for Second {
    async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
        Ok(Next::Done(Empty {}))
    }
}

fn main() {
    let registry = bk_plugin_core::Registry::load().unwrap_or_else(|e| panic!("{e}"));
    for version in registry.versions() {
        println!("{} {}", version.version(), version.detail()["forms"]["renderform"]);
    }
}
"#;

const BUILD_RS: &str = "fn main() { println!(\"cargo::rerun-if-changed=forms\"); \
                        println!(\"cargo::rustc-env=BK_PLUGIN_FORMS_WATCHED=forms\"); }\n";

impl Package {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("bkp-forms-rebuild-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let package = Self(dir);
        let manifest = format!(
            "[package]\nname = \"bkp-forms-rebuild\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dependencies]\nbk_plugin_core = {{ path = {:?} }}\n\n[workspace]\n",
            workspace_root().join("bk_plugin_core")
        );
        package.write("Cargo.toml", &manifest);
        package.write("src/main.rs", MAIN);
        package.write("build.rs", BUILD_RS);
        package.write("forms/1.0.0/form.js", "A");
        std::fs::copy(
            workspace_root().join("Cargo.lock"),
            package.0.join("Cargo.lock"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        package
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.0.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    fn remove(&self, path: &str) {
        let path = self.0.join(path);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// `cargo run`: the binary's output, or the build's errors.
    fn run(&self) -> Result<String, String> {
        // Cargo compares modification times: let the clock move past the last build.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let output = Command::new(cargo)
            .args(["run", "--offline", "--quiet"])
            .current_dir(&self.0)
            .env("CARGO_TARGET_DIR", target_dir())
            .env_remove("CARGO_MANIFEST_DIR")
            .env_remove("CARGO_PRIMARY_PACKAGE")
            .env_remove("OUT_DIR")
            .output()
            .unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(stderr)
        }
    }
}

#[test]
fn adding_changing_and_removing_a_form_rebuild_and_bad_form_folders_fail_the_build() {
    let package = Package::new();
    assert_eq!(
        package.run().as_deref(),
        Ok("1.1.0 null\n1.0.0 \"A\"\n"),
        "first build"
    );

    package.write("forms/1.1.0/form.js", "B");
    assert_eq!(
        package.run().as_deref(),
        Ok("1.1.0 \"B\"\n1.0.0 \"A\"\n"),
        "a form was added"
    );

    package.write("forms/1.0.0/form.js", "A2");
    assert_eq!(
        package.run().as_deref(),
        Ok("1.1.0 \"B\"\n1.0.0 \"A2\"\n"),
        "a form was changed"
    );

    package.remove("forms/1.1.0");
    assert_eq!(
        package.run().as_deref(),
        Ok("1.1.0 null\n1.0.0 \"A2\"\n"),
        "a form was removed"
    );

    package.write("forms/1.10.0/form.js", "typo");
    let error = package.run().err().unwrap_or_default();
    let expected = "forms/1.10.0/ is the form of version 1.10.0, but no #[bk_plugin(version = \
                    \"1.10.0\")] is declared in src/ (declared: 1.0.0, 1.1.0)";
    assert_eq!(error.matches(expected).count(), 1, "{error}");
    assert_eq!(
        error.matches("error:").count(),
        2,
        "one error and the summary: {error}"
    );
    package.remove("forms/1.10.0");

    // A version folder without form.js: remove the folder to remove a form.
    package.write("forms/1.1.0/notes.txt", "no form here");
    let error = package.run().err().unwrap_or_default();
    let expected = "forms/1.1.0/ has no form.js: put the form in forms/1.1.0/form.js or remove \
                    the directory";
    assert_eq!(error.matches(expected).count(), 1, "{error}");
    package.remove("forms/1.1.0");

    // A build script that watches only itself would stop Cargo watching forms/.
    package.write(
        "build.rs",
        "fn main() { println!(\"cargo::rerun-if-changed=build.rs\"); }\n",
    );
    let error = package.run().err().unwrap_or_default();
    let expected = "this package has a forms/ directory but a build script that does not say it \
                    watches forms/";
    assert_eq!(error.matches(expected).count(), 1, "{error}");

    package.remove("build.rs");
    let error = package.run().err().unwrap_or_default();
    assert_eq!(
        error
            .matches("this package has a forms/ directory but no build script")
            .count(),
        1,
        "{error}"
    );
    package.write("build.rs", BUILD_RS);
    assert_eq!(
        package.run().as_deref(),
        Ok("1.1.0 null\n1.0.0 \"A2\"\n"),
        "back to a good package"
    );
}
