//! Redaction: the one place every user-facing string passes through before it leaves the
//! process (logs, errors, the summary line, run and backfill records, the report).
//!
//! What is removed:
//! - credentials in URLs: the `user:password@` part of any `scheme://` URL becomes
//!   `[redacted]@` (a bare `user@`, as in `abfs://container@account`, names no secret and stays);
//! - secret query parameters (`sig=`, `X-Amz-Signature=`, `token=`, `password=`, ...);
//! - every secret value the job resolved (store options that can carry one, and the cloud
//!   credential variables of the environment), wherever it appears.
//!
//! Personal data never reaches these strings in the first place: extraction withholds the raw
//! text of rows of extracts with personal data, parse errors name positions, not content, and
//! check samples of personal columns are masked ([`mask_personal`]).

use std::sync::{OnceLock, RwLock};

/// The text that replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Environment variables whose values are credentials, redacted wherever they appear.
const SECRET_ENV: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
];

/// Query parameters whose values are secrets (compared case-insensitively).
const SECRET_PARAMS: &[&str] = &[
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
    "x-goog-signature",
    "x-goog-credential",
    "token",
    "access_token",
    "password",
    "secret",
    "key",
    "api_key",
    "apikey",
];

fn secrets() -> &'static RwLock<Vec<String>> {
    static SECRETS: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let env = SECRET_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .filter(|v| v.len() >= 4)
            .collect();
        RwLock::new(env)
    })
}

/// Registers a secret value (a resolved store option): it is redacted wherever it appears from
/// now on. Values shorter than four characters are not registered (they would redact words).
pub fn register_secret(value: &str) {
    let value = value.trim();
    if value.len() < 4 {
        return;
    }
    let mut guard = secrets().write().unwrap_or_else(|p| p.into_inner());
    if !guard.iter().any(|s| s == value) {
        guard.push(value.to_string());
        // longest first, so a secret that contains another is removed whole
        guard.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Removes credentials and secrets from a user-facing string.
pub fn redact(text: &str) -> String {
    let mut out = redact_url_credentials(text);
    out = redact_query_secrets(&out);
    let guard = secrets().read().unwrap_or_else(|p| p.into_inner());
    for s in guard.iter() {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    out
}

/// Whether a string carries a credential that [`redact`] would remove from a URL.
pub fn has_url_credentials(text: &str) -> bool {
    redact_url_credentials(text) != text
}

fn is_url_delimiter(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '`' | '<' | '>' | '(' | ')' | '[' | ']' | ','
        )
}

/// `scheme://user:password@host` -> `scheme://[redacted]@host`. A secret may itself hold `/`
/// (AWS secret keys do), so everything between `://` and the first `@` of the URL is removed
/// when it holds a `:`; a false positive only hides a path, never shows a secret.
fn redact_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(is_url_delimiter).unwrap_or(tail.len());
        let token = &tail[..end];
        match token.find('@') {
            Some(at) if token[..at].contains(':') => {
                out.push_str(REDACTED);
                out.push_str(&token[at..]);
            }
            _ => out.push_str(token),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// `?sig=abc&x=1` -> `?sig=[redacted]&x=1`, for the parameters in [`SECRET_PARAMS`].
fn redact_query_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['?', '&']) {
        out.push_str(&rest[..=i]);
        let after = &rest[i + 1..];
        let key_end = after
            .find(|c: char| c == '=' || c == '&' || is_url_delimiter(c))
            .unwrap_or(after.len());
        let key = &after[..key_end];
        let is_secret = after[key_end..].starts_with('=')
            && SECRET_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(key));
        if is_secret {
            out.push_str(key);
            out.push('=');
            let value = &after[key_end + 1..];
            let value_end = value
                .find(|c: char| c == '&' || c == '#' || is_url_delimiter(c))
                .unwrap_or(value.len());
            out.push_str(REDACTED);
            rest = &value[value_end..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Masks a value of a personal-data column (e-mail, name, phone, birth date, income) in a
/// check's failing sample: nothing of the value is kept but its length, so the sample still
/// shows how many distinct values fail and that they are not empty.
pub fn mask_personal(value: &str) -> String {
    if value == "NULL" {
        value.to_string()
    } else {
        format!("{REDACTED} ({} characters)", value.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_are_removed_and_hosts_kept() {
        assert_eq!(
            redact("reading s3://AKIA123:s3cr3t/x+y@bucket/raw/orders/ failed"),
            "reading s3://[redacted]@bucket/raw/orders/ failed",
            "a secret with a slash is removed whole"
        );
        assert_eq!(
            redact("at s3://AKIA123:s3cr3t@bucket/raw/"),
            "at s3://[redacted]@bucket/raw/"
        );
        assert_eq!(
            redact("proxy http://user:pa55@proxy.internal:3128 and https://h/x"),
            "proxy http://[redacted]@proxy.internal:3128 and https://h/x"
        );
        // an abfs container is not a secret
        assert_eq!(
            redact("abfs://data@acct.dfs.core.windows.net/wh"),
            "abfs://data@acct.dfs.core.windows.net/wh"
        );
        assert!(has_url_credentials("s3://a:b@c"));
        assert!(!has_url_credentials(
            "s3://bucket/exports/jo@example.com/x.csv"
        ));
    }

    #[test]
    fn secret_query_parameters_are_removed() {
        assert_eq!(
            redact("https://acct.blob.core.windows.net/c?sv=2022&sig=AbC%2B&se=1"),
            "https://acct.blob.core.windows.net/c?sv=2022&sig=[redacted]&se=1"
        );
        assert_eq!(
            redact("\"url\": \"https://b.s3/x?X-Amz-Signature=deadbeef\""),
            "\"url\": \"https://b.s3/x?X-Amz-Signature=[redacted]\""
        );
        assert_eq!(redact("a?b=1&keep=2"), "a?b=1&keep=2");
    }

    #[test]
    fn registered_secrets_are_removed_everywhere() {
        register_secret("very-secret-value-42");
        register_secret("abc"); // too short to register
        assert_eq!(
            redact("key very-secret-value-42 in a message about abc"),
            format!("key {REDACTED} in a message about abc")
        );
    }
}
