"""What a module instance can see and do: namespaces, root file system,
privileges, resources. Each test runs real instances with `berth run --rm`."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import wait_for
from helpers import needs_v1_controllers
from instance_helpers import (DEFAULT_CAPS, err, instance_cgroups, layer_dirs_of,  # noqa: F401
                              mounts_mentioning, out, probe_bin, processes_in_cgroups, run,
                              runner, shim_state, spec_file, test_images, unique)


def status_field(text, field):
    m = re.search(r"^%s:\s*(\S+)" % field, text, re.M)
    return m.group(1) if m else None


def test_pid_1_is_the_module(runner, test_images):
    p = run(runner, test_images.refs["base"], "sh", "-c", "echo $$; readlink /proc/1/exe")
    assert p.returncode == 0, err(p)
    assert out(p).split() == ["1", "/bin/busybox"]


NAMESPACES = ["mnt", "pid", "uts", "ipc", "cgroup", "net", "user"]


def host_namespaces():
    return {n: os.readlink("/proc/self/ns/" + n) for n in NAMESPACES}


@pytest.mark.parametrize("opts,shared", [
    ([], {"user"}),
    (["--network", "host"], {"user", "net"}),
    (["--userns"], set()),
])
def test_namespaces_are_the_instances_own(runner, test_images, opts, shared):
    """Mount, pid, uts, ipc and cgroup always; network unless --network host;
    user with --userns."""
    p = run(runner, *opts, test_images.refs["base"], "sh", "-c",
            "for n in %s; do echo $n $(readlink /proc/self/ns/$n); done" % " ".join(NAMESPACES))
    assert p.returncode == 0, err(p)
    inside = dict(l.split() for l in out(p).splitlines())
    host = host_namespaces()
    assert {n for n in NAMESPACES if inside[n] == host[n]} == shared


def test_root_is_the_image_and_the_hosts_tree_is_out_of_reach(runner, test_images):
    """pivot_root into the overlay, the old root detached: one mount at /,
    the overlay, and nothing of the host's file system left to reach."""
    p = run(runner, test_images.refs["base"], "sh", "-c",
            "ls /; awk '$5 == \"/\" {print $9}' /proc/self/mountinfo; "
            "cat /proc/self/mountinfo | wc -l; ls /proc/1/root/ | wc -l")
    lines = out(p).splitlines()
    i = lines.index("overlay")
    assert sorted(lines[:i]) == sorted(["bin", "data", "dev", "etc", "home", "proc", "root", "run",
                                        "sys", "tmp", "var"])
    assert len(lines) == i + 3  # one mount at /
    # pid 1's root is the same: no path back to the host's.
    assert lines[i + 2] == str(i)


def test_writes_go_to_the_upper_layer_and_never_to_the_image(runner, test_images):
    name = unique("upper")
    layers = layer_dirs_of(runner, test_images.refs["base"])
    top = os.path.join(layers[-1], "data", "image-file")
    with open(top) as f:
        before = f.read()
    p = runner("run", "--name", name, test_images.refs["base"], "sh", "-c",
               "echo changed > /data/image-file; rm /bin/cat; mkdir /new", check=False)
    try:
        assert p.returncode == 0, err(p)
        with open(top) as f:
            assert f.read() == before
        assert os.path.exists(os.path.join(layers[0], "bin", "cat"))
        upper = os.path.join(runner.root, "instances", name, "upper")
        with open(os.path.join(upper, "data", "image-file")) as f:
            assert f.read() == "changed\n"
        assert os.path.isdir(os.path.join(upper, "new"))
        # A whiteout hides the image's /bin/cat.
        st = os.lstat(os.path.join(upper, "bin", "cat"))
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (0, 0)
    finally:
        runner("shim", "rm", name, check=False)


