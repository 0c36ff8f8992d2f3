//! The config loader and validator: any text gives a config or a report, never a panic; the
//! report renders (every span inside the text, on a character boundary); a config accepted is
//! whole (every profile's chain and outputs can be walked), and its report has no error.
#![no_main]

use awscredd::config::parse_str;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary folder"));
    let home = dir.path().to_string_lossy().into_owned();
    let env = move |k: &str| (k == "HOME").then(|| home.clone());
    let path = dir.path().join("awscredd.toml");
    let (config, report) = parse_str(text, &path, &env);
    let lines = report.lines();
    for d in &report.diagnostics {
        if let Some(span) = &d.span {
            assert!(
                span.start <= span.end && span.end <= text.len(),
                "span {span:?}"
            );
            assert!(text.is_char_boundary(span.start) && text.is_char_boundary(span.end));
        }
    }
    if let Some(config) = config {
        assert!(!report.has_errors(), "a config with errors: {lines:?}");
        for name in config.profiles.keys() {
            assert!(config.chain(name).count() >= 1);
            let _ = config.outputs_of(name).count();
            let _ = config.root_sso_session(name);
        }
    } else {
        assert!(!lines.is_empty(), "refused without a word");
    }
});
