//! `credential_process`: run a command that prints Version 1 credentials JSON.
//!
//! Like the AWS CLI, the command is split into words and run without a shell; only a value
//! that needs a shell (pipes, redirections, variables, globs, `~`) runs under `sh -c` (on
//! Windows every value runs under `cmd /C`, where splitting rules differ). The process gets no
//! standard input, runs in the config file's folder, and is killed after the timeout, with its
//! process group ([`crate::child`]). Its stderr goes to the log, line by line, redacted; its
//! stdout is read up to [`STDOUT_MAX`].

use super::SourceError;
use crate::credentials::{parse_rfc3339, Credentials, Secret};
use std::path::Path;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::process::Command;

/// How long a `credential_process` may run.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// Characters whose meaning only a shell gives.
const SHELL_CHARS: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '[', ']', '{', '}', '~', '!', '\n',
];

/// Whether `command` needs a shell to mean what it says.
pub fn needs_shell(command: &str) -> bool {
    if command.contains(SHELL_CHARS) {
        return true;
    }
    // `VAR=value program` is a shell assignment.
    command
        .split_whitespace()
        .next()
        .is_some_and(|w| w.contains('='))
}

/// Builds the command: words without a shell where possible, else the platform shell.
#[cfg(windows)]
fn build(command: &str) -> Result<Command, SourceError> {
    // `cmd /C` takes the rest of its command line as written: passed as a normal argument,
    // the quotes in it would be escaped with backslashes, which cmd does not understand.
    let mut c = Command::new("cmd");
    c.arg("/C").raw_arg(command);
    Ok(c)
}

#[cfg(not(windows))]
fn build(command: &str) -> Result<Command, SourceError> {
    if needs_shell(command) {
        let mut c = Command::new("sh");
        c.arg("-c").arg(command);
        return Ok(c);
    }
    let words = shlex::split(command)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| SourceError::failed("credential_process has an unterminated quote"))?;
    let mut c = Command::new(&words[0]);
    c.args(&words[1..]);
    Ok(c)
}

/// What a JSON value is, for messages that must not show the value itself.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The string field `name` of the output (`None` if missing or null); another type is an
/// error naming the field and its type, never its value (serde's own message quotes it).
fn string_field(
    out: &serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<String>, String> {
    match out.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!(
            "its output's {name} is {}, but must be a string",
            json_kind(other)
        )),
    }
}

/// Parses Version 1 output. Error messages never quote the output: it holds secrets.
pub fn parse_output(stdout: &[u8], now: OffsetDateTime) -> Result<Credentials, String> {
    let value: serde_json::Value = serde_json::from_slice(stdout).map_err(|e| {
        // A syntax error's text names a position, never the input.
        format!("its output is not credential_process JSON: {e}")
    })?;
    let serde_json::Value::Object(out) = value else {
        return Err(format!(
            "its output is not credential_process JSON: it is {}, not an object",
            json_kind(&value)
        ));
    };
    match out.get("Version") {
        Some(v) if *v == serde_json::json!(1) => {}
        Some(serde_json::Value::Number(n)) => {
            return Err(format!(
                "its output has Version {n}, but only Version 1 is supported"
            ))
        }
        Some(other) => {
            return Err(format!(
                "its output's Version is {}, but only Version 1 (a number) is supported",
                json_kind(other)
            ))
        }
        None => return Err("its output has no Version (only Version 1 is supported)".into()),
    }
    let akid = string_field(&out, "AccessKeyId")?
        .filter(|s| !s.is_empty())
        .ok_or("its output has no AccessKeyId")?;
    let secret = string_field(&out, "SecretAccessKey")?
        .filter(|s| !s.is_empty())
        .ok_or("its output has no SecretAccessKey")?;
    let session_token = string_field(&out, "SessionToken")?;
    let expiration = match string_field(&out, "Expiration")? {
        None => None,
        Some(e) => {
            let t = parse_rfc3339(&e).map_err(|_| {
                "its output's Expiration is not an RFC 3339 time (like 2026-01-02T03:04:05Z)"
                    .to_string()
            })?;
            if t <= now {
                return Err(format!(
                    "its Expiration {} is in the past: the credentials are already expired",
                    crate::credentials::format_utc(t)
                ));
            }
            Some(t)
        }
    };
    let account_id = match string_field(&out, "AccountId")? {
        Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => Some(a),
        Some(_) => return Err("its output's AccountId is not a 12-digit account id".into()),
        None => None,
    };
    Ok(Credentials {
        access_key_id: akid,
        secret_access_key: Secret::new(secret),
        session_token: session_token.filter(|s| !s.is_empty()).map(Secret::new),
        expiration,
        account_id,
    })
}

