################################################################################
#
# berth
#
################################################################################

BERTH_VERSION = 0.1.0
# This external tree lives in berth's own source tree (packaging/buildroot).
BERTH_SITE = $(BR2_EXTERNAL_BERTH_PATH)/../..
BERTH_SITE_METHOD = local
BERTH_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = --exclude=/build --exclude=node_modules
BERTH_DEPENDENCIES = host-pkgconf libseccomp libcap libarchive openssl yajl \
	libcurl mosquitto zlib zstd

# The copy Buildroot builds has no .git: the revision comes from the tree.
BERTH_MAKE_OPTS = PREFIX=/usr \
	BERTH_REVISION=$(shell git -C $(BERTH_SITE) rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

define BERTH_BUILD_CMDS
	$(TARGET_MAKE_ENV) $(MAKE) -C $(@D) $(TARGET_CONFIGURE_OPTS) $(BERTH_MAKE_OPTS) all
endef

define BERTH_INSTALL_TARGET_CMDS
	$(TARGET_MAKE_ENV) $(MAKE) -C $(@D) $(TARGET_CONFIGURE_OPTS) $(BERTH_MAKE_OPTS) \
		DESTDIR=$(TARGET_DIR) install-bin install-config
endef

define BERTH_INSTALL_INIT_SYSV
	$(TARGET_MAKE_ENV) $(MAKE) -C $(@D) $(BERTH_MAKE_OPTS) DESTDIR=$(TARGET_DIR) \
		INIT_NAME=S99berth install-sysv
endef

define BERTH_INSTALL_INIT_SYSTEMD
	$(TARGET_MAKE_ENV) $(MAKE) -C $(@D) $(BERTH_MAKE_OPTS) DESTDIR=$(TARGET_DIR) \
		SYSTEMDUNITDIR=/usr/lib/systemd/system TMPFILESDIR=/usr/lib/tmpfiles.d \
		install-systemd
endef

# The kernel options of packaging/yocto/meta-berth/recipes-kernel/linux/files/berth.cfg.
define BERTH_LINUX_CONFIG_FIXUPS
	$(call KCONFIG_ENABLE_OPT,CONFIG_NAMESPACES)
	$(call KCONFIG_ENABLE_OPT,CONFIG_UTS_NS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_IPC_NS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_PID_NS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_NET_NS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_USER_NS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUPS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_MEMCG)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_PIDS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_SCHED)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CFS_BANDWIDTH)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_FREEZER)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_DEVICE)
	$(call KCONFIG_ENABLE_OPT,CONFIG_CGROUP_BPF)
	$(call KCONFIG_ENABLE_OPT,CONFIG_BPF_SYSCALL)
	$(call KCONFIG_ENABLE_OPT,CONFIG_OVERLAY_FS)
	$(call KCONFIG_ENABLE_OPT,CONFIG_SECCOMP)
	$(call KCONFIG_ENABLE_OPT,CONFIG_SECCOMP_FILTER)
	$(call KCONFIG_ENABLE_OPT,CONFIG_VETH)
	$(call KCONFIG_ENABLE_OPT,CONFIG_BRIDGE)
endef

$(eval $(generic-package))
