#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The container image for the system tests: a minimal Debian rootfs with a
# real systemd, built once with debootstrap and cached as a tar.zst under
# $OWAMP_IT_CACHE (default /var/cache/owamp-it), keyed by a hash of what goes
# into it (package list, suite, mirror, the host's libsystemd0 version and
# the recipe version below): change any of them and the next run rebuilds.
#
# Usage: test/system/rootfs.sh build    build the tar.zst unless cached
#        test/system/rootfs.sh ensure   build if needed, make sure an
#                                       extracted copy exists, print its path
#        test/system/rootfs.sh extract DIR   extract the cached tar into DIR
#        test/system/rootfs.sh info     print the key, its inputs and paths
#        test/system/rootfs.sh clean    remove the whole cache
#
# OWAMP_IT_IMAGE=build selects a second image: the same plus what building
# the project needs (test-readme-install.sh builds and installs it in the
# container as the README says); OWAMP_IT_IMAGE=packages a third: the base
# plus rpm (test-packages.sh installs the .debs with apt and the rpms into a
# scratch root with rpm --root). Each image keeps its own cache entry; a
# rebuild prunes only older entries of the same image.
#
# Needs root, debootstrap and zstd. Every step holds a lock on the cache, so
# concurrent runs wait for each other (bounded) instead of racing.
set -eu

# Bump when the way the rootfs is made changes in a way the inputs below do
# not show (the trimming, the tar flags, ...).
recipe_version=3

# What the in-container tests and the project's programs need at run time.
# libnettle8 and libsystemd0 are the project's runtime libraries (libsystemd0
# comes with systemd); iproute2 gives `ss`/`ip`, procps gives `pgrep`/`ps`.
packages="systemd,systemd-sysv,dbus,libnss-systemd,libnettle8,iproute2,procps"
image=${OWAMP_IT_IMAGE:-base}
case $image in
base) ;;
build) packages="$packages,meson,ninja-build,gcc,libc6-dev,pkg-config,nettle-dev,libsystemd-dev,check,scdoc" ;;
packages) packages="$packages,rpm" ;;
*)
        echo "rootfs: error: OWAMP_IT_IMAGE must be base, build or packages" >&2
        exit 2
        ;;
esac

cache=${OWAMP_IT_CACHE:-/var/cache/owamp-it}
lock_wait_sec=${OWAMP_IT_LOCK_WAIT_SEC:-900}

log() { echo "rootfs: $*" >&2; }
die() { log "error: $*"; exit 1; }

suite() {
        codename=""
        # shellcheck disable=SC1091
        [ -r /etc/os-release ] && codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
        echo "${OWAMP_IT_SUITE:-${codename:-bookworm}}"
}

