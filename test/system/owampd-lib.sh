# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Helpers for the owampd system tests (test-owampd-*.sh), sourced after
# lib.sh. Not a test itself (tools/run-tests runs test-*.sh only).

# shellcheck disable=SC2034 # used by the tests that source this file
# MESSAGE_IDs, as in src/shared/log.h (the catalog-ids unit test keeps that
# file and units/owamp.catalog in step).
MSGID_CONNECTION_ACCEPTED=23a7a42698f34fc89f52017dc9c0ee49
MSGID_CONNECTION_REFUSED=1f700b983d444f6a8b3f154f05acc41a
MSGID_SESSION_REQUESTED=15210ff1b2c04901b0a7ce41f6aa9d8f
MSGID_SESSION_ACCEPTED=a29d00c3609b403b88657bdebf95bc77
MSGID_SESSION_STARTED=932b30905f0f4e10a9c8a1a8d591fe88
MSGID_SESSION_FINISHED=8edf81de480a4474b615211505e28c7c
MSGID_DATA_FETCHED=f6fb84468ed94ef1bd2499a805b52b18
MSGID_DATA_DELETED=13995ab3e9134b9390209d2df5f278e8
MSGID_DAEMON_STARTED=d0398883738b4ffba5cacf636250be1d
MSGID_CONFIG_RELOADED=a5323b7485054b40a05fdac9c6121208
MSGID_ENDPOINT_READY=897f11886bab42268a6f9f5fa8dc5fb4
MSGID_ENDPOINT_DONE=950605539adf4459a9e9ae024cc8118c
MSGID_UNIT_STARTED=7b04dcaafd3c4429b6040d08216732d3
MSGID_UNIT_FINISHED=96d3805fab5e479286c2d3682d0875a5
MSGID_LAUNCH_REFUSED=6adabdd798b14974af90d920c82ab6a4

# systemd's DynamicUser= range (252 default).
DYNAMIC_UID_MIN=61184
DYNAMIC_UID_MAX=65519

# A key for modes A and E: id "demo", pass-phrase "demo-secret", hex-encoded
# as perfSONAR's pfstore writes it; the server's copy readable by owampd only.
owampd_setup_keys() {
        local hex
        hex=$(printf demo-secret | od -An -tx1 | tr -d ' \n')
        mkdir -p /etc/owamp
        printf 'demo\t%s\n' "$hex" >/etc/owamp/owampd.pfs
        chown root:owamp /etc/owamp/owampd.pfs
        chmod 0640 /etc/owamp/owampd.pfs
        printf 'demo\t%s\n' "$hex" >/root/client.pfs
        chmod 0600 /root/client.pfs
}

# owping_sids FILE: the SIDs owping printed, one per line.
owping_sids() {
        sed -n 's/^SID:[[:space:]]*\([0-9a-f]\{32\}\)$/\1/p' "$1"
}

# session_units: loaded owamp-session units (any state), one per line.
session_units() {
        units_matching 'owamp-session-*.service'
}

# active_session_units: those that are active.
active_session_units() {
        systemctl list-units --state=active --full --plain --no-legend --no-pager -- 'owamp-session-*.service' |
                awk '{ print $1 }'
}

# procs NAME: how many processes are called NAME.
procs() {
        pgrep -c -x "$1" || true
}

# journal_msgids MATCH...: "UNIT MESSAGE_ID PRIORITY" of each matching entry
# that has a MESSAGE_ID, in journal order (UNIT: _SYSTEMD_UNIT).
journal_msgids() {
        journal_sync
        journalctl --no-pager -q -o export --output-fields=_SYSTEMD_UNIT,MESSAGE_ID,PRIORITY -- "$@" |
                awk -F= '
                        /^$/ { if (id != "") print (unit == "" ? "-" : unit), id, prio; unit = id = prio = ""; next }
                        $1 == "_SYSTEMD_UNIT" { unit = substr($0, 15) }
                        $1 == "MESSAGE_ID" { id = substr($0, 12) }
                        $1 == "PRIORITY" { prio = substr($0, 10) }
                        END { if (id != "") print (unit == "" ? "-" : unit), id, prio }'
}

# Predicates for wait_for/retry_for, which run a command again and again: a
# "$(...)" in their arguments would be expanded only once.
# journal_has N MATCH...: at least N entries match.
journal_has() {
        local n=$1
        shift
        [ "$(journal_count "$@")" -ge "$n" ]
}

# unit_gone UNIT: not loaded any more (collected).
unit_gone() {
        [ -z "$(units_matching "$1")" ]
}

# no_session_units: no owamp-session unit loaded, no owamp-session process.
no_session_units() {
        [ -z "$(session_units)" ] && [ "$(procs owamp-session)" = 0 ]
}

# n_active_session_units N
n_active_session_units() {
        [ "$(active_session_units | wc -l)" -eq "$1" ]
}

# assert_dynamic_uid UID WHAT
assert_dynamic_uid() {
        assert_match '^[0-9]+$' "$1" "$2"
        assert_num "$1" '>=' "$DYNAMIC_UID_MIN" "$2"
        assert_num "$1" '<=' "$DYNAMIC_UID_MAX" "$2"
}

# check_session_ran_as_unit SID: the server's endpoint of SID ran as
# owamp-session-SID.service under a dynamic UID, with its lines tagged, and
# the unit is gone.
check_session_ran_as_unit() {
        local sid=$1 unit="owamp-session-$1.service" uid ids
        wait_for 10 journal_has 1 _SYSTEMD_UNIT="$unit" MESSAGE_ID="$MSGID_ENDPOINT_DONE"
        uid=$(journal_field _UID _SYSTEMD_UNIT="$unit" | sort -u)
        assert_dynamic_uid "$uid" "_UID of $unit's lines"
        assert_ne "$(id -u owamp)" "$uid" "$unit runs apart from owampd's user"
        assert_eq "$sid" "$(journal_field OWAMP_SID _SYSTEMD_UNIT="$unit" | sort -u)" "OWAMP_SID of $unit's lines"
        ids=$(journal_msgids OWAMP_SID="$sid")
        assert_match "$unit $MSGID_ENDPOINT_READY 6" "$ids" "endpoint ready line from $unit"
        assert_match "owampd-launcher@[^ ]+ $MSGID_UNIT_STARTED 6" "$ids" "launcher started $unit"
        assert_match "owampd.service $MSGID_SESSION_STARTED 6" "$ids" "owampd: session $sid started"
        wait_for 10 unit_gone "$unit"
}
