#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Sessions through the socket-activated owampd:
#  - owping to and from it in modes O and A succeeds, and owampd's endpoint
#    of every session ran as a transient unit owamp-session-<SID>.service
#    under a dynamic UID (journal _SYSTEMD_UNIT=, _UID=), collected after;
#  - `journalctl OWAMP_SID=<sid>` has the lines of owampd, the launcher and
#    the session's unit, from the request to the fetch, with MESSAGE_ID and
#    PRIORITY; OWAMP_PEER/MODE/KEYID on owampd's lines;
#  - IPv4 clients on the dual-stack socket are IPv4 everywhere (peer, SID);
#  - `systemd-analyze security owampd.service` meets the goal (<= 3.0);
#  - the sessionlauncher keyword: owampd run by hand is refused by
#    owampd-launcher (only owampd.service may start units), so "systemd"
#    fails, "auto" falls back to child processes, "fork" never asks.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$OWAMP_IT_LIB"
# shellcheck source=owampd-lib.sh
. ./owampd-lib.sh

owampd_setup_keys
systemctl start owampd.socket

# run_owping NAME ARGS...: owping, its report in $OWAMP_IT_OUT/NAME.txt;
# both sessions complete. Sets $sids.
run_owping() {
        local out="$OWAMP_IT_OUT/$1.txt"
        shift
        # -L 0.5: a short Timeout, so each report comes sooner.
        owping -L 0.5 "$@" >"$out" 2>&1 || it_fail "owping $* failed: $(cat "$out")"
        mapfile -t sids < <(owping_sids "$out")
        assert_eq 2 "${#sids[@]}" "sessions in the report of owping $*"
        assert_eq 2 "$(grep -c '^20 sent, 0 lost' "$out")" "complete sessions of owping $*"
}

# The session of two that owampd received (and owping fetched).
fetched_sid() {
        local sid
        for sid in "$@"; do
                if [ "$(journal_count OWAMP_SID="$sid" MESSAGE_ID="$MSGID_DATA_FETCHED")" -ge 1 ]; then
                        echo "$sid"
                        return
                fi
        done
}

it_step "mode O, to and from 127.0.0.1 over the dual-stack socket"
run_owping owping-O -A O -c 20 -i 0.01 127.0.0.1
sids_o=("${sids[@]}")
for sid in "${sids_o[@]}"; do
        check_session_ran_as_unit "$sid"
done
accepted=$(journal_msgids _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_ACCEPTED")
assert_eq 1 "$(echo "$accepted" | wc -l)" "connections accepted so far"
assert_eq "owampd.service $MSGID_CONNECTION_ACCEPTED 6" "$accepted" "connection accepted, at info"
assert_eq 127.0.0.1 "$(journal_field OWAMP_PEER _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_ACCEPTED")" \
        "OWAMP_PEER of a v4 client on the v6 socket"
assert_eq open "$(journal_field OWAMP_MODE _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_ACCEPTED")" \
        "OWAMP_MODE"
assert_eq 3 "$(journal_field SYSLOG_FACILITY _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_ACCEPTED")" \
        "SYSLOG_FACILITY (daemon)"
recv_o=$(fetched_sid "${sids_o[@]}")
assert_match '^7f000001[0-9a-f]{24}$' "$recv_o" "SID owampd made for a v4-mapped peer: its IPv4 address first"

it_step "journalctl OWAMP_SID=$recv_o: owampd, launcher and unit, request to fetch"
unit="owamp-session-$recv_o.service"
journal_msgids OWAMP_SID="$recv_o" >"$OWAMP_IT_OUT/journal-$recv_o.txt"
ids=$(cat "$OWAMP_IT_OUT/journal-$recv_o.txt")
it_log "$ids"
assert_eq "owampd.service $MSGID_SESSION_REQUESTED 6" "$(echo "$ids" | head -n1)" "the first line: the request"
assert_eq "owampd.service $MSGID_DATA_FETCHED 6" "$(echo "$ids" | grep '^owampd.service ' | tail -n1)" \
        "owampd's last line: the fetch"
