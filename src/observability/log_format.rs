//! The kernel's log line formats: JSON (one object per line) and pretty, both
//! carrying the `request_id` and `user_id` of the request being served, and the
//! `trace_id` of the request or job (see [`trace_context`](super::trace_context)).
//!
//! The JSON line is written directly (no intermediate map):
//! `{"timestamp":..,"level":..,"target":..,"message":..,<fields>,"request_id":..,"user_id":..,"trace_id":..,"span":{..}}`.
//! It is written once per request by the access log, so it is kept cheap: the
//! timestamp's date and time are formatted once per second, numbers go through
//! `itoa`/`ryu`, and strings with nothing to escape are copied whole.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::request_id;

/// One JSON object per event.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        // The line is built in a plain `String` and handed to the writer whole:
        // cheaper than a dynamic `fmt::Write` call per fragment.
        with_line(|line| {
            json_line(line, ctx, event);
            w.write_str(line)
        })
    }
}

/// Runs `f` with this thread's line buffer, emptied.
fn with_line<R>(f: impl FnOnce(&mut String) -> R) -> R {
    thread_local! {
        static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    LINE.with_borrow_mut(|line| {
        line.clear();
        f(line)
    })
}

/// Set once the kernel's own JSON subscriber is the global one: the access log may
/// then write its line straight to the log sink (see [`write_access_line`]).
pub(crate) static KERNEL_JSON_INSTALLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes the access log line of one request if the kernel's JSON subscriber is
/// installed and lets `http.access` INFO through; returns `false` (nothing
/// written) otherwise, and the caller emits a `tracing` event instead.
///
/// The line is exactly the one [`JsonLine`] writes for that event (a test holds
/// them equal) minus the `tracing` dispatch and field visits: the access log is
/// the one event every request pays for.
pub(crate) fn write_access_line(method: &str, route: &str, status: u16, latency_us: u64) -> bool {
    if !KERNEL_JSON_INSTALLED.load(std::sync::atomic::Ordering::Relaxed)
        || !tracing::enabled!(target: super::names::ACCESS_LOG_TARGET, tracing::Level::INFO)
    {
        return false;
    }
    with_line(|line| {
        access_line(line, std::time::SystemTime::now(), method, route, status, latency_us);
        let _ = std::io::Write::write_all(&mut super::log_sink::LineWriter, line.as_bytes());
    });
    true
}

fn access_line(line: &mut String, now: std::time::SystemTime, method: &str, route: &str, status: u16, us: u64) {
    push_head(line, now, "INFO", super::names::ACCESS_LOG_TARGET);
    // An HTTP method is a token: no character of it needs escaping.
    line.push_str(",\"message\":\"request\",\"method\":\"");
    line.push_str(method);
    line.push_str("\",\"route\":");
    push_json_str(line, route);
    line.push_str(",\"status\":");
    line.push_str(itoa::Buffer::new().format(status));
    line.push_str(",\"latency_ms\":");
    push_millis(line, us);
    push_request_context(line);
    line.push_str("}\n");
}

/// How every line starts: `{"timestamp":"…","level":"…","target":"…"`.
fn push_head(line: &mut String, now: std::time::SystemTime, level: &str, target: &str) {
    line.push_str("{\"timestamp\":\"");
    crate::timestamp::push_utc_micros(line, now);
    line.push_str("\",\"level\":\"");
    line.push_str(level);
    line.push_str("\",\"target\":");
    push_json_str(line, target);
}

/// `us` microseconds as milliseconds, written as `ryu` writes the float `us / 1000`
/// (the tracing path's form): `2.0`, `1.5`, `0.001`.
fn push_millis(line: &mut String, us: u64) {
    line.push_str(itoa::Buffer::new().format(us / 1000));
    line.push('.');
    // Three digits, trailing zeros dropped but one kept.
    let mut digits = itoa::Buffer::new();
    let frac = &digits.format(1000 + us % 1000).as_bytes()[1..];
    let len = frac.iter().rposition(|&d| d != b'0').map_or(1, |i| i + 1);
    line.push_str(std::str::from_utf8(&frac[..len]).unwrap_or("0"));
}

fn push_request_context(line: &mut String) {
    request_id::with_current(|id, user| {
        // Request ids are `[A-Za-z0-9._:-]` (see `request_id::is_valid`): nothing to escape.
        debug_assert!(request_id::is_valid(id.as_bytes()));
        line.push_str(",\"request_id\":\"");
        line.push_str(id);
        line.push('"');
        if let Some(user) = user {
            line.push_str(",\"user_id\":");
            push_json_str(line, user);
        }
    });
    push_trace_id(line);
}

/// `,"trace_id":"<32 hex>"` when the task runs a traced request or job.
fn push_trace_id(line: &mut String) {
    let len = line.len();
    line.push_str(",\"trace_id\":\"");
    // Hex digits: nothing to escape.
    if super::trace_context::push_current_trace_id(line) {
        line.push('"');
    } else {
        line.truncate(len);
    }
}

fn json_line<S, N>(line: &mut String, ctx: &FmtContext<'_, S, N>, event: &Event<'_>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let meta = event.metadata();
    push_head(line, std::time::SystemTime::now(), meta.level().as_str(), meta.target());
    event.record(&mut JsonFields { line: &mut *line });
    push_request_context(line);
    if let Some(span) = ctx.lookup_current() {
        line.push_str(",\"span\":");
        push_json_str(line, span.name());
        if let Some(f) = span.extensions().get::<FormattedFields<N>>().filter(|f| !f.is_empty()) {
            line.push_str(",\"span_fields\":");
            push_json_str(line, f.as_str());
        }
    }
    line.push_str("}\n");
}

/// The default human format, with the request and user id appended.
#[derive(Debug)]
pub struct PrettyLine(tracing_subscriber::fmt::format::Format);

impl Default for PrettyLine {
    /// Plain text (no colours), so the line can be extended safely.
    fn default() -> Self {
        Self(tracing_subscriber::fmt::format::Format::default().with_ansi(false))
    }
}

impl<S, N> FormatEvent<S, N> for PrettyLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        w.write_str(line.trim_end())?;
        request_id::with_current(|id, user| match user {
            Some(user) => write!(w, " request_id={id} user_id={user}"),
            None => write!(w, " request_id={id}"),
        })
        .transpose()?;
        if let Some(trace) = super::trace_context::current() {
            write!(w, " trace_id={}", trace.trace_id_hex())?;
        }
        w.write_char('\n')
    }
}

