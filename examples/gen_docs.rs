//! Generates the man pages and the shell completions from the clap definition in `src/cli.rs`,
//! so they never drift from the binary's own `--help`. `packaging/rpm/build.sh` runs it.
//!
//! `cargo run --example gen_docs -- OUT_DIR` writes:
//! - `OUT_DIR/man/awscredd.1` (the command, its global options, its subcommands, and the
//!   contract that `--help` does not say: exit statuses, signals, files, environment) and
//!   `OUT_DIR/man/awscredd-SUBCOMMAND.1` for each subcommand;
//! - `OUT_DIR/man/awscredd.toml.5`, the config file format, kept by hand beside
//!   `docs/configuration.md` (`docs/awscredd.toml.5`);
//! - `OUT_DIR/completions/awscredd.bash`, `_awscredd` (zsh) and `awscredd.fish`.
#![allow(clippy::disallowed_methods)] // tests and tools read the clock and environment directly

use awscredd::cli::Cli;
use clap::CommandFactory;
use clap_complete::Shell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The config file's man page, `awscredd.toml(5)`.
const CONFIG_PAGE: &str = include_str!("../docs/awscredd.toml.5");

/// What the man page says beyond `--help`, in roff (SPEC.md's contract, in short).
const MORE: &str = r#".SH "EXIT STATUS"
.TP
\fBrun\fR
0 after SIGTERM or SIGINT; 78 (EX_CONFIG) for a bad config at start\-up, so a service manager
does not restart it in a loop.
.TP
\fBonce\fR
0 every profile written; 1 one or more profiles failed (the others are still written); 2 usage
or config error.
.TP
\fBlogin\fR
0 signed in; 1 failed, denied or timed out; 2 unknown session or config error.
.TP
\fBstatus\fR
0 every profile ok; 1 otherwise.
.TP
\fBcheck\fR
0 valid; 2 invalid, with FILE:LINE:COL: message.
.TP
\fBcredential\-process\fR
0; non\-zero with a one\-line reason on stderr and nothing on stdout.
.SH SIGNALS
\fBrun\fR stops cleanly within 2 seconds on SIGTERM and SIGINT (files are only ever replaced
whole), re\-reads the config on SIGHUP (an invalid new config is logged and the old one kept),
and refreshes every profile at once on SIGUSR1. Under systemd (Type=notify) it sends READY=1
once the first pass is written, and WATCHDOG=1 when the unit sets WatchdogSec=.
.SH FILES
.TP
\fI/etc/awscredd/config.toml\fR
The system service's config; a user's is \fI~/.config/awscredd/config.toml\fR (or under
$XDG_CONFIG_HOME). Annotated example: \fI/usr/share/doc/awscredd/example.toml\fR.
.TP
\fI~/.aws/credentials\fR
The default output; every [[output]] is written atomically under a lock on \fI.NAME.lock\fR
beside it.
.TP
\fI~/.aws/sso/cache/\fR
The SSO token cache shared with the AWS CLI v2 and the SDKs.
.TP
\fIstate_dir/state.json\fR
Per profile expiry, last refresh and last error; never a secret. The system service keeps it
in \fI/var/lib/awscredd\fR.
.SH ENVIRONMENT
.TP
\fBAWSCREDD_CONFIG\fR
The config file, as \-\-config.
.TP
\fBRUST_LOG\fR
The log filter when \-\-log\-level is not given.
.TP
\fBAWS_SHARED_CREDENTIALS_FILE\fR
The default output, and where unmanaged source profiles are read.
.TP
\fBAWS_ENDPOINT_URL\fR, \fBAWS_ENDPOINT_URL_STS\fR, \fBAWS_ENDPOINT_URL_SSO\fR, \fBAWS_ENDPOINT_URL_SSO_OIDC\fR
Endpoint overrides, as in the AWS SDKs.
.TP
\fBSSL_CERT_FILE\fR, \fBSSL_CERT_DIR\fR
Where the TLS root certificates are read (default: the system's bundle).
.SH "SEE ALSO"
awscredd\-run(1), awscredd\-once(1), awscredd\-login(1), awscredd\-status(1),
awscredd\-check(1), awscredd\-credential\-process(1), awscredd.toml(5), systemctl(1),
journalctl(1).
The README and docs/ in \fI/usr/share/doc/awscredd/\fR.
"#;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out] = args.as_slice() else {
        eprintln!("usage: gen_docs OUT_DIR");
        return ExitCode::from(2);
    };
    match generate(Path::new(out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen_docs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(out: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    let mut written = Vec::new();

    // awscredd.1: clap's sections, then ours, then the version.
    let page = clap_mangen::Man::new(cmd.clone());
    let path = man.join(page.get_filename());
    let mut f = std::fs::File::create(&path)?;
    page.render_title(&mut f)?;
    page.render_name_section(&mut f)?;
    page.render_synopsis_section(&mut f)?;
    page.render_description_section(&mut f)?;
    page.render_options_section(&mut f)?;
    page.render_subcommands_section(&mut f)?;
    f.write_all(MORE.as_bytes())?;
    page.render_version_section(&mut f)?;
    f.sync_all()?;
    written.push(path);

    // awscredd-SUBCOMMAND.1: each subcommand with its own options.
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("awscredd-{}", sub.get_name());
        let usage = format!("awscredd {}", sub.get_name());
        let sub = sub.clone().display_name(name).bin_name(usage);
        written.push(clap_mangen::Man::new(sub).generate_to(&man)?);
    }

    let path = man.join("awscredd.toml.5");
    std::fs::write(&path, CONFIG_PAGE)?;
    written.push(path);

    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        written.push(clap_complete::generate_to(
            shell,
            &mut cmd,
            "awscredd",
            &completions,
        )?);
    }
    Ok(written)
}
