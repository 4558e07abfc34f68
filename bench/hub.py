#!/usr/bin/python3
"""The hub against mosquitto, both on a Unix socket, with the same clients:

  throughput  mosquitto_pub -l sends N QoS 1 messages from module a, mosquitto_sub
              -C N receives them as module b (through a route on the hub, through a
              plain topic on mosquitto); wall time from the first send to the last
              receipt
  latency     one paho-mqtt QoS 1 message at a time from a to b, median and p99
  memory      RSS and PSS (and private) of the broker after those runs with no client
              left, then with five connected clients after 200 more messages

usage: bench/hub.py [BERTH_BIN] [N]   (as root; starts and stops its own brokers)
"""
import os
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import hubkit  # noqa: E402

BERTH = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "build", "berth")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
PAYLOAD = "x" * 100


def mem(pid):
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                out[k] = int(v.split()[0])
    return "RSS %.1f MB, PSS %.2f MB, private %.2f MB" % (
        out["Rss"] / 1024, out["Pss"] / 1024, (out["Private_Clean"] + out["Private_Dirty"]) / 1024)


class Broker:
    """What the benchmark needs from either broker."""

    def client_args(self, module):
        raise NotImplementedError


class BerthHub(Broker):
    name = "berth hub"

    def __init__(self, d):
        mods = {"a": {}, "b": {}, "c": {}, "d": {}, "e": {}}
        self.hub = hubkit.Hub(BERTH, d, device="bench", modules=mods, routes={
            "ab": 'FROM /messages/modules/a/* INTO BrokeredEndpoint("/modules/b/inputs/in1")'})
        self.hub.start()
        self.pid = self.hub.proc.pid
        self.socket = self.hub.socket
        self.out_topic = "devices/bench/modules/a/messages/events/$.on=o"
        self.in_topic = "devices/bench/modules/b/#"

    def client_args(self, module):
        return ["-i", "bench/" + module, "-u", hubkit.username("bench", module),
                "-P", self.hub.token(module)]

    def module(self, name):
        return hubkit.Module(self.hub, name)

    def stop(self):
        self.hub.stop()


class Mosquitto(Broker):
    name = "mosquitto 2.0"

    def __init__(self, d):
        self.socket = os.path.join(d, "mq.sock")
        conf = os.path.join(d, "mq.conf")
        with open(conf, "w") as f:
            f.write("user root\nlistener 0 %s\nallow_anonymous true\nmax_queued_messages 100000\n"
                    % self.socket)
        self.proc = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        hubkit.wait_for(lambda: os.path.exists(self.socket), 10, what="mosquitto")
        self.pid = self.proc.pid
        self.out_topic = "bench/a/out"
        self.in_topic = "bench/a/out"

    def client_args(self, module):
        return ["-i", "bench/" + module]

    def module(self, name):
        m = hubkit.Module.__new__(hubkit.Module)
        m.messages, m.connack, m.disconnects = queue.Queue(), queue.Queue(), queue.Queue()
        m.c = hubkit.UnixClient(self.socket, "bench/" + name)
        m.c.on_connect = lambda c, u, flags, rc: m.connack.put((rc, flags))
        m.c.on_message = lambda c, u, msg: m.messages.put(msg)
        m.c.on_disconnect = lambda c, u, rc: m.disconnects.put(rc)
        m.keepalive = 60
        return m

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


def throughput(b):
    sub = subprocess.Popen(["mosquitto_sub", "--unix", b.socket, "-q", "1", "-t", b.in_topic,
                            "-C", str(N)] + b.client_args("b"), stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    lines = ("%s\n" % PAYLOAD * N).encode()
    start = time.monotonic()
    subprocess.run(["mosquitto_pub", "--unix", b.socket, "-q", "1", "-t", b.out_topic, "-l"] +
                   b.client_args("a"), input=lines, check=True)
    sub.wait(120)
    took = time.monotonic() - start
    return "%d messages in %.2f s: %.0f msg/s" % (N, took, N / took)


def latency(b):
    rx = b.module("b")
    rx.connect()
    rx.subscribe(b.in_topic)
    tx = b.module("a")
    tx.connect()
    times = []
    for _ in range(1000):
        t0 = time.perf_counter()
        tx.c.publish(b.out_topic, PAYLOAD, 1)
        rx.messages.get(timeout=10)
        times.append((time.perf_counter() - t0) * 1e6)
    rx.close()
    tx.close()
    times.sort()
    return "median %.0f us, p99 %.0f us" % (statistics.median(times), times[int(len(times) * .99)])


def footprint(b):
    time.sleep(6)  # the hub trims its heap every 5 s
    idle = mem(b.pid)
    clients = []
    for name in "abcde":
        m = b.module(name)
        m.connect()
        m.subscribe(b.in_topic if name == "b" else "$iothub/twin/res/#" if b.name.startswith(
            "berth") else "bench/" + name)
        clients.append(m)
    for _ in range(200):
        clients[0].c.publish(b.out_topic, PAYLOAD, 1)
    time.sleep(1)
    busy = mem(b.pid)
    for m in clients:
        m.close()
    return idle, busy


def main():
    for cls in (BerthHub, Mosquitto):
        d = tempfile.mkdtemp(prefix="berth-bench-")
        b = cls(d)
        try:
            print("== %s" % b.name)
            print("throughput: " + throughput(b))
            print("latency:    " + latency(b))
            idle, busy = footprint(b)
            print("no clients: " + idle)
            print("5 clients:  " + busy)
        finally:
            b.stop()
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
