//! [`UserStore`]: the kernel's users, refresh tokens and API keys in the service's
//! database, and the [`IdentitySource`] that checks them on every request.
//!
//! Three tables, created at start-up with DDL that runs on SQLite, PostgreSQL and
//! MySQL/MariaDB alike (times are RFC 3339 text, flags are integers):
//!
//! - `kernel_users`: `id` (UUID v7), `username` (unique), `email` (unique, lowercase,
//!   nullable), `password_hash` (argon2id), `role`, `is_active`, `token_version`,
//!   `created_at`, `updated_at`;
//! - `kernel_refresh_tokens`: one row per issued refresh token (`jti`), with its rotation
//!   `family`, its user, `expires_at` (Unix seconds), `used_at` and `revoked_at`;
//! - `kernel_api_keys`: `key_hash` (SHA-256, unique), a display `prefix`, the owner,
//!   `last_used_at`, `revoked_at`.
//!
//! The invariant: an access token or API key only counts while its user exists and
//! is active, and a refresh token is exchanged at most once: presenting it again
//! revokes its whole family (see [`UserStore::rotate_refresh`]). An access token
//! carries the user's `token_version` (claim `ver`) and only counts while it is the
//! user's current one: a password change, logout, deactivation or role change moves
//! the version on, so every access token issued before stops working at once on
//! this instance and within the identity cache's window (2 s) on the others (the
//! version lives in the database, the cache in each process).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};

use super::identity_cache::IdentityCache;
use super::{hash_password_async, ApiKey, AuthError, Claims, IdentitySource, UserIdentity};
use crate::db::{AuditLog, Db, DbError, Row};

/// The users table.
pub const USERS_TABLE: &str = "kernel_users";
/// The refresh tokens table.
pub const REFRESH_TOKENS_TABLE: &str = "kernel_refresh_tokens";
/// The API keys table.
pub const API_KEYS_TABLE: &str = "kernel_api_keys";

/// A stored user, with the password hash (never serialized to clients).
#[derive(Clone, PartialEq, Eq)]
pub struct StoredUser {
    /// The identity handlers see.
    pub identity: UserIdentity,
    /// The argon2id PHC string.
    pub password_hash: String,
    /// Whether the account may log in and use its tokens.
    pub is_active: bool,
    /// The version access tokens must carry (moved on to revoke them all).
    pub token_version: u64,
}

impl std::fmt::Debug for StoredUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredUser")
            .field("identity", &self.identity)
            .field("is_active", &self.is_active)
            .field("token_version", &self.token_version)
            .finish_non_exhaustive()
    }
}

/// A new account to create. Its `Debug` output leaves the password out.
#[derive(Clone)]
pub struct NewUser<'a> {
    /// Login name, 3..50 characters.
    pub username: &'a str,
    /// Email (stored lowercase).
    pub email: Option<&'a str>,
    /// The password in clear; hashed here.
    pub password: &'a str,
    /// `user` or `admin`.
    pub role: &'a str,
}

impl std::fmt::Debug for NewUser<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("username", &self.username)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The kernel's user store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct UserStore {
    pub(super) db: Db,
    pub(super) audit: AuditLog,
    identities: Arc<IdentityCache>,
}

impl From<DbError> for AuthError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(_) => AuthError::Conflict("Username or email already registered".into()),
            e if e.is_unavailable() => AuthError::DatabaseUnavailable(e.to_string()),
            e => AuthError::Internal(e.to_string()),
        }
    }
}

pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub(super) fn text(row: &Row, key: &str) -> Option<String> {
    match row.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

pub(super) fn flag(row: &Row, key: &str) -> bool {
    match row.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0) != 0,
        _ => false,
    }
}

pub(super) fn user_from(row: &Row) -> StoredUser {
    let identity = UserIdentity {
        id: text(row, "id").unwrap_or_default(),
        username: text(row, "username").unwrap_or_default(),
        email: text(row, "email"),
        role: text(row, "role").unwrap_or_default(),
    };
    StoredUser {
        identity,
        password_hash: text(row, "password_hash").unwrap_or_default(),
        is_active: flag(row, "is_active"),
        token_version: row.get("token_version").and_then(Value::as_u64).unwrap_or(0),
    }
}

impl UserStore {
    /// The store in `db`, with its own identity cache (see
    /// [`AuthSettings::identity_cache_ttl`](super::AuthSettings::identity_cache_ttl));
    /// its clones share it. Call [`create_tables`](Self::create_tables) once at
    /// start-up. A service has one, opened by [`super::open`] and kept in
    /// [`Auth::users`](super::Auth::users).
    pub fn new(db: Db) -> Self {
        Self { audit: AuditLog::new(db.clone()), identities: Arc::default(), db }
    }