def test_etc_files_name_the_instance_and_have_no_name_servers_without_network(runner,
                                                                                test_images):
    name = unique("etc")
    p = run(runner, "--name", name, test_images.refs["base"], "sh", "-c",
            "cat /etc/hostname /etc/hosts /etc/resolv.conf")
    # The control: all three files are there (cat read each one).
    assert p.returncode == 0, err(p)
    text = out(p)
    assert text.startswith(name + "\n")
    assert "127.0.0.1\tlocalhost\n" in text and "\t%s\n" % name in text
    assert "nameserver" not in text


def test_etc_hosts_and_resolv_conf_are_the_hosts_with_the_host_network(runner, test_images):
    p = run(runner, "--network", "host", test_images.refs["base"], "sh", "-c",
            "cat /etc/resolv.conf; echo --; cat /etc/hosts")
    resolv, hosts = out(p).split("--\n")
    for path, seen in (("/etc/resolv.conf", resolv), ("/etc/hosts", hosts)):
        with open(path) as f:
            assert seen == f.read()


def test_hostname_is_the_instance_name(runner, test_images):
    name = unique("host")
    p = run(runner, "--name", name, test_images.refs["base"], "sh", "-c",
            "hostname; cat /etc/hostname; echo $HOSTNAME")
    assert out(p).split() == [name] * 3


def test_host_processes_are_invisible(runner, test_images):
    p = run(runner, test_images.refs["base"], "probe", "exe")
    lines = out(p).splitlines()
    pids = sorted(int(l.split()[1]) for l in lines)
    # Only the module itself: no shim, no berth, no host process.
    assert pids == [1], lines
    assert "berth" not in out(p)


def test_status_shows_seccomp_no_new_privs_and_default_capabilities(runner, test_images):
    p = run(runner, test_images.refs["base"], "cat", "/proc/self/status")
    s = out(p)
    assert status_field(s, "Seccomp") == "2"
    assert status_field(s, "NoNewPrivs") == "1"
    assert int(status_field(s, "CapEff"), 16) == DEFAULT_CAPS
    assert int(status_field(s, "CapBnd"), 16) == DEFAULT_CAPS


def test_cap_add_and_cap_drop_change_the_sets(runner, test_images):
    p = run(runner, "--cap-add", "NET_ADMIN", "--cap-drop", "CHOWN", test_images.refs["base"],
            "cat", "/proc/self/status")
    eff = int(status_field(out(p), "CapEff"), 16)
    assert eff == (DEFAULT_CAPS | (1 << 12)) & ~(1 << 0)


def test_mount_keyctl_and_kexec_fail_inside(runner, test_images):
    p = run(runner, test_images.refs["base"], "sh", "-c",
            "probe mount; probe keyctl; probe kexec")
    res = dict(l.split(" ", 1) for l in out(p).splitlines())
    assert res == {"mount": "EPERM", "keyctl": "EPERM", "add_key": "EPERM",
                   "kexec_load": "EPERM"}


def test_writing_sysrq_trigger_fails(runner, test_images):
    """Bound read-only where the kernel has it (the mechanism is shown on a
    /proc file this kernel has by test_oci_bundle's
    test_a_read_only_proc_file_refuses_writes_and_a_missing_one_is_skipped)."""
    p = run(runner, test_images.refs["base"], "probe", "write", "/proc/sysrq-trigger")
    if os.path.exists("/proc/sysrq-trigger"):
        assert out(p).split() == ["open", "EROFS"]
    else:
        assert out(p).split() == ["open", "ENOENT"]


