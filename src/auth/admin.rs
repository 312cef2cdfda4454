//! The admin commands of the service binary, which run and exit:
//!
//! - `create-admin --email E [--username U]` only ever creates a new account: if any
//!   account already has that email or login name it changes nothing and exits
//!   non-zero ([`AdminError::Taken`]), so an account someone registered is never
//!   made an admin because its name matches;
//! - `promote-admin --username U` makes the active account whose username is
//!   exactly `U` an admin: an explicit, separate act that names the account.

use secrecy::{ExposeSecret as _, SecretString};

use super::store::UserStore;
use super::AuthError;
use crate::db::Db;
use crate::observability::names;

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
        if s.len() > super::MAX_PASSWORD_BYTES {
            return Err(format!("the admin password must have at most {} bytes", super::MAX_PASSWORD_BYTES));
        }
        Ok(Self(SecretString::from(s.to_owned())))
    }
}

/// Why `create-admin` or `promote-admin` changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// An account already has this email or login name; create-admin only creates.
    #[error(
        "an account with the {what} `{value}` already exists; create-admin only creates new accounts and \
         changed nothing (to make an existing account an admin, run `promote-admin --username NAME`)"
    )]
    Taken {
        /// `email` or `username`.
        what: &'static str,
        /// The value that is taken.
        value: String,
    },
    /// No account has exactly this username.
    #[error("no account has the username `{0}` (promote-admin matches the username exactly)")]
    NoSuchUser(String),
    /// The account is deactivated; it is not reactivated or promoted.
    #[error("the account `{0}` is deactivated; it was not promoted")]
    Inactive(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] AuthError),
}

impl From<crate::db::DbError> for AdminError {
    fn from(e: crate::db::DbError) -> Self {
        Self::Store(AuthError::from(e))
    }
}

/// Runs `create-admin` against `db`.
///
/// # Errors
/// The email or login name is taken; the database failed.
pub(crate) async fn create_admin_command(
    db: &Db,
    mode: super::AuthMode,
    email: &str,
    password: &AdminPassword,
    username: Option<&str>,
) -> Result<(), AdminError> {
    let store = UserStore::new(db.clone());
    store.create_tables().await?;
    let admin = store.create_admin(email, password.0.expose_secret(), username).await?;
    tracing::info!(user_id = %admin.id, username = %admin.username, "admin created");
    println!("admin created: {} (id {})", admin.username, admin.id);
    if mode == super::AuthMode::ApiKey {
        // apikey mode mounts no login route: this key is how the admin gets in
        // (and creates the other keys). Shown once, stored only as a hash.
        let (key, info) = store.create_api_key("create-admin", &admin.id).await?;
        let resource = format!("api_keys/{}", info.id);
        let details = serde_json::json!({"name": info.name, "prefix": info.prefix, "user_id": info.user_id});
        store.audit().record(Some(&admin.id), names::AUDIT_API_KEY_CREATE, Some(&resource), details).await?;
        println!("admin API key (shown once; send it as X-API-Key): {}", key.expose());
    }
    Ok(())
}

/// Runs `promote-admin`: the active account named exactly `username` becomes an admin.
///
/// # Errors
/// No active account has this username; the database failed.
pub(crate) async fn promote_admin_command(db: &Db, username: &str) -> Result<(), AdminError> {
    let store = UserStore::new(db.clone());
    store.create_tables().await?;
    let admin = store.promote_admin(username).await?;
    let resource = format!("users/{}", admin.id);
    let details = serde_json::json!({"username": admin.username, "by": "promote-admin"});
    store.audit().record(None, names::AUDIT_ADMIN_PROMOTE, Some(&resource), details).await?;
    tracing::info!(user_id = %admin.id, username = %admin.username, "admin promoted");
    println!("admin promoted: {} (id {})", admin.username, admin.id);
    Ok(())
}
