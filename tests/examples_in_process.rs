//! The examples' routes in process, with the test kit (`app_kernel::testing`): each
//! example's `service()` is built on a database of its own, as an app's own tests
//! would build theirs. `tests/examples.rs` runs the same examples as processes.

use std::time::Duration;

use app_kernel::testing::{TestApp, TestResponse};
use app_kernel::ServiceConfig;
use serde_json::{json, Value};

#[allow(dead_code)] // its `main`: tests/examples.rs runs the binary
#[path = "../examples/widget_service.rs"]
mod widget_service;

#[allow(dead_code)]
#[path = "../examples/projects_service.rs"]
mod projects_service;

#[allow(dead_code)]
#[path = "../examples/order_service.rs"]
mod order_service;

#[allow(dead_code)]
#[path = "../examples/streaming_chat.rs"]
mod streaming_chat;

#[tokio::test]
async fn widgets_belong_to_their_caller() {
    let app = TestApp::new(widget_service::service()).await;
    let (ann, bob) = (app.user("ann").await, app.user("bob").await);
    let gear: Value = app
        .post("/api/v1/widgets")
        .bearer(&ann.access_token)
        .json(&json!({"name": "gear", "size": 3}))
        .send()
        .await
        .assert_status(200)
        .json();
    assert_eq!((gear["owner"].as_str(), gear["size"].as_i64()), (Some(ann.id.as_str()), Some(3)));
    let stolen = json!({"name": "x", "owner": ann.id});
    app.post("/api/v1/widgets").bearer(&bob.access_token).json(&stolen).send().await.assert_status(422);

    let list = |token: String| {
        let request = app.get("/api/v1/widgets").bearer(&token);
        async move { request.send().await.assert_status(200).json::<Vec<Value>>() }
    };
    assert_eq!(list(ann.access_token.clone()).await, vec![gear]);
    assert_eq!(list(bob.access_token.clone()).await, Vec::<Value>::new());
    app.get("/api/v1/widgets").send().await.assert_status(401);
}

/// The list route answers, byte for byte and with the same content type, what it
/// answered when it returned `Json(db.find_entities(..))`.
#[tokio::test]
async fn the_widget_list_answers_the_bytes_of_the_rows() {
    let app = TestApp::new(widget_service::service()).await;
    let ann = app.user("ann").await;
    let bodies = [
        json!({"name": "gear", "size": 3, "tags": ["a", "b \"quoted\""]}),
        json!({"name": "héllo 🌍 </script>\n"}),
        json!({"name": "cog", "size": -9_007_199_254_740_993_i64, "tags": []}),
    ];
    for body in &bodies {
        app.post("/api/v1/widgets").bearer(&ann.access_token).json(body).send().await.assert_status(200);
    }
    let find = app_kernel::db::Find::new().eq("owner", ann.id.as_str()).sort("created_at", true).limit(2).offset(1);
    let rows = app.kernel().db().find_entities("widgets", find).await.unwrap();
    let answer = app.get("/api/v1/widgets?limit=2&offset=1").bearer(&ann.access_token).send().await;
    answer.assert_status(200);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.text(), serde_json::to_string(&rows).unwrap());
    assert_eq!(rows.len(), 2);
}

#[tokio::test]
async fn a_project_is_processed_by_its_task_when_jobs_run() {
    let app = TestApp::new(projects_service::service()).await;
    let (ann, bob) = (app.user("ann").await, app.user("bob").await);
    let body = json!({"name": "apollo", "description": "to the moon"});
    let project: Value = app.post("/api/v1/projects").bearer(&ann.access_token).json(&body).send().await.json();
    let path = format!("/api/v1/projects/{}", project["id"].as_str().expect("an id"));
    let read = || async { app.get(&path).bearer(&ann.access_token).send().await.assert_status(200).json::<Value>() };
    assert_ne!(read().await["processed"], json!(true), "nothing ran yet");

    let report = app.run_jobs().await;
    assert_eq!((report.completed.len(), report.ran()), (1, 1), "{report:?}");
    assert_eq!(read().await["processed"], json!(true));
    app.get(&path).bearer(&bob.access_token).send().await.assert_status(404);
}

