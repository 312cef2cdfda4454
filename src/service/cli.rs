//! The service binary's command line: one binary, several roles.
//!
//! `serve` (the default) runs the HTTP server; `worker` runs the job worker;
//! `create-admin` creates a new admin account (never touching an existing one);
//! `promote-admin` makes the account with exactly this username an admin;
//! `migrate` initialises the schema.

use clap::{Parser, Subcommand};

use super::BootError;
use super::{Service, ServiceBuilder};

/// What the service binary was asked to do.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Serve HTTP on HOST:PORT (the default).
    Serve,
    /// Open the database, run `schema_init`, and exit.
    Migrate,
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
        crate::observability::log_sink::flush();
        if let Err(e) = &result {
            eprintln!("error: {e}");
        }
        result
    }

    async fn run_command(self, cli: Cli) -> Result<(), BootError> {
        let service: Service = self.build().await?;
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => service.serve().await,
            Command::CreateAdmin { email, password, username } => {
                let kernel = service.kernel();
                let mode = kernel.settings().features.auth_mode;
                let done =
                    crate::auth::create_admin_command(kernel.db(), mode, &email, &password, username.as_deref()).await;
                kernel.db().close().await;
                done.map_err(|e| admin_error("create-admin", e))
            }
            Command::PromoteAdmin { username } => {
                let kernel = service.kernel();
                let done = crate::auth::promote_admin_command(kernel.db(), &username).await;
                kernel.db().close().await;
                done.map_err(|e| admin_error("promote-admin", e))
            }
            Command::Worker => {
                let kernel = service.kernel().clone();
                kernel.worker().run_until_stopped(super::shutdown_signal()).await;
                kernel.db().close().await;
                Ok(())
            }
            Command::Migrate => {
                tracing::info!("schema initialised");
                service.kernel().db().close().await;
                Ok(())
            }
        }
    }
}

fn admin_error(command: &'static str, e: crate::auth::AdminError) -> BootError {
    match e {
        crate::auth::AdminError::Store(e) => BootError::Auth(e),
        e => BootError::Command { command, message: e.to_string() },
    }
}
