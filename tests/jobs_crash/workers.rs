//! Worker processes: the test binary re-executed as `crash_worker_child`, killed with
//! SIGKILL (no cleanup at all) or stopped with SIGTERM (the worker's own shutdown).
//! Whatever is still running when [`Workers`] is dropped (a failed assertion) is killed.
//!
//! A worker says it is ready (its SIGTERM handler installed, its queue open) with a file
//! named after its pid in the `READY_DIR` it is given: SIGTERM is sent only to ready
//! workers, since one still starting would die of the signal's default action.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::engine::Target;

/// The variable naming the directory where a worker marks itself ready.
pub(crate) const READY_DIR: &str = "APP_KERNEL_CRASH_READY_DIR";
/// The longest wait for a worker to start.
const START_LIMIT: Duration = Duration::from_secs(30);

/// Worker processes in numbered slots, all on one target.
pub(crate) struct Workers {
    target: Target,
    slots: Vec<Option<Child>>,
    ready: tempfile::TempDir,
}

impl Workers {
    pub(crate) fn new(target: Target, slots: usize) -> Self {
        let ready = tempfile::tempdir().expect("temp dir");
        Self { target, slots: (0..slots).map(|_| None).collect(), ready }
    }

    /// Starts a worker process in `slot` (empty).
    pub(crate) fn spawn(&mut self, slot: usize) {
        assert!(self.slots[slot].is_none(), "slot {slot} is taken");
        let child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", "crash_worker_child", "--ignored", "--nocapture", "--test-threads=1"])
            .envs(self.target.env())
            .env(READY_DIR, self.ready.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker");
        self.slots[slot] = Some(child);
    }

    /// The process id of the worker in `slot`.
    pub(crate) fn pid(&self, slot: usize) -> u32 {
        self.slots[slot].as_ref().expect("a worker in the slot").id()
    }

    /// The process ids of the running workers.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.slots.iter().flatten().map(Child::id).collect()
    }

    /// SIGKILLs the worker in `slot` and reaps it.
    pub(crate) fn sigkill(&mut self, slot: usize) {
        let mut child = self.slots[slot].take().expect("a worker in the slot");
        child.kill().expect("SIGKILL"); // SIGKILL on Unix: the worker gets no say
        child.wait().expect("reap");
    }

    /// Waits until every worker is ready, sends each SIGTERM, then waits up to `within`
    /// for them all to exit.
    ///
    /// # Errors
    /// A worker that is still running at the deadline (it is then killed), or that exited
    /// with a failure.
    pub(crate) fn sigterm_all(&mut self, within: Duration) -> Result<(), String> {
        for child in self.slots.iter().flatten() {
            let marker = self.ready.path().join(child.id().to_string());
            let deadline = Instant::now() + START_LIMIT;
            while !marker.exists() {
                if Instant::now() >= deadline {
                    return Err(format!("a worker was not ready {START_LIMIT:?} after its start"));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        for child in self.slots.iter().flatten() {
            let pid = child.id().to_string();
            assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill(1)").success());
        }
        let deadline = Instant::now() + within;
        let mut result = Ok(());
        for slot in 0..self.slots.len() {
            let Some(mut child) = self.slots[slot].take() else { continue };
            match wait_until(&mut child, deadline) {
                Some(status) if status.success() => {}
                Some(status) => result = Err(format!("a worker exited with {status} after SIGTERM")),
                None => {
                    let _ = child.kill();
                    let _ = child.wait();
                    result = Err(format!("a worker was still running {within:?} after SIGTERM"));
                }
            }
        }
        result
    }
}

fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for mut child in self.slots.iter_mut().filter_map(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
