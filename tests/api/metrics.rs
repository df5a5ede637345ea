//! `/metrics` scraped from a running daemon: every metric the issue names is exported and
//! moves while the daemon handles a leak against the emulator, the token guards it, and no
//! label carries a key id or a secret.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::cloud_support::{AKGUARD_SECRET, LEAKED_KEY, emulator, set_faults};
use crate::helpers::{SECRETS, TestDaemon};
use crate::receiver::Receiver;
use crate::remediation::{daemon_with, report};

const METRICS_TOKEN: &str = "metrics-scrape-token-4e5f6a7b8c";
/// A key the scenario does not know: a webhook report of it stays an incident of its own.
const OTHER_KEY: &str = "LTAI5tMetricsProbeKey001";

/// One scrape, parsed: `(name, labels, value)` per sample line.
struct Scrape {
    text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("`series value`");
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => (name, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                let labels = labels
                    .split(',')
                    .filter(|l| !l.is_empty())
                    .map(|pair| {
                        let (k, v) = pair.split_once('=').expect("`label=\"value\"`");
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels, value.parse().expect("a number"))
            })
            .collect();
        Self { text, samples }
    }

    /// The sum of `name`'s samples whose labels include all of `labels`; `None` if none has.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
            })
            .map(|(_, _, v)| *v)
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.sum(name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{}", self.text))
    }
}

async fn scrape(client: &reqwest::Client, url: &str, token: Option<&str>) -> Scrape {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    Scrape::parse(response.text().await.unwrap())
}

/// The address the daemon logged for its separate metrics listener.
async fn metrics_url(app: &TestDaemon) -> String {
    app.wait_for_log("metrics listening").await;
    let log = app.log();
    let line = log
        .lines()
        .find(|l| l.contains("metrics listening"))
        .unwrap();
    let event: serde_json::Value = serde_json::from_str(line).unwrap();
    format!("http://{}/metrics", event["addr"].as_str().unwrap())
}

#[tokio::test]
async fn every_metric_is_exported_and_moves_while_a_leak_is_contained() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let slack = Receiver::start("/services/T0/B0/metrics", 200, "ok").await;
    let config = format!(
        "[[notify.channels]]\nname = \"oncall\"\nkind = \"slack\"\nurl = \"{}\"\n\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n",
        slack.url
    );
    let app = daemon_with(&url, &config, &[("AKGUARD__METRICS__TOKEN", METRICS_TOKEN)]).await;
    let metrics = metrics_url(&app).await;
    let client = reqwest::Client::new();

    // The token guards the separate listener, and the API's listener does not serve it.
    for token in [None, Some("metrics-scrape-token-4e5f6a7b8X")] {
        let mut request = client.get(&metrics);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
    }
    let on_api = app.get("/metrics", Some(METRICS_TOKEN)).await;
    assert_eq!(on_api.status, StatusCode::NOT_FOUND);

    app.wait_for_log("remediation workers started").await;
    let before = scrape(&client, &metrics, Some(METRICS_TOKEN)).await;
    // Triage's first read fails past the transport's retries once: a failed step, retried.
    set_faults(
        &url,
        json!({"fail_next": [{"action": "GetUser", "count": 7, "code": "ServiceUnavailable", "status": 503}]}),
    )
    .await;
    let id = report(&app, LEAKED_KEY, 5).await;
    app.wait_for_incident(id, "contained", |i| !i["time_to_containment_ms"].is_null())
        .await;
    let after = wait_for_scrape(&client, &metrics, Some(METRICS_TOKEN), |s| {
        s.sum(
            "akguard_notification_deliveries_total",
            &[("channel", "oncall"), ("outcome", "sent")],
        )
        .is_some()
    })
    .await;

    let ok_ram_calls = |s: &Scrape| {
        s.sum(
            "akguard_cloud_calls_total",
            &[("product", "ram"), ("outcome", "ok")],
        )
        .unwrap_or(0.0)
    };
    assert!(
        ok_ram_calls(&after) > ok_ram_calls(&before),
        "{}",
        after.text
    );
    assert!(
        after.value(
            "akguard_cloud_calls_total",
            &[
                ("product", "ims"),
                ("action", "GetUser"),
                ("outcome", "server_error")
            ],
        ) >= 5.0
    );
    assert_eq!(
        after.value(
            "akguard_intake_notifications_total",
            &[("source", "generic")]
        ),
        1.0
    );
    assert_eq!(
        after.value("akguard_time_to_containment_seconds_count", &[]),
        1.0
    );
    assert_eq!(
        before.sum("akguard_time_to_containment_seconds_count", &[]),
        None
    );
    assert!(
        after.value(
            "akguard_step_failures_total",
            &[("step", "triage"), ("class", "retryable")],
        ) >= 1.0
    );
    assert!(after.value("akguard_step_duration_seconds_count", &[("step", "triage")]) >= 2.0);
    assert!(after.value("akguard_step_duration_seconds_bucket", &[("le", "+Inf")]) >= 2.0);
    assert!(
        after.value(
            "akguard_rate_limit_wait_seconds_count",
            &[("class", "other")]
        ) >= 1.0
    );
    // Read from the database at each scrape: one incident, in whichever state it reached.
    assert_eq!(before.value("akguard_incidents", &[]), 0.0);
    assert_eq!(after.value("akguard_incidents", &[]), 1.0);
    assert_eq!(after.value("akguard_incidents", &[("state", "new")]), 0.0);
    assert!(
        after
            .sum("akguard_notifications_pending", &[("channel", "oncall")])
            .is_some()
    );
    assert_eq!(after.value("akguard_credentials_check_success", &[]), 1.0);
    // A static AccessKey never expires: the gauge is left out rather than made up.
    assert_eq!(
        after.sum("akguard_credentials_expiry_timestamp_seconds", &[]),
        None
    );

    for secret in SECRETS
        .iter()
        .chain([&AKGUARD_SECRET, &METRICS_TOKEN, &LEAKED_KEY])
    {
        assert!(!after.text.contains(secret), "{secret} in the metrics");
    }
}

