#!/usr/bin/python3
"""What a hostile client costs the hub, measured from outside:

  descriptors    the hub limited to 24 descriptors, 30 connections opened: CPU time the
                 hub burns in the next 2 s, and log lines written
  before CONNECT 200 connections each announce a 250 kB CONNECT and send 240 kB of it:
                 the hub's RSS before and after
  patch burst    one module pipelines 500 reported-property patches; how long another
                 module waits for its PINGRESP
  subscriptions  one module asks for 12,800 subscriptions (200 SUBSCRIBEs of 64): the
                 hub's RSS before and after

usage: bench/hub_hostile.py [BERTH_BIN]   (as root; starts and stops its own hubs)
"""
import json
import os
import resource
import shutil
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import hubkit  # noqa: E402
from hubkit import Module, Raw, connect_packet, enc_str, packet, remaining_length, username  # noqa: E402

BERTH = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "build", "berth")


class Hub(hubkit.Hub):
    def __init__(self, **kw):
        self.tmp = tempfile.mkdtemp(prefix="berth-bench-hostile-")
        super().__init__(BERTH, self.tmp, device="Hannover01", **kw)

    def stop(self):
        super().stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def raw_connect(hub, module):
    r = Raw(hub.socket, timeout=60)
    r.send(connect_packet("%s/%s" % (hub.device, module), username(hub.device, module),
                          hub.token(module)))
    assert r.recv_packet() == (0x20, b"\x00\x00")
    return r


def descriptors():
    hub = Hub(modules={"a": {}})
    hub.start(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (24, 24)))
    socks = []
    for _ in range(30):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(hub.socket)
        socks.append(s)
    time.sleep(0.2)
    lines, cpu = hub.log_text().count("\n"), hub.cpu_seconds()
    time.sleep(2)
    out = "%.2f s of CPU in 2 s, %d log lines" % (hub.cpu_seconds() - cpu,
                                                   hub.log_text().count("\n") - lines)
    for s in socks:
        s.close()
    hub.stop()
    return out


def before_connect():
    hub = Hub(modules={"a": {}}).start()
    before = hub.rss_kib()
    socks = []
    for _ in range(200):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(hub.socket)
        s.settimeout(5)
        try:
            s.sendall(b"\x10" + remaining_length(250000) + b"\0" * 240000)
        except OSError:
            pass
        socks.append(s)
    time.sleep(1)
    out = "RSS %.1f MB -> %.1f MB" % (before / 1024, hub.rss_kib() / 1024)
    for s in socks:
        s.close()
    hub.stop()
    return out


def patch_burst():
    hub = Hub(modules={"a": {}, "b": {}}).start()
    a, b = raw_connect(hub, "a"), raw_connect(hub, "b")
    burst = b"".join(
        packet(0x32, enc_str("$iothub/twin/PATCH/properties/reported/?$rid=%d" % i) +
               struct.pack(">H", i + 1) + json.dumps({"k%d" % (i % 50): i}).encode())
        for i in range(500))
    a.s.setblocking(False)
    start = time.monotonic()
    try:
        a.s.send(burst)
    except BlockingIOError:
        pass
    time.sleep(0.01)
    b.send(packet(0xc0, b""))
    assert b.recv_packet() == (0xd0, b"")
    out = "PINGRESP after %.3f s" % (time.monotonic() - start)
    hub.stop()
    return out


def subscriptions():
    hub = Hub(modules={"a": {}}).start()
    r = raw_connect(hub, "a")
    before = hub.rss_kib()
    granted = 0
    for n in range(200):
        body = struct.pack(">H", n + 1) + b"".join(
            enc_str("devices/%s/modules/a/inputs/%d-%d-%s" % (hub.device, n, i, "x" * 100)) +
            b"\x01" for i in range(64))
        r.send(packet(0x82, body))
        granted += sum(1 for c in r.recv_packet()[1][2:] if c != 0x80)
    out = "%d granted, RSS %.1f MB -> %.1f MB" % (granted, before / 1024, hub.rss_kib() / 1024)
    hub.stop()
    return out


def main():
    print("descriptors:    " + descriptors())
    print("before CONNECT: " + before_connect())
    print("patch burst:    " + patch_burst())
    print("subscriptions:  " + subscriptions())


if __name__ == "__main__":
    main()