# In order (three processes log at once: only the causal order counts):
# requested, accepted, started, finished (counts), finished (stored),
# fetched; the launcher's unit started before unit finished, the unit's
# endpoint ready before done; the unit's end before the data is final.
order=$(echo "$ids" | awk '{ print $2 }' | tr '\n' ' ')
assert_match "^$MSGID_SESSION_REQUESTED $MSGID_SESSION_ACCEPTED $MSGID_SESSION_STARTED $MSGID_SESSION_FINISHED $MSGID_SESSION_FINISHED $MSGID_DATA_FETCHED \$" \
        "$(echo "$ids" | awk '$1 == "owampd.service" { print $2 }' | tr '\n' ' ')" "order of owampd's events"
assert_match "$MSGID_UNIT_STARTED .*$MSGID_UNIT_FINISHED" "$order" "order of the launcher's events"
assert_match "$MSGID_SESSION_ACCEPTED .*$MSGID_ENDPOINT_READY .*$MSGID_ENDPOINT_DONE .*$MSGID_DATA_FETCHED" "$order" \
        "order of the unit's events"
assert_match "$unit $MSGID_ENDPOINT_READY 6" "$ids" "the unit's own line"
assert_match "$unit $MSGID_ENDPOINT_DONE 6" "$ids" "the unit's counts"
assert_match "owampd-launcher@[^ ]+ $MSGID_UNIT_FINISHED 6" "$ids" "the launcher saw the unit end"
assert_eq "$(printf '%s\n' owampd.service owampd-launcher "$unit" | sort)" \
        "$(echo "$ids" | awk '{ sub(/@.*/, "", $1); print $1 }' | sort -u)" "units in journalctl OWAMP_SID="
assert_eq 0 "$(journal_count OWAMP_SID="$recv_o" PRIORITY=0 PRIORITY=1 PRIORITY=2 PRIORITY=3 PRIORITY=4)" \
        "errors or warnings about a good session"
assert_match 'Receiver done: 20 received, 0 lost' "$(journal_messages _SYSTEMD_UNIT="$unit")" "the unit's counts"
assert_eq 127.0.0.1 "$(journal_field OWAMP_PEER OWAMP_SID="$recv_o" _SYSTEMD_UNIT=owampd.service | sort -u)" \
        "OWAMP_PEER on every owampd line of the session"
# Nothing of owampd's says ::ffff: anywhere.
assert_eq 0 "$(journalctl --no-pager -q _SYSTEMD_UNIT=owampd.service | grep -c 'ffff:' || true)" "v4-mapped addresses in owampd's log"

it_step "mode A with key id demo"
run_owping owping-A -A A -u demo -k /root/client.pfs -c 20 -i 0.01 127.0.0.1
for sid in "${sids[@]}"; do
        check_session_ran_as_unit "$sid"
        assert_eq authenticated "$(journal_field OWAMP_MODE OWAMP_SID="$sid" MESSAGE_ID="$MSGID_SESSION_ACCEPTED")" \
                "OWAMP_MODE of session $sid"
        assert_eq demo "$(journal_field OWAMP_KEYID OWAMP_SID="$sid" MESSAGE_ID="$MSGID_SESSION_ACCEPTED")" \
                "OWAMP_KEYID of session $sid"
done
assert_ne "" "$(fetched_sid "${sids[@]}")" "owping fetched the session owampd received in mode A"
uids=$(journal_field _UID _SYSTEMD_UNIT="owamp-session-${sids[0]}.service" | sort -u)
it_log "dynamic UIDs: $uids"
# The wrong pass-phrase: refused, at notice, with the reason and the key id.
printf 'demo\t%s\n' "$(printf wrong | od -An -tx1 | tr -d ' \n')" >/root/wrong.pfs
assert_failure owping -L 0.5 -A A -u demo -k /root/wrong.pfs -c 20 -i 0.01 127.0.0.1
wait_for 5 journal_has 1 _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_REFUSED"
refused=$(journal_msgids _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_REFUSED")
assert_eq "owampd.service $MSGID_CONNECTION_REFUSED 5" "$refused" "a refused connection, at notice"
assert_match "authentication failed for key id 'demo' \(wrong passphrase\)" \
        "$(journal_messages _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_REFUSED")" "the reason"
