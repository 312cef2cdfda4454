//! The jobs page in a real browser: Debian's headless `chromium`, driven over the
//! W3C WebDriver protocol (HTTP + JSON, spoken with `reqwest`) by `chromedriver`
//! (Debian's `chromium-driver`; `.ci/run` installs it, and the test fails without it).
//! A service on a real port holds a dead job; the admin types a token, sees the job
//! with its error (as text: it holds markup), clicks Retry, and the JSON API shows
//! the job pending again. The page's CSP (no inline script) must report no violation.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use app_kernel::auth::NewUser;
use app_kernel::jobs::EnqueueOptions;
use app_kernel::Service;
use serde_json::{json, Value};

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` on a free port, in a process group of its own with the browsers it
/// starts: the whole group is killed when dropped, a failed test included (a session
/// left open would otherwise leave its chromium running).
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_driver(http: &reqwest::Client) -> Driver {
    let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromedriver is not installed: `apt-get install chromium-driver` (.ci/run does)");
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(res) = http.get(format!("{}/status", driver.url)).send().await {
            let body: Value = res.json().await.unwrap_or_default();
            if body["value"]["ready"] == true {
                return driver;
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not get ready in 20 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One WebDriver session.
struct Session<'a> {
    http: &'a reqwest::Client,
    base: String,
}

impl Session<'_> {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"));
        let status = res.status();
        let body: Value = res.json().await.unwrap_or_default();
        assert!(status.is_success(), "WebDriver {method} {path}: {status} {body}");
        body["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// The elements `css` selects now.
    async fn find_all(&self, css: &str) -> Vec<String> {
        let found = self.post("/elements", json!({"using": "css selector", "value": css})).await;
        let found = found.as_array().unwrap_or_else(|| panic!("find {css}: {found}"));
        found.iter().map(|e| e[ELEMENT].as_str().unwrap_or_else(|| panic!("find {css}: {e}")).to_owned()).collect()
    }

    /// The first element `css` selects, waiting up to 15 s for it to appear.
    async fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(first) = self.find_all(css).await.into_iter().next() {
                return first;
            }
            let body = self.call(reqwest::Method::GET, "/source", None).await;
            assert!(Instant::now() < deadline, "{css} never appeared; the page:\n{body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn text(&self, element: &str) -> String {
        let text = self.call(reqwest::Method::GET, &format!("/element/{element}/text"), None).await;
        text.as_str().unwrap().to_owned()
    }

    async fn click(&self, element: &str) {
        self.post(&format!("/element/{element}/click"), json!({})).await;
    }

    async fn type_text(&self, element: &str, text: &str) {
        self.post(&format!("/element/{element}/value"), json!({"text": text})).await;
    }

    /// The browser console's messages so far (chromedriver's log endpoint).
    async fn console(&self) -> Vec<String> {
        let logs = self.post("/se/log", json!({"type": "browser"})).await;
        logs.as_array().into_iter().flatten().map(|l| l["message"].as_str().unwrap_or_default().to_owned()).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_sees_a_dead_job_in_the_browser_and_retries_it() {
    let http = super::common::http_client();
    let driver = start_driver(&http).await;

    let dir = tempfile::tempdir().unwrap();
    let service = Service::builder("jobs_page")
        .settings(super::common::test_settings(dir.path()))
        .task("boom", super::boom)
        .build()
        .await
        .unwrap();
    let kernel = service.kernel().clone();
    let users = kernel.auth().users().unwrap().clone();
    let new = NewUser { username: "root", email: None, password: "password-1", role: "admin" };
    let root = users.create_user(&new).await.unwrap();
    let token = kernel.auth().tokens().issue_access(&root).unwrap().token;
    let opts = EnqueueOptions::new().max_attempts(1);
    let job = kernel.jobs().enqueue("boom", json!({"card": "<img src=x>"}), opts).await.unwrap().job_id;
    assert_eq!(kernel.worker().run_once().await.unwrap().dead, vec![job.clone()]);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(service.serve_with_shutdown(listener, async move {
        let _ = stopped.await;
    }));

    let profile = tempfile::tempdir().unwrap();
    let capabilities = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-breakpad",
                     format!("--user-data-dir={}", profile.path().display())],
        },
        "goog:loggingPrefs": {"browser": "ALL"},
    }}});
    let created = http.post(format!("{}/session", driver.url)).json(&capabilities).send().await.unwrap();
    let created: Value = created.json().await.unwrap();
    let id = created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}")).to_owned();
    let session = Session { http: &http, base: format!("{}/session/{id}", driver.url) };

    session.post("/url", json!({"url": format!("{origin}/admin/jobs")})).await;
    let field = session.wait_for("#token").await;
    session.type_text(&field, &token).await;
    session.click(&session.wait_for("#authorize").await).await;

    let row = format!(r#"tr[data-job-id="{job}"]"#);
    let error = session.wait_for(&format!("{row} td.error")).await;
    assert_eq!(session.text(&error).await, "payment gateway said <b>no</b>", "the error, shown as text");
    assert!(session.find_all(&format!("{row} td.error b")).await.is_empty(), "the error's markup was not parsed");
    assert_eq!(session.text(&session.wait_for(&format!("{row} td.status")).await).await, "dead");
    session.click(&session.wait_for(&format!("{row} button.open")).await).await;
    let payload = session.text(&session.wait_for("#detail dd.field-payload").await).await;
    assert!(payload.contains("<img src=x>"), "the payload, shown as text: {payload}");
    assert!(session.find_all("#detail img").await.is_empty(), "the payload's markup was not parsed");

    session.click(&session.wait_for(&format!("{row} button.retry")).await).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let job_url = format!("{origin}/api/v1/admin/jobs/{job}");
    loop {
        let res = http.get(&job_url).bearer_auth(&token).send().await.unwrap();
        let body: Value = res.json().await.unwrap();
        if body["status"] == "pending" || body["status"] == "done" {
            break;
        }
        assert!(Instant::now() < deadline, "the job was not retried: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = session.wait_for(&format!("{row} td.status-pending")).await;
    assert_eq!(session.text(&status).await, "pending", "the list shows the retried job");

    let console = session.console().await;
    let violations: Vec<&String> = console.iter().filter(|m| m.contains("Content Security Policy")).collect();
    assert!(violations.is_empty(), "the page broke its CSP: {violations:#?}");
    let stored = session.call(reqwest::Method::POST, "/execute/sync", Some(json!({
        "script": "return sessionStorage.length + ':' + localStorage.length + ':' + document.cookie;", "args": []
    })))
    .await;
    assert_eq!(stored, "1:0:", "the token is kept in sessionStorage only");
    session.call(reqwest::Method::DELETE, "", None).await;
    drop(driver);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
