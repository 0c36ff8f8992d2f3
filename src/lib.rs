//! awscredd: keeps AWS credentials files fresh for programs that cannot refresh them.
//!
//! # Layout
//!
//! The flow of one refresh pass reads top to bottom:
//!
//! - [`config`]: the TOML config, parsed with spans and validated as a whole, so every error
//!   says `FILE:LINE:COL`.
//! - [`sources`]: where credentials come from (IAM Identity Center, STS, `credential_process`,
//!   static keys), each behind one async call; [`child`] runs every program awscredd starts.
//! - [`refresh`]: one pass of what the daemon schedules: which profiles are due, fetching
//!   them concurrently in chain order, and handing the results to the store.
//! - [`store`]: the credentials files, edited in place ([`profile_file`] is the pure core),
//!   written atomically under a lock; [`state`] keeps per-profile status (no secrets).
//! - [`daemon`]: the scheduler that runs passes when profiles become due, with backoff,
//!   reload and refresh-now, and systemd readiness.
//! - [`server`]: the optional container-credentials endpoint over the files the daemon keeps,
//!   and the `[metrics]` listener; [`metrics`] is what they tell operators (Prometheus
//!   metrics, `/healthz`, `/readyz`), updated by the daemon after each pass.
//! - [`commands`]: one small module per subcommand over the above; [`cli`] is the command
//!   line that `main` parses into them; [`eventlog`] is what the Windows service also reports
//!   to the Event Log.
//!
//! [`credentials::Credentials`] carries secrets in types that never print them.

pub mod child;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod daemon;
pub mod eventlog;
pub mod files;
pub mod formats;
#[doc(hidden)]
pub mod fuzzing;
pub mod hooks;
pub mod logging;
pub mod metrics;
pub mod paths;
pub mod profile_file;
pub mod refresh;
pub mod server;
pub mod sources;
pub mod status;
pub mod store;
