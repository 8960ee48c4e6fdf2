# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# The library for system tests running inside the container. A test starts
#
#     #!/bin/bash
#     . "$OWAMP_IT_LIB"
#
# which turns on `set -euo pipefail`, reports any failing command with its
# file and line, and prints a PASS/FAIL/SKIP line when the test ends.
#
# Reporting:   it_step TEXT, it_log TEXT, it_fail TEXT, it_skip REASON,
#              it_on_exit COMMAND (clean-up, run in reverse order at exit)
# Assertions:  assert_eq EXPECTED ACTUAL [WHAT], assert_ne, assert_match ERE
#              STRING [WHAT], assert_no_match, assert_num A OP B [WHAT]
#              (OP: < <= == != >= >, decimals allowed), assert_success CMD...,
#              assert_failure CMD..., assert_unit_state UNIT STATE
# Waiting:     wait_for SECONDS CMD... (fails the test on timeout),
#              retry_for SECONDS CMD... (returns 1 on timeout)
# Journal:     journal_sync, journal_count MATCH..., journal_field FIELD
#              MATCH..., journal_messages MATCH... (MATCH as for journalctl:
#              FIELD=VALUE, with + for OR)
# Units:       units_matching PATTERN, unit_prop UNIT PROPERTY,
#              unit_exposure UNIT (the number `systemd-analyze security`
#              prints, e.g. 1.7)
# Network:     tcp_readline HOST PORT [SECONDS] (connect, print one line)
#
# Environment set by container-run.sh: OWAMP_IT_TEST (the test's name),
# OWAMP_IT_BIN (helper programs built in test/system), OWAMP_IT_OUT (a folder
# copied back to the host: put extra artefacts here), OWAMP_IT_TESTDIR (a
# copy of the test's folder, also the working directory), OWAMP_IT_STAGE (the
# staged `meson install`, already copied into /).

set -euo pipefail
set -o errtrace

: "${OWAMP_IT_TEST:=${0##*/}}"
it__assertions=0
it__exit_cmds=()

# file:line of the test code that called into the library.
it__where() {
        local i
        for ((i = 1; i < ${#BASH_SOURCE[@]}; i++)); do
                if [ "${BASH_SOURCE[$i]}" != "${BASH_SOURCE[0]}" ]; then
                        echo "${BASH_SOURCE[$i]##*/}:${BASH_LINENO[$((i - 1))]}"
                        return
                fi
        done
        echo "?"
}

it_log() {
        printf '%s\n' "$*"
}

it_step() {
        printf '== %s\n' "$*"
}

it_fail() {
        printf 'FAIL: %s\n  at %s\n' "$*" "$(it__where)" >&2
        exit 1
}

it_skip() {
        printf 'SKIP: %s\n' "$*"
        exit 77
}

it_on_exit() {
        it__exit_cmds+=("$*")
}

it__pass() {
        it__assertions=$((it__assertions + 1))
}

it__on_err() {
        local rc=$1 cmd=$2 line=$3 src=$4
        printf 'FAIL: command exited with status %s: %s\n  at %s:%s\n' "$rc" "$cmd" "${src##*/}" "$line" >&2
        exit "$rc"
}

it__on_exit() {
        local rc=$? i
        trap - ERR
        set +e
        for ((i = ${#it__exit_cmds[@]} - 1; i >= 0; i--)); do
                eval "${it__exit_cmds[$i]}"
        done
        case $rc in
        0) printf 'PASS: %s (%d assertions)\n' "$OWAMP_IT_TEST" "$it__assertions" ;;
        77) printf 'SKIP: %s\n' "$OWAMP_IT_TEST" ;;
        *) printf 'FAIL: %s (status %d after %d passed assertions)\n' "$OWAMP_IT_TEST" "$rc" "$it__assertions" ;;
        esac
        exit "$rc"
}

# SIGTERM comes from the time limit in container-run.sh (`timeout`).
it__on_signal() {
        printf 'FAIL: killed by SIG%s (over the time limit?)\n' "$1" >&2
        exit $((128 + $2))
}

trap 'it__on_err $? "$BASH_COMMAND" "$LINENO" "${BASH_SOURCE[0]}"' ERR
trap 'it__on_signal TERM 15' TERM
trap 'it__on_signal INT 2' INT
trap it__on_exit EXIT

# --- assertions ------------------------------------------------------------

assert_eq() {
        [ "$1" = "$2" ] || it_fail "${3:-value}: expected '$1', got '$2'"
        it__pass
}

assert_ne() {
        [ "$1" != "$2" ] || it_fail "${3:-value}: expected anything but '$1'"
        it__pass
}

assert_match() {
        [[ $2 =~ $1 ]] || it_fail "${3:-value}: '$2' does not match /$1/"
        it__pass
}

assert_no_match() {
        [[ ! $2 =~ $1 ]] || it_fail "${3:-value}: '$2' matches /$1/"
        it__pass
}

# assert_num A OP B [WHAT]: numeric comparison, decimals allowed.
assert_num() {
        local a=$1 op=$2 b=$3 what=${4:-number} num='^-?[0-9]+([.][0-9]+)?$'
        [[ $a =~ $num ]] || it_fail "$what: '$a' is not a number"
        [[ $b =~ $num ]] || it_fail "$what: '$b' is not a number"
        case $op in
        '<' | '<=' | '==' | '!=' | '>=' | '>') ;;
        *) it_fail "assert_num: unknown operator '$op'" ;;
        esac
        awk -v a="$a" -v b="$b" -v op="$op" 'BEGIN {
                a += 0; b += 0
                if (op == "<") r = a < b
                else if (op == "<=") r = a <= b
                else if (op == "==") r = a == b
                else if (op == "!=") r = a != b
                else if (op == ">=") r = a >= b
                else r = a > b
                exit !r
        }' || it_fail "$what: expected $a $op $b"
        it__pass
}

