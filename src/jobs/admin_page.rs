//! The admins' jobs page at `/admin/jobs` (`/admin/jobs/page` when the API prefix is
//! empty, as the JSON list then has `/admin/jobs`): an HTML page, its script and its
//! styles, compiled into the binary. The page holds no data: it asks the admin for an access
//! token (kept in the tab's `sessionStorage`) and reads and changes jobs through the
//! admin-only JSON routes (`admin_routes.rs`), so it is served to anyone, as `/docs`
//! is. Its CSP allows this origin's script, styles and requests only, with no inline
//! script or style; the script builds the DOM with `textContent` only (job payloads
//! and errors are attacker-controlled text).

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use http::HeaderValue;

/// Where the page is served: `/admin/jobs`, unless the JSON routes are there (an
/// empty `api_prefix`).
pub(crate) fn page_path(api_prefix: &str) -> &'static str {
    match api_prefix.is_empty() {
        true => "/admin/jobs/page",
        false => "/admin/jobs",
    }
}

const INDEX: &str = include_str!("admin_page/index.html");
const SCRIPT: &str = include_str!("admin_page/app.js");
const STYLE: &str = include_str!("admin_page/app.css");

/// What the page may load: its own script and styles, requests to this origin; no
/// inline script or style, no frames, no forms sent anywhere.
pub(crate) const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Escapes text for an HTML attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One of the page's files, with the page's headers.
fn file(body: String, kind: &'static str) -> Response {
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(kind)),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP)),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
    ];
    (headers, body).into_response()
}

/// The page, its script and its styles; the page's JSON routes live under `api_prefix`.
pub(crate) fn router<S: Clone + Send + Sync + 'static>(api_prefix: &str) -> Router<S> {
    let path = page_path(api_prefix);
    let page = INDEX.replace("{{PAGE}}", path).replace("{{API}}", &escape(api_prefix));
    let serve = |body: String, kind: &'static str| get(move || async move { file(body, kind) });
    Router::new()
        .route(path, serve(page, "text/html; charset=utf-8"))
        .route(&format!("{path}/app.js"), serve(SCRIPT.to_owned(), "text/javascript; charset=utf-8"))
        .route(&format!("{path}/app.css"), serve(STYLE.to_owned(), "text/css; charset=utf-8"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_prefix_is_escaped_and_the_script_never_writes_html() {
        assert_eq!(super::escape("/a\"<b>&'"), "/a&quot;&lt;b&gt;&amp;&#39;");
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "onclick"] {
            assert!(!super::SCRIPT.contains(sink), "app.js uses {sink}");
            assert!(!super::INDEX.contains(sink), "index.html uses {sink}");
        }
        assert!(!super::INDEX.contains("<script>"), "no inline script");
        assert!(!super::INDEX.contains("style="), "no inline style");
    }
}
