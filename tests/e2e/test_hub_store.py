"""The hub's durable store, end to end: what a sender had its PUBACK for
reaches the receiver across a killed hub, persistent sessions come back
without subscribing again, time to live runs across a restart, full disks
and max_store_bytes under both policies, a torn and a corrupted segment, a
store the hub cannot use, `berth queues` and `berth check`."""
import json
import os
import struct
import subprocess
import threading
import time

import pytest

from hubkit import make_hub, packet, raw_connect, two_modules, wait_for  # noqa: F401 - fixture
from test_hub_mqtt import publish_packet, raw_subscribe

ROUTE = 'FROM /messages/modules/a/outputs/%s INTO BrokeredEndpoint("/modules/b/inputs/%s")'


def topic(hub, output="out1"):
    return "devices/%s/modules/a/messages/events/%%24.on=%s" % (hub.device, output)


def stream(hub, n, first=0, size=64, window=32, timeout=5, acked=None, output="out1"):
    """Messages first..first+n-1 from module a at QoS 1, `window` in flight,
    each body its number then padding to size bytes. Returns (appending to
    acked) the numbers whose PUBACK came before the connection ended or was
    quiet for `timeout` seconds."""
    acked = [] if acked is None else acked
    r = raw_connect(hub, "a")
    r.s.settimeout(timeout)
    pending, nxt, pid = {}, first, 0
    try:
        while nxt < first + n or pending:
            while nxt < first + n and len(pending) < window:
                pid = pid % 65535 + 1
                body = (b"%08d" % nxt).ljust(size, b"x")
                r.send(publish_packet(topic(hub, output), body, qos=1, pid=pid))
                pending[pid] = nxt
                nxt += 1
            p = r.recv_packet()
            if p is None:
                break
            if p[0] == 0x40:
                acked.append(pending.pop(struct.unpack(">H", p[1])[0]))
    except OSError:
        pass
    r.close()
    return acked


def receive(r, until, quiet=2.0):
    """Numbers of the messages delivered on the raw connection r (each
    acknowledged), until `until` of them came or none for `quiet` s."""
    got = []
    r.s.settimeout(quiet)
    try:
        while len(got) < until:
            p = r.recv_packet()
            if p is None:
                break
            first, body = p
            if first & 0xf0 != 0x30:
                continue
            tlen = struct.unpack(">H", body[:2])[0]
            pid = body[2 + tlen:4 + tlen]
            got.append(int(body[4 + tlen:12 + tlen]))
            r.send(packet(0x40, pid))
    except OSError:
        pass
    return got


def drain(hub, until, quiet=2.0, inputs="devices/%s/modules/b/#"):
    r = raw_connect(hub, "b")
    raw_subscribe(r, inputs % hub.device)
    got = receive(r, until, quiet)
    r.close()
    return got


def kill(hub):
    hub.proc.kill()
    hub.proc.wait()
    hub.log.close()


def start_again(hub):
    """Hub.start() for a hub that ran before: its log already says ready."""
    ready = hub.log_text().count("hub ready")
    hub.start()
    wait_for(lambda: hub.log_text().count("hub ready") > ready, 15, what="the hub restarted")


def kill_and_restart(hub):
    kill(hub)
    start_again(hub)


def restart(hub):
    hub.stop()
    start_again(hub)


def queues(hub):
    return hub.control_call({"op": "status"})


def segments(hub):
    d = os.path.join(hub.state_dir, "log")
    return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".log"))


def test_a_module_away_gets_everything_acknowledged_across_a_killed_hub(make_hub):
    hub = two_modules(make_hub)
    acked = stream(hub, 3000)
    assert sorted(acked) == list(range(3000))
    kill_and_restart(hub)
    acked += stream(hub, 1000, first=3000)
    kill_and_restart(hub)
    assert "store %s: 4000 message(s) held" % os.path.join(hub.state_dir, "log") \
        in hub.log_text()
    got = drain(hub, 4000)
    assert got == list(range(4000))  # every one, once, in order


