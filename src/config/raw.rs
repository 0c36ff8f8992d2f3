//! The TOML schema as written, with the span of every value, before any checking beyond types.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

type S<T> = Option<Spanned<T>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub daemon: Option<RawDaemon>,
    #[serde(default)]
    pub output: Vec<Spanned<RawOutput>>,
    #[serde(default)]
    pub sso_session: BTreeMap<Spanned<String>, Spanned<RawSsoSession>>,
    #[serde(default)]
    pub profile: BTreeMap<Spanned<String>, Spanned<RawProfile>>,
    pub server: Option<Spanned<RawServer>>,
    pub metrics: Option<Spanned<RawMetrics>>,
    pub imds: Option<Spanned<RawImds>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    pub refresh_before: S<String>,
    pub state_dir: S<String>,
    pub login_command: S<Vec<Spanned<String>>>,
    pub max_concurrent_fetches: S<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOutput {
    pub path: Spanned<String>,
    pub profiles: S<Vec<Spanned<String>>>,
    pub mode: S<String>,
    pub owner: S<toml::Value>,
    pub group: S<toml::Value>,
    pub format: S<String>,
    pub launch_profiles: S<Vec<Spanned<String>>>,
    pub on_change: S<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSsoSession {
    pub sso_start_url: S<String>,
    pub sso_region: S<String>,
    pub sso_registration_scopes: S<String>,
    pub endpoint_url: S<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    // SSO
    pub sso_session: S<String>,
    pub sso_account_id: S<String>,
    pub sso_role_name: S<String>,
    // the older per-profile SSO form (no sso_session)
    pub sso_start_url: S<String>,
    pub sso_region: S<String>,
    // STS
    pub source_profile: S<String>,
    pub role_arn: S<String>,
    pub role_session_name: S<String>,
    pub duration_seconds: S<i64>,
    pub external_id: S<String>,
    pub get_session_token: S<bool>,
    pub mfa_serial: S<String>,
    pub mfa_command: S<Vec<Spanned<String>>>,
    pub web_identity_token_file: S<String>,
    // credential_process
    pub credential_process: S<String>,
    // IAM Roles Anywhere (also role_arn, role_session_name, duration_seconds)
    pub trust_anchor_arn: S<String>,
    pub profile_arn: S<String>,
    pub certificate: S<String>,
    pub private_key: S<String>,
    pub intermediates: S<String>,
    // an `aws login` sign-in
    pub login_session: S<String>,
    // any source
    pub region: S<String>,
    pub endpoint_url: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: S<String>,
    pub token_file: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub listen: S<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImds {
    pub listen: S<String>,
    pub profile: S<String>,
}
