"""Stopping modules: SIGTERM to the daemon stops the modules of a startupOrder
group together, groups in reverse order, each module with its grace period;
a deployment that removes several modules stops them together too."""
import os
import signal
import time

from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import cgroup_pids, manifest, module, unique

# pid 1 of its namespace without a handler: SIGTERM does nothing to it.
IGNORES_TERM = ["/bin/sh", "-c", "exec sleep 1000"]
GRACE = 4
ISSUE_GRACE = 10  # the figure of the issue: five such modules, gone in about 10 s, not 50


def stubborn(image, n, grace=GRACE, **kw):
    names = [unique("stub%d" % i) for i in range(n)]
    return names, {name: module(image, IGNORES_TERM, create={"StopTimeout": grace}, **kw)
                   for name in names}


def test_sigterm_stops_a_group_of_stubborn_modules_in_one_grace_period(daemons, image):
    names, mods = stubborn(image, 5, grace=ISSUE_GRACE)
    d = daemons(manifest(mods)).start()
    for name in names:
        d.wait_status(name)
        assert cgroup_pids(name)
    began = time.monotonic()
    d.proc.send_signal(signal.SIGTERM)
    d.proc.wait(90)
    took = time.monotonic() - began
    print("five modules ignoring SIGTERM, %d s grace: the daemon gone in %.1f s"
          % (ISSUE_GRACE, took))
    # Each module got its grace period, and they ran at the same time: five
    # after one another would take 50 s.
    assert ISSUE_GRACE - 0.5 <= took < ISSUE_GRACE + 4, took
    assert all(cgroup_pids(name) == [] for name in names)
    assert d.log_text().count("stopping (the daemon is stopping)") == 5


def test_groups_stop_in_reverse_startup_order(daemons, image, tmp_path):
    out = tmp_path / "stops"
    out.mkdir()
    # Each writes when its SIGTERM came, then takes a second to leave.
    script = ("trap 'read up idle < /proc/uptime; echo $up > /out/$IOTEDGE_MODULEID; "
              "sleep 1; exit 0' TERM; while true; do sleep 0.1; done")
    first = [unique("first%d" % i) for i in range(2)]
    last = [unique("last%d" % i) for i in range(2)]
    mods = {}
    for group, names in ((1, first), (2, last)):
        for name in names:
            mods[name] = module(image, ["/bin/sh", "-c", script], order=group,
                                create={"StopTimeout": GRACE,
                                        "HostConfig": {"Binds": ["%s:/out" % out]}})
    d = daemons(manifest(mods)).start()
    for name in first + last:
        d.wait_status(name)
    time.sleep(0.5)  # the traps are set
    d.terminate()
    when = {name: float((out / name).read_text()) for name in first + last}
    # The later group was told first, both of its modules together; the
    # earlier group once it had gone (a second later).
    assert abs(when[last[0]] - when[last[1]]) < 0.5
    assert abs(when[first[0]] - when[first[1]]) < 0.5
    assert min(when[f] for f in first) - max(when[l] for l in last) >= 0.9


def test_a_deployment_removing_several_stubborn_modules_stops_them_together(daemons, image):
    names, mods = stubborn(image, 5)
    keep = unique("keep")
    mods[keep] = module(image, IGNORES_TERM)
    d = daemons(manifest(mods)).start()
    for name in names + [keep]:
        d.wait_status(name)
    assert all(cgroup_pids(name) for name in names)
    began = time.monotonic()
    d.deploy(manifest({keep: module(image, IGNORES_TERM)}))
    for name in names:
        d.wait_gone(name, timeout=30)
    took = time.monotonic() - began
    assert GRACE - 0.5 <= took < 2 * GRACE, took
    assert all(cgroup_pids(name) == [] for name in names)
    # The module that stays was left alone.
    assert d.module(keep)["runtimeStatus"] == "running" and cgroup_pids(keep)
    assert not os.path.exists(d.instance_dir(names[0]))