assert_success() {
        local output rc=0
        output=$("$@" 2>&1) || rc=$?
        [ "$rc" = 0 ] || it_fail "'$*' exited with status $rc: $output"
        it__pass
}

assert_failure() {
        local output rc=0
        output=$("$@" 2>&1) || rc=$?
        [ "$rc" != 0 ] || it_fail "'$*' succeeded but should have failed: $output"
        it__pass
}

# assert_unit_state UNIT STATE: STATE as `systemctl is-active` prints it
# (active, inactive, failed, activating, ...).
assert_unit_state() {
        local state
        state=$(systemctl is-active -- "$1" 2>/dev/null || true)
        [ "$state" = "$2" ] || it_fail "unit $1: expected state '$2', got '$state'"
        it__pass
}

# --- waiting ---------------------------------------------------------------

# retry_for SECONDS CMD...: run CMD every 0.1 s until it succeeds, at most
# SECONDS*10 times. Each try should be quick; the test's own time limit
# bounds a try that hangs.
retry_for() {
        local secs=$1 i tries
        shift
        [[ $secs =~ ^[0-9]+$ ]] || it_fail "retry_for: bad SECONDS '$secs'"
        tries=$((secs * 10))
        for ((i = 0; i < tries; i++)); do
                "$@" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}

# wait_for SECONDS CMD...: like retry_for, but a timeout fails the test with
# the last output of CMD.
wait_for() {
        local secs=$1 output rc=0
        shift
        if retry_for "$secs" "$@"; then
                it__pass
                return 0
        fi
        output=$("$@" 2>&1) || rc=$?
        [ "$rc" = 0 ] && { it__pass; return 0; }
        it_fail "timed out after ${secs}s waiting for: $* (last status $rc: $output)"
}

# --- journal ---------------------------------------------------------------

# Make journald write out (and index) everything queued so far.
journal_sync() {
        journalctl --sync
}

# journal_count MATCH...: the number of entries matching.
journal_count() {
        [ $# -gt 0 ] || it_fail "journal_count: no match given"
        journal_sync
        journalctl --no-pager -q -o json -- "$@" | wc -l
}

# journal_field FIELD MATCH...: the value of FIELD in each matching entry that
# has it, one per line (text fields only).
journal_field() {
        local field=$1
        shift
        [ $# -gt 0 ] || it_fail "journal_field: no match given"
        journal_sync
        journalctl --no-pager -q -o export --output-fields="$field" -- "$@" |
                sed -n "s/^$field=//p"
}

# journal_messages MATCH...: the MESSAGE of each matching entry.
journal_messages() {
        [ $# -gt 0 ] || it_fail "journal_messages: no match given"
        journal_sync
        journalctl --no-pager -q -o cat -- "$@"
}

# --- units -----------------------------------------------------------------

# units_matching PATTERN: names of loaded units (any state) matching the
# glob PATTERN, one per line.
units_matching() {
        systemctl list-units --all --full --plain --no-legend --no-pager -- "$1" |
                awk '{ print ($1 == "●" || $1 == "*") ? $2 : $1 }'
}

unit_prop() {
        systemctl show -P "$2" -- "$1"
}

# unit_exposure UNIT: the overall exposure level from `systemd-analyze
# security` (0.0 safest ... 10.0), e.g. 1.7.
unit_exposure() {
        local out n
        out=$(systemd-analyze security --no-pager -- "$1" 2>&1) ||
                it_fail "systemd-analyze security $1 failed: $out"
        n=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9.]*\) .*/\1/p')
        [ -n "$n" ] || it_fail "no exposure level in systemd-analyze output for $1: $out"
        echo "$n"
}

# --- network ---------------------------------------------------------------

# tcp_readline HOST PORT [SECONDS]: connect, print the first line received.
tcp_readline() {
        # shellcheck disable=SC2016 # expanded by the inner bash
        timeout "${3:-5}" bash -c 'exec 3<>"/dev/tcp/$1/$2" && IFS= read -r line <&3 && printf "%s\n" "$line"' \
                tcp_readline "$1" "$2"
}
