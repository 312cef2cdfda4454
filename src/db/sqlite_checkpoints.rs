//! WAL checkpoints off the request path.
//!
//! By default SQLite checkpoints inside the commit that takes the WAL past 1000
//! pages: that commit copies the pages back into the database file and syncs both
//! files, and every write queued behind it waits for the disk. That wait is the
//! tail of write latency. The kernel moves the work to a thread of its own with a
//! connection of its own: after a write, the thread lets writes gather (at least
//! [`GATHER`], and until [`BATCH`] of them came or [`LONGEST`] passed, so that a
//! trickle of writes costs a checkpoint a second, not one each), then
//!
//! 1. copies the WAL back with `PASSIVE` checkpoints, beside the writer and the
//!    readers (WAL lets a checkpoint run beside both), again while the last round
//!    copied more than [`SMALL_ROUND`] pages, and less than half of what the round
//!    before it copied: the bulk of the work;
//! 2. holds the kernel's writer still for a moment and checkpoints once more: only
//!    the few pages written during the last round are left to copy, and a WAL
//!    copied back in full is started over by the next write, so it stays small.
//!    (Without step 2 a busy writer always stays ahead of the checkpoint and the
//!    WAL only grows.)
//!
//! Under sustained writes the WAL grows by what is written during one cycle
//! (gathering, step 1 and step 2), and the checkpoints' fsyncs make that cycle as
//! slow as the disk: measured with 2 KB rows written back to back, 2-6 MB on a
//! quiet disk, 9-21 MB beside a process syncing 256 MB files. The writer's own
//! automatic checkpoint stays as a backstop at [`BACKSTOP_PAGES`], for a thread
//! that falls further behind.
//!
//! Durability is unchanged: what a commit guarantees depends on `synchronous`, not
//! on when the WAL is copied back.
//!
//! That the WAL is started over under writes that never pause is a rate, measured
//! against SQLite's own checkpoint by `cargo bench --bench sqlite_wal`, not asserted
//! by a timed unit test.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::db::DbError;

/// How long the thread lets writes gather before a checkpoint, at least.
pub(crate) const GATHER: Duration = Duration::from_millis(25);
/// So many writes end the gathering.
pub(crate) const BATCH: u64 = 100;
/// The longest a write waits for its checkpoint, however few came after it.
pub(crate) const LONGEST: Duration = Duration::from_secs(1);
/// Step 1 ends after a round that copied this few pages (or after [`MAX_ROUNDS`]).
pub(crate) const SMALL_ROUND: i64 = 64;
/// The most step-1 rounds per checkpoint.
pub(crate) const MAX_ROUNDS: usize = 8;
/// The writer checkpoints by itself past this many WAL pages (about 40 MiB of 4 KiB pages).
pub(crate) const BACKSTOP_PAGES: u32 = 10_000;

#[derive(Debug, Default)]
struct Flags {
    dirty: AtomicBool,
    /// Writes since the last checkpoint began.
    writes: AtomicU64,
    stop: AtomicBool,
}

/// The writer's side: tells the thread that something was written.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoints {
    flags: Arc<Flags>,
    thread: Thread,
}

/// The owner's side: stops the thread.
#[derive(Debug)]
pub(crate) struct CheckpointThread {
    flags: Arc<Flags>,
    handle: Option<JoinHandle<()>>,
}

/// The pool's writer connection (`None` once closed).
pub(crate) type Writer = tokio::sync::Mutex<Option<Connection>>;

/// Starts the thread on its own connection (from `open`); it holds `writer` still
/// for the end of each checkpoint.
pub(crate) fn start(
    open: impl FnOnce() -> Result<Connection, DbError>,
    writer: Weak<Writer>,
) -> Result<(Checkpoints, CheckpointThread), DbError> {
    let conn = open()?;
    let flags = Arc::new(Flags::default());
    let theirs = flags.clone();
    let handle = std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || run(&conn, &theirs, &writer))
        .map_err(|e| DbError::Connect(format!("could not start the checkpoint thread: {e}")))?;
    let checkpoints = Checkpoints { flags: flags.clone(), thread: handle.thread().clone() };
    Ok((checkpoints, CheckpointThread { flags, handle: Some(handle) }))
}

impl Checkpoints {
    /// After a write: counts it, and wakes the thread if it is idle.
    pub(crate) fn wrote(&self) {
        self.flags.writes.fetch_add(1, Ordering::Relaxed);
        if !self.flags.dirty.load(Ordering::Relaxed) && !self.flags.dirty.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}

impl CheckpointThread {
    /// Stops the thread and waits for it (at most one checkpoint).
    pub(crate) fn stop(mut self) {
        self.signal_stop();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }

