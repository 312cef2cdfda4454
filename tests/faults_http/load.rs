//! The load generator: several clients, each with its own keep-alive connection
//! pool and user, calling the widget routes of every instance in turn (a list, or a
//! create with an `Idempotency-Key`; every fourth create is sent again with the same
//! key to the *other* instance, as a client retrying through a load balancer would).
//! With an orders API in the plan, every third create is an order instead (a create
//! with an `Idempotency-Key` whose answer names the order and the job that processes
//! it; every other one is sent again with the same key), and each order answered 2xx is
//! recorded as accepted: the scenario then checks that its job ran.
//! Every request is recorded with when it started, how long it took and what came
//! back; a connection that is refused moves the request to the next instance, as a
//! load balancer does, and is counted apart (nothing had been accepted).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A client gives up on a request after this long: a hang is a failure, never a stall.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What one request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An HTTP answer: the status and, for a problem+json body, its `code`.
    Answered { status: u16, code: Option<String> },
    /// The connection was refused by every instance: never accepted.
    Refused,
    /// Accepted, then broken (reset, closed mid-answer, or no answer within the timeout).
    Broken(String),
}

/// One request, as the client saw it.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// When it was sent, from the start of the load.
    pub(crate) at: Duration,
    pub(crate) latency: Duration,
    /// The instance that answered (or was tried last).
    pub(crate) instance: usize,
    /// A create (with an `Idempotency-Key`), not a list.
    pub(crate) post: bool,
    /// An order create, on the orders API (its `instance` is `bases.len()`).
    pub(crate) order: bool,
    pub(crate) outcome: Outcome,
    /// Connections refused before an instance took it.
    pub(crate) refusals: u32,
}

impl Sample {
    /// Answered with a 2xx.
    pub(crate) fn ok(&self) -> bool {
        matches!(self.outcome, Outcome::Answered { status, .. } if (200..300).contains(&status))
    }

    /// When it was answered (or given up), from the start of the load.
    pub(crate) fn end(&self) -> Duration {
        self.at + self.latency
    }
}

/// A create sent twice with one key that made two widgets.
#[derive(Debug, Clone)]
pub(crate) struct Duplicate {
    /// When the first was sent, from the start of the load.
    pub(crate) first: Duration,
    /// When the second was answered.
    pub(crate) second_end: Duration,
}

impl Duplicate {
    /// Whether the pair overlapped `from..to`.
    pub(crate) fn overlaps(&self, from: Duration, to: Duration) -> bool {
        self.second_end >= from && self.first <= to
    }
}

/// An order answered 2xx: its job must run.
#[derive(Debug, Clone)]
pub(crate) struct AcceptedOrder {
    pub(crate) order_id: String,
    pub(crate) job_id: String,
    /// The token it was sent with (its job is shown to that user).
    pub(crate) token: String,
    /// When it was sent, from the start of the load.
    pub(crate) at: Duration,
}

/// What the clients recorded.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub(crate) samples: Vec<Sample>,
    pub(crate) duplicates: Vec<Duplicate>,
    /// Orders answered 2xx, each once (a replay names the same order).
    pub(crate) orders: Vec<AcceptedOrder>,
}

/// How the clients call.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The instances' base URLs.
    pub(crate) bases: Vec<String>,
    /// One bearer token per client (cycled).
    pub(crate) tokens: Vec<String>,
    pub(crate) clients: usize,
    /// At most one request per this interval per client (`None`: as fast as answered).
    pub(crate) pace: Option<Duration>,
    /// The orders API's base URL, when order creates are part of the mix.
    pub(crate) orders: Option<String>,
}

/// Running clients; `stop` ends them and returns what they recorded.
#[derive(Debug)]
pub(crate) struct Load {
    pub(crate) started: Instant,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Record>>,
}

impl Load {
    pub(crate) fn start(plan: &Plan) -> Self {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..plan.clients)
            .map(|c| {
                let client = Client::new(plan, c, started, stop.clone());
                tokio::spawn(client.run(plan.pace))
            })
            .collect();
        Self { started, stop, tasks }
    }

    /// Time since the load started.
    pub(crate) fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Stops the clients (each finishes its request) and merges their records, by start time.
    pub(crate) async fn stop(self) -> Record {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = Record::default();
        for task in self.tasks {
            let record = tokio::time::timeout(REQUEST_TIMEOUT * 3, task).await.expect("a client stopped").unwrap();
            all.samples.extend(record.samples);
            all.duplicates.extend(record.duplicates);
            all.orders.extend(record.orders);
        }
        all.samples.sort_by_key(|s| s.at);
        all.orders.sort_by_key(|o| o.at);
        all
    }
}

struct Client {
    id: usize,
    http: reqwest::Client,
    bases: Vec<String>,
    orders: Option<String>,
    token: String,
    started: Instant,
    stop: Arc<AtomicBool>,
    record: Record,
}

impl Client {
    fn new(plan: &Plan, id: usize, started: Instant, stop: Arc<AtomicBool>) -> Self {
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("http client");
        let token = plan.tokens[id % plan.tokens.len()].clone();
        let (bases, orders) = (plan.bases.clone(), plan.orders.clone());
        Self { id, http, bases, orders, token, started, stop, record: Record::default() }
    }

