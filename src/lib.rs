//! awscredd: keeps AWS credentials files fresh for programs that cannot refresh them.
//!
//! # Layout
//!
//! The rooms, each with one job; the arrows run one way (`python3 tools/house.py` checks that
//! no module or file imports one that imports it back, that no function is over 80 lines, and
//! lists the few process-wide statics with their reasons). The flow of one refresh pass reads
//! top to bottom:
//!
//! - [`config`]: the TOML config, parsed with spans and validated as a whole, so every error
//!   says `FILE:LINE:COL`. Each source kind is one entry of `config::validate::source_table`
//!   (its keys, the "which source is this profile" test, its checks); `config::import` turns a
//!   `~/.aws/config` into it (`awscredd init`).
//! - [`sources`]: where credentials come from (IAM Identity Center, STS, `credential_process`,
//!   static keys), each behind the `Fetcher` trait (`sources::fetch`, which also dispatches a
//!   profile to its source); `sources::sso::sign_ins` owns the daemon's sign-ins in the
//!   background. [`child`] runs every program awscredd starts (and reaps orphans as PID 1).
//! - [`refresh`]: one pass of what the daemon schedules: which profiles are due, fetching
//!   them concurrently in chain order (with per-service limits), and handing the results to
//!   the store; [`hooks`] runs `on_change` after a file changed.
//! - [`store`]: the output files and awscredd's own state (`store::state`, no secrets),
//!   written atomically under a lock. [`formats`] is one codec per output format (INI, env,
//!   JSON, `launchSettings.json`); [`profile_file`] is the pure INI core (parse, edit in place,
//!   the SDKs' precedence); [`files`] is the floor under all of them: bounded reads, the
//!   no-follow walk, ownership, temporary names, atomic replace, lock files, the Windows
//!   variants — it uses nothing of awscredd's but the [`clock`].
//! - [`status`]: what state each profile and session is in, the I/O that observes it apart
//!   from the pure function that decides it; `status`, the metrics and the health endpoints
//!   all read it.
//! - [`daemon`]: the scheduler that runs passes when profiles become due (`daemon::schedule`,
//!   a plain struct: backoff, what is due next, forced passes, reloads), and the systemd
//!   protocol (`daemon::systemd`: readiness, watchdog, `STATUS=`).
//! - [`server`]: the optional container-credentials endpoint over the files the daemon keeps,
//!   and the `[metrics]` listener, on one HTTP serving code; [`metrics`] is what they tell
//!   operators (Prometheus metrics, `/healthz`, `/readyz`).
//! - [`commands`]: one small module per subcommand over the above; [`cli`] is the command
//!   line that `main` parses into them; [`logging`] sets up the log; [`eventlog`] is what the
//!   Windows service also reports to the Event Log; [`paths`] finds homes and config files as
//!   the SDKs do; [`text`] shows outside text (paths, names, programs' errors) with its
//!   control characters escaped, in the log and on the terminal.
//!
//! [`credentials::Credentials`] carries secrets in types that never print them.

// What is not reachable from outside the crate says so (`pub(crate)`): what `pub` leaves is the
// API the binary, the tests, the benches and the fuzz targets use.
#![warn(unreachable_pub)]

pub(crate) mod child;
pub mod cli;
pub(crate) mod clock;
pub mod commands;
pub mod config;
pub mod credentials;
pub(crate) mod daemon;
pub(crate) mod eventlog;
pub mod files;
pub mod formats;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod hooks;
pub mod logging;
pub(crate) mod metrics;
pub mod paths;
pub mod profile_file;
pub mod refresh;
pub mod server;
pub mod sources;
pub mod status;
pub mod store;
pub mod text;
