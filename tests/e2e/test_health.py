"""Health checks: Docker's Healthcheck from the image and from createOptions,
run by each module's shim; their status in `berth list`; restartPolicy
on-unhealthy restarts an unhealthy module, always does not."""
import json
import os

import images
from conftest import wait_for
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import cgroup_pids, manifest, module, unique
from helpers import push

MS = 1000000  # nanoseconds
SLEEP = ["/bin/sh", "-c", "exec sleep 1000"]
# Healthy for a few seconds, then sick: /dev/shm is new with every start.
SICKENS = ["/bin/sh", "-c", "sleep 3; touch /dev/shm/sick; exec sleep 1000"]
CHECK_SICK = {"Test": ["CMD-SHELL", "test ! -e /dev/shm/sick"], "Interval": 300 * MS,
              "Timeout": 2000 * MS, "Retries": 2}


def health(d, name):
    m = d.module(name)
    return (m.get("health") or {}).get("status"), m


def wait_health(d, name, status, timeout=20):
    try:
        wait_for(lambda: health(d, name)[0] == status, timeout, interval=0.1,
                 what="%s %s" % (name, status))
    except TimeoutError:
        raise AssertionError("%s: %s\n%s" % (name, d.module(name), d.log_text()))
    return d.module(name)


def test_a_passing_check_shows_healthy_in_list(daemons, image):
    name = unique("healthy")
    check = {"Test": ["CMD", "/bin/true"], "Interval": 200 * MS, "StartPeriod": 5000 * MS}
    d = daemons(manifest({name: module(image, SLEEP, create={"Healthcheck": check})})).start()
    m = wait_health(d, name, "healthy")
    assert m["runtimeStatus"] == "running"
    assert m["health"]["failingStreak"] == 0 and m["health"]["lastExitCode"] == 0
    assert m["health"]["lastCheckUtc"].endswith("Z")
    row = [l for l in d.berth("list").stdout.decode().splitlines() if l.startswith(name)][0]
    assert "Up " in row and "(healthy)" in row, row
    # The check ran in the instance: its processes are gone again.
    assert len(cgroup_pids(name)) == 1


def test_a_failing_check_restarts_the_module_under_on_unhealthy(daemons, image):
    name = unique("onunh")
    d = daemons(manifest({name: module(image, SICKENS, restart="on-unhealthy",
                                       create={"Healthcheck": CHECK_SICK})})).start()
    wait_health(d, name, "healthy")
    d.wait_status(name, "running", timeout=30, restartCount=1)
    assert "was unhealthy and stopped" in d.log_text()
    # It runs again with a new /dev/shm: healthy once more.
    wait_health(d, name, "healthy")


def test_a_failing_check_does_not_restart_the_module_under_always(daemons, image):
    name, control = unique("always"), unique("control")
    d = daemons(manifest({
        name: module(image, SICKENS, restart="always", create={"Healthcheck": CHECK_SICK}),
        control: module(image, SICKENS, restart="on-unhealthy",
                        create={"Healthcheck": CHECK_SICK})})).start()
    m = wait_health(d, name, "unhealthy")
    assert m["runtimeStatus"] == "unhealthy"
    assert m["health"]["failingStreak"] >= 2 and m["health"]["lastExitCode"] == 1
    row = [l for l in d.berth("list").stdout.decode().splitlines() if l.startswith(name)][0]
    assert "(unhealthy)" in row, row
    # The module under on-unhealthy beside it was restarted meanwhile.
    d.wait_status(control, "running", timeout=20, restartCount=1)
    m = d.module(name)
    assert m["restartCount"] == 0 and m["runtimeStatus"] == "unhealthy", m


def test_a_check_that_hangs_is_killed_at_its_timeout(daemons, image):
    name = unique("hang")
    check = {"Test": ["CMD", "/bin/sleep", "1000"], "Interval": 200 * MS,
             "Timeout": 500 * MS, "Retries": 1}
    d = daemons(manifest({name: module(image, SLEEP, create={"Healthcheck": check})})).start()
    m = wait_health(d, name, "unhealthy")
    assert m["health"]["lastExitCode"] == -1
    assert "timeout" in m["health"]["lastOutput"]
    # No check is left behind: once between checks, only the module runs.
    wait_for(lambda: len(cgroup_pids(name)) == 1, 15, what="the hung check to be gone")


def test_a_check_that_floods_its_output_is_cut(daemons, image):
    name = unique("flood")
    check = {"Test": ["CMD-SHELL", "yes flood; exit 1"], "Interval": 200 * MS,
             "Timeout": 1000 * MS, "Retries": 1}
    d = daemons(manifest({name: module(image, SLEEP, create={"Healthcheck": check})})).start()
    m = wait_health(d, name, "unhealthy")
    st = json.load(open(os.path.join(d.instance_dir(name), "state.json")))
    assert len(st["health"]["output"]) <= 512
    assert st["health"]["exit_code"] in (-1, 1)
    # The shim stays small however much the check writes.
    shim = m["shimPid"]
    with open("/proc/%d/status" % shim) as f:
        rss = [int(l.split()[1]) for l in f if l.startswith("VmRSS:")][0]
    assert rss < 4096, rss


def test_the_image_check_applies_with_create_options_over_it_and_none_turns_it_off(
        daemons, registry, tmp_path):
    repo = unique("hc-image")
    push(tmp_path, registry, repo, [images.Layer(images.busybox_layer())], config={
        "Cmd": SLEEP, "Healthcheck": {"Test": ["CMD-SHELL", "exit 3"], "Interval": 60000 * MS,
                                      "Retries": 1}})
    ref = "%s/%s:1" % (registry.host, repo)
    from_image, overridden, off = unique("img"), unique("over"), unique("off")
    d = daemons(manifest({
        # The image's check (exit 3) with a shorter interval from createOptions.
        from_image: module(ref, create={"Healthcheck": {"Interval": 200 * MS}}),
        overridden: module(ref, create={"Healthcheck": {"Test": ["CMD", "/bin/true"],
                                                        "Interval": 200 * MS}}),
        off: module(ref, create={"Healthcheck": {"Test": ["NONE"]}})})).start()
    m = wait_health(d, from_image, "unhealthy")
    assert m["health"]["lastExitCode"] == 3
    wait_health(d, overridden, "healthy")
    m = d.wait_status(off)
    assert "health" not in m and "(" not in m["description"], m


def test_a_bad_healthcheck_refuses_the_deployment(daemons, image):
    d = daemons(manifest({})).start()
    bad = manifest({unique("bad"): module(image, SLEEP, create={
        "Healthcheck": {"Test": ["CMD"], "Interval": 10}})})
    p = d.deploy(bad, check=False)
    assert p.returncode == 1
    assert "Healthcheck" in p.stderr.decode(), p.stderr
