"""`berth logs`: every line stamped when it arrived; --timestamps shows the
stamps, --since and --until select by them, as `docker logs`."""
import datetime
import re
import time

from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import manifest, module, unique

STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$")


def logs(d, name, *opts):
    return d.berth("logs", name, *opts).stdout.decode()


def test_logs_select_by_time_and_show_stamps(daemons, image):
    name = unique("logs")
    cmd = ["/bin/sh", "-c", "echo early; echo also-early >&2; sleep 2; echo late; "
           "exec sleep 1000"]
    d = daemons(manifest({name: module(image, cmd)})).start()
    d.wait_log(name, "late")
    assert logs(d, name) == "early\nalso-early\nlate\n"
    stamped = [STAMPED.match(l) for l in logs(d, name, "--timestamps").splitlines()]
    assert all(stamped), stamped
    assert [m.group(2) for m in stamped] == ["early", "also-early", "late"]
    when = [datetime.datetime.strptime(m.group(1)[:26], "%Y-%m-%dT%H:%M:%S.%f")
            .replace(tzinfo=datetime.timezone.utc) for m in stamped]
    now = datetime.datetime.now(datetime.timezone.utc)
    assert all(abs((now - w).total_seconds()) < 60 for w in when)
    assert (when[2] - when[0]).total_seconds() >= 1.5
    # Between the two: RFC 3339 and Unix seconds.
    middle = when[0] + (when[2] - when[0]) / 2
    rfc = middle.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert logs(d, name, "--since", rfc) == "late\n"
    assert logs(d, name, "--until", rfc) == "early\nalso-early\n"
    assert logs(d, name, "--since", "%.3f" % middle.timestamp()) == "late\n"
    # A duration back from now takes both; one too short takes none.
    assert logs(d, name, "--since", "10m") == "early\nalso-early\nlate\n"
    time.sleep(0.2)
    assert logs(d, name, "--since", "100ms") == ""
    assert logs(d, name, "--since", "10m", "--tail", "1", "-t").endswith(" late\n")
    p = d.berth("logs", name, "--since", "yesterday", check=False)
    assert p.returncode == 2 and "--since yesterday" in p.stderr.decode()
