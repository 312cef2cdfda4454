//! Where log lines go: standard output, through a buffer.
//!
//! A line is appended to a shared buffer (one uncontended lock, no system call);
//! a background thread writes the buffer out every [`FLUSH_EVERY`], a writer that
//! fills it past [`FLUSH_AT_BYTES`] writes it at once, and the kernel flushes at
//! the end of `serve`, of every CLI command and on a panic. The access log costs
//! one `write` per few hundred requests instead of one per request.
//!
//! The trade-off: a process killed with SIGKILL (or `std::process::exit` without
//! [`flush`]) loses at most the last [`FLUSH_EVERY`] of lines.

use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Longest a line waits in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// A buffer this full is written out by the thread that filled it.
pub const FLUSH_AT_BYTES: usize = 64 * 1024;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static FLUSHER: OnceLock<()> = OnceLock::new();

/// The [`MakeWriter`] of the kernel's subscriber.
#[derive(Debug, Clone, Copy, Default)]
pub struct BufferedStdout;

impl BufferedStdout {
    /// Starts the flusher thread (once per process) and chains a flush into the
    /// panic hook, so a panic's own lines are not left in the buffer.
    pub fn start() -> Self {
        FLUSHER.get_or_init(|| {
            let spawned = std::thread::Builder::new().name("log-flush".into()).spawn(|| loop {
                std::thread::sleep(FLUSH_EVERY);
                flush();
            });
            if spawned.is_err() {
                eprintln!("app-kernel: could not start the log flusher thread; lines are written at {FLUSH_AT_BYTES} bytes and at exit");
            }
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                flush();
                previous(info);
            }));
        });
        Self
    }
}

/// Writes out every buffered line.
pub fn flush() {
    let Ok(mut buffer) = BUFFER.lock() else { return };
    write_out(&mut buffer);
}

fn write_out(buffer: &mut Vec<u8>) {
    if buffer.is_empty() {
        return;
    }
    let mut out = std::io::stdout().lock();
    // Nowhere to report a failed write of the log itself; the lines are dropped.
    let _ = out.write_all(buffer).and_then(|()| out.flush());
    buffer.clear();
}

/// Appends to the shared buffer; see the module doc.
#[derive(Debug)]
pub struct LineWriter;

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buffer = BUFFER.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        buffer.extend_from_slice(bytes);
        if buffer.len() >= FLUSH_AT_BYTES {
            write_out(&mut buffer);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BufferedStdout {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter
    }
}
