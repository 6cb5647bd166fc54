//! Log output: human-readable in dev, JSON lines in stag/prod; level from `BK_PLUGIN_LOG_LEVEL`
//! (or `RUST_LOG`), `info` by default.

use tracing_subscriber::EnvFilter;

use crate::config::Config;

/// Installs the global subscriber (once; later calls do nothing).
pub fn init(config: &Config) {
    let filter = std::env::var("BK_PLUGIN_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if config.is_dev() {
        builder.try_init()
    } else {
        builder.json().flatten_event(true).try_init()
    };
}
