//! The API's published contract: `/openapi.json` and the `/docs` page, served without a
//! token and built into the binary.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestDaemon;

/// Every route the daemon serves, as the document must name it.
const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/v1/notifications/{source}"),
    ("get", "/v1/status"),
    ("get", "/v1/events"),
    ("get", "/v1/incidents"),
    ("post", "/v1/incidents"),
    ("get", "/v1/incidents/{id}"),
    ("get", "/v1/incidents/{id}/audit"),
    ("get", "/v1/incidents/{id}/report"),
    ("post", "/v1/incidents/{id}/actions/{action}"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_openapi_document_names_every_operation_its_errors_and_its_security() {
    let app = TestDaemon::spawn().await;
    let resp = app.get("/openapi.json", None).await;
    assert_eq!(resp.status, StatusCode::OK);
    let doc = resp.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    let mut expected: Vec<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    documented.sort();
    expected.sort();
    assert_eq!(documented, expected);

    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for scheme in [
        "viewer",
        "operator",
        "webhook_hmac",
        "webhook_api_key",
        "webhook_basic",
    ] {
        assert!(schemes.contains_key(scheme), "{scheme}");
    }
    assert_eq!(schemes["webhook_hmac"]["name"], "X-Akguard-Signature");
    // Every operation behind a token documents its refusal in the API's error shape.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["security"].is_null() {
                continue;
            }
            let refused = &op["responses"]["401"]["content"]["application/json"]["schema"];
            assert_eq!(
                refused["$ref"], "#/components/schemas/ErrorBody",
                "{method} {path}"
            );
        }
    }
    let error = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(error["required"], serde_json::json!(["code", "message"]));
    let codes = &doc["components"]["schemas"]["ErrorCode"]["enum"];
    assert!(codes.as_array().unwrap().contains(&Value::from("conflict")));
    let act = &doc["paths"]["/v1/incidents/{id}/actions/{action}"]["post"];
    for status in ["400", "401", "403", "404", "409", "413"] {
        assert!(act["responses"][status].is_object(), "{status}");
    }
    let actions = &doc["components"]["schemas"]["ActionName"]["enum"];
    assert_eq!(
        actions,
        &serde_json::json!([
            "retry",
            "confirm-cutover",
            "set-rotation",
            "reenable",
            "cancel",
            "approve"
        ])
    );
}

#[tokio::test]
async fn the_docs_page_is_self_contained_and_locked_down() {
    let app = TestDaemon::spawn().await;
    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let headers = page.headers().clone();
    let html = page.text().await.unwrap();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    for (method, path) in OPERATIONS {
        assert!(
            html.contains(&format!("{} {path}", method.to_uppercase())),
            "{method} {path}"
        );
    }
    assert!(html.contains("id=\"schema-ActionRequest\""));
    // Nothing comes from another origin, and nothing runs.
    assert!(!html.contains("<script"));
    assert!(!html.contains("http://") && !html.contains("https://"));

    let css = app
        .client
        .get(app.url("/docs/docs.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}