assert_eq "demo 127.0.0.1" \
        "$(journal_field OWAMP_KEYID MESSAGE_ID="$MSGID_CONNECTION_REFUSED") $(journal_field OWAMP_PEER MESSAGE_ID="$MSGID_CONNECTION_REFUSED")" \
        "OWAMP_KEYID and OWAMP_PEER of the refusal"

it_step "IPv6"
if ip -6 addr show dev lo | grep -q 'inet6 ::1/'; then
        run_owping owping-v6 -c 20 -i 0.01 ::1
        for sid in "${sids[@]}"; do
                check_session_ran_as_unit "$sid"
                assert_eq ::1 "$(journal_field OWAMP_PEER OWAMP_SID="$sid" MESSAGE_ID="$MSGID_SESSION_ACCEPTED")" \
                        "OWAMP_PEER of an IPv6 client"
        done
else
        it_log "no ::1 in this container; IPv6 not tested"
fi

it_step "no unit, process or socket left after the sessions"
wait_for 10 no_session_units
assert_eq 0 "$(unit_prop owampd.service NRestarts)" "owampd restarts"
assert_eq "0 control connections, 0 sessions running" "$(unit_prop owampd.service StatusText)" "STATUS="
# owampd holds its listener, the launcher connection, the journal; no test sockets.
assert_eq "" "$(ss -Hunp | grep '"owampd"' || true)" "UDP sockets of owampd"

it_step "reload a policy for IPv4 loopback only: v4-mapped peers match it as IPv4"
cat >/etc/owamp/owampd.limits <<'EOF2'
limit root with allow_open_mode=off
limit loopback4 with parent=root, allow_open_mode=on
assign default root
assign net 127.0.0.1/32 loopback4
EOF2
systemctl reload owampd.service
wait_for 5 journal_has 1 _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONFIG_RELOADED"
assert_unit_state owampd.service active
run_owping owping-policy -A O -c 20 -i 0.01 127.0.0.1
assert_match 'mode open, class loopback4' \
        "$(journal_messages _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_ACCEPTED" | tail -n1)" \
        "class of 127.0.0.1 arriving as ::ffff:127.0.0.1"
if ip -6 addr show dev lo | grep -q 'inet6 ::1/'; then
        # ::1 is not in 127.0.0.1/32: open mode is not offered to it.
        before=$(journal_count _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_ACCEPTED" OWAMP_PEER=::1)
        assert_failure owping -L 0.5 -A O -c 20 -i 0.01 ::1
        assert_eq "$before" "$(journal_count _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_ACCEPTED" OWAMP_PEER=::1)" \
                "connections accepted from ::1 in open mode"
fi
rm /etc/owamp/owampd.limits
systemctl reload owampd.service

it_step "exposure of owampd.service"
systemd-analyze security --no-pager owampd.service >"$OWAMP_IT_OUT/security-owampd.service.txt" 2>&1 || true
exposure=$(unit_exposure owampd.service)
it_log "owampd.service exposure: $exposure"
echo "owampd.service $exposure" >>"$OWAMP_IT_OUT/exposure.txt"
assert_num "$exposure" '<=' 3.0 "exposure of owampd.service"
launcher=$(units_matching 'owampd-launcher@*.service' | head -n1)
systemd-analyze security --no-pager "$launcher" >"$OWAMP_IT_OUT/security-owampd-launcher.txt" 2>&1 || true
lexp=$(unit_exposure "$launcher")
it_log "$launcher exposure: $lexp"
echo "owampd-launcher@.service $lexp" >>"$OWAMP_IT_OUT/exposure.txt"
assert_num "$lexp" '<=' 3.0 "exposure of the launcher"
lpid=$(unit_prop "$launcher" MainPID)
assert_eq "0000000000000000" "$(sed -n 's/^CapBnd:[[:space:]]*//p' "/proc/$lpid/status")" "the launcher's bounding set"

