//! The console's words in English and Japanese.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    pub fn parse(raw: Option<&str>) -> Self {
        match raw {
            Some("ja") => Self::Ja,
            _ => Self::En,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Ja => "ja",
        }
    }

    pub fn other(self) -> Self {
        match self {
            Self::En => Self::Ja,
            Self::Ja => Self::En,
        }
    }

    pub fn report(self) -> crate::report::Lang {
        match self {
            Self::En => crate::report::Lang::En,
            Self::Ja => crate::report::Lang::Ja,
        }
    }

    /// The phrase `key` in this language; a key missing from the table is a defect the
    /// `every_key_has_both_languages` test catches.
    pub fn t(self, key: &str) -> &'static str {
        let (en, ja) = WORDS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or(("?", "?"), |(_, en, ja)| (*en, *ja));
        match self {
            Self::En => en,
            Self::Ja => ja,
        }
    }
}

pub const WORDS: &[(&str, &str, &str)] = &[
    ("language", "日本語", "English"),
    ("incidents", "Incidents", "インシデント"),
    ("status", "Status", "ステータス"),
    ("sign_in", "Sign in", "サインイン"),
    ("sign_out", "Sign out", "サインアウト"),
    ("token", "API token", "API トークン"),
    ("signed_in_as", "Signed in as", "サインイン中:"),
    ("all_states", "All states", "すべての状態"),
    ("waiting_for_me", "Waiting for me", "自分の対応待ち"),
    ("filter", "Filter", "絞り込み"),
    ("key", "Key", "キー"),
    ("owner", "Owner", "所有者"),
    ("source", "Source", "検知元"),
    ("state", "State", "状態"),
    ("age", "Age", "経過"),
    ("containment", "Time to containment", "封じ込めまでの時間"),
    ("none", "None", "なし"),
    (
        "explanation",
        "What happened and what a person must do",
        "経緯と必要な対応",
    ),
    ("actions", "Actions", "操作"),
    ("timeline", "Timeline", "タイムライン"),
    (
        "findings",
        "Containment, verification and forensics",
        "封じ込め・検証・調査",
    ),
    (
        "billing",
        "Billing: this cycle against the previous",
        "請求: 今期と前期の比較",
    ),
    ("flagged", "flagged", "要注意"),
    ("notifications", "Notifications", "通知"),
    ("report", "Report (Markdown)", "レポート (Markdown)"),
    ("confirm", "Confirm", "確定"),
    ("confirm_q", "Apply this action?", "この操作を実行しますか?"),
    ("reason", "Reason (required)", "理由 (必須)"),
    ("back", "Back", "戻る"),
    ("result", "Result", "結果"),
    ("version", "Version", "バージョン"),
    ("database", "Database", "データベース"),
    ("chain", "Audit chain", "監査チェーン"),
    ("intact", "intact", "正常"),
    ("broken", "broken", "破損"),
    ("checks", "Readiness checks", "準備状態のチェック"),
    (
        "replicas",
        "Replicas (last minute)",
        "レプリカ（直近 1 分）",
    ),
    ("replica_id", "Replica", "レプリカ"),
    ("host", "Host", "ホスト"),
    ("started", "Started", "起動"),
    ("heartbeat", "Last heartbeat", "最終ハートビート"),
    ("jobs", "Singleton jobs", "シングルトンジョブ"),
    ("job", "Job", "ジョブ"),
    ("holder", "Held by", "保持レプリカ"),
    ("lease_until", "Lease until", "リース期限"),
    ("backlog", "Notifications not yet delivered", "未配信の通知"),
    ("at", "At", "日時"),
    ("actor", "Actor", "実行者"),
    ("action", "Action", "操作"),
    ("detail", "Detail", "詳細"),
    ("channel", "Channel", "チャネル"),
    ("event", "Event", "イベント"),
    ("attempts", "Attempts", "試行"),
    ("error", "Error", "エラー"),
    ("current", "current", "今期"),
    ("previous", "previous (pro rata)", "前期 (按分)"),
    ("live", "Live updates on", "自動更新中"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_both_languages() {
        for (key, en, ja) in WORDS {
            assert!(!en.is_empty() && !ja.is_empty(), "{key}");
            assert_eq!(
                WORDS.iter().filter(|(k, _, _)| k == key).count(),
                1,
                "{key}"
            );
        }
    }
}