    /// The audit trail the auth routes write to.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Creates the three tables and their indexes if they do not exist.
    ///
    /// # Errors
    /// The database refused the DDL.
    pub async fn create_tables(&self) -> Result<(), DbError> {
        let kind = self.db.kind();
        let opts = crate::db::dialect::table_options(kind);
        let (family, family_sql) = kind.kernel_index("kernel_refresh_tokens", "kernel_refresh_family", "[family]");
        let (user, user_sql) = kind.kernel_index("kernel_refresh_tokens", "kernel_refresh_user", "[user_id]");
        let statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS [kernel_users] ([id] VARCHAR(36) PRIMARY KEY, \
                 [username] VARCHAR(50) NOT NULL UNIQUE, [email] VARCHAR(255) UNIQUE, \
                 [password_hash] VARCHAR(255) NOT NULL, [role] VARCHAR(32) NOT NULL, \
                 [is_active] BIGINT NOT NULL DEFAULT 1, [token_version] BIGINT NOT NULL DEFAULT 0, \
                 [created_at] VARCHAR(32) NOT NULL, \
                 [updated_at] VARCHAR(32) NOT NULL){opts}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS [kernel_refresh_tokens] ([jti] VARCHAR(36) PRIMARY KEY, \
                 [family] VARCHAR(36) NOT NULL, [user_id] VARCHAR(36) NOT NULL, [expires_at] BIGINT NOT NULL, \
                 [created_at] VARCHAR(32) NOT NULL, [used_at] VARCHAR(32), [revoked_at] VARCHAR(32){family}{user}){opts}"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS [kernel_api_keys] ([id] VARCHAR(36) PRIMARY KEY, \
                 [name] VARCHAR(255) NOT NULL, [key_hash] VARCHAR(64) NOT NULL UNIQUE, [prefix] VARCHAR(16) NOT NULL, \
                 [user_id] VARCHAR(36) NOT NULL, [created_at] VARCHAR(32) NOT NULL, [last_used_at] VARCHAR(32), \
                 [revoked_at] VARCHAR(32)){opts}"
            ),
        ];
        for sql in &statements {
            self.db.execute_schema(sql).await?;
        }
        self.add_token_version().await?;
        for index in [family_sql, user_sql].into_iter().flatten() {
            self.db.execute_schema(&index).await?;
        }
        Ok(())
    }

    /// Adds `token_version` to a users table made before it existed. Instances
    /// starting together may both try: the column being there is what counts.
    async fn add_token_version(&self) -> Result<(), DbError> {
        // An assignment target must be a column (SQLite reads an unknown quoted name
        // elsewhere as a string).
        let probe = "UPDATE [kernel_users] SET [token_version] = 0 WHERE 1 = 0";
        if self.db.execute(probe, &[]).await.is_ok() {
            return Ok(());
        }
        let alter = "ALTER TABLE [kernel_users] ADD COLUMN [token_version] BIGINT NOT NULL DEFAULT 0";
        match self.db.execute(alter, &[]).await {
            Ok(_) => Ok(()),
            Err(e) => self.db.execute(probe, &[]).await.map(drop).map_err(|_| e),
        }
    }

    /// Moves the user's token version on: every access token issued before stops
    /// working (here at once, on other instances within the identity cache's window).
    ///
    /// # Errors
    /// The database failed.
    pub async fn bump_token_version(&self, user_id: &str) -> Result<(), AuthError> {
        let sql = "UPDATE [kernel_users] SET [token_version] = [token_version] + 1, [updated_at] = ? WHERE [id] = ?";
        self.db.execute(sql, &[json!(now()), json!(user_id)]).await?;
        self.identities.forget(user_id);
        Ok(())
    }

    /// Ends every session of the user (logout): their access tokens stop working
    /// and their refresh tokens are revoked.
    ///
    /// # Errors
    /// The database failed.
    pub async fn end_sessions(&self, user_id: &str) -> Result<(), AuthError> {
        self.bump_token_version(user_id).await?;
        self.revoke_user_tokens(user_id).await
    }

    /// Creates an account; its username is stored in canonical form (NFKC, lowercase).
    ///
    /// # Errors
    /// [`AuthError::InvalidUsername`]; [`AuthError::Conflict`] when the username or
    /// email is taken.
    pub async fn create_user(&self, new: &NewUser<'_>) -> Result<UserIdentity, AuthError> {
        let username = super::username::canonical_username(new.username).ok_or(AuthError::InvalidUsername)?;
        let new = &NewUser { username: &username, ..new.clone() };
        let email = new.email.map(str::to_lowercase);
        if self.find_by_login(new.username).await?.is_some()
            || self.find_by_login(email.as_deref().unwrap_or(new.username)).await?.is_some()
        {
            return Err(AuthError::Conflict("Username or email already registered".into()));
        }
        let hash = hash_password_async(new.password).await?;
        let id = uuid::Uuid::now_v7().to_string();
        let at = now();
        let sql = "INSERT INTO [kernel_users] ([id], [username], [email], [password_hash], [role], [is_active], \
                   [created_at], [updated_at]) VALUES (?, ?, ?, ?, ?, 1, ?, ?)";
        let params = [json!(id), json!(new.username), json!(email), json!(hash), json!(new.role), json!(at), json!(at)];
        self.db.execute(sql, &params).await?;
        Ok(UserIdentity { id, username: new.username.to_owned(), email, role: new.role.to_owned() })
    }

    /// The user whose username (in any case or width), or email (case-insensitively),
    /// is `login`. A username stored before usernames were canonical matches as it
    /// was written.
    ///
    /// # Errors
    /// The database failed.
    pub async fn find_by_login(&self, login: &str) -> Result<Option<StoredUser>, AuthError> {
        let sql = "SELECT * FROM [kernel_users] WHERE [username] = ? OR [username] = ? OR [email] = ? \
                   ORDER BY [username] = ? DESC";
        let canonical = super::username::canonical_username(login).unwrap_or_else(|| login.to_owned());
        let params = [json!(canonical), json!(login), json!(login.to_lowercase()), json!(canonical)];
        let rows = self.db.fetch_all(sql, &params).await?;
        Ok(rows.first().map(user_from))
    }

    /// The user with this id.
    ///
    /// # Errors
    /// The database failed.
    pub async fn get_user(&self, id: &str) -> Result<Option<StoredUser>, AuthError> {
        let row = self.db.fetch_optional("SELECT * FROM [kernel_users] WHERE [id] = ?", &[json!(id)]).await?;
        Ok(row.as_ref().map(user_from))
    }

    /// Replaces a user's password and ends all their sessions (access and refresh
    /// tokens).
    ///
    /// # Errors
    /// The database failed.
    pub async fn set_password(&self, user_id: &str, password: &str) -> Result<(), AuthError> {
        let hash = hash_password_async(password).await?;
        let sql = "UPDATE [kernel_users] SET [password_hash] = ?, [updated_at] = ? WHERE [id] = ?";
        self.db.execute(sql, &[json!(hash), json!(now()), json!(user_id)]).await?;
        self.end_sessions(user_id).await
    }

    /// Activates or deactivates an account; deactivation also ends its sessions.
    ///
    /// # Errors
    /// The database failed.
    pub async fn set_active(&self, user_id: &str, active: bool) -> Result<(), AuthError> {
        let sql = "UPDATE [kernel_users] SET [is_active] = ?, [updated_at] = ? WHERE [id] = ?";
        self.db.execute(sql, &[json!(i64::from(active)), json!(now()), json!(user_id)]).await?;
        self.identities.forget(user_id);
        if !active {
            self.end_sessions(user_id).await?;
        }
        Ok(())
    }

    /// The identity behind `user_id` if the account exists and is active, with its
    /// token version.
    async fn active_identity(&self, user_id: &str) -> Result<(Arc<UserIdentity>, u64), AuthError> {
        if let Some(cached) = self.identities.get(user_id) {
            return Ok(cached);
        }
        match self.get_user(user_id).await? {
            None => Err(AuthError::InvalidToken),
            Some(user) if !user.is_active => Err(AuthError::InactiveUser),
            Some(user) => {
                let identity = Arc::new(user.identity);
                self.identities.put(&identity, user.token_version);
                Ok((identity, user.token_version))
            }
        }
    }

    /// As an [`IdentitySource`] for [`Auth::with_identity_source`](super::Auth::with_identity_source).
    pub fn into_source(self) -> Arc<dyn IdentitySource> {
        Arc::new(self)
    }
}

