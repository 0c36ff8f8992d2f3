"""The machinery shared by the fake AWS services in this folder: an HTTP(S) server on
127.0.0.1, scripted misbehaviour (delays, error statuses, a 2 MB body, a truncated body, a
body that is not JSON), a record of calls, the `/_fake/...` control endpoints, and the
command-line runner that prints the URL and a ready line.

A service subclasses `FakeService` and implements `handle_service` for its own paths.
"""

import argparse
import datetime
import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pki

#: Largest request body a fake reads.
MAX_REQUEST_BODY = 1024 * 1024
#: Size of the oversized answer (`huge`).
HUGE_BODY_BYTES = 2 * 1024 * 1024


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso_z(when):
    """`2026-01-02T03:04:05Z`, the form AWS uses in these JSON answers."""
    return when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Request:
    """One HTTP request as a fake sees it."""

    def __init__(self, method, target, headers, body, scheme):
        self.method = method
        parts = urllib.parse.urlsplit(target)
        self.path = parts.path
        self.raw_query = parts.query
        self.query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        self.headers = headers  # email.message.Message: case-insensitive get/get_all
        self.body = body
        self.scheme = scheme

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def json(self):
        """The body as a JSON object, or None when it is not one."""
        try:
            value = json.loads(self.body.decode("utf-8")) if self.body else {}
        except (UnicodeDecodeError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def url(self):
        """The URL the client called (scheme, its Host header, path; no query)."""
        return f"{self.scheme}://{self.header('Host', '')}{self.path}"


class Response:
    def __init__(self, status, body=b"", headers=None, content_type="application/json",
                 truncate=False):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        if content_type and body:
            self.headers.setdefault("Content-Type", content_type)
        self.truncate = truncate


def json_response(status, obj, headers=None):
    return Response(status, obj, headers)


class FaultPlan:
    """What the next service calls do instead of (or before) answering normally.

    `delay_ms` delays every call; `queue` holds one action per coming call, each a dict with
    any of `status` (answer this error status, with the service's error body; `type` names the
    exception, else the usual one for the status; `error` is Sign-In's OAuth error code), `body`
    (`huge`, `truncated`, `not_json`: a success status with such a body) and `delay_ms`.
    """

    ACTION_KEYS = {"status", "body", "delay_ms", "type", "error", "message"}
    BODIES = {"huge", "truncated", "not_json"}

    def __init__(self):
        self._lock = threading.Lock()
        self.delay_ms = 0
        self._queue = []

    def script(self, spec):
        """Apply a JSON spec: {"delay_ms": N, "next": [{..., "count": K}, ...], "clear": bool}."""
        if not isinstance(spec, dict):
            raise ValueError("fault spec must be a JSON object")
        unknown = set(spec) - {"delay_ms", "next", "clear"}
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        actions = []
        for item in spec.get("next", []):
            if not isinstance(item, dict):
                raise ValueError("each entry of `next` must be an object")
            count = int(item.get("count", 1))
            action = {k: v for k, v in item.items() if k != "count"}
            bad = set(action) - self.ACTION_KEYS
            if bad:
                raise ValueError(f"unknown action keys: {sorted(bad)}")
            if "body" in action and action["body"] not in self.BODIES:
                raise ValueError(f"`body` must be one of {sorted(self.BODIES)}")
            if "status" in action:
                action["status"] = int(action["status"])
            actions.extend([action] * count)
        with self._lock:
            if spec.get("clear"):
                self._queue.clear()
            if "delay_ms" in spec:
                self.delay_ms = int(spec["delay_ms"])
            self._queue.extend(actions)

    def take(self):
        """(delay in ms, the action for this call or None)."""
        with self._lock:
            action = self._queue.pop(0) if self._queue else None
            delay = self.delay_ms
        if action and "delay_ms" in action:
            delay = int(action["delay_ms"])
        return delay, action

    def pending(self):
        with self._lock:
            return list(self._queue)

    def reset(self):
        with self._lock:
            self.delay_ms = 0
            self._queue.clear()


class CallLog:
    """Every service call: what the fake saw and what it answered. Optionally appended to a
    JSON-lines file, so a test in another language can read it."""

    def __init__(self, path=None):
        self._lock = threading.Lock()
        self._calls = []
        self._path = path

    def add(self, entry):
        with self._lock:
            entry = dict(entry, seq=len(self._calls) + 1)
            self._calls.append(entry)
            if self._path:
                with open(self._path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(entry) + "\n")
                    f.flush()

    def snapshot(self):
        with self._lock:
            return [dict(c) for c in self._calls]

    def count(self):
        with self._lock:
            return len(self._calls)

    def reset(self):
        with self._lock:
            self._calls.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, handler, fake, tls_context):
        self.fake = fake
        self.tls_context = tls_context
        super().__init__(address, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.tls_context is not None:
            # The handshake runs in the handler's thread, on its first read.
            sock = self.tls_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, addr

    def handle_error(self, request, client_address):
        # A client that hangs up or fails the TLS handshake is not the fake's error.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError, OSError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 15
    server_version = "awscredd-fake"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet: tests read the call log instead
        if os.environ.get("FAKE_AWS_VERBOSE"):
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))

    def _dispatch(self):
        fake = self.server.fake
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self._send(fake.error_response(400, "ValidationException", "chunked bodies are not accepted"))
            return
        try:
            length = int(length) if length is not None else 0
        except ValueError:
            length = -1
        if length < 0 or length > MAX_REQUEST_BODY:
            self.close_connection = True
            self._send(fake.error_response(413 if length > 0 else 400, "ValidationException",
                                           "bad or too large Content-Length"))
            return
        body = self.rfile.read(length) if length else b""
        scheme = "https" if self.server.tls_context is not None else "http"
        request = Request(self.command, self.path, self.headers, body, scheme)
        self._send(fake.dispatch(request))

    do_GET = do_POST = do_PUT = do_DELETE = _dispatch

    def _send(self, response):
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if response.truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if response.truncate:
            self.wfile.write(response.body[: len(response.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(response.body)


class FakeService:
    """Base of a fake service. Subclasses set `name`, `service_paths` and implement
    `handle_service(request) -> Response` and `error_response(status, code, message)`."""

    name = "fake"
    #: (method, path) pairs that are the service's own operations (faults apply to them).
    service_paths = ()

    def __init__(self, host="127.0.0.1", port=0, tls_dir=None, record_path=None):
        self.host = host
        self.port = port
        self.tls_dir = tls_dir
        self.tls_files = None
        self.faults = FaultPlan()
        self.calls = CallLog(record_path)
        self._server = None
        self._thread = None
        self._marks = threading.local()

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self):
        context = None
        if self.tls_dir is not None:
            self.tls_files = pki.make_tls_files(self.tls_dir)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(self.tls_files["cert"], self.tls_files["key"])
        self._server = _Server((self.host, self.port), _Handler, self, context)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"{self.name}-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        scheme = "https" if self.tls_dir is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def ca_bundle(self):
        return self.tls_files["ca"] if self.tls_files else None

    # ---- dispatch ------------------------------------------------------------------------
    def dispatch(self, request):
        if request.path.startswith("/_fake/"):
            try:
                return self.control(request)
            except ValueError as e:
                return json_response(400, {"message": str(e)})
        if (request.method, request.path) in self.service_paths:
            delay, action = self.faults.take()
            if delay:
                time.sleep(delay / 1000.0)
            if action is not None:
                scripted = self._scripted(request, action)
                if scripted is not None:
                    return scripted
            return self.handle_service(request)
        return self.handle_other(request)

    def _scripted(self, request, action):
        if "status" in action:
            status = action["status"]
            code = action.get("type") or self.default_error_code(status)
            message = action.get("message") or f"scripted {status} from the fake"
            self.record(request, status=status, scripted=True, error_type=code, error=action.get("error"),
                        **self.describe(request))
            return self.error_response(status, code, message, action.get("error"))
        body = action.get("body")
        if body == "huge":
            self.record(request, status=self.success_status, scripted=True, body="huge")
            padding = "A" * HUGE_BODY_BYTES
            return Response(self.success_status, '{"padding": "' + padding + '"}')
        if body == "not_json":
            self.record(request, status=self.success_status, scripted=True, body="not_json")
            return Response(self.success_status,
                            "<html><body>Service Unavailable</body></html>",
                            content_type="text/html")
        if body == "truncated":
            self._marks.extra = {"scripted": True, "body": "truncated"}
            try:
                response = self.handle_service(request)
            finally:
                self._marks.extra = None
            response.truncate = True
            return response
        return None

    success_status = 200

    def default_error_code(self, status):
        return {
            400: "ValidationException",
            403: "AccessDeniedException",
            404: "ResourceNotFoundException",
            429: "ThrottlingException",
            500: "InternalServerException",
            503: "ServiceUnavailableException",
        }.get(status, "InternalServerException")

    def record(self, request, **fields):
        entry = {"time": time.time(), "method": request.method, "path": request.path}
        entry.update(fields)
        entry.update(getattr(self._marks, "extra", None) or {})
        self.calls.add(entry)

    def describe(self, request):
        """A few fields of a request worth recording even when it is not processed."""
        return {}

    def handle_service(self, request):
        raise NotImplementedError

    def handle_other(self, request):
        return self.error_response(404, "UnknownOperationException",
                                   f"no operation at {request.method} {request.path}")

    def error_response(self, status, code, message, error=None):
        return json_response(status, {"message": message}, {"x-amzn-ErrorType": code})

    # ---- control endpoints ---------------------------------------------------------------
    def control(self, request):
        if request.path == "/_fake/calls" and request.method == "GET":
            calls = self.calls.snapshot()
            return json_response(200, {"count": len(calls), "calls": calls})
        if request.path == "/_fake/faults" and request.method == "POST":
            spec = request.json()
            if spec is None:
                raise ValueError("the body must be a JSON object")
            self.faults.script(spec)
            return json_response(200, {"pending": self.faults.pending(),
                                       "delay_ms": self.faults.delay_ms})
        if request.path == "/_fake/reset" and request.method == "POST":
            self.faults.reset()
            self.calls.reset()
            return json_response(200, {})
        extra = self.control_extra(request)
        if extra is not None:
            return extra
        return json_response(404, {"message": f"no control endpoint {request.method} {request.path}"})

    def control_extra(self, request):
        return None


# ---- command line ------------------------------------------------------------------------
def add_common_args(parser):
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    parser.add_argument("--record", help="append every call as a JSON line to this file")
    parser.add_argument("--delay-ms", type=int, default=0, help="answer every call after N ms")
    parser.add_argument("--fail", action="append", default=[], metavar="STATUS[:COUNT]",
                        help="answer the next COUNT (default 1) calls with STATUS; repeatable, in order")
    parser.add_argument("--huge-body", type=int, default=0, metavar="COUNT",
                        help="answer the next COUNT calls with a 2 MB body")
    parser.add_argument("--truncate", type=int, default=0, metavar="COUNT",
                        help="answer the next COUNT calls with a truncated body")
    parser.add_argument("--not-json", type=int, default=0, metavar="COUNT",
                        help="answer the next COUNT calls with an HTML body")
    parser.add_argument("--exit-after", type=float, default=1800.0, metavar="SECONDS",
                        help="stop by itself after this long (a leaked fake does not linger)")


def initial_faults(args):
    actions = []
    for item in args.fail:
        status, _, count = item.partition(":")
        actions.append({"status": int(status), "count": int(count or 1)})
    for key, body in (("huge_body", "huge"), ("truncate", "truncated"), ("not_json", "not_json")):
        if getattr(args, key):
            actions.append({"body": body, "count": getattr(args, key)})
    return {"delay_ms": args.delay_ms, "next": actions}


def serve_until_stopped(fake, args, extra_lines=()):
    """Start `fake`, print `url=...`, any extra `key=value` lines and `ready`, then wait for
    SIGTERM/SIGINT or `--exit-after`."""
    fake.faults.script(initial_faults(args))
    fake.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"url={fake.url}", flush=True)
    if fake.ca_bundle:
        print(f"ca_bundle={fake.ca_bundle}", flush=True)
    for line in extra_lines:
        print(line, flush=True)
    print("ready", flush=True)
    stop.wait(args.exit_after if args.exit_after > 0 else None)
    fake.stop()


def parser(description):
    return argparse.ArgumentParser(description=description)


def launch(argv, timeout=20.0, env=None):
    """Start a fake as a process (argv after the Python interpreter), wait for its `ready`
    line and return (process, {key: value} of the lines before it). Stop it with
    `process.send_signal(SIGTERM)` and `wait`."""
    import queue
    import subprocess

    proc = subprocess.Popen([sys.executable] + list(argv), stdout=subprocess.PIPE, text=True, env=env)
    lines = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line.strip())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    info, deadline = {}, time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            line = None
        if line == "ready":
            return proc, info
        if line is None:
            proc.kill()
            proc.wait(timeout=10)
            raise RuntimeError(f"the fake {argv[0]} did not print `ready` (got {info})")
        key, _, value = line.partition("=")
        info[key] = value


def run_python(argv, timeout=30.0, env=None):
    """Run a script of this folder with this Python; its stdout (raises if it fails)."""
    import subprocess

    done = subprocess.run([sys.executable] + list(argv), capture_output=True, text=True,
                          timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout
