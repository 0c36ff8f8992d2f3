//! The `[server]` routes behind hyper's HTTP/1.1 parser, as `run` serves them (its limits,
//! the token check, `/healthz`, `/readyz`, `/profiles/NAME`) over an in-memory connection:
//! whatever a client sends, the connection ends (never a panic or a hang), a whole request
//! head gets an answer, and no answer holds the secret unless the request held the token.
#![no_main]

use awscredd::fuzzing::Server;
use awscredd_fuzz::Fixture;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

static SERVER: OnceLock<(Fixture, Server)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let (_, server) = SERVER.get_or_init(|| {
        let fixture = Fixture::new();
        let server = Server::new(fixture.config.clone(), TOKEN).expect("a runtime");
        (fixture, server)
    });
    let answer = server
        .answer(data)
        .unwrap_or_else(|e| panic!("the connection did not end: {e}"));
    let holds_token = data.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes());
    let holds_secret = answer.windows(6).any(|w| w == b"s3cr3t");
    assert!(!holds_secret || holds_token, "the secret without the token");
    // A whole request head gets an answer (a 400 for a malformed one). hyper skips empty
    // lines before a request, and closes without an answer at the HTTP/2 preface, and at a
    // malformed request followed by one (its own choices, not ours).
    let rest = match data.iter().position(|b| !matches!(b, b'\r' | b'\n')) {
        Some(i) => &data[i..],
        None => &[][..],
    };
    let whole = rest.windows(4).any(|w| w == b"\r\n\r\n");
    let h2 = rest.windows(14).any(|w| w == b"PRI * HTTP/2.0");
    if whole && !h2 {
        assert!(
            answer.starts_with(b"HTTP/1."),
            "no answer to {data:?}: {answer:?}"
        );
    }
});
