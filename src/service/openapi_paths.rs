//! The kernel's own routes whose paths come from settings (auth, jobs, audit), as
//! OpenAPI operations: `utoipa::path` needs literal paths, so these are built at
//! start-up from the same settings that mount the routes.

use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, Paths};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, Required, ResponseBuilder};

use crate::auth::AuthMode;
use crate::service::Kernel;

/// One operation: method, path under the API prefix, summary, whether it needs a
/// token, an example JSON body, and its statuses.
struct Op {
    method: HttpMethod,
    path: String,
    tag: &'static str,
    summary: &'static str,
    secured: bool,
    body: Option<&'static str>,
    statuses: &'static [(u16, &'static str)],
}

const LOGIN: &str = r#"{"username": "ann@example.com", "password": "correct horse battery"}"#;

/// The operations mounted with this kernel's settings.
pub(crate) fn paths(kernel: &Kernel) -> Paths {
    let mut paths = Paths::new();
    for op in ops(kernel) {
        let mut operation = OperationBuilder::new().tag(op.tag).summary(Some(op.summary));
        if op.secured {
            operation = operation.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        if let Some(example) = op.body {
            let content = ContentBuilder::new().example(serde_json::from_str(example).ok()).build();
            let body = RequestBodyBuilder::new().content("application/json", content).required(Some(Required::True));
            operation = operation.request_body(Some(body.build()));
        }
        if op.path.contains("{id}") {
            operation = operation
                .parameter(ParameterBuilder::new().name("id").parameter_in(ParameterIn::Path).required(Required::True));
        }
        for (status, description) in op.statuses {
            operation = operation.response(status.to_string(), ResponseBuilder::new().description(*description));
        }
        paths.add_path_operation(op.path, vec![op.method], operation.build());
    }
    paths
}

fn ops(kernel: &Kernel) -> Vec<Op> {
    let s = kernel.settings();
    let f = &s.features;
    let api = &s.server.api_prefix;
    let auth = format!("{api}{}", f.auth_prefix);
    let op = |method, path: String, tag, summary, secured, body, statuses| Op {
        method,
        path,
        tag,
        summary,
        secured,
        body,
        statuses,
    };
    let mut out = Vec::new();
    if f.enable_auth_routes && f.auth_mode == AuthMode::Local {
        use HttpMethod::{Get, Post};
        out.extend([
            op(
                Post,
                format!("{auth}/register"),
                "auth",
                "Create an account (when self-signup is on)",
                false,
                Some(r#"{"username": "ann", "email": "ann@example.com", "password": "correct horse battery"}"#),
                &[
                    (201, "the new user"),
                    (403, "self-signup is off"),
                    (409, "username or email taken"),
                    (422, "invalid fields"),
                ],
            ),
            op(
                Post,
                format!("{auth}/login"),
                "auth",
                "Exchange credentials for an access and a refresh token (JSON or OAuth2 form)",
                false,
                Some(LOGIN),
                &[(200, "token pair"), (401, "invalid credentials"), (429, "too many failed logins; see Retry-After")],
            ),
            op(
                Get,
                format!("{auth}/me"),
                "auth",
                "The caller's identity",
                true,
                None,
                &[(200, "the user"), (401, "no or bad token")],
            ),
            op(
                Post,
                format!("{auth}/refresh"),
                "auth",
                "Rotate a refresh token into a new pair",
                false,
                Some(r#"{"refresh_token": "..."}"#),
                &[(200, "new token pair"), (401, "refresh token invalid, expired or reused")],
            ),
            op(
                Post,
                format!("{auth}/change-password"),
                "auth",
                "Change the password; revokes refresh tokens",
                true,
                Some(r#"{"old_password": "...", "new_password": "..."}"#),
                &[(200, "changed"), (400, "wrong current password"), (401, "no or bad token")],
            ),
            op(
                Post,
                format!("{auth}/logout"),
                "auth",
                "Revoke refresh tokens",
                true,
                Some(r#"{"refresh_token": "..."}"#),
                &[(200, "logged out"), (401, "no or bad token")],
            ),
        ]);
    }
    if f.enable_auth_routes && f.auth_mode != AuthMode::External {
        out.extend([
            op(
                HttpMethod::Post,
                format!("{auth}/api-keys"),
                "auth",
                "Create an API key (admin); the secret is shown once",
                true,
                Some(r#"{"name": "ci", "user_id": "..."}"#),
                &[(201, "the key and its secret"), (403, "admin role required")],
            ),
            op(
                HttpMethod::Get,
                format!("{auth}/api-keys"),
                "auth",
                "List API keys (admin), without secrets",
                true,
                None,
                &[(200, "keys"), (403, "admin role required")],
            ),
            op(
                HttpMethod::Delete,
                format!("{auth}/api-keys/{{id}}"),
                "auth",
                "Revoke an API key (admin)",
                true,
                None,
                &[(204, "revoked"), (404, "no such key"), (403, "admin role required")],
            ),
        ]);
    }
    out.push(op(
        HttpMethod::Get,
        format!("{api}/jobs/{{id}}"),
        "jobs",
        "A background job's status and result",
        true,
        None,
        &[(200, "the job"), (404, "no such job, or not the caller's")],
    ));
    if f.enable_audit_routes {
        out.push(op(
            HttpMethod::Get,
            format!("{api}/audit"),
            "audit",
            "Audit events (admin), filtered, cursor-paginated",
            true,
            None,
            &[(200, "events and next cursor"), (403, "admin role required")],
        ));
    }
    out
}
