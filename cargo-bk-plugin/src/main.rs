//! `cargo bk-plugin new <name>`: writes a new BlueKing plugin project. Values not given as
//! flags are asked for when standard input is a terminal, and take their defaults otherwise
//! (or with `--yes`).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use cargo_bk_plugin::{DEFAULT_MAINTAINER, FRAMEWORK_VERSION, Framework, GitRef, Project};
use clap::{Parser, Subcommand};

/// Tools for BlueKing plugins written with bk-plugin-framework for Rust.
#[derive(Debug, Parser)]
#[command(name = "cargo bk-plugin", bin_name = "cargo bk-plugin", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new plugin project that builds, passes its tests and deploys to PaaS as written.
    New(NewArgs),
}

#[derive(Debug, clap::Args)]
struct NewArgs {
    /// The project name: package, binary and directory name (e.g. `my-plugin`).
    name: Option<String>,
    /// The PaaS app code (default: the project name).
    #[arg(long)]
    app_code: Option<String>,
    /// What the plugin does, one line (default: "The <name> plugin.").
    #[arg(long)]
    description: Option<String>,
    /// API gateway maintainers, comma-separated user names (default: admin).
    #[arg(long)]
    maintainers: Option<String>,
    /// Where to create the project (default: ./<name>).
    #[arg(long)]
    path: Option<PathBuf>,
    /// Take the framework from this git repository (`https://...`; builds here and in the
    /// image). Default: the checkout this generator was built from (see docs/new-project.md).
    #[arg(long, value_name = "URL", conflicts_with_all = ["framework_path", "crates_io"])]
    git: Option<String>,
    /// With --git: the commit to take.
    #[arg(long, requires = "git", conflicts_with = "tag")]
    rev: Option<String>,
    /// With --git: the tag to take.
    #[arg(long, requires = "git")]
    tag: Option<String>,
    /// Take the framework from a local checkout (the directory holding `bk_plugin_server/`) by
    /// path: builds on this machine only, the generated Dockerfile cannot build it.
    #[arg(long, value_name = "DIR", conflicts_with = "crates_io")]
    framework_path: Option<PathBuf>,
    /// Take bk_plugin_server from crates.io at this generator's version (once published there).
    #[arg(long)]
    crates_io: bool,
    /// Ask nothing: take the defaults for every value not given.
    #[arg(long, short = 'y')]
    yes: bool,
}

