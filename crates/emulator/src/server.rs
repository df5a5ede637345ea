//! The HTTP front: RPC requests on `/` (merged parameters, gateway checks, faults, dispatch,
//! the call log), plus the control API and the metadata service on their own paths.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use super::auth;
use super::error::ApiError;
use super::ids;
use super::network::{self, Source};
use super::params::Params;
use super::product::{Call, Product, unknown_action};
use super::signature_v3::V3Request;
use super::state::{CallRecord, Inner, Shared};
use super::when::format_time;
use super::{control, members, metadata};

/// What Alibaba answers a key under restrictive protection, word for word.
const LEAK_PROTECTION_MESSAGE: &str = "Forbidden : There is a risk of leakage of this AccessKey.";

/// ActionTrail's `LookupEvents` quota when `enforce_rate_limits` is on.
const LOOKUP_EVENTS_PER_SECOND: usize = 2;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(rpc).post(rpc))
        .merge(control::routes())
        .merge(metadata::routes())
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such path on the emulator\n") })
        .with_state(shared)
}

/// What one RPC request gets back.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after_ms: Option<u64>,
    pub latency: Duration,
    /// The call's `seq` in the call log.
    pub seq: u64,
}

async fn rpc(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    // The call log's time is the request's arrival, taken before its body is read or checked:
    // a stamp delayed by a busy runtime would show two calls closer together than they came.
    let arrived = shared.clock.now();
    let body = match Bytes::from_request(request, &shared).await {
        Ok(body) => body,
        Err(rejection) => return rejection.into_response(),
    };
    // The gateway reads a body as parameters only when it is a form; the Python SDK sends
    // everything in the query string with an empty body.
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
    let params = Params::merge(uri.query(), if form { &body } else { &[] });
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let v3 = V3Request::from_http(&headers, uri.query(), &body);
    let source = Source::from_headers(&headers);
    let answer = process(
        &shared,
        arrived,
        method.as_str(),
        &params,
        host,
        v3.as_ref(),
        &source,
    );
    if !answer.latency.is_zero() {
        tokio::time::sleep(answer.latency).await;
    }
    let answered_at = shared
        .clock
        .now()
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    if let Some(record) = shared
        .lock()
        .calls
        .iter_mut()
        .rev()
        .find(|c| c.seq == answer.seq)
    {
        record.answered_at = Some(answered_at);
    }
    let mut response = (answer.status, axum::Json(answer.body)).into_response();
    if let Some(ms) = answer.retry_after_ms {
        response
            .headers_mut()
            .insert("x-acs-retry-after", HeaderValue::from(ms));
    }
    response
}

/// Handles one RPC request that arrived at `now` under the state lock and logs it, whatever
/// the outcome. `v3` is the signature of a V3-signed request; without it the request is
/// V1-signed. `source` is where the call comes from, for network access policies.
pub(crate) fn process(
    shared: &Shared,
    now: DateTime<Utc>,
    method: &str,
    params: &Params,
    host: Option<&str>,
    v3: Option<&V3Request>,
    source: &Source,
) -> Answer {
    let merged;
    let params = match v3 {
        Some(v3) => {
            merged = params.with(v3.common_params());
            &merged
        }
        None => params,
    };
    let mut inner = shared.lock();
    let product = params.get("Version").and_then(Product::from_version);
    let request_id = ids::request_id();
    let request = Request {
        method,
        params,
        v3,
        source,
        request_id: &request_id,
    };
    let entered = members::enter(&mut inner, params.get("AccessKeyId"));
    let result = run(&mut inner, &request, now, product);
    let account = inner.world.account.uid.clone();
    let latency = Duration::from_millis(inner.world.faults.latency_ms);
    members::leave(&mut inner, entered);
    let (status, body, retry_after_ms, code) = match result {
        Ok(mut body) => {
            body["RequestId"] = request_id.into();
            (StatusCode::OK, body, None, None)
        }
        Err(err) => {
            let host_id = match product {
                Some(product) => product.host(),
                None => host.unwrap_or("aliyuncs.com"),
            };
            let body = json!({
                "RequestId": request_id,
                "HostId": host_id,
                "Code": err.code,
                "Message": err.message,
                "Recommend": format!(
                    "https://api.aliyun.com/troubleshoot?q={}&product={}&requestId={request_id}",
                    err.code,
                    product.map_or("", Product::code),
                ),
            });
            (err.status, body, err.retry_after_ms, Some(err.code))
        }
    };
    if status.is_success() {
        tracing::debug!(action = params.get("Action"), "emulated call succeeded");
    } else {
        tracing::debug!(
            action = params.get("Action"),
            code = code.as_deref(),
            "emulated call failed"
        );
    }
    let seq = inner.calls.len() as u64 + 1;
    let owned = |name: &str| params.get(name).map(str::to_string);
    inner.calls.push(CallRecord {
        seq,
        at: now.to_rfc3339_opts(SecondsFormat::Micros, true),
        answered_at: None,
        version: owned("Version"),
        product: product.map(Product::name),
        action: owned("Action"),
        access_key_id: owned("AccessKeyId"),
        nonce: owned("SignatureNonce"),
        timestamp: owned("Timestamp"),
        method: method.to_string(),
        signature: if v3.is_some() { "v3" } else { "v1" },
        status: status.as_u16(),
        code,
        account,
        params: params.loggable(),
    });
    Answer {
        status,
        body,
        retry_after_ms,
        latency,
        seq,
    }
}