DEFAULT_MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                  "/sys/firmware", "/sys/devices/virtual/powercap"]
DEFAULT_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def test_default_masked_and_read_only_paths_apply(runner, test_images):
    """Every path of the engines' lists that this kernel has: masked ones are
    empty (a read-only tmpfs, or /dev/null bound read-only), the others are
    read-only mounts."""
    masked = [m for m in DEFAULT_MASKED if os.path.exists(m)]
    readonly = [r for r in DEFAULT_READONLY if os.path.exists(r)]
    assert masked and readonly
    script = "; ".join(
        ["echo %s $( ([ -d %s ] && ls -A %s || cat %s) | wc -c)" % (m, m, m, m)
         for m in masked + readonly] +
        ["grep ' %s ' /proc/self/mountinfo | cut -d' ' -f5,6" % m for m in masked + readonly])
    p = run(runner, test_images.refs["base"], "sh", "-c", script)
    lines = out(p).splitlines()
    sizes = dict(l.split() for l in lines[:len(masked) + len(readonly)])
    mounts = dict(l.split() for l in lines[len(masked) + len(readonly):])
    for m in masked:
        assert sizes[m] == "0", m
        assert mounts[m].startswith("ro,"), m
    for r in readonly:
        assert sizes[r] != "0", r  # still readable
        assert mounts[r].startswith("ro,"), r


def test_no_proc_or_sys_file_opens_for_writing_but_pressure_triggers(runner, test_images):
    """Every file under /proc (but the processes' own directories) and /sys
    that a mode bit calls writable, opened for writing (nothing written):
    only the pressure files take writes, as in the engines' containers (a
    trigger there is bounded by the kernel for unprivileged writers)."""
    p = run(runner, test_images.refs["base"], "sh", "-c",
            "for f in $( (find /proc -xdev -type f -perm -200; "
            "find /proc/sys /proc/bus /proc/fs /proc/irq /sys -type f -perm -200) 2>/dev/null | "
            "grep -v '^/proc/[0-9]'); do (: > $f) 2>/dev/null && echo $f; done; echo scanned")
    lines = out(p).splitlines()
    assert lines[-1] == "scanned", err(p)
    writable = sorted(set(l for l in lines[:-1]
                          if not l.startswith(("/proc/self/", "/proc/thread-self/"))))
    assert set(writable) <= {"/proc/pressure/cpu", "/proc/pressure/io", "/proc/pressure/memory",
                             "/proc/pressure/irq"}, writable


def test_proc_sys_is_read_only(runner, test_images):
    p = run(runner, test_images.refs["base"], "probe", "write", "/proc/sys/kernel/hostname")
    assert out(p).split() == ["open", "EROFS"]


def test_ptrace_of_the_shim_fails(runner, test_images, tmp_path):
    """The detached instance waits for the shim's host pid, then tries to attach."""
    name = unique("ptrace")
    share = tmp_path / "share"
    share.mkdir()
    spec = tmp_path / "spec.json"
    img_dirs = layer_dirs_of(runner, test_images.refs["base"])
    spec_file(str(spec), name=name, layer_dirs=img_dirs,
              args=["/bin/sh", "-c", "while [ ! -s /x/pid ]; do sleep 0.05; done; "
                    "probe ptrace $(cat /x/pid) > /x/out; probe ptrace 1 >> /x/out; "
                    "kill -9 $(cat /x/pid) 2>/dev/null; kill -9 -1; echo killed >> /x/out; "
                    "exec sleep 30"],
              env=["PATH=/bin"], binds=[{"source": str(share), "destination": "/x"}])
    shim_pid = int(out(runner("shim", "start", str(spec))))
    try:
        (share / "pid.tmp").write_text(str(shim_pid))
        os.rename(share / "pid.tmp", share / "pid")
        wait_for(lambda: (share / "out").exists() and
                 len((share / "out").read_text().splitlines()) == 3, 10, what="probe output")
        first, second, _ = (share / "out").read_text().splitlines()
        # The shim's pid does not exist in the instance; its own pid 1 cannot
        # be traced without CAP_SYS_PTRACE either.
        assert first in ("ptrace ESRCH", "ptrace EPERM")
        assert second == "ptrace EPERM"
        # Nor can it signal the shim: kill -9 by its host pid and to every
        # process (-1) reach only the instance's own namespace.
        st = shim_state(runner, name)
        assert st["alive"] == "1" and int(st["shim_pid"]) == shim_pid
    finally:
        runner("shim", "stop", "--grace", "0", name, check=False)
        runner("shim", "rm", name, check=False)


