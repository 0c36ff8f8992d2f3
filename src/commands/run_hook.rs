//! `awscredd run-hook` (hidden): runs one `on_change` hook for `credential-process`, which
//! answers its SDK without waiting for its hooks, so that each still has the 60 s limit and
//! is stopped with its group when this supervisor is stopped (see [`crate::hooks`]).

use std::path::Path;

/// Runs the hook to its end, its limit, or a stop signal (which kills its process group).
pub async fn exec(command: &[String], output: &Path, profiles: &str) -> u8 {
    let profiles: Vec<String> = profiles
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    tokio::select! {
        _ = crate::hooks::supervise(command, output, &profiles) => super::exit::OK,
        (_, code) = super::stop_signal() => code,
    }
}
