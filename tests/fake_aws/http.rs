//! The fake's HTTP/1.1: requests read off the wire, answers written back.

use super::*;

pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: String,
    pub(super) error_type: Option<String>,
    pub(super) content_type: &'static str,
}

pub(super) fn json(status: u16, body: serde_json::Value) -> Answer {
    Answer {
        status,
        body: body.to_string(),
        error_type: None,
        content_type: "application/json",
    }
}

/// One HTTP/1.1 request as read off the wire.
pub(super) struct HttpRequest {
    pub(super) method: String,
    pub(super) url: String,
    /// Lower-case name, value.
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: String,
}

/// Reads requests off one connection and answers each, until the client closes it.
pub(super) fn serve_connection(stream: TcpStream, state: &Mutex<State>, base: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let _ = stream.set_nodelay(true);
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let mut writer = writer;
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let (status, headers, body) = handle(&request, state, base);
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        for (k, v) in &headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        // One write per answer: a head and a body in two segments would wait on the
        // client's delayed ACK (Nagle), 40 ms a request.
        head.push_str(&body);
        if writer.write_all(head.as_bytes()).is_err() || writer.flush().is_err() {
            return;
        }
    }
}

pub(super) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Reads one request (request line, headers, a `Content-Length` body); `None` at the end of
/// the connection or on anything unreadable.
pub(super) fn read_request(reader: &mut BufReader<TcpStream>) -> Option<HttpRequest> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let url = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some(HttpRequest {
        method,
        url,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

pub(super) fn answer_headers(answer: &Answer) -> Vec<(String, String)> {
    let mut headers = vec![
        ("Content-Type".to_string(), answer.content_type.to_string()),
        (
            "x-amzn-RequestId".to_string(),
            "00000000-fake-0000-0000-000000000000".to_string(),
        ),
    ];
    if let Some(t) = &answer.error_type {
        headers.push(("x-amzn-ErrorType".to_string(), t.clone()));
    }
    headers
}