def test_writes_through_proc_exe_fail_and_berth_is_unreachable(runner, test_images):
    p = run(runner, test_images.refs["base"], "sh", "-c", "probe exe; sleep 0.1")
    lines = out(p).splitlines()
    assert lines, err(p)
    for l in lines:
        _, pid, target, result = l.split(" ")
        assert result != "ok", l
        assert "berth" not in target
    assert any(l.startswith("exe 1 /bin/busybox") for l in lines)


def test_no_descriptor_of_berth_reaches_the_instance(runner, test_images):
    p = run(runner, test_images.refs["base"], "probe", "fds")
    fds = sorted(int(l.split()[1]) for l in out(p).splitlines())
    assert fds == [0, 1, 2], out(p)


def test_working_directory_through_a_descriptor_is_refused(runner, test_images):
    p = run(runner, "--workdir", "/proc/self/fd/3", test_images.refs["base"], "pwd")
    assert p.returncode == 125
    assert "working directory" in err(p)


def test_network_none_has_only_loopback_up(runner, test_images):
    p = run(runner, "--network", "none", test_images.refs["base"], "sh", "-c",
            "ls /sys/class/net; ip -o link show lo")
    lines = out(p).splitlines()
    assert lines[0] == "lo"
    assert "UP" in lines[1]
    assert len(lines) == 2


def test_network_host_sees_the_host_interfaces(runner, test_images):
    p = run(runner, "--network", "host", test_images.refs["base"], "ls", "/sys/class/net")
    assert sorted(out(p).split()) == sorted(os.listdir("/sys/class/net"))


def test_sys_is_read_only(runner, test_images):
    p = run(runner, test_images.refs["base"], "sh", "-c", "touch /sys/x 2>&1; echo rc=$?")
    assert "Read-only file system" in out(p)


def test_read_only_root_refuses_writes(runner, test_images):
    p = run(runner, "--read-only", test_images.refs["base"], "sh", "-c",
            "touch /newfile 2>&1; echo rc=$?; touch /dev/shm/ok && echo shm-writable")
    assert "Read-only file system" in out(p)
    assert "shm-writable" in out(p)


def test_read_only_bind_refuses_writes_and_host_file_is_unchanged(runner, test_images, tmp_path):
    d = tmp_path / "vol"
    d.mkdir()
    (d / "f").write_text("host\n")
    p = run(runner, "-v", "%s:/vol:ro" % d, test_images.refs["base"], "sh", "-c",
            "cat /vol/f; echo changed > /vol/f 2>&1; echo rc=$?; touch /vol/new 2>&1")
    assert out(p).startswith("host\n")
    assert "Read-only file system" in out(p)
    assert (d / "f").read_text() == "host\n"
    assert os.listdir(d) == ["f"]


def test_writable_bind_reaches_the_host(runner, test_images, tmp_path):
    d = tmp_path / "vol"
    d.mkdir()
    p = run(runner, "-v", "%s:/vol" % d, test_images.refs["base"], "sh", "-c",
            "echo from-instance > /vol/out")
    assert p.returncode == 0, err(p)
    assert (d / "out").read_text() == "from-instance\n"


def host_dir_untouched(path):
    return os.listdir(path) == ["marker"] and not mounts_mentioning(path)


def test_image_with_dev_symlinked_to_a_host_path_leaves_the_host_untouched(runner, test_images):
    p = run(runner, test_images.refs["devlink"], "sh", "-c",
            "test -c /dev/null && echo devnull; echo x > /dev/null; touch /dev/shm/y; "
            "readlink /dev")
    assert p.returncode == 0, err(p)
    assert out(p).split() == ["devnull", test_images.host_dev]
    assert host_dir_untouched(test_images.host_dev)


def test_image_with_proc_symlinked_to_a_host_path_leaves_the_host_untouched(runner, test_images):
    p = run(runner, test_images.refs["proclink"], "sh", "-c",
            "cat /proc/self/status | grep -c NoNewPrivs; ls /proc/keys 2>&1 | head -1")
    assert p.returncode == 0, err(p)
    assert out(p).split()[0] == "1"
    assert host_dir_untouched(test_images.host_proc)


