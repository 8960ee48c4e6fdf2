#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# owampd.limits, owampd.pfs and owampd.conf in owampd.service, as installed
# (docs/notes/policy.md):
#  - perfSONAR's limits (root/regular, delete_on_fetch): the data goes to
#    /var/lib/owamp/hierarchy/root/regular/ and is deleted once fetched;
#  - `systemctl reload owampd` with a tightened bandwidth limit: owping is
#    refused, the journal line names the class and the limit in OWAMP_*
#    fields; a broken file keeps the old policy and says where;
#  - owampd-pfstore adds a key to the group-readable owampd.pfs, keeps its
#    owner, group and mode; after a reload the key authenticates;
#  - the disk limit counts what is stored, also after a restart.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$OWAMP_IT_LIB"
# shellcheck source=owampd-lib.sh
. ./owampd-lib.sh

MSGID_SESSION_REFUSED=91b1d528303c4fb5bf6c3f6229183065
MSGID_CONFIG_ERROR=806effb00bfa4aed882c22b5fbf92f32
QUICK=(-L 0.5 -c 20 -i 0.01)

owampd_setup_keys
systemctl start owampd.socket
systemctl start owampd.service

# reload_owampd: systemctl reload, then wait for its outcome in the journal.
reload_owampd() {
        local ok err
        ok=$(journal_count _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONFIG_RELOADED")
        err=$(journal_count _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONFIG_ERROR")
        systemctl reload owampd.service
        wait_for 5 reload_done "$ok" "$err"
        assert_unit_state owampd.service active
}
reload_done() {
        [ "$(journal_count _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONFIG_RELOADED")" -gt "$1" ] ||
                [ "$(journal_count _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONFIG_ERROR")" -gt "$2" ]
}

it_step "perfSONAR's limits: hierarchy/root/regular, delete_on_fetch"
cat >/etc/owamp/owampd.limits <<'EOF'
limit root with disk=0,\
		bandwidth=0,\
                delete_on_fetch=on
limit regular with parent=root,\
		disk=10G,\
		bandwidth=20M
assign default regular
EOF
reload_owampd
owping "${QUICK[@]}" -t 127.0.0.1 >"$OWAMP_IT_OUT/owping-regular.txt" 2>&1 ||
        it_fail "owping failed: $(cat "$OWAMP_IT_OUT/owping-regular.txt")"
sid=$(owping_sids "$OWAMP_IT_OUT/owping-regular.txt")
assert_match '^[0-9a-f]{32}$' "$sid" "SID of the session owampd received"
wait_for 5 journal_has 1 OWAMP_SID="$sid" MESSAGE_ID="$MSGID_DATA_DELETED"
assert_match "class path root/regular" "$(journal_messages OWAMP_SID="$sid" MESSAGE_ID="$MSGID_DATA_DELETED")" \
        "why the data went"
assert_eq "owamp owamp 750" "$(stat -c '%U %G %a' /var/lib/owamp/hierarchy/root/regular)" "class directory"
assert_eq "" "$(find /var/lib/owamp -name '*.owp')" "session files after the fetch"

it_step "a reload that tightens the bandwidth limit"
sed -i 's/bandwidth=20M/bandwidth=20k/' /etc/owamp/owampd.limits
reload_owampd
before=$(journal_count _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_SESSION_REFUSED")
assert_failure owping "${QUICK[@]}" -t 127.0.0.1
wait_for 5 journal_has $((before + 1)) _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_SESSION_REFUSED"
assert_eq regular "$(journal_field OWAMP_CLASS MESSAGE_ID="$MSGID_SESSION_REFUSED" | tail -n1)" "OWAMP_CLASS"
assert_eq bandwidth "$(journal_field OWAMP_LIMIT MESSAGE_ID="$MSGID_SESSION_REFUSED" | tail -n1)" "OWAMP_LIMIT"
assert_eq regular "$(journal_field OWAMP_LIMIT_CLASS MESSAGE_ID="$MSGID_SESSION_REFUSED" | tail -n1)" \
        "OWAMP_LIMIT_CLASS"
assert_eq 20000 "$(journal_field OWAMP_LIMIT_VALUE MESSAGE_ID="$MSGID_SESSION_REFUSED" | tail -n1)" \
        "OWAMP_LIMIT_VALUE"
assert_eq 5 "$(journal_field PRIORITY MESSAGE_ID="$MSGID_SESSION_REFUSED" | tail -n1)" "priority of a refusal"

it_step "a broken owampd.limits on reload keeps the old policy"
printf 'limit orphan with parent=nowhere\n' >>/etc/owamp/owampd.limits
reload_owampd
assert_match 'owampd\.limits:8: .*nowhere.*keeping the previous configuration and policy' \
        "$(journal_messages _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONFIG_ERROR" | tail -n1)" \
        "the reload error names file and line"
assert_failure owping "${QUICK[@]}" -t 127.0.0.1

it_step "owampd-pfstore adds a key; a reload makes it work"
printf 'limit root with delete_on_fetch=on\n' >/etc/owamp/owampd.limits
printf 'second-secret\n' | owampd-pfstore -f /etc/owamp/owampd.pfs second
assert_eq "root owamp 640" "$(stat -c '%U %G %a' /etc/owamp/owampd.pfs)" "owampd.pfs after owampd-pfstore"
assert_eq "demo second" "$(owampd-pfstore -l -f /etc/owamp/owampd.pfs | tr '\n' ' ' | sed 's/ $//')" \
        "identities"
printf 'second\t%s\n' "$(printf second-secret | od -An -tx1 | tr -d ' \n')" >/root/second.pfs
assert_failure owping "${QUICK[@]}" -t -A A -u second -k /root/second.pfs 127.0.0.1
reload_owampd
owping "${QUICK[@]}" -t -A A -u second -k /root/second.pfs 127.0.0.1 >"$OWAMP_IT_OUT/owping-second.txt" 2>&1 ||
        it_fail "owping with the new key failed: $(cat "$OWAMP_IT_OUT/owping-second.txt")"

it_step "the disk limit counts stored data, also after a restart"
# One receive session of 20 packets is a file of 184 + 20 x 25 = 684 octets.
printf 'limit root with disk=1367\n' >/etc/owamp/owampd.limits
reload_owampd
owping "${QUICK[@]}" -t 127.0.0.1 >"$OWAMP_IT_OUT/owping-disk.txt" 2>&1 ||
        it_fail "owping failed: $(cat "$OWAMP_IT_OUT/owping-disk.txt")"
sid=$(owping_sids "$OWAMP_IT_OUT/owping-disk.txt")
assert_eq 684 "$(stat -c %s "/var/lib/owamp/hierarchy/root/$sid.owp")" "the stored session"
systemctl restart owampd.service
assert_match "1 session file, 684 octets" \
        "$(journalctl --no-pager -q -u owampd.service -g 'Data directory' | tail -n1)" "counted at start-up"
before=$(journal_count _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_SESSION_REFUSED")
assert_failure owping "${QUICK[@]}" -t 127.0.0.1
wait_for 5 journal_has $((before + 1)) _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_SESSION_REFUSED"
assert_eq disk "$(journal_field OWAMP_LIMIT MESSAGE_ID="$MSGID_SESSION_REFUSED" | tail -n1)" "OWAMP_LIMIT"
assert_eq 684 "$(journal_field OWAMP_LIMIT_USED MESSAGE_ID="$MSGID_SESSION_REFUSED" | tail -n1)" \
        "OWAMP_LIMIT_USED after the restart"
# Removed by age (tmpfiles.d): it stops counting.
touch -m -d '2 days ago' "/var/lib/owamp/hierarchy/root/$sid.owp"
systemd-tmpfiles --clean /usr/lib/tmpfiles.d/owamp.conf
assert_eq "" "$(find /var/lib/owamp -name '*.owp')" "session files after the clean-up"
sleep 1.1 # owampd counts again before a disk refusal, at most once a second
owping "${QUICK[@]}" -t 127.0.0.1 >"$OWAMP_IT_OUT/owping-disk2.txt" 2>&1 ||
        it_fail "owping after the clean-up failed: $(cat "$OWAMP_IT_OUT/owping-disk2.txt")"

rm /etc/owamp/owampd.limits
reload_owampd
