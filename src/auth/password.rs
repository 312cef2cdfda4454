//! Password hashing: argon2id with the OWASP parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so the
//! parameters travel with each hash and can be raised later without breaking old
//! ones. Hashing takes tens of milliseconds of CPU: async code uses
//! [`hash_password_async`] / [`verify_password_async`], which run on the blocking
//! pool instead of stalling the runtime. [`dummy_verify`] costs what a real check
//! costs, so a login for an unknown user takes as long as a wrong password.
//!
//! ```
//! use app_kernel::auth::{hash_password, verify_password};
//! let hash = hash_password("correct horse").unwrap();
//! assert!(verify_password("correct horse", &hash));
//! assert!(!verify_password("wrong", &hash));
//! ```

use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::AuthError;

/// Memory cost in KiB (OWASP: 19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// Iterations (OWASP: 2).
pub const ARGON2_ITERATIONS: u32 = 2;
/// Lanes (OWASP: 1).
pub const ARGON2_PARALLELISM: u32 = 1;

fn hasher() -> Argon2<'static> {
    // The constants are within argon2's bounds, so `Params::new` cannot fail.
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with argon2id and a fresh random salt.
///
/// # Errors
/// [`AuthError::Internal`] if argon2 refuses the input (it never does for passwords
/// of any sensible length).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Internal(format!("argon2: {e}")))
}

/// Whether `password` matches the PHC `hash`. A malformed hash is a mismatch.
///
/// The comparison is constant-time (argon2 compares the outputs with `subtle`).
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut OsRng);
    hasher().hash_password(b"dummy password for timing", &salt).map(|h| h.to_string()).unwrap_or_default()
});

/// Spends the time of one real verification and returns `false`.
///
/// Call it when the user is unknown, so that "no such user" and "wrong password"
/// cannot be told apart by timing.
pub fn dummy_verify(password: &str) -> bool {
    let _ = verify_password(password, &DUMMY_HASH);
    false
}

/// [`hash_password`] on the blocking thread pool.
///
/// # Errors
/// As [`hash_password`], or [`AuthError::Internal`] if the blocking task panicked.
pub async fn hash_password_async(password: &str) -> Result<String, AuthError> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AuthError::Internal(format!("hashing task: {e}")))?
}

/// [`verify_password`] on the blocking thread pool. A failed task is a mismatch.
pub async fn verify_password_async(password: &str, hash: &str) -> bool {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false)
}

/// [`dummy_verify`] on the blocking thread pool.
pub async fn dummy_verify_async(password: &str) -> bool {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || dummy_verify(&password)).await.unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_with_owasp_argon2id_and_verifies() {
        let hash = hash_password("s3cret-pass").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_password("s3cret-pass", &hash));
        assert!(!verify_password("s3cret-pasS", &hash));
        assert_ne!(hash, hash_password("s3cret-pass").unwrap(), "salts are random");
    }

    #[test]
    fn malformed_hashes_never_match() {
        assert!(!verify_password("x", ""));
        assert!(!verify_password("x", "not a phc string"));
        assert!(!verify_password("x", "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB"));
        assert!(!dummy_verify("anything"));
    }

    #[tokio::test]
    async fn async_versions_agree() {
        let hash = hash_password_async("pw-12345678").await.unwrap();
        assert!(verify_password_async("pw-12345678", &hash).await);
        assert!(!verify_password_async("nope", &hash).await);
        assert!(!dummy_verify_async("nope").await);
    }
}
