//! Idle and slow connections cannot take the daemon offline: header and idle timeouts close
//! them, and at the connection cap the oldest idle one makes room for a new one.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{ProcessSetup, TestDaemon, generic, raise_own_nofile};

/// An upper bound for things that should happen at once; reaching it fails the test.
const PATIENCE: Duration = Duration::from_secs(30);

fn addr(app: &TestDaemon) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection; fails the test if it never does.
async fn closed_by_server(stream: &mut TcpStream, what: &str, app: &TestDaemon) {
    let mut buf = [0_u8; 1024];
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what} was never closed\n{}", app.log());
}

#[tokio::test]
async fn the_daemon_answers_while_two_thousand_idle_connections_are_held() {
    // The daemon gets the stock 1,024 open-file limit and the default connection cap; the
    // test itself needs room for 2,000 sockets.
    raise_own_nofile(4096);
    let app = TestDaemon::spawn_with_process(
        &[],
        ProcessSetup {
            nofile: Some(1024),
            umask: None,
        },
    )
    .await;
    let target = addr(&app);
    let mut held = Vec::with_capacity(2000);
    let opened = tokio::time::timeout(PATIENCE, async {
        for n in 0..2000 {
            let mut stream = TcpStream::connect(&target).await.unwrap();
            if n % 2 == 0 {
                // Half start a request and never finish its head.
                let _ = stream
                    .write_all(b"POST /v1/notifications/generic HTTP/1.1\r\nHost: x\r\n")
                    .await;
            }
            held.push(stream);
        }
    })
    .await;
    assert!(
        opened.is_ok(),
        "could not open 2,000 connections\n{}",
        app.log()
    );

    let answered = tokio::time::timeout(PATIENCE, async {
        let resp = app
            .post_generic(&generic("LTAI5tIDLECONNS00001", "evt-idle-1"))
            .await;
        assert_eq!(resp.status, StatusCode::ACCEPTED, "{}", resp.text);
        let health = app.get("/healthz", None).await;
        assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    })
    .await;
    assert!(
        answered.is_ok(),
        "the daemon stopped answering while idle connections were held\n{}",
        app.log()
    );
    assert_eq!(held.len(), 2000);
    assert!(
        app.log().contains("connection limit reached"),
        "reaching the cap was not logged\n{}",
        app.log()
    );
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_cut_off() {
    let app = TestDaemon::spawn_with_env(
        "",
        &[
            ("AKGUARD__SERVER__HEADER_READ_TIMEOUT", "1s"),
            ("AKGUARD__SERVER__IDLE_TIMEOUT", "1h"),
        ],
    )
    .await;
    let mut silent = TcpStream::connect(addr(&app)).await.unwrap();
    let mut slow = TcpStream::connect(addr(&app)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    closed_by_server(&mut silent, "a connection that sent nothing", &app).await;
    closed_by_server(&mut slow, "a connection with an unfinished head", &app).await;
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_once_idle() {
    let app = TestDaemon::spawn_with_env(
        "",
        &[
            ("AKGUARD__SERVER__HEADER_READ_TIMEOUT", "1h"),
            ("AKGUARD__SERVER__IDLE_TIMEOUT", "1s"),
        ],
    )
    .await;
    let mut stream = TcpStream::connect(addr(&app)).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0_u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    closed_by_server(&mut stream, "an idle kept-alive connection", &app).await;
}
