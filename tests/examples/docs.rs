//! The examples' `/openapi.json` and `/docs`, from the running binaries.

/// Every example's `/openapi.json` lists every route it serves (the kernel's and
/// the app's `Routes`, each with its method), the annotated ones with their request
/// and response schemas, and passes `openapi-spec-validator` (what code generators
/// check; `.ci/run` installs it). `/docs` asks no third party to validate it, and
/// its assets are cached and compressed.
#[tokio::test]
async fn every_examples_openapi_document_lists_its_routes_and_is_valid() {
    let kernel = [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/api", "get"),
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/me", "get"),
        ("/api/v1/auth/api-keys/{id}", "delete"),
        ("/api/v1/jobs/{id}", "get"),
    ];
    let apps: [(&str, &[(&str, &str)]); 6] = [
        ("widget_service", &[("/api/v1/widgets", "get"), ("/api/v1/widgets", "post")]),
        ("order_service", &[("/api/v1/orders", "post")]),
        (
            "projects_service",
            &[("/api/v1/projects", "get"), ("/api/v1/projects", "post"), ("/api/v1/projects/{project_id}", "get")],
        ),
        ("manual_init", &[]),
        ("health_checks", &[]),
        ("streaming_chat", &[("/api/v1/chat/stream", "post")]),
    ];
    let client = crate::common::http_client();
    for (name, routes) in apps {
        let svc = super::start(name);
        let doc: serde_json::Value = super::json_of(client.get(svc.url("/openapi.json"))).await;
        for (path, method) in kernel.iter().chain(routes.iter()) {
            let op = &doc["paths"][path][method];
            assert!(op.is_object(), "{name}: {method} {path} is not in /openapi.json");
            for param in op["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path") {
                assert!(param["schema"].is_object(), "{name}: {method} {path}: path parameter without schema");
            }
            if !kernel.contains(&(*path, *method)) {
                let content = &op["responses"]["200"]["content"];
                let answer =
                    content["application/json"]["schema"].is_object() || content["text/event-stream"].is_object();
                assert!(answer, "{name}: {path}: {content}");
                if *method == "post" {
                    assert!(op["requestBody"]["content"]["application/json"]["schema"].is_object(), "{name}: {path}");
                }
            }
        }
        let title = doc["info"]["title"].as_str().unwrap_or_default();
        assert!(
            ["widget_service", "order_service", "my_service", "document_service", "health_checks", "streaming_chat"]
                .contains(&title),
            "{name}: {title}"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), serde_json::to_vec(&doc).unwrap()).unwrap();
        let mut check = std::process::Command::new("python3");
        check.args(["-m", "openapi_spec_validator"]).arg(file.path());
        let check =
            crate::common::output_within(&mut check, std::time::Duration::from_secs(60), "openapi-spec-validator");
        let said = format!("{}{}", String::from_utf8_lossy(&check.stdout), String::from_utf8_lossy(&check.stderr));
        assert!(check.status.success(), "{name}: openapi-spec-validator refused the document:\n{said}");

        let init = client.get(svc.url("/docs/swagger-initializer.js")).send().await.unwrap().text().await.unwrap();
        assert!(init.contains(r#""validatorUrl": "none""#), "no validator.swagger.io badge: {init}");
        let bundle = client.get(svc.url("/docs/swagger-ui-bundle.js")).header("accept-encoding", "gzip").send();
        let bundle = bundle.await.unwrap();
        assert_eq!(bundle.headers()["content-encoding"], "gzip");
        assert!(bundle.headers()["cache-control"].to_str().unwrap().contains("max-age="));
        assert!(bundle.headers()["content-security-policy"].to_str().unwrap().starts_with("default-src 'none'"));
        let gzipped = bundle.bytes().await.unwrap();
        let plain = client.get(svc.url("/docs/swagger-ui-bundle.js")).header("accept-encoding", "identity").send();
        let plain = plain.await.unwrap();
        assert!(plain.headers().get("content-encoding").is_none(), "{name}: compressed without being asked");
        let plain = plain.bytes().await.unwrap();
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gzipped[..]), &mut unzipped).unwrap();
        assert!(gzipped.len() < plain.len() / 2 && plain.len() > 100_000, "{} -> {}", plain.len(), gzipped.len());
        assert!(unzipped == plain, "{name}: the gzipped bundle is not the bundle");
        svc.stop();
    }
}

/// `/docs` in a real browser (Debian's `chromium`, headless; `.ci/run` installs it):
/// Swagger UI renders the operations of the app's routes and the kernel's, the
/// page's CSP (this origin only) reports no violation, so it tried to load nothing
/// from another host, and every other host name resolves to nothing, so nothing
/// could leave the machine anyway.
#[tokio::test]
async fn docs_render_the_apps_routes_in_a_browser_and_load_nothing_from_elsewhere() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromium is not installed: `apt-get install chromium` (.ci/run does)");
    let svc = super::start("widget_service");
    let profile = tempfile::tempdir().unwrap();
    let run = std::process::Command::new("timeout")
        .args(["90", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        // Served under a name that is not localhost, as in production (Swagger UI skips
        // its online validator for localhost only).
        .arg("--host-resolver-rules=MAP docs.example 127.0.0.1 , MAP * ~NOTFOUND")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom"])
        .arg(svc.url("/docs/").replace("127.0.0.1", "docs.example"))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&run.stdout);
    let console = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "chromium failed: {console}");
    for path in ["/api/v1/widgets", "/api/v1/auth/login", "/api/v1/jobs/{id}", "/healthz"] {
        assert!(dom.contains(&format!(r#"data-path="{path}""#)), "{path} is not rendered in /docs:\n{dom}");
    }
    let violations: Vec<&str> = console.lines().filter(|l| l.contains("Content Security Policy")).collect();
    assert!(violations.is_empty(), "the page broke its CSP: {violations:#?}");
    svc.stop();
}

// The examples of the spec's Health Checks and Streaming sections.
