//! What notifications say, in English, Japanese (the runbook akguard follows is Japanese)
//! and Chinese (the language of DingTalk's, WeCom's and Feishu's users). Only akguard's own words live here; values are filled in by `message`.

use crate::config::Language;
use crate::domain::notice::NoticeKind;

/// A fact's label.
pub fn label(language: Language, key: &str) -> &'static str {
    match (language, key) {
        (Language::En, "incident") => "Incident",
        (Language::Ja, "incident") => "インシデント",
        (Language::Zh, "incident") => "事件",
        (Language::En, "access_key_id") => "AccessKey",
        (Language::Ja, "access_key_id") => "AccessKey",
        (Language::Zh, "access_key_id") => "AccessKey",
        (Language::En, "source") => "Reported by",
        (Language::Ja, "source") => "検知元",
        (Language::Zh, "source") => "报告来源",
        (Language::En, "account") => "Account",
        (Language::Ja, "account") => "アカウント",
        (Language::Zh, "account") => "账号",
        (Language::En, "user_name") => "RAM user",
        (Language::Ja, "user_name") => "RAM ユーザー",
        (Language::Zh, "user_name") => "RAM 用户",
        (Language::En, "state") => "State",
        (Language::Ja, "state") => "状態",
        (Language::Zh, "state") => "状态",
        (Language::En, "time_to_containment") => "Time to containment",
        (Language::Ja, "time_to_containment") => "封じ込めまでの時間",
        (Language::Zh, "time_to_containment") => "遏制耗时",
        (Language::En, "parent_incident") => "Created by the key of incident",
        (Language::Ja, "parent_incident") => "作成元のインシデント",
        (Language::Zh, "parent_incident") => "创建者所属事件",
        (Language::En, "step") => "Step",
        (Language::Ja, "step") => "ステップ",
        (Language::Zh, "step") => "步骤",
        (Language::En, "last_error") => "Last error",
        (Language::Ja, "last_error") => "直近のエラー",
        (Language::Zh, "last_error") => "最近错误",
        (Language::En, "leak_url") => "Where it leaked",
        (Language::Ja, "leak_url") => "漏洩箇所",
        (Language::Zh, "leak_url") => "泄露位置",
        (Language::En, "action") => "What to do",
        (Language::Ja, "action") => "対応",
        (Language::Zh, "action") => "处理方法",
        (Language::En, "command") => "Command",
        (Language::Ja, "command") => "コマンド",
        (Language::Zh, "command") => "命令",
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
        (Language::Zh, NoticeKind::Opened) => {
            format!("akguard: 已为泄露的 AccessKey {subject} 创建事件 {incident}")
        }
        (Language::En, NoticeKind::ChainOpened) => format!(
            "akguard: incident {incident}: AccessKey {subject} was created by the attacker's key"
        ),
        (Language::Ja, NoticeKind::ChainOpened) => format!(
            "akguard: インシデント {incident}: 攻撃者のキーが AccessKey {subject} を作成しました"
        ),
        (Language::Zh, NoticeKind::ChainOpened) => {
            format!("akguard: 事件 {incident}: AccessKey {subject} 由攻击者的密钥创建")
        }
        (Language::En, NoticeKind::Contained) => {
            format!("akguard: incident {incident} contained (AccessKey {subject})")
        }
        (Language::Ja, NoticeKind::Contained) => {
            format!("akguard: インシデント {incident} を封じ込めました（AccessKey {subject}）")
        }
        (Language::Zh, NoticeKind::Contained) => {
            format!("akguard: 事件 {incident} 已遏制（AccessKey {subject}）")
        }
        (Language::En, NoticeKind::NeedsPerson) => {
            format!("akguard: incident {incident} needs a person (AccessKey {subject})")
        }
        (Language::Ja, NoticeKind::NeedsPerson) => {
            format!(
                "akguard: インシデント {incident} は担当者の対応が必要です（AccessKey {subject}）"
            )
        }
        (Language::Zh, NoticeKind::NeedsPerson) => {
            format!("akguard: 事件 {incident} 需要人工处理（AccessKey {subject}）")
        }
        (Language::En, NoticeKind::StepFailing) => {
            format!("akguard: incident {incident}: a step keeps failing (AccessKey {subject})")
        }
        (Language::Ja, NoticeKind::StepFailing) => format!(
            "akguard: インシデント {incident}: ステップが繰り返し失敗しています（AccessKey {subject}）"
        ),
        (Language::Zh, NoticeKind::StepFailing) => {
            format!("akguard: 事件 {incident}: 某个步骤反复失败（AccessKey {subject}）")
        }
        (Language::En, NoticeKind::Resolved) => {
            format!("akguard: incident {incident} resolved (AccessKey {subject})")
        }
        (Language::Ja, NoticeKind::Resolved) => {
            format!("akguard: インシデント {incident} は解決しました（AccessKey {subject}）")
        }
        (Language::Zh, NoticeKind::Resolved) => {
            format!("akguard: 事件 {incident} 已解决（AccessKey {subject}）")
        }
        (Language::En, NoticeKind::Cancelled) => {
            format!("akguard: incident {incident} cancelled (AccessKey {subject})")
        }
        (Language::Ja, NoticeKind::Cancelled) => {
            format!("akguard: インシデント {incident} は取り消されました（AccessKey {subject}）")
        }
        (Language::Zh, NoticeKind::Cancelled) => {
            format!("akguard: 事件 {incident} 已取消（AccessKey {subject}）")
        }
        (Language::En, NoticeKind::Test) => {
            format!("akguard: test message for channel {subject}")
        }
        (Language::Ja, NoticeKind::Test) => {
            format!("akguard: チャンネル {subject} のテストメッセージです")
        }
        (Language::Zh, NoticeKind::Test) => format!("akguard: 渠道 {subject} 的测试消息"),
    }
}

/// A digest's headline: `count` incidents opened at once (see `digest`).
pub fn digest_title(language: Language, count: usize) -> String {
    match language {
        Language::En => format!("akguard: {count} incidents opened for leaked AccessKeys"),
        Language::Ja => {
            format!("akguard: 漏洩した AccessKey のインシデントを {count} 件起票しました")
        }
        Language::Zh => format!("akguard: 已为泄露的 AccessKey 创建 {count} 个事件"),
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
        (Language::Zh, Some("approve")) => {
            "该步骤正在等待操作员审批。请确认内容，无误后执行批准（approve）。".into()
        }
        (Language::Zh, Some("confirm-cutover")) => {
            "已遏制（已附加 Deny 策略并要求 MFA）。请将工作负载切换到新密钥后执行 confirm-cutover，\
             akguard 会确认旧密钥不再使用，然后禁用并删除它。"
                .into()
        }
        (Language::Zh, Some(_)) => {
            "自动处理已停止。请查看事件中的错误和 RequestId，排除原因后执行 retry。".into()
        }
        (Language::Zh, None) => {
            "akguard 无法处理此密钥（主账号密钥或 STS 临时密钥）。请在控制台禁用、删除密钥或限制相关角色。"
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
        Language::Zh => "该渠道配置正确：akguard 可以发送消息，签名也已被接受。",
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
        (Language::Zh, 0, s) => format!("{s} 秒"),
        (Language::Zh, m, s) => format!("{m} 分 {s} 秒"),
    }
}
