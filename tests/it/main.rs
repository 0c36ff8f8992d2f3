//! Integration tests: the real `awscredd` binary, driven the way users drive it, with a
//! private HOME so no test ever touches the machine's `~/.aws`.
#![allow(clippy::disallowed_methods)] // tests and tools read the clock and environment directly

mod util;

#[path = "../fake_aws/mod.rs"]
mod fake_aws;

mod cli;
mod concurrency;
mod crash;
mod credential_process;
mod daemon;
mod docs;
mod files;
mod formats;
mod hooks;
mod hostile;
mod imds;
mod init;
mod interop;
mod login;
mod login_session;
mod metrics;
mod newcomer;
mod roles_anywhere;
mod server;
mod server_flood;
mod sso;
mod sso_daemon;
mod sso_interop;
mod sso_legacy;
mod status;
mod sts;
