"""berth as a device image gets it: `make install` into a DESTDIR, the
installed systemd unit, tmpfiles.d entry and SysV init script driving a real
daemon, `make deb` (dpkg-buildpackage, lintian) and the package's contents,
`berth check` reading a kernel's config, `berth version`'s source revision,
and the Yocto and Buildroot files agreeing with the code. The builds with
the cross toolchains are in tests/cross (make check-cross)."""
import gzip
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile

import pytest

from conftest import BERTH, REPO_TOP
from helpers import make as run_make
from helpers import wait_for

BUILD = os.path.dirname(os.path.abspath(BERTH))
YOCTO = os.path.join(REPO_TOP, "packaging", "yocto", "meta-berth")
FRAGMENT = os.path.join(YOCTO, "recipes-kernel", "linux", "files", "berth.cfg")
BUILDROOT = os.path.join(REPO_TOP, "packaging", "buildroot")
VERSION = re.search(r"^VERSION\s*:=\s*(\S+)", open(os.path.join(REPO_TOP, "Makefile")).read(),
                    re.M).group(1)


def make(*args, **kw):
    """make's exit status and its output, stderr after stdout."""
    p = run_make(*args, **kw)
    return p.returncode, p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")


def install(dest, *extra):
    rc, out = make("install", "BUILD=" + BUILD, "PREFIX=/usr", "DESTDIR=" + str(dest), *extra)
    assert rc == 0, out
    return out


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def unit_settings(path):
    settings = {}
    for line in open(path):
        if "=" in line and not line.startswith("#"):
            k, v = line.rstrip("\n").split("=", 1)
            settings.setdefault(k, []).append(v)
    return settings


def kernel_options_of_fragment():
    with open(FRAGMENT) as f:
        return [m.group(1) for m in re.finditer(r"^CONFIG_(\w+)=y$", f.read(), re.M)]