/// At start-up, in `local` and `apikey` mode: creates the tables, makes the store
/// the identity source, and creates the first admin from `admin_email` and
/// `admin_password` when no admin exists. In `external` mode `auth` is unchanged.
///
/// # Errors
/// The database refused the DDL or the admin.
pub(crate) async fn attach(
    auth: super::Auth,
    db: &Db,
    settings: &super::AuthSettings,
) -> Result<super::Auth, AuthError> {
    if auth.mode() == super::AuthMode::External {
        return Ok(auth);
    }
    let store = UserStore::new(db.clone());
    store.identities.set_ttl(settings.identity_cache_ttl);
    store.create_tables().await?;
    if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) {
        use secrecy::ExposeSecret as _;
        if let Some(admin) = store.ensure_first_admin(email, password.expose_secret()).await? {
            tracing::info!(user_id = %admin.id, username = %admin.username, "first admin created from ADMIN_EMAIL");
        }
    }
    Ok(auth.with_user_store(store))
}

#[async_trait]
impl IdentitySource for UserStore {
    async fn identify_token(&self, claims: &Claims) -> Result<Arc<UserIdentity>, AuthError> {
        let (identity, version) = self.active_identity(&claims.sub).await?;
        if claims.ver.unwrap_or(0) != version {
            return Err(AuthError::Revoked);
        }
        Ok(identity)
    }

    async fn identify_api_key(&self, key: &ApiKey) -> Result<Arc<UserIdentity>, AuthError> {
        let user_id = self.use_api_key(key).await?.ok_or(AuthError::InvalidApiKey)?;
        self.active_identity(&user_id).await.map(|(identity, _)| identity).map_err(|e| match e {
            AuthError::InvalidToken => AuthError::InvalidApiKey,
            e => e,
        })
    }
}