def test_image_with_dangling_dev_symlink_gets_dev_inside_its_root(runner, test_images):
    p = run(runner, test_images.refs["devdangling"], "sh", "-c", "test -c /dev/zero && echo ok")
    assert out(p).strip() == "ok", err(p)
    assert not os.path.exists("/nonexistent/dev")


def test_mount_destinations_and_workdir_symlinked_to_host_paths_stay_inside(runner, test_images,
                                                                           tmp_path):
    """/etc/resolv.conf, /etc/hosts (climbing out with ..), /etc/hostname
    (dangling), a volume's destination and the working directory all point
    at host paths in the image: each resolves inside the instance's root."""
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "f").write_text("volume\n")
    p = run(runner, "--name", unique("links"), "-v", "%s:/vol" % vol, "--workdir", "/work/sub",
            test_images.refs["mountlinks"], "sh", "-c",
            "cat /vol/f; grep -c localhost /etc/hosts; cat /etc/hostname | wc -l; "
            "grep -c nameserver /etc/resolv.conf; pwd; touch here; "
            "ls %s" % test_images.host_misc)
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    # getcwd names the directory the symlink led to, inside the root.
    assert lines[:5] == ["volume", "2", "1", "0", test_images.host_misc + "/sub"]
    # What the instance made at those paths is in its own root.
    assert sorted(lines[5:]) == sorted(["hosts", "missing", "resolv.conf", "sub", "vol"])
    assert host_dir_untouched(test_images.host_misc)
    assert os.listdir(vol) == ["f"]


def test_memory_hog_is_oom_killed_and_reported(runner, test_images):
    p = run(runner, "--memory", "32m", "--memory-swap", "32m", test_images.refs["base"],
            "dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1")
    assert p.returncode == 137
    assert "out-of-memory" in err(p)


def test_fork_bomb_is_held_by_the_pids_limit(runner, test_images):
    p = run(runner, "--pids-limit", "20", test_images.refs["base"], "sh", "-c",
            # The inner shell forks until it cannot (and then gives up); the
            # outer one uses builtins only until the sleeps are gone.
            "sh -c 'i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done' 2>/tmp/err; "
            "set -- /proc/[0-9]*; n=$#; kill -9 -1; wait; echo $n; grep -c fork /tmp/err")
    procs, failures = (int(x) for x in out(p).split())
    assert procs <= 20
    assert failures > 0


