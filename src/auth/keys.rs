//! API key storage on [`UserStore`]: created by an admin, shown once, stored as a
//! SHA-256 hash, looked up by that hash, revoked by setting `revoked_at`.

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::store::{now, text, UserStore};
use super::{ApiKey, ApiKeyHash, AuthError};
use crate::db::Row;

/// A stored API key as listed to admins (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ApiKeyInfo {
    /// UUID v7.
    pub id: String,
    /// What the key is for.
    pub name: String,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    /// The user the key acts as.
    pub user_id: String,
    /// When it was created.
    pub created_at: String,
    /// When it was last used.
    pub last_used_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

fn info(row: &Row) -> ApiKeyInfo {
    ApiKeyInfo {
        id: text(row, "id").unwrap_or_default(),
        name: text(row, "name").unwrap_or_default(),
        prefix: text(row, "prefix").unwrap_or_default(),
        user_id: text(row, "user_id").unwrap_or_default(),
        created_at: text(row, "created_at").unwrap_or_default(),
        last_used_at: text(row, "last_used_at"),
        revoked_at: text(row, "revoked_at"),
    }
}

impl UserStore {
    /// Creates a key acting as `user_id`; returns the key (show it once) and its record.
    ///
    /// # Errors
    /// The database failed.
    pub async fn create_api_key(&self, name: &str, user_id: &str) -> Result<(ApiKey, ApiKeyInfo), AuthError> {
        let (key, hash) = ApiKey::generate();
        let record = ApiKeyInfo {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_owned(),
            prefix: key.display_prefix().to_owned(),
            user_id: user_id.to_owned(),
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        let sql = "INSERT INTO [kernel_api_keys] ([id], [name], [key_hash], [prefix], [user_id], [created_at]) \
                   VALUES (?, ?, ?, ?, ?, ?)";
        let params = [
            json!(record.id),
            json!(record.name),
            json!(hash.as_str()),
            json!(record.prefix),
            json!(record.user_id),
            json!(record.created_at),
        ];
        self.db.execute(sql, &params).await?;
        Ok((key, record))
    }

    /// Every key, newest first.
    ///
    /// # Errors
    /// The database failed.
    pub async fn list_api_keys(&self) -> Result<Vec<ApiKeyInfo>, AuthError> {
        let rows = self.db.fetch_all("SELECT * FROM [kernel_api_keys] ORDER BY [id] DESC", &[]).await?;
        Ok(rows.iter().map(info).collect())
    }

    /// Revokes a key; `false` if there is no live key with this id.
    ///
    /// # Errors
    /// The database failed.
    pub async fn revoke_api_key(&self, id: &str) -> Result<bool, AuthError> {
        let sql = "UPDATE [kernel_api_keys] SET [revoked_at] = ? WHERE [id] = ? AND [revoked_at] IS NULL";
        Ok(self.db.execute(sql, &[json!(now()), json!(id)]).await? > 0)
    }

    /// The user id a live key acts as, recording its use; `None` for an unknown or revoked key.
    ///
    /// # Errors
    /// The database failed.
    pub async fn use_api_key(&self, key: &ApiKey) -> Result<Option<String>, AuthError> {
        let hash = key.hash();
        let sql =
            "SELECT [id], [key_hash], [user_id] FROM [kernel_api_keys] WHERE [key_hash] = ? AND [revoked_at] IS NULL";
        let Some(row) = self.db.fetch_optional(sql, &[json!(hash.as_str())]).await? else { return Ok(None) };
        let stored = ApiKeyHash::from_stored(text(&row, "key_hash").unwrap_or_default());
        if !stored.matches(key) {
            return Ok(None);
        }
        let update = "UPDATE [kernel_api_keys] SET [last_used_at] = ? WHERE [id] = ?";
        self.db.execute(update, &[json!(now()), json!(text(&row, "id"))]).await?;
        Ok(text(&row, "user_id"))
    }
}