/// One RPC request as the gateway sees it.
struct Request<'a> {
    method: &'a str,
    params: &'a Params,
    v3: Option<&'a V3Request>,
    source: &'a Source,
    request_id: &'a str,
}

fn run(
    inner: &mut Inner,
    request: &Request<'_>,
    now: DateTime<Utc>,
    product: Option<Product>,
) -> Result<Value, ApiError> {
    let Request {
        method,
        params,
        v3,
        source,
        ..
    } = *request;
    // The gateway resolves the API before it authenticates: an unknown version or action is
    // reported even for an unsigned request.
    let action = params.required("Action")?;
    params.required("Version")?;
    let product = product.ok_or_else(|| {
        ApiError::bad_request(
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        )
    })?;
    if !product.knows(action) {
        return Err(unknown_action());
    }
    let caller = match v3 {
        Some(v3) => {
            v3.check_common()?;
            auth::authenticate(inner, params, now, product.code(), |secret| {
                v3.verify(secret, method)
            })?
        }
        None => {
            auth::check_common(params)?;
            auth::authenticate(inner, params, now, product.code(), |secret| {
                auth::verify_v1(secret, method, params)
            })?
        }
    };
    let key_id = params.required("AccessKeyId")?;
    network::admit(&inner.world, key_id, source)?;
    if caller.leaked && product.blocks_leaked_key() {
        let refusal = ApiError::forbidden("Forbidden", LEAK_PROTECTION_MESSAGE);
        // ActionTrail records the refused attempt, error and all, as it does for real.
        let event = refused_event(request, product, action, now, &refusal);
        inner.world.events.push(event);
        return Err(refusal);
    }
    if product == Product::ActionTrail
        && action == "LookupEvents"
        && inner.world.enforce_rate_limits
    {
        let uid = inner.world.account.uid.clone();
        let window = inner.lookup_windows.entry(uid).or_default();
        window.retain(|t| now - *t < TimeDelta::seconds(1));
        if window.len() >= LOOKUP_EVENTS_PER_SECOND {
            return Err(ApiError::throttled(inner.world.faults.retry_after_ms));
        }
        window.push_back(now);
    }
    let string_to_sign = match v3 {
        Some(v3) => v3.string_to_sign(method)?,
        None => super::signature::string_to_sign(method, params.all()),
    };
    inner.world.faults.inject(
        product.name(),
        action,
        params.get("UserName"),
        &string_to_sign,
    )?;
    let mut call = Call {
        world: &mut inner.world,
        params,
        caller: &caller,
        now,
    };
    let body = product.handle(action, &mut call)?;
    match inner
        .world
        .faults
        .lost_answer(product.name(), action, params.get("UserName"))
    {
        Some(lost) => Err(lost),
        None => Ok(body),
    }
}

/// The ActionTrail event of a call the gateway refused, shaped like the events it records.
fn refused_event(
    request: &Request<'_>,
    product: Product,
    action: &str,
    now: DateTime<Utc>,
    refusal: &ApiError,
) -> Value {
    json!({
        "eventId": request.request_id,
        "eventVersion": 1,
        "eventTime": format_time(now),
        "eventType": "ApiCall",
        "eventCategory": "Management",
        "eventName": action,
        "eventSource": product.host(),
        "serviceName": product.code(),
        "apiVersion": request.params.get("Version"),
        "requestId": request.request_id,
        "sourceIpAddress": request.source.address.to_string(),
        "userIdentity": {"accessKeyId": request.params.get("AccessKeyId")},
        "errorCode": refusal.code,
        "errorMessage": refusal.message,
    })
}
