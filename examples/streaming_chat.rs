//! Run: cargo run --example streaming_chat
//!
//! The spec's Streaming: `POST /api/v1/chat/stream` with `{"message": "..."}` answers
//! with Server-Sent Events, one `token` event per word of the reply and a `done`
//! event (`[DONE]`) at the end. Each open stream holds a stream lease for as long as its body
//! lives: at most [`MAX_STREAMS_PER_USER`] per user, across every instance when
//! `REDIS_URL` is set; one more is refused with 429 `too_many_streams`
//! (problem+json) before anything streams. The lease is freed when the body is
//! dropped, at the end of the reply or when the client leaves, and `keep_alive`
//! refreshes it while the reply takes its time, so a long reply keeps its place and
//! the lease of an instance that dies expires.

use std::convert::Infallible;
use std::time::Duration;

use app_kernel::auth::CurrentUser;
use app_kernel::service::ServiceBuilder;
use app_kernel::streaming::StreamLeases;
use app_kernel::{ApiError, BootError, Routes, Service, ServiceConfig};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;

/// Open streams one user may hold (the kernel's default is 5).
pub(crate) const MAX_STREAMS_PER_USER: u32 = 3;

/// How long the stand-in model takes per word.
pub(crate) const TOKEN_DELAY: Duration = Duration::from_millis(200);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Ask {
    /// What the user says.
    message: String,
}

/// A stand-in for a language model: it answers with the message's own words, one
/// every [`TOKEN_DELAY`]. A real app calls its model here.
fn generate_reply(message: &str) -> impl Stream<Item = String> + Send + 'static {
    let words: Vec<String> = message.split_whitespace().map(str::to_owned).collect();
    futures::stream::iter(words).then(|word| async move {
        tokio::time::sleep(TOKEN_DELAY).await;
        word
    })
}

/// The reply as Server-Sent Events, under a stream lease.
#[utoipa::path(post, path = "/chat/stream", tag = "chat", security(("bearer" = [])), request_body = Ask, responses(
    (status = 200, description = "`token` events, one per word, then `done` with `[DONE]`", content_type = "text/event-stream", body = String),
    (status = 401, description = "no or bad token"), (status = 429, description = "too many open streams (too_many_streams)")))]
async fn chat_stream(
    user: CurrentUser,
    leases: StreamLeases,
    Json(ask): Json<Ask>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // Refused here (429) when the user holds MAX_STREAMS_PER_USER streams already.
    let lease = leases.acquire(&user.id).await?.keep_alive();
    let events = generate_reply(&ask.message)
        .map(|word| Event::default().event("token").data(word))
        .chain(futures::stream::once(async { Event::default().event("done").data("[DONE]") })) // an event with no data never reaches a browser's EventSource
        .map(move |event| {
            let _held = &lease; // lives as long as the body: freed when the reply ends or the client leaves
            Ok(event)
        });
    // Comments while the model is silent, so no idle timeout closes the stream.
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// The app on `config`, with its stream limit.
///
/// # Errors
/// The configuration is invalid.
pub(crate) fn service(config: ServiceConfig) -> Result<ServiceBuilder, BootError> {
    let mut settings = config.into_settings("streaming_chat")?;
    settings.streaming.max_concurrent_per_user = MAX_STREAMS_PER_USER;
    let routes = Routes::new().documented(routes!(chat_stream));
    Ok(Service::builder("streaming_chat").settings(settings).routes(routes))
}

#[tokio::main]
async fn main() -> Result<(), BootError> {
    service(ServiceConfig::from_env()?)?.run().await
}
