//! Where a generated project takes `bk_plugin_server` from: crates.io, a git repository (at a
//! commit, a tag or its default branch) or a local checkout; the dependency line each writes;
//! whether the generated Dockerfile can build it; and the default, which is the checkout this
//! generator was built from (see `docs/new-project.md` for why).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Which commit of a git repository a git dependency takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRef {
    /// The repository's default branch (`Cargo.lock` then pins the commit).
    DefaultBranch,
    /// A commit id (`rev = "..."`).
    Rev(String),
    /// A tag (`tag = "..."`).
    Tag(String),
}

/// Where the generated `Cargo.toml` takes `bk_plugin_server` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framework {
    /// crates.io, `bk_plugin_server = "<version>"`.
    Registry(String),
    /// A git repository holding the framework's workspace.
    Git {
        /// The repository's URL as Cargo takes it (`https://...`, `ssh://...`, `file://...`).
        url: String,
        /// Which commit.
        reference: GitRef,
    },
    /// A local checkout of the framework (the directory holding `bk_plugin_server/`).
    Path(PathBuf),
}

/// Escapes a value for a TOML basic string.
fn toml_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Framework {
    /// The `bk_plugin_server = ...` line of the generated `Cargo.toml`.
    pub fn dependency_line(&self) -> String {
        match self {
            Self::Registry(version) => format!("bk_plugin_server = {}", toml_string(version)),
            Self::Git { url, reference } => {
                let pin = match reference {
                    GitRef::DefaultBranch => String::new(),
                    GitRef::Rev(rev) => format!(", rev = {}", toml_string(rev)),
                    GitRef::Tag(tag) => format!(", tag = {}", toml_string(tag)),
                };
                format!("bk_plugin_server = {{ git = {}{pin} }}", toml_string(url))
            }
            Self::Path(root) => format!(
                "bk_plugin_server = {{ path = {} }}",
                toml_string(&root.join("bk_plugin_server").display().to_string())
            ),
        }
    }

    /// Whether the generated Dockerfile (`COPY . .` of the project, then `cargo build`) can
    /// build the project: not when the framework is a directory outside the project, nor from a
    /// repository the build cannot fetch without this machine's files or keys (`file://`, ssh).
    pub fn builds_in_image(&self) -> bool {
        match self {
            Self::Registry(_) => true,
            Self::Git { url, .. } => is_fetchable_url(url),
            Self::Path(_) => false,
        }
    }

    /// One sentence naming the source, for the generator's output and the generated README.
    pub fn describe(&self) -> String {
        match self {
            Self::Registry(version) => format!("bk_plugin_server {version} from crates.io"),
            Self::Git { url, reference } => match reference {
                GitRef::DefaultBranch => {
                    format!("bk_plugin_server from the git repository {url} (its default branch)")
                }
                GitRef::Rev(rev) => {
                    format!("bk_plugin_server from the git repository {url} at commit {rev}")
                }
                GitRef::Tag(tag) => {
                    format!("bk_plugin_server from the git repository {url} at tag {tag}")
                }
            },
            Self::Path(root) => format!(
                "bk_plugin_server from the local checkout {}",
                root.display()
            ),
        }
    }
}

/// The framework checkout this generator was compiled from, if it still exists: the parent of
/// this crate's directory when it holds `bk_plugin_server/Cargo.toml`. A generator installed
/// from crates.io has none (its crate directory sits among other downloaded crates).
pub fn own_checkout() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("bk_plugin_server/Cargo.toml")
        .is_file()
        .then(|| root.to_path_buf())
}

/// The default source and why it was chosen (one line for the user).
///
/// - No checkout (installed from crates.io): crates.io at this generator's version.
/// - A checkout whose `origin` is an `https://`, `http://` or `git://` URL, whose commit is on
///   one of origin's branches as last fetched, and whose framework crates have no uncommitted
///   changes: that repository at that commit — it builds on any machine and in the image.
/// - Any other checkout (origin a local path or an ssh URL, the commit not pushed, local
///   changes, no git): the checkout by path — it builds here, not in the image.
pub fn default_source(version: &str) -> (Framework, String) {
    let Some(root) = own_checkout() else {
        return (
            Framework::Registry(version.to_string()),
            "the generator was not built from a checkout of the framework".to_string(),
        );
    };
    match pushed_commit(&root) {
        Ok((url, commit)) => (
            Framework::Git {
                url,
                reference: GitRef::Rev(commit),
            },
            format!(
                "the commit of the checkout {} this generator was built from, as pushed to its origin",
                root.display()
            ),
        ),
        Err(why) => (
            Framework::Path(root.clone()),
            format!(
                "this generator was built from the checkout {}, and {why}",
                root.display()
            ),
        ),
    }
}

/// Runs `git -C root args...` and returns its trimmed standard output when it succeeds.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Origin's URL and the checkout's commit when another machine can fetch that commit from a
/// network URL; otherwise the reason, worded to follow "and".
fn pushed_commit(root: &Path) -> Result<(String, String), String> {
    let url =
        git(root, &["remote", "get-url", "origin"]).ok_or("it has no git remote named origin")?;
    if !is_fetchable_url(&url) {
        return Err(format!(
            "its origin {url} is not an https://, http:// or git:// URL another machine could fetch from"
        ));
    }
    let commit = git(root, &["rev-parse", "--verify", "HEAD^{commit}"])
        .ok_or("git cannot read its commit")?;
    let on_origin = git(
        root,
        &[
            "for-each-ref",
            "--contains",
            &commit,
            "--format=%(refname)",
            "refs/remotes/origin/",
        ],
    )
    .is_some_and(|refs| !refs.is_empty());
    if !on_origin {
        return Err(format!(
            "its commit {commit} is not on any branch of origin {url} (push it first)"
        ));
    }
    let changes = git(
        root,
        &[
            "status",
            "--porcelain",
            "--",
            "bk_plugin_macros",
            "bk_plugin_core",
            "bk_plugin_server",
        ],
    )
    .ok_or("git cannot read its status")?;
    if !changes.is_empty() {
        return Err("its framework crates have uncommitted changes".to_string());
    }
    Ok((url, commit))
}

/// Whether a URL names a repository that any machine (and the image build) can fetch without
/// credentials of this one: `https://`, `http://` or `git://`. Local paths, `file://` and ssh
/// URLs (which need this user's key) are not.
pub fn is_fetchable_url(url: &str) -> bool {
    ["https://", "http://", "git://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_writes_its_dependency_line() {
        let git = |reference| Framework::Git {
            url: "https://example.com/bk.git".into(),
            reference,
        };
        assert_eq!(
            Framework::Registry("0.1.0".into()).dependency_line(),
            r#"bk_plugin_server = "0.1.0""#
        );
        assert_eq!(
            git(GitRef::Rev("abc123".into())).dependency_line(),
            r#"bk_plugin_server = { git = "https://example.com/bk.git", rev = "abc123" }"#
        );
        assert_eq!(
            git(GitRef::Tag("v0.1.0".into())).dependency_line(),
            r#"bk_plugin_server = { git = "https://example.com/bk.git", tag = "v0.1.0" }"#
        );
        assert_eq!(
            git(GitRef::DefaultBranch).dependency_line(),
            r#"bk_plugin_server = { git = "https://example.com/bk.git" }"#
        );
        assert_eq!(
            Framework::Path(PathBuf::from("/src/a \"b\"")).dependency_line(),
            r#"bk_plugin_server = { path = "/src/a \"b\"/bk_plugin_server" }"#
        );
    }

    #[test]
    fn only_registry_and_network_git_sources_build_in_the_image() {
        assert!(Framework::Registry("0.1.0".into()).builds_in_image());
        assert!(
            Framework::Git {
                url: "https://example.com/bk.git".into(),
                reference: GitRef::DefaultBranch
            }
            .builds_in_image()
        );
        for url in ["file:///srv/bk", "ssh://git@example.com/bk.git"] {
            assert!(
                !Framework::Git {
                    url: url.into(),
                    reference: GitRef::DefaultBranch
                }
                .builds_in_image(),
                "{url}"
            );
        }
        assert!(!Framework::Path(PathBuf::from("/srv/bk")).builds_in_image());
    }

    #[test]
    fn only_urls_another_machine_can_fetch_anonymously_count_as_fetchable() {
        for url in [
            "https://github.com/TencentBlueKing/bk-plugin-framework-rust.git",
            "http://git.example.com/bk.git",
            "git://git.example.com/bk.git",
        ] {
            assert!(is_fetchable_url(url), "{url}");
        }
        for url in [
            "/work/main",
            "../bk",
            "file:///work/main",
            "git@github.com:TencentBlueKing/bk-plugin-framework-rust.git",
            "ssh://git@github.com/TencentBlueKing/bk-plugin-framework-rust.git",
        ] {
            assert!(!is_fetchable_url(url), "{url}");
        }
    }

    #[test]
    fn a_checkout_without_a_fetchable_origin_is_the_default_by_path() {
        // This crate is compiled inside a checkout; whatever its origin, the reason says why.
        let (source, why) = default_source("0.1.0");
        match source {
            Framework::Path(root) => {
                assert!(root.join("bk_plugin_server/Cargo.toml").is_file());
                assert!(
                    why.contains("this generator was built from the checkout"),
                    "{why}"
                );
            }
            Framework::Git { url, reference } => {
                assert!(is_fetchable_url(&url));
                assert!(matches!(reference, GitRef::Rev(_)));
            }
            Framework::Registry(_) => panic!("a checkout was not found: {why}"),
        }
    }
}
