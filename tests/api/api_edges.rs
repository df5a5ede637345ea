//! The edges of the HTTP API: page sizes out of range, the last page, bodies that cannot be
//! read.

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestDaemon, VIEWER_TOKEN, generic};

#[tokio::test]
async fn a_page_size_out_of_range_is_refused() {
    let app = TestDaemon::spawn().await;
    for limit in ["0", "201", "-1", "abc"] {
        let resp = app
            .get(&format!("/v1/incidents?limit={limit}"), Some(VIEWER_TOKEN))
            .await;
        assert_eq!(resp.status, StatusCode::BAD_REQUEST, "limit={limit}");
        assert_eq!(resp.body["error"]["code"], "bad_request", "{}", resp.text);
        assert!(
            resp.error_message().contains("between 1 and 200"),
            "{}",
            resp.text
        );
    }
    for limit in ["1", "200"] {
        let resp = app
            .get(&format!("/v1/incidents?limit={limit}"), Some(VIEWER_TOKEN))
            .await;
        assert_eq!(resp.status, StatusCode::OK, "limit={limit}");
    }
}

#[tokio::test]
async fn the_last_page_offers_no_next_cursor() {
    let app = TestDaemon::spawn().await;
    for n in 0..4 {
        let resp = app
            .post_generic(&generic(
                &format!("LTAI5tLASTPAGE0000{n}"),
                &format!("evt-lp-{n}"),
            ))
            .await;
        assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text);
    }
    let first = app.get_ok("/v1/incidents?limit=2").await;
    assert_eq!(first["incidents"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().expect("a second page exists");
    let last = app
        .get_ok(&format!("/v1/incidents?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(last["incidents"].as_array().unwrap().len(), 2);
    assert!(
        last["next_cursor"].is_null(),
        "the last page points to an empty one: {last}"
    );
}

#[tokio::test]
async fn a_malformed_chunked_body_is_a_bad_request() {
    let app = TestDaemon::spawn().await;
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(
            b"POST /v1/notifications/generic HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
              zz\r\n{}\r\n0\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}
