//! Password hashing: argon2id with the OWASP parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so the
//! parameters travel with each hash and can be raised later without breaking old
//! ones. Hashing takes tens of milliseconds of CPU and 19 MiB: async code uses
//! [`hash_password_async`] / [`check_password`], which run on a few threads of their
//! own, one per core (so a burst of logins cannot take the process's memory), and
//! answer [`AuthError::Busy`] (503) when none frees up within [`HASHING_QUEUE_WAIT`].
//! The 19 MiB are given back to the system once no hash is waiting for a thread: a
//! login does not leave the process 19 MiB larger.
//! [`dummy_verify`] costs what a real check costs, so a login for an unknown user
//! takes as long as a wrong password.
//!
//! Inputs are bounded before any of this: the routes refuse a password over
//! [`MAX_PASSWORD_BYTES`].
//!
//! ```
//! use app_kernel::auth::{hash_password, verify_password};
//! let hash = hash_password("correct horse").unwrap();
//! assert!(verify_password("correct horse", &hash));
//! assert!(!verify_password("wrong", &hash));
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, LazyLock, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

use super::AuthError;

/// Memory cost in KiB (OWASP: 19 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 19_456;
/// Iterations (OWASP: 2).
pub const ARGON2_ITERATIONS: u32 = 2;
/// Lanes (OWASP: 1).
pub const ARGON2_PARALLELISM: u32 = 1;
/// The longest password the routes accept (1 KiB), checked before any hashing.
pub const MAX_PASSWORD_BYTES: usize = 1024;

fn hasher() -> Argon2<'static> {
    // The constants are within argon2's bounds, so `Params::new` cannot fail.
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

thread_local! {
    /// The argon2 working memory of this thread, reused while hashes queue: a
    /// 19 MiB allocation per hash, freed among other allocations, fragmented the
    /// heap until a burst of 200 logins peaked at 240 MiB even on two threads.
    static BLOCKS: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Whether this thread keeps its memory after a hash (the hashing threads do,
    /// and free it themselves when no hash waits).
    static KEEPS_BLOCKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The capacity a thread's working memory is reserved with, in blocks of 1 KiB: past
/// the largest threshold to which glibc's malloc raises its mmap threshold by itself
/// (32 MiB on 64-bit), so the memory is always a mapping of its own, which freeing
/// gives back to the system whole. At the OWASP parameters only 19 MiB of it is ever
/// touched, hence resident. (A 19 MiB allocation is below the threshold once one was
/// freed, comes from a heap arena instead, and stays resident after it is freed.)
const BLOCKS_RESERVED: usize = 33 * 1024;

/// argon2 of `password` and `salt` into `out`, in this thread's memory.
fn argon2_into(argon: &Argon2<'_>, params: &Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> bool {
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        let need = params.block_count();
        if blocks.capacity() < need {
            *blocks = Vec::with_capacity(need.max(BLOCKS_RESERVED));
        }
        if blocks.len() < need {
            blocks.resize(need, Block::default());
        }
        let hashed = argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..need]).is_ok();
        if !KEEPS_BLOCKS.get() {
            *blocks = Vec::new();
        }
        hashed
    })
}

/// Gives this thread's argon2 memory back.
fn free_blocks() {
    BLOCKS.with(|blocks| *blocks.borrow_mut() = Vec::new());
}

/// Hashes a password with argon2id and a fresh random salt.
///
/// # Errors
/// [`AuthError::Internal`] if argon2 refuses the input (it never does for passwords
/// of any sensible length).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let fail = |e: &dyn std::fmt::Display| AuthError::Internal(format!("argon2: {e}"));
    let salt = Salt::generate(); // 16 random bytes from the OS, as before
    let argon = hasher();
    let params = argon.params().clone();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    if !argon2_into(&argon, &params, password.as_bytes(), &salt, &mut out) {
        return Err(fail(&"hashing refused the input"));
    }
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fail(&e))?,
        salt: Some(salt),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC `hash`. A malformed hash is a mismatch.
///
/// The comparison is constant-time (`subtle`).
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else { return false };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(parsed.algorithm.as_str()), Params::try_from(&parsed))
    else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else { return false };
    let expected = expected.as_bytes();
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params.clone());
    argon2_into(&argon, &params, password.as_bytes(), &salt, &mut out) && bool::from(out.ct_eq(expected))
}

static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_password("dummy password for timing").unwrap_or_default());

/// Spends the time of one real verification and returns `false`.
///
/// Call it when the user is unknown, so that "no such user" and "wrong password"
/// cannot be told apart by timing.
pub fn dummy_verify(password: &str) -> bool {
    let _ = verify_password(password, &DUMMY_HASH);
    false
}

/// How long a hash or verification waits for a free hashing thread before it is
/// refused with [`AuthError::Busy`] (503 with `Retry-After`).
pub const HASHING_QUEUE_WAIT: Duration = Duration::from_secs(2);