def check(*args):
    p = subprocess.run([BERTH, "check"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    return p.returncode, p.stdout.decode()


def kernel_lines(out):
    return [l for l in out.splitlines() if "kernel config" in l]


# --- make install ---

def test_install_lays_out_a_device_image(tmp_path):
    dest = tmp_path / "img"
    install(dest)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir())
    assert files == ["etc/berth/config.json", "etc/berth/deployment.json", "etc/init.d/berth",
                     "usr/bin/berth", "usr/lib/systemd/system/berth.service",
                     "usr/lib/tmpfiles.d/berth.conf", "usr/share/man/man1/berth.1"]
    assert mode(dest / "usr/bin/berth") == 0o755
    assert mode(dest / "etc/init.d/berth") == 0o755
    # The config holds the device key; the deployment may hold registry passwords.
    assert mode(dest / "etc/berth/config.json") == 0o600
    assert mode(dest / "etc/berth/deployment.json") == 0o600
    out = subprocess.run([str(dest / "usr/bin/berth"), "version"], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    assert out.startswith("berth %s (revision " % VERSION)


def test_installed_example_config_and_deployment_are_valid(tmp_path):
    dest = tmp_path / "img"
    install(dest)
    cfg = json.loads((dest / "etc/berth/config.json").read_text())
    assert cfg["deployment_file"] == "/etc/berth/deployment.json"
    # Checked where they were installed, as the daemon would read them.
    cfg["deployment_file"] = str(dest / "etc/berth/deployment.json")
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    rc, out = check("--config", str(tmp_path / "config.json"))
    assert "\u221a config %s is valid (device my-device)" % (tmp_path / "config.json") in out
    assert "\u221a deployment %s is valid (0 modules)" % cfg["deployment_file"] in out
    # Positive control: a broken deployment is reported by the same check.
    (dest / "etc/berth/deployment.json").write_text("{")
    rc, out = check("--config", str(tmp_path / "config.json"))
    assert "\u00d7" in out and "is valid (0 modules)" not in out


def test_install_keeps_a_device_own_config_and_deployment(tmp_path):
    dest = tmp_path / "img"
    (dest / "etc/berth").mkdir(parents=True)
    own = '{"device_id": "Hannover01"}\n'
    (dest / "etc/berth/config.json").write_text(own)
    out = install(dest)
    assert (dest / "etc/berth/config.json").read_text() == own
    assert "KEEP" in out and "config.json" in out
    # The deployment was not there: the example is installed.
    assert json.loads((dest / "etc/berth/deployment.json").read_text())["modulesContent"]
    (dest / "etc/berth/deployment.json").write_text("mine\n")
    install(dest)
    assert (dest / "etc/berth/deployment.json").read_text() == "mine\n"


def test_install_paths_follow_prefix_and_directories(tmp_path):
    dest = tmp_path / "img"
    rc, out = make("install", "BUILD=" + BUILD, "PREFIX=/usr/local", "DESTDIR=" + str(dest),
                   "SYSTEMDUNITDIR=/lib/systemd/system", "INIT_NAME=S99berth")
    assert rc == 0, out
    unit = (dest / "lib/systemd/system/berth.service").read_text()
    assert "ExecStart=/usr/local/bin/berth daemon --config /etc/berth/config.json" in unit
    init = (dest / "etc/init.d/S99berth").read_text()
    assert "BERTH=${BERTH:-/usr/local/bin/berth}" in init
    assert (dest / "usr/local/bin/berth").exists()
    assert (dest / "usr/local/lib/tmpfiles.d/berth.conf").exists()
    rc, out = make("uninstall", "PREFIX=/usr/local", "DESTDIR=" + str(dest),
                   "SYSTEMDUNITDIR=/lib/systemd/system", "INIT_NAME=S99berth")
    assert rc == 0, out
    left = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir())
    assert left == ["etc/berth/config.json", "etc/berth/deployment.json"]


# --- systemd ---

def test_systemd_unit_runs_the_daemon_as_the_issue_asks(tmp_path):
    dest = tmp_path / "img"
    install(dest)
    s = unit_settings(dest / "usr/lib/systemd/system/berth.service")
    assert s["Type"] == ["notify"]
    assert s["ExecStart"] == ["/usr/bin/berth daemon --config /etc/berth/config.json"]
    assert s["KillMode"] == ["process"]  # modules outlive a daemon restart
    assert s["Delegate"] == ["yes"]
    assert s["Restart"] == ["on-failure"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert s["WantedBy"] == ["multi-user.target"]


def test_systemd_analyze_verifies_the_installed_unit(tmp_path):
    dest = tmp_path / "img"
    install(dest)
    # The host's systemd checks it, with ExecStart at the binary just installed.
    unit = tmp_path / "berth.service"
    text = (dest / "usr/lib/systemd/system/berth.service").read_text()
    unit.write_text(text.replace("/usr/bin/berth", str(dest / "usr/bin/berth")))

    def verify():
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return p.returncode, p.stdout.decode()
    assert verify() == (0, "")
    # Positive control: the same verification speaks up about a broken unit.
    unit.write_text(unit.read_text().replace("Type=notify", "Type=notifyy"))
    assert "notifyy" in verify()[1]


def test_tmpfiles_creates_the_state_and_run_directories(tmp_path):
    dest = tmp_path / "img"
    install(dest)
    assert not (dest / "run").exists() and not (dest / "var").exists()
    p = subprocess.run(["systemd-tmpfiles", "--create", "--root=" + str(dest),
                        str(dest / "usr/lib/tmpfiles.d/berth.conf")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.returncode == 0, p.stdout.decode()
    for d in ("run/berth", "var/lib/berth"):
        assert os.path.isdir(dest / d)
        assert mode(dest / d) == 0o755


# --- SysV / BusyBox init ---

# Debian's dash, and BusyBox's ash as on a BusyBox init system.
SHELLS = {"dash": ["/bin/sh"], "busybox": ["busybox", "sh"]}


def init_script(dest, tmp_path, *args, shell="dash"):
    env = dict(os.environ, BERTH=str(dest / "usr/bin/berth"),
               CONFIG=str(tmp_path / "config.json"), RUNDIR=str(tmp_path / "run"),
               PIDFILE=str(tmp_path / "berth.pid"), LOGFILE=str(tmp_path / "berth.log"))
    p = subprocess.run(SHELLS[shell] + [str(dest / "etc/init.d/berth")] + list(args), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=150)
    return p.returncode, p.stdout.decode()


@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_init_script_starts_reloads_restarts_and_stops_the_daemon(tmp_path, shell):
    def init(*args):
        return init_script(dest, tmp_path, *args, shell=shell)
    dest = tmp_path / "img"
    install(dest)
    cfg = json.loads((dest / "etc/berth/config.json").read_text())
    cfg.update(root=str(tmp_path / "root"), run=str(tmp_path / "run"),
               deployment_file=str(dest / "etc/berth/deployment.json"))
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    log = tmp_path / "berth.log"
    rc, out = init("status")
    assert rc == 3 and "not running" in out
    rc, out = init("start")
    try:
        assert rc == 0 and "berth: started" in out, out + log.read_text()
        assert os.path.exists(tmp_path / "run" / "berthd.sock")
        pid = int((tmp_path / "berth.pid").read_text())
        rc, out = init("status")
        assert rc == 0 and "running (pid %d)" % pid in out
        rc, out = init("start")
        assert rc == 0 and "already running" in out
        assert "SIGHUP" not in log.read_text()
        rc, out = init("reload")
        assert rc == 0, out
        wait_for(lambda: "SIGHUP: reloading the deployment file" in log.read_text(), 10,
                 what="the daemon to re-read its deployment")
        rc, out = init("restart")
        assert rc == 0 and "stopped" in out and "started" in out, out
        new_pid = int((tmp_path / "berth.pid").read_text())
        assert new_pid != pid and not os.path.exists("/proc/%d" % pid)
    finally:
        rc, out = init("stop")
    assert rc == 0 and "berth: stopped" in out
    rc, out = init("status")
    assert rc == 3
    rc, out = init("reload")
    assert rc == 7 and "not running" in out
    rc, out = init("bogus")
    assert rc == 2 and "start|stop|restart|force-reload|reload|status" in out


def test_init_script_reports_a_daemon_that_cannot_start(tmp_path):
    dest = tmp_path / "img"
    install(dest)
    (tmp_path / "config.json").write_text("{}")
    rc, out = init_script(dest, tmp_path, "start")
    assert rc == 1 and "failed to start, see %s" % (tmp_path / "berth.log") in out
    assert "device_id" in (tmp_path / "berth.log").read_text()
    assert not os.path.exists(tmp_path / "berth.pid")


# --- berth check: the kernel's config ---

def test_check_reads_the_running_kernels_config():
    release = os.uname().release
    rc, out = check("--config", "/nonexistent/config.json")
    if os.path.exists("/proc/config.gz"):
        where = "/proc/config.gz"
    elif os.path.exists("/boot/config-" + release):
        where = "/boot/config-" + release
    else:
        assert "\u203c no kernel config at /proc/config.gz or /boot/config-<release>" in out
        return
    lines = kernel_lines(out)
    assert lines and all(where in l for l in lines), out


def test_check_names_each_kernel_option_a_config_lacks(tmp_path):
    wanted = kernel_options_of_fragment()
    assert len(wanted) >= 20
    full = tmp_path / "full.config"
    full.write_text(open(FRAGMENT).read())
    rc, out = check("--config", "/nonexistent", "--kernel-config", str(full))
    assert "\u221a kernel config %s has the %d options berth uses" % (full, len(wanted)) in out
    for opt in wanted:
        cfg = tmp_path / ("no-" + opt)
        cfg.write_text(open(FRAGMENT).read().replace("CONFIG_%s=y\n" % opt,
                                                     "# CONFIG_%s is not set\n" % opt))
        rc, out = check("--config", "/nonexistent", "--kernel-config=" + str(cfg))
        lines = kernel_lines(out)
        assert len(lines) == 1, out
        assert re.match(r"^[\u00d7\u203c] kernel config %s lacks CONFIG_%s \(" % (cfg, opt),
                        lines[0]), lines
    # The issue's features fail the check outright.
    for opt in ("NAMESPACES", "CGROUPS", "OVERLAY_FS", "SECCOMP_FILTER", "VETH", "BRIDGE"):
        rc, out = check("--config", "/nonexistent", "--kernel-config",
                        str(tmp_path / ("no-" + opt)))
        assert "\u00d7 kernel config %s lacks CONFIG_%s" % (tmp_path / ("no-" + opt), opt) in out


def test_check_reads_a_gzip_kernel_config_and_modules_count(tmp_path):
    text = open(FRAGMENT).read().replace("CONFIG_VETH=y", "CONFIG_VETH=m")
    text = text.replace("CONFIG_BRIDGE=y\n", "")
    gz = tmp_path / "config.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    rc, out = check("--config", "/nonexistent", "--kernel-config", str(gz))
    assert kernel_lines(out) == [
        "\u00d7 kernel config %s lacks CONFIG_BRIDGE (bridge networks)" % gz]
    # A torn gzip file is named, and its options are not guessed.
    gz.write_bytes(gzip.compress(text.encode())[:200])
    rc, out = check("--config", "/nonexistent", "--kernel-config", str(gz))
    assert "\u203c %s: not a whole gzip stream" % gz in out
    assert "lacks" not in out


def test_kernel_options_agree_across_berth_yocto_and_buildroot():
    wanted = kernel_options_of_fragment()
    mk = open(os.path.join(BUILDROOT, "package", "berth", "berth.mk")).read()
    assert re.findall(r"KCONFIG_ENABLE_OPT,CONFIG_(\w+)\)", mk) == wanted


# --- berth version ---

def test_version_prints_the_git_revision_it_was_built_from():
    head = subprocess.run(["git", "-C", REPO_TOP, "rev-parse", "--short=12", "HEAD"],
                          stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    out = subprocess.run([BERTH, "version"], stdout=subprocess.PIPE, check=True).stdout.decode()
    assert re.match(r"^berth %s \(revision %s(-dirty)?\)$" % (re.escape(VERSION), head),
                    out.splitlines()[0]), out


def test_a_tarball_without_git_builds_in_its_revision(tmp_path):
    head = subprocess.run(["git", "-C", REPO_TOP, "rev-parse", "HEAD"],
                          stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    tar = tmp_path / "berth.tar"
    subprocess.run(["git", "-C", REPO_TOP, "archive", "-o", str(tar), "HEAD"], check=True)
    src = tmp_path / "src"
    with tarfile.open(tar) as t:
        t.extractall(src)
    assert not (src / ".git").exists()
    rev = (src / "packaging" / "revision").read_text().strip()
    assert len(rev) >= 7 and head.startswith(rev)
    env = dict(os.environ, GIT_CEILING_DIRECTORIES=str(tmp_path))
    rc, out = make("BUILD=" + str(tmp_path / "b"), str(tmp_path / "b/obj/common/version.o"),
                   cwd=str(src), env=env)
    assert rc == 0, out
    obj = (tmp_path / "b/obj/common/version.o").read_bytes()
    assert rev.encode() + b"\0" in obj
    # BERTH_REVISION given to make (a recipe's SRCREV) wins, and rebuilds.
    rc, out = make("BUILD=" + str(tmp_path / "b"), "BERTH_REVISION=0123456789ab",
                   str(tmp_path / "b/obj/common/version.o"), cwd=str(src), env=env)
    assert rc == 0, out
    assert b"0123456789ab\0" in (tmp_path / "b/obj/common/version.o").read_bytes()


# --- make deb ---

@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    """make deb once: dpkg-buildpackage in a copy of the tree, then lintian
    (warnings and errors fail the target)."""
    build = tmp_path_factory.mktemp("debbuild")
    rc, out = make("deb", "BUILD=" + str(build), timeout=900)
    assert rc == 0, out[-6000:]
    debs = [f for f in os.listdir(build / "deb") if re.match(r"berth_.*\.deb$", f)]
    assert len(debs) == 1, out[-2000:]
    return build / "deb" / debs[0], out


def test_make_deb_is_lintian_clean(deb):
    path, out = deb
    assert "lintian --fail-on error,warning" in out
    assert not re.search(r"^[EW]: berth", out, re.M), out[-3000:]


def test_deb_depends_on_the_libraries_berth_loads_at_run_time(deb):
    path, out = deb
    info = subprocess.run(["dpkg-deb", "-f", str(path), "Depends", "Recommends"],
                          stdout=subprocess.PIPE, check=True).stdout.decode()
    depends = info.split("Depends:")[1].split("\n")[0]
    names = {d.strip().split()[0] for d in depends.split(",")}
    # Each soname berth dlopens comes from a package the .deb depends on.
    rc, sonames = make("-s", "lazy-sonames")
    for so in sonames.split():
        if so in ("libm.so.6", "libisal.so.2"):
            continue
        owner = subprocess.run(["dpkg-query", "-S", "*/" + so], stdout=subprocess.PIPE,
                               check=True).stdout.decode().split(":")[0]
        assert owner in names, (so, owner, depends)
    assert {"libc6", "libyajl2"} <= names  # the linked ones, from dh_shlibdeps
    assert "Recommends: libisal2" in info


def test_deb_installs_its_files_into_a_root(deb, tmp_path):
    path, out = deb
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(path), str(root)], check=True)
    for f, m in (("usr/bin/berth", 0o755), ("etc/init.d/berth", 0o755),
                 ("lib/systemd/system/berth.service", 0o644),
                 ("usr/lib/tmpfiles.d/berth.conf", 0o644),
                 ("etc/berth/config.json", 0o600), ("etc/berth/deployment.json", 0o600),
                 ("usr/share/man/man1/berth.1.gz", 0o644),
                 ("usr/share/doc/berth/copyright", 0o644)):
        assert mode(root / f) == m, f
    out = subprocess.run([str(root / "usr/bin/berth"), "version"], stdout=subprocess.PIPE,
                         check=True).stdout.decode()
    assert out.startswith("berth %s (revision " % VERSION) and "unknown" not in out
    ctl = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", str(path), str(ctl)], check=True)
    assert sorted((ctl / "conffiles").read_text().split()) == [
        "/etc/berth/config.json", "/etc/berth/deployment.json", "/etc/init.d/berth"]
    postinst = (ctl / "postinst").read_text()
    assert "update-rc.d berth defaults" in postinst
    assert "deb-systemd-helper" in postinst and "berth.service" in postinst
    assert "systemd-tmpfiles" in postinst and "berth.conf" in postinst
    shutil.rmtree(root)


# --- Yocto and Buildroot: the libraries berth loads with dlopen ---

# Which package ships each soname berth loads (make -s lazy-sonames), in
# oe-core/meta-oe and in Buildroot. libm comes with the C library; ISA-L is
# optional. A soname missing here fails the tests until it is added.
YOCTO_PACKAGE = {"libcrypto.so.3": "libcrypto", "libssl.so.3": "libssl",
                 "libcurl.so.4": "libcurl", "libarchive.so.13": "libarchive",
                 "libmosquitto.so.1": "libmosquitto1", "libz.so.1": "zlib",
                 "libzstd.so.1": "libzstd", "libseccomp.so.2": "libseccomp",
                 "libcap.so.2": "libcap"}
BUILDROOT_PACKAGE = {"libcrypto.so.3": "openssl", "libssl.so.3": "openssl",
                     "libcurl.so.4": "libcurl", "libarchive.so.13": "libarchive",
                     "libmosquitto.so.1": "mosquitto", "libz.so.1": "zlib",
                     "libzstd.so.1": "zstd", "libseccomp.so.2": "libseccomp",
                     "libcap.so.2": "libcap"}


def lazy_sonames():
    rc, out = make("-s", "lazy-sonames")
    assert rc == 0, out
    names = [so for so in out.split() if so not in ("libm.so.6", "libisal.so.2")]
    assert len(names) >= 9
    return names


def bb_list(text, var):
    m = re.search(r'^%s = "((?:[^"\\]|\\\n)*)"' % re.escape(var), text, re.M)
    assert m, var
    return m.group(1).replace("\\\n", " ").split()


def test_yocto_recipe_rdepends_on_every_library_berth_loads():
    recipe = open(os.path.join(YOCTO, "recipes-core", "berth", "berth_%s.bb" % VERSION)).read()
    rdepends = bb_list(recipe, "RDEPENDS:${PN}")
    assert sorted(YOCTO_PACKAGE[so] for so in lazy_sonames()) == sorted(rdepends)
    assert sorted(bb_list(recipe, "DEPENDS")) == sorted(
        "libseccomp libcap libarchive openssl yajl curl mosquitto zlib zstd".split())
    assert re.search(r"^inherit pkgconfig systemd update-rc.d$", recipe, re.M)
    layer = open(os.path.join(YOCTO, "conf", "layer.conf")).read()
    assert 'LAYERSERIES_COMPAT_berth = "scarthgap wrynose"' in layer


def test_buildroot_package_depends_on_and_selects_every_library_berth_loads():
    mk = open(os.path.join(BUILDROOT, "package", "berth", "berth.mk")).read()
    config = open(os.path.join(BUILDROOT, "package", "berth", "Config.in")).read()
    deps = re.search(r"^BERTH_DEPENDENCIES = ((?:.*\\\n)*.*)$", mk, re.M).group(1)
    deps = deps.replace("\\\n", " ").split()
    selects = re.findall(r"^\tselect BR2_PACKAGE_(\w+)$", config, re.M)
    for so in lazy_sonames() + ["libyajl.so.2"]:
        pkg = BUILDROOT_PACKAGE.get(so, "yajl")
        assert pkg in deps, (so, deps)
        assert pkg.upper() in selects, (so, selects)
    assert "host-pkgconf" in deps
    desc = open(os.path.join(BUILDROOT, "external.desc")).read()
    assert re.search(r"^name: BERTH$", desc, re.M)
    assert "$(BR2_EXTERNAL_BERTH_PATH)/package/*/*.mk" in \
        open(os.path.join(BUILDROOT, "external.mk")).read()
