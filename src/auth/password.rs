//! Password hashing: argon2id with the OWASP parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so the
//! parameters travel with each hash and can be raised later without breaking old
//! ones. Hashing takes tens of milliseconds of CPU and 19 MiB: async code uses
//! [`hash_password_async`] / [`check_password`], which run on a few threads of their
//! own, one per core (so a burst of logins cannot take the process's memory), and
//! answer [`AuthError::Busy`] (503) when none frees up within [`HASHING_QUEUE_WAIT`].
//! A hashing thread reuses its 19 MiB for the hashes that come within
//! [`HASHING_MEMORY_KEPT`] and then gives them back to the system: a login does not
//! leave the process 19 MiB larger.
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

use std::sync::{mpsc, Arc, LazyLock, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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
    /// and free it themselves after [`HASHING_MEMORY_KEPT`] without a hash).
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

/// Whether this thread holds argon2 memory.
fn holds_blocks() -> bool {
    BLOCKS.with(|blocks| blocks.borrow().capacity() > 0)
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

/// How long a hashing thread keeps its memory after a hash, for the next one.
pub const HASHING_MEMORY_KEPT: Duration = Duration::from_secs(1);

/// The hashing threads: one per core, each hashing one password at a time.
///
/// Each hash or verification takes [`ARGON2_MEMORY_KIB`] of memory. On tokio's
/// blocking pool a burst of logins ran hundreds at once (100 logins: 1.8 GiB) and
/// the allocator kept much of it afterwards, in an arena per thread. Here at most
/// one per core runs, always on the same few threads, so the memory is bounded by
/// `cores * 19 MiB`; the rest wait their turn (at most [`HASHING_QUEUE_WAIT`]). A
/// thread reuses its memory for the hashes that follow within
/// [`HASHING_MEMORY_KEPT`] and then gives it back. The pool is per process on
/// purpose: the cores and the memory it guards are the process's, whatever number
/// of services it runs.
struct Hashers {
    permits: Arc<Semaphore>,
    /// Each thread's queue.
    threads: Vec<mpsc::Sender<Job>>,
    /// The threads without a job: as many as there are free permits.
    idle: Arc<Mutex<Vec<usize>>>,
}

type Job = Box<dyn FnOnce() + Send>;

static HASHERS: LazyLock<Hashers> = LazyLock::new(|| {
    let count = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let mut threads = Vec::with_capacity(count);
    for i in 0..count {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new().name(format!("argon2-{i}")).spawn(move || {
            KEEPS_BLOCKS.set(true);
            loop {
                let job = if holds_blocks() {
                    match rx.recv_timeout(HASHING_MEMORY_KEPT) {
                        Ok(job) => job,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            free_blocks();
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                } else {
                    let Ok(job) = rx.recv() else { return };
                    job
                };
                // A panicking job drops its answer channel (the caller gets an error); the thread lives on.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
        });
        match spawned {
            Ok(_) => threads.push(tx),
            Err(e) => tracing::error!(error = %e, "cannot start a password hashing thread"),
        }
    }
    let idle = Arc::new(Mutex::new((0..threads.len()).collect()));
    Hashers { permits: Arc::new(Semaphore::new(threads.len())), threads, idle }
});

/// A thread's turn: gives the thread back to the idle ones, then the permit, even
/// when the job panics.
struct Turn {
    thread: usize,
    idle: Arc<Mutex<Vec<usize>>>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(self.thread);
    }
}

/// Runs `work` on a hashing thread once one is free (waiting at most [`HASHING_QUEUE_WAIT`]).
async fn on_hasher<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, AuthError> {
    let hashers = &*HASHERS;
    let permit = match tokio::time::timeout(HASHING_QUEUE_WAIT, Arc::clone(&hashers.permits).acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) | Err(_) => return Err(AuthError::Busy { retry_after: 1 }),
    };
    let gone = || AuthError::Internal("password hashing threads are gone".into());
    // A permit is a free thread: there are as many of each.
    let thread = hashers.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop().ok_or_else(gone)?;
    let turn = Turn { thread, idle: Arc::clone(&hashers.idle), _permit: permit };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let _ = tx.send(work());
        drop(turn);
    });
    hashers.threads[thread].send(job).map_err(|_| gone())?;
    rx.await.map_err(|_| AuthError::Internal("password hashing failed".into()))
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
