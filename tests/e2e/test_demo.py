"""`make demo` keeps working: the whole pipeline of examples/demo.sh, from a
local registry through the daemon, the hub, routes, twins and a direct method."""
import os
import re
import subprocess

from conftest import REPO_TOP


def test_demo_runs_the_sensor_to_filter_pipeline(berth_bin):
    for m in ("sensor", "filter"):
        assert os.path.exists(os.path.join(os.path.dirname(berth_bin), "examples", m)), \
            "build the demo modules first (make examples)"
    env = dict(os.environ, NO_COLOR="1")
    p = subprocess.run([os.path.join(REPO_TOP, "examples", "demo.sh")], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=300, env=env)
    out = p.stdout.decode(errors="replace")
    assert p.returncode == 0, out
    # berth run: an isolated instance.
    assert "Seccomp:\t2" in out and "NoNewPrivs:\t1" in out
    # Readings above 25 reach the filter through the route; it sends alerts.
    assert re.search(r"filter: \d+\.\d+ > 28\.00 on readings: alert sent upstream", out), out
    # The alerts routed $upstream wait in the store.
    m = re.search(r"^\$upstream\s+(\d+)", out, re.M)
    assert m and int(m.group(1)) > 0, out
    # The direct method answered and the module reported its new threshold.
    assert '{"threshold":31.00}' in out
    assert re.search(r'"threshold": 31', out), out
    # The cloud: alerts arrived, waited while it was away, drained when it returned.
    m = re.search(r"IoT Hub has received (\d+) alerts", out)
    assert m and int(m.group(1)) > 0, out
    m = re.search(r"IoT Hub had (\d+) alerts before the outage and has (\d+) now", out)
    assert m and int(m.group(2)) > int(m.group(1)), out
    # A deployment changed in the cloud: the device runs the new module and reports it.
    assert re.search(r"^sensor2\s+running", out, re.M), out
    assert 'lastDesiredStatus: {"code": 200' in out, out
    assert re.search(r"^  sensor2\s+running", out, re.M), out
    assert re.search(r"demo: done, \d+ alerts reached the cloud", out), out
