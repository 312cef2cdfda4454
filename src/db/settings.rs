use secrecy::{ExposeSecret, SecretString};

use crate::db::SchemaPolicy;

/// Which database engine serves the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DatabaseKind {
    /// Embedded SQLite file (the default; cargo feature `sqlite`).
    #[default]
    Sqlite,
    /// PostgreSQL (cargo feature `postgres`).
    Postgres,
    /// MySQL or MariaDB (cargo feature `mysql`).
    Mysql,
}

impl DatabaseKind {
    /// Parses `sqlite`, `postgres` (`postgresql`) or `mysql` (`mariadb`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Some(Self::Sqlite),
            "postgres" | "postgresql" | "pg" => Some(Self::Postgres),
            "mysql" | "mariadb" => Some(Self::Mysql),
            _ => None,
        }
    }

    /// The engine a URL names by its scheme.
    pub fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split(':').next()?;
        Self::parse(scheme)
    }

    /// The cargo feature that compiles this engine in.
    pub fn feature(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }

    fn default_port(self) -> Option<u16> {
        match self {
            Self::Sqlite => None,
            Self::Postgres => Some(5432),
            Self::Mysql => Some(3306),
        }
    }
}

/// The default of [`DatabaseSettings::acquire_timeout`].
pub const DEFAULT_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(1000);
/// The longest [`DatabaseSettings::acquire_timeout`] accepted.
pub const MAX_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// SQLite's `synchronous` pragma in WAL mode.
///
/// `Normal` (the default) is safe against a crash of the process: a committed
/// transaction survives it. It is not safe against power loss or an OS crash, where
/// the last transactions before the failure may roll back. `Full` syncs on every
/// commit and survives those too, at a cost in write throughput.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteSynchronous {
    /// Durable against process crashes; the last commits may be lost on power loss.
    #[default]
    Normal,
    /// Durable against power loss.
    Full,
}

/// Database settings: which engine, where, and how the pool behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DatabaseSettings {
    /// The engine.
    pub kind: DatabaseKind,
    /// A full URL; when set it wins over the parts below.
    pub url: Option<SecretString>,
    /// SQLite: the file path. Server engines: the database name.
    pub name: Option<String>,
    /// Server host (default `localhost`).
    pub host: String,
    /// Server port (default: the engine's).
    pub port: Option<u16>,
    /// Server user.
    pub user: Option<String>,
    /// Server password.
    pub password: Option<SecretString>,
    /// Connections for server engines; readers for SQLite (default 8).
    pub pool_size: u32,
    /// Server engines: the longest a statement waits for a pool connection, including
    /// opening one (default 1 s, at most 60 s). Past it, or when the server cannot
    /// be reached, the request gets 503 `database_unavailable` instead of waiting.
    pub acquire_timeout: std::time::Duration,
    /// SQLite durability (default `Normal`).
    pub sqlite_synchronous: SqliteSynchronous,
    /// What a save may change in the schema (default [`SchemaPolicy::Closed`]: nothing;
    /// `DATABASE_SCHEMA=additive` for development).
    pub schema: SchemaPolicy,
    /// Warn (once a minute per statement) when a filtered find reads every row of a
    /// table of more than 10,000 rows: a development aid (on with `DEBUG`), as it
    /// costs a plan and a count per look.
    pub warn_full_scans: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            kind: DatabaseKind::Sqlite,
            url: None,
            name: None,
            host: "localhost".into(),
            port: None,
            user: None,
            password: None,
            pool_size: 8,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            sqlite_synchronous: SqliteSynchronous::Normal,
            schema: SchemaPolicy::Closed,
            warn_full_scans: false,
        }
    }
}

impl DatabaseSettings {
    /// SQLite at `path`.
    pub fn sqlite(path: impl Into<String>) -> Self {
        Self { name: Some(path.into()), ..Self::default() }
    }

    /// The engine and connection URL these settings resolve to. SQLite's URL is
    /// `sqlite://PATH`; `service_name` names the default file `./data/NAME.db`.
    pub fn connection_url(&self, service_name: &str) -> SecretString {
        if let Some(url) = &self.url {
            return url.clone();
        }
        match self.kind {
            DatabaseKind::Sqlite => {
                let path = self.name.clone().unwrap_or_else(|| format!("./data/{service_name}.db"));
                SecretString::from(format!("sqlite://{path}"))
            }
            kind => {
                let scheme = if kind == DatabaseKind::Postgres { "postgres" } else { "mysql" };
                let port = self.port.or(kind.default_port()).unwrap_or_default();
                let auth = match (&self.user, &self.password) {
                    (Some(u), Some(p)) => format!("{u}:{}@", p.expose_secret()),
                    (Some(u), None) => format!("{u}@"),
                    _ => String::new(),
                };
                let name = self.name.as_deref().unwrap_or(service_name);
                SecretString::from(format!("{scheme}://{auth}{}:{port}/{name}", self.host))
            }
        }
    }
}
