//! Runs `cargo bk-plugin new` as a user would, then builds and tests the project it wrote with
//! this workspace's framework crates patched in, in this workspace's target directory (so only
//! the new project compiles), and checks that the binary name, the port and the commands agree
//! across `Cargo.toml`, `app_desc.yml`, the `Dockerfile` and the pre-release hook script.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

const NAME: &str = "bkp-generated-demo";
const APP_CODE: &str = "bkp-demo-app";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The target directory this test was built in: `<target>/<profile>/deps/<test>`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("unexpected test location {}", exe.display()))
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{e}"));
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn generate(dir: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-bk-plugin"))
        .args(["bk-plugin", "new", NAME, "--app-code", APP_CODE])
        .args(["--description", "Checks \"tickets\" before release"])
        .args(["--maintainers", "alice,bob"])
        .arg("--path")
        .arg(dir)
        .args(extra)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run the generator: {e}"))
}

fn read(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The commands (first word after the binary) the deployment files run.
fn commands_run(text: &str, binary: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut words = line
            .split(|c: char| c.is_whitespace() || c == '"' || c == ',' || c == '[' || c == ']')
            .filter(|w| !w.is_empty());
        while let Some(word) = words.next() {
            let is_binary =
                word.ends_with(&format!("/{binary}")) || word == "\"$BIN\"" || word == "$BIN";
            if is_binary
                && let Some(command) = words.next()
                && command.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            {
                found.push(command.to_string());
            }
        }
    }
    found
}

#[test]
fn a_generated_project_builds_passes_its_tests_and_its_deployment_files_agree() {
    let temp = TempDir::new("bkp-new");
    let dir = temp.0.join(NAME);
    let output = generate(&dir, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("Created {NAME} (app code {APP_CODE})")),
        "{stdout}"
    );

    // Generating again into the same place is refused and leaves the project alone.
    let again = generate(&dir, &[]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists and is not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let cargo_toml = read(&dir, "Cargo.toml");
    let app_desc = read(&dir, "app_desc.yml");
    let dockerfile = read(&dir, "Dockerfile");
    // Forms are compiled in: the build script makes Cargo rebuild when one is added or removed.
    let build_rs = read(&dir, "build.rs");
    assert!(build_rs.contains("println!(\"cargo::rerun-if-changed=forms\");"));
    assert!(build_rs.contains("println!(\"cargo::rustc-env=BK_PLUGIN_FORMS_WATCHED=forms\");"));
    let hook = read(&dir, "bin/sync_apigateway.sh");
    let form = read(&dir, "forms/1.0.0/form.js");

    // One binary name everywhere.
    assert!(
        cargo_toml.contains(&format!("name = \"{NAME}\"")),
        "{cargo_toml}"
    );
    assert!(cargo_toml.contains(&format!(
        "bk_plugin_server = \"{}\"",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(
        cargo_toml.contains(r#"description = "Checks \"tickets\" before release""#),
        "{cargo_toml}"
    );
    assert!(
        app_desc.contains(&format!("bkAppCode: {APP_CODE}")),
        "{app_desc}"
    );
    assert!(app_desc.contains("value: \"alice,bob\""), "{app_desc}");
    // The form names the app through the placeholder the server replaces, not a copy of the code.
    assert!(form.contains("$.atoms[\"__BK_PLUGIN_CODE__\"]"), "{form}");
    assert!(!form.contains(APP_CODE), "{form}");
    assert!(
        dockerfile.contains(&format!("cp target/release/{NAME} /{NAME}")),
        "{dockerfile}"
    );
    assert!(dockerfile.contains(&format!("COPY --from=build /{NAME} /app/{NAME}")));
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(dockerfile.contains("COPY bin/ /app/bin/"));
    assert!(dockerfile.contains("WORKDIR /app"));
    assert!(hook.contains(&format!("$APP_DIR/{NAME}")), "{hook}");
    assert!(app_desc.contains("procCommand: bash bin/sync_apigateway.sh"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("bin/sync_apigateway.sh"))
            .map(|m| m.permissions().mode())
            .unwrap_or(0);
        assert_eq!(mode & 0o111, 0o111, "the hook script is not executable");
    }

    // One port everywhere (the runtime's default, which `serve` also reads from $PORT).
    assert!(app_desc.contains("targetPort: 5000"), "{app_desc}");
    assert!(dockerfile.contains("EXPOSE 5000") && dockerfile.contains("ENV PORT=5000"));
    assert_eq!(cargo_bk_plugin::PORT, 5000);

    // The commands each file runs.
    assert_eq!(commands_run(&app_desc, NAME), ["serve", "worker"]);
    assert!(app_desc.contains(&format!("/app/{NAME} serve --no-worker")));
    assert_eq!(
        commands_run(&hook, NAME),
        ["migrate", "sync-apigw", "fetch-apigw-public-key"]
    );
    assert_eq!(commands_run(&dockerfile, NAME), ["serve"]);

    // Build and test it against this checkout of the framework, in this target directory.
    let patch = format!(
        "\n[patch.crates-io]\nbk_plugin_server = {{ path = {root:?} }}\nbk_plugin_core = {{ path = {core:?} }}\nbk_plugin_macros = {{ path = {macros:?} }}\n",
        root = workspace_root().join("bk_plugin_server"),
        core = workspace_root().join("bk_plugin_core"),
        macros = workspace_root().join("bk_plugin_macros"),
    );
    // The workspace builds the framework with all three database drivers (its tests use them);
    // asking for the same features here reuses that build instead of compiling the SQL stack
    // again for the defaults. Which drivers are in does not change the project's code.
    let framework = format!("bk_plugin_server = \"{}\"", env!("CARGO_PKG_VERSION"));
    let with_workspace_features = cargo_toml.replace(
        &framework,
        &format!(
            "bk_plugin_server = {{ version = \"{}\", features = [\"postgres\"] }}",
            env!("CARGO_PKG_VERSION")
        ),
    );
    assert_ne!(with_workspace_features, cargo_toml, "{cargo_toml}");
    std::fs::write(dir.join("Cargo.toml"), with_workspace_features + &patch)
        .unwrap_or_else(|e| panic!("{e}"));
    // The workspace's lock file pins the same dependency versions, so nothing is downloaded
    // and the dependencies already built for the workspace are reused.
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock"))
        .unwrap_or_else(|e| panic!("{e}"));
    let target = target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tested = Command::new(&cargo)
        .args(["test", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );
    assert!(
        tested.status.success(),
        "cargo test failed in the new project:\n{log}"
    );
    // The version's three harness tests and the three tests of the binary ran and passed.
    assert_eq!(
        log.matches("test result: ok. 3 passed; 0 failed").count(),
        2,
        "{log}"
    );

    // The binary that was built knows every command the deployment files run.
    let binary = target.join("debug").join(NAME);
    let help = Command::new(&binary)
        .arg("--help")
        .env("BKPAAS_ENVIRONMENT", "dev")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let mut commands = commands_run(&app_desc, NAME);
    commands.extend(commands_run(&hook, NAME));
    for command in commands {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "the binary has no `{command}` command:\n{help}"
        );
    }

    // The generated Rust is formatted as `cargo fmt` would.
    let fmt = Command::new("rustfmt")
        .args(["--edition", "2024", "--check"])
        .args([
            "src/main.rs",
            "src/versions/mod.rs",
            "src/versions/v1_0_0.rs",
            "tests/cli.rs",
        ])
        .current_dir(&dir)
        .output();
    if let Ok(fmt) = fmt {
        assert!(
            fmt.status.success(),
            "generated code is not rustfmt-clean:\n{}",
            String::from_utf8_lossy(&fmt.stdout)
        );
    }
}

#[test]
fn without_a_name_and_without_a_terminal_the_generator_says_what_is_missing() {
    let output = Command::new(env!("CARGO_BIN_EXE_cargo-bk-plugin"))
        .args(["bk-plugin", "new"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("give the project name: cargo bk-plugin new <name>"),
        "{stderr}"
    );
}

#[test]
fn a_bad_app_code_is_refused_before_anything_is_written() {
    let temp = TempDir::new("bkp-new-bad");
    let dir = temp.0.join("x");
    let output = Command::new(env!("CARGO_BIN_EXE_cargo-bk-plugin"))
        .args([
            "bk-plugin",
            "new",
            "good-name",
            "--app-code",
            "Bad Code",
            "--path",
        ])
        .arg(&dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("app code \"Bad Code\" is not usable"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!dir.exists());
}

#[test]
fn with_yes_every_value_not_given_takes_its_default() {
    let temp = TempDir::new("bkp-new-yes");
    let dir = temp.0.join("p");
    let output = Command::new(env!("CARGO_BIN_EXE_cargo-bk-plugin"))
        .args(["bk-plugin", "new", "ticket-checker", "--yes", "--path"])
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let app_desc = read(&dir, "app_desc.yml");
    assert!(app_desc.contains("bkAppCode: ticket-checker"), "{app_desc}");
    assert!(app_desc.contains("value: \"admin\""), "{app_desc}");
    let cargo_toml = read(&dir, "Cargo.toml");
    assert!(
        cargo_toml.contains("description = \"The ticket-checker plugin.\""),
        "{cargo_toml}"
    );
    let version = read(&dir, "src/versions/v1_0_0.rs");
    assert!(
        version.contains("pub struct TicketCheckerPlugin;"),
        "{version}"
    );
}

#[test]
fn a_framework_path_without_the_framework_is_refused() {
    let temp = TempDir::new("bkp-new-fw");
    let output = Command::new(env!("CARGO_BIN_EXE_cargo-bk-plugin"))
        .args(["new", "demo", "--yes", "--framework-path"])
        .arg(&temp.0)
        .arg("--path")
        .arg(temp.0.join("demo"))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("is not a framework checkout"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!temp.0.join("demo").exists());
}

#[test]
fn in_a_terminal_it_asks_for_each_value_and_again_after_a_bad_one() {
    // `script` (util-linux) gives the generator a terminal; our answers arrive on it.
    if Command::new("script").arg("--version").output().is_err() {
        println!("skipped: needs `script` from util-linux to provide a terminal");
        return;
    }
    let temp = TempDir::new("bkp-new-tty");
    let mut child = Command::new("script")
        .args([
            "-qec",
            concat!(env!("CARGO_BIN_EXE_cargo-bk-plugin"), " new"),
            "/dev/null",
        ])
        .current_dir(&temp.0)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write as _;
        let _ = stdin.write_all(b"Bad Name\nasked-demo\n\nAsked for in a terminal\nalice\n");
    }
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    for prompt in [
        "Project name: ",
        "project name \"Bad Name\" is not usable",
        "PaaS app code [asked-demo]: ",
        "Description [The asked-demo plugin.]: ",
        "API gateway maintainers [admin]: ",
        "Created asked-demo (app code asked-demo)",
    ] {
        assert!(text.contains(prompt), "{prompt:?} missing:\n{text}");
    }
    let dir = temp.0.join("asked-demo");
    assert!(read(&dir, "app_desc.yml").contains("value: \"alice\""));
    assert!(read(&dir, "Cargo.toml").contains("description = \"Asked for in a terminal\""));
}
