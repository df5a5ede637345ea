//! The OpenAPI 3.1 document, derived from the handlers' `#[utoipa::path]` annotations and
//! the types in `views`, served at `GET /openapi.json` without a token.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::views;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "akguard",
        description = "Responds automatically when an Alibaba Cloud AccessKey pair leaks. \
            Errors are JSON (`ErrorBody`); lists are paged with `limit` and `cursor`; viewer \
            tokens read, operator tokens also report leaks and act.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        super::health::healthz,
        super::health::readyz,
        super::webhook::receive,
        super::status::show,
        super::events::stream,
        super::incidents::list,
        super::incidents::report,
        super::incidents::show,
        super::incidents::audit,
        super::report::show,
        super::incidents::act,
        super::metrics::scrape,
        serve,
        super::docs::page,
    ),
    components(schemas(
        views::AuditEvent,
        views::DeliveryEvent,
        super::incidents::ActionName
    )),
    modifiers(&SecuritySchemes),
    tags(
        (name = "incidents", description = "Incidents: list, inspect, report, act."),
        (name = "events", description = "The live event stream."),
        (name = "intake", description = "Leak notifications from configured sources."),
        (name = "status", description = "The daemon's state."),
        (name = "probes", description = "Liveness and readiness, without a token."),
        (name = "reference", description = "This document and its HTML rendering."),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |role: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(format!(
                "An API token (`api.tokens_file`) with the {role} role, as \
                 `Authorization: Bearer <token>`."
            ));
            SecurityScheme::Http(http)
        };
        components.add_security_scheme("viewer", bearer("viewer or operator"));
        components.add_security_scheme("operator", bearer("operator"));
        components.add_security_scheme(
            "webhook_hmac",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Akguard-Signature",
                "A source with `auth = \"hmac\"`: `X-Akguard-Signature: sha256=<hex \
                 HMAC-SHA256(secret, timestamp + \".\" + body)>` with `X-Akguard-Timestamp: \
                 <Unix seconds>` within `intake.hmac_window_secs`.",
            ))),
        );
        components.add_security_scheme(
            "webhook_api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Akguard-Token",
                "A source with `auth = \"api_key\"`: the key in its configured header \
                 (`X-Akguard-Token` unless `header` says otherwise).",
            ))),
        );
        let mut metrics = Http::new(HttpAuthScheme::Bearer);
        metrics.description =
            Some("`metrics.token`, when one is set, as `Authorization: Bearer <token>`.".into());
        components.add_security_scheme("metrics", SecurityScheme::Http(metrics));
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some("A source with `auth = \"basic\"`.".into());
        components.add_security_scheme("webhook_basic", SecurityScheme::Http(basic));
    }
}

/// The document as JSON, built once.
pub fn document() -> &'static serde_json::Value {
    static DOCUMENT: OnceLock<serde_json::Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::to_value(ApiDoc::openapi()).unwrap_or_default())
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json", tag = "reference",
    responses(
        (status = 200, description = "The OpenAPI document.", body = Object),
        (status = 413, description = "The request carries a body over the server's limit; this operation takes none.", body = views::ErrorBody),
    ))]
pub async fn serve() -> Response {
    let mut response = axum::Json(document()).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
