//! The `create-admin` command: creates the admin, or promotes an existing user,
//! from the command line, then exits.

use secrecy::{ExposeSecret as _, SecretString};

use super::store::UserStore;
use crate::error::BootError;
use crate::observability::names;
use crate::service::Kernel;

/// A password given on the command line or in `ADMIN_PASSWORD`; never printed.
#[derive(Clone)]
pub struct AdminPassword(SecretString);

impl std::fmt::Debug for AdminPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminPassword(***)")
    }
}

impl PartialEq for AdminPassword {
    fn eq(&self, other: &Self) -> bool {
        self.0.expose_secret() == other.0.expose_secret()
    }
}

impl Eq for AdminPassword {}

impl std::str::FromStr for AdminPassword {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.chars().count() < 8 {
            return Err("the admin password must have at least 8 characters".into());
        }
        Ok(Self(SecretString::from(s.to_owned())))
    }
}

/// Runs `create-admin` against the kernel's database.
///
/// # Errors
/// The database refused the admin.
pub(crate) async fn create_admin_command(
    kernel: &Kernel,
    email: &str,
    password: &AdminPassword,
    username: Option<&str>,
) -> Result<(), BootError> {
    let store = UserStore::new(kernel.db().clone());
    store.create_tables().await?;
    let (admin, created) = store.create_or_promote_admin(email, password.0.expose_secret(), username).await?;
    let verb = if created { "created" } else { "promoted" };
    tracing::info!(user_id = %admin.id, username = %admin.username, "admin {verb}");
    println!("admin {verb}: {} (id {})", admin.username, admin.id);
    if kernel.settings().features.auth_mode == super::AuthMode::ApiKey {
        // apikey mode mounts no login route: this key is how the admin gets in
        // (and creates the other keys). Shown once, stored only as a hash.
        let (key, info) = store.create_api_key("create-admin", &admin.id).await?;
        let resource = format!("api_keys/{}", info.id);
        let details = serde_json::json!({"name": info.name, "prefix": info.prefix, "user_id": info.user_id});
        store.audit().record(Some(&admin.id), names::AUDIT_API_KEY_CREATE, Some(&resource), details).await?;
        println!("admin API key (shown once; send it as X-API-Key): {}", key.expose());
    }
    kernel.db().close().await;
    Ok(())
}
