"""`berth run`: image configuration and overrides, stdio, exit statuses,
names, and what stays behind with and without --rm."""
import os
import pty
import select
import signal
import subprocess
import time

import images
from conftest import wait_for
from helpers import cgroup_pids
from instance_helpers import (err, instance_cgroups, out, probe_bin,  # noqa: F401
                              processes_in_cgroups, run, runner, shim_state, test_images, unique,
                              wait_gone)


def test_exit_code_of_the_module_is_the_exit_code_of_run(runner, test_images):
    assert run(runner, test_images.refs["base"], "sh", "-c", "exit 42").returncode == 42


def test_module_killed_by_a_signal_exits_128_plus_the_signal(runner, test_images):
    name = unique("killed")
    proc = subprocess.Popen(runner.cmd("run", "--rm", "--name", name, test_images.refs["base"],
                                       "sh", "-c", "echo ready; sleep 30"),
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        os.kill(min(cgroup_pids(name)), signal.SIGKILL)
        assert proc.wait(10) == 128 + signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigterm_to_run_reaches_the_module(runner, test_images):
    proc = subprocess.Popen(runner.cmd("run", "--rm", test_images.refs["base"], "sh", "-c",
                                       "trap 'echo got-term; exit 7' TERM; echo ready; "
                                       "while true; do sleep 0.05; done"),
                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 7
        assert proc.stdout.read() == b"got-term\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def instance_pid1(name):
    pids = cgroup_pids(name)
    return min(pids) if pids else None


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def test_second_interrupt_kills_a_module_that_ignores_the_first(runner, test_images):
    name = unique("int")
    proc = subprocess.Popen(runner.cmd("run", "--rm", "--name", name, test_images.refs["base"],
                                       "sleep", "30"))
    try:
        # pid 1 of a namespace without a handler ignores SIGINT from outside.
        wait_for(lambda: instance_pid1(name) and comm(instance_pid1(name)) == "sleep", 10,
                 what="sleep to run")
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 128 + signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_image_entrypoint_cmd_env_workdir_and_user_apply(runner, test_images):
    p = run(runner, test_images.refs["config"])
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    assert lines[0] == "entry"
    assert lines[1].startswith("uid=1000(app) gid=1000(app)")
    assert lines[2] == "/home/app"
    assert "FROM_IMAGE=image" in lines
    assert "HOME=/home/app" in lines


def test_command_line_overrides_the_image_configuration(runner, test_images):
    p = run(runner, "-e", "OVERRIDE=cli", "-e", "NEW=1", "--workdir", "/tmp", "--user", "0:50",
            test_images.refs["config"], "id; pwd; env | sort")
    lines = out(p).splitlines()
    assert lines[0].startswith("uid=0(root) gid=50(staff)")
    assert lines[1] == "/tmp"
    assert "OVERRIDE=cli" in lines and "NEW=1" in lines and "FROM_IMAGE=image" in lines


def test_entrypoint_flag_replaces_entrypoint_and_cmd(runner, test_images):
    p = run(runner, "--entrypoint", "/bin/echo", test_images.refs["config"], "replaced")
    assert out(p) == "replaced\n"


def test_user_name_resolves_in_the_image_with_its_groups(runner, test_images):
    p = run(runner, "--user", "app", test_images.refs["base"], "id")
    assert out(p).strip() == "uid=1000(app) gid=1000(app) groups=29(audio),44(video),1000(app)"


def test_user_and_group_names_resolve_in_the_image(runner, test_images):
    p = run(runner, "--user", "nobody:staff", test_images.refs["base"], "sh", "-c", "id -u; id -g")
    assert out(p).split() == ["65534", "50"]


def test_unknown_user_fails_naming_it(runner, test_images):
    p = run(runner, "--user", "ghost", test_images.refs["base"], "true")
    assert p.returncode == 125
    assert 'user "ghost" is not in the image\'s /etc/passwd' in err(p)


def test_missing_program_fails_with_the_reason_and_127(runner, test_images):
    p = run(runner, test_images.refs["base"], "/app")
    assert p.returncode == 127
    assert "exec /app: No such file or directory" in err(p)
    p = run(runner, test_images.refs["base"], "no-such-program")
    assert p.returncode == 127
    assert "exec no-such-program: not found in PATH" in err(p)


def test_stdin_is_passed_through(runner, test_images):
    p = run(runner, test_images.refs["base"], "sh", "-c", "read a; echo got:$a",
            input=b"hello\n")
    assert out(p) == "got:hello\n"


def test_stdout_and_stderr_stay_separate(runner, test_images):
    p = run(runner, test_images.refs["base"], "sh", "-c", "echo out; echo err >&2")
    assert out(p) == "out\n"
    assert err(p) == "err\n"


def test_terminal_when_stdin_is_a_terminal(runner, test_images):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(runner.binary, runner.cmd("run", "--rm", test_images.refs["base"], "sh", "-c",
                                           "tty; echo $TERM; stty size"))
    data = b""
    while True:
        r, _, _ = select.select([fd], [], [], 10)
        if not r:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, data
    lines = data.decode().split()
    assert lines[0] == "/dev/pts/0"
    assert lines[1] == "xterm"


def test_generated_names_are_unique_and_from_the_image(runner, test_images):
    a = run(runner, test_images.refs["base"], "hostname")
    b = run(runner, test_images.refs["base"], "hostname")
    assert out(a).startswith("berth-run-base-")
    assert out(a) != out(b)


def test_without_rm_the_instance_and_its_lease_stay_and_with_rm_nothing_does(runner,
                                                                                test_images):
    name = unique("keep")
    p = runner("run", "--name", name, test_images.refs["base"], "sh", "-c",
               "echo kept > /file; exit 3", check=False)
    try:
        assert p.returncode == 3
        d = os.path.join(runner.root, "instances", name)
        with open(os.path.join(d, "upper", "file")) as f:
            assert f.read() == "kept\n"
        assert os.path.exists(os.path.join(runner.root, "oci", "leases", name))
        st = shim_state(runner, name)
        assert st["status"] == "exited" and st["exit_code"] == "3"
        assert instance_cgroups(name) == []
        # The name stays taken until the instance is removed.
        again = run(runner, "--name", name, test_images.refs["base"], "true")
        assert again.returncode == 125
        assert "already exists" in err(again)
    finally:
        runner("shim", "rm", name, check=False)
    assert not os.path.exists(os.path.join(runner.root, "instances", name))
    assert not os.path.exists(os.path.join(runner.root, "oci", "leases", name))
    # With --rm, the same run leaves nothing behind.
    p = run(runner, "--name", name, test_images.refs["base"], "sh", "-c", "touch /x")
    assert p.returncode == 0, err(p)
    assert not os.path.exists(os.path.join(runner.root, "instances", name))
    assert not os.path.exists(os.path.join(runner.root, "oci", "leases", name))
    assert instance_cgroups(name) == []


def test_name_of_a_running_instance_is_refused(runner, test_images):
    name = unique("busy")
    proc = subprocess.Popen(runner.cmd("run", "--rm", "--name", name, test_images.refs["base"],
                                       "sh", "-c", "echo ready; read x"),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        p = run(runner, "--name", name, test_images.refs["base"], "true")
        assert p.returncode == 125
        assert "instance %s is running" % name in err(p)
    finally:
        proc.stdin.close()
        proc.wait(10)


def test_run_pulls_an_image_that_is_not_in_the_store(berth, registry, tmp_path):
    images.push_image(tmp_path, registry.host, "berth-run-pulled", "1",
                      [images.Layer(images.busybox_layer())])
    p = berth("run", "--rm", "--insecure", "%s/berth-run-pulled:1" % registry.host,
              "echo", "pulled-and-ran", check=False)
    assert p.returncode == 0, err(p)
    assert out(p) == "pulled-and-ran\n"


def test_invalid_options_are_refused_before_anything_runs(runner, test_images):
    for args in (["--memory", "lots"], ["--network", "bridge"], ["--cpus", "-1"],
                 ["-v", "relative:/x"], ["--name", "bad/name"]):
        p = run(runner, *args, test_images.refs["base"], "true")
        assert p.returncode == 125, args
        assert err(p).startswith("berth: "), args


def test_image_with_seventy_layers_runs_with_every_layer_visible(berth, registry, tmp_path):
    """Seventy layers do not fit one page of overlay options as paths: the
    layers are then named by descriptor."""
    layers = [images.Layer(images.busybox_layer())]
    layers += [images.Layer([images.dir("layers"), images.file("layers/%02d" % i, "%d\n" % i)])
               for i in range(69)]
    images.push_image(tmp_path, registry.host, "berth-run-many", "1", layers)
    p = berth("run", "--rm", "--insecure", "%s/berth-run-many:1" % registry.host, "sh", "-c",
              "ls /layers | wc -l; cat /layers/00 /layers/68; "
              "grep -c 'lowerdir=/proc/self/fd/' /proc/mounts", check=False)
    assert p.returncode == 0, err(p)
    assert out(p).split() == ["69", "0", "68", "1"]


def kill_run(runner, ref, name, *opts):
    """Starts berth run --rm, SIGKILLs it once the module runs, and waits
    for the module's processes to go (they die with it)."""
    proc = subprocess.Popen(runner.cmd("run", "--rm", "--name", name, *opts, ref, "sh", "-c",
                                       "sleep 60 & echo ready; wait"), stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        pids = processes_in_cgroups(instance_cgroups(name))
        assert len(pids) == 2
    finally:
        proc.kill()
        proc.wait()
    for pid in pids:
        wait_gone(pid)
    return os.path.join(runner.root, "instances", name)


def left_behind(runner, name):
    return {"dir": os.path.exists(os.path.join(runner.root, "instances", name)),
            "lease": os.path.exists(os.path.join(runner.root, "oci", "leases", name)),
            "cgroup": instance_cgroups(name) != []}


def test_a_killed_run_is_taken_back_by_the_next_run_of_its_name(runner, test_images):
    name = unique("killed")
    kill_run(runner, test_images.refs["base"], name)
    # SIGKILL leaves no chance to clean up: the instance's processes die
    # with berth run (parent death signal), the rest stays.
    assert left_behind(runner, name) == {"dir": True, "lease": True, "cgroup": True}
    p = run(runner, "--name", name, test_images.refs["base"], "echo", "again")
    assert p.returncode == 0, err(p)
    assert out(p) == "again\n"
    assert left_behind(runner, name) == {"dir": False, "lease": False, "cgroup": False}


def test_gc_removes_what_killed_runs_left_and_keeps_stopped_instances(runner, test_images):
    killed, kept = unique("killed"), unique("kept")
    assert runner("run", "--name", kept, test_images.refs["base"], "true").returncode == 0
    try:
        dirs = [kill_run(runner, test_images.refs["base"], killed),
                kill_run(runner, test_images.refs["base"], killed + "-ro", "--userns")]
        # gc leaves directories changed in the last two seconds alone (a
        # start may be in progress): these are made older.
        past = time.time() - 10
        for d in dirs + [os.path.join(runner.root, "instances", kept)]:
            os.utime(d, (past, past))
        p = runner("gc")
        for n in (killed, killed + "-ro"):
            assert "removed what a killed run of instance %s left" % n in out(p)
            assert left_behind(runner, n) == {"dir": False, "lease": False, "cgroup": False}
        assert left_behind(runner, kept) == {"dir": True, "lease": True, "cgroup": False}
    finally:
        runner("shim", "rm", kept, check=False)
