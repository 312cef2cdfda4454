//! The `streaming_chat` example as a process: one user opens Server-Sent Events
//! streams up to the example's limit (3), the next is refused with 429 problem+json,
//! and a stream the client closes frees its place.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{login, Running};

/// The example's `MAX_STREAMS_PER_USER`.
const LIMIT: usize = 3;

/// A reply of 100 words, 20 s at the example's pace: open for the whole test.
fn long_message() -> String {
    (0..100).map(|i| format!("w{i}")).collect::<Vec<_>>().join(" ")
}

async fn open(client: &reqwest::Client, svc: &Running, token: &str, message: &str) -> reqwest::Response {
    let url = svc.url("/api/v1/chat/stream");
    client.post(url).bearer_auth(token).json(&json!({"message": message})).send().await.unwrap()
}

/// The next chunk of a stream, within 5 s.
async fn next_chunk(stream: &mut reqwest::Response) -> String {
    let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await.expect("a chunk within 5 s");
    String::from_utf8(chunk.unwrap().expect("the stream is still open").to_vec()).unwrap()
}

#[tokio::test]
async fn streams_past_the_per_user_limit_are_refused_until_one_closes() {
    let svc = super::start("streaming_chat");
    let client = crate::common::http_client();
    let token = login(&client, &svc, "admin@example.com", "admin-password-1").await;

    let mut streams = Vec::new();
    for _ in 0..LIMIT {
        let mut stream = open(&client, &svc, &token, &long_message()).await;
        assert_eq!(stream.status(), 200);
        assert_eq!(stream.headers()["content-type"], "text/event-stream");
        assert!(next_chunk(&mut stream).await.starts_with("event: token\ndata: w0"));
        streams.push(stream);
    }
    let refused = open(&client, &svc, &token, "one too many").await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "too_many_streams");

    // The client leaves: the server finds out at its next write, and frees the lease.
    drop(streams.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reopened = loop {
        let stream = open(&client, &svc, &token, &long_message()).await;
        if stream.status() == 200 {
            break stream;
        }
        assert_eq!(stream.status(), 429);
        assert!(Instant::now() < deadline, "the closed stream's lease was never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(next_chunk(&mut reopened).await.starts_with("event: token"));
    assert_eq!(open(&client, &svc, &token, "still full").await.status(), 429);

    // A reply that ends frees its lease too, and reads whole.
    drop(reopened);
    drop(streams);
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let stream = open(&client, &svc, &token, "hello world").await;
        if stream.status() == 200 {
            break stream.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "the closed streams' leases were never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(text, "event: token\ndata: hello\n\nevent: token\ndata: world\n\nevent: done\ndata: [DONE]\n\n");
    svc.stop();
}
