#!/usr/bin/python3
"""The hub's durable store against mosquitto with persistence on, both on a
Unix socket, their data on the same loop-mounted ext4 (the root file system
here is mounted with `discard`), driven by the same clients:

  throughput   mosquitto_pub -l sends N QoS 1 messages of 256 bytes as module
               a (-M 20, its default window, then -M 64), mosquitto_sub -C N
               receives them as module b (through a route on the hub, a plain
               topic on mosquitto); wall time from the first send to the last
               receipt; three runs of each, the median compared. The hub's
               PUBACK waits for fdatasync; mosquitto's does not (it saves a
               snapshot every autosave_interval).
  written      bytes the broker made the device write per message during the
               throughput runs and the million-message fill (/proc/<pid>/io
               write_bytes), against 1.5 x 256 + 64 = 448
  latency      5,000 msg/s offered for 5 s (5 messages each millisecond),
               QoS 1, send to receipt: median, p99, p99.9, by bench/mqtt_latency.c
               (a client in C on the hub's codec)
  overhead     bytes of the hub's log per stored 256-byte message, minus 256
  1,000,000    a million messages for module b while it is away: the broker's
               RSS with 10 idle clients connected, and the time from a restart
               (the hub SIGKILLed; mosquitto stopped with SIGTERM, which saves
               its database) to b's first message, page cache warm and dropped

First WARM_RUNS x 55,000 messages (-M 64) go through each broker on a fresh store, so
that the runs above measure a store in use: the hub's segment files have
been written, removed and are written again.

usage: bench/hub.py [BERTH_BIN] [N] [PENDING] [WARM_RUNS]   (as root, under the e2e lock)
"""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import hubkit  # noqa: E402

BERTH = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "build", "berth")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 50000
PENDING = int(sys.argv[3]) if len(sys.argv) > 3 else 1000000
WARM_RUNS = int(sys.argv[4]) if len(sys.argv) > 4 else 4
WARM = 55000  # about one 16 MiB segment of the hub's log
REPEAT = 3  # throughput runs of each window per broker; the median is compared
SIZE = 256
RATE = 5000
WEAR_TARGET = 1.5 * SIZE + 64
TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
LATENCY = os.path.join(TOP, "build", "bench", "mqtt_latency")


def build_latency_client():
    subprocess.run(["make", "-s", "-C", TOP, "build/libberth.a"], check=True)
    os.makedirs(os.path.dirname(LATENCY), exist_ok=True)
    subprocess.run(["cc", "-std=gnu11", "-D_GNU_SOURCE", "-O2", "-I" + TOP, "-o", LATENCY,
                    os.path.join(TOP, "bench", "mqtt_latency.c"),
                    os.path.join(TOP, "build", "libberth.a"), "-lpthread"], check=True)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def write_bytes(pid):
    with open("/proc/%d/io" % pid) as f:
        for line in f:
            if line.startswith("write_bytes:"):
                return int(line.split()[1])


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)


class Raw:
    """A raw MQTT 3.1.1 connection on a Unix socket."""

    def __init__(self, path, client_id, user=None, password=None, clean=True):
        self.r = hubkit.Raw(path, timeout=30)
        self.r.send(hubkit.connect_packet(client_id, user, password, clean=clean))
        first, body = self.r.recv_packet()
        assert first == 0x20 and body[1] == 0, body
        self.pid = 0

    def subscribe(self, topic):
        self.r.send(hubkit.packet(0x82, struct.pack(">H", 1) + hubkit.enc_str(topic) + b"\x01"))
        assert self.r.recv_packet()[0] == 0x90

    def publish(self, topic, payload):
        self.pid = self.pid % 65535 + 1
        self.r.send(hubkit.packet(0x32, hubkit.enc_str(topic) + struct.pack(">H", self.pid) +
                                  payload))

    def close(self):
        self.r.close()


class Broker:
    def __init__(self, d):
        self.dir = d

    def raw(self, module, clean=True):
        return Raw(self.socket, *self.identity(module), clean=clean)


class BerthHub(Broker):
    name = "berth hub"

    def __init__(self, d):
        super().__init__(d)
        mods = {m: {} for m in ["a", "b"] + ["p%d" % i for i in range(3)] +
                ["idle%d" % i for i in range(10)]}
        self.hub = hubkit.Hub(BERTH, d, device="bench", modules=mods, routes={
            "ab": 'FROM /messages/* INTO BrokeredEndpoint("/modules/b/inputs/in1")'})
        self.socket = self.hub.socket
        self.out_topic = "devices/bench/modules/%s/messages/events/$.on=o"
        self.in_topic = "devices/bench/modules/b/#"
        self.start()

    def start(self):
        ready = self.hub.log_text().count("hub ready")
        self.hub.start()
        hubkit.wait_for(lambda: self.hub.log_text().count("hub ready") > ready, 60,
                        what="the hub")
        self.pid = self.hub.proc.pid

    def identity(self, module):
        return ("bench/" + module, hubkit.username("bench", module), self.hub.token(module))

    def client_args(self, module):
        cid, user, password = self.identity(module)
        return ["-i", cid, "-u", user, "-P", password]

    def topic(self, module):
        return self.out_topic % module

    def kill(self):
        self.hub.proc.kill()
        self.hub.proc.wait()
        self.hub.log.close()

    def stop(self):
        self.hub.stop()

    def store_bytes(self):
        """The log's records: its files less the preallocated, unwritten
        rest of the active segment (at most one segment, whatever is held)."""
        return self.hub.control_call({"op": "status"})["store"]["bytes"]


