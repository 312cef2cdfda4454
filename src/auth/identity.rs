//! [`UserIdentity`]: who the caller is, as handlers see it (the spec's `UserIdentity`).
//!
//! It is what `GET /auth/me` returns and what the extractors deref to. It never
//! holds a password hash or any other secret.

use serde::{Deserialize, Serialize};

/// The role that passes [`AdminUser`](super::AdminUser).
pub const ADMIN_ROLE: &str = "admin";
/// The role of a newly registered user.
pub const USER_ROLE: &str = "user";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserIdentity {
    /// Stable user id (the token's `sub`).
    pub id: String,
    /// Login name.
    pub username: String,
    /// Email, if the user has one.
    pub email: Option<String>,
    /// `admin` or `user` (apps may add their own roles).
    pub role: String,
}

impl UserIdentity {
    /// A user with the `user` role.
    pub fn new(id: impl Into<String>, username: impl Into<String>) -> Self {
        Self { id: id.into(), username: username.into(), email: None, role: USER_ROLE.to_owned() }
    }

    /// Sets the email.
    #[must_use]
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the role.
    #[must_use]
    pub fn with_role(mut self, role: impl Into<String>) -> Self {
        self.role = role.into();
        self
    }

    /// Whether the caller has the `admin` role.
    pub fn is_admin(&self) -> bool {
        self.role == ADMIN_ROLE
    }

    /// The identity every request gets when `AuthSettings.enabled` is `false`
    /// (only accepted in debug mode): id and username `anonymous`, no email, and
    /// the `admin` role, so that every route, admin ones included, can be tried
    /// locally without logging in.
    pub fn anonymous_dev() -> Self {
        Self::new("anonymous", "anonymous").with_role(ADMIN_ROLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_is_a_role() {
        assert!(!UserIdentity::new("1", "ann").is_admin());
        assert!(UserIdentity::new("1", "ann").with_role("admin").is_admin());
        assert!(UserIdentity::anonymous_dev().is_admin());
    }

    #[test]
    fn serializes_as_the_me_route_answers() {
        let user = UserIdentity::new("7", "ann").with_email("ann@example.com");
        let json = serde_json::to_value(&user).unwrap();
        assert_eq!(json, serde_json::json!({"id":"7","username":"ann","email":"ann@example.com","role":"user"}));
    }
}
