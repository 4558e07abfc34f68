"""`berth oci run --bundle DIR ID`: OCI runtime bundles, starting from the
config.json templates of crun and runc, with each supported field checked
from inside and unsupported ones refused by name."""
import json
import os
import subprocess

import pytest

from helpers import needs_v1_controllers
from instance_helpers import busybox_rootfs, err, instance_cgroups, out, unique


def template(tool, tmp_path):
    d = tmp_path / ("spec-" + tool)
    d.mkdir()
    subprocess.run([tool, "spec"], cwd=str(d), check=True)
    with open(d / "config.json") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory):
    return busybox_rootfs(str(tmp_path_factory.mktemp("bundle-rootfs") / "rootfs"))


class Bundle:
    def __init__(self, berth, tmp_path, rootfs, tool="crun"):
        self.berth = berth
        self.dir = tmp_path / "bundle"
        self.dir.mkdir()
        os.symlink(rootfs, str(self.dir / "rootfs"))
        self.config = template(tool, tmp_path)
        self.config["process"]["terminal"] = False

    def run(self, *args, **changes):
        if args:
            self.config["process"]["args"] = list(args)
        with open(self.dir / "config.json", "w") as f:
            json.dump(self.config, f)
        self.id = unique("oci")
        return self.berth("oci", "run", "--bundle", str(self.dir), self.id, check=False, **changes)


@pytest.fixture
def bundle(berth, tmp_path, rootfs):
    return Bundle(berth, tmp_path, rootfs)


@pytest.mark.parametrize("tool", ["crun", "runc"])
def test_the_template_of_crun_and_runc_runs(berth, tmp_path, rootfs, tool):
    b = Bundle(berth, tmp_path, rootfs, tool)
    p = b.run("/bin/sh", "-c", "echo ran; hostname; cat /proc/self/cgroup")
    assert p.returncode == 0, err(p)
    lines = out(p).splitlines()
    assert lines[:2] == ["ran", b.config["hostname"]]
    # It ran in the instance's cgroup (the template has no cgroup namespace),
    # which is gone once it has exited.
    assert any(l.endswith("/berth/%s" % b.id) for l in lines[2:]), lines
    assert instance_cgroups(b.id) == []


def test_exit_code_of_the_process_is_returned(bundle):
    assert bundle.run("/bin/sh", "-c", "exit 9").returncode == 9


def test_user_ids_and_additional_groups_apply(bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [44, 50]}
    p = bundle.run("/bin/sh", "-c", "id -u; id -g; id -G")
    assert out(p).split("\n")[:3] == ["1000", "1000", "1000 44 50"]


def test_env_and_cwd_apply_and_args_0_is_looked_up_in_path(bundle):
    bundle.config["process"]["env"] = ["PATH=/bin", "GREETING=hi"]
    bundle.config["process"]["cwd"] = "/home/app"
    p = bundle.run("sh", "-c", "echo $GREETING; pwd")
    assert out(p) == "hi\n/home/app\n", err(p)


def test_capability_sets_apply(bundle):
    caps = ["CAP_CHOWN", "CAP_KILL"]
    bundle.config["process"]["capabilities"] = {"bounding": caps, "effective": caps,
                                                "permitted": caps}
    p = bundle.run("/bin/sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status")
    lines = dict(l.split(":") for l in out(p).splitlines())
    assert int(lines["CapEff"], 16) == (1 << 0) | (1 << 5)
    assert int(lines["CapBnd"], 16) == (1 << 0) | (1 << 5)


def test_rlimits_apply(bundle):
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 99}]
    p = bundle.run("/bin/sh", "-c", "ulimit -n; ulimit -Hn")
    assert out(p).split() == ["77", "99"]


def test_no_new_privileges_follows_the_config(bundle):
    bundle.config["process"]["noNewPrivileges"] = False
    p = bundle.run("/bin/sh", "-c", "grep NoNewPrivs /proc/self/status")
    assert out(p).split() == ["NoNewPrivs:", "0"]


def test_read_only_root_refuses_writes(bundle):
    bundle.config["root"]["readonly"] = True
    p = bundle.run("/bin/sh", "-c", "touch /x 2>&1; true")
    assert "Read-only file system" in out(p)


def test_bind_and_tmpfs_mounts_with_options(bundle, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "f").write_text("host\n")
    bundle.config["mounts"] += [
        {"destination": "/vol", "type": "bind", "source": str(vol), "options": ["rbind", "ro"]},
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "size=1m", "mode=700"]}]
    p = bundle.run("/bin/sh", "-c", "cat /vol/f; touch /vol/g 2>&1; stat -c %a /scratch; "
                   "grep ' /scratch ' /proc/mounts")
    lines = out(p).splitlines()
    assert lines[0] == "host"
    assert "Read-only file system" in lines[1]
    assert lines[2] == "700"
    assert "size=1024k" in lines[3] and "nosuid" in lines[3]
    assert os.listdir(vol) == ["f"]


