"""Cross builds, run by `make check-cross` (a few minutes on 2 cores, so not
part of make check): `make cross ARCH=` and `make unit ARCH=` for arm64 and
armhf with Debian's cross compilers, multiarch -dev packages and qemu-user,
and the Yocto recipe's and the Buildroot package's own compile and install
commands run with those toolchains the way bitbake and Buildroot run them
(neither is available offline)."""
import os
import re
import subprocess

import pytest

REPO_TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
VERSION = re.search(r"^VERSION\s*:=\s*(\S+)", open(os.path.join(REPO_TOP, "Makefile")).read(),
                    re.M).group(1)
RECIPE = os.path.join(REPO_TOP, "packaging", "yocto", "meta-berth", "recipes-core", "berth",
                      "berth_%s.bb" % VERSION)
FRAGMENT = os.path.join(REPO_TOP, "packaging", "yocto", "meta-berth", "recipes-kernel",
                        "linux", "files", "berth.cfg")
EXTERNAL = os.path.join(REPO_TOP, "packaging", "buildroot")
ARCHS = {"arm64": ("aarch64-linux-gnu", "qemu-aarch64-static", "AArch64"),
         "armhf": ("arm-linux-gnueabihf", "qemu-arm-static", "ARM")}


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    env.update(extra)
    return env


def run(argv, cwd=REPO_TOP, env=None, timeout=900):
    p = subprocess.run(argv, cwd=cwd, env=env or clean_env(), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace")


def head_revision():
    return subprocess.run(["git", "-C", REPO_TOP, "rev-parse", "--short=12", "HEAD"],
                          stdout=subprocess.PIPE, check=True).stdout.decode().strip()


def check_binary(path, arch):
    """An ELF for the target that runs under qemu-user and needs, of the
    libraries berth uses, only yajl linked: the rest are loaded with dlopen."""
    triplet, qemu, machine = ARCHS[arch]
    rc, out = run(["readelf", "-h", "-d", str(path)])
    assert rc == 0, out
    assert re.search(r"Machine:\s+%s\b" % machine, out), out
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", out))
    assert "libyajl.so.2" in needed and "libc.so.6" in needed
    assert not {n for n in needed if re.match(r"lib(ssl|crypto|curl|archive|mosquitto|z|zstd|"
                                              r"seccomp|cap)\.so", n)}, needed
    rc, out = run([qemu, str(path), "version"])
    assert rc == 0, out
    return out.splitlines()[0]


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_make_cross_builds_a_binary_that_runs_under_qemu(arch):
    rc, out = run(["make", "--no-print-directory", "-j2", "cross", "ARCH=" + arch])
    assert rc == 0, out[-4000:]
    line = check_binary(os.path.join(REPO_TOP, "build", arch, "berth"), arch)
    assert line.startswith("berth %s (revision %s" % (VERSION, head_revision()))


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_unit_tests_pass_under_qemu(arch):
    rc, out = run(["make", "--no-print-directory", "-j2", "unit", "ARCH=" + arch])
    assert rc == 0, out[-6000:]
    qemu = ARCHS[arch][1]
    ran = re.findall(r"^== build/%s/tests/(test_\w+) \(%s\)$" % (arch, qemu), out, re.M)
    assert len(ran) >= 30, out[-3000:]
    assert "test_sas" in ran and "test_route_eval" in ran and "test_mqtt" in ran
    assert "test_seccomp" not in ran
    assert re.search(r"^== not run under %s: test_seccomp " % qemu, out, re.M)
    assert out.count("[  PASSED  ]") >= len(ran) and "[  FAILED  ]" not in out


def bitbake_expand(text, values):
    """${VAR} as bitbake expands it, for the variables the recipe uses."""
    def one(m):
        assert m.group(1) in values, "the harness does not know ${%s}" % m.group(1)
        return bitbake_expand(values[m.group(1)], values)
    return re.sub(r"\$\{([A-Za-z_][\w:-]*)\}", one, text)


def recipe_parts():
    text = open(RECIPE).read()
    funcs = dict(re.findall(r"^(do_\w+)\(\) \{\n(.*?)^\}", text, re.M | re.S))
    assigns = {}
    for m in re.finditer(r'^([A-Z_a-z][\w:${}]*) \??\??= "((?:[^"\\]|\\\n)*)"', text, re.M):
        assigns[m.group(1)] = m.group(2).replace("\\\n", " ")
    return text, funcs, assigns


def test_yocto_recipe_compiles_and_installs_with_the_cross_toolchain(tmp_path):
    triplet, qemu, machine = ARCHS["arm64"]
    text, funcs, assigns = recipe_parts()
    assert set(funcs) == {"do_compile", "do_install"}
    # As bitbake fetches it: a git clone of the commit (S), built in place (B = S).
    src = tmp_path / ("berth-" + VERSION)
    rc, out = run(["git", "clone", "-q", REPO_TOP, str(src)])
    assert rc == 0, out
    dest = tmp_path / "image"
    values = {"D": str(dest), "S": str(src), "B": str(src), "prefix": "/usr",
              "bindir": "/usr/bin", "sysconfdir": "/etc", "mandir": "/usr/share/man",
              "systemd_system_unitdir": "/usr/lib/systemd/system", "nonarch_libdir": "/usr/lib",
              "BERTH_INSTALL_DIRS": assigns["BERTH_INSTALL_DIRS"]}
    prefix_map = "-fmacro-prefix-map=%s=/usr/src/debug/berth -fdebug-prefix-map=%s=" \
                 "/usr/src/debug/berth" % (src, src)
    # The environment bitbake exports for a target recipe (oe-core's
    # bitbake.conf and security_flags.inc), with Debian's multiarch paths for
    # the recipe sysroot; EXTRA_OEMAKE is empty, so oe_runmake is plain make.
    env = clean_env(
        CC="%s-gcc" % triplet, CPP="%s-gcc -E" % triplet, LD="%s-ld" % triplet,
        AR="%s-ar" % triplet, OBJDUMP="%s-objdump" % triplet, STRIP="%s-strip" % triplet,
        CFLAGS="-O2 -pipe -g -feliminate-unused-debug-types %s -fstack-protector-strong "
               "-D_FORTIFY_SOURCE=2 -Wformat -Wformat-security -Werror=format-security"
               % prefix_map,
        CPPFLAGS="",
        LDFLAGS="-Wl,-O1 -Wl,--hash-style=gnu -Wl,--as-needed %s -Wl,-z,relro,-z,now"
                % prefix_map,
        PKG_CONFIG_LIBDIR="/usr/lib/%s/pkgconfig:/usr/share/pkgconfig" % triplet,
        PKG_CONFIG_PATH="", PKG_CONFIG_SYSROOT_DIR="", EXTRA_OEMAKE="")
    script = "set -e\noe_runmake() { make -j2 ${EXTRA_OEMAKE} \"$@\"; }\n"
    for f in ("do_compile", "do_install"):
        script += "%s() {\n%s}\n" % (f, bitbake_expand(funcs[f], values))
    script += "cd %s\ndo_compile\ndo_install\n" % src
    rc, out = run(["/bin/sh", "-c", script], cwd=str(src), env=env)
    assert rc == 0, out[-6000:]
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if not p.is_dir())
    assert files == ["etc/berth/config.json", "etc/berth/deployment.json", "etc/init.d/berth",
                     "usr/bin/berth", "usr/lib/systemd/system/berth.service",
                     "usr/lib/tmpfiles.d/berth.conf", "usr/share/man/man1/berth.1"]
    # bitbake's CFLAGS reached the compiler (the debug info names the sources
    # by the mapped prefix) and its LDFLAGS the linker.
    binary = (dest / "usr/bin/berth").read_bytes()
    assert b"/usr/src/debug/berth" in binary and str(src).encode() not in binary
    rc, out = run(["make", "-n", "V=1", "-B", "build/berth"], cwd=str(src), env=env)
    link = [l for l in out.splitlines() if " -o build/berth " in l]
    assert len(link) == 1 and "-Wl,--hash-style=gnu -Wl,--as-needed" in link[0], out[-3000:]
    line = check_binary(dest / "usr/bin/berth", "arm64")
    assert line == "berth %s (revision %s)" % (VERSION, head_revision())
    unit = (dest / "usr/lib/systemd/system/berth.service").read_text()
    assert "ExecStart=/usr/bin/berth daemon --config /etc/berth/config.json" in unit


