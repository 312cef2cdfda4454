//! Wake-ups over Unix datagram sockets for the engines that notify no one
//! (MySQL/MariaDB): each worker's wake-up feed binds a socket in a folder of its queue's
//! own, and a process on the same host that stores a due job sends one byte to every
//! socket there once the job is committed.
//!
//! The folder is `app-kernel-jobs-HASH` in the temp dir (`std::env::temp_dir`, `TMPDIR`
//! where set), HASH from the database's location (its URL without password or query, see
//! `Db::location`), created `0700`; a folder that others may read or write is not used by
//! either side. Ringing never blocks and never fails the enqueue: a socket whose worker is
//! gone (a killed process leaves its file) refuses the byte and its file is removed, and a
//! full socket already has a wake-up waiting. Processes that name the database differently
//! (`localhost` against `127.0.0.1`, or another temp dir) do not reach each other; their
//! workers still find the jobs with their due checks.

use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// The folder of the sockets of the queue at `location`.
fn folder(location: &str) -> PathBuf {
    let hash = Sha256::digest(location.as_bytes());
    std::env::temp_dir().join(format!("app-kernel-jobs-{}", data_encoding::HEXLOWER.encode(&hash[..8])))
}

#[cfg(unix)]
mod unix {
    use std::io::ErrorKind;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    use std::path::{Path, PathBuf};

    use futures::StreamExt;

    use crate::jobs::wakeups::Messages;

    /// Whether `dir` is a folder that only its owner may use.
    fn private(dir: &Path) -> Result<(), String> {
        let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if !meta.is_dir() || meta.permissions().mode() & 0o077 != 0 {
            return Err(format!("{} is not a folder of mode 0700", dir.display()));
        }
        Ok(())
    }

    /// One worker's socket; its file is removed when it is dropped.
    #[derive(Debug)]
    pub(in crate::jobs::sql) struct Bell {
        socket: tokio::net::UnixDatagram,
        path: PathBuf,
    }

    impl Drop for Bell {
        fn drop(&mut self) {
            drop(std::fs::remove_file(&self.path));
        }
    }

    impl Bell {
        /// Binds a socket in the folder of the queue at `location` (created if needed).
        pub(in crate::jobs::sql) fn bind(location: &str) -> Result<Self, String> {
            let dir = super::folder(location);
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("{}: {e}", dir.display())),
            }
            private(&dir)?;
            let path = dir.join(format!("{}.sock", uuid::Uuid::new_v4().simple()));
            let socket = tokio::net::UnixDatagram::bind(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(Self { socket, path })
        }

        /// An item per ring (the bytes waiting are read at once: one item for them all);
        /// an error, and the end, if the socket fails.
        pub(in crate::jobs::sql) fn rings(self) -> Messages {
            futures::stream::unfold(Some(self), |bell| async move {
                let bell = bell?;
                let mut buf = [0_u8; 8];
                match bell.socket.recv(&mut buf).await {
                    Ok(_) => {
                        while bell.socket.try_recv(&mut buf).is_ok() {}
                        Some((Ok(()), Some(bell)))
                    }
                    Err(e) => Some((Err(format!("job wake-up socket: {e}")), None)),
                }
            })
            .boxed()
        }
    }

    /// Sends one byte to each socket of the queue at `location`; removes the files of
    /// sockets nobody holds. Returns how many sockets took the byte.
    pub(in crate::jobs::sql) fn ring(location: &str) -> usize {
        let dir = super::folder(location);
        let Ok(entries) = std::fs::read_dir(&dir) else { return 0 };
        if private(&dir).is_err() {
            return 0;
        }
        let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else { return 0 };
        if socket.set_nonblocking(true).is_err() {
            return 0;
        }
        let mut rung = 0;
        for path in entries.filter_map(|entry| Some(entry.ok()?.path())) {
            if path.extension().is_none_or(|ext| ext != "sock") {
                continue;
            }
            match socket.send_to(&[1], &path) {
                Ok(_) => rung += 1,
                // No socket behind the file: its worker is gone.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => drop(std::fs::remove_file(&path)),
                // Full (a wake-up is waiting already), or gone meanwhile.
                Err(_) => {}
            }
        }
        rung
    }
}

#[cfg(not(unix))]
mod other {
    use crate::jobs::wakeups::Messages;

    /// No sockets here: workers check every 10 ms.
    #[derive(Debug)]
    pub(in crate::jobs::sql) struct Bell;

    impl Bell {
        pub(in crate::jobs::sql) fn bind(_location: &str) -> Result<Self, String> {
            Err("no Unix datagram sockets on this OS".to_owned())
        }

        pub(in crate::jobs::sql) fn rings(self) -> Messages {
            Box::pin(futures::stream::pending())
        }
    }

    pub(in crate::jobs::sql) fn ring(_location: &str) -> usize {
        0
    }
}

#[cfg(not(unix))]
pub(super) use other::{ring, Bell};
#[cfg(unix)]
pub(super) use unix::{ring, Bell};

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;

    use super::{folder, ring, Bell};

    fn location(test: &str) -> String {
        format!("mysql://test@doorbell/{test}-{}", uuid::Uuid::new_v4().simple())
    }

    #[tokio::test]
    async fn a_ring_reaches_every_bound_socket_once() {
        let at = location("reaches");
        let (a, b) = (Bell::bind(&at).unwrap(), Bell::bind(&at).unwrap());
        assert_eq!(ring(&at), 2);
        assert_eq!(ring(&at), 2);
        for bell in [a, b] {
            let mut rings = bell.rings();
            let first = tokio::time::timeout(Duration::from_secs(5), rings.next()).await.unwrap();
            assert_eq!(first, Some(Ok(())));
            // Both bytes were read for the first item.
            assert!(tokio::time::timeout(Duration::from_millis(50), rings.next()).await.is_err());
        }
        assert_eq!(ring(&at), 0, "a dropped bell's file is removed");
        drop(std::fs::remove_dir(folder(&at)));
    }

    #[tokio::test]
    async fn a_stale_socket_file_is_removed_and_the_live_one_still_rung() {
        let at = location("stale");
        let live = Bell::bind(&at).unwrap();
        // A killed worker's socket: the file stays, nobody receives.
        let stale = folder(&at).join("stale.sock");
        drop(std::os::unix::net::UnixDatagram::bind(&stale).unwrap());
        assert!(stale.exists());
        assert_eq!(ring(&at), 1);
        assert!(!stale.exists());
        let first = tokio::time::timeout(Duration::from_secs(5), live.rings().next()).await.unwrap();
        assert_eq!(first, Some(Ok(())));
        drop(std::fs::remove_dir(folder(&at)));
    }

    #[test]
    fn a_folder_others_may_use_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let at = location("open");
        let dir = folder(&at);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(Bell::bind(&at).is_err());
        std::os::unix::net::UnixDatagram::bind(dir.join("x.sock")).unwrap();
        assert_eq!(ring(&at), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ringing_a_queue_without_workers_does_nothing() {
        assert_eq!(ring(&location("none")), 0);
    }
}
