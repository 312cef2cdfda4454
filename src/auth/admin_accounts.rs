//! The admin accounts of the [`UserStore`]: the start-up admin, `create-admin` and
//! `promote-admin`.
//!
//! Guarantee: creating an admin only ever creates a new account. An account that
//! already holds the email or login name is never promoted or reactivated by it;
//! promoting is a separate act ([`UserStore::promote_admin`]) that names the account
//! by its exact username.

use serde_json::json;

use super::admin::AdminError;
use super::store::{now, user_from, NewUser, UserStore};
use super::{AuthError, UserIdentity, ADMIN_ROLE};

impl UserStore {
    /// Whether any active admin exists.
    ///
    /// # Errors
    /// The database failed.
    pub async fn has_admin(&self) -> Result<bool, AuthError> {
        let sql = "SELECT [id] FROM [kernel_users] WHERE [role] = ? AND [is_active] = 1 LIMIT 1";
        Ok(self.db.fetch_optional(sql, &[json!(ADMIN_ROLE)]).await?.is_some())
    }

    /// Creates the admin `email` (login name: `username`, or one derived from the
    /// email's local part). Only ever creates: if any account already
    /// has this email or login name, nothing is changed and the answer is
    /// [`AdminError::Taken`], so a stranger's account is never made an admin.
    ///
    /// # Errors
    /// [`AdminError::Taken`]; [`AdminError::Store`] when the database failed.
    pub async fn create_admin(
        &self,
        email: &str,
        password: &str,
        username: Option<&str>,
    ) -> Result<UserIdentity, AdminError> {
        let username = match username {
            Some(name) => {
                super::username::canonical_username(name).ok_or(AdminError::Store(AuthError::InvalidUsername))?
            }
            None => default_username(email),
        };
        let email = email.to_lowercase();
        if self.login_taken(&email).await? {
            return Err(AdminError::Taken { what: "email", value: email });
        }
        if self.login_taken(&username).await? {
            return Err(AdminError::Taken { what: "username", value: username });
        }
        let new = NewUser { username: &username, email: Some(&email), password, role: ADMIN_ROLE };
        match self.create_user(&new).await {
            Ok(admin) => Ok(admin),
            // Another process created an account with this name or email meanwhile.
            Err(AuthError::Conflict(_)) => Err(AdminError::Taken { what: "username or email", value: username }),
            Err(e) => Err(AdminError::Store(e)),
        }
    }

    /// Whether `login` is any account's username or email, active or not.
    async fn login_taken(&self, login: &str) -> Result<bool, AuthError> {
        let sql = "SELECT [id] FROM [kernel_users] WHERE [username] = ? OR [email] = ? LIMIT 1";
        Ok(self.db.fetch_optional(sql, &[json!(login), json!(login.to_lowercase())]).await?.is_some())
    }

    /// Makes the active account whose username is exactly `username` an admin (the
    /// `promote-admin` command). Never matches an email or a derived name, and never
    /// reactivates a deactivated account.
    ///
    /// # Errors
    /// [`AdminError::NoSuchUser`], [`AdminError::Inactive`], [`AdminError::Store`].
    pub async fn promote_admin(&self, username: &str) -> Result<UserIdentity, AdminError> {
        let sql = "SELECT * FROM [kernel_users] WHERE [username] = ?";
        let exact = super::username::canonical_username(username).unwrap_or_else(|| username.to_owned());
        let row = self.db.fetch_optional(sql, &[json!(exact)]).await.map_err(AuthError::from)?;
        let user = row.as_ref().map(user_from).ok_or_else(|| AdminError::NoSuchUser(username.to_owned()))?;
        if !user.is_active {
            return Err(AdminError::Inactive(username.to_owned()));
        }
        if user.identity.role != ADMIN_ROLE {
            self.set_role(&user.identity.id, ADMIN_ROLE).await?;
        }
        Ok(user.identity.with_role(ADMIN_ROLE))
    }

    /// Changes a user's role; their access tokens stop working (they log in again,
    /// or refresh, to get one with the new role).
    ///
    /// # Errors
    /// The database failed.
    pub async fn set_role(&self, user_id: &str, role: &str) -> Result<(), AuthError> {
        let sql = "UPDATE [kernel_users] SET [role] = ?, [updated_at] = ? WHERE [id] = ?";
        self.db.execute(sql, &[json!(role), json!(now()), json!(user_id)]).await?;
        self.bump_token_version(user_id).await
    }

    /// At start-up: creates the admin from `ADMIN_EMAIL`/`ADMIN_PASSWORD` if no active
    /// admin exists. An existing account with that email or login name is left as it
    /// is (a warning is logged): start-up never promotes or reactivates an account.
    ///
    /// # Errors
    /// The database failed.
    pub async fn ensure_first_admin(&self, email: &str, password: &str) -> Result<Option<UserIdentity>, AuthError> {
        if self.has_admin().await? {
            return Ok(None);
        }
        match self.create_admin(email, password, None).await {
            Ok(admin) => Ok(Some(admin)),
            Err(AdminError::Taken { what, value }) => {
                tracing::warn!(
                    taken = what,
                    value = %value,
                    "ADMIN_EMAIL: an account with this {what} already exists; it is left as it is and no admin \
                     was created (make an existing account an admin with `promote-admin --username NAME`)"
                );
                Ok(None)
            }
            Err(AdminError::Store(e)) => Err(e),
            Err(e) => Err(AuthError::Internal(e.to_string())),
        }
    }
}

/// `ann@example.com` logs in as `ann`, or as `admin` when the local part is not a
/// valid username (too short, `+` or other characters); the email works always.
pub(super) fn default_username(email: &str) -> String {
    let local = email.split_once('@').map_or(email, |(local, _)| local);
    super::username::canonical_username(local).unwrap_or_else(|| "admin".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_username_from_email() {
        assert_eq!(default_username("ann@example.com"), "ann");
        assert_eq!(default_username("Al@example.com"), "admin");
        assert_eq!(default_username("ann+ops@example.com"), "admin");
        assert_eq!(default_username("Root"), "root");
    }
}
