# SPDX-License-Identifier: Apache-2.0
# Sourced by the tools/ scripts: installs what a step needs when it is missing.

deps_build="meson ninja-build gcc pkg-config nettle-dev libsystemd-dev check scdoc python3"
# test/integration/test-prometheus.py: promtool, a Prometheus server and
# node_exporter's textfile collector, run on free loopback ports (the
# packages' own services, where apt starts them, are left alone).
deps_prometheus="prometheus prometheus-node-exporter"

deps_missing() {
        missing=""
        for p in "$@"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                        missing="$missing $p"
        done
        echo "$missing"
}

deps_install() {
        case "$1" in
        build) pkgs=$deps_build ;;
        *) pkgs=$1 ;;
        esac
        # shellcheck disable=SC2086
        missing=$(deps_missing $pkgs)
        [ -z "$missing" ] && return 0
        if [ "$(id -u)" != 0 ]; then
                echo "missing packages:$missing (run as root to install them)" >&2
                exit 1
        fi
        echo "installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        # shellcheck disable=SC2086
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
}
