# Namespaces, cgroups, overlayfs, seccomp filters, veth and bridges for berth's
# instances. Kernels other than linux-yocto take files/berth.cfg as a config
# fragment of their own (merge_config.sh, or their recipe's fragment support).
FILESEXTRAPATHS:prepend := "${THISDIR}/files:"
SRC_URI:append = " file://berth.cfg"
