"""IoT Edge's workload API: a socket per module, mounted where IoT Edge
mounts it, answering what the Azure IoT SDKs send (byte for byte as the C,
Python and Node SDKs send it), and only for the module whose socket it is."""
import base64
import glob
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import manifest, module, module_key, unique
from helpers import recv_all

SLEEP = ["/bin/sh", "-c", "exec sleep 1000"]
API_VERSIONS = ["2018-06-28", "2019-01-30", "2019-10-22", "2019-11-05", "2020-07-07",
                "2021-12-07", "2022-08-03"]
SIGN_BODY = b'{"keyId":"primary","algo":"HMACSHA256","data":"aGVsbG8="}'

# Runs as a separate process that first joins a module's cgroups, so the
# daemon sees the request coming from inside that module.
CALLER = r'''
import os, socket, sys
sock, request = sys.argv[1], sys.stdin.buffer.read()
for procs in sys.argv[2:]:
    with open(procs, "w") as f:
        f.write(str(os.getpid()))
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
d = os.open(os.path.dirname(sock), os.O_PATH | os.O_DIRECTORY)
s.connect("/proc/self/fd/%d/%s" % (d, os.path.basename(sock)))
s.sendall(request)
out = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    out += chunk
sys.stdout.buffer.write(out)
'''


def workload_socket(d, name):
    return os.path.join(d.berth.run_dir, "modules", name, "iotedge", "workload.sock")


def parse_answer(out):
    """(status, headers with lower-case names, body), checking the wire rules
    every SDK relies on: Content-Type application/json and Content-Length."""
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    assert headers.get("content-type") == "application/json", headers
    assert int(headers["content-length"]) == len(body), (headers, body)
    return status, headers, body


