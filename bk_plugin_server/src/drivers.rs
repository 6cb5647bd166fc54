//! Which databases this binary can store invocations in: the `sqlite`, `mysql` and `postgres`
//! features of `bk_plugin_server` (default: `sqlite` and `mysql`). A database URL naming a
//! database whose driver was not compiled in is refused before any connection is tried, with
//! the feature to turn on, instead of sea-orm's "no supporting driver".

#[cfg(not(any(feature = "sqlite", feature = "mysql", feature = "postgres")))]
compile_error!(
    "bk_plugin_server needs at least one database feature: `sqlite`, `mysql` or `postgres`"
);

/// A database the runtime can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// SQLite (`sqlite:`), for local work.
    Sqlite,
    /// MySQL or MariaDB (`mysql:`, `mariadb:`), BlueKing PaaS's database add-on.
    Mysql,
    /// PostgreSQL (`postgres:`, `postgresql:`).
    Postgres,
}

impl Backend {
    const ALL: [Self; 3] = [Self::Sqlite, Self::Mysql, Self::Postgres];

    /// The database a URL names by its scheme, if it is one of ours.
    pub(crate) fn of_url(url: &str) -> Option<Self> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Self::Sqlite),
            "mysql" | "mariadb" => Some(Self::Mysql),
            "postgres" | "postgresql" => Some(Self::Postgres),
            _ => None,
        }
    }

    /// The `bk_plugin_server` feature that compiles its driver in.
    pub(crate) fn feature(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Mysql => "mysql",
            Self::Postgres => "postgres",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Mysql => "MySQL",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// Whether this binary has its driver.
    pub(crate) fn compiled_in(self) -> bool {
        match self {
            Self::Sqlite => cfg!(feature = "sqlite"),
            Self::Mysql => cfg!(feature = "mysql"),
            Self::Postgres => cfg!(feature = "postgres"),
        }
    }

    /// The databases this binary can use.
    pub(crate) fn compiled() -> Vec<Self> {
        Self::ALL.into_iter().filter(|b| b.compiled_in()).collect()
    }
}

/// A database URL names a database whose driver this binary was built without.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the database URL names a {name} database, but this binary was built without its driver \
     (it has: {compiled}); turn on bk_plugin_server's `{feature}` feature in Cargo.toml: \
     bk_plugin_server = {{ version = \"0.1\", features = [\"{feature}\"] }}"
)]
pub(crate) struct DriverMissing {
    name: &'static str,
    feature: &'static str,
    compiled: String,
}

/// Refuses a URL (never shown: it may hold a password) whose database was not compiled in.
/// Schemes that are none of ours are left to sea-orm's own error.
pub(crate) fn check_url(url: &str) -> Result<(), DriverMissing> {
    check_against(url, &Backend::compiled())
}

fn check_against(url: &str, compiled: &[Backend]) -> Result<(), DriverMissing> {
    match Backend::of_url(url) {
        Some(backend) if !compiled.contains(&backend) => Err(DriverMissing {
            name: backend.name(),
            feature: backend.feature(),
            compiled: compiled
                .iter()
                .map(|b| b.feature())
                .collect::<Vec<_>>()
                .join(", "),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_for_a_database_not_compiled_in_names_the_feature_and_hides_the_url() {
        let url = "postgres://app:s3cret@db:5432/plugin";
        let err = check_against(url, &[Backend::Sqlite, Backend::Mysql])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            err,
            "the database URL names a PostgreSQL database, but this binary was built without its \
             driver (it has: sqlite, mysql); turn on bk_plugin_server's `postgres` feature in \
             Cargo.toml: bk_plugin_server = { version = \"0.1\", features = [\"postgres\"] }"
        );
        assert!(!err.contains("s3cret"));
        assert!(check_against("mysql://root@db/test", &[Backend::Mysql]).is_ok());
        assert!(check_against("MariaDB://root@db/test", &[Backend::Mysql]).is_ok());
        assert!(check_against("sqlite://x.db?mode=rwc", &[Backend::Mysql]).is_err());
        assert!(check_against("redis://x", &[Backend::Mysql]).is_ok());
    }

    #[test]
    fn the_workspace_builds_with_all_three_drivers() {
        // The fixture binary and these tests run on every backend (examples/fixtures turns
        // `postgres` on besides the defaults).
        assert_eq!(Backend::compiled(), Backend::ALL);
    }
}
