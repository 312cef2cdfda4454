use std::time::Duration;

use futures::StreamExt;
use rusqlite::Connection;

use super::*;

/// Far above a wake-up's milliseconds and the fallback's 10 ms, far below a test's patience.
const BOUND: Duration = Duration::from_secs(10);

/// A database file in `mode` with a table, and a connection of the watcher's own.
fn database(dir: &tempfile::TempDir, mode: &str) -> (String, Connection) {
    let path = dir.path().join("changes.db").to_string_lossy().into_owned();
    let writer = Connection::open(&path).unwrap();
    let _: String = writer.query_row(&format!("PRAGMA journal_mode={mode}"), [], |r| r.get(0)).unwrap();
    writer.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    (path.clone(), Connection::open(&path).unwrap())
}

/// Another connection (as another process would) commits one row.
fn commit_elsewhere(path: &str) {
    Connection::open(path).unwrap().execute("INSERT INTO t VALUES (1)", []).unwrap();
}

/// The first item of `changes` within [`BOUND`], after a commit made once it watches.
async fn sees_a_commit(mut changes: Notifications, path: &str) {
    // Nothing committed since it started: no item.
    let early = tokio::time::timeout(Duration::from_millis(100), changes.next()).await;
    assert!(early.is_err(), "an item before any commit: {early:?}");
    commit_elsewhere(path);
    let item = tokio::time::timeout(BOUND, changes.next()).await.expect("the commit was never seen");
    assert!(matches!(item, Some(Ok(()))), "{item:?}");
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_os_reports_a_commit_to_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (path, conn) = database(&dir, "wal");
    // On Linux with a file, the watcher takes the OS's reports, not the timer.
    let files = file_events::Files::open(&conn).expect("a watch on the folder");
    sees_a_commit(file_events::watch(files, conn).unwrap(), &path).await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_os_reports_a_commit_to_a_file_without_a_wal() {
    let dir = tempfile::tempdir().unwrap();
    let (path, conn) = database(&dir, "delete");
    let files = file_events::Files::open(&conn).expect("a watch on the folder");
    sees_a_commit(file_events::watch(files, conn).unwrap(), &path).await;
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn each_commit_after_an_item_is_seen_again() {
    let dir = tempfile::tempdir().unwrap();
    let (path, conn) = database(&dir, "wal");
    let mut changes = watch(conn).unwrap();
    for n in 0..3 {
        commit_elsewhere(&path);
        let item = tokio::time::timeout(BOUND, changes.next()).await;
        assert!(matches!(item, Ok(Some(Ok(())))), "commit {n}: {item:?}");
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_commit_is_reported_by_the_os_and_other_files_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let (path, conn) = database(&dir, "wal");
    let mut files = file_events::Files::open(&conn).unwrap();
    // A write to another file of the folder: no report, the safety question's time passes.
    std::fs::write(dir.path().join("app.log"), "a line").unwrap();
    assert!(!files.written().await.unwrap(), "a write to another file was taken for the database's");
    commit_elsewhere(&path);
    assert!(files.written().await.unwrap(), "the commit was not reported: only the safety question saw it");
}

#[tokio::test]
async fn the_fallback_sees_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (path, conn) = database(&dir, "wal");
    sees_a_commit(watch_polling(conn).unwrap(), &path).await;
}

#[tokio::test]
async fn a_database_without_a_file_falls_back_to_the_timer() {
    // A temporary database has no file to watch; the watcher still starts.
    let conn = Connection::open("").unwrap();
    #[cfg(target_os = "linux")]
    assert!(file_events::Files::open(&conn).is_err());
    assert!(watch(conn).is_ok());
}
