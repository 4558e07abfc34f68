"""Registries that misbehave on purpose, for the pull tests.

A Front is a small HTTP server on 127.0.0.1 that forwards to a real
docker-registry and lets a test break chosen requests: reset a connection
mid-blob, answer 500, truncate or corrupt a body, redirect a blob to another
server, stop answering, demand Bearer tokens, or serve a hand-written
manifest. It records every request it saw (path and headers).
"""
import base64
import hashlib
import http.client
import json
import os
import secrets
import socket
import struct
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_HEADERS = {"content-length", "connection", "transfer-encoding", "date", "server",
               "keep-alive"}


class Request:
    def __init__(self, method, path, headers):
        self.method, self.path, self.headers = method, path, headers

    def header(self, name):
        for k, v in self.headers.items():
            if k.lower() == name.lower():
                return v
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        req = Request("GET", self.path, dict(self.headers.items()))
        with srv.lock:
            srv.requests.append(req)
        for hook in list(srv.hooks):
            if hook(self, req):
                return
        self.reply(*self.forward(req))

    def forward(self, req, path=None):
        conn = http.client.HTTPConnection(self.server.upstream, timeout=30)
        headers = {k: v for k, v in req.headers.items()
                   if k.lower() in ("accept", "range")}
        conn.request("GET", path or req.path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        conn.close()
        return r.status, [(k, v) for k, v in r.getheaders() if k.lower() not in HOP_HEADERS], body

    def reply(self, status, headers, body):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def reply_partial(self, status, headers, body, n, reset):
        """Announces the whole body, sends n bytes, then drops the connection."""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:n])
        self.wfile.flush()
        if reset:  # RST instead of FIN
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()


class Front(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream):
        super().__init__(("127.0.0.1", 0), Handler)
        self.upstream = upstream
        self.host = "127.0.0.1:%d" % self.server_address[1]
        self.hooks = []
        self.requests = []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def handle_error(self, request, client_address):
        pass  # connections dropped on purpose are not errors

    def stop(self):
        self.released.set()
        self.shutdown()
        self.server_close()

    def seen(self, part):
        with self.lock:
            return [r for r in self.requests if part in r.path]

    # ---- faults -------------------------------------------------------------

    def on(self, match, action, times=None):
        """Runs action(handler, req) for requests whose path contains match,
        the first `times` times (every time if None)."""
        state = {"left": times}

        def hook(h, req):
            if match not in req.path:
                return False
            with self.lock:
                if state["left"] is not None:
                    if state["left"] <= 0:
                        return False
                    state["left"] -= 1
            action(h, req)
            return True
        self.hooks.append(hook)

    def cut_blob(self, digest, fraction=0.5, reset=True, times=1):
        def act(h, req):
            status, headers, body = h.forward(req)
            h.reply_partial(status, headers, body, int(len(body) * fraction), reset)
        self.on("/blobs/" + digest, act, times)

    def fail_with(self, match, status, times=None):
        def act(h, req):
            h.reply(status, [("Content-Type", "application/json")],
                    b'{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}')
        self.on(match, act, times)

    def replace_blob(self, digest, data):
        def act(h, req):
            h.reply(200, [("Content-Type", "application/octet-stream"),
                          ("Docker-Content-Digest", digest)], data)
        self.on("/blobs/" + digest, act)

    def redirect_blob(self, digest, other):
        def act(h, req):
            h.reply(307, [("Location", "http://%s%s" % (other.host, req.path))], b"")
        self.on("/blobs/" + digest, act)

    def stall(self, match):
        def act(h, req):
            self.released.wait(120)
            h.close_connection = True
        self.on(match, act)

    def slow_blob(self, digest, chunk=65536, delay=0.05):
        def act(h, req):
            status, headers, body = h.forward(req)
            h.send_response(status)
            for k, v in headers:
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            for i in range(0, len(body), chunk):
                if self.released.is_set():
                    break
                h.wfile.write(body[i:i + chunk])
                h.wfile.flush()
                time.sleep(delay)
        self.on("/blobs/" + digest, act)

    def serve_manifest(self, match, body, content_type, digest_header=True):
        def act(h, req):
            headers = [("Content-Type", content_type)]
            if digest_header:
                headers.append(("Docker-Content-Digest",
                                "sha256:" + hashlib.sha256(body).hexdigest()))
            h.reply(200, headers, body)
        self.on(match, act)

    # ---- auth ----------------------------------------------------------------

    def require_bearer(self, user=None, password=None, expires_in=300, service="berth-test"):
        """Demands a Bearer token from the token endpoint at /token on this
        same server; with user set, the token endpoint wants Basic auth."""
        self.tokens = set()
        self.token_requests = []

        def token(h, req):
            if not req.path.startswith("/token"):
                return False
            self.token_requests.append(req)
            if user is not None:
                want = "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()
                if req.header("Authorization") != want:
                    h.reply(401, [("Content-Type", "application/json")], b'{"details":"no"}')
                    return True
            t = secrets.token_hex(16)
            self.tokens.add(t)
            h.reply(200, [("Content-Type", "application/json")],
                    json.dumps({"token": t, "expires_in": expires_in}).encode())
            return True

        def guard(h, req):
            if not req.path.startswith("/v2/"):
                return False
            a = req.header("Authorization") or ""
            if a.startswith("Bearer ") and a[7:] in self.tokens:
                return False
            repo = req.path[4:].split("/manifests/")[0].split("/blobs/")[0]
            h.reply(401, [("Content-Type", "application/json"),
                          ("WWW-Authenticate",
                           'Bearer realm="http://%s/token",service="%s",scope="repository:%s:pull"'
                           % (self.host, service, repo))],
                    b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
            return True
        self.hooks.insert(0, guard)
        self.hooks.insert(0, token)


def htpasswd_line(user, password):
    """A bcrypt htpasswd entry, as docker-registry's htpasswd auth wants."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import crypt  # deprecated since 3.11 but present; libxcrypt does bcrypt
        return "%s:%s\n" % (user, crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH)))


def make_ca_and_cert(d):
    """A CA and a server certificate for 127.0.0.1 (openssl CLI)."""
    d = str(d)
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    key, csr, crt = (os.path.join(d, n) for n in ("srv.key", "srv.csr", "srv.pem"))
    ext = os.path.join(d, "ext.cnf")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    run = lambda *a: subprocess.run(a, check=True, stdout=subprocess.DEVNULL,  # noqa: E731
                                    stderr=subprocess.DEVNULL)
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=berth test CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", crt, "-days", "2", "-extfile", ext)
    return ca, crt, key
