//! Keeping secrets out of everything lifeboat writes: the values of a
//! runbook's `secret: true` parameters, and text that looks like a
//! credential (AWS access key ids, secret keys and session tokens given as
//! `name=value`, SigV4 signatures and credentials in URLs, bearer tokens).
//! The engine passes every message and output through a [`Redactor`]
//! before the journal (and so `show`, reports and progress) or the log
//! sees it.

use crate::REDACTED;

/// Replaces secret values and credential-shaped text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    secrets: Vec<String>,
}

/// Names whose `name=value` or `name: value` values are credentials.
const CREDENTIAL_NAMES: &[&str] = &[
    "aws_secret_access_key",
    "aws_session_token",
    "secret_access_key",
    "session_token",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "password",
    "passwd",
    "token",
    "api_key",
    "apikey",
];

impl Redactor {
    /// A redactor for these secret values (empty ones are ignored).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Redactor {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Redactor { secrets }
    }

    /// `text` with every secret and credential replaced by `<redacted>`.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        credentials(&out)
    }

    /// `value` with every string in it redacted.
    pub fn json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), self.json(v))).collect())
            }
            other => other.clone(),
        }
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// A URL as it may appear in logs: scheme and host only, since webhook
/// paths and queries often carry tokens.
pub fn url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}/…")
}

/// `text` with credential-shaped parts replaced.
pub fn credentials(text: &str) -> String {
    let mut out = access_key_ids(text);
    for name in CREDENTIAL_NAMES {
        out = named_values(&out, name);
    }
    bearer(&out)
}

/// AWS access key ids: `AKIA`/`ASIA` and 16 more uppercase letters or digits.
fn access_key_ids(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let starts = |p: &str| chars[i..].iter().take(4).copied().eq(p.chars());
        let before_ok = i == 0 || !is_key_char(chars[i - 1]);
        if before_ok
            && (starts("AKIA") || starts("ASIA"))
            && i + 20 <= chars.len()
            && chars[i + 4..i + 20].iter().all(|&c| is_key_char(c))
            && chars.get(i + 20).is_none_or(|&c| !is_key_char(c))
        {
            out.push_str(REDACTED);
            i += 20;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// The value after `name=` or `name: ` (case-insensitive), up to a
/// separator.
fn named_values(text: &str, name: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let start = from + found;
        let after = start + name.len();
        // A whole name: not the tail of a longer word.
        let whole = start == 0
            || !lower[..start]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let sep = lower[after..]
            .char_indices()
            .take_while(|(_, c)| matches!(c, '=' | ':' | ' ' | '"' | '\''))
            .last()
            .map(|(i, c)| after + i + c.len_utf8());
        match sep {
            Some(value_start) if whole && lower[after..value_start].contains(['=', ':']) => {
                let end = lower[value_start..]
                    .find(|c: char| c.is_whitespace() || matches!(c, '&' | '"' | '\'' | ',' | ';'))
                    .map_or(lower.len(), |e| value_start + e);
                if end > value_start {
                    out.push_str(&text[rest..value_start]);
                    out.push_str(REDACTED);
                    rest = end;
                }
                from = end.max(after);
            }
            _ => from = after,
        }
        if from >= lower.len() {
            break;
        }
    }
    out.push_str(&text[rest..]);
    out
}

/// `Bearer <token>`.
fn bearer(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("Bearer ") {
        let start = i + "Bearer ".len();
        let end = rest[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\''))
            .map_or(rest.len(), |e| start + e);
        out.push_str(&rest[..start]);
        if end > start {
            out.push_str(REDACTED);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_credentials_are_replaced() {
        let r = Redactor::new(["hunter2".to_string(), "hunter2-long".to_string()]);
        assert_eq!(
            r.text("pw hunter2-long and hunter2"),
            "pw <redacted> and <redacted>"
        );
        assert_eq!(r.text("key AKIAIOSFODNN7EXAMPLE in"), "key <redacted> in");
        assert_eq!(
            r.text("AKIAIOSFODNN7EXAMPLEX stays"),
            "AKIAIOSFODNN7EXAMPLEX stays"
        );
        assert_eq!(
            r.text("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG next"),
            "aws_secret_access_key=<redacted> next"
        );
        assert_eq!(
            r.text("https://rds/?Action=Copy&X-Amz-Signature=abc123&X-Amz-Date=1"),
            "https://rds/?Action=Copy&X-Amz-Signature=<redacted>&X-Amz-Date=1"
        );
        assert_eq!(
            r.text("Authorization: Bearer eyJhbGc.x"),
            "Authorization: Bearer <redacted>"
        );
        assert_eq!(
            r.text("\"password\": \"s3cr3t\""),
            "\"password\": \"<redacted>\""
        );
        assert_eq!(
            r.text("tokenizer ran; no_token here"),
            "tokenizer ran; no_token here"
        );
        let json = serde_json::json!({ "stdout": "token=abc", "n": 1, "list": ["hunter2"] });
        assert_eq!(
            r.json(&json),
            serde_json::json!({ "stdout": "token=<redacted>", "n": 1, "list": ["<redacted>"] })
        );
    }
}