    async fn run(mut self, pace: Option<Duration>) -> Record {
        let mut ticks = pace.map(|p| {
            let mut t = tokio::time::interval(p);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        let mut i = 0usize;
        while !self.stop.load(Ordering::SeqCst) {
            if let Some(t) = ticks.as_mut() {
                t.tick().await;
            }
            i += 1;
            let instance = (self.id + i) % self.bases.len();
            if i.is_multiple_of(2) {
                self.call(instance, None).await;
                continue;
            }
            let key = format!("c{}-{i}", self.id);
            if self.orders.is_some() && i % 6 == 3 {
                self.order(&key, i % 12 == 3).await;
                continue;
            }
            let first = self.call(instance, Some(&key)).await;
            if i % 4 == 1 {
                let again = self.call((instance + 1) % self.bases.len(), Some(&key)).await;
                if let (Some((first, a)), Some((_, b))) = (first, again) {
                    if a != b {
                        let second_end = self.started.elapsed();
                        self.record.duplicates.push(Duplicate { first, second_end });
                    }
                }
            }
        }
        self.record
    }

    /// An order create with `key` (sent twice when `again`): the accepted order, once,
    /// and a duplicate if the second made another order.
    async fn order(&mut self, key: &str, again: bool) {
        let first = self.order_once(key).await;
        let second = if again { self.order_once(key).await } else { None };
        if let (Some(a), Some(b)) = (&first, &second) {
            if a.order_id != b.order_id {
                self.record.duplicates.push(Duplicate { first: a.at, second_end: self.started.elapsed() });
            }
        }
        // A replay names the first's order: recorded once.
        let second = second.filter(|b| first.as_ref().is_none_or(|a| a.order_id != b.order_id));
        self.record.orders.extend(first.into_iter().chain(second));
    }

    async fn order_once(&mut self, key: &str) -> Option<AcceptedOrder> {
        let base = self.orders.as_deref().expect("an orders API");
        let at = self.started.elapsed();
        let sent = Instant::now();
        let request = self
            .http
            .post(format!("{base}/api/v1/orders"))
            .header("idempotency-key", key)
            .bearer_auth(&self.token)
            .json(&json!({"item": format!("o-{key}"), "quantity": 1}));
        let (outcome, body) = match request.send().await {
            Ok(response) => read(response).await,
            Err(e) if e.is_connect() => (Outcome::Refused, Value::Null),
            Err(e) => (Outcome::Broken(error_chain(&e)), Value::Null),
        };
        let instance = self.bases.len();
        let sample = Sample { at, latency: sent.elapsed(), instance, post: true, order: true, outcome, refusals: 0 };
        let accepted = sample.ok().then(|| AcceptedOrder {
            order_id: body["order_id"].as_str().expect("an accepted order's id").to_owned(),
            job_id: body["job_id"].as_str().expect("an accepted order's job").to_owned(),
            token: self.token.clone(),
            at,
        });
        self.record.samples.push(sample);
        accepted
    }

    /// One request to `instance` (a create when `key` is given, else a list), moved
    /// on to the next instance while connections are refused; for a create answered
    /// 2xx, when it was sent and the widget's id.
    async fn call(&mut self, instance: usize, key: Option<&str>) -> Option<(Duration, String)> {
        let at = self.started.elapsed();
        let sent = Instant::now();
        let mut refusals = 0;
        let mut target = instance;
        let (outcome, id) = loop {
            let base = &self.bases[target];
            let request = match key {
                Some(key) => self
                    .http
                    .post(format!("{base}/api/v1/widgets"))
                    .header("idempotency-key", key)
                    .json(&json!({"name": format!("w-{key}"), "size": 1})),
                None => self.http.get(format!("{base}/api/v1/widgets?limit=20")),
            };
            match request.bearer_auth(&self.token).send().await {
                Ok(response) => {
                    let (outcome, body) = read(response).await;
                    break (outcome, body["id"].as_str().map(str::to_owned));
                }
                Err(e) if e.is_connect() && refusals + 1 < self.bases.len() as u32 * 2 => {
                    refusals += 1;
                    target = (target + 1) % self.bases.len();
                }
                Err(e) if e.is_connect() => break (Outcome::Refused, None),
                Err(e) => break (Outcome::Broken(error_chain(&e)), None),
            }
        };
        let post = key.is_some();
        let sample = Sample { at, latency: sent.elapsed(), instance: target, post, order: false, outcome, refusals };
        let created = if sample.ok() { id.map(|id| (at, id)) } else { None };
        self.record.samples.push(sample);
        created
    }
}

/// The outcome of an answer and its JSON body (`null` when it is not JSON).
async fn read(response: reqwest::Response) -> (Outcome, Value) {
    let status = response.status().as_u16();
    let problem = response.headers().get("content-type").is_some_and(|v| v == "application/problem+json");
    match response.bytes().await {
        Ok(body) => {
            let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let code = problem.then(|| value["code"].as_str().unwrap_or("").to_owned());
            (Outcome::Answered { status, code }, value)
        }
        Err(e) => (Outcome::Broken(error_chain(&e)), Value::Null),
    }
}

/// An error with its sources (reqwest's own text hides the cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The `q` quantile (0..=1) of `values`, sorted here; zero when empty.
pub(crate) fn quantile(values: &mut [Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort();
    let i = ((values.len() - 1) as f64 * q).round() as usize;
    values[i]
}
