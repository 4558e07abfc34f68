#!/usr/bin/python3
"""A fleet managed from the cloud: N devices (default 20), each a berth
daemon in a network namespace of its own with its own state and device key
(tests/e2e/fleetkit.py), all connected to one IoT Hub stand-in
(tests/iothub/). Three deployments are set on every device, one after the
other, as an operator would in IoT Hub:

  1. one module (every device pulls its image from the test registry)
  2. a second module added
  3. the first module changed (its environment: a new instance)

For each, convergence is the time from the first device's deployment being
set in IoT Hub to the last device reporting it applied (lastDesiredStatus
200 at that version) with every module running, as IoT Hub's twins show it.

usage: bench/fleet.py [BERTH_BIN] [N] [ROUNDS]   (bench/fleet.sh; needs root)
"""
import os
import shutil
import sys
import tempfile
import time

TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))
import images  # noqa: E402
from conftest import Registry  # noqa: E402
from fleetkit import Fleet  # noqa: E402

BERTH = sys.argv[1] if len(sys.argv) > 1 else os.path.join(TOP, "build", "berth")
N = int(sys.argv[2]) if len(sys.argv) > 2 else 20
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 1

STEPS = [("one module, pulled", {"sensor": None}),
         ("a module added", {"sensor": None, "filter": {"LEVEL": "1"}}),
         ("a module changed", {"sensor": {"RATE": "2"}, "filter": {"LEVEL": "1"}})]


def main():
    tmp = tempfile.mkdtemp(prefix="berth-fleet-")
    reg = Registry(os.path.join(tmp, "registry"))
    fleet = None
    results = {name: [] for name, _ in STEPS}
    try:
        os.makedirs(os.path.join(tmp, "img"))
        images.push_image(os.path.join(tmp, "img"), reg.host, "busybox", "1",
                          [images.Layer(images.busybox_layer())])
        port = int(reg.host.rsplit(":", 1)[1])
        for r in range(ROUNDS):
            fleet = Fleet(os.path.join(tmp, "fleet%d" % r), BERTH, N, port, "busybox:1")
            t0 = time.time()
            fleet.start()
            print("round %d: %d devices started in %.1f s" % (r + 1, N, time.time() - t0),
                  flush=True)
            for name, modules in STEPS:
                start = time.time()
                versions = fleet.deploy(modules)
                set_in = time.time() - start
                took = fleet.wait_converged(versions, set(modules), timeout=600) + set_in
                results[name].append(took)
                print("  %-20s set on %d devices in %.2f s, converged on all in %.2f s" % (
                    name, N, set_in, took), flush=True)
            fleet.close()
            fleet = None
    finally:
        if fleet:
            fleet.close()
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("\nconvergence of %d devices (seconds, from the first device's deployment set "
          "in IoT Hub to the last device reporting it applied, modules running):" % N)
    for name, _ in STEPS:
        ts = results[name]
        print("  %-20s %s" % (name, " ".join("%.2f" % t for t in ts)))


if __name__ == "__main__":
    main()
