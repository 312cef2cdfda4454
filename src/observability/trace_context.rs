//! W3C Trace Context (`traceparent`): one trace id follows a request into the jobs
//! it enqueues.
//!
//! - A request's incoming `traceparent` is kept only if it passes a strict parse
//!   ([`TraceParent::parse`]: version `00`, lower-case hex, ids not all zeros);
//!   anything else is ignored and a new trace is started. It never fails a request.
//! - The request runs as a new span of that trace ([`TraceContext`]), held in a
//!   task-local for the life of the request: every log line written in the task
//!   carries its `trace_id`, the response carries its `traceparent`.
//! - `JobClient::enqueue` called in that task stores the span's `traceparent` with
//!   the job; the worker runs the job as a child span of it, in the same task-local,
//!   so the job's log lines carry the same `trace_id`. A job enqueued outside any
//!   trace runs in a trace of its own, whose id is the job id's 16 bytes: every
//!   attempt of that job shares it.
//!
//! ```
//! use app_kernel::observability::trace_context::TraceParent;
//! let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
//! let parent = TraceParent::parse(header.as_bytes()).unwrap();
//! assert_eq!(parent.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
//! assert!(TraceParent::parse(header.to_uppercase().as_bytes()).is_none());
//! ```

use data_encoding::HEXLOWER;
use http::HeaderName;
use tokio::task::futures::TaskLocalFuture;

/// `traceparent`.
pub const TRACEPARENT_HEADER: HeaderName = HeaderName::from_static("traceparent");

/// The only version of the header this parser accepts.
const VERSION: &[u8; 2] = b"00";
/// `00-` + 32 + `-` + 16 + `-` + 2.
pub const HEADER_LEN: usize = 55;

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// A parsed incoming `traceparent`: the caller's trace and span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

impl TraceParent {
    /// Parses a `traceparent` value strictly: exactly `00-<32 hex>-<16 hex>-<2 hex>`,
    /// lower-case hex only, neither id all zeros. `None` for anything else (other
    /// versions included: `ff` is invalid, and later versions are not read).
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.len() != HEADER_LEN
            || &value[..2] != VERSION
            || value[2] != b'-'
            || value[35] != b'-'
            || value[52] != b'-'
        {
            return None;
        }
        let trace_id: [u8; 16] = decode_hex(&value[3..35])?;
        let parent_id: [u8; 8] = decode_hex(&value[36..52])?;
        let [flags] = decode_hex::<1>(&value[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(Self { trace_id, parent_id, flags })
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The caller's span id as 16 lower-case hex digits.
    pub fn parent_id_hex(&self) -> String {
        hex(&self.parent_id)
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }
}

/// The span this task is running: a request or a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_id: Option<[u8; 8]>,
    flags: u8,
}

impl TraceContext {
    /// A new span: a child of `parent` when given, else the root of a new trace
    /// (random ids, sampled).
    pub fn child_of(parent: Option<&TraceParent>) -> Self {
        let span_id = random_id();
        match parent {
            Some(p) => Self { trace_id: p.trace_id, span_id, parent_id: Some(p.parent_id), flags: p.flags },
            None => Self { trace_id: random_id(), span_id, parent_id: None, flags: 1 },
        }
    }

    /// The root span of a trace whose id is `trace_id` (all zeros is replaced by a
    /// random id).
    pub fn root_with_trace_id(trace_id: [u8; 16]) -> Self {
        let trace_id = if trace_id == [0; 16] { random_id() } else { trace_id };
        Self { trace_id, span_id: random_id(), parent_id: None, flags: 1 }
    }

    /// The span of one attempt of a job: a child of the `traceparent` stored with it,
    /// else the root of the job's own trace, whose id is the job id's UUID bytes (so
    /// every attempt shares it).
    pub fn for_job(job_id: &str, stored: Option<&str>) -> Self {
        match stored.and_then(|t| TraceParent::parse(t.as_bytes())) {
            Some(parent) => Self::child_of(Some(&parent)),
            None => Self::root_with_trace_id(uuid::Uuid::parse_str(job_id).map(|u| u.into_bytes()).unwrap_or_default()),
        }
    }

    /// The trace id's bytes.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// This span's id.
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// The parent span's id, if this span has one.
    pub fn parent_id(&self) -> Option<[u8; 8]> {
        self.parent_id
    }

    /// The trace flags (bit 0: sampled).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// The trace id as 32 lower-case hex digits (the `trace_id` log field).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The `traceparent` naming this span as the parent: what the response carries
    /// and what a job enqueued in this span stores.
    pub fn traceparent(&self) -> String {
        String::from_utf8_lossy(&self.traceparent_bytes()).into_owned()
    }

    /// [`traceparent`](Self::traceparent) as bytes, without an allocation.
    pub fn traceparent_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [b'-'; HEADER_LEN];
        out[..2].copy_from_slice(VERSION);
        hex_into(&mut out[3..35], &self.trace_id);
        hex_into(&mut out[36..52], &self.span_id);
        hex_into(&mut out[53..55], &[self.flags]);
        out
    }