def test_a_persistent_session_gets_its_messages_after_a_restart_without_subscribing(make_hub):
    hub = two_modules(make_hub)
    r = raw_connect(hub, "b", clean=False)
    present = r.session_present
    assert present == 0
    raw_subscribe(r, "devices/%s/modules/b/#" % hub.device)
    r.close()
    kill_and_restart(hub)
    assert len(stream(hub, 20)) == 20
    kill_and_restart(hub)
    r = raw_connect(hub, "b", clean=False)
    present = r.session_present
    assert present == 1
    assert receive(r, 20) == list(range(20))
    r.close()
    # The control: a clean session after a restart has no subscription,
    # and gets nothing until it subscribes.
    restart(hub)
    r = raw_connect(hub, "b", clean=True)
    present = r.session_present
    assert present == 0
    assert len(stream(hub, 5, first=20)) == 5
    assert receive(r, 5, quiet=1.0) == []
    raw_subscribe(r, "devices/%s/modules/b/#" % hub.device)
    assert receive(r, 5) == list(range(20, 25))


def test_time_to_live_per_route_and_global_runs_while_the_hub_is_down(make_hub):
    routes = {"short": {"route": ROUTE % ("short", "short"), "timeToLiveSecs": 2},
              "global": ROUTE % ("global", "global"),
              "long": {"route": ROUTE % ("long", "long"), "timeToLiveSecs": 600}}
    hub = make_hub(modules={"a": {}, "b": {}}, routes=routes, extra={"default_ttl_secs": 2})
    for out in ("short", "global", "long"):
        assert len(stream(hub, 5, output=out)) == 5
    hub.stop()
    time.sleep(3)
    start_again(hub)
    got = drain(hub, 15, quiet=1.5)
    assert got == list(range(5))  # only the long-lived ones
    q = queues(hub)["queues"]
    assert q["/modules/b/inputs/short"]["expired"] == 5
    assert q["/modules/b/inputs/global"]["expired"] == 5
    assert q["/modules/b/inputs/long"]["expired"] == 0