class Mosquitto(Broker):
    name = "mosquitto 2.0 (persistence on)"

    def __init__(self, d):
        super().__init__(d)
        self.socket = os.path.join(d, "mq.sock")
        self.conf = os.path.join(d, "mq.conf")
        os.makedirs(os.path.join(d, "mqdata"), exist_ok=True)
        with open(self.conf, "w") as f:
            f.write("user root\nlistener 0 %s\nallow_anonymous true\npersistence true\n"
                    "persistence_location %s/\nmax_queued_messages 0\nmax_queued_bytes 0\n"
                    "max_inflight_messages 0\n" % (self.socket, os.path.join(d, "mqdata")))
        self.out_topic = "bench/out"
        self.in_topic = "bench/out"
        self.log = open(os.path.join(d, "mq.log"), "ab")
        self.start()

    def start(self):
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        hubkit.wait_for(lambda: os.path.exists(self.socket), 300, what="mosquitto")
        self.pid = self.proc.pid

    def identity(self, module):
        return ("bench/" + module, None, None)

    def client_args(self, module):
        return ["-i", "bench/" + module]

    def topic(self, module):
        return self.out_topic

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(120)

    def store_bytes(self):
        return dir_bytes(os.path.join(self.dir, "mqdata"))


def throughput(b, n, inflight):
    sub = subprocess.Popen(["mosquitto_sub", "--unix", b.socket, "-q", "1", "-t", b.in_topic,
                            "-C", str(n)] + b.client_args("b"), stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    lines = (("x" * (SIZE - 1)) + "\n").encode() * n
    w0 = write_bytes(b.pid)
    start = time.monotonic()
    subprocess.run(["mosquitto_pub", "--unix", b.socket, "-q", "1", "-M", str(inflight), "-t",
                    b.topic("a"), "-l"] + b.client_args("a"), input=lines, check=True)
    sub.wait(600)
    took = time.monotonic() - start
    return n / took, (write_bytes(b.pid) - w0) / n


def latency(b, seconds=5):
    """bench/mqtt_latency.c: a client in C, so the figure is the broker's."""
    args = [LATENCY, b.socket, str(RATE), str(seconds), str(SIZE)]
    for module, topic in (("a", b.topic("a")), ("b", b.in_topic)):
        cid, user, password = b.identity(module)
        args += [cid, user or "-", password or "-", topic]
    out = subprocess.run(args, stdout=subprocess.PIPE, check=True, timeout=120).stdout.decode()
    f = out.split()
    return float(f[1].rstrip("/s")), int(f[3]), int(f[5]), float(f[7]), float(f[9]), float(f[11])


def fill(b, n):
    """n messages for module b while it is away, from four publishers
    (bench/mqtt_latency.c fill: 64 in flight, every PUBACK waited for)."""
    r = b.raw("b", clean=False)
    r.subscribe(b.in_topic)
    r.close()
    pubs = []
    per = n // 4
    w0 = write_bytes(b.pid)
    start = time.monotonic()
    for i, m in enumerate(["a", "p0", "p1", "p2"]):
        count = per if i < 3 else n - 3 * per
        cid, user, password = b.identity(m)
        pubs.append(subprocess.Popen([LATENCY, "fill", b.socket, str(count), str(SIZE), cid,
                                      user or "-", password or "-", b.topic(m)]))
    for p in pubs:
        assert p.wait(3600) == 0
    return n / (time.monotonic() - start), (write_bytes(b.pid) - w0) / n


def idle_rss(b):
    clients = []
    for i in range(10):
        c = b.raw("idle%d" % i)
        c.subscribe("$iothub/twin/res/#" if isinstance(b, BerthHub) else "bench/idle%d" % i)
        clients.append(c)
    time.sleep(6)  # the hub trims its heap every 5 s
    rss = rss_kib(b.pid)
    for c in clients:
        c.close()
    return rss


def restart(b, drop_cache):
    # Killed, mosquitto would lose everything since its last autosave: it
    # is stopped with SIGTERM, which saves its database. The hub is killed.
    if isinstance(b, BerthHub):
        b.kill()
    else:
        b.stop()
        if not drop_cache:
            print("  its database, saved at exit: %.1f bytes per pending message" % (
                b.store_bytes() / PENDING), flush=True)
    if drop_cache:
        subprocess.run(["sync"])
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    t0 = time.monotonic()
    if isinstance(b, BerthHub):
        b.hub.log = open(b.hub.log_path, "ab")
        b.hub.proc = subprocess.Popen([BERTH, "hub", "--config", b.hub.config_path],
                                      stdout=b.hub.log, stderr=subprocess.STDOUT)
        b.pid = b.hub.proc.pid
    else:
        b.proc = subprocess.Popen(["mosquitto", "-c", b.conf], stdout=b.log,
                                  stderr=subprocess.STDOUT)
        b.pid = b.proc.pid
    while True:
        try:
            r = b.raw("b", clean=False)
            break
        except (OSError, AssertionError, TypeError):
            if time.monotonic() - t0 > 600:
                raise
            time.sleep(0.005)
    r.r.s.settimeout(600)
    while True:
        p = r.r.recv_packet()
        if p[0] & 0xf0 == 0x30:
            break
    took = time.monotonic() - t0
    r.close()
    return took


def main():
    build_latency_client()
    mnt = tempfile.mkdtemp(prefix="berth-bench-")
    img = mnt + ".img"
    subprocess.run(["fallocate", "-l", "3G", img], check=True)
    # Inode tables and journal written now: ext4's lazy initialisation
    # would otherwise write them in the background while the brokers run.
    subprocess.run(["mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                    img], check=True)
    subprocess.run(["mount", "-o", "loop", img, mnt], check=True)
    results = {}
    try:
        for cls in (BerthHub, Mosquitto):
            d = os.path.join(mnt, cls.__name__)
            os.makedirs(d)
            b = cls(d)
            res = results[cls] = {}
            try:
                print("== %s" % b.name, flush=True)
                # A store in use: the hub's segments have been written,
                # removed and their files written again (a fresh store
                # pays the file system for each new block it syncs into).
                # (mosquitto_pub -l stops early on much longer inputs: the
                # warm-up is four runs of 55,000, each about one segment.)
                for i in range(WARM_RUNS):
                    rate, wear = throughput(b, WARM, 64)
                    res.setdefault("fresh", rate)
                    print("%s (-M 64): %d messages in %.2f s: %.0f msg/s; device writes "
                          "%.0f bytes/message" % ("fresh store" if i == 0 else "warm-up", WARM,
                                                   WARM / rate, rate, wear), flush=True)
                for inflight in (20, 64):
                    runs = []
                    for _ in range(REPEAT):
                        rate, wear = throughput(b, N, inflight)
                        runs.append((rate, wear))
                        print("throughput (-M %d): %d messages in %.2f s: %.0f msg/s; device "
                              "writes %.0f bytes/message" % (inflight, N, N / rate, rate, wear),
                              flush=True)
                    rate = sorted(r for r, _ in runs)[REPEAT // 2]
                    wear = sorted(w for _, w in runs)[REPEAT // 2]
                    res["throughput%d" % inflight] = rate
                    res["wear%d" % inflight] = wear
                    print("throughput (-M %d), median of %d: %.0f msg/s; device writes %.0f "
                          "bytes/message" % (inflight, REPEAT, rate, wear), flush=True)
                offered, got, sent, med, p99, p999 = latency(b)
                res["p99"] = p99
                print("latency at %.0f msg/s offered (%d of %d delivered): median %.0f us, "
                      "p99 %.0f us, p99.9 %.0f us" % (offered, got, sent, med, p99, p999),
                      flush=True)
                base = b.store_bytes()
                rate, wear = fill(b, PENDING)
                res["wear_fill"] = wear
                print("%d pending stored at %.0f msg/s (four publishers, 64 in flight each); "
                      "device writes %.0f bytes/message" % (PENDING, rate, wear), flush=True)
                if isinstance(b, BerthHub):
                    per = (b.store_bytes() - base) / PENDING
                    print("  %.1f bytes of log per %d-byte message: %.1f bytes of overhead" % (
                        per, SIZE, per - SIZE), flush=True)
                print("RSS with %d pending and 10 idle clients: %.2f MB" % (
                    PENDING, idle_rss(b) / 1024), flush=True)
                for cold in (False, True):
                    took = restart(b, cold)
                    print("restart over %d pending to the first delivery (page cache %s): "
                          "%.2f s" % (PENDING, "dropped" if cold else "warm", took), flush=True)
                if isinstance(b, BerthHub):
                    lines = [ln for ln in b.hub.log_text().splitlines() if "held in" in ln]
                    print("  " + lines[-1].split(": ", 1)[1])
            finally:
                b.stop()
        hub, mq = results[BerthHub], results[Mosquitto]
        print("== ratios (berth / mosquitto)")
        print("fresh store, -M 64: %.2f (for reference)" % (hub["fresh"] / mq["fresh"]))
        for k in ("throughput20", "throughput64"):
            print("%s: %.2f (target 1.0)" % (k, hub[k] / mq[k]))
        print("hub p99 at %d msg/s: %.0f us (target 2000); device writes per message %.0f "
              "(-M 20), %.0f (-M 64), %.0f (four publishers) (target %.0f)" % (
                  RATE, hub["p99"], hub["wear20"], hub["wear64"], hub["wear_fill"],
                  WEAR_TARGET))
    finally:
        subprocess.run(["umount", "-l", mnt], check=False)
        shutil.rmtree(mnt, ignore_errors=True)
        os.unlink(img)


if __name__ == "__main__":
    main()
