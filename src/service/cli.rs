//! The service binary's command line: one binary, several roles.
//!
//! `serve` (the default) runs the HTTP server; `worker` runs the job worker;
//! `create-admin` creates a new admin account (never touching an existing one);
//! `promote-admin` makes the account with exactly this username an admin;
//! `migrate` applies the pending migrations and initialises the schema (declared
//! tables, `schema_init`); `migrate status` prints each migration's state.

use clap::{Parser, Subcommand};

use super::BootError;
use super::ServiceBuilder;

/// What the service binary was asked to do.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Serve HTTP on HOST:PORT (the default).
    Serve,
    /// Apply the pending migrations, create the declared tables, run `schema_init`, and
    /// exit; `migrate status` prints each migration's state instead and changes nothing.
    Migrate {
        /// `status`: print the applied and pending migrations.
        #[command(subcommand)]
        action: Option<MigrateAction>,
    },
    /// Create a new admin account `--email` and exit; refuses (exit status 1) if any
    /// account already has that email or login name.
    CreateAdmin {
        /// The admin's email.
        #[arg(long)]
        email: String,
        /// The password (default: the `ADMIN_PASSWORD` variable).
        #[arg(long, env = "ADMIN_PASSWORD", hide_env_values = true)]
        password: crate::auth::AdminPassword,
        /// The login name (default: the email's local part).
        #[arg(long)]
        username: Option<String>,
    },
    /// Make the active account whose username is exactly `--username` an admin, and exit.
    PromoteAdmin {
        /// The account's username, exactly (no email, no derived name).
        #[arg(long)]
        username: String,
    },
    /// Run the background job worker until SIGINT or SIGTERM.
    Worker,
}

/// What `migrate` was asked to do besides applying.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
#[non_exhaustive]
pub enum MigrateAction {
    /// Print each migration's version, file, state (applied, pending, changed, missing),
    /// when it was applied and how long it took; change nothing.
    Status,
}

#[derive(Debug, Parser)]
#[command(about = "An app-kernel service", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

impl ServiceBuilder {
    /// Parses the command line and runs the chosen role: the usual `main` of a
    /// service binary. `--help` lists the roles.
    ///
    /// # Errors
    /// Start-up failed (settings, database, hooks, bind).
    pub async fn run(self) -> Result<(), BootError> {
        let result = self.run_command(Cli::parse()).await;
        crate::observability::otel::flush();
        crate::observability::log_sink::flush();
        if let Err(e) = &result {
            eprintln!("error: {e}");
        }
        result
    }

    async fn run_command(self, cli: Cli) -> Result<(), BootError> {
        let command = cli.command.unwrap_or(Command::Serve);
        if let Command::Migrate { action } = &command {
            return self.migrate_command(action.as_ref() == Some(&MigrateAction::Status)).await;
        }
        if command == Command::Serve {
            return self.build().await?.serve().await;
        }
        let (kernel, _http) = self.start_kernel().await?;
        let kernel = &kernel;
        match command {
            Command::Serve => Ok(()), // answered above
            Command::CreateAdmin { email, password, username } => {
                let mode = kernel.settings().features.auth_mode;
                let done =
                    crate::auth::create_admin_command(kernel.db(), mode, &email, &password, username.as_deref()).await;
                kernel.db().close().await;
                done.map_err(|e| admin_error("create-admin", e))
            }
            Command::PromoteAdmin { username } => {
                let done = crate::auth::promote_admin_command(kernel.db(), &username).await;
                kernel.db().close().await;
                done.map_err(|e| admin_error("promote-admin", e))
            }
            Command::Worker => super::worker_http::run_worker(kernel).await,
            // Answered above, before the kernel starts.
            Command::Migrate { .. } => Ok(()),
        }
    }
}

fn admin_error(command: &'static str, e: crate::auth::AdminError) -> BootError {
    match e {
        crate::auth::AdminError::Store(e) => BootError::Auth(e),
        e => BootError::Command { command, message: e.to_string() },
    }
}

/// The `migrate status` table: a header and a line per migration.
pub(super) fn status_table(status: &[crate::db::MigrationStatus]) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "{:>14}  {:<44}  {:<8}  {:<12}  {:<27}  {:>8}\n",
        "version", "file", "state", "checksum", "applied at", "duration"
    );
    for s in status {
        let file = s.file.clone().unwrap_or_else(|| format!("({}: no file)", s.name));
        let at = s.applied_at.as_deref().unwrap_or("-");
        let took = s.duration_ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"));
        let sum = s.checksum.as_deref().map_or("-", |c| &c[..c.len().min(12)]);
        let _ = writeln!(out, "{:>14}  {file:<44}  {:<8}  {sum:<12}  {at:<27}  {took:>8}", s.version, s.state.as_str());
    }
    if status.is_empty() {
        out.push_str("(no migrations)\n");
    }
    out
}
