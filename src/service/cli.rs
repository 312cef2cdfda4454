//! The service binary's command line: one binary, several roles.
//!
//! `serve` (the default) runs the HTTP server. Later roles (`worker`,
//! `create-admin`, `migrate`) join this enum as their modules land.

use clap::{Parser, Subcommand};

use super::{Service, ServiceBuilder};
use crate::error::BootError;

/// What the service binary was asked to do.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Serve HTTP on HOST:PORT (the default).
    Serve,
    /// Open the database, run `schema_init`, and exit.
    Migrate,
    /// Create the admin `--email` (or promote an existing user) and exit.
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
        let cli = Cli::parse();
        let service: Service = self.build().await?;
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => service.serve().await,
            Command::CreateAdmin { email, password, username } => {
                crate::auth::create_admin_command(service.kernel(), &email, &password, username.as_deref()).await
            }
            Command::Migrate => {
                tracing::info!("schema initialised");
                service.kernel().db().close().await;
                Ok(())
            }
        }
    }
}