def test_masked_and_read_only_paths_apply(bundle):
    bundle.config["linux"]["maskedPaths"] = ["/etc/passwd", "/home"]
    bundle.config["linux"]["readonlyPaths"] = ["/tmp"]
    p = bundle.run("/bin/sh", "-c", "wc -c < /etc/passwd; ls /home | wc -l; "
                   "touch /tmp/x 2>&1; true")
    lines = out(p).splitlines()
    assert lines[:2] == ["0", "0"]
    assert "Read-only file system" in lines[2]


def test_a_read_only_proc_file_refuses_writes_and_a_missing_one_is_skipped(bundle):
    """The read-only bind that guards /proc/sysrq-trigger, shown on a /proc
    file this kernel has and root may open for writing."""
    candidates = ["/proc/sysrq-trigger", "/proc/pressure/cpu", "/proc/pressure/memory"]
    target = next(c for c in candidates if os.access(c, os.W_OK))
    bundle.config["process"]["env"] = ["PATH=/bin"]
    script = "(: > %s) 2>&1 && echo writable; true" % target
    bundle.config["linux"]["readonlyPaths"] = []
    assert out(bundle.run("/bin/sh", "-c", script)) == "writable\n"
    bundle.config["linux"]["readonlyPaths"] = ["/proc/no-such-file", target]
    p = bundle.run("/bin/sh", "-c", script)
    assert p.returncode == 0, err(p)
    assert "Read-only file system" in out(p)


@needs_v1_controllers
def test_pids_and_memory_limits_apply(bundle):
    bundle.config["linux"]["resources"].update({"pids": {"limit": 12},
                                                "memory": {"limit": 64 << 20}})
    p = bundle.run("/bin/sh", "-c", "cat /sys/fs/cgroup/pids/pids.max "
                   "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert out(p).split() == ["12", str(64 << 20)], err(p)


def test_seccomp_profile_applies(bundle):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 1}]}
    p = bundle.run("/bin/sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/d 2>&1; true")
    lines = out(p).splitlines()
    assert lines[0].split() == ["Seccomp:", "2"]
    assert "Operation not permitted" in lines[1]


def test_user_namespace_with_mappings(bundle, tmp_path, rootfs):
    bundle.config["linux"]["namespaces"].append({"type": "user"})
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    p = bundle.run("/bin/sh", "-c", "cat /proc/self/uid_map")
    assert p.returncode == 0, err(p)
    assert out(p).split() == ["0", "200000", "65536"]


def test_hostname_needs_a_uts_namespace(bundle):
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"]
                                            if n["type"] != "uts"]
    p = bundle.run("/bin/true")
    assert p.returncode == 125
    assert "hostname needs a uts namespace" in err(p)


@pytest.mark.parametrize("change,named", [
    (lambda c: c["linux"].__setitem__("intelRdt", {"closID": "x"}), "linux.intelRdt"),
    (lambda c: c.__setitem__("hooks", {"prestart": [{"path": "/bin/true"}]}), "hooks"),
    (lambda c: c["process"].__setitem__("terminal", True), "process.terminal"),
    (lambda c: c["linux"].__setitem__("sysctl", {"net.ipv4.ip_forward": "1"}), "linux.sysctl"),
    (lambda c: c["linux"].__setitem__("devices", [{"path": "/dev/fuse", "type": "c",
                                                   "major": 10, "minor": 229}]),
     "linux.devices"),
    (lambda c: c["mounts"].append({"destination": "/d", "type": "ext4", "source": "/dev/vda"}),
     'mount type "ext4"'),
    (lambda c: c["linux"]["namespaces"].append({"type": "network", "path": "/proc/1/ns/net"}),
     "joining a namespace"),
    (lambda c: c["linux"]["resources"].__setitem__("blockIO", {"weight": 10}),
     "linux.resources.blockIO"),
    (lambda c: c["process"].__setitem__("apparmorProfile", "docker-default"),
     "process.apparmorProfile"),
    (lambda c: c["mounts"][0].__setitem__("options", ["idmap"]), '"idmap"'),
])
def test_unsupported_fields_are_refused_by_name(bundle, change, named):
    change(bundle.config)
    p = bundle.run("/bin/true")
    assert p.returncode == 125
    assert "config.json" in err(p) and named in err(p), err(p)
    assert "not supported" in err(p)