BUILDROOT_HARNESS = r"""
# What Buildroot defines for a package's commands (package/Makefile.in,
# package/pkg-generic.mk), for an armhf glibc toolchain.
BR2_EXTERNAL_BERTH_PATH := {external}
BUILD_DIR := {tmp}/build
TARGET_DIR := {tmp}/target
HOST_DIR := {tmp}/host
KCONFIG_OUT := {tmp}/kconfig
TARGET_CROSS := {triplet}-
INSTALL := /usr/bin/install
TARGET_MAKE_ENV := PATH=$(HOST_DIR)/bin:$(PATH)
TARGET_CPPFLAGS := -D_LARGEFILE_SOURCE -D_LARGEFILE64_SOURCE -D_FILE_OFFSET_BITS=64
TARGET_CFLAGS := $(TARGET_CPPFLAGS) -Os -g0 -D_FORTIFY_SOURCE=1
TARGET_LDFLAGS :=
PKG_CONFIG_HOST_BINARY := $(HOST_DIR)/bin/pkg-config
TARGET_CONFIGURE_OPTS := PATH=$(HOST_DIR)/bin:$(PATH) AR="$(TARGET_CROSS)ar" \
	AS="$(TARGET_CROSS)as" LD="$(TARGET_CROSS)ld" NM="$(TARGET_CROSS)nm" \
	CC="$(TARGET_CROSS)gcc" GCC="$(TARGET_CROSS)gcc" CPP="$(TARGET_CROSS)cpp" \
	CXX="$(TARGET_CROSS)g++" RANLIB="$(TARGET_CROSS)ranlib" READELF="$(TARGET_CROSS)readelf" \
	STRIP="$(TARGET_CROSS)strip" OBJCOPY="$(TARGET_CROSS)objcopy" \
	OBJDUMP="$(TARGET_CROSS)objdump" CPPFLAGS="$(TARGET_CPPFLAGS)" \
	CFLAGS="$(TARGET_CFLAGS)" CXXFLAGS="$(TARGET_CFLAGS)" LDFLAGS="$(TARGET_LDFLAGS)" \
	PKG_CONFIG="$(PKG_CONFIG_HOST_BINARY)" STAGING_DIR="$(HOST_DIR)/sysroot"
RSYNC_VCS_EXCLUSIONS := --exclude .svn --exclude .git --exclude .hg --exclude .bzr --exclude CVS
KCONFIG_ENABLE_OPT = echo '$(1)=y' >> $(KCONFIG_OUT)
generic-package :=

include $(BR2_EXTERNAL_BERTH_PATH)/external.mk

SRC := $(BUILD_DIR)/berth-$(BERTH_VERSION)
all: $(SRC)/.stamp_target_installed kconfig
$(SRC)/.stamp_rsynced:
	mkdir -p $(@D)
	rsync -au --chmod=u=rwX,go=rX $(RSYNC_VCS_EXCLUSIONS) \
		$(BERTH_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS) $(BERTH_SITE)/ $(@D)
	touch $@
$(SRC)/.stamp_built: $(SRC)/.stamp_rsynced
	$(BERTH_BUILD_CMDS)
	touch $@
$(SRC)/.stamp_target_installed: $(SRC)/.stamp_built
	$(BERTH_INSTALL_TARGET_CMDS)
	$(BERTH_INSTALL_INIT_SYSV)
	$(BERTH_INSTALL_INIT_SYSTEMD)
	touch $@
kconfig:
	rm -f $(KCONFIG_OUT)
	$(BERTH_LINUX_CONFIG_FIXUPS)
"""