struct JsonFields<'a> {
    line: &'a mut String,
}

impl JsonFields<'_> {
    fn key(&mut self, field: &Field) -> &mut String {
        self.line.push(',');
        push_json_str(self.line, field.name());
        self.line.push(':');
        self.line
    }
}

impl Visit for JsonFields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        push_json_str(self.key(field), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field).push_str(itoa::Buffer::new().format(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field).push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        let line = self.key(field);
        if value.is_finite() {
            line.push_str(ryu::Buffer::new().format_finite(value));
        } else {
            // NaN and infinities are not JSON numbers.
            let _ = write!(line, "\"{value}\"");
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let line = self.key(field);
        line.push('"');
        // Writing into a `String` cannot fail.
        let _ = write!(Escaper(&mut *line), "{value:?}");
        line.push('"');
    }
}

fn push_json_str(line: &mut String, s: &str) {
    line.push('"');
    let _ = Escaper(&mut *line).write_str(s);
    line.push('"');
}

/// Escapes what it is given as the inside of a JSON string.
struct Escaper<'a>(&'a mut String);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Most strings need nothing: a scan without early exit (which the compiler
        // vectorises) lets them be copied whole.
        if !s.bytes().fold(false, |any, b| any | (b < 0x20) | (b == b'"') | (b == b'\\')) {
            self.0.push_str(s);
            return Ok(());
        }
        // Every byte JSON escapes is ASCII, so a byte scan never splits a character.
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let escaped = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..0x20 => {
                    self.0.push_str(&s[start..i]);
                    write!(self.0, "\\u{b:04x}")?;
                    start = i + 1;
                    continue;
                }
                _ => continue,
            };
            self.0.push_str(&s[start..i]);
            self.0.push_str(escaped);
            start = i + 1;
        }
        self.0.push_str(&s[start..]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_json_requires() {
        let mut out = String::new();
        push_json_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn the_direct_access_line_is_the_line_tracing_writes() {
        use std::sync::{Arc, Mutex};
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(JsonLine)
            .with_writer(move || WriteInto(sink.clone()))
            .finish();
        let latencies_us = [1250, 0, 1, 10, 100, 2000, 1500, 12_345, 999_999, 3_600_000_001];
        tracing::subscriber::with_default(subscriber, || {
            for us in latencies_us {
                tracing::info!(
                    target: crate::observability::names::ACCESS_LOG_TARGET,
                    message = "request",
                    method = "GET",
                    route = "/api/v1/widgets/{id}",
                    status = 404u16,
                    latency_ms = us as f64 / 1000.0,
                );
            }
        });
        let via_tracing = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let mut direct = String::new();
        for us in latencies_us {
            access_line(&mut direct, std::time::SystemTime::now(), "GET", "/api/v1/widgets/{id}", 404, us);
        }
        let after_timestamp = |l: &str| l.split_once("\",\"level\"").map(|(_, rest)| rest.to_owned());
        assert_eq!(direct.lines().count(), latencies_us.len(), "{direct}");
        assert_eq!(via_tracing.lines().count(), latencies_us.len(), "{via_tracing}");
        for (d, t) in direct.lines().zip(via_tracing.lines()) {
            assert!(after_timestamp(d).is_some(), "no timestamp and level in {d}");
            assert_eq!(after_timestamp(d), after_timestamp(t), "{d}\n{t}");
        }
        let direct = direct.lines().next().unwrap();
        let parsed: serde_json::Value = serde_json::from_str(direct).unwrap();
        assert_eq!(parsed["status"], 404);
        assert_eq!(parsed["route"], "/api/v1/widgets/{id}");
    }

    #[test]
    fn a_traced_tasks_lines_carry_its_trace_id() {
        use crate::observability::trace_context::{self, TraceContext, TraceParent};
        let parent = TraceParent::parse(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let trace = TraceContext::child_of(parent.as_ref());
        let mut line = String::new();
        futures::executor::block_on(trace_context::scope(trace, async {
            access_line(&mut line, std::time::SystemTime::now(), "GET", "/x", 200, 5);
        }));
        let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{line}");
        let mut untraced = String::new();
        access_line(&mut untraced, std::time::SystemTime::now(), "GET", "/x", 200, 5);
        let parsed: serde_json::Value = serde_json::from_str(&untraced).unwrap();
        assert!(parsed.get("trace_id").is_none(), "{untraced}");
    }

    #[test]
    fn the_pretty_line_carries_the_trace_id_too() {
        use crate::observability::trace_context::{self, TraceContext};
        use std::sync::{Arc, Mutex};
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(PrettyLine::default())
            .with_writer(move || WriteInto(sink.clone()))
            .finish();
        let trace = TraceContext::root_with_trace_id([0xab; 16]);
        tracing::subscriber::with_default(subscriber, || {
            futures::executor::block_on(trace_context::scope(trace, async { tracing::info!("inside") }));
            tracing::info!("outside");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with(&format!(" trace_id={}", "ab".repeat(16))), "{text}");
        assert!(!lines[1].contains("trace_id"), "{text}");
    }

    struct WriteInto(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for WriteInto {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