it_step "sessionlauncher: owampd by hand, not in owampd.service"
hand=$(mktemp -d /var/tmp/owampd-hand.XXXXXX)
chown owamp:owamp "$hand"
hand_pid=""
stop_hand() {
        if [ -n "$hand_pid" ]; then
                kill "$hand_pid" 2>/dev/null || true
                wait "$hand_pid" 2>/dev/null || true
                hand_pid=""
        fi
}
it_on_exit stop_hand
refused_before=$(journal_count MESSAGE_ID="$MSGID_LAUNCH_REFUSED")

printf 'sessionlauncher systemd\n' >"$hand/owampd.conf"
rc=0
runuser -u owamp -- timeout 20 owampd -Z -c "$hand" -d "$hand" -R "$hand" -S 127.0.0.1:8870 \
        >"$OWAMP_IT_OUT/hand-systemd.log" 2>&1 || rc=$?
assert_eq 1 "$rc" "owampd with sessionlauncher systemd outside owampd.service"
assert_match 'sessionlauncher systemd: cannot use owampd-launcher' "$(cat "$OWAMP_IT_OUT/hand-systemd.log")" \
        "owampd says why"
wait_for 5 journal_has $((refused_before + 1)) MESSAGE_ID="$MSGID_LAUNCH_REFUSED"
assert_match 'only owampd.service may start session units' \
        "$(journal_messages MESSAGE_ID="$MSGID_LAUNCH_REFUSED" | tail -n1)" "the launcher refused the peer"

# start_hand MODE: owampd by hand on 127.0.0.1:8870 with that launcher,
# logging with syslog facility local5 (-e).
start_hand() {
        printf 'sessionlauncher %s\n' "$1" >"$hand/owampd.conf"
        runuser -u owamp -- owampd -Z -e local5 -c "$hand" -d "$hand" -R "$hand" -S 127.0.0.1:8870 \
                >"$OWAMP_IT_OUT/hand-$1.log" 2>&1 &
        hand_pid=$!
        wait_for 10 grep -q 'ready: .*sessions via' "$OWAMP_IT_OUT/hand-$1.log"
}

for mode in auto fork; do
        start_hand "$mode"
        assert_match 'sessions via fork' "$(cat "$OWAMP_IT_OUT/hand-$mode.log")" "launcher of owampd by hand ($mode)"
        if [ "$mode" = auto ]; then
                assert_match 'owampd-launcher at /run/owamp/launcher.socket is not available' \
                        "$(cat "$OWAMP_IT_OUT/hand-$mode.log")" "auto falls back, and says so"
        else
                assert_no_match 'owampd-launcher' "$(cat "$OWAMP_IT_OUT/hand-$mode.log")" "fork never asks"
        fi
        run_owping "owping-hand-$mode" -c 20 -i 0.01 127.0.0.1:8870
        for sid in "${sids[@]}"; do
                assert_eq 0 "$(journal_count OWAMP_SID="$sid" MESSAGE_ID="$MSGID_UNIT_STARTED")" "units for $sid"
                assert_eq "" "$(units_matching "owamp-session-$sid.service")" "unit for $sid"
                # -e local5 (21) reaches the journal; the unit's owampd logs as daemon (3).
                assert_eq 21 "$(journal_field SYSLOG_FACILITY OWAMP_SID="$sid" MESSAGE_ID="$MSGID_SESSION_ACCEPTED")" \
                        "SYSLOG_FACILITY with -e local5"
        done
        # -Z: the same lines on stderr.
        assert_match "Accepted session ${sids[0]}|Accepted session ${sids[1]}" "$(cat "$OWAMP_IT_OUT/hand-$mode.log")" \
                "owampd -Z prints to stderr"
        stop_hand
done
assert_eq 0 "$(procs owamp-session)" "workers left by owampd run by hand"
