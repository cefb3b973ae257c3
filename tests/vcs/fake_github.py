"""A fake GitHub REST API on loopback (a real ThreadingHTTPServer): app installations and
token exchange (verifying the app JWT's RS256 signature with the app's public key),
check runs, commit statuses and issue comments. It records every call and can be told
to fail the next matching calls, to prove retries."""

import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt

INSTALLATION_ID = 4242


@dataclass
class Call:
    method: str
    path: str
    query: dict
    body: object
    auth: str


@dataclass
class Failure:
    method: str
    pattern: re.Pattern
    status: int
    headers: dict
    body: dict
    times: int


@dataclass
class FakeGitHub:
    app_id: str = ""
    public_key: object = None
    pat: str = ""
    calls: list[Call] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    check_runs: dict[int, dict] = field(default_factory=dict)
    comments: dict[int, dict] = field(default_factory=dict)
    statuses: list[dict] = field(default_factory=list)
    issued: dict[str, dict] = field(default_factory=dict)  # token -> what it may do
    # Accept a create but answer 502, as if the answer were lost on the way back.
    lose_next_create: set[str] = field(default_factory=set)
    url: str = ""
    _next: int = 100
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, method, path_regex, status, *, times=1, headers=None, body=None):
        self.failures.append(
            Failure(method, re.compile(path_regex), status, headers or {}, body or {}, times)
        )

    def named(self, method: str, path_regex: str) -> list[Call]:
        rx = re.compile(path_regex)
        return [c for c in self.calls if c.method == method and rx.fullmatch(c.path)]

    def new_id(self) -> int:
        with self._lock:
            self._next += 1
            return self._next


def _now() -> datetime:
    return datetime.now(UTC)


def make_handler(gh: FakeGitHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def _answer(self, status: int, body: object = None, headers: dict | None = None):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _handle(self, method: str):
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            auth = self.headers.get("Authorization", "")
            path = parts.path
            with gh._lock:
                gh.calls.append(Call(method, path, parse_qs(parts.query), body, auth))
                for f in gh.failures:
                    if f.times > 0 and f.method == method and f.pattern.fullmatch(path):
                        f.times -= 1
                        return self._answer(f.status, f.body, f.headers)
            if path.startswith("/api/v3/"):  # GitHub Enterprise Server's API prefix
                path = path[len("/api/v3") :]
            return self._route(method, path, parse_qs(parts.query), body, auth)

        # --- auth -----------------------------------------------------------------
        def _app_jwt_ok(self, auth: str) -> bool:
            if not auth.startswith("Bearer ") or gh.public_key is None:
                return False
            try:
                claims = jwt.decode(
                    auth[7:],
                    gh.public_key,
                    algorithms=["RS256"],
                    options={"require": ["exp", "iat", "iss"]},
                )
            except jwt.PyJWTError:
                return False
            return str(claims["iss"]) == gh.app_id and claims["exp"] - claims["iat"] <= 660

        def _token_ok(self, auth: str, full_name: str, write: bool) -> bool:
            token = auth[7:] if auth.startswith("Bearer ") else ""
            if gh.pat and token == gh.pat:
                return True
            grant = gh.issued.get(token)
            if grant is None or grant["expires_at"] < _now():
                return False
            if grant["repositories"] and full_name.split("/")[1] not in grant["repositories"]:
                return False
            return not (write and grant["permissions"].get("contents") == "read")

        # --- routes -----------------------------------------------------------------
        def _route(self, method, path, query, body, auth):
            m = re.fullmatch(r"/repos/([^/]+/[^/]+)/installation", path)
            if m and method == "GET":
                if not self._app_jwt_ok(auth):
                    return self._answer(401, {"message": "A JSON web token could not be decoded"})
                return self._answer(200, {"id": INSTALLATION_ID, "app_id": int(gh.app_id)})
            m = re.fullmatch(r"/app/installations/(\d+)/access_tokens", path)
            if m and method == "POST":
                if not self._app_jwt_ok(auth) or int(m.group(1)) != INSTALLATION_ID:
                    return self._answer(401, {"message": "Bad credentials"})
                token = f"ghs_fake{gh.new_id()}"
                expires = _now() + timedelta(hours=1)
                gh.issued[token] = {
                    "expires_at": expires,
                    "repositories": (body or {}).get("repositories") or [],
                    "permissions": (body or {}).get("permissions") or {},
                }
                return self._answer(
                    201,
                    {
                        "token": token,
                        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "permissions": (body or {}).get("permissions") or {"checks": "write"},
                    },
                )
            m = re.fullmatch(r"/repos/([^/]+/[^/]+)/(.*)", path)
            if not m:
                return self._answer(404, {"message": "Not Found"})
            full, rest = m.group(1), m.group(2)
            if not self._token_ok(auth, full, write=method != "GET"):
                return self._answer(401, {"message": "Bad credentials"})
            if rest == "check-runs" and method == "POST":
                if gh.pat and auth == f"Bearer {gh.pat}":
                    return self._answer(
                        403, {"message": "Resource not accessible by personal access token"}
                    )
                cid = gh.new_id()
                gh.check_runs[cid] = {"id": cid, **body, "history": [dict(body)]}
                if "check-runs" in gh.lose_next_create:
                    gh.lose_next_create.discard("check-runs")
                    return self._answer(502, {"message": "Bad Gateway"})
                return self._answer(201, {"id": cid, **body})
            m = re.fullmatch(r"check-runs/(\d+)", rest)
            if m and method == "PATCH":
                cid = int(m.group(1))
                if cid not in gh.check_runs:
                    return self._answer(404, {"message": "Not Found"})
                gh.check_runs[cid].update(body)
                gh.check_runs[cid]["history"].append(dict(body))
                return self._answer(200, {"id": cid})
            m = re.fullmatch(r"commits/([0-9a-f]+)/check-runs", rest)
            if m and method == "GET":
                found = [
                    {k: v for k, v in c.items() if k != "history"}
                    for c in gh.check_runs.values()
                    if c.get("head_sha") == m.group(1)
                    and c.get("name") == query.get("check_name", [None])[0]
                ]
                return self._answer(200, {"total_count": len(found), "check_runs": found})
            m = re.fullmatch(r"statuses/([0-9a-f]+)", rest)
            if m and method == "POST":
                gh.statuses.append({"sha": m.group(1), **body})
                return self._answer(201, {"id": gh.new_id(), **body})
            m = re.fullmatch(r"issues/(\d+)/comments", rest)
            if m and method == "POST":
                cid = gh.new_id()
                gh.comments[cid] = {"id": cid, "issue": int(m.group(1)), "body": body["body"]}
                if "comments" in gh.lose_next_create:
                    gh.lose_next_create.discard("comments")
                    return self._answer(502, {"message": "Bad Gateway"})
                return self._answer(201, {"id": cid})
            if m and method == "GET":
                found = [c for c in gh.comments.values() if c["issue"] == int(m.group(1))]
                return self._answer(200, found)
            m = re.fullmatch(r"issues/comments/(\d+)", rest)
            if m and method == "PATCH":
                cid = int(m.group(1))
                if cid not in gh.comments:
                    return self._answer(404, {"message": "Not Found"})
                gh.comments[cid]["body"] = body["body"]
                return self._answer(200, {"id": cid})
            return self._answer(404, {"message": "Not Found"})

        def do_GET(self):
            self._handle("GET")

        def do_POST(self):
            self._handle("POST")

        def do_PATCH(self):
            self._handle("PATCH")

    return Handler


def start(gh: FakeGitHub) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(gh))
    server.daemon_threads = True
    gh.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
