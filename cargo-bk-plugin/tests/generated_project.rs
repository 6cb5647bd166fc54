//! Runs `cargo bk-plugin new` as a user would, then builds and tests the project it wrote — with
//! the default framework source (this checkout) and with a git repository the test makes from
//! this workspace — in this workspace's target directory with its `Cargo.lock` (so only the new
//! project and the framework crates compile), and checks that the binary name, the port and the
//! commands agree across `Cargo.toml`, `app_desc.yml`, the `Dockerfile` and the pre-release hook
//! script, and that each framework flag writes its dependency line.
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

/// Says a test did not run and why, past the harness's capture; with `BKP_TEST_NO_SKIP` set
/// (as CI sets it) a skip is a failure instead.
fn report_skip(reason: &str) {
    use std::io::Write as _;
    assert!(
        std::env::var_os("BKP_TEST_NO_SKIP").is_none(),
        "BKP_TEST_NO_SKIP is set and this test would skip: {reason}"
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "skipped: {reason}");
    let _ = out.flush();
}

/// Runs `cargo test` in a generated project, in this workspace's target directory, and returns
/// its output; fails the test when it fails. The workspace builds the framework with all three
/// database drivers (its tests use them): asking for the same features here reuses that build
/// instead of compiling the SQL stack again for the defaults. Which drivers are in does not
/// change the project's code. A project without a `Cargo.lock` gets the workspace's, which pins
/// the same dependency versions, so nothing is downloaded.
fn build_and_test(dir: &Path, offline: bool) -> String {
    let manifest = read(dir, "Cargo.toml");
    let line = manifest
        .lines()
        .find(|l| l.starts_with("bk_plugin_server = "))
        .unwrap_or_else(|| panic!("no bk_plugin_server line:\n{manifest}"));
    let with_features = match line.strip_suffix(" }") {
        Some(table) => format!("{table}, features = [\"postgres\"] }}"),
        None => line.replace(" = ", " = { version = ") + ", features = [\"postgres\"] }",
    };
    std::fs::write(
        dir.join("Cargo.toml"),
        manifest.replace(line, &with_features),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    if !dir.join("Cargo.lock").exists() {
        std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock"))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command.args(["test", "--quiet"]);
    if offline {
        command.arg("--offline");
    }
    let tested = command
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target_dir())
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
    log
}

/// Runs `git` with a fixed identity and dates, so the same files always make the same commit.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=bkp", "-c", "user.email=bkp@localhost"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "core.hooksPath=/dev/null",
        ])
        .args(args)
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A git repository holding this workspace's framework crates as they are on disk (committed or
/// not) and `docs/` (bk_plugin_server's doc includes it), under a workspace manifest listing only
/// those crates; returns its `file://` URL and commit. It lives at a fixed place in the target
/// directory and its commit depends only on the files, so Cargo reuses the framework it built
/// from it until a framework file changes. `None` when git or the checkout's file list is missing.
fn framework_repository() -> Option<(String, String)> {
    let root = workspace_root();
    let listed = git(
        &root,
        &[
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            "--",
            "bk_plugin_macros",
            "bk_plugin_core",
            "bk_plugin_server",
            "docs",
        ],
    )?;
    let repo = target_dir().join("bkp-generator-git").join("framework");
    let _ = std::fs::remove_dir_all(&repo);
    for file in listed.lines() {
        let from = root.join(file);
        if !from.is_file() {
            continue; // deleted but not yet committed
        }
        let to = repo.join(file);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    let mut manifest = String::new();
    let mut in_list = false;
    for line in std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("{e}"))
        .lines()
    {
        if in_list {
            in_list = line.trim() != "]";
            continue;
        }
        if let Some(key) = ["members", "default-members"]
            .into_iter()
            .find(|key| line.starts_with(&format!("{key} = [")))
        {
            manifest.push_str(&format!(
                "{key} = [\"bk_plugin_macros\", \"bk_plugin_core\", \"bk_plugin_server\"]\n"
            ));
            in_list = !line.ends_with(']');
            continue;
        }
        manifest.push_str(line);
        manifest.push('\n');
    }
    std::fs::write(repo.join("Cargo.toml"), manifest).unwrap_or_else(|e| panic!("{e}"));
    git(&repo, &["init", "--quiet"])?;
    git(&repo, &["add", "--all"])?;
    git(&repo, &["commit", "--quiet", "--message", "the framework"])?;
    let commit = git(&repo, &["rev-parse", "HEAD"])?;
    Some((format!("file://{}", repo.display()), commit))
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

    // The default source: this checkout (by path, as it has no fetchable origin here), or the
    // commit it was built from when its origin is a network URL it was pushed to.
    let (default, _) = cargo_bk_plugin::default_source(env!("CARGO_PKG_VERSION"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        cargo_toml.contains(&default.dependency_line()),
        "{cargo_toml}"
    );
    assert!(
        stderr.contains(&format!("Framework: {} (the default: ", default.describe())),
        "{stderr}"
    );
    let readme = read(&dir, "README.md");
    assert!(
        readme.contains(&format!("This project takes {}", default.describe())),
        "{readme}"
    );
    // It starts from the checkout's lock file, the versions the framework is tested with.
    assert!(read(&dir, "Cargo.lock").contains("name = \"sea-orm\""));
    if let cargo_bk_plugin::Framework::Path(root) = &default {
        assert_eq!(root, &workspace_root());
        assert!(
            stderr.contains("warning: the generated Dockerfile cannot build this project"),
            "{stderr}"
        );
        assert!(
            readme.contains("**Its Dockerfile cannot build it**"),
            "{readme}"
        );
        assert!(dockerfile.contains("# NOTE: Cargo.toml takes the framework from outside"));
    }

    // Build and test it as generated, in this target directory.
    let target = target_dir();
    let log = build_and_test(&dir, matches!(default, cargo_bk_plugin::Framework::Path(_)));
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

#[test]
fn a_project_on_a_git_repository_at_a_commit_builds_and_passes_its_tests() {
    let Some((url, commit)) = framework_repository() else {
        report_skip("needs git (apt-get install git) and a git checkout of the framework");
        return;
    };
    let temp = TempDir::new("bkp-new-git");
    let dir = temp.0.join(NAME);
    let output = generate(&dir, &["--git", &url, "--rev", &commit]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let cargo_toml = read(&dir, "Cargo.toml");
    assert!(
        cargo_toml.contains(&format!(
            "bk_plugin_server = {{ git = \"{url}\", rev = \"{commit}\" }}"
        )),
        "{cargo_toml}"
    );
    assert!(
        stderr.contains(&format!(
            "Framework: bk_plugin_server from the git repository {url} at commit {commit}\n"
        )),
        "{stderr}"
    );
    // A file:// repository is on this machine only: the image build could not fetch it.
    assert!(
        stderr.contains("warning: the generated Dockerfile cannot build this project"),
        "{stderr}"
    );
    // Nothing to seed the lock from: the repository's dependencies resolve on the first build.
    assert!(!dir.join("Cargo.lock").exists());
    let log = build_and_test(&dir, false);
    assert_eq!(
        log.matches("test result: ok. 3 passed; 0 failed").count(),
        2,
        "{log}"
    );
    let lock = read(&dir, "Cargo.lock");
    assert!(
        lock.contains(&format!("source = \"git+{url}?rev={commit}#{commit}\"")),
        "{lock}"
    );
}

#[test]
fn each_framework_flag_writes_its_source_into_cargo_toml_and_the_readme() {
    let temp = TempDir::new("bkp-new-flags");
    let url = "https://git.example.com/bk/bk-plugin-framework-rust.git";
    let version = env!("CARGO_PKG_VERSION");
    let root = workspace_root();
    let cases: [(&str, Vec<String>, String, bool); 4] = [
        (
            "tag",
            vec!["--git".into(), url.into(), "--tag".into(), "v0.1.0".into()],
            format!("bk_plugin_server = {{ git = \"{url}\", tag = \"v0.1.0\" }}"),
            true,
        ),
        (
            "branch",
            vec!["--git".into(), url.into()],
            format!("bk_plugin_server = {{ git = \"{url}\" }}"),
            true,
        ),
        (
            "registry",
            vec!["--crates-io".into()],
            format!("bk_plugin_server = \"{version}\""),
            true,
        ),
        (
            "path",
            vec!["--framework-path".into(), root.display().to_string()],
            format!(
                "bk_plugin_server = {{ path = \"{}\" }}",
                root.join("bk_plugin_server").display()
            ),
            false,
        ),
    ];
    for (label, flags, line, in_image) in cases {
        let dir = temp.0.join(label);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let output = generate(&dir, &flags);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{label}: {stderr}");
        let cargo_toml = read(&dir, "Cargo.toml");
        assert!(cargo_toml.contains(&line), "{label}: {cargo_toml}");
        let readme = read(&dir, "README.md");
        let dockerfile = read(&dir, "Dockerfile");
        let warned = stderr.contains("warning: the generated Dockerfile cannot build this project");
        assert_eq!(warned, !in_image, "{label}: {stderr}");
        assert_eq!(
            readme.contains("**Its Dockerfile cannot build it**"),
            !in_image,
            "{label}: {readme}"
        );
        assert_eq!(dockerfile.contains("# NOTE:"), !in_image, "{label}");
        // Only a checkout has a lock file to start from.
        assert_eq!(dir.join("Cargo.lock").exists(), label == "path", "{label}");
        // The README says how to switch to each of the other sources.
        for switch in [
            "--git <url> --rev <commit>",
            "--framework-path",
            "--crates-io",
        ] {
            assert!(readme.contains(switch), "{label}: {switch}");
        }
    }
    let readme = read(&temp.0.join("tag"), "README.md");
    assert!(
        readme.contains(&format!(
            "This project takes bk_plugin_server from the git repository {url} at tag v0.1.0."
        )),
        "{readme}"
    );
}

#[test]
fn contradictory_or_malformed_framework_flags_are_refused_before_anything_is_written() {
    let temp = TempDir::new("bkp-new-badflags");
    let dir = temp.0.join("p");
    for (flags, expected) in [
        (&["--rev", "abc"][..], "--git <URL>"),
        (
            &["--git", "https://h/r.git", "--rev", "a", "--tag", "b"][..],
            "cannot be used with",
        ),
        (
            &["--git", "https://h/r.git", "--crates-io"][..],
            "cannot be used with",
        ),
        (&["--git", "../framework"][..], "is not a URL Cargo takes"),
    ] {
        let output = generate(&dir, flags);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flags:?} accepted");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
        assert!(!dir.exists(), "{flags:?} wrote the project");
    }
}
