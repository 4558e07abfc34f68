"""`berth exec`: a program in a running module, entered by the module's shim,
with the module's namespaces, cgroup, root, user and privileges, and no way
back to the host."""
import os
import pty
import select
import subprocess
import time

from conftest import wait_for
from daemon_fixtures import daemons, image  # noqa: F401 - fixtures
from daemonlib import cgroup_pids, manifest, module, unique

# The module writes a file of its own, so a test can tell its root file
# system from the host's.
MODULE = ["/bin/sh", "-c", "echo from-the-module > /tmp/module-file; exec sleep 1000"]


def started(daemons, image, **kw):
    name = unique("exec")
    d = daemons(manifest({name: module(image, MODULE, **kw)})).start()
    d.wait_status(name)
    wait_for(lambda: d.berth("exec", name, "cat", "/tmp/module-file", check=False).returncode == 0,
             10, what="the module's file")
    return d, name


def exec_out(d, *args, check=True, input=None):
    p = d.berth("exec", *args, check=check, input=input)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def pid1_of(d, name):
    pids = sorted(cgroup_pids(name))
    for pid in pids:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("NSpid:") and line.split()[-1] == "1":
                    return pid
    raise AssertionError("no pid 1 in %s: %s" % (name, pids))


def test_exec_sees_the_instance_namespaces_hostname_and_root_not_the_hosts(daemons, image,
                                                                             tmp_path):
    d, name = started(daemons, image, create={"Hostname": "inside-host"})
    host_file = tmp_path / "host-only-file"
    host_file.write_text("host\n")
    pid1 = pid1_of(d, name)
    rc, out, _ = exec_out(d, name, "/bin/sh", "-c",
                          "cat /tmp/module-file; hostname; readlink /proc/self/ns/pid; "
                          "readlink /proc/self/ns/mnt; readlink /proc/1/exe; "
                          "ls %s 2>&1; echo $$" % host_file)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "from-the-module"
    assert lines[1] == "inside-host"
    assert lines[2] == os.readlink("/proc/%d/ns/pid" % pid1) != os.readlink("/proc/self/ns/pid")
    assert lines[3] == os.readlink("/proc/%d/ns/mnt" % pid1) != os.readlink("/proc/self/ns/mnt")
    assert lines[4] in ("/bin/busybox", "/bin/sleep")
    assert "No such file" in lines[5]
    # Its own pid is one of the instance's, far below the host's.
    assert 1 < int(lines[6]) < 100


def test_exec_runs_in_the_instance_cgroup_with_its_limits_and_privileges(daemons, image):
    d, name = started(daemons, image, create={"HostConfig": {"PidsLimit": 50,
                                                             "Memory": 64 * 1024 * 1024}})
    pid1 = pid1_of(d, name)
    fields = ("CapEff", "CapBnd", "NoNewPrivs", "Seccomp")
    p = subprocess.Popen(d.berth.cmd("exec", name, "/bin/sh", "-c",
                                     "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' "
                                     "/proc/self/status; cat /proc/self/cgroup; echo end; "
                                     "exec sleep 30"),
                         stdout=subprocess.PIPE)
    try:
        lines = []
        while not lines or lines[-1] != "end":
            lines.append(p.stdout.readline().decode().rstrip("\n"))
        before = set(cgroup_pids(name))
        wait_for(lambda: len(cgroup_pids(name)) >= 2, 10, what="the exec'd sleep in the cgroup")
        assert len(before) >= 2
        mine = {}
        with open("/proc/%d/status" % pid1) as f:
            for line in f:
                if line.split(":")[0] in fields:
                    mine[line.split(":")[0]] = line.rstrip("\n")
        assert {l.split(":")[0]: l for l in lines[:4]} == mine
        assert mine["NoNewPrivs"].split()[1] == "1" and mine["Seccomp"].split()[1] == "2"
        # Its cgroup is the root of the instance's cgroup namespace.
        cg = lines[4:-1]
        assert cg and all(l.endswith(":/") for l in cg), cg
        # The instance's own limits apply to it: seen from inside.
        rc, out, _ = exec_out(d, name, "/bin/sh", "-c",
                              "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max "
                              "2>/dev/null; true")
        assert out.split() == ["50"], out
    finally:
        p.kill()
        p.wait()


