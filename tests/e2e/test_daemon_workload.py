"""The workload API subset: a module signs data with its own key, and only
with its own."""
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

from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import manifest, module, module_key, unique

SLEEP = ["/bin/sh", "-c", "exec sleep 1000"]

# Runs as a separate process that first joins a module's cgroups, so the
# daemon sees the request coming from inside that module.
CALLER = r'''
import os, socket, sys
sock, join, target, genid = sys.argv[1:5]
for procs in sys.argv[5:]:
    with open(procs, "w") as f:
        f.write(str(os.getpid()))
body = b'{"keyId":"primary","algo":"HMACSHA256","data":"aGVsbG8="}'
req = (b"POST /modules/%s/genid/%s/sign?api-version=2019-01-30 HTTP/1.1\r\n"
       b"Host: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
       % (target.encode(), genid.encode(), len(body))) + body
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sock)
s.sendall(req)
out = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode())
'''


def cgroup_procs_files(name):
    return sorted(glob.glob("/sys/fs/cgroup/berth/%s/cgroup.procs" % name) +
                  glob.glob("/sys/fs/cgroup/*/berth/%s/cgroup.procs" % name))


def call(d, as_module, target, genid):
    sock = os.path.join(d.berth.run_dir, "shared", "workload.sock")
    files = cgroup_procs_files(as_module) if as_module else []
    p = subprocess.run([sys.executable, "-c", CALLER, sock, as_module or "-", target, genid] + files,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    head, _, body = p.stdout.decode().partition("\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_module_signs_with_its_own_key_only(daemons, image):
    a, b = unique("wla"), unique("wlb")
    cmd = ["/bin/sh", "-c", "echo uri=$IOTEDGE_WORKLOADURI api=$IOTEDGE_APIVERSION; "
           "test -S /run/berth/workload.sock && echo workload-socket-present; exec sleep 1000"]
    d = daemons(manifest({a: module(image, cmd), b: module(image, SLEEP)})).start()
    ma, mb = d.wait_status(a), d.wait_status(b)
    d.wait_log(a, "uri=unix:///run/berth/workload.sock api=2019-01-30")
    d.wait_log(a, "workload-socket-present")

    status, body = call(d, a, a, ma["generationId"])
    assert status == 200, body
    key = base64.b64decode(module_key(a, ma["generationId"]))
    assert body["digest"] == base64.b64encode(
        hmac.new(key, b"hello", hashlib.sha256).digest()).decode()

    status, body = call(d, a, b, mb["generationId"])
    assert status == 403 and "may not sign for module %s" % b in body["message"]

    status, body = call(d, a, a, "0" * 32)
    assert status == 404 and "generation id" in body["message"]


def test_silent_connections_are_closed_after_five_seconds(daemons):
    d = daemons(manifest({})).start()
    sock = os.path.join(d.berth.run_dir, "shared", "workload.sock")
    conns = []
    for _ in range(20):  # more than the 16 connection slots
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        conns.append(s)
    start = time.monotonic()
    s = conns[0]
    s.settimeout(15)
    answer = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        answer += chunk
    assert 4.0 <= time.monotonic() - start < 12.0
    assert answer.startswith(b"HTTP/1.1 408 ")
    for c in conns:
        c.close()
