//! A response future that runs a hook on the response once the inner service
//! answers: the shared shape of the kernel's small header-setting middlewares,
//! with no allocation per request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;

/// Work done on a successful response.
pub trait ResponseHook<B> {
    /// Edits the response in place.
    fn on_response(self, response: &mut Response<B>);
}

pin_project_lite::pin_project! {
    /// Polls `inner`, then applies the hook to its response.
    pub struct HookFuture<F, H> {
        #[pin]
        inner: F,
        hook: Option<H>,
    }
}

impl<F, H> HookFuture<F, H> {
    /// `inner`, with `hook` applied to its response.
    pub fn new(inner: F, hook: H) -> Self {
        Self { inner, hook: Some(hook) }
    }
}

impl<F, H> std::fmt::Debug for HookFuture<F, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookFuture").finish_non_exhaustive()
    }
}

impl<F, H, B, E> Future for HookFuture<F, H>
where
    F: Future<Output = Result<Response<B>, E>>,
    H: ResponseHook<B>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = std::task::ready!(this.inner.poll(cx));
        if let (Ok(response), Some(hook)) = (&mut result, this.hook.take()) {
            hook.on_response(response);
        }
        Poll::Ready(result)
    }
}
