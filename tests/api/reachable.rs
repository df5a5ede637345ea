//! Every 4xx that `/openapi.json` documents can happen: a table holds one crafted request per
//! (method, path, status), each is sent to a live daemon and must get that status in the
//! documented shape, and the table is compared with the document both ways, so that neither
//! can drift from the other.

use std::collections::BTreeSet;

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{
    GENERIC_SECRET, OPERATOR_TOKEN, TestDaemon, VIEWER_TOKEN, generic, hmac_signature, now,
};

const METRICS_TOKEN: &str = "metrics-token-4c5d6e7f8a9b0c1d";
const SCOPED_SECRET: &str = "scoped-hmac-secret-2b3c4d5e6f70";

/// The main daemon: one event stream at most, a source that speaks for one account only,
/// and metrics behind a token.
const MAIN_CONFIG: &str = r#"
[api.events]
max_streams = 1

[intake.sources.scoped]
format = "generic"
auth = "hmac"
accounts = ["1234567890123456"]
"#;

const MAIN_ENV: &[(&str, &str)] = &[
    // The table's many 401s must not spend this peer's budget: 429 has a daemon of its own.
    ("AKGUARD__SERVER__MAX_AUTH_FAILURES", "1000"),
    ("AKGUARD__METRICS__TOKEN", METRICS_TOKEN),
    ("AKGUARD__INTAKE__SOURCES__SCOPED__SECRET", SCOPED_SECRET),
];

/// One failure spends the budget, and it does not refill while the test runs.
const SPENT_ENV: &[(&str, &str)] = &[
    ("AKGUARD__SERVER__MAX_AUTH_FAILURES", "1"),
    ("AKGUARD__SERVER__AUTH_FAILURE_WINDOW", "1h"),
];

/// Where a probe is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum On {
    /// The main daemon, with its one event stream held open by the test.
    Main,
    /// A daemon whose failed-authentication budget for this peer is spent.
    Spent,
}

