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
        let cli = Cli::parse();
        let service: Service = self.build().await?;
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => service.serve().await,
            Command::Worker => {
                let kernel = service.kernel().clone();
                crate::jobs::Worker::from_kernel(&kernel).run_until_stopped(super::shutdown_signal()).await;
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
