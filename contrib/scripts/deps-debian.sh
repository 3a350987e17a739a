#!/bin/sh
# deps-debian.sh: installs every Debian 12 package that building and testing
# Cicada needs (compiler, autotools, libraries, Check, Paho C for the
# integration tests, clang for fuzzing, mosquitto for interop tests).
# Run as root.  When all of them are installed already it touches nothing,
# not even `apt-get update`, so repeating it works without a network.

set -eu

packages="build-essential autoconf automake libtool pkg-config
	libev-dev libwolfssl-dev libsqlite3-dev check libpaho-mqtt-dev
	clang libclang-rt-14-dev mosquitto mosquitto-clients"

# mosquitto is here for the interop tests only, but its package starts a
# daemon on port 1883, which is cicada's default port: keep it stopped.
stop_mosquitto() {
	if command -v systemctl >/dev/null 2>&1 &&
	   systemctl is-active --quiet mosquitto 2>/dev/null; then
		echo "deps-debian.sh: stopping the mosquitto service (it holds port 1883)"
		systemctl disable --now mosquitto ||
			echo "deps-debian.sh: could not stop mosquitto; free port 1883 before running cicada" >&2
	fi
}

missing=
for p in $packages; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q ' installed$'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "deps-debian.sh: all build and test packages are installed"
	stop_mosquitto
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps-debian.sh: missing:$missing; run me as root" >&2
	exit 1
fi

echo "deps-debian.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # one word per package
apt-get install -y --no-install-recommends $missing
stop_mosquitto
