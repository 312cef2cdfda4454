//! Refresh-token rotation on [`UserStore`]: each refresh token is exchanged at
//! most once.
//!
//! Exchanging a token marks it used in the same statement that checks it was not
//! (so two concurrent exchanges cannot both win); presenting a used or revoked
//! token again is treated as theft and revokes its whole family, the newer
//! siblings included.

use serde_json::json;

use super::store::{now, UserStore};
use super::{AuthError, Claims, IssuedPair, Tokens};

impl UserStore {
    /// Records a freshly issued refresh token.
    ///
    /// # Errors
    /// The database failed.
    pub async fn record_refresh(&self, claims: &Claims) -> Result<(), AuthError> {
        let sql = "INSERT INTO [kernel_refresh_tokens] ([jti], [family], [user_id], [expires_at], [created_at]) \
                   VALUES (?, ?, ?, ?, ?)";
        let family = claims.fam.clone().unwrap_or_else(|| claims.jti.clone());
        let params = [json!(claims.jti), json!(family), json!(claims.sub), json!(claims.exp), json!(now())];
        self.db.execute(sql, &params).await?;
        Ok(())
    }

    /// Issues a pair for the active user (at their current token version) and
    /// records its refresh token.
    ///
    /// # Errors
    /// Signing or the database failed.
    pub async fn issue_pair(
        &self,
        tokens: &Tokens,
        user: &super::StoredUser,
        family: Option<&str>,
    ) -> Result<IssuedPair, AuthError> {
        let pair = tokens.issue_pair_versioned(&user.identity, family, user.token_version)?;
        self.record_refresh(&pair.refresh.claims).await?;
        Ok(pair)
    }

    /// Exchanges a verified refresh token's claims for a new pair of the same family.
    ///
    /// # Errors
    /// [`AuthError::Revoked`] for an unknown, used or revoked token (a reuse revokes
    /// the family); [`AuthError::InactiveUser`] or [`AuthError::InvalidToken`] when the
    /// user is deactivated or gone.
    pub async fn rotate_refresh(&self, tokens: &Tokens, claims: &Claims) -> Result<IssuedPair, AuthError> {
        let sql = "UPDATE [kernel_refresh_tokens] SET [used_at] = ? \
                   WHERE [jti] = ? AND [user_id] = ? AND [used_at] IS NULL AND [revoked_at] IS NULL";
        let claimed = self.db.execute(sql, &[json!(now()), json!(claims.jti), json!(claims.sub)]).await?;
        if claimed == 0 {
            let row = self
                .db
                .fetch_optional("SELECT [family] FROM [kernel_refresh_tokens] WHERE [jti] = ?", &[json!(claims.jti)])
                .await?;
            if let Some(family) = row.as_ref().and_then(|r| super::store::text(r, "family")) {
                tracing::warn!(user_id = %claims.sub, family = %family, "refresh token reused: family revoked");
                self.revoke_family(&family).await?;
            }
            return Err(AuthError::Revoked);
        }
        let user = match self.get_user(&claims.sub).await? {
            None => return Err(AuthError::InvalidToken),
            Some(u) if !u.is_active => return Err(AuthError::InactiveUser),
            Some(u) => u,
        };
        let family = claims.fam.as_deref().unwrap_or(&claims.jti);
        self.issue_pair(tokens, &user, Some(family)).await
    }

    /// Revokes every refresh token of a family (one login session).
    ///
    /// # Errors
    /// The database failed.
    pub async fn revoke_family(&self, family: &str) -> Result<(), AuthError> {
        let sql = "UPDATE [kernel_refresh_tokens] SET [revoked_at] = ? WHERE [family] = ? AND [revoked_at] IS NULL";
        self.db.execute(sql, &[json!(now()), json!(family)]).await?;
        Ok(())
    }

    /// Revokes every refresh token of a user (password change, deactivation).
    ///
    /// # Errors
    /// The database failed.
    pub async fn revoke_user_tokens(&self, user_id: &str) -> Result<(), AuthError> {
        let sql = "UPDATE [kernel_refresh_tokens] SET [revoked_at] = ? WHERE [user_id] = ? AND [revoked_at] IS NULL";
        self.db.execute(sql, &[json!(now()), json!(user_id)]).await?;
        Ok(())
    }

    /// Deletes refresh tokens that expired more than a day ago; returns how many.
    ///
    /// # Errors
    /// The database failed.
    pub async fn purge_expired_refresh(&self) -> Result<u64, AuthError> {
        let cutoff = chrono::Utc::now().timestamp() - 86_400;
        Ok(self.db.execute("DELETE FROM [kernel_refresh_tokens] WHERE [expires_at] < ?", &[json!(cutoff)]).await?)
    }
}