/// One crafted request and the status it must get.
struct Probe {
    method: &'static str,
    /// The operation's path as the document names it.
    template: &'static str,
    status: u16,
    on: On,
    /// The concrete path and query.
    uri: String,
    token: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn probe(method: &'static str, template: &'static str, status: u16, uri: &str) -> Probe {
    Probe {
        method,
        template,
        status,
        on: On::Main,
        uri: uri.to_owned(),
        token: None,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

impl Probe {
    fn token(mut self, token: &'static str) -> Self {
        self.token = Some(token);
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn json(self, body: &str) -> Self {
        self.header("content-type", "application/json")
            .body(body.as_bytes())
    }

    fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self
    }

    /// Signed for an HMAC source, with the body it carries.
    fn signed(self, secret: &str, content_type: &str, body: &str) -> Self {
        let ts = now();
        self.header("content-type", content_type)
            .header("x-akguard-timestamp", &ts.to_string())
            .header(
                "x-akguard-signature",
                &hmac_signature(secret, ts, body.as_bytes()),
            )
            .body(body.as_bytes())
    }

    fn on_spent(mut self) -> Self {
        self.on = On::Spent;
        self
    }
}

/// The table: `incident` exists (in state `new`: no worker runs), `oversized` is over
/// `intake.max_body_bytes`.
fn probes(incident: i64, oversized: &str) -> Vec<Probe> {
    const ACT: &str = "/v1/incidents/{id}/actions/{action}";
    const NOTIFY: &str = "/v1/notifications/{source}";
    let report = generic("LTAI5tREACHABLE00002", "reachable-report");
    let retry = format!("/v1/incidents/{incident}/actions/retry");
    let cancel = format!("/v1/incidents/{incident}/actions/cancel");
    let mut table = vec![
        probe("get", "/v1/status", 401, "/v1/status"),
        probe("get", "/v1/events", 400, "/v1/events")
            .token(VIEWER_TOKEN)
            .header("last-event-id", "not-an-event-id"),
        probe("get", "/v1/events", 401, "/v1/events"),
        // The test holds the one stream `api.events.max_streams` allows.
        probe("get", "/v1/events", 503, "/v1/events").token(VIEWER_TOKEN),
        probe("get", "/v1/incidents", 400, "/v1/incidents?limit=abc").token(VIEWER_TOKEN),
        probe("get", "/v1/incidents", 401, "/v1/incidents"),
        probe("post", "/v1/incidents", 400, "/v1/incidents")
            .token(OPERATOR_TOKEN)
            .json("{\"access_key_id\":"),
        probe("post", "/v1/incidents", 401, "/v1/incidents").json(&report),
        probe("post", "/v1/incidents", 403, "/v1/incidents")
            .token(VIEWER_TOKEN)
            .json(&report),
        probe("post", "/v1/incidents", 413, "/v1/incidents")
            .token(OPERATOR_TOKEN)
            .json(oversized),
        probe("post", "/v1/incidents", 415, "/v1/incidents")
            .token(OPERATOR_TOKEN)
            .header("content-type", "text/plain")
            .body(report.as_bytes()),
        // A cancellation must say why.
        probe("post", ACT, 400, &cancel)
            .token(OPERATOR_TOKEN)
            .json("{\"force\": false}"),
        probe("post", ACT, 401, &retry),
        probe("post", ACT, 403, &retry).token(VIEWER_TOKEN),
        probe("post", ACT, 404, "/v1/incidents/999999/actions/retry").token(OPERATOR_TOKEN),
        // A new incident has nothing to retry.
        probe("post", ACT, 409, &retry).token(OPERATOR_TOKEN),
        probe("post", ACT, 413, &cancel)
            .token(OPERATOR_TOKEN)
            .json(oversized),
        probe("post", NOTIFY, 400, "/v1/notifications/generic").signed(
            GENERIC_SECRET,
            "application/json",
            "{\"access_key_id\":",
        ),
        probe("post", NOTIFY, 401, "/v1/notifications/generic").signed(
            "not-the-generic-secret-0000",
            "application/json",
            &report,
        ),
        // The scoped source speaks for one account; this report names none.
        probe("post", NOTIFY, 403, "/v1/notifications/scoped").signed(
            SCOPED_SECRET,
            "application/json",
            &report,
        ),
        probe("post", NOTIFY, 404, "/v1/notifications/nowhere").json(&report),
        probe("post", NOTIFY, 413, "/v1/notifications/generic").signed(
            GENERIC_SECRET,
            "application/json",
            oversized,
        ),
        probe("post", NOTIFY, 415, "/v1/notifications/generic").signed(
            GENERIC_SECRET,
            "text/plain",
            &report,
        ),
        probe("get", "/metrics", 401, "/metrics"),
    ];
    // The incident reads refuse alike: an id that does not decode, no token, no such incident.
    for (template, tail) in [
        ("/v1/incidents/{id}", ""),
        ("/v1/incidents/{id}/audit", "/audit"),
        ("/v1/incidents/{id}/report", "/report"),
    ] {
        table.extend([
            probe("get", template, 400, &format!("/v1/incidents/%FF{tail}")).token(VIEWER_TOKEN),
            probe(
                "get",
                template,
                401,
                &format!("/v1/incidents/{incident}{tail}"),
            ),
            probe("get", template, 404, &format!("/v1/incidents/999999{tail}")).token(VIEWER_TOKEN),
        ]);
    }
    // The body limit holds for every request, also one to an operation that takes no body,
    // and is checked before anything else.
    for template in [
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/docs",
        "/metrics",
        "/v1/status",
        "/v1/events",
        "/v1/incidents",
        "/v1/incidents/{id}",
        "/v1/incidents/{id}/audit",
        "/v1/incidents/{id}/report",
    ] {
        let uri = template.replace("{id}", &incident.to_string());
        table.push(probe("get", template, 413, &uri).json(oversized));
    }
    // Once the peer's budget is spent, every authenticated operation is refused, even with a
    // valid credential.
    for (method, template, uri, token) in [
        ("get", "/v1/status", "/v1/status", VIEWER_TOKEN),
        ("get", "/v1/events", "/v1/events", VIEWER_TOKEN),
        ("get", "/v1/incidents", "/v1/incidents", VIEWER_TOKEN),
        ("post", "/v1/incidents", "/v1/incidents", OPERATOR_TOKEN),
        ("get", "/v1/incidents/{id}", "/v1/incidents/1", VIEWER_TOKEN),
        (
            "get",
            "/v1/incidents/{id}/audit",
            "/v1/incidents/1/audit",
            VIEWER_TOKEN,
        ),
        (
            "get",
            "/v1/incidents/{id}/report",
            "/v1/incidents/1/report",
            VIEWER_TOKEN,
        ),
        ("post", ACT, "/v1/incidents/1/actions/retry", OPERATOR_TOKEN),
        ("post", NOTIFY, "/v1/notifications/generic", OPERATOR_TOKEN),
        ("get", "/metrics", "/metrics", METRICS_TOKEN),
    ] {
        table.push(probe(method, template, 429, uri).token(token).on_spent());
    }
    table
}

#[tokio::test]
async fn every_documented_4xx_is_provoked_by_a_request_of_the_table() {
    let (app, spent) = tokio::join!(
        TestDaemon::spawn_with_env(MAIN_CONFIG, MAIN_ENV),
        TestDaemon::spawn_with_env("", SPENT_ENV),
    );
    let doc = app.get("/openapi.json", None).await.body;
    let incident = app
        .post_generic(&generic("LTAI5tREACHABLE00001", "reachable-incident"))
        .await
        .incident_id();
    let oversized = generic("LTAI5tREACHABLE00003", &"x".repeat(300 * 1024));
    let table = probes(incident, &oversized);

    let documented = documented_errors(&doc);
    let mut covered = BTreeSet::new();
    for p in &table {
        let entry = (p.method.to_owned(), p.template.to_owned(), p.status);
        assert!(
            covered.insert(entry.clone()),
            "{entry:?} has two entries in the table"
        );
        assert!(
            doc["paths"][p.template][p.method]["responses"][p.status.to_string()].is_object(),
            "the table provokes {} for {} {}, which the document does not name for it",
            p.status,
            p.method.to_uppercase(),
            p.template
        );
    }
    let missing: Vec<_> = documented
        .iter()
        .filter(|(m, t, s)| !covered.contains(&((*m).clone(), (*t).clone(), *s)))
        .collect();
    assert!(
        missing.is_empty(),
        "documented 4xx with no request in the table that provokes them: {missing:?}"
    );

    // The one stream the main daemon allows, held while the table runs.
    let held = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), StatusCode::OK);
    // One wrong token spends the other daemon's budget for this peer.
    assert_eq!(
        spent.get("/v1/status", Some("a-wrong-token")).await.status,
        StatusCode::UNAUTHORIZED
    );

    for p in &table {
        let daemon = match p.on {
            On::Main => &app,
            On::Spent => &spent,
        };
        let what = format!("{} {} ({})", p.method.to_uppercase(), p.uri, p.template);
        let mut request = daemon.client.request(
            Method::from_bytes(p.method.to_uppercase().as_bytes()).unwrap(),
            daemon.url(&p.uri),
        );
        if let Some(token) = p.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &p.headers {
            request = request.header(*name, value);
        }
        let resp = request.body(p.body.clone()).send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        assert_eq!(status, p.status, "{what}: {text}");
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{what}: answered {content_type:?}"
        );
        let schema = &doc["paths"][p.template][p.method]["responses"][status.to_string()]["content"]
            ["application/json"]["schema"];
        assert!(
            schema.is_object(),
            "{what}: no JSON body documented for {status}"
        );
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: {e}: {text}"));
        if let Err(misfit) = conforms(&doc, schema, &body, "body") {
            panic!("{what}: the body does not match the documented schema: {misfit}\n{text}");
        }
        assert_eq!(body["error"]["code"], code_of(status), "{what}: {text}");
        if status == 429 {
            assert!(headers.contains_key(RETRY_AFTER), "{what}: no Retry-After");
        }
    }
    drop(held);
}

