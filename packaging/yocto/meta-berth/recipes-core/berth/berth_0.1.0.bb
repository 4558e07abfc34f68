SUMMARY = "berth: IoT edge runtime for small Linux devices"
DESCRIPTION = "Pulls OCI images, runs each module instance in namespaces and \
cgroups without a container engine, and connects the instances through a \
local MQTT hub with a store-and-forward log, speaking Azure IoT Edge's \
deployment manifests, routes, module identities and twins."
SECTION = "admin"
# No license has been published for berth yet.
LICENSE = "CLOSED"

# Point BERTH_SRC_URI and SRCREV at the release (local.conf or a bbappend),
# or build a checkout with EXTERNALSRC:pn-berth = "/path/to/berth".
BERTH_SRC_URI ??= "git://git.example.net/berth.git;protocol=https;branch=main"
SRC_URI = "${BERTH_SRC_URI};destsuffix=${BP}"
SRCREV ??= "${AUTOREV}"

# Linked: yajl. Loaded with dlopen on first use: the others (common/lazy.h).
DEPENDS = "libseccomp libcap libarchive openssl yajl curl mosquitto zlib zstd"

inherit pkgconfig systemd update-rc.d

# berth's Makefile takes CC, CFLAGS, CPPFLAGS, LDFLAGS and OBJDUMP from the
# environment bitbake sets, and pkg-config finds the recipe sysroot's .pc files.
BERTH_INSTALL_DIRS = "PREFIX=${prefix} BINDIR=${bindir} SYSCONFDIR=${sysconfdir} \
    MANDIR=${mandir} SYSTEMDUNITDIR=${systemd_system_unitdir} \
    TMPFILESDIR=${nonarch_libdir}/tmpfiles.d INITDIR=${sysconfdir}/init.d"

do_compile() {
	oe_runmake all
}

do_install() {
	oe_runmake install DESTDIR=${D} ${BERTH_INSTALL_DIRS}
}

SYSTEMD_SERVICE:${PN} = "berth.service"
INITSCRIPT_NAME = "berth"
INITSCRIPT_PARAMS = "defaults 99 10"

FILES:${PN} += "${nonarch_libdir}/tmpfiles.d/berth.conf"
CONFFILES:${PN} = "${sysconfdir}/berth/config.json ${sysconfdir}/berth/deployment.json"

# ldd and the shlibs scan see only yajl and libc: berth loads these packages'
# libraries with dlopen when it first needs them, so they are named here.
RDEPENDS:${PN} = "libcrypto libssl libcurl libarchive libmosquitto1 zlib libzstd \
    libseccomp libcap"