    fn signal_stop(&self) {
        self.flags.stop.store(true, Ordering::Release);
        if let Some(handle) = &self.handle {
            handle.thread().unpark();
        }
    }
}

impl Drop for CheckpointThread {
    /// Without [`CheckpointThread::stop`]: the thread ends on its own, soon after.
    fn drop(&mut self) {
        self.signal_stop();
    }
}

fn run(conn: &Connection, flags: &Flags, writer: &Weak<Writer>) {
    let mut failures = 0_u64;
    loop {
        std::thread::park();
        if !flags.dirty.load(Ordering::Acquire) && !flags.stop.load(Ordering::Acquire) {
            continue; // a spurious wake-up
        }
        let first = Instant::now();
        loop {
            // Stopping: the pool closes, and SQLite checkpoints as the last connection closes.
            if flags.stop.load(Ordering::Acquire) {
                return;
            }
            std::thread::sleep(GATHER);
            if flags.writes.load(Ordering::Relaxed) >= BATCH || first.elapsed() >= LONGEST {
                break;
            }
        }
        if flags.stop.load(Ordering::Acquire) {
            return;
        }
        flags.writes.store(0, Ordering::Relaxed);
        flags.dirty.store(false, Ordering::Release);
        // Step 1, while each round copies clearly less than the last (it copies what
        // was written during the last): a writer as fast as the checkpoint keeps
        // rounds as long, and more of them would only delay step 2 while the WAL grows.
        let (mut copied, mut last_round) = (0, i64::MAX);
        for _ in 0..MAX_ROUNDS {
            let Some(now_copied) = checkpoint(conn, &mut failures) else { break };
            // (Negative when the WAL was started over, which counts from zero again.)
            let round = now_copied - copied;
            copied = now_copied;
            if round <= SMALL_ROUND || round > last_round / 2 {
                break;
            }
            last_round = round;
        }
        let Some(writer) = writer.upgrade() else { return };
        let held = writer.blocking_lock();
        if held.is_some() {
            checkpoint(conn, &mut failures);
        }
    }
}

/// One `PASSIVE` checkpoint: the WAL pages copied back so far (`None` if it failed;
/// the 1st, 2nd, 4th, 8th... failure is logged).
fn checkpoint(conn: &Connection, failures: &mut u64) -> Option<i64> {
    // It answers (busy, WAL pages, pages copied back), of the WAL as it was when the
    // checkpoint began; busy means another checkpoint is running, which does the same work.
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(2)) {
        Ok(copied) => Some(copied),
        Err(e) => {
            *failures += 1;
            if failures.is_power_of_two() {
                tracing::warn!(error = %e, failures = *failures, "SQLite WAL checkpoint failed; the writer's own checkpoint takes over");
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use serde_json::json;

    use crate::db::{DatabaseSettings, Db};

    async fn db(path: &Path) -> Db {
        Db::connect(&DatabaseSettings::sqlite(path.display().to_string()), "test").await.unwrap()
    }

    async fn write_rows(db: &Db, rows: usize) {
        db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)", &[]).await.unwrap();
        for _ in 0..rows {
            db.execute("INSERT INTO t (body) VALUES (?)", &[json!("x".repeat(2000))]).await.unwrap();
        }
    }

    #[tokio::test]
    async fn writes_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let db = db(&path).await;
        // 100 rows of 2 KB: ~60 WAL pages, far below the writer's own checkpoint.
        write_rows(&db, 100).await;
        let started = Instant::now();
        while std::fs::metadata(&path).unwrap().len() < 100 * 2000 {
            assert!(started.elapsed() < Duration::from_secs(10), "the WAL was never copied back");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // And the checkpoint did not lose anything.
        let count = db.fetch_all("SELECT COUNT(*) AS n FROM t", &[]).await.unwrap();
        assert_eq!(count[0]["n"], 100);
    }

    /// How many times the WAL at `path` was started over (the header's checkpoint
    /// sequence number, which each restart raises by one).
    fn wal_restarts(path: &Path) -> u32 {
        let header = std::fs::read(path).unwrap();
        u32::from_be_bytes(header[12..16].try_into().unwrap())
    }

    #[tokio::test]
    async fn a_trickle_of_writes_is_checkpointed_about_once_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let db = db(&path).await;
        write_rows(&db, 0).await;
        // A write every 20 ms for 2 s: a checkpoint after each would start the WAL
        // over about 50 times (49 here, with the gathering cut to one write); 2 here.
        let started = Instant::now();
        for _ in 0..100 {
            db.execute("INSERT INTO t (body) VALUES ('x')", &[]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let restarts = wal_restarts(&dir.path().join("c.db-wal"));
        assert!(restarts >= 1, "the WAL was never copied back");
        assert!(f64::from(restarts) <= seconds + 2.0, "the WAL was started over {restarts} times in {seconds:.1} s");
    }

    #[test]
    fn stop_ends_the_thread_even_mid_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let writer = std::sync::Arc::new(super::Writer::new(None));
        let open = || Ok(rusqlite::Connection::open(&path).unwrap());
        let (checkpoints, thread) = super::start(open, std::sync::Arc::downgrade(&writer)).unwrap();
        checkpoints.wrote(); // the thread is now gathering writes
        let (done, stopped) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            thread.stop();
            done.send(()).unwrap();
        });
        stopped.recv_timeout(Duration::from_secs(5)).expect("stop() returned");
    }
}
