//! What notifications say, in English and Japanese (the runbook akguard follows is
//! Japanese). Only akguard's own words live here; values are filled in by `message`.

use crate::config::Language;
use crate::domain::notice::NoticeKind;

/// A fact's label.
pub fn label(language: Language, key: &str) -> &'static str {
    match (language, key) {
        (Language::En, "incident") => "Incident",
        (Language::Ja, "incident") => "インシデント",
        (Language::En, "access_key_id") => "AccessKey",
        (Language::Ja, "access_key_id") => "AccessKey",
        (Language::En, "source") => "Reported by",
        (Language::Ja, "source") => "検知元",
        (Language::En, "account") => "Account",
        (Language::Ja, "account") => "アカウント",
        (Language::En, "user_name") => "RAM user",
        (Language::Ja, "user_name") => "RAM ユーザー",
        (Language::En, "state") => "State",
        (Language::Ja, "state") => "状態",
        (Language::En, "time_to_containment") => "Time to containment",
        (Language::Ja, "time_to_containment") => "封じ込めまでの時間",
        (Language::En, "parent_incident") => "Created by the key of incident",
        (Language::Ja, "parent_incident") => "作成元のインシデント",
        (Language::En, "step") => "Step",
        (Language::Ja, "step") => "ステップ",
        (Language::En, "last_error") => "Last error",
        (Language::Ja, "last_error") => "直近のエラー",
        (Language::En, "leak_url") => "Where it leaked",
        (Language::Ja, "leak_url") => "漏洩箇所",
        (Language::En, "action") => "What to do",
        (Language::Ja, "action") => "対応",
        (Language::En, "command") => "Command",
        (Language::Ja, "command") => "コマンド",
        _ => "",
    }
}

/// The headline. `subject` is the masked key id, or the channel's name for a test.
pub fn title(language: Language, kind: NoticeKind, incident: i64, subject: &str) -> String {
    match (language, kind) {
        (Language::En, NoticeKind::Opened) => {
            format!("akguard: incident {incident} opened for leaked AccessKey {subject}")
        }
        (Language::Ja, NoticeKind::Opened) => {
            format!(
                "akguard: 漏洩した AccessKey {subject} のインシデント {incident} を起票しました"
            )
        }
        (Language::En, NoticeKind::ChainOpened) => format!(
            "akguard: incident {incident}: AccessKey {subject} was created by the attacker's key"
        ),
        (Language::Ja, NoticeKind::ChainOpened) => format!(
            "akguard: インシデント {incident}: 攻撃者のキーが AccessKey {subject} を作成しました"
        ),
        (Language::En, NoticeKind::Contained) => {
            format!("akguard: incident {incident} contained (AccessKey {subject})")
        }
        (Language::Ja, NoticeKind::Contained) => {
            format!("akguard: インシデント {incident} を封じ込めました（AccessKey {subject}）")
        }
        (Language::En, NoticeKind::NeedsPerson) => {
            format!("akguard: incident {incident} needs a person (AccessKey {subject})")
        }
        (Language::Ja, NoticeKind::NeedsPerson) => {
            format!(
                "akguard: インシデント {incident} は担当者の対応が必要です（AccessKey {subject}）"
            )
        }
        (Language::En, NoticeKind::StepFailing) => {
            format!("akguard: incident {incident}: a step keeps failing (AccessKey {subject})")
        }
        (Language::Ja, NoticeKind::StepFailing) => format!(
            "akguard: インシデント {incident}: ステップが繰り返し失敗しています（AccessKey {subject}）"
        ),
        (Language::En, NoticeKind::Resolved) => {
            format!("akguard: incident {incident} resolved (AccessKey {subject})")
        }
        (Language::Ja, NoticeKind::Resolved) => {
            format!("akguard: インシデント {incident} は解決しました（AccessKey {subject}）")
        }
        (Language::En, NoticeKind::Cancelled) => {
            format!("akguard: incident {incident} cancelled (AccessKey {subject})")
        }
        (Language::Ja, NoticeKind::Cancelled) => {
            format!("akguard: インシデント {incident} は取り消されました（AccessKey {subject}）")
        }
        (Language::En, NoticeKind::Test) => {
            format!("akguard: test message for channel {subject}")
        }
        (Language::Ja, NoticeKind::Test) => {
            format!("akguard: チャンネル {subject} のテストメッセージです")
        }
    }
}

/// What a person is asked to do, by operator action (`None`: nothing akguard can do for
/// them; `explanation` is akguard's own English description of the state).
pub fn instruction(language: Language, action: Option<&str>, explanation: &str) -> String {
    match (language, action) {
        (Language::En, _) => explanation.to_owned(),
        (Language::Ja, Some("approve")) => {
            "このステップは担当者の承認を待っています。内容を確認し、問題なければ承認（approve）してください。"
                .into()
        }
        (Language::Ja, Some("confirm-cutover")) => {
            "封じ込め済みです（Deny ポリシー適用・MFA 必須）。ワークロードを新しいキーに切り替えた後、\
             confirm-cutover を実行してください。akguard が旧キーの未使用を確認し、無効化・削除します。"
                .into()
        }
        (Language::Ja, Some(_)) => {
            "自動対応が停止しました。インシデントのエラーと RequestId を確認して原因を取り除き、\
             retry を実行してください。"
                .into()
        }
        (Language::Ja, None) => {
            "akguard では対応できないキーです（アカウントのキー、または STS の一時キー）。\
             コンソールで無効化・削除またはロールの制限を行ってください。"
                .into()
        }
    }
}

/// A test message's body.
pub fn test_body(language: Language) -> &'static str {
    match language {
        Language::En => {
            "This channel is set up: akguard can reach it and its signature is accepted."
        }
        Language::Ja => {
            "このチャンネルは正しく設定されています。akguard から送信でき、署名も受理されました。"
        }
    }
}

/// A duration for people: `42 s`, `3 min 5 s`.
pub fn duration(language: Language, ms: i64) -> String {
    let secs = ms.max(0) / 1000;
    match (language, secs / 60, secs % 60) {
        (Language::En, 0, s) => format!("{s} s"),
        (Language::En, m, s) => format!("{m} min {s} s"),
        (Language::Ja, 0, s) => format!("{s} 秒"),
        (Language::Ja, m, s) => format!("{m} 分 {s} 秒"),
    }
}
