#!/usr/bin/python3
"""A backlog drained upstream after the link returns: N stored 256-byte
messages (default 100,000) go from the device to a local mosquitto, the
upstream, once it is back. Two devices are measured in the same run:

  berth hub        the messages are routed to $upstream and wait in the hub's
                   store; the hub's connection (libmosquitto in its event
                   loop, QoS 1, 64 in flight) drains them
  mosquitto bridge a mosquitto 2.0 on the device bridging to the upstream
                   (QoS 1, cleansession false, 64 in flight), the usual way
                   to forward from an edge broker; the messages wait in its
                   bridge queue

For each: a module publishes N messages (mosquitto_pub -l, QoS 1) while the
upstream is down; the upstream starts; a subscriber (mosquitto_sub -F %U,
with a persistent session made beforehand so nothing is missed) stamps each
message it receives. The drain rate is N over the time from the first
message received to the last; the reconnect delay (upstream start to first
message) is printed apart: it is the device's backoff, not its drain.

usage: bench/drain.py [BERTH_BIN] [N] [ROUNDS]   (bench/drain.sh; needs root)
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))
import hubkit  # noqa: E402
from conftest import free_port  # noqa: E402

BERTH = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build", "berth")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 2
BODY = "x" * 256
WINDOW = int(os.environ.get("DRAIN_WINDOW", "64"))


def mosquitto(d, name, lines):
    conf = os.path.join(d, name + ".conf")
    with open(conf, "w") as f:
        f.write("\n".join(["user root", "log_dest none"] + lines) + "\n")
    return subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_listening(port=None, path=None, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if path:
                s = socket.socket(socket.AF_UNIX)
                s.connect(path)
                s.close()
            else:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise TimeoutError("mosquitto did not listen")


def stop(p):
    if p and p.poll() is None:
        p.terminate()
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


class Upstream:
    """The cloud side: a mosquitto on a loopback port whose reader has a
    persistent QoS 1 session, so messages that arrive before the reader is
    back are kept for it."""

    def __init__(self, d):
        self.dir = os.path.join(d, "upstream")
        os.makedirs(self.dir)
        self.port = free_port()
        # The reader takes QoS 0 (queued for it while away): the upstream's
        # work per message is then the device's PUBLISH and PUBACK and one
        # PUBLISH out, so the rig costs both devices alike and little.
        self.lines = ["listener %d 127.0.0.1" % self.port, "allow_anonymous true",
                      "persistence true", "persistence_location %s/" % self.dir,
                      "autosave_interval 0", "max_queued_messages 0",
                      "max_inflight_messages 0", "queue_qos0_messages true"] + (
                          ["set_tcp_nodelay true"] if os.environ.get("DRAIN_NODELAY") else [])
        p = mosquitto(self.dir, "upstream", self.lines)
        wait_listening(self.port)
        subprocess.run(["mosquitto_sub", "-p", str(self.port), "-c", "-i", "reader", "-q", "0",
                        "-t", "#", "-W", "1"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        stop(p)

    def measure(self, device_pid):
        """Starts the upstream and its reader; (reconnect s, drain s, CPU s
        of the device during the drain, CPU s of the upstream)."""
        stamps = os.path.join(self.dir, "stamps")
        t_start = time.time()
        up = mosquitto(self.dir, "upstream", self.lines)
        cpu0 = cpu_seconds(device_pid)
        wait_listening(self.port)
        with open(stamps, "w") as out:
            sub = subprocess.Popen(["mosquitto_sub", "-p", str(self.port), "-c", "-i", "reader",
                                    "-q", "0", "-t", "#", "-C", str(N), "-F", "%U"], stdout=out)
            try:
                sub.wait(900)
                cpu = cpu_seconds(device_pid) - cpu0
                cpu_up = cpu_seconds(up.pid)
            finally:
                stop(sub)
                stop(up)
        with open(stamps) as f:
            ts = [float(line) for line in f if line.strip()]
        assert len(ts) == N, "received %d of %d" % (len(ts), N)
        return ts[0] - t_start, ts[-1] - ts[0], cpu, cpu_up


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill(args, topic):
    """mosquitto_pub -l in runs of 50,000: with more, its 16-bit message ids
    wrap and it takes an early PUBACK for the last one's and leaves."""
    t0 = time.monotonic()
    for start in range(0, N, 50000):
        n = min(50000, N - start)
        subprocess.run(["mosquitto_pub", "-q", "1", "-t", topic, "-l"] + args,
                       input=((BODY + "\n") * n).encode(), check=True,
                       stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def berth_round(d):
    up = Upstream(d)
    os.makedirs(os.path.join(d, "hub"))
    hub = hubkit.Hub(BERTH, os.path.join(d, "hub"), device="bench", modules={"a": {}},
                     routes={"up": "FROM /messages/* INTO $upstream"},
                     extra={"store_max_bytes": 1 << 30,
                            "upstream": {"url": "mqtt://127.0.0.1:%d" % up.port,
                                         "window": WINDOW}})
    hub.start()
    try:
        args = ["--unix", hub.socket, "-i", "bench/a", "-u", hubkit.username("bench", "a"),
                "-P", hub.token("a")]
        filled = fill(args, "devices/bench/modules/a/messages/events/$.on=o")
        queued = hub.control_call({"op": "status"})["queues"]["$upstream"]["messages"]
        assert queued == N, "the hub holds %d of %d" % (queued, N)
        result = up.measure(hub.proc.pid)
        status = hub.control_call({"op": "status"})["upstream"]
        assert status["acked"] == N and status["backlog"] == 0, status
        return (filled,) + result + (hub.rss_kib(),)
    finally:
        hub.stop()


def bridge_round(d):
    up = Upstream(d)
    sock = os.path.join(d, "edge.sock")
    edge = mosquitto(d, "edge", [
        "listener 0 %s" % sock, "allow_anonymous true", "max_queued_messages 0",
        "max_inflight_messages %d" % WINDOW,
        "connection cloud", "address 127.0.0.1:%d" % up.port, "topic devices/# out 1",
        "cleansession false", "bridge_protocol_version mqttv311", "restart_timeout 1 60",
        "bridge_max_packet_size 0"])
    wait_listening(path=sock)
    try:
        filled = fill(["--unix", sock, "-i", "bench-a"],
                      "devices/bench/modules/a/messages/events/$.on=o")
        result = up.measure(edge.pid)
        with open("/proc/%d/status" % edge.pid) as f:
            rss = [int(line.split()[1]) for line in f if line.startswith("VmRSS:")][0]
        return (filled,) + result + (rss,)
    finally:
        stop(edge)


def main():
    if os.geteuid() != 0:
        sys.exit("bench/drain.py: run as root")
    results = {"berth hub": [], "mosquitto bridge": []}
    for r in range(ROUNDS):
        for name, fn in (("berth hub", berth_round), ("mosquitto bridge", bridge_round)):
            d = tempfile.mkdtemp(prefix="berth-drain-")
            try:
                filled, reconnect, drained, cpu, cpu_up, rss = fn(d)
            finally:
                shutil.rmtree(d, ignore_errors=True)
            results[name].append(N / drained)
            print("%-17s round %d: %d stored in %.1f s; first sent %.2f s after the upstream "
                  "started; drained in %.2f s = %.0f msg/s; device CPU %.1f us/msg, upstream's "
                  "%.1f us/msg; device RSS %.1f MB"
                  % (name, r + 1, N, filled, reconnect, drained, N / drained, cpu * 1e6 / N,
                     cpu_up * 1e6 / N, rss / 1024), flush=True)
    best = {k: max(v) for k, v in results.items()}
    print("\ndrain of %d stored 256-byte messages, QoS 1, %d in flight (best of %d):"
          % (N, WINDOW, ROUNDS))
    for k, v in best.items():
        print("  %-17s %8.0f msg/s" % (k, v))
    print("  berth / mosquitto bridge: %.2f x" % (best["berth hub"] / best["mosquitto bridge"]))
    print("  target: at least 20,000 msg/s: %s" % ("met" if best["berth hub"] >= 20000
                                                 else "NOT met"))


if __name__ == "__main__":
    main()
