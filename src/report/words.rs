//! The report's words in English and Japanese. Names, ids and the cloud's own text are not
//! translated.

use super::Lang;

/// Something a person still has to do, with the names and text it quotes.
#[derive(Debug, Clone)]
pub enum OpenItem {
    Approve {
        step: &'static str,
        id: i64,
    },
    Act {
        state: &'static str,
        explanation: String,
    },
    RemoveArtefact(String),
    UnknownIps(String),
    Mfa(String),
    Password(String),
    NotUndone {
        api: String,
        target: String,
        why: String,
    },
    Billing,
    DeleteKey,
    PostMortem,
}

pub(super) struct Words {
    pub lang: Lang,
    pub title: &'static str,
    pub summary: &'static str,
    pub key: &'static str,
    pub owner: &'static str,
    pub account: &'static str,
    pub source: &'static str,
    pub leak_url: &'static str,
    pub state: &'static str,
    pub detected: &'static str,
    pub contained: &'static str,
    pub resolved: &'static str,
    pub closed: &'static str,
    pub time_to_containment: &'static str,
    pub parent: &'static str,
    pub dry_run: &'static str,
    pub timeline: &'static str,
    pub containment: &'static str,
    pub method: &'static str,
    pub verification: &'static str,
    pub deny_policy: &'static str,
    pub network_fence: &'static str,
    pub ram_user: &'static str,
    pub key_deleted: &'static str,
    pub forensics: &'static str,
    pub not_yet: &'static str,
    pub source_ips: &'static str,
    pub known: &'static str,
    pub unknown: &'static str,
    pub country_unknown: &'static str,
    pub calls: &'static str,
    pub resources_created: &'static str,
    pub users_created: &'static str,
    pub keys_created: &'static str,
    pub denied: &'static str,
    pub none: &'static str,
    pub billing: &'static str,
    pub product: &'static str,
    pub this_cycle: &'static str,
    pub previous_pro_rata: &'static str,
    pub previous_cycle: &'static str,
    pub change: &'static str,
    pub flag: &'static str,
    pub actions: &'static str,
    pub open_items: &'static str,
}

const EN: Words = Words {
    lang: Lang::En,
    title: "Incident report",
    summary: "Summary",
    key: "AccessKey",
    owner: "Owner",
    account: "Account",
    source: "Reported by",
    leak_url: "Leak URL",
    state: "State",
    detected: "Detected",
    contained: "Contained",
    resolved: "Resolved",
    closed: "Closed",
    time_to_containment: "Time to containment",
    parent: "Created by the leaked key of incident",
    dry_run: "Dry run: akguard changed nothing in the cloud",
    timeline: "Timeline",
    containment: "Containment",
    method: "Method",
    verification: "Verification",
    deny_policy: "Deny policy",
    network_fence: "Network fence (only these networks may use the key)",
    ram_user: "RAM user",
    key_deleted: "Leaked key deleted",
    forensics: "Forensics (ActionTrail)",
    not_yet: "not yet",
    source_ips: "Source IPs",
    known: "known",
    unknown: "unknown",
    country_unknown: "country unknown",
    calls: "calls",
    resources_created: "Resources created",
    users_created: "RAM users created",
    keys_created: "AccessKeys created",
    denied: "Denied attempts",
    none: "none",
    billing: "Billing",
    product: "Product",
    this_cycle: "This cycle",
    previous_pro_rata: "Previous, pro rata",
    previous_cycle: "Previous cycle",
    change: "Change %",
    flag: "Flag",
    actions: "Actions taken",
    open_items: "Open items",
};

const JA: Words = Words {
    lang: Lang::Ja,
    title: "インシデント報告書",
    summary: "概要",
    key: "AccessKey",
    owner: "所有者",
    account: "アカウント",
    source: "通報元",
    leak_url: "漏えい箇所の URL",
    state: "状態",
    detected: "検知",
    contained: "封じ込め",
    resolved: "解決",
    closed: "クローズ",
    time_to_containment: "封じ込めまでの時間",
    parent: "このキーを作成した漏えいキーのインシデント",
    dry_run: "ドライラン: akguard はクラウドを一切変更していません",
    timeline: "タイムライン",
    containment: "封じ込め",
    method: "方法",
    verification: "検証",
    deny_policy: "拒否ポリシー",
    network_fence: "ネットワーク制限 (キーを使えるネットワーク)",
    ram_user: "RAM ユーザー",
    key_deleted: "漏えいキーの削除",
    forensics: "フォレンジック (ActionTrail)",
    not_yet: "未実施",
    source_ips: "送信元 IP",
    known: "既知",
    unknown: "不明",
    country_unknown: "国は不明",
    calls: "回",
    resources_created: "作成されたリソース",
    users_created: "作成された RAM ユーザー",
    keys_created: "作成された AccessKey",
    denied: "拒否された操作",
    none: "なし",
    billing: "請求",
    product: "プロダクト",
    this_cycle: "当月",
    previous_pro_rata: "前月 (日割り)",
    previous_cycle: "前月合計",
    change: "増減 %",
    flag: "フラグ",
    actions: "実施した操作",
    open_items: "未完了の対応",
};

impl Words {
    pub fn of(lang: Lang) -> &'static Words {
        match lang {
            Lang::En => &EN,
            Lang::Ja => &JA,
        }
    }

    /// What Alibaba's restrictive protection refused and what it leaves open.
    pub fn protection(&self, refused: u64, succeeded: u64) -> String {
        match self.lang {
            Lang::En => format!(
                "Alibaba Cloud's restrictive protection refused {refused} of these calls. It \
                 blocks RAM, IMS and high-risk ECS actions only; every other API stayed open \
                 to the key ({succeeded} calls with it succeeded) until it was rotated or deleted."
            ),
            Lang::Ja => format!(
                "Alibaba Cloud の制限保護がこのうち {refused} 件を拒否しました。制限保護が止めるのは \
                 RAM・IMS と高リスクの ECS 操作だけで、それ以外の API はキーのローテーションか削除まで \
                 使える状態でした (成功した呼び出し {succeeded} 件)。"
            ),
        }
    }

    /// The item in this language; `quote` shows what it quotes (escaped for Markdown, as is
    /// for JSON).
    pub fn open_item(&self, item: &OpenItem, quote: fn(&str) -> String) -> String {
        let q = quote;
        match (self.lang, item) {
            (Lang::En, OpenItem::Approve { step, id }) => format!(
                "Approve the {step} step (POST /v1/incidents/{id}/actions/approve) or cancel the incident"
            ),
            (Lang::Ja, OpenItem::Approve { step, id }) => format!(
                "{step} ステップを承認する (POST /v1/incidents/{id}/actions/approve) か、インシデントをキャンセルする"
            ),
            (Lang::En, OpenItem::Act { state, explanation }) => {
                format!("Act on the incident ({state}): {}", q(explanation))
            }
            (Lang::Ja, OpenItem::Act { state, explanation }) => {
                format!("担当者による対応が必要 ({state})。説明 (英語): {}", q(explanation))
            }
            (Lang::En, OpenItem::RemoveArtefact(item)) => {
                format!("Review and remove what the attacker created: {}", q(item))
            }
            (Lang::Ja, OpenItem::RemoveArtefact(item)) => {
                format!("攻撃者が作成したものを確認して削除する: {}", q(item))
            }
            (Lang::En, OpenItem::UnknownIps(ips)) => {
                format!("Find out who called from the unknown source IPs: {}", q(ips))
            }
            (Lang::Ja, OpenItem::UnknownIps(ips)) => {
                format!("不明な送信元 IP からの呼び出しを調査する: {}", q(ips))
            }
            (Lang::En, OpenItem::Mfa(users)) => {
                format!(
                    "Make sure these users bind an MFA device at their next logon: {}",
                    q(users)
                )
            }
            (Lang::Ja, OpenItem::Mfa(users)) => {
                format!("次回ログオン時に MFA デバイスを登録したことを確認する: {}", q(users))
            }
            (Lang::En, OpenItem::Password(user)) => {
                format!("Make sure {} sets a new console password", q(user))
            }
            (Lang::Ja, OpenItem::Password(user)) => {
                format!("{} がコンソールのパスワードを変更したことを確認する", q(user))
            }
            (Lang::En, OpenItem::NotUndone { api, target, why }) => {
                format!(
                    "Check by hand, the cancel left it in place: {} on {} ({})",
                    q(api),
                    q(target),
                    q(why)
                )
            }
            (Lang::Ja, OpenItem::NotUndone { api, target, why }) => {
                format!(
                    "キャンセルで元に戻せなかった変更を手動で確認する: {} への {} ({})",
                    q(target),
                    q(api),
                    q(why)
                )
            }
            (Lang::En, OpenItem::Billing) => "Review the flagged charges; bills lag usage by about a day, so look again tomorrow".into(),
            (Lang::Ja, OpenItem::Billing) => "フラグの付いた請求を確認する。請求は約 1 日遅れて反映されるため、翌日にも再確認する".into(),
            (Lang::En, OpenItem::DeleteKey) => "Make sure the leaked key is deleted once nothing needs it".into(),
            (Lang::Ja, OpenItem::DeleteKey) => "不要になった時点で漏えいしたキーが削除されたことを確認する".into(),
            (Lang::En, OpenItem::PostMortem) => "Record how the key leaked and what keeps it from leaking again".into(),
            (Lang::Ja, OpenItem::PostMortem) => "漏えいの経緯と再発防止策を記録する".into(),
        }
    }
}