def test_buildroot_package_builds_and_installs_with_the_cross_toolchain(tmp_path):
    triplet, qemu, machine = ARCHS["armhf"]
    host_bin = tmp_path / "host" / "bin"
    host_bin.mkdir(parents=True)
    # Buildroot's pkg-config wrapper points pkg-config at the staging sysroot.
    wrapper = host_bin / "pkg-config"
    wrapper.write_text("#!/bin/sh\nPKG_CONFIG_LIBDIR=/usr/lib/%s/pkgconfig:/usr/share/pkgconfig "
                       "exec /usr/bin/pkg-config \"$@\"\n" % triplet)
    wrapper.chmod(0o755)
    harness = tmp_path / "harness.mk"
    harness.write_text(BUILDROOT_HARNESS.replace("{external}", EXTERNAL)
                       .replace("{tmp}", str(tmp_path)).replace("{triplet}", triplet))
    rc, out = run(["make", "--no-print-directory", "-j2", "-f", str(harness), "all"],
                  cwd=str(tmp_path))
    assert rc == 0, out[-6000:]
    target = tmp_path / "target"
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if not p.is_dir())
    assert files == ["etc/berth/config.json", "etc/berth/deployment.json", "etc/init.d/S99berth",
                     "usr/bin/berth", "usr/lib/systemd/system/berth.service",
                     "usr/lib/tmpfiles.d/berth.conf"]
    assert "BERTH=${BERTH:-/usr/bin/berth}" in (target / "etc/init.d/S99berth").read_text()
    assert os.access(target / "etc/init.d/S99berth", os.X_OK)
    # The tree was copied without .git: the revision came through BERTH_MAKE_OPTS.
    src = tmp_path / "build" / ("berth-" + VERSION)
    assert not (src / ".git").exists() and not (src / "build" / "arm64").exists()
    line = check_binary(target / "usr/bin/berth", "armhf")
    assert line.startswith("berth %s (revision %s" % (VERSION, head_revision()))
    # Buildroot's -Os and _FORTIFY_SOURCE=1 were the ones used.
    rc, out = run(["make", "-n", "V=1", "-C", str(src), "CFLAGS=-Os -g0 -D_FORTIFY_SOURCE=1",
                   "BUILD=/nonexistent", "/nonexistent/obj/common/err.o"])
    assert "-D_FORTIFY_SOURCE=1" in out and "-D_FORTIFY_SOURCE=2" not in out, out
    # The kernel options the package asks of a kernel Buildroot builds.
    kconfig = (tmp_path / "kconfig").read_text().split()
    fragment = re.findall(r"^(CONFIG_\w+=y)$", open(FRAGMENT).read(), re.M)
    assert kconfig == fragment
