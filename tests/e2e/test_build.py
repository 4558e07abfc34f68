"""The project's foundation as a packager and CI see it: the build flags,
`make install PREFIX= DESTDIR=`, `make clean`, an idempotent `make deps`,
the test command CI runs, and test registries that stay on loopback and
stop when asked."""
import os
import re
import shlex
import socket
import stat
import subprocess

import pytest

from conftest import BERTH, REPO_TOP, Registry
from helpers import make

# The build directory the binary under test came from: make finds it up to
# date there instead of building anew.
BUILD = os.path.dirname(os.path.abspath(BERTH))


def compile_command():
    """The compiler line make would run for one object, read with make -n."""
    p = make("-n", "V=1", "BUILD=/nonexistent-berth-build",
             "/nonexistent-berth-build/obj/common/err.o")
    assert p.returncode == 0, p.stderr.decode()
    lines = [l for l in p.stdout.decode().splitlines() if " -c -o " in l]
    assert len(lines) == 1, p.stdout.decode()
    return shlex.split(lines[0])


def test_objects_are_compiled_with_the_hardening_and_warning_flags():
    argv = compile_command()
    for flag in ("-O2", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong", "-Wall", "-Wextra",
                 "-Werror"):
        assert flag in argv, argv


def test_the_binary_carries_stack_protection_and_fortified_calls():
    syms = subprocess.run(["nm", "-D", BERTH], stdout=subprocess.PIPE, check=True).stdout
    syms = syms.decode()
    assert "__stack_chk_fail" in syms
    assert re.search(r"__\w+_chk@", syms.replace("__stack_chk_fail", ""))


@pytest.mark.parametrize("prefix", ["/usr", ""])
def test_install_puts_the_binary_under_destdir_and_prefix(tmp_path, prefix):
    dest = tmp_path / "pkg"
    p = make("install", "BUILD=" + BUILD, "PREFIX=" + prefix, "DESTDIR=" + str(dest))
    assert p.returncode == 0, p.stderr.decode()
    installed = dest / (prefix + "/bin/berth").lstrip("/")
    st = os.stat(installed)
    assert stat.S_IMODE(st.st_mode) == 0o755
    # nothing outside DESTDIR: PREFIX, and /etc for the config and init script
    top = {"usr", "etc"} if prefix else {"bin", "etc", "lib", "share"}
    assert set(os.listdir(dest)) == top
    out = subprocess.run([str(installed), "version"], stdout=subprocess.PIPE, check=True)
    assert out.stdout.startswith(b"berth ")
    p = make("uninstall", "PREFIX=" + prefix, "DESTDIR=" + str(dest))
    assert p.returncode == 0 and not installed.exists()


def test_clean_removes_the_build_directory(tmp_path):
    build = tmp_path / "build"
    (build / "obj" / "common").mkdir(parents=True)
    (build / "obj" / "common" / "err.o").write_bytes(b"x")
    (build / "berth").write_bytes(b"x")
    p = make("clean", "BUILD=" + str(build))
    assert p.returncode == 0, p.stderr.decode()
    assert not build.exists()
    assert os.path.exists(BERTH)  # the build under test is left alone


def stub(bindir, name, script):
    path = bindir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)


def run_deps(tmp_path, dpkg_query=None):
    """Runs make deps with apt-get (and optionally dpkg-query) replaced by
    stubs that log their arguments."""
    tmp_path.mkdir(exist_ok=True)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "apt.log"
    stub(bindir, "apt-get", 'echo "$@" >> %s\n' % log)
    stub(bindir, "systemctl", "exit 1\n")  # no system service is touched
    if dpkg_query:
        stub(bindir, "dpkg-query", dpkg_query)
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ.get("PATH", "/usr/bin:/bin")))
    p = make("deps", env=env)
    return p, (log.read_text().splitlines() if log.exists() else [])


def test_deps_installs_exactly_the_missing_packages_and_nothing_when_none_is(tmp_path):
    p, apt = run_deps(tmp_path / "all")
    assert p.returncode == 0, p.stderr.decode()
    assert apt == []
    # zstd and skopeo are "missing"; everything else is reported installed.
    p, apt = run_deps(tmp_path / "two", dpkg_query=(
        'for a; do p=$a; done\n'
        'case "$p" in zstd|skopeo) echo -n "unknown ok not-installed";;\n'
        '*) echo -n "install ok installed";; esac\n'))
    assert p.returncode == 0, p.stderr.decode()
    assert apt[0].split() == ["update", "-q"]
    words = apt[1].split()
    assert words[0] == "install"
    assert sorted(w for w in words if not w.startswith("-") and w != "install") == \
        ["skopeo", "zstd"]


def test_readme_test_command_is_what_ci_runs():
    with open(os.path.join(REPO_TOP, "README.md")) as f:
        readme = f.read()
    assert "`make check` is the test command" in readme
    with open(os.path.join(REPO_TOP, ".ci", "run")) as f:
        ci = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    assert ci[-1] == "exec make check"
    # make check installs the dependencies first, then builds and tests.
    p = make("-n", "check", "BUILD=" + BUILD)
    assert p.returncode == 0
    out = p.stdout.decode()
    assert out.index("install-deps.sh") < out.index("make all") < out.index("make unit") \
        < out.index("make e2e")


def test_test_registry_listens_on_loopback_only_and_stops(tmp_path):
    r = Registry(str(tmp_path / "reg"))
    try:
        host, port = r.host.split(":")
        assert host == "127.0.0.1"
        with open("/proc/net/tcp") as f:
            listening = [l.split()[1] for l in f.readlines()[1:] if l.split()[3] == "0A"]
        assert "0100007F:%04X" % int(port) in listening  # 127.0.0.1, not 0.0.0.0
        assert "00000000:%04X" % int(port) not in listening
        assert str(tmp_path) in open(os.path.join(r.dir, "config.yml")).read()
        socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()
    finally:
        r.stop()
    assert r.proc.poll() is not None
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