fn main() -> std::process::ExitCode {
    // `cargo bk-plugin ...` runs `cargo-bk-plugin bk-plugin ...`; accept both spellings.
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "bk-plugin") {
        args.remove(1);
    }
    let cli = Cli::parse_from(args);
    let result = match cli.command {
        Command::New(args) => new(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Reads answers from the terminal, or answers every question with its default.
struct Asker {
    interactive: bool,
}

impl Asker {
    fn ask(
        &self,
        question: &str,
        default: &str,
        check: impl Fn(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<String> {
        if !self.interactive {
            check(default)?;
            return Ok(default.to_string());
        }
        let stdin = std::io::stdin();
        loop {
            if default.is_empty() {
                print!("{question}: ");
            } else {
                print!("{question} [{default}]: ");
            }
            std::io::stdout().flush()?;
            let mut line = String::new();
            if stdin.lock().read_line(&mut line)? == 0 {
                anyhow::bail!("no answer for {question:?} (end of input)");
            }
            let answer = match line.trim() {
                "" => default,
                given => given,
            };
            match check(answer) {
                Ok(()) => return Ok(answer.to_string()),
                Err(e) => eprintln!("{e}"),
            }
        }
    }
}

fn new(args: NewArgs) -> anyhow::Result<()> {
    // The framework source first: a bad flag stops before any question is asked.
    let (framework, checkout, why) = framework_source(&args)?;
    let asker = Asker {
        interactive: !args.yes && std::io::stdin().is_terminal(),
    };
    let name = match args.name {
        Some(name) => name,
        None if asker.interactive => {
            asker.ask("Project name", "", |n| Ok(cargo_bk_plugin::check_name(n)?))?
        }
        None => anyhow::bail!("give the project name: cargo bk-plugin new <name>"),
    };
    cargo_bk_plugin::check_name(&name)?;
    let app_code = match args.app_code {
        Some(code) => code,
        None => asker.ask("PaaS app code", &name, |c| {
            Ok(cargo_bk_plugin::check_app_code(c)?)
        })?,
    };
    let description = match args.description {
        Some(text) => text,
        None => asker.ask("Description", &format!("The {name} plugin."), |_| Ok(()))?,
    };
    let maintainers = match args.maintainers {
        Some(list) => list,
        None => asker.ask("API gateway maintainers", DEFAULT_MAINTAINER, |l| {
            cargo_bk_plugin::parse_maintainers(l)?;
            Ok(())
        })?,
    };
    let mut project = Project::new(&name, &app_code, &description, &maintainers, framework)?;
    // A project taken from a checkout starts from the checkout's lock file: the dependency
    // versions the framework was tested with (Cargo trims it to what the project uses).
    if let Some(lock) =
        checkout.and_then(|root| std::fs::read_to_string(root.join("Cargo.lock")).ok())
    {
        project = project.with_lock_file(lock);
    }
    let mut stderr = std::io::stderr();
    let _ = writeln!(
        stderr,
        "Framework: {}{}",
        project.framework().describe(),
        why.map(|w| format!(" ({w})")).unwrap_or_default()
    );
    if !project.framework().builds_in_image() {
        let _ = writeln!(
            stderr,
            "warning: the generated Dockerfile cannot build this project: the framework is outside the \
             project's directory. It builds and tests here; before deploying, switch to a git \
             repository (--git <url> [--rev <commit> | --tag <tag>]) or crates.io (README.md, \
             \"Where the framework comes from\")."
        );
    }
    let dir = args.path.unwrap_or_else(|| PathBuf::from(&name));
    project.write(&dir)?;
    // Ignore a closed stdout (`| head`): the project is written either way.
    let _ = writeln!(
        std::io::stdout(),
        "Created {} (app code {app_code}) in {}\n\nNext:\n  cd {}\n  cargo test        # builds it and runs its tests\n  cargo run         # serves it on http://127.0.0.1:5000\n\nREADME.md walks from here to a released plugin on BlueKing PaaS.",
        project.name(),
        dir.display(),
        dir.display()
    );
    Ok(())
}

/// The framework source the flags ask for (or the default), the checkout it comes from when it
/// is one (its `Cargo.lock` seeds the project's), and why the default was chosen.
fn framework_source(
    args: &NewArgs,
) -> anyhow::Result<(Framework, Option<PathBuf>, Option<String>)> {
    if let Some(url) = &args.git {
        anyhow::ensure!(
            url.contains("://") && !url.chars().any(|c| c.is_whitespace() || c == '"'),
            "--git {url:?} is not a URL Cargo takes: give https://host/repository.git (or ssh://..., file:///...)"
        );
        let reference = match (&args.rev, &args.tag) {
            (Some(rev), _) => GitRef::Rev(rev.clone()),
            (None, Some(tag)) => GitRef::Tag(tag.clone()),
            (None, None) => GitRef::DefaultBranch,
        };
        return Ok((
            Framework::Git {
                url: url.clone(),
                reference,
            },
            None,
            None,
        ));
    }
    if let Some(root) = &args.framework_path {
        let root = std::path::absolute(root)
            .with_context(|| format!("cannot resolve {}", root.display()))?;
        anyhow::ensure!(
            root.join("bk_plugin_server/Cargo.toml").is_file(),
            "{} is not a framework checkout: it has no bk_plugin_server/Cargo.toml",
            root.display()
        );
        return Ok((Framework::Path(root.clone()), Some(root), None));
    }
    if args.crates_io {
        return Ok((
            Framework::Registry(FRAMEWORK_VERSION.to_string()),
            None,
            None,
        ));
    }
    let (framework, why) = cargo_bk_plugin::default_source(FRAMEWORK_VERSION);
    let checkout =
        cargo_bk_plugin::own_checkout().filter(|_| !matches!(framework, Framework::Registry(_)));
    Ok((framework, checkout, Some(format!("the default: {why}"))))
}