@needs_v1_controllers
def test_zombies_of_a_module_that_never_reaps_count_and_go_with_it(base_runner):
    """A pid 1 that never waits keeps its dead children as zombies: they stay
    in its namespace and cgroup, count against the pids limit, and go when
    it exits."""
    name = unique("zombies")
    proc = subprocess.Popen(base_runner.cmd("run", "--rm", "--name", name, "--pids-limit", "12",
                                            base_runner.ref, "probe", "zombies", "50", "2"),
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"zombies 11 EAGAIN\n"
        cgs = instance_cgroups(name)
        pids = processes_in_cgroups(cgs)
        pids_cg = [c for c in cgs if "/pids/" in c][0]

        def counted():
            with open(os.path.join(pids_cg, "pids.current")) as f:
                return f.read().strip()
        # The probe and its eleven unreaped children, listed as zombies.
        wait_for(lambda: counted() == "12", 15, what="twelve processes counted")
        pid1 = min(pids)
        with open("/proc/%d/task/%d/children" % (pid1, pid1)) as f:
            kids = [int(k) for k in f.read().split()]
        assert len(kids) == 11

        def states():
            got = set()
            for k in kids:
                with open("/proc/%d/stat" % k) as f:
                    got.add(f.read().rsplit(")", 1)[1].split()[0])
            return got
        wait_for(lambda: states() == {"Z"}, 15, what="eleven zombies")
        pids |= set(kids)
        assert proc.wait(10) == 0
    finally:
        stop_quietly(proc)
    assert_nothing_left(base_runner, name, pids)


def test_cpus_sets_the_cfs_quota_and_cpu_shares_the_shares(runner, test_images):
    p = run(runner, "--cpus", "0.5", "--cpu-shares", "512", test_images.refs["base"], "sh", "-c",
            "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us "
            "/sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || "
            "cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight")
    assert out(p).split() in (["50000", "100000", "512"], ["50000", "100000", "20"])


def start_run(runner, name, script, *opts, prefix=()):
    """berth run --rm in the background; returns once the module printed
    "ready", with the host pids of every process in its cgroups."""
    proc = subprocess.Popen(list(prefix) + runner.cmd("run", "--rm", "--name", name, *opts,
                                                      runner.ref, "sh", "-c", script),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    return proc


def assert_nothing_left(runner, name, pids):
    for pid in pids:
        assert not os.path.exists("/proc/%d" % pid), pid
    assert instance_cgroups(name) == []
    assert not mounts_mentioning(name)
    assert not os.path.exists(os.path.join(runner.root, "instances", name))
    assert not os.path.exists(os.path.join(runner.root, "oci", "leases", name))


def let_finish(proc):
    """Answers the module's `read x`, which then exits 0."""
    proc.stdin.write(b"\n")
    proc.stdin.close()
    return proc.wait(10)


def stop_quietly(proc):
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture
def base_runner(runner, test_images):
    runner.ref = test_images.refs["base"]
    return runner


def test_after_exit_no_process_mount_or_cgroup_remains(base_runner):
    name = unique("gone")
    proc = start_run(base_runner, name, "sleep 30 & sleep 30 & echo ready; read x")
    try:
        pids = processes_in_cgroups(instance_cgroups(name))
        assert len(pids) == 3
        assert mounts_mentioning(name, pid=min(pids))  # in the instance's namespace
        assert let_finish(proc) == 0
    finally:
        stop_quietly(proc)
    assert_nothing_left(base_runner, name, pids)


def test_a_daemonized_process_does_not_outlive_the_module(base_runner):
    """A double fork in a new session (a daemon) leaves the module's process
    tree, not its pid namespace or cgroup."""
    name = unique("daemon")
    proc = start_run(base_runner, name, "setsid sh -c 'sleep 60 & exit' & wait; "
                     "echo ready; read x")
    try:
        pids = processes_in_cgroups(instance_cgroups(name))
        assert len(pids) == 2  # the module's shell and the daemon's sleep
        assert let_finish(proc) == 0
    finally:
        stop_quietly(proc)
    assert_nothing_left(base_runner, name, pids)


def comms(pids):
    names = []
    for pid in pids:
        try:
            with open("/proc/%d/comm" % pid) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return sorted(names)


@pytest.mark.parametrize("script,signals,status", [
    ("trap 'kill $!; exit 143' TERM; sleep 30 & echo ready; wait", [signal.SIGTERM], 143),
    ("sleep 30 & echo ready; wait", [signal.SIGINT], 128 + signal.SIGINT),
    # pid 1 without a handler ignores SIGINT; the second one kills.
    ("sleep 30 & echo ready; exec sleep 31", [signal.SIGINT, signal.SIGINT],
     128 + signal.SIGKILL),
])
def test_an_interrupted_run_leaves_nothing_behind(base_runner, script, signals, status):
    name = unique("intr")
    proc = start_run(base_runner, name, script)
    try:
        want = ["sleep", "sleep"] if "exec" in script else ["sh", "sleep"]
        wait_for(lambda: comms(processes_in_cgroups(instance_cgroups(name))) == sorted(want),
                 15, what="the module and its child")
        pids = processes_in_cgroups(instance_cgroups(name))
        for sig in signals:
            proc.send_signal(sig)
            time.sleep(0.2)
        assert proc.wait(10) == status
    finally:
        stop_quietly(proc)
    assert_nothing_left(base_runner, name, pids)


@needs_v1_controllers
def test_instance_cannot_leave_its_cgroup_or_change_its_limits(base_runner):
    name = unique("cgwrite")
    targets = " ".join("/sys/fs/cgroup/%s" % f for f in (
        "cgroup.procs", "pids.max", "memory.max", "cpu.max", "cgroup.subtree_control",
        "*/cgroup.procs", "*/tasks", "pids/pids.max", "memory/memory.limit_in_bytes",
        "cpu/cpu.cfs_quota_us", "unified/cgroup.subtree_control"))
    proc = start_run(base_runner, name, "for f in %s; do [ -e $f ] && (echo $$ > $f) 2>/dev/null "
                     "&& echo wrote $f; done > /tmp/r; "
                     "mkdir /sys/fs/cgroup/pids/escape 2>/dev/null "
                     "&& echo made a cgroup >> /tmp/r; echo ready; read x; cat /tmp/r; "
                     "cut -d: -f3 /proc/self/cgroup | sort -u; cat /sys/fs/cgroup/pids/pids.max"
                     % targets,
                     "--pids-limit", "20", "--memory", "64m")
    try:
        cgs = instance_cgroups(name)
        pids = processes_in_cgroups(cgs)
        pids_max = [c for c in cgs if "/pids/" in c][0]
        with open(os.path.join(pids_max, "pids.max")) as f:
            assert f.read().strip() == "20"
        assert let_finish(proc) == 0
        report = proc.stdout.read().decode().splitlines()
    finally:
        stop_quietly(proc)
    # Nothing written, and the instance sees its own cgroup as the root.
    assert report == ["/", "20"]
    assert len(pids) == 1


def test_mounts_never_propagate_back_to_the_caller(base_runner, tmp_path):
    """berth run started in a mount namespace where every mount is shared:
    the instance's root, /proc, /dev and binds stay in its own namespace."""
    vol = tmp_path / "vol"
    vol.mkdir()
    name = unique("prop")
    proc = start_run(base_runner, name, "echo ready; read x", "-v", "%s:/vol" % vol,
                     prefix=["unshare", "--mount", "--propagation", "shared"])
    try:
        # unshare execs berth run: the same pid, in the shared namespace.
        with open("/proc/%d/mountinfo" % proc.pid) as f:
            seen = f.read()
        assert "shared:" in seen
        assert name not in seen
        # The control: the instance's own namespace has them.
        assert mounts_mentioning(name, pid=min(processes_in_cgroups(instance_cgroups(name))))
        assert let_finish(proc) == 0
    finally:
        stop_quietly(proc)


def test_user_namespace_maps_root_to_an_unprivileged_range(runner, test_images):
    name = unique("userns")
    p = runner("run", "--name", name, "--userns", test_images.refs["base"], "sh", "-c",
               "cat /proc/self/uid_map; id -u; stat -c %u /bin/busybox; touch /created",
               check=False)
    try:
        assert p.returncode == 0, err(p)
        lines = out(p).split("\n")
        assert lines[0].split() == ["0", "100000", "65536"]
        assert lines[1:3] == ["0", "0"]
        upper = os.path.join(runner.root, "instances", name, "upper")
        st = os.stat(os.path.join(upper, "created"))
        assert (st.st_uid, st.st_gid) == (100000, 100000)
    finally:
        runner("shim", "rm", name, check=False)


def test_device_flag_binds_the_node_with_only_the_given_access(runner, test_images):
    p = run(runner, "--device", "/dev/loop-control:/dev/lc:r", test_images.refs["base"], "sh",
            "-c", "test -c /dev/lc && echo node; exec 3< /dev/lc && echo read-ok; "
            "(exec 4> /dev/lc) 2>&1; true")
    lines = out(p).splitlines()
    assert lines[:2] == ["node", "read-ok"], err(p)
    assert "Operation not permitted" in lines[2]


def test_device_not_given_is_not_reachable(runner, test_images):
    """Even made by hand with mknod (CAP_MKNOD is in the default set), a device
    outside the instance's rules cannot be opened: /dev/mem, the host's
    console, a disk."""
    p = run(runner, test_images.refs["base"], "sh", "-c",
            "mknod /tmp/mem c 1 1 && mknod /tmp/console c 5 1 && mknod /tmp/disk b 254 0 && "
            "for d in mem console disk; do (exec 3< /tmp/$d) 2>&1; done; true")
    lines = out(p).splitlines()
    assert len(lines) == 3, err(p)
    for l in lines:
        assert "Operation not permitted" in l


HOST_NODES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
              "/dev/loop-control"]


def inode_state(path):
    st = os.stat(path)
    return st.st_mode, st.st_uid, st.st_gid, st.st_ctime_ns


def chmod_chown_script(paths):
    """chmod and chown each path to what the host has already, so the
    host's nodes stay usable even if the attempt got through."""
    cmds = []
    for inside, host in paths:
        st = os.stat(host)
        cmds.append("chmod %o %s; chown %d:%d %s" % (st.st_mode & 0o7777, inside, st.st_uid,
                                                      st.st_gid, inside))
    return "; ".join(cmds) + "; true"


def test_device_nodes_and_masked_files_are_not_host_inodes(runner, test_images):
    """chmod and chown on /dev/null and the other nodes, on a --device node and
    on the masked /proc files reach the instance's own nodes or fail: the
    host's device nodes keep their mode, owner and change time."""
    masked = [p for p in ("/proc/keys", "/proc/timer_list", "/proc/kcore", "/proc/sched_debug")
              if os.path.exists(p)]
    assert masked
    targets = [(p, p) for p in HOST_NODES[:-1]] + [("/dev/lc", "/dev/loop-control")]
    targets += [(p, "/dev/null") for p in masked]
    before = {p: inode_state(p) for p in HOST_NODES}
    for extra in ([], ["--userns"]):
        p = run(runner, *extra, "--device", "/dev/loop-control:/dev/lc:r",
                test_images.refs["base"], "sh", "-c", chmod_chown_script(targets))
        assert p.returncode == 0, err(p)
        assert {q: inode_state(q) for q in HOST_NODES} == before, extra


def test_default_devices_are_usable_and_of_the_instance(runner, test_images):
    p = run(runner, test_images.refs["base"], "sh", "-c",
            "echo x > /dev/null && head -c 3 /dev/zero | wc -c && head -c 3 /dev/urandom | "
            "wc -c; stat -c '%t:%T %a' /dev/null /dev/zero /dev/full /dev/random "
            "/dev/urandom /dev/tty; grep -cE ' /dev/(null|zero|full|random|urandom|tty) ' "
            "/proc/self/mountinfo; ls /dev; awk '$5 ~ /^\\/dev/ {print $5, $8}' "
            "/proc/self/mountinfo")
    lines = out(p).split("\n")
    assert lines[:2] == ["3", "3"], err(p)
    assert lines[2:9] == ["1:3 666", "1:5 666", "1:7 666", "1:8 666", "1:9 666", "5:0 666", "0"]
    assert lines[9:24] == sorted(["fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm",
                                  "stderr", "stdin", "stdout", "tty", "urandom", "zero"]) + [
        "/dev tmpfs"]
    assert sorted(lines[24:-1]) == ["/dev/mqueue mqueue", "/dev/pts devpts", "/dev/shm tmpfs"]


def test_privileged_gets_every_capability_and_no_seccomp(runner, test_images):
    p = run(runner, "--privileged", test_images.refs["base"], "cat", "/proc/self/status")
    s = out(p)
    with open("/proc/self/status") as f:
        ours = int(status_field(f.read(), "CapBnd"), 16)
    # Every capability this machine lets us have.
    assert int(status_field(s, "CapEff"), 16) == ours
    assert status_field(s, "Seccomp") == "0"