    /// This span as the parent of another (a job's span).
    pub fn as_parent(&self) -> TraceParent {
        TraceParent { trace_id: self.trace_id, parent_id: self.span_id, flags: self.flags }
    }
}

/// Runs `fut` with `ctx` as the current span of its task.
pub fn scope<F: std::future::Future>(ctx: TraceContext, fut: F) -> TaskLocalFuture<TraceContext, F> {
    CURRENT.scope(ctx, fut)
}

/// The span this task is running, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// Appends the current trace id (32 hex digits) to `line`; whether there was one.
pub(crate) fn push_current_trace_id(line: &mut String) -> bool {
    CURRENT.try_with(|c| push_hex(line, &c.trace_id)).is_ok()
}

/// Random bytes drawn from the OS ([`crate::random`]) 512 at a time per thread: ids are
/// made on every request, and one system call per id would be most of their cost.
/// Ids are not secrets, so bytes waiting in memory are fine.
fn random_id<const N: usize>() -> [u8; N] {
    const POOL: usize = 512;
    thread_local! {
        static BYTES: std::cell::RefCell<([u8; POOL], usize)> = const { std::cell::RefCell::new(([0; POOL], POOL)) };
    }
    let mut id = [0u8; N];
    // All zeros is invalid; 2^-64 at worst, but never emit it.
    while id == [0; N] {
        BYTES.with_borrow_mut(|(pool, used)| {
            if *used + N > POOL {
                crate::random::fill(pool);
                *used = 0;
            }
            id.copy_from_slice(&pool[*used..*used + N]);
            *used += N;
        });
    }
    id
}

/// Exactly `2 * N` lower-case hex digits (upper case is refused, as the header's
/// grammar says) as `N` bytes.
fn decode_hex<const N: usize>(text: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    (text.len() == 2 * N && HEXLOWER.decode_mut(text, &mut out).is_ok()).then_some(out)
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    HEXLOWER.encode_append(bytes, out);
}

/// Writes `bytes` as hex into `out` (twice as long).
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    HEXLOWER.encode_mut(bytes, out);
}

fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn parse(s: &str) -> Option<TraceParent> {
        TraceParent::parse(s.as_bytes())
    }

    #[test]
    fn a_valid_header_is_read() {
        let p = parse(VALID).unwrap();
        assert_eq!(p.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(p.parent_id_hex(), "00f067aa0ba902b7");
        assert_eq!(p.flags(), 1);
        assert_eq!(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap().flags(), 0);
    }

    #[test]
    fn upper_case_hex_is_refused() {
        assert!(parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01").is_none());
        assert!(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01").is_none());
        assert!(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A").is_none());
    }

    #[test]
    fn versions_other_than_00_are_refused() {
        assert!(parse("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
        assert!(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").is_none());
        assert!(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra").is_none());
    }

    #[test]
    fn all_zero_ids_are_refused() {
        assert!(parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
        assert!(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01").is_none());
    }

    #[test]
    fn wrong_lengths_separators_and_characters_are_refused() {
        for bad in [
            "",
            "00",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "accepted {bad:?}");
        }
        // Non-ASCII bytes in place of a digit.
        let mut bytes = VALID.as_bytes().to_vec();
        bytes[10] = 0xc3;
        assert!(TraceParent::parse(&bytes).is_none());
    }

    #[test]
    fn a_child_keeps_the_trace_and_names_its_parent() {
        let p = parse(VALID).unwrap();
        let child = TraceContext::child_of(Some(&p));
        assert_eq!(child.trace_id_hex(), p.trace_id_hex());
        assert_eq!(child.parent_id().map(|id| hex(&id)), Some(p.parent_id_hex()));
        assert_ne!(hex(&child.span_id()), p.parent_id_hex());
        let header = child.traceparent();
        let reparsed = parse(&header).unwrap();
        assert_eq!(reparsed.trace_id_hex(), p.trace_id_hex());
        assert_eq!(reparsed.parent_id_hex(), hex(&child.span_id()));
        assert_eq!(reparsed, child.as_parent());
    }

    #[test]
    fn a_root_starts_a_new_valid_trace() {
        let (a, b) = (TraceContext::child_of(None), TraceContext::child_of(None));
        assert_ne!(a.trace_id(), b.trace_id());
        assert_eq!(a.parent_id(), None);
        assert!(parse(&a.traceparent()).is_some(), "{}", a.traceparent());
        let fixed = TraceContext::root_with_trace_id([7; 16]);
        assert_eq!(fixed.trace_id_hex(), "07".repeat(16));
    }

    #[test]
    fn a_job_continues_its_stored_trace_or_runs_in_its_own() {
        let job_id = "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
        let continued = TraceContext::for_job(job_id, Some(VALID));
        assert_eq!(continued.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(continued.parent_id().map(|id| hex(&id)).as_deref(), Some("00f067aa0ba902b7"));
        let own = TraceContext::for_job(job_id, None);
        assert_eq!(own.trace_id_hex(), job_id.replace('-', ""));
        assert_eq!(TraceContext::for_job(job_id, Some("garbage")).trace_id(), own.trace_id());
        assert_eq!(own.parent_id(), None);
    }
}
