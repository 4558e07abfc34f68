#!/bin/sh
# Installs the Debian 12 packages berth needs to build and to run its tests.
# Idempotent: does nothing when everything is already installed.
#   tests/install-deps.sh                 what `make check` needs
#   tests/install-deps.sh --cross ARCH    a cross toolchain, qemu and the -dev
#                                         packages of ARCH (arm64, armhf) for
#                                         `make cross` and `make unit ARCH=`
set -eu

PACKAGES="build-essential pkg-config clang
libseccomp-dev libcap-dev libarchive-dev libssl-dev libyajl-dev libcurl4-openssl-dev
libmosquitto-dev libcmocka-dev libzstd-dev zlib1g-dev libisal-dev
docker-registry skopeo umoci busybox-static mosquitto mosquitto-clients
python3 python3-pytest python3-paho-mqtt iproute2 util-linux procps kmod e2fsprogs openssl
zstd crun runc containernetworking-plugins iptables nftables prometheus
dpkg-dev debhelper fakeroot lintian systemd"

arch=
if [ "${1:-}" = --cross ]; then
	arch=${2:-}
	case "$arch" in
	arm64) triplet=aarch64-linux-gnu ;;
	armhf) triplet=arm-linux-gnueabihf ;;
	*)
		echo "install-deps: --cross takes arm64 or armhf, not \"$arch\"" >&2
		exit 2
		;;
	esac
	# The target's libraries as multiarch packages. Not libisal-dev: it is
	# not Multi-Arch: same, so installing it for ARCH would remove the host's
	# (cross builds go without ISA-L, which is optional). rsync copies the
	# tree as Buildroot does (tests/cross).
	PACKAGES="gcc-$triplet qemu-user-static rsync"
	for p in libseccomp-dev libcap-dev libarchive-dev libssl-dev libyajl-dev \
		libcurl4-openssl-dev libmosquitto-dev libcmocka-dev libzstd-dev zlib1g-dev; do
		PACKAGES="$PACKAGES $p:$arch"
	done
fi

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
# Node.js runs the IoT Hub stand-in (tests/iothub); a nodejs from elsewhere
# that brings its own npm will do.
if [ -z "$arch" ]; then
	command -v node >/dev/null 2>&1 || missing="$missing nodejs"
	command -v npm >/dev/null 2>&1 || missing="$missing npm"
fi

if [ -n "$missing" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "install-deps: missing packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
		exit 1
	fi
	echo "install-deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	if [ -n "$arch" ] && ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
		dpkg --add-architecture "$arch"
	fi
	apt-get update -q
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing
	# The packaged registry, broker and Prometheus start as system services
	# where an init system runs; the tests start their own instances on free
	# ports (of Prometheus they use only promtool).
	for svc in docker-registry mosquitto prometheus; do
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active -q "$svc" 2>/dev/null; then
			systemctl stop "$svc" || true
		fi
	done
fi
[ -z "$arch" ] || exit 0

# The stand-in's npm packages, exactly as package-lock.json pins them; again
# only when the lock file changed since the last install.
standin="$(cd "$(dirname "$0")" && pwd)/iothub"
stamp="$standin/node_modules/.installed-package-lock.json"
if ! cmp -s "$standin/package-lock.json" "$stamp"; then
	echo "install-deps: npm ci in tests/iothub"
	(cd "$standin" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
	cp "$standin/package-lock.json" "$stamp"
fi
