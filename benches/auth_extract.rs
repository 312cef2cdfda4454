//! Run: cargo bench --bench auth_extract
//!
//! What authentication costs per request (bearer token verification through
//! `CurrentUser`, in a router driven with `oneshot`) and per login (argon2id hash
//! and verify with the OWASP parameters).
// criterion_group! generates an undocumentable `pub fn`.
#![allow(missing_docs)]

use app_kernel::auth::{hash_password, verify_password, Auth, AuthMode, AuthSettings, CurrentUser, UserIdentity};
use axum::body::Body;
use axum::routing::get;
use axum::Router;
use criterion::{criterion_group, criterion_main, Criterion};
use http::{header, HeaderMap, Request, StatusCode};
use secrecy::SecretString;
use tower::ServiceExt as _;

fn auth() -> Auth {
    let mut settings = AuthSettings::default();
    settings.token_secret = Some(SecretString::from("bench-secret-0123456789abcdef-0123456789"));
    Auth::new(&settings, AuthMode::Local).expect("auth")
}

fn extraction(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let auth = auth();
    let user = UserIdentity::new("0192f0c4-7b1e-7000-8000-000000000001", "ann").with_email("ann@example.com");
    let token = auth.tokens().issue_access(&user).expect("token").token;
    let bearer = format!("Bearer {token}");
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, bearer.parse().expect("header"));

    c.bench_function("decode_access", |b| b.iter(|| auth.tokens().decode_access(&token).expect("valid")));
    c.bench_function("authenticate (headers -> identity)", |b| {
        b.to_async(&rt).iter(|| async { auth.authenticate(&headers).await.expect("valid") })
    });

    let app =
        Router::new().route("/me", get(|user: CurrentUser| async move { user.id.clone() })).with_state(auth.clone());
    let baseline = Router::new().route("/me", get(|| async { "ok" }));
    let request = |with_token: bool| {
        let builder = Request::get("/me");
        let builder = if with_token { builder.header(header::AUTHORIZATION, bearer.as_str()) } else { builder };
        builder.body(Body::empty()).expect("request")
    };
    c.bench_function("router request without auth (baseline)", |b| {
        b.to_async(&rt).iter(|| async {
            let response = baseline.clone().oneshot(request(true)).await.expect("response");
            assert_eq!(response.status(), StatusCode::OK);
        })
    });
    c.bench_function("router request with CurrentUser", |b| {
        b.to_async(&rt).iter(|| async {
            let response = app.clone().oneshot(request(true)).await.expect("response");
            assert_eq!(response.status(), StatusCode::OK);
        })
    });
    c.bench_function("router request with CurrentUser, bad token (401)", |b| {
        let bad = format!("{bearer}x");
        b.to_async(&rt).iter(|| async {
            let req = Request::get("/me").header(header::AUTHORIZATION, bad.as_str()).body(Body::empty()).expect("r");
            let response = app.clone().oneshot(req).await.expect("response");
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        })
    });
}

fn argon2(c: &mut Criterion) {
    let mut group = c.benchmark_group("argon2id m=19456,t=2,p=1");
    group.sample_size(10);
    let hash = hash_password("correct horse battery staple").expect("hash");
    group.bench_function("hash_password", |b| b.iter(|| hash_password("correct horse battery staple").expect("hash")));
    group.bench_function("verify_password", |b| b.iter(|| verify_password("correct horse battery staple", &hash)));
    group.finish();
}

criterion_group!(benches, extraction, argon2);
criterion_main!(benches);