/// Scrapes until `ready` holds (bounded): the sender and the poller report on their own time.
async fn wait_for_scrape(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    ready: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let scraped = scrape(client, url, token).await;
        if ready(&scraped) {
            return scraped;
        }
        assert!(Instant::now() < deadline, "never ready:\n{}", scraped.text);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn metrics_share_the_api_listener_by_default_and_can_be_turned_off() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    // Temporary credentials from an AssumeRole: their expiry is exported. The poller finds
    // the scenario's leak record.
    let app = TestDaemon::spawn_with_env(
        "",
        &[
            ("AKGUARD__ALIBABA__ENDPOINT", &url),
            (
                "AKGUARD__ALIBABA__ACCESS_KEY_ID",
                crate::cloud_support::AKGUARD_KEY,
            ),
            ("AKGUARD__ALIBABA__ACCESS_KEY_SECRET", AKGUARD_SECRET),
            (
                "AKGUARD__ALIBABA__ROLE_ARN",
                "acs:ram::1234567890123456:role/akguard-responder",
            ),
            ("AKGUARD__INTAKE__SECURITY_CENTER__ENABLED", "true"),
            ("AKGUARD__INTAKE__SECURITY_CENTER__INTERVAL", "1s"),
        ],
    )
    .await;
    let metrics = format!("{}/metrics", app.base);
    let client = reqwest::Client::new();
    let body = json!({"access_key_id": OTHER_KEY, "event_id": "metrics-1"}).to_string();
    app.post_generic(&body).await.incident_id();
    app.post_generic(&body).await.incident_id();
    let scraped = wait_for_scrape(&client, &metrics, None, |s| {
        s.sum("akguard_credentials_expiry_timestamp_seconds", &[])
            .is_some()
            && s.sum("akguard_poller_last_success_timestamp_seconds", &[])
                .is_some()
            && s.sum("akguard_intake_notifications_total", &[("source", "sas")])
                .is_some()
            // A scrape reads the incident tally before the counters, so the poller's commit
            // may land between the two.
            && s.sum("akguard_incidents", &[("state", "new")]) == Some(2.0)
    })
    .await;
    let outcome = |o: &str| {
        scraped.value(
            "akguard_intake_notifications_total",
            &[("source", "generic"), ("outcome", o)],
        )
    };
    assert_eq!((outcome("created"), outcome("replay")), (1.0, 1.0));
    assert_eq!(
        scraped.value(
            "akguard_intake_notifications_total",
            &[("source", "sas"), ("outcome", "created")],
        ),
        1.0
    );
    // The webhook's and the poller's: both wait for triage, as no worker runs here.
    assert_eq!(scraped.value("akguard_incidents", &[("state", "new")]), 2.0);
    let polled = scraped.value("akguard_poller_last_success_timestamp_seconds", &[]);
    let expiry = scraped.value("akguard_credentials_expiry_timestamp_seconds", &[]);
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(now - 60.0 <= polled && polled <= now + 1.0, "{polled}");
    assert!(now < expiry && expiry <= now + 3600.0 + 60.0, "{expiry}");
    assert_eq!(
        scraped.value(
            "akguard_cloud_calls_total",
            &[
                ("product", "sts"),
                ("action", "AssumeRole"),
                ("outcome", "ok")
            ],
        ),
        1.0
    );
    assert_eq!(scraped.value("akguard_credentials_check_success", &[]), 1.0);

    let off = TestDaemon::spawn_with_env("", &[("AKGUARD__METRICS__ENABLED", "false")]).await;
    assert_eq!(
        off.get("/metrics", None).await.status,
        StatusCode::NOT_FOUND
    );
}
