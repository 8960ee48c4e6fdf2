#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Proves the harness and the systemd features owampd relies on, without
# owampd: socket activation with Accept=no into a hardened DynamicUser
# service, transient DynamicUser units, LogExtraFields= journal fields,
# sd_journal_send from a sandboxed service, and `systemd-analyze security`.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$OWAMP_IT_LIB"

port=8861
sid=abc$RANDOM

it_step "harness: booted by a real systemd, project staged"
assert_eq systemd "$(cat /proc/1/comm)" "PID 1"
assert_eq "$OWAMP_IT_OUT" "$(findmnt -n -o TARGET --target "$OWAMP_IT_OUT")" "out folder is a bind mount"
assert_success test -x "$OWAMP_IT_BIN/owamp-it-listen"

it_step "socket activation: TCP $port, Accept=no, hardened DynamicUser service"
cat >/run/systemd/system/owamp-it-probe.socket <<EOF
[Socket]
ListenStream=127.0.0.1:$port
Accept=no
EOF
cat >/run/systemd/system/owamp-it-probe.service <<EOF
[Unit]
Requires=owamp-it-probe.socket
[Service]
Type=notify
ExecStart=$OWAMP_IT_BIN/owamp-it-listen 60
DynamicUser=yes
CapabilityBoundingSet=
NoNewPrivileges=yes
PrivateDevices=yes
PrivateTmp=yes
PrivateUsers=yes
ProtectSystem=strict
ProtectHome=yes
ProtectClock=yes
ProtectControlGroups=yes
ProtectHostname=yes
ProtectKernelLogs=yes
ProtectKernelModules=yes
ProtectKernelTunables=yes
ProtectProc=invisible
ProcSubset=pid
LockPersonality=yes
MemoryDenyWriteExecute=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
RemoveIPC=yes
UMask=0077
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallArchitectures=native
SystemCallFilter=@system-service
EOF
systemctl daemon-reload
systemctl start owamp-it-probe.socket
assert_unit_state owamp-it-probe.socket active
assert_unit_state owamp-it-probe.service inactive
assert_eq 0 "$(pgrep -c -x owamp-it-listen || true)" "owamp-it-listen processes before the first connection"
assert_match "127\.0\.0\.1:$port" "$(ss -Hltn "sport = :$port")" "listener on port $port"
assert_eq "owamp-it-probe.socket" "$(units_matching 'owamp-it-probe.*' | grep -x owamp-it-probe.socket)" \
        "units_matching finds the socket"

reply=$(tcp_readline 127.0.0.1 "$port")
assert_match '^owamp-it-listen uid=[0-9]+ fds=1 connection=1$' "$reply" "first reply"
uid=${reply#*uid=}
uid=${uid%% *}
assert_num "$uid" '>=' 61184 "service uid (DynamicUser range)"
assert_num "$uid" '<=' 65519 "service uid (DynamicUser range)"
assert_unit_state owamp-it-probe.service active
assert_ne 0 "$(unit_prop owamp-it-probe.service MainPID)" "MainPID of the activated service"
assert_match '^owamp-it-listen uid=[0-9]+ fds=1 connection=2$' "$(tcp_readline 127.0.0.1 "$port")" \
        "second reply, same process"
# sd_journal_send works from the sandbox (needs AF_UNIX).
wait_for 5 test "$(journal_count _SYSTEMD_UNIT=owamp-it-probe.service OWAMP_IT_EVENT=listening)" = 1

it_step "transient unit with DynamicUser=yes and LogExtraFields=OWAMP_SID=$sid"
systemd-run --quiet --wait --unit=owamp-it-transient -p DynamicUser=yes \
        -p LogExtraFields=OWAMP_SID="$sid" -- /bin/sh -c 'echo "transient says hello"; echo "second line"'
wait_for 5 test "$(journal_count OWAMP_SID="$sid")" -ge 2
assert_eq "transient says hello
second line" "$(journal_messages OWAMP_SID="$sid")" "messages tagged OWAMP_SID=$sid"
tuid=$(journal_field _UID OWAMP_SID="$sid" | sort -u)
assert_match '^[0-9]+$' "$tuid" "one _UID for the transient unit's lines"
assert_num "$tuid" '>=' 61184 "transient unit _UID (DynamicUser range)"
assert_num "$tuid" '<=' 65519 "transient unit _UID (DynamicUser range)"
assert_eq owamp-it-transient.service "$(journal_field _SYSTEMD_UNIT OWAMP_SID="$sid" | sort -u)" "unit of the tagged lines"
assert_eq 0 "$(journal_count OWAMP_SID=no-such-session)" "entries for an unknown OWAMP_SID"

it_step "systemd-analyze security"
exposure=$(unit_exposure owamp-it-probe.service)
it_log "owamp-it-probe.service exposure: $exposure"
assert_num "$exposure" '<=' 2.0 "exposure of the hardened probe service"
plain=$(unit_exposure owamp-it.service)
it_log "owamp-it.service (unhardened) exposure: $plain"
assert_num "$plain" '>' "$exposure" "an unhardened unit scores worse than the hardened one"

systemctl stop owamp-it-probe.socket owamp-it-probe.service
assert_unit_state owamp-it-probe.service inactive