#[tokio::test]
async fn an_orders_job_is_shown_to_its_user_until_done() {
    let app = TestApp::new(order_service::service()).await;
    let (ann, bob) = (app.user("ann").await, app.user("bob").await);
    let created: Value =
        app.post("/api/v1/orders").bearer(&ann.access_token).json(&json!({"item": "book"})).send().await.json();
    let job = format!("/api/v1/jobs/{}", created["job_id"].as_str().expect("a job id"));
    let status = |r: TestResponse| r.assert_status(200).json::<Value>()["status"].clone();
    assert_eq!(status(app.get(&job).bearer(&ann.access_token).send().await), "pending");
    app.get(&job).bearer(&bob.access_token).send().await.assert_status(404);

    assert_eq!(app.run_jobs().await.completed.len(), 1);
    assert_eq!(status(app.get(&job).bearer(&ann.access_token).send().await), "done");
    let order = app.kernel().db().get_entity("orders", created["order_id"].as_str().unwrap()).await.unwrap();
    let order = order.expect("the order");
    assert_eq!((&order["status"], &order["runs"]), (&json!("processed"), &json!(1)), "{order:?}");
}

fn chat() -> app_kernel::service::ServiceBuilder {
    streaming_chat::service(ServiceConfig::default()).expect("the example's settings")
}

#[tokio::test]
async fn a_chat_reply_streams_and_one_stream_past_the_limit_is_refused() {
    let app = TestApp::new(chat()).await;
    let ann = app.user("ann").await;
    let ask =
        |message: &str| app.post("/api/v1/chat/stream").bearer(&ann.access_token).json(&json!({"message": message}));
    let reply = ask("hello world").send().await;
    assert_eq!((reply.status().as_u16(), reply.header("content-type")), (200, Some("text/event-stream")));
    let events = "event: token\ndata: hello\n\nevent: token\ndata: world\n\nevent: done\ndata: [DONE]\n\n";
    assert_eq!(reply.text(), events);

    // Every lease the example allows, held elsewhere: the next stream is refused before it starts.
    let mut held = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while held.len() < streaming_chat::MAX_STREAMS_PER_USER as usize {
        match app.kernel().streams().acquire(&ann.id).await {
            Ok(lease) => held.push(lease),
            // The reply's lease is freed by a task of its own once its body is dropped.
            Err(e) => assert!(tokio::time::Instant::now() < deadline, "{e} with {} held", held.len()),
        }
        tokio::task::yield_now().await;
    }
    let refused = ask("hi").send().await;
    assert_eq!((refused.status().as_u16(), refused.header("content-type")), (429, Some("application/problem+json")));
    assert_eq!(refused.json::<Value>()["code"], "too_many_streams");
    let other = app.user("bob").await;
    let bobs = app.post("/api/v1/chat/stream").bearer(&other.access_token).json(&json!({"message": "hi"}));
    bobs.send().await.assert_status(200); // the limit is per user

    held.pop().expect("a lease").release().await.expect("released");
    ask("hi").send().await.assert_status(200);
}

/// With a lease that lives one second, a reply of two seconds keeps its place: its
/// lease is refreshed while it streams, so a second stream is still refused.
#[tokio::test]
async fn a_long_reply_keeps_its_lease_alive() {
    let app = TestApp::builder(chat())
        .settings(|s| {
            s.streaming.max_concurrent_per_user = 1;
            s.streaming.lease_ttl_seconds = 1;
        })
        .build()
        .await;
    let ann = app.user("ann").await;
    let ask =
        |message: &str| app.post("/api/v1/chat/stream").bearer(&ann.access_token).json(&json!({"message": message}));
    let ten_words = "one two three four five six seven eight nine ten";
    assert!(streaming_chat::TOKEN_DELAY * 10 >= Duration::from_millis(1800), "the reply outlives the lease's TTL");
    let long = tokio::spawn(ask(ten_words).send());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ask("hi").send().await.assert_status(429);
    let long = long.await.expect("the long reply");
    assert!(long.assert_status(200).text().ends_with("event: done\ndata: [DONE]\n\n"), "{}", long.text());
    // Freed when the body is dropped, by a task of its own: soon after, not at once.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while ask("hi").send().await.status() != 200 {
        assert!(tokio::time::Instant::now() < deadline, "the ended reply's lease was never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
