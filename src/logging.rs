//! Logging set-up for every command: text or JSON on stderr (the Windows service: a rotated
//! file, and what an administrator must see to the Event Log), the level from `--log-level`
//! or `RUST_LOG`, and the AWS SDK's internals capped at `debug` so no trace can print a
//! secret.

use crate::cli::LogFormat;

/// Targets of the AWS SDK's internals, capped at `debug` whatever the level asked for: at
/// `trace` they print request headers and bodies, which hold bearer tokens and device codes.
const SDK_TARGETS: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_runtime",
    "aws_sigv4",
    "aws_sdk_sso",
    "aws_sdk_ssooidc",
    "aws_sdk_sts",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// Installs the subscriber; `log_file` is the Windows service's log.
pub fn init(
    format: LogFormat,
    level: Option<&str>,
    log_file: Option<&std::path::Path>,
) -> Result<(), String> {
    use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = match level {
        Some(l) => EnvFilter::try_new(l).map_err(|e| format!("bad --log-level `{l}`: {e}"))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let cap = SDK_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |t, target| t.with_target(*target, LevelFilter::DEBUG),
    );
    let filter = filter.and(cap);
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let (writer, ansi) = match log_file {
        None => {
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let inner = std::io::stderr;
            (BoxMakeWriter::new(Escaping { inner, ansi }), ansi)
        }
        #[cfg(windows)]
        Some(path) => {
            let inner = std::sync::Mutex::new(crate::commands::service::open_log(path)?);
            (BoxMakeWriter::new(Escaping { inner, ansi: false }), false)
        }
        #[cfg(not(windows))]
        Some(path) => return Err(format!("no log file on this platform: {}", path.display())),
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false);
    let registry = tracing_subscriber::registry();
    // The service also reports what an administrator must see to the Event Log.
    #[cfg(windows)]
    let registry = registry.with(
        log_file
            .and_then(|_| crate::eventlog::Layer::open())
            .with_filter(Targets::new().with_target(crate::eventlog::EVENT_LOG, LevelFilter::INFO)),
    );
    match format {
        LogFormat::Text => registry.with(layer.with_filter(filter)).init(),
        LogFormat::Json => registry
            .with(layer.json().flatten_event(true).with_filter(filter))
            .init(),
    }
    Ok(())
}

/// A log writer that escapes the control characters inside each event
/// ([`crate::text::escape_log_event`]): a newline in a path or a program's message cannot
/// forge a log line. The formatter writes each event whole, with one `write_all`.
struct Escaping<M> {
    inner: M,
    ansi: bool,
}

impl<'a, M: tracing_subscriber::fmt::MakeWriter<'a>> tracing_subscriber::fmt::MakeWriter<'a>
    for Escaping<M>
{
    type Writer = Escaping<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        Escaping {
            inner: self.inner.make_writer(),
            ansi: self.ansi,
        }
    }
}

impl<W: std::io::Write> std::io::Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner
            .write_all(&crate::text::escape_log_event(buf, self.ansi))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
