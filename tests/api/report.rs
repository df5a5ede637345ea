//! The incident report: Markdown for people, the same content as JSON, in English and
//! Japanese, for viewers.

use akguard::escape::markdown as esc;
use serde_json::Value;

use crate::cloud_support::{LEAKED_KEY, emulator};
use crate::helpers::{TestDaemon, VIEWER_TOKEN};
use crate::remediation::{daemon_with, report};

const BACKDOOR_USER: &str = "svc-backup";
const BACKDOOR_KEY: &str = "LTAI5tBkD00rSvcBackup3Zq";

async fn get_report(app: &TestDaemon, id: i64, query: &str) -> (u16, String, Value) {
    let response = app
        .get(
            &format!("/v1/incidents/{id}/report{query}"),
            Some(VIEWER_TOKEN),
        )
        .await;
    (response.status.as_u16(), response.text, response.body)
}

/// The Markdown with its escapes undone (the escaper's backslashes, entities and full-width
/// at sign), for comparing its text with the JSON's.
fn unescaped(md: &str) -> String {
    let mut out = String::new();
    let mut chars = md.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '＠' => out.push('@'),
            c => out.push(c),
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every piece of data the JSON report holds appears in the Markdown one, and the open items
/// are the same list.
fn assert_same_content(json: &Value, md: &str) {
    let plain = unescaped(md);
    let checklist: Vec<&str> = plain
        .lines()
        .filter_map(|l| l.strip_prefix("- [ ] "))
        .collect();
    let items: Vec<&str> = json["open_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    assert_eq!(checklist, items);
    let texts = |list: &Value, field: &str| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v[field].as_str().map(str::to_owned))
            .collect()
    };
    let mut expected = texts(&json["timeline"], "what");
    expected.extend(texts(&json["actions"], "request_id"));
    expected.extend(texts(&json["forensics"]["source_ips"], "ip"));
    expected.extend(texts(&json["forensics"]["users_created"], "user_name"));
    expected.extend(texts(&json["forensics"]["keys_created"], "access_key_id"));
    expected.extend(texts(&json["billing"]["products"], "product_name"));
    expected.push(
        json["summary"]["access_key_id"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    assert!(expected.len() > 5, "{json:#}");
    for text in expected {
        assert!(
            plain.contains(&text),
            "{text:?} is not in the Markdown:\n{md}"
        );
    }
}

#[tokio::test]
async fn the_reports_of_a_leak_and_its_chain_incident_list_the_attackers_user_and_key() {
    let (url, _emulator) = emulator(
        "leaked-in-use.json",
        crate::artefacts::with_backdoor_console,
    )
    .await;
    let app = daemon_with(&url, "", &[]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    app.wait_for_incident(id, "awaiting the operator", |i| {
        i["state"] == "awaiting_operator"
    })
    .await;
    let found = app
        .get_ok(&format!("/v1/incidents?access_key_id={BACKDOOR_KEY}"))
        .await;
    let chain = found["incidents"][0]["id"]
        .as_i64()
        .expect("a chain incident");
    // Its billing too: the reports below are read one after another and must agree.
    app.wait_for_incident(chain, "its checklist and billing", |i| {
        i["findings"]["attacker_artefacts"].is_object() && i["findings"]["billing"].is_object()
    })
    .await;

    let (status, md, _) = get_report(&app, id, "").await;
    assert_eq!(status, 200, "{md}");
    assert!(md.starts_with(&format!("# Incident report {id}\n")), "{md}");
    let (_, _, json) = get_report(&app, id, "?format=json").await;
    assert_eq!(json["language"], "en");
    let forensics = &json["forensics"];
    assert_eq!(
        forensics["users_created"][0]["user_name"], BACKDOOR_USER,
        "{json:#}"
    );
    assert_eq!(forensics["keys_created"][0]["access_key_id"], BACKDOOR_KEY);
    let unknown = forensics["source_ips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ip| ip["ip"] == "45.134.26.19")
        .unwrap();
    assert_eq!(unknown["known"], false);
    assert!(!forensics["denied_attempts"].as_array().unwrap().is_empty());
    assert_eq!(json["containment"]["method"], "deny_policy");
    assert_eq!(json["containment"]["verification"], "verified");
    // The key is masked as notifications mask it; the actions carry their RequestIds.
    assert_eq!(json["summary"]["access_key_id"], "******************eploy7");
    assert!(!md.contains(LEAKED_KEY));
    let attach = json["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"] == "AttachPolicyToUser")
        .expect("the Deny policy's attachment");
    assert!(attach["request_id"].is_string(), "{attach:#}");
    assert!(json["billing"]["flags"].as_u64().unwrap() > 0);
    assert_eq!(json["summary"]["source"], "generic");
    assert_same_content(&json, &md);

    let (status, md, _) = get_report(&app, chain, "").await;
    assert_eq!(status, 200);
    let (_, _, json) = get_report(&app, chain, "?format=json").await;
    assert_eq!(json["summary"]["parent_incident_id"], id);
    assert_eq!(json["summary"]["source"], "chain");
    let items = json["open_items"].to_string();
    assert!(
        items.contains(&format!("RAM user {BACKDOOR_USER}")),
        "{items}"
    );
    assert!(items.contains(&format!("AccessKey {BACKDOOR_KEY} of user {BACKDOOR_USER}")));
    assert!(
        md.contains(&esc(&format!("RAM user {BACKDOOR_USER}"))),
        "{md}"
    );
    assert!(md.contains(&esc(&format!("AccessKey {BACKDOOR_KEY}"))));
    assert_same_content(&json, &md);

    // The same content in Japanese: the headings and open items change, the data does not.
    let (status, ja, _) = get_report(&app, chain, "?lang=ja").await;
    assert_eq!(status, 200);
    assert!(
        ja.starts_with(&format!("# インシデント報告書 {chain}\n")),
        "{ja}"
    );
    assert!(ja.contains("## 未完了の対応"));
    assert!(ja.contains(&esc(&format!(
        "AccessKey {BACKDOOR_KEY} of user {BACKDOOR_USER}"
    ))));
    let (_, _, ja_json) = get_report(&app, chain, "?lang=ja&format=json").await;
    assert_eq!(ja_json["language"], "ja");
    assert_eq!(ja_json["forensics"], json["forensics"]);
    assert_eq!(ja_json["actions"], json["actions"]);
    assert_ne!(ja_json["open_items"], json["open_items"]);
    assert_same_content(&ja_json, &ja);
}

#[tokio::test]
async fn the_report_is_for_viewers_of_incidents_that_exist_in_the_formats_it_knows() {
    let app = TestDaemon::spawn().await;
    let id = app
        .post_generic(&crate::helpers::generic(
            "LTAI5tReportedForReport1",
            "e-report",
        ))
        .await
        .incident_id();
    let (status, md, _) = get_report(&app, id, "").await;
    assert_eq!(status, 200, "{md}");
    assert!(md.contains("## Open items"), "{md}");
    let (status, _, body) = get_report(&app, 999_999, "").await;
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = get_report(&app, id, "?lang=fr").await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = get_report(&app, id, "?format=pdf").await;
    assert_eq!(status, 400, "{body}");
    let anonymous = app.get(&format!("/v1/incidents/{id}/report"), None).await;
    assert_eq!(anonymous.status.as_u16(), 401);
}