def unix_connect(path):
    """A socket connected to path, however long (through its directory's
    descriptor, as the daemon binds a long path)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    d = os.open(os.path.dirname(path), os.O_PATH | os.O_DIRECTORY)
    try:
        s.connect("/proc/self/fd/%d/%s" % (d, os.path.basename(path)))
    finally:
        os.close(d)
    return s


def raw(path, request):
    s = unix_connect(path)
    s.sendall(request)
    out = recv_all(s)
    s.close()
    return parse_answer(out)


def cgroup_procs_files(name):
    return sorted(glob.glob("/sys/fs/cgroup/berth/%s/cgroup.procs" % name) +
                  glob.glob("/sys/fs/cgroup/*/berth/%s/cgroup.procs" % name))


def from_module(d, as_module, socket_of, request):
    """The request sent from a process inside as_module's instance."""
    p = subprocess.run([sys.executable, "-c", CALLER, workload_socket(d, socket_of)] +
                       cgroup_procs_files(as_module), input=request,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    return parse_answer(p.stdout)


def node_request(method, path, body=b""):
    """As the Node SDK (azure-iot-http-base over http.request) sends it."""
    head = "%s %s HTTP/1.1\r\nRequest-Id: 1\r\nUser-Agent: azure-iot-device/1.18.4\r\n" % (
        method, path)
    if body:
        head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    return (head + "Host: localhost\r\nConnection: close\r\n\r\n").encode() + body


def c_request(method, path, body=b""):
    """As the C SDK (azure-uhttp-c) sends it: Host is the socket path and
    port 0, content-length in lower case, even on a GET."""
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    if body:
        head += "Content-Type: application/json; charset=utf-8\r\n"
    head += "Host: /var/run/iotedge/workload.sock:0\r\ncontent-length: %d\r\n\r\n" % len(body)
    return head.encode() + body


def python_request(method, path, body=b""):
    """As the Python SDK (requests over requests-unixsocket) sends it: no
    Content-Type, the quoted socket path as Host."""
    head = ("%s %s HTTP/1.1\r\nHost: %%2Fvar%%2Frun%%2Fiotedge%%2Fworkload.sock\r\n"
            "User-Agent: py-azure-iot-device%%2F2.12.0\r\nAccept-Encoding: gzip, deflate\r\n"
            "Accept: */*\r\nConnection: keep-alive\r\n" % (method, path))
    if body or method == "POST":
        head += "Content-Length: %d\r\n" % len(body)
    return (head + "\r\n").encode() + body


def hello_digest(name, genid):
    key = base64.b64decode(module_key(name, genid))
    return base64.b64encode(hmac.new(key, b"hello", hashlib.sha256).digest()).decode()


def test_each_module_has_its_own_socket_where_iot_edge_mounts_it(daemons, image):
    a, b = unique("wla"), unique("wlb")
    probe = ["/bin/sh", "-c",
             "echo uri=$IOTEDGE_WORKLOADURI api=$IOTEDGE_APIVERSION; "
             "test -S /var/run/iotedge/workload.sock && echo own-socket; "
             "ls /var/run/iotedge; env | grep -c ConnectionString; echo mine=$MINE; "
             "exec sleep 1000"]
    env = {"EdgeHubConnectionString": "HostName=x.example.net;DeviceId=d;ModuleId=m;"
                                      "SharedAccessKey=AAAA",
           "IotHubConnectionString": "HostName=x.example.net;DeviceId=d;SharedAccessKey=AAAA",
           "MINE": "kept"}
    d = daemons(manifest({a: module(image, probe, env=env), b: module(image, SLEEP)})).start()
    d.wait_status(a)
    d.wait_status(b)
    d.wait_log(a, "uri=unix:///var/run/iotedge/workload.sock api=2019-01-30")
    d.wait_log(a, "own-socket")
    # The connection strings that would override IOTEDGE_* in every SDK are
    # gone; the module's other variables stay.
    d.wait_log(a, r"\n0\nmine=kept")
    assert "IotHubConnectionString dropped from its environment" in d.log_text()
    assert os.path.exists(workload_socket(d, a)) and os.path.exists(workload_socket(d, b))
    assert workload_socket(d, a) != workload_socket(d, b)


def test_requests_as_the_c_python_and_node_sdks_send_them(daemons, image, tmp_path):
    a = unique("wlc")
    extra = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                            "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null",
                            "-subj", "/CN=extra", "-days", "2"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout
    (tmp_path / "trust.pem").write_bytes(extra)
    d = daemons(manifest({a: module(image, SLEEP)}),
                trust_bundle=str(tmp_path / "trust.pem")).start()
    m = d.wait_status(a)
    sock, genid = workload_socket(d, a), m["generationId"]
    with open(os.path.join(d.berth.root, "ca", "edge-ca.pem")) as f:
        ca = f.read()
    for make in (c_request, python_request, node_request):
        status, _, body = raw(sock, make("GET", "/trust-bundle?api-version=2018-06-28"))
        assert status == 200, body
        bundle = json.loads(body)["certificate"]
        assert bundle.startswith(ca) and extra.decode() in bundle
        status, _, body = raw(sock, make("POST", "/modules/%s/genid/%s/sign?api-version="
                                                  "2018-06-28" % (a, genid), SIGN_BODY))
        assert status == 200, body
        assert json.loads(body)["digest"] == hello_digest(a, genid)
    # Path segments are percent-decoded, as IoT Edge decodes them.
    quoted = urllib.parse.quote(a, safe="").replace("-", "%2D")
    status, _, body = raw(sock, python_request(
        "POST", "/modules/%s/genid/%s/sign?api-version=2019-01-30" % (quoted, genid), SIGN_BODY))
    assert status == 200 and json.loads(body)["digest"] == hello_digest(a, genid), body
    # No manifest trust bundle configured: none, as IoT Edge answers.
    status, _, body = raw(sock, node_request("GET", "/manifest-trust-bundle?api-version=2020-07-07"))
    assert status == 200 and json.loads(body) == {"certificate": ""}


def test_every_api_version_is_served_and_others_refused(daemons, image):
    a = unique("wlv")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    d.wait_status(a)
    sock = workload_socket(d, a)
    for v in API_VERSIONS:
        status, _, body = raw(sock, c_request("GET", "/trust-bundle?api-version=" + v))
        assert status == 200, (v, body)
    status, _, body = raw(sock, c_request("GET", "/trust-bundle?api-version=2023-01-01"))
    assert status == 400 and b"not supported" in body
    status, _, body = raw(sock, c_request("GET", "/trust-bundle"))
    assert status == 400 and b"api-version is required" in body


def test_a_module_acts_through_its_own_socket_only(daemons, image):
    a, b = unique("wla"), unique("wlb")
    d = daemons(manifest({a: module(image, SLEEP), b: module(image, SLEEP)})).start()
    ma, mb = d.wait_status(a), d.wait_status(b)
    sign_a = node_request("POST", "/modules/%s/genid/%s/sign?api-version=2019-01-30"
                          % (a, ma["generationId"]), SIGN_BODY)
    sign_b = node_request("POST", "/modules/%s/genid/%s/sign?api-version=2019-01-30"
                          % (b, mb["generationId"]), SIGN_BODY)
    # From inside a, on a's socket: its own signature.
    status, _, body = from_module(d, a, a, sign_a)
    assert status == 200 and json.loads(body)["digest"] == hello_digest(a, ma["generationId"])
    # On a's socket, for b: refused, whoever asks.
    status, _, body = from_module(d, a, a, sign_b)
    assert status == 403 and b"may not act for module" in body
    status, _, body = raw(workload_socket(d, a), sign_b)
    assert status == 403
    # A process of a that reaches b's socket: refused by its cgroup.
    status, _, body = from_module(d, a, b, sign_b)
    assert status == 403 and b"another module" in body
    # An old generation id: not found.
    old = node_request("POST", "/modules/%s/genid/%s/sign?api-version=2019-01-30"
                       % (a, "0" * 32), SIGN_BODY)
    status, _, body = from_module(d, a, a, old)
    assert status == 404 and b"generation id" in body


def test_server_certificates_carry_the_common_name_and_the_module_name(daemons, image, tmp_path):
    a = unique("wls")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    m = d.wait_status(a)
    sock = workload_socket(d, a)
    want = int(time.time()) + 2 * 86400
    req = json.dumps({"commonName": "web.example.test",
                      "expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(want))})
    status, _, body = raw(sock, python_request(
        "POST", "/modules/%s/genid/%s/certificate/server?api-version=2019-01-30"
        % (a, m["generationId"]), req.encode()))
    assert status == 201, body
    answer = json.loads(body)
    assert answer["privateKey"]["type"] == "key"
    (tmp_path / "cert.pem").write_text(answer["certificate"])
    (tmp_path / "key.pem").write_text(answer["privateKey"]["bytes"])
    _, _, bundle = raw(sock, c_request("GET", "/trust-bundle?api-version=2019-01-30"))
    (tmp_path / "ca.pem").write_text(json.loads(bundle)["certificate"])
    subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"),
                    str(tmp_path / "cert.pem")], check=True, stdout=subprocess.DEVNULL)
    text = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "cert.pem"), "-noout",
                           "-text"], stdout=subprocess.PIPE, check=True).stdout.decode()
    assert "DNS:web.example.test, DNS:%s" % a in text
    assert "TLS Web Server Authentication" in text
    pub = lambda args: subprocess.run(["openssl"] + args, stdout=subprocess.PIPE,  # noqa: E731
                                      check=True).stdout
    assert pub(["x509", "-in", str(tmp_path / "cert.pem"), "-noout", "-pubkey"]) == \
        pub(["pkey", "-in", str(tmp_path / "key.pem"), "-pubout"])
    exp = time.mktime(time.strptime(answer["expiration"], "%Y-%m-%dT%H:%M:%S+00:00"))
    assert abs(exp - time.timezone - want) < 2
    # An expiration that has passed: refused.
    past = json.dumps({"commonName": "x", "expiration": "2001-01-01T00:00:00Z"}).encode()
    status, _, body = raw(sock, python_request(
        "POST", "/modules/%s/genid/%s/certificate/server?api-version=2019-01-30"
        % (a, m["generationId"]), past))
    assert status == 400 and b"has passed" in body


