//! Every Rust code block of `docs/authoring.md` compiles, and its tests pass, in a crate of its
//! own whose dependencies are exactly the `Cargo.toml` the guide documents: `bk_plugin_server`,
//! plus `tokio` for `#[tokio::test]`. (A doc-test of this crate would also see this crate's own
//! dependencies, which is how examples using `serde_json::` and `tracing::` slipped through.)
//!
//! One crate holds every block as a module of its own (`src/block_NN.rs`), so the blocks stay
//! independent but compile and link once; it builds in this workspace's target directory with
//! the framework patched in, so only the blocks themselves are compiled.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

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

/// The fenced code blocks of a Markdown text: (info string, body).
fn code_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match current.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    current = Some((info.trim().to_string(), String::new()));
                }
            }
            Some((info, body)) if trimmed.starts_with("```") => blocks.push((info, body)),
            Some((info, mut body)) => {
                body.push_str(line);
                body.push('\n');
                current = Some((info, body));
            }
        }
    }
    blocks
}

/// A Rust block as rustdoc would compile it: `# ` lines are hidden, not removed.
fn unhide(body: &str) -> String {
    body.lines()
        .map(|l| match l.trim_start() {
            "#" => "",
            t if t.starts_with("# ") => &t[2..],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_version() -> String {
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("no rust-version in the workspace Cargo.toml"))
}

#[test]
fn every_rust_block_of_the_author_guide_compiles_with_only_the_documented_dependencies() {
    let guide = std::fs::read_to_string(workspace_root().join("docs/authoring.md"))
        .unwrap_or_else(|e| panic!("{e}"));
    let blocks = code_blocks(&guide);
    let manifest = blocks
        .iter()
        .find(|(info, body)| info == "toml" && body.contains("[dependencies]"))
        .map(|(_, body)| body.clone())
        .unwrap_or_else(|| panic!("the guide documents no Cargo.toml [dependencies]"));
    // As rustdoc would: a block's `fn main` runs, unless the block is `no_run`.
    let rust: Vec<String> = blocks
        .iter()
        .filter(|(info, _)| info.starts_with("rust") && !info.contains("ignore"))
        .map(|(info, body)| {
            let mut code = unhide(body);
            if !info.contains("no_run") && code.contains("fn main()") {
                code.push_str("\n#[test]\nfn the_blocks_main_runs() {\n    main()\n}\n");
            }
            code
        })
        .collect();
    assert!(rust.len() >= 8, "only {} Rust blocks found", rust.len());

    // The guide states the minimum Rust version, and it is the workspace's.
    let rust_version = rust_version();
    assert!(
        guide.contains(&format!("Rust {rust_version}")),
        "the guide does not state the minimum Rust version {rust_version}"
    );

    // The documented dependencies, and nothing else.
    let declared: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name.trim()))
        .collect();
    assert_eq!(declared, ["bk_plugin_server", "tokio"], "{manifest}");

    let dir = std::env::temp_dir().join(format!("bkp-guide-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap_or_else(|e| panic!("{e}"));
    let root = workspace_root();
    // Same features as this workspace's build of the framework, so nothing is rebuilt; the
    // blocks do not depend on which databases are compiled in.
    let manifest = manifest.replace(
        "bk_plugin_server = \"0.1\"",
        "bk_plugin_server = { version = \"0.1\", features = [\"postgres\"] }",
    );
    let cargo_toml = format!(
        "[package]\nname = \"bkp-guide-blocks\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
         rust-version = \"{rust_version}\"\npublish = false\n\n{manifest}\n\
         [patch.crates-io]\nbk_plugin_server = {{ path = {server:?} }}\n\
         bk_plugin_core = {{ path = {core:?} }}\nbk_plugin_macros = {{ path = {macros:?} }}\n\n\
         [profile.dev.package.\"*\"]\ndebug = false\n",
        server = root.join("bk_plugin_server"),
        core = root.join("bk_plugin_core"),
        macros = root.join("bk_plugin_macros"),
    );
    std::fs::write(dir.join("Cargo.toml"), cargo_toml).unwrap_or_else(|e| panic!("{e}"));
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut lib = String::from("#![allow(dead_code, unused_imports, unreachable_pub)]\n");
    for (n, body) in rust.iter().enumerate() {
        let module = format!("block_{:02}", n + 1);
        std::fs::write(dir.join("src").join(format!("{module}.rs")), body)
            .unwrap_or_else(|e| panic!("{e}"));
        lib.push_str(&format!("mod {module};\n"));
    }
    std::fs::write(dir.join("src/lib.rs"), lib).unwrap_or_else(|e| panic!("{e}"));

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let tested = Command::new(cargo)
        .args(["test", "--offline", "--lib"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .env_remove("RUSTFLAGS")
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&tested.stdout),
        String::from_utf8_lossy(&tested.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        tested.status.success(),
        "a block of docs/authoring.md does not compile or its test fails:\n{log}"
    );
    assert!(log.contains("test result: ok."), "{log}");
}