# The Debian mirror the host's apt uses for the main suite, so debootstrap
# reaches the same archive (and so the same libsystemd) as the host's build.
mirror() {
        if [ -n "${OWAMP_IT_MIRROR:-}" ]; then
                echo "$OWAMP_IT_MIRROR"
                return
        fi
        s=$(suite)
        m=""
        for f in /etc/apt/sources.list.d/*.sources; do
                [ -r "$f" ] || continue
                # deb822: the first paragraph with Types: deb whose Suites
                # list the plain suite.
                m=$(awk -v suite="$s" '
                        function flush() {
                                if (isdeb && hassuite && uri != "" && out == "") out = uri
                                isdeb = 0; hassuite = 0; uri = ""
                        }
                        /^[ \t]*$/ { flush(); next }
                        /^Types:/ { for (i = 2; i <= NF; i++) if ($i == "deb") isdeb = 1 }
                        /^URIs:/ { uri = $2 }
                        /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hassuite = 1 }
                        END { flush(); print out }' "$f")
                [ -n "$m" ] && break
        done
        if [ -z "$m" ]; then
                for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
                        [ -r "$f" ] || continue
                        m=$(awk -v suite="$s" '
                                $1 == "deb" {
                                        i = 2
                                        if ($i ~ /^\[/) while ($i !~ /\]$/) i++
                                        if ($i ~ /^\[/ || $i ~ /\]$/) i++
                                        if ($(i + 1) == suite) { print $i; exit }
                                }' "$f")
                        [ -n "$m" ] && break
                done
        fi
        echo "${m:-http://deb.debian.org/debian}"
}

host_libsystemd() {
        dpkg-query -W -f='${Version}' libsystemd0 2>/dev/null || echo unknown
}

inputs() {
        # (The base image's inputs, and so its key, are what they were
        # before there were two.)
        [ "$image" = base ] || echo "image=$image"
        echo "recipe=$recipe_version"
        echo "suite=$(suite)"
        echo "arch=$(dpkg --print-architecture)"
        echo "mirror=$(mirror)"
        echo "packages=$packages"
        echo "host-libsystemd0=$(host_libsystemd)"
}

key() {
        inputs | sha256sum | cut -c1-16
}

tarball() { echo "$cache/rootfs-$(key).tar.zst"; }
basedir() { echo "$cache/root-$(key)"; }

need_root() {
        [ "$(id -u)" = 0 ] || die "must run as root"
}

with_lock() {
        mkdir -p "$cache"
        # The lock is taken on fd 9 for the lifetime of this process.
        exec 9>"$cache/lock"
        flock -w "$lock_wait_sec" 9 || die "could not lock $cache/lock within ${lock_wait_sec}s"
}

# Remove cache entries for other keys: a changed package list must not leave
# old images behind forever.
# The image (base, build) an entry's key was made for, from its inputs.
image_of() {
        i=$(sed -n 's/^image=//p' "$cache/rootfs-$1.inputs" 2>/dev/null)
        echo "${i:-base}"
}

prune() {
        k=$(key)
        # The inputs last: they say which image the others belong to.
        for f in "$cache"/root-* "$cache"/rootfs-*.tar.zst "$cache"/rootfs-*.inputs; do
                [ -e "$f" ] || continue
                case "$f" in
                *"-$k".tar.zst | *"-$k".inputs | *"-$k" | *"-$k.ok") ;;
                *)
                        n=${f##*/}
                        n=${n#rootfs-}
                        n=${n#root-}
                        n=${n%%.*}
                        [ "$(image_of "$n")" = "$image" ] || continue
                        log "removing stale $f"
                        rm -rf "$f"
                        ;;
                esac
        done
}

trim() {
        r=$1
        rm -f "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin
        rm -rf "$r"/var/lib/apt/lists/* "$r"/var/log/apt/* "$r"/var/log/dpkg.log \
                "$r"/var/log/bootstrap.log "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old
        rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/locale/* "$r"/usr/share/info/*
        # An empty machine-id: every boot gets its own transient one, and the
        # image never looks like a first boot (no systemd-firstboot prompts).
        : >"$r"/etc/machine-id
        # debootstrap copies the host's name; without it the container is
        # called after its machine name.
        rm -f "$r"/etc/hostname
        rm -f "$r"/var/lib/dbus/machine-id
        ln -s /etc/machine-id "$r"/var/lib/dbus/machine-id
}

do_build() {
        t=$(tarball)
        if [ -s "$t" ]; then
                return 0
        fi
        command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
        command -v zstd >/dev/null || die "zstd is not installed (apt-get install zstd)"
        prune
        k=$(key)
        work=$(mktemp -d "$cache/build.XXXXXX")
        start=$(date +%s)
        log "building $(suite) rootfs $k from $(mirror) (debootstrap, about a minute)"
        if ! debootstrap --variant=minbase --include="$packages" "$(suite)" "$work/root" "$(mirror)" \
                >"$work/debootstrap.log" 2>&1; then
                tail -n 30 "$work/debootstrap.log" >&2
                rm -rf "$work"
                die "debootstrap failed"
        fi
        trim "$work/root"
        guest=$(dpkg-query --admindir="$work/root/var/lib/dpkg" -W -f='${Version}' libsystemd0 2>/dev/null ||
                echo unknown)
        if [ "$guest" != "$(host_libsystemd)" ]; then
                log "note: container libsystemd0 $guest differs from the host's $(host_libsystemd)"
        fi
        tar -C "$work/root" --numeric-owner --xattrs --xattrs-include='*' -cf - . |
                zstd -q -T0 -3 -o "$work/rootfs.tar.zst"
        inputs >"$cache/rootfs-$k.inputs"
        mv "$work/rootfs.tar.zst" "$t"
        # The fresh tree is a valid extracted copy: keep it instead of
        # extracting the tarball again.
        b=$(basedir)
        rm -rf "$b" "$b.ok"
        mv "$work/root" "$b"
        touch "$b.ok"
        rm -rf "$work"
        log "built $t ($(du -h "$t" | cut -f1), $(($(date +%s) - start)) s)"
}

do_extract() {
        dest=$1
        t=$(tarball)
        [ -s "$t" ] || die "no cached rootfs $t (run: $0 build)"
        mkdir -p "$dest"
        zstd -q -d -c "$t" | tar -C "$dest" --numeric-owner --xattrs --xattrs-include='*' -xf -
}

do_ensure() {
        do_build
        b=$(basedir)
        if [ ! -e "$b.ok" ]; then
                rm -rf "$b"
                start=$(date +%s)
                do_extract "$b"
                touch "$b.ok"
                log "extracted $(tarball) in $(($(date +%s) - start)) s"
        fi
        echo "$b"
}

case "${1:-}" in
build)
        need_root
        with_lock
        do_build
        ;;
ensure)
        need_root
        with_lock
        do_ensure
        ;;
extract)
        [ $# = 2 ] || die "usage: $0 extract DIR"
        need_root
        with_lock
        do_extract "$2"
        ;;
info)
        inputs
        echo "key=$(key)"
        echo "tarball=$(tarball)"
        echo "basedir=$(basedir)"
        ;;
clean)
        need_root
        with_lock
        rm -rf "$cache"/rootfs-* "$cache"/root-* "$cache"/build.*
        ;;
*)
        echo "usage: $0 build|ensure|extract DIR|info|clean" >&2
        exit 2
        ;;
esac