/// The most a `credential_process` may print on stdout (its output is a small JSON document).
pub const STDOUT_MAX: usize = 1024 * 1024;

/// What every loop message contains.
pub const LOOP_MARKER: &str = "credential_process loop";

/// Ends the failure message of a source that printed on stderr: what it printed is logged,
/// never put in the message.
pub const STDERR_HINT: &str = " (its stderr is in the log)";

/// Why a source that calls `awscredd credential-process` for its own profile is refused.
pub fn loop_message(profile: &str) -> String {
    format!(
        "{LOOP_MARKER}: profile `{profile}` is refreshed by running `awscredd credential-process` for `{profile}`, which needs `{profile}` refreshed first; give `{profile}` a source that does not call awscredd for itself"
    )
}

/// The program a command line runs, for messages: never its arguments, which may hold secrets.
pub fn program_of(command: &str) -> String {
    let first = shlex::split(command)
        .and_then(|w| w.into_iter().next())
        .or_else(|| command.split_whitespace().next().map(str::to_string))
        .unwrap_or_default();
    let first: String = first.chars().take(200).collect();
    if needs_shell(command) {
        format!("{first} ...")
    } else {
        first
    }
}

/// Runs `command` for `profile` in `cwd` and parses what it prints. Its stderr is logged with
/// every value of the credentials it printed (and anything shaped like a secret) redacted;
/// errors name the program only, never its arguments or its stderr.
pub async fn fetch(
    profile: &str,
    command: &str,
    cwd: &Path,
    timeout: Duration,
) -> Result<Credentials, SourceError> {
    let program = program_of(command);
    let fail = |m: String| SourceError::failed(format!("credential_process `{program}`: {m}"));
    if crate::child::running_for().iter().any(|p| p == profile) {
        return Err(fail(loop_message(profile)));
    }
    let mut cmd = build(command)?;
    cmd.current_dir(cwd);
    let limits = crate::child::Limits {
        timeout,
        stdout_max: STDOUT_MAX,
        after_exit: crate::child::AfterExit::KillGroup,
    };
    let finished = match crate::child::run(cmd, Some(profile), limits).await {
        Ok(f) => f,
        Err(e @ crate::child::RunError::TimedOut(_)) => {
            return Err(SourceError::transient(format!(
                "credential_process `{program}` {e}"
            )))
        }
        Err(e) => return Err(fail(e.to_string())),
    };
    let parsed = if finished.status.success() {
        Some(parse_output(&finished.stdout, crate::clock::now()))
    } else {
        None
    };
    let mut secrets: Vec<&str> = Vec::new();
    if let Some(Ok(c)) = &parsed {
        secrets.push(c.secret_access_key.expose());
        if let Some(t) = &c.session_token {
            secrets.push(t.expose());
        }
    }
    if let Some(note) = finished.stderr_cut_note() {
        tracing::info!(profile, "credential_process stderr: {note}");
    }
    for line in &finished.stderr_lines {
        tracing::info!(
            profile,
            "credential_process stderr: {}",
            crate::child::redact(line, &secrets)
        );
    }
    match parsed {
        Some(result) => result.map_err(fail),
        None => {
            let code = finished
                .status
                .code()
                .map_or_else(|| "a signal".to_string(), |c| format!("status {c}"));
            // Our own loop message, from an `awscredd credential-process` it ran, is no secret.
            if finished
                .stderr_lines
                .iter()
                .any(|l| l.contains(LOOP_MARKER))
            {
                return Err(fail(format!(
                    "exited with {code}: {}",
                    loop_message(profile)
                )));
            }
            let hint = if finished.stderr_lines.is_empty() {
                ""
            } else {
                STDERR_HINT
            };
            Err(fail(format!("exited with {code}{hint}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

    #[test]
    fn shell_only_when_needed() {
        assert!(!needs_shell("/usr/bin/corp-sso --json"));
        assert!(!needs_shell("'/opt/my tool/x' --profile \"a b\""));
        assert!(needs_shell("corp-sso | jq ."));
        assert!(needs_shell("corp-sso > /tmp/x"));
        assert!(needs_shell("cat $HOME/x"));
        assert!(needs_shell("~/bin/x"));
        assert!(needs_shell("FOO=1 x"));
    }

    #[test]
    fn parses_version_1() {
        let c = parse_output(
            br#"{"Version":1,"AccessKeyId":"AKIA","SecretAccessKey":"s","SessionToken":"t","Expiration":"2026-01-01T01:00:00Z"}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(c.access_key_id, "AKIA");
        assert_eq!(c.expiration, Some(datetime!(2026-01-01 01:00 UTC)));
        let c = parse_output(
            br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s"}"#,
            NOW,
        )
        .unwrap();
        assert!(c.session_token.is_none() && c.expiration.is_none());
        assert!(c.account_id.is_none());
        let c = parse_output(
            br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s","AccountId":"123456789012"}"#,
            NOW,
        )
        .unwrap();
        assert_eq!(c.account_id.as_deref(), Some("123456789012"));
    }

    #[test]
    fn bad_output_is_explained_without_secrets() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json SECRETVALUE", "not credential_process JSON"),
            (br#"{"Version":2,"AccessKeyId":"A","SecretAccessKey":"SECRETVALUE"}"#, "Version 2"),
            (br#"{"Version":"1","AccessKeyId":"A","SecretAccessKey":"SECRETVALUE"}"#, "only Version 1"),
            (br#"{"AccessKeyId":"A","SecretAccessKey":"SECRETVALUE"}"#, "Version"),
            (br#"{"Version":1,"SecretAccessKey":"SECRETVALUE"}"#, "no AccessKeyId"),
            (br#"{"Version":1,"AccessKeyId":"A"}"#, "no SecretAccessKey"),
            (
                br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"SECRETVALUE","Expiration":"2025-01-01T00:00:00Z"}"#,
                "in the past",
            ),
            (
                br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"SECRETVALUE","Expiration":"soon"}"#,
                "RFC 3339",
            ),
            (
                br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":12345678}"#,
                "SecretAccessKey is a number, but must be a string",
            ),
            (
                br#"{"Version":1,"AccessKeyId":["SECRETVALUE"],"SecretAccessKey":"s"}"#,
                "AccessKeyId is an array",
            ),
            (
                br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s","SessionToken":true}"#,
                "SessionToken is a boolean",
            ),
            (
                br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s","Expiration":7}"#,
                "Expiration is a number",
            ),
            (
                br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s","AccountId":"12345"}"#,
                "AccountId is not a 12-digit account id",
            ),
            (
                br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"s","AccountId":123456789012}"#,
                "AccountId is a number",
            ),
            (br#"["SECRETVALUE"]"#, "not an object"),
            (br#"{"Version":"SECRETVALUE"}"#, "Version is a string"),
        ];
        for (out, want) in cases {
            let e = parse_output(out, NOW).unwrap_err();
            assert!(e.contains(want), "{e} should contain {want}");
            assert!(!e.contains("SECRETVALUE") && !e.contains("12345678"), "{e}");
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn runs_without_shell_kills_on_timeout_and_reports_exit() {
        let dir = std::env::temp_dir();
        let ok = fetch(
            "p",
            r#"printf '{"Version":1,"AccessKeyId":"A","SecretAccessKey":"S"}'"#,
            &dir,
            TIMEOUT,
        )
        .await
        .unwrap();
        assert_eq!(ok.access_key_id, "A");

        let started = std::time::Instant::now();
        let slow = fetch("p", "sleep 30", &dir, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(slow.message.contains("killed"), "{slow}");
        assert!(started.elapsed() < Duration::from_secs(20));

        let bad = fetch("p", "sh -c 'echo boom >&2; exit 3'", &dir, TIMEOUT)
            .await
            .unwrap_err();
        assert!(
            bad.message.contains("status 3") && !bad.message.contains("boom"),
            "{bad}"
        );

        let missing = fetch("p", "/nonexistent/tool", &dir, TIMEOUT)
            .await
            .unwrap_err();
        assert!(missing.message.contains("cannot start"), "{missing}");
    }
}