/// Every (method, path, status) with a 4xx status the document names.
fn documented_errors(doc: &Value) -> BTreeSet<(String, String, u16)> {
    let mut errors = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for status in op["responses"].as_object().unwrap().keys() {
                let status: u16 = status.parse().unwrap();
                if (400..500).contains(&status) {
                    errors.insert((method.clone(), path.clone(), status));
                }
            }
        }
    }
    errors
}

/// The `error.code` the API pairs with each status.
fn code_of(status: u16) -> &'static str {
    match status {
        400 => "bad_request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        429 => "too_many_requests",
        503 => "unavailable",
        other => panic!("no error code for {other}"),
    }
}

/// Whether `value` fits `schema`, or where it first does not. Only the keywords the
/// document's error bodies use are understood; any other that constrains a value fails,
/// so the check never passes by not looking.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(target) = schema["$ref"].as_str() {
        let name = target
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| format!("{at}: unknown reference {target}"))?;
        return conforms(doc, &doc["components"]["schemas"][name], value, at);
    }
    for keyword in [
        "oneOf",
        "anyOf",
        "allOf",
        "not",
        "additionalProperties",
        "items",
    ] {
        if !schema[keyword].is_null() {
            return Err(format!("{at}: `{keyword}` is not understood by this check"));
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => return Err(format!("{at}: type {other}")),
        };
        let fits = types.iter().any(|t| match *t {
            "object" => value.is_object(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            return Err(format!("{at}: {value} is not {types:?}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap_or_default();
        if value.get(name).is_none() {
            return Err(format!("{at}: `{name}` is missing"));
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            if let Some(v) = value.get(name) {
                conforms(doc, property, v, &format!("{at}.{name}"))?;
            }
        }
    }
    Ok(())
}

#[test]
fn the_shape_check_refuses_bodies_off_the_schema() {
    let doc = serde_json::json!({"components": {"schemas": {
        "ErrorBody": {"type": "object", "required": ["error"],
            "properties": {"error": {"$ref": "#/components/schemas/ErrorDetail"}}},
        "ErrorDetail": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string", "enum": ["conflict"]},
            "message": {"type": "string"}}},
    }}});
    let schema = serde_json::json!({"$ref": "#/components/schemas/ErrorBody"});
    let fits = serde_json::json!({"error": {"code": "conflict", "message": "busy"}});
    assert_eq!(conforms(&doc, &schema, &fits, "body"), Ok(()));
    for off in [
        serde_json::json!({"code": "conflict", "message": "busy"}),
        serde_json::json!({"error": {"code": "teapot", "message": "busy"}}),
        serde_json::json!({"error": {"code": "conflict"}}),
        serde_json::json!({"error": {"code": "conflict", "message": 7}}),
        serde_json::json!("conflict"),
    ] {
        assert!(conforms(&doc, &schema, &off, "body").is_err(), "{off}");
    }
    let unknown = serde_json::json!({"oneOf": [{"type": "string"}]});
    assert!(conforms(&doc, &unknown, &fits, "body").is_err());
}
