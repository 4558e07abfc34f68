"""What a deployment manifest asks for reaches the module: createOptions,
registry credentials, the module twin."""
import glob
import json
import os
import queue
import subprocess
import time

import pytest

import images
from conftest import Registry
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import HUB_HOST, instance_cgroups, manifest, module, unique
from hubkit import UnixClient
from registry_fixtures import htpasswd_line

# The capabilities container engines grant by default (bit numbers).
DEFAULT_CAPS = {0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}
CAP_NET_RAW, CAP_SYS_TIME = 13, 25


def cgroup_value(name, *files):
    """The first of `files` found in the module's cgroup directories."""
    for d in instance_cgroups(name):
        for f in files:
            p = os.path.join(d, f)
            if os.path.exists(p):
                with open(p) as fh:
                    return fh.read().strip()
    raise AssertionError("none of %s in %s" % (files, instance_cgroups(name)))


def test_create_options_reach_the_module(daemons, image, tmp_path):
    a = unique("opts")
    ro, rw = tmp_path / "ro", tmp_path / "rw"
    ro.mkdir()
    rw.mkdir()
    os.chown(str(rw), 1000, 1000)
    (ro / "hello").write_text("from the host\n")
    script = ("echo host=$(hostname) uid=$(id -u) gid=$(id -g) cwd=$(pwd) opt=$FROM_OPTS; "
              "echo data=$(cat /data/hello); "
              "touch /rootfs-write 2>/dev/null && echo rootfs=rw || echo rootfs=ro; "
              "touch /data/x 2>/dev/null && echo data=rw || echo data=ro; "
              "echo scratch > /scratch/out && echo scratch=rw; "
              "echo nets=$(ls /sys/class/net | tr '\\n' ,); "
              "echo dev=$(head -c 4 /dev/zero-in | wc -c); "
              "grep CapBnd /proc/self/status; echo done; exec sleep 1000")
    create = {
        "Entrypoint": ["/bin/sh", "-c"], "Cmd": [script], "WorkingDir": "/srv",
        "User": "1000:1000", "Hostname": "probe-host", "Env": ["FROM_OPTS=yes"],
        "Labels": {"team": "edge", "tier": "2"},
        "HostConfig": {
            "Binds": ["%s:/data:ro" % ro],
            "Mounts": [{"Type": "bind", "Source": str(rw), "Target": "/scratch"}],
            "ReadonlyRootfs": True, "NetworkMode": "none",
            "Memory": 64 * 1024 * 1024, "PidsLimit": 50, "NanoCpus": 500000000,
            "CapAdd": ["SYS_TIME"], "CapDrop": ["NET_RAW"],
            "Devices": [{"PathOnHost": "/dev/zero", "PathInContainer": "/dev/zero-in",
                         "CgroupPermissions": "r"}]}}
    d = daemons(manifest({a: module(image, create=create)})).start()
    m = d.wait_status(a)
    log = d.wait_log(a, "done").string
    assert "host=probe-host uid=1000 gid=1000 cwd=/srv opt=yes" in log, log
    assert "data=from the host" in log
    assert "rootfs=ro" in log and "data=ro" in log and "scratch=rw" in log
    assert (rw / "out").read_text() == "scratch\n"
    assert "nets=lo," in log, log
    assert "dev=4" in log
    bounding = int(log.split("CapBnd:")[1].split()[0], 16)
    assert {b for b in range(64) if bounding >> b & 1} == \
        (DEFAULT_CAPS - {CAP_NET_RAW}) | {CAP_SYS_TIME}
    assert m["labels"] == {"team": "edge", "tier": "2"}
    assert int(cgroup_value(a, "memory.max", "memory.limit_in_bytes")) == 64 * 1024 * 1024
    assert cgroup_value(a, "pids.max") == "50"
    cpu_max = cgroup_value(a, "cpu.max", "cpu.cfs_quota_us")
    assert cpu_max.split()[0] == "50000"


@pytest.fixture(scope="module")
def login_registry(tmp_path_factory):
    """A registry that wants a login, holding a busybox image."""
    d = tmp_path_factory.mktemp("login-registry")
    pw = d / "htpasswd"
    pw.write_text(htpasswd_line("edge", "hunter2"))
    r = Registry(str(d), "auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n" % pw)
    layout = str(d / "layout")
    images.OCILayout(layout).add_image([images.Layer(images.busybox_layer())], tag="1")
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                    "--dest-creds", "edge:hunter2", "oci:%s:1" % layout,
                    "docker://%s/private:1" % r.host], check=True, stdout=subprocess.DEVNULL)
    yield r
    r.stop()


def with_credentials(dep, host, password):
    dep["modulesContent"]["$edgeAgent"]["properties.desired"]["runtime"]["settings"] = {
        "registryCredentials": {"private": {"address": host, "username": "edge",
                                            "password": password}}}
    return dep


def test_registry_credentials_of_the_deployment_are_used_to_pull(daemons, login_registry):
    a, b = unique("cred"), unique("nocred")
    ref = "%s/private:1" % login_registry.host
    d = daemons(registries={login_registry.host: {"insecure": True}},
                restart_backoff_unit_ms=60000).start()
    d.deploy(manifest({b: module(ref, ["/bin/sh", "-c", "exec sleep 1000"])}))
    m = d.wait_status(b, "backoff", timeout=30)
    assert "requires a login" in m["statusDescription"], m
    d.deploy(with_credentials(manifest({a: module(ref, ["/bin/sh", "-c", "exec sleep 1000"])}),
                              login_registry.host, "hunter2"))
    d.wait_status(a, timeout=30)
    # The credentials went to the pull in a file only root can read, removed after.
    # The control: the pulls' files are in that directory while they run (the
    # "requires a login" above came back through one of them).
    assert os.path.isdir(os.path.join(d.berth.run_dir, "pulls"))
    assert not glob.glob(os.path.join(d.berth.run_dir, "pulls", "*"))


def test_module_twin_is_seeded_from_the_deployment(daemons, image):
    a = unique("twin")
    d = daemons(manifest({a: module(image, ["/bin/sh", "-c", "exec sleep 1000"])},
                         twins={a: {"interval": 30, "mode": "eco"}}), hub=True).start()
    d.wait_status(a)
    token = d.berth("token", a).stdout.decode().strip()
    got = queue.Queue()
    c = UnixClient(os.path.join(d.berth.run_dir, "hub.sock"), "Hannover01/%s" % a)
    c.username_pw_set("%s/Hannover01/%s/?api-version=2018-06-30" % (HUB_HOST, a), token)
    c.on_message = lambda cl, u, msg: got.put(msg)
    connected = queue.Queue()
    c.on_connect = lambda cl, u, flags, rc: connected.put(rc)
    deadline = time.monotonic() + 15
    while True:  # the hub may still be starting
        try:
            c.connect("localhost", 1883, 30)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    c.loop_start()
    try:
        assert connected.get(timeout=10) == 0
        c.subscribe("$iothub/twin/res/#", 1)
        time.sleep(0.3)
        c.publish("$iothub/twin/GET/?$rid=1", b"", 1)
        msg = got.get(timeout=10)
        assert msg.topic.startswith("$iothub/twin/res/200/"), msg.topic
        desired = json.loads(msg.payload)["desired"]
        assert desired["interval"] == 30 and desired["mode"] == "eco"
    finally:
        c.disconnect()
        c.loop_stop()