def mount(fs, where, tmp_path, size_kib):
    if fs == "tmpfs":
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dk" % size_kib, "tmpfs", where],
                       check=True)
    else:
        img = str(tmp_path / "store.img")
        subprocess.run(["truncate", "-s", "%dk" % size_kib, img], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", img], check=True)
        subprocess.run(["mount", "-o", "loop", img, where], check=True)


@pytest.mark.parametrize("fs", ["tmpfs", "ext4"])
def test_a_full_disk_holds_the_publisher_back_until_space_returns(make_hub, tmp_path, fs):
    hub = two_modules(make_hub, start=False)
    os.makedirs(hub.state_dir)
    mount(fs, hub.state_dir, tmp_path, 4096)
    try:
        hub.start()
        st = os.statvfs(hub.state_dir)
        filler = os.path.join(hub.state_dir, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (st.f_bavail * st.f_frsize - 600 * 1024))
        acked = []
        t = threading.Thread(target=stream, args=(hub, 1200), kwargs=dict(
            size=1024, timeout=30, acked=acked))
        t.start()
        wait_for(lambda: queues(hub)["store"]["full"], 20, what="the store full")
        time.sleep(0.5)  # PUBACKs of what was stored before
        held = len(acked)
        time.sleep(1)
        assert len(acked) == held < 1200  # no PUBACK while full
        assert "full" in hub.log_text() and "held back" in hub.log_text()
        if fs == "tmpfs":
            os.unlink(filler)  # space returns from outside
        got = drain(hub, 1200, quiet=5) if fs == "ext4" else []  # or as the receiver drains
        t.join(60)
        assert sorted(acked) == list(range(1200))
        got += drain(hub, 1200 - len(got), quiet=3)
        assert got == list(range(1200))
        s = queues(hub)["store"]
        assert s["held_back"] >= 1 and not s["full"] and s["write_errors"] == 0
    finally:
        hub.stop()
        subprocess.run(["umount", "-l", hub.state_dir], check=False)


def test_max_store_bytes_reject_holds_the_publisher_back_and_loses_nothing(make_hub):
    hub = two_modules(make_hub, extra={"store_max_bytes": 256 * 1024})
    acked = []
    t = threading.Thread(target=stream, args=(hub, 1000), kwargs=dict(
        size=1024, timeout=30, acked=acked))
    t.start()
    wait_for(lambda: queues(hub)["store"]["full"], 20, what="the store full")
    time.sleep(0.5)  # PUBACKs of what was stored before
    held = len(acked)
    time.sleep(1)
    assert len(acked) == held < 300
    assert queues(hub)["store"]["bytes"] <= 256 * 1024
    got = drain(hub, 1000, quiet=5)
    t.join(60)
    assert sorted(acked) == list(range(1000))
    assert got == list(range(1000))
    q = queues(hub)
    assert q["store"]["held_back"] >= 1 and q["store"]["dropped_full"] == 0


def test_max_store_bytes_drop_oldest_keeps_the_newest_and_counts_the_rest(make_hub):
    hub = two_modules(make_hub, extra={"store_max_bytes": 256 * 1024,
                                       "store_full": "drop-oldest"})
    assert sorted(stream(hub, 1000, size=1024)) == list(range(1000))
    q = queues(hub)
    dropped = q["queues"]["/modules/b/inputs/in1"]["dropped"]["full"]
    assert 700 < dropped < 1000 and q["store"]["bytes"] <= 256 * 1024
    got = drain(hub, 1000)
    assert got == list(range(dropped, 1000))
    assert "dropped (segment" in hub.log_text()


@pytest.mark.parametrize("damage", ["torn", "corrupted"])
def test_a_damaged_last_segment_costs_only_what_is_damaged(make_hub, damage):
    hub = two_modules(make_hub)
    assert len(stream(hub, 100)) == 100
    kill(hub)
    seg = segments(hub)[-1]
    data = bytearray(open(seg, "rb").read())
    if damage == "torn":
        # The last write is torn: the end of its last message and the end
        # mark after it never reached the disk, and in the preallocated
        # segment what was never written reads as zeros.
        end = 0
        while struct.unpack("<I", data[end:end + 4])[0]:
            end += 8 + struct.unpack("<I", data[end:end + 4])[0]
        data[end - 5:end + 8] = bytes(13)
        want, line = list(range(99)), "torn tail of "
    else:
        at = data.index(b"%08d" % 50)
        data[at + 3] ^= 0x20
        want, line = [i for i in range(100) if i != 50], "damaged bytes at offset"
    with open(seg, "wb") as f:
        f.write(data)
    start_again(hub)
    assert line in hub.log_text()
    assert drain(hub, 100) == want


def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xffffffff


def set_version(seg, version):
    """Rewrites the version in the segment's header record (its frame is
    len, crc, then type, "BERTHLOG", version) and seals it again."""
    data = bytearray(open(seg, "rb").read())
    n = struct.unpack("<I", data[:4])[0]
    data[17] = version
    data[4:8] = struct.pack("<I", crc32c(bytes(data[8:8 + n]), crc32c(bytes(data[:4]))))
    with open(seg, "wb") as f:
        f.write(data)


def test_a_store_the_hub_cannot_use_stops_it_with_one_line(make_hub, tmp_path, berth_bin):
    hub = two_modules(make_hub)
    assert len(stream(hub, 5)) == 5
    hub.stop()
    seg = segments(hub)[0]
    set_version(seg, 7)
    p = subprocess.run([berth_bin, "hub", "--config", hub.config_path], timeout=20,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode()
    assert p.returncode == 1
    assert out.count("is a log of version 7; this hub reads versions 1 to 2") == 1, out
    # berth check says the same before the hub is started.
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"device_id": "d1", "iothub_hostname": "h.example.net",
                               "device_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                               "hub": {"store": hub.state_dir}}))
    out = subprocess.run([berth_bin, "check", "--config", str(cfg)],
                         stdout=subprocess.PIPE).stdout.decode()
    assert "\u00d7 store %s/log: %s is a log of version 7" % (
        hub.state_dir, os.path.basename(seg)) in out
    # The control: version 2 again, and the hub starts with the messages.
    set_version(seg, 2)
    out = subprocess.run([berth_bin, "check", "--config", str(cfg)],
                         stdout=subprocess.PIPE).stdout.decode()
    assert "\u221a message store %s/log: " % hub.state_dir in out
    start_again(hub)
    assert drain(hub, 5) == list(range(5))
    # A store directory that cannot be created: no fallback, one line.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    bad = make_hub(modules={"a": {}}, start=False)
    bad.extra = {"state_dir": str(blocker / "hub")}
    bad.write_config()
    p = subprocess.run([berth_bin, "hub", "--config", bad.config_path], timeout=20,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.returncode == 1
    assert "cannot create it" in p.stdout.decode(), p.stdout.decode()
    cfg.write_text(json.dumps({"device_id": "d1", "iothub_hostname": "h.example.net",
                               "device_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                               "hub": {"store": str(blocker / "hub")}}))
    out = subprocess.run([berth_bin, "check", "--config", str(cfg)],
                         stdout=subprocess.PIPE).stdout.decode()
    assert "\u00d7 message store %s/hub cannot be created" % blocker in out


def test_berth_check_warns_about_a_store_on_a_tmpfs(tmp_path, berth_bin):
    store = tmp_path / "store"
    store.mkdir()
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"device_id": "d1", "iothub_hostname": "h.example.net",
                               "device_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
                               "hub": {"store": str(store)}}))
    check = [berth_bin, "check", "--config", str(cfg)]
    out = subprocess.run(check, stdout=subprocess.PIPE).stdout.decode()
    assert "\u221a message store %s/log: 0 segment(s)" % store in out
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(store)], check=True)
    try:
        out = subprocess.run(check, stdout=subprocess.PIPE).stdout.decode()
        assert "\u203c message store %s is on a tmpfs" % store in out
        assert "lost at reboot" in out
    finally:
        subprocess.run(["umount", "-l", str(store)], check=False)


def test_berth_queues_shows_each_endpoint(make_hub, berth_bin):
    hub = two_modules(make_hub)
    assert len(stream(hub, 10, size=100)) == 10
    queues_cmd = [berth_bin, "--run", hub.dir, "queues"]
    out = subprocess.run(queues_cmd, stdout=subprocess.PIPE, check=True).stdout.decode()
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ENDPOINT", "MESSAGES", "BYTES", "OLDEST"]
    row = [ln for ln in lines if ln.startswith("/modules/b/inputs/in1")][0].split()
    assert row[1] == "10" and int(row[2]) > 1000 and row[3].endswith("s")
    assert "store %s/log:" % hub.state_dir in out and "when full: reject" in out
    r = raw_connect(hub, "b")
    raw_subscribe(r, "devices/%s/modules/b/#" % hub.device)
    assert receive(r, 4) == [0, 1, 2, 3]
    r.close()

    def left():
        out = subprocess.run(queues_cmd + ["--json"], stdout=subprocess.PIPE, check=True)
        return json.loads(out.stdout)
    # 6 left: the connection had more in flight, which it did not acknowledge.
    wait_for(lambda: left()["queues"]["/modules/b/inputs/in1"]["messages"] == 6, 5,
             what="6 messages left")
    q = left()
    assert q["queues"]["/modules/b/inputs/in1"]["dropped"] == {"full": 0, "damaged": 0}
    assert q["store"]["store_full"] == "reject" and q["store"]["segments"] >= 1