def test_encrypt_and_decrypt_with_a_key_of_the_modules_own(daemons, image):
    a, b = unique("wle"), unique("wlf")
    d = daemons(manifest({a: module(image, SLEEP), b: module(image, SLEEP)})).start()
    ma, mb = d.wait_status(a), d.wait_status(b)
    iv = base64.b64encode(b"fixed iv").decode()
    plain = base64.b64encode(b"secret settings").decode()

    def call(name, genid, op, body):
        return raw(workload_socket(d, name), node_request(
            "POST", "/modules/%s/genid/%s/%s?api-version=2019-01-30" % (name, genid, op),
            json.dumps(body).encode()))
    status, _, body = call(a, ma["generationId"], "encrypt",
                           {"plaintext": plain, "initializationVector": iv})
    assert status == 200, body
    ct = json.loads(body)["ciphertext"]
    status, _, again = call(a, ma["generationId"], "encrypt",
                            {"plaintext": plain, "initializationVector": iv})
    assert json.loads(again)["ciphertext"] != ct  # a fresh key each time
    status, _, body = call(a, ma["generationId"], "decrypt",
                           {"ciphertext": ct, "initializationVector": iv})
    assert status == 200 and json.loads(body)["plaintext"] == plain, body
    # Another module cannot read it, nor can a wrong vector.
    status, _, body = call(b, mb["generationId"], "decrypt",
                           {"ciphertext": ct, "initializationVector": iv})
    assert status == 400 and b"does not decrypt" in body
    status, _, body = call(a, ma["generationId"], "decrypt",
                           {"ciphertext": ct, "initializationVector": "b3RoZXI="})
    assert status == 400
    key = os.path.join(d.berth.root, "ca", "workload.key")
    assert os.stat(key).st_mode & 0o777 == 0o600 and os.path.getsize(key) == 32


def test_silent_connections_are_closed_after_five_seconds(daemons, image):
    a = unique("wlt")
    d = daemons(manifest({a: module(image, SLEEP)})).start()
    d.wait_status(a)
    sock = workload_socket(d, a)
    conns = []
    for _ in range(12):  # more than the 8 one module may hold
        conns.append(unix_connect(sock))
    start = time.monotonic()
    answers = []
    for s in conns:
        s.settimeout(15)
        answers.append(recv_all(s).split(b" ")[1])
    assert 4.0 <= time.monotonic() - start < 12.0
    assert answers.count(b"408") >= 8 and b"503" in answers, answers
    for c in conns:
        c.close()
    # The socket serves again once they are gone.
    status, _, _ = raw(sock, c_request("GET", "/trust-bundle?api-version=2019-01-30"))
    assert status == 200
