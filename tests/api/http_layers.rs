//! The layers every request passes: its request id (echoed, on each of its log lines), the
//! request timeout and the body limit, each answering in the API's JSON error shape.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestDaemon;

/// The daemon's JSON log lines written in the span of request `id`.
fn lines_of_request(app: &TestDaemon, id: &str) -> Vec<Value> {
    app.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["span"]["request.id"] == id)
        .collect()
}

async fn get_with_id(app: &TestDaemon, id: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .get(app.url("/v1/incidents"))
        .bearer_auth("not-a-token-at-all");
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    request.send().await.unwrap()
}

fn echoed(response: &reqwest::Response) -> String {
    let id = response
        .headers()
        .get("x-request-id")
        .expect("an x-request-id");
    id.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_request_id_is_echoed_and_carried_by_every_log_line_of_its_request() {
    let app = TestDaemon::spawn().await;
    let response = get_with_id(&app, Some("abc")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(echoed(&response), "abc");
    app.wait_for_log("request answered").await;
    let lines = lines_of_request(&app, "abc");
    let messages: Vec<&str> = lines.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        messages.contains(&"authentication failed") && messages.contains(&"request answered"),
        "{messages:?}\n{}",
        app.log()
    );
    for line in &lines {
        assert_eq!(line["span"]["path"], "/v1/incidents", "{line}");
    }
    let answered = lines
        .iter()
        .find(|l| l["message"] == "request answered")
        .unwrap();
    assert_eq!(answered["status"], 401, "{answered}");

    // Without one, the daemon makes one, and logs under it.
    let response = get_with_id(&app, None).await;
    let made = echoed(&response);
    assert_eq!(made.len(), 36, "a UUID: {made}");
    assert_ne!(
        echoed(&get_with_id(&app, None).await),
        made,
        "one per request"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while lines_of_request(&app, &made).len() < 2 {
        assert!(std::time::Instant::now() < deadline, "{}", app.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_clients_request_id_is_cut_and_cleaned_before_it_is_logged() {
    let app = TestDaemon::spawn().await;
    let hostile = format!("abc def\"}}<script>{}", "x".repeat(200));
    let response = get_with_id(&app, Some(&hostile)).await;
    let cleaned = echoed(&response);
    assert_eq!(cleaned.len(), 64);
    assert!(cleaned.starts_with("abc_def___script_xxx"), "{cleaned}");
    app.wait_for_log("request answered").await;
    assert!(
        !lines_of_request(&app, &cleaned).is_empty(),
        "{}",
        app.log()
    );
    assert!(!app.log().contains("<script>"), "{}", app.log());
}

/// Sends `head` and `body` on a fresh connection and reads the whole answer.
async fn raw_exchange(app: &TestDaemon, head: &str, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before taking all of the body.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer));
    let _ = read.await.expect("the daemon answered");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_streamed_body_over_the_limit_gets_the_apis_413() {
    let app = TestDaemon::spawn_with("[intake]\nmax_body_bytes = 100\n").await;
    let chunk = "x".repeat(150);
    let body = format!("{:x}\r\n{chunk}\r\n0\r\n\r\n", chunk.len());
    let answer = raw_exchange(
        &app,
        "POST /v1/notifications/generic HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        body.as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        answer.contains(r#""code":"payload_too_large""#)
            && answer.contains("larger than the limit of 100 bytes"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_request_over_its_time_gets_the_apis_503() {
    let app =
        TestDaemon::spawn_with_env("", &[("AKGUARD__SERVER__REQUEST_TIMEOUT_SECS", "1")]).await;
    // A body promised and never sent keeps the handler waiting.
    let mut stream = TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /v1/notifications/generic HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nContent-Length: 50\r\nx-request-id: slow-1\r\n\r\n{",
        )
        .await
        .unwrap();
    let mut answer = vec![0_u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer));
    let n = read.await.expect("the daemon answered").unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(
        answer.contains(r#"{"error":{"code":"unavailable","message":"the request timed out"}}"#),
        "{answer}"
    );
    assert!(answer.contains("x-request-id: slow-1"), "{answer}");
    app.wait_for_log("the request timed out").await;
    let timed_out = lines_of_request(&app, "slow-1");
    assert!(
        timed_out.iter().any(|l| l["level"] == "WARN"),
        "{}",
        app.log()
    );
}
