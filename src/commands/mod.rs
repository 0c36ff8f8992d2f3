//! One module per subcommand, each a small `exec` over library calls. Exit statuses are
//! decided here and turned into process exit codes by `main`.

pub mod check;
pub mod credential_process;
pub mod login;
pub mod once;
pub mod run;
#[cfg(windows)]
pub mod service;
pub mod status;

/// Exit statuses shared by the commands (SPEC.md).
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// One or more profiles failed (the others were still written).
    pub const FAILED: u8 = 1;
    /// Usage or config error.
    pub const USAGE: u8 = 2;
}