def test_exec_passes_the_exit_status_and_stdio_through(daemons, image):
    d, name = started(daemons, image)
    assert exec_out(d, name, "/bin/sh", "-c", "echo out; echo err >&2; exit 7",
                    check=False) == (7, "out\n", "err\n")
    rc, out, err = exec_out(d, "-i", name, "/bin/sh", "-c", "tr a-z A-Z", input=b"hello\n")
    assert (rc, out) == (0, "HELLO\n")
    # Without -i the program's stdin is empty, not the caller's.
    rc, out, err = exec_out(d, name, "/bin/cat", input=b"not read\n")
    assert (rc, out) == (0, "")
    rc, out, err = exec_out(d, name, "no-such-program", check=False)
    assert rc == 127 and "no-such-program" in err
    rc, out, err = exec_out(d, name, "/etc/passwd", check=False)
    assert rc == 126, err


def test_exec_takes_user_environment_and_working_directory(daemons, image):
    d, name = started(daemons, image, env={"FROM_MODULE": "yes"})
    rc, out, _ = exec_out(d, "-u", "1000:1000", "-e", "EXTRA=1", "-w", "/tmp", name,
                          "/bin/sh", "-c", "id -u; id -g; pwd; echo $FROM_MODULE $EXTRA")
    assert out.splitlines() == ["1000", "1000", "/tmp", "yes 1"]
    # The module's own user and directory without options.
    rc, out, _ = exec_out(d, name, "/bin/sh", "-c", "id -u; pwd")
    assert out.splitlines() == ["0", "/"]


def test_exec_leaves_no_descriptor_of_the_host_and_no_way_out(daemons, image):
    d, name = started(daemons, image)
    rc, out, _ = exec_out(d, name, "/bin/sh", "-c",
                          "for f in /proc/self/fd/*; do echo $f $(readlink $f); done; "
                          "readlink /proc/self/cwd; readlink /proc/self/root")
    fds = [l for l in out.splitlines() if l.startswith("/proc/self/fd/")]
    targets = {l.split()[0].rsplit("/", 1)[1]: l.split()[1] for l in fds if len(l.split()) > 1}
    # stdio are pipes; besides them only the shell's own look at the directory.
    assert all(targets[n].startswith("pipe:") for n in ("0", "1", "2")), targets
    assert all(n in ("0", "1", "2") or t.startswith("/proc/") for n, t in targets.items()), targets
    assert out.splitlines()[-2:] == ["/", "/"]
    # A working directory through a descriptor of the host's (CVE-2024-21626)
    # is refused: there is none to go through.
    rc, out, err = exec_out(d, "-w", "/proc/self/fd/3", name, "/bin/pwd", check=False)
    assert rc != 0
    assert exec_out(d, "-w", "/tmp", name, "/bin/pwd")[:2] == (0, "/tmp\n")  # a real directory
    # From inside, nothing of the instance names berth: every process's exe
    # is the module's own program.
    p = subprocess.Popen(d.berth.cmd("exec", name, "/bin/sleep", "30"))
    try:
        time.sleep(0.5)
        rc, out, _ = exec_out(d, name, "/bin/sh", "-c",
                              "for p in /proc/[0-9]*; do readlink $p/exe; done")
        exes = set(out.split())
        assert exes and exes <= {"/bin/busybox", "/bin/sleep", "/bin/sh"}, exes
    finally:
        p.kill()
        p.wait()


def test_exec_with_a_terminal(daemons, image):
    d, name = started(daemons, image)
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(d.berth.cmd()[0], d.berth.cmd("exec", "-it", name, "/bin/sh", "-c",
                                                "tty; stty size; read x; echo got-$x"))
    out = b""
    deadline = time.monotonic() + 15
    sent = False
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        if b"/dev/pts/" in out and not sent:
            os.write(fd, b"typed\r")
            sent = True
    _, status = os.waitpid(pid, 0)
    text = out.decode(errors="replace")
    assert os.WEXITSTATUS(status) == 0, text
    assert "/dev/pts/0" in text and "got-typed" in text, text


def test_exec_into_a_module_that_is_not_running_fails(daemons, image):
    d, name = started(daemons, image)
    assert exec_out(d, name, "/bin/true")[0] == 0  # while it runs
    d.deploy(manifest({name: module(image, MODULE, status="stopped")}))
    d.wait_status(name, "stopped")
    rc, out, err = exec_out(d, name, "/bin/true", check=False)
    assert rc == 125 and "not running" in err, err
    other = unique("never")
    rc, out, err = exec_out(d, other, "/bin/true", check=False)
    assert rc == 125 and "no instance" in err, err