/// The hashing threads: one per core, each hashing one password at a time.
///
/// Each hash or verification takes [`ARGON2_MEMORY_KIB`] of memory. On tokio's
/// blocking pool a burst of logins ran hundreds at once (100 logins: 1.8 GiB) and
/// the allocator kept much of it afterwards, in an arena per thread. Here at most
/// one per core runs, always on the same few threads, so the memory is bounded by
/// `cores * 19 MiB` and reused; the rest wait their turn (at most
/// [`HASHING_QUEUE_WAIT`]). The pool is per process on purpose: the cores and the
/// memory it guards are the process's, whatever number of services it runs.
struct Hashers {
    permits: Arc<Semaphore>,
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Calls waiting for a permit: while there are any, a thread keeps its memory for the next.
    waiting: Arc<AtomicUsize>,
}

type Job = Box<dyn FnOnce() + Send>;

static HASHERS: LazyLock<Hashers> = LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    let waiting = Arc::new(AtomicUsize::new(0));
    for i in 0..threads {
        let rx = Arc::clone(&rx);
        let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
            KEEPS_BLOCKS.set(true);
            loop {
                let job = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                let Ok(job) = job else { return };
                // A panicking job drops its answer channel (the caller gets an error); the thread lives on.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a password hashing thread");
        }
    }
    Hashers { permits: Arc::new(Semaphore::new(threads)), jobs: Mutex::new(tx), waiting }
});

/// Runs `work` on a hashing thread once one is free (waiting at most [`HASHING_QUEUE_WAIT`]).
async fn on_hasher<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, AuthError> {
    let hashers = &*HASHERS;
    let waiting = Waiting::count(&hashers.waiting);
    let permit = match tokio::time::timeout(HASHING_QUEUE_WAIT, Arc::clone(&hashers.permits).acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) | Err(_) => return Err(AuthError::Busy { retry_after: 1 }),
    };
    drop(waiting);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let still_waiting = Arc::clone(&hashers.waiting);
    let job: Job = Box::new(move || {
        let answer = work();
        // Before answering, so that a caller who got its answer finds the memory given back.
        if still_waiting.load(Ordering::Acquire) == 0 {
            free_blocks();
        }
        let _ = tx.send(answer);
        drop(permit);
    });
    let sent = hashers.jobs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).send(job);
    sent.map_err(|_| AuthError::Internal("password hashing threads are gone".into()))?;
    rx.await.map_err(|_| AuthError::Internal("password hashing failed".into()))
}

/// One call counted in [`Hashers::waiting`] while it lives (a cancelled wait included).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::AcqRel);
        Self(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// [`hash_password`] on a hashing thread.
///
/// # Errors
/// As [`hash_password`]; [`AuthError::Busy`] when every hashing thread stayed busy
/// for [`HASHING_QUEUE_WAIT`].
pub async fn hash_password_async(password: &str) -> Result<String, AuthError> {
    let password = password.to_owned();
    on_hasher(move || hash_password(&password)).await?
}

/// [`verify_password`] on a hashing thread.
///
/// # Errors
/// [`AuthError::Busy`] when every hashing thread stayed busy for [`HASHING_QUEUE_WAIT`].
pub async fn check_password(password: &str, hash: &str) -> Result<bool, AuthError> {
    let (password, hash) = (password.to_owned(), hash.to_owned());
    on_hasher(move || verify_password(&password, &hash)).await
}

/// [`dummy_verify`] on a hashing thread: always `false`, after a real verification's work.
///
/// # Errors
/// [`AuthError::Busy`] when every hashing thread stayed busy for [`HASHING_QUEUE_WAIT`].
pub async fn check_dummy(password: &str) -> Result<bool, AuthError> {
    let password = password.to_owned();
    on_hasher(move || dummy_verify(&password)).await
}

/// [`verify_password`] on a hashing thread; `false` when it could not run (busy).
/// Prefer [`check_password`], which tells "busy" from "wrong".
pub async fn verify_password_async(password: &str, hash: &str) -> bool {
    check_password(password, hash).await.unwrap_or(false)
}

/// [`dummy_verify`] on a hashing thread.
pub async fn dummy_verify_async(password: &str) -> bool {
    check_dummy(password).await.unwrap_or(false)
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
    fn a_reference_hash_verifies() {
        // The argon2 reference implementation's argon2id vector (m=256, t=2, p=1, salt
        // "somesalt"): hashes stored before an argon2 upgrade keep verifying.
        let stored = "$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4";
        assert!(verify_password("password", stored));
        assert!(!verify_password("passwore", stored));
    }

    #[test]
    fn malformed_hashes_never_match() {
        assert!(!verify_password("x", ""));
        assert!(!verify_password("x", "not a phc string"));
        assert!(!verify_password("x", "$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB"));
        assert!(!dummy_verify("anything"));
    }

    #[tokio::test]
    async fn bounded_versions_agree() {
        let hash = hash_password_async("pw-12345678").await.unwrap();
        assert_eq!(check_password("pw-12345678", &hash).await, Ok(true));
        assert_eq!(check_password("nope", &hash).await, Ok(false));
        assert_eq!(check_dummy("nope").await, Ok(false));
    }

    #[tokio::test]
    async fn async_versions_agree() {
        let hash = hash_password_async("pw-12345678").await.unwrap();
        assert!(verify_password_async("pw-12345678", &hash).await);
        assert!(!verify_password_async("nope", &hash).await);
        assert!(!dummy_verify_async("nope").await);
    }
}
