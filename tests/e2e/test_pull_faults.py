"""berth pull against a registry that fails on the way and recovers, or does
not: retries, resume with Range, redirects, timeouts, a killed pull. What a
failed pull prints and leaves is test_pull_failures.py's."""
import json
import os
import signal
import subprocess
import time

from helpers import push, wait_for
from images import Layer, file
from registry_fixtures import Front, Request


def big_layer(name, size=400_000):
    return Layer([file(name, os.urandom(size))])


def store_entries(berth):
    root = os.path.join(berth.root, "oci")
    out = {}
    for sub in ("layers/sha256", "refs", "blobs/sha256", "tmp"):
        d = os.path.join(root, sub)
        out[sub] = sorted(os.listdir(d)) if os.path.isdir(d) else []
    return out


def assert_store_empty(berth):
    e = store_entries(berth)
    assert e == {"layers/sha256": [], "refs": [], "blobs/sha256": [], "tmp": []}, e


def one_line_error(p, *needles):
    assert p.returncode == 1
    err = p.stderr.decode()
    assert err.count("\n") == 1, err
    for n in needles:
        assert n in err, err
    return err


def test_connection_reset_mid_blob_is_resumed_with_range(berth, registry, front, tmp_path):
    layer = big_layer("reset")
    push(tmp_path, registry, "reset", [layer])
    front.cut_blob(layer.digest, 0.5, reset=True)
    berth("pull", "--insecure", front.host + "/reset:1")
    reqs = front.seen("/blobs/" + layer.digest)
    assert len(reqs) == 2
    assert reqs[0].header("Range") is None
    start = int(reqs[1].header("Range").split("=")[1].rstrip("-"))
    assert 0 < start < len(layer.blob)


def test_truncated_body_is_retried_and_resumed(berth, registry, front, tmp_path):
    layer = big_layer("trunc")
    push(tmp_path, registry, "trunc", [layer])
    front.cut_blob(layer.digest, 0.3, reset=False)
    berth("pull", "--insecure", front.host + "/trunc:1")
    reqs = front.seen("/blobs/" + layer.digest)
    assert len(reqs) == 2 and reqs[1].header("Range").startswith("bytes=")


def test_resume_works_with_a_registry_that_ignores_range(berth, registry, front, tmp_path):
    layer = big_layer("norange")
    push(tmp_path, registry, "norange", [layer])
    front.cut_blob(layer.digest, 0.5, reset=True)

    def whole(h, req):  # answers 200 with the whole blob, Range or not
        plain = Request(req.method, req.path,
                        {k: v for k, v in req.headers.items() if k.lower() != "range"})
        h.reply(*h.forward(plain))
    front.on("/blobs/" + layer.digest, whole)
    berth("pull", "--insecure", front.host + "/norange:1")
    reqs = front.seen("/blobs/" + layer.digest)
    assert len(reqs) == 2 and reqs[1].header("Range") is not None
    img = json.loads(berth("inspect", front.host + "/norange:1").stdout)
    with open(os.path.join(img["layers"][0], "norange"), "rb") as f:
        assert len(f.read()) == 400_000


def test_server_errors_are_retried(berth, registry, front, tmp_path):
    layer = big_layer("five")
    push(tmp_path, registry, "five", [layer])
    front.fail_with("/manifests/1", 503, times=1)
    front.fail_with("/blobs/" + layer.digest, 500, times=2)
    berth("pull", "--insecure", front.host + "/five:1")
    assert len(front.seen("/manifests/1")) == 2
    assert len(front.seen("/blobs/" + layer.digest)) == 3


def test_persistent_server_errors_give_up_with_a_clear_error(berth, registry, front, tmp_path):
    layer = big_layer("down")
    push(tmp_path, registry, "down", [layer])
    front.fail_with("/blobs/" + layer.digest, 500)
    ref = front.host + "/down:1"
    p = berth("pull", "--insecure", ref, check=False)
    one_line_error(p, ref, layer.digest, "500", "gave up after 4 attempts")
    assert len(front.seen("/blobs/" + layer.digest)) == 4
    assert_store_empty(berth)


def test_blob_redirect_is_followed_without_authorization(berth, registry, tmp_path):
    layer = big_layer("redir", 20000)
    push(tmp_path, registry, "redir", [layer])
    front, other = Front(registry.host), Front(registry.host)
    try:
        front.require_bearer()
        front.redirect_blob(layer.digest, other)
        berth("pull", "--insecure", front.host + "/redir:1")
        at_front = front.seen("/blobs/" + layer.digest)
        at_other = other.seen("/blobs/" + layer.digest)
        assert at_front and at_front[-1].header("Authorization").startswith("Bearer ")
        assert len(at_other) == 1
        assert at_other[0].header("Authorization") is None
    finally:
        front.stop()
        other.stop()


def test_registry_that_stops_answering_times_out(berth, registry, front, tmp_path):
    layer = big_layer("stall", 1000)
    push(tmp_path, registry, "stall", [layer])
    front.stall("/blobs/" + layer.digest)
    ref = front.host + "/stall:1"
    t0 = time.monotonic()
    p = berth("pull", "--insecure", "--timeout", "1", ref, check=False)
    took = time.monotonic() - t0
    one_line_error(p, ref, "stopped answering")
    assert took < 15
    assert_store_empty(berth)


def test_killed_pull_leaves_no_layer_and_the_next_pull_completes(berth, registry, front, tmp_path):
    layer = big_layer("killed", 3_000_000)
    push(tmp_path, registry, "killed", [layer])
    front.slow_blob(layer.digest, chunk=32768, delay=0.03)
    tmp = os.path.join(berth.root, "oci", "tmp")
    p = subprocess.Popen(berth.cmd("pull", "--insecure", front.host + "/killed:1"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def unpacking():
            return any(os.listdir(os.path.join(tmp, d)) for d in os.listdir(tmp)) \
                if os.path.isdir(tmp) else False
        wait_for(unpacking, 20, what="the pull to start unpacking")
        time.sleep(0.3)
        assert p.poll() is None
        p.send_signal(signal.SIGKILL)
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    e = store_entries(berth)
    assert e["layers/sha256"] == [] and e["refs"] == []
    berth("pull", "--insecure", registry.host + "/killed:1")
    e = store_entries(berth)
    assert e["layers/sha256"] == [layer.diff_id[7:]]
    assert e["tmp"] == []

