//! [`BootError`]: why a service could not start. The service wires every
//! concept, so its error is the one that names each concept's.

/// Why a service could not start. Each message names the setting and the fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootError {
    /// A configuration value is missing, malformed or unsafe.
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// The authentication settings cannot be used (a bad public key, ...).
    #[error("auth: {0}")]
    Auth(#[from] crate::auth::AuthError),
    /// The listener could not bind.
    #[error("cannot listen on {addr}: {source} (set HOST/PORT to a free address)")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database could not be opened or initialised.
    #[error("database: {0}")]
    Database(#[from] crate::db::DbError),
    /// A migration could not be applied (or an applied one changed): the message
    /// names the file.
    #[error("migrations: {0}")]
    Migration(#[from] crate::db::MigrateError),
    /// The job queue could not be opened.
    #[error("jobs: {0}")]
    Jobs(#[from] crate::jobs::JobError),
    /// The rate limit's store could not be opened.
    #[error("{0}")]
    Reliability(#[from] crate::reliability::ReliabilityError),
    /// The stream lease store could not be opened.
    #[error("{0}")]
    Streaming(#[from] crate::streaming::StreamError),
    /// Redis (`REDIS_URL`) could not be reached.
    #[error("redis: {0} (check REDIS_URL)")]
    Redis(String),
    /// A start-up hook or schema initialiser failed.
    #[error("{stage} failed: {message}")]
    Hook {
        /// Which hook (`schema_init`, `on_startup`, ...).
        stage: &'static str,
        /// What it reported.
        message: String,
    },
    /// A command of the service binary (`create-admin`, `promote-admin`) refused
    /// and changed nothing.
    #[error("{command}: {message}")]
    Command {
        /// The command.
        command: &'static str,
        /// Why it refused, and what to do instead.
        message: String,
    },
    /// The server stopped with an I/O error.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}
