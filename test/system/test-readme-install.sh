#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The README's "Running it under systemd" as a new user follows it, its
# commands taken from README.md itself (so the test breaks when the README
# drifts):
#  - in a copy of the source tree where the quick start's build/ already
#    exists (configured for /usr/local), the "Installing from the source
#    tree" block builds and installs for / and enables owampd.socket:
#    owampd.service runs /usr/sbin/owampd -c /etc/owamp, nothing lands in
#    /usr/local, and an owping through the socket works;
#  - the "Configuration" block makes owampd.pfs root:owamp 0640 with one
#    identity, owampd re-reads it and the identity authenticates; made
#    readable by others, owampd refuses to reload it, naming the file and
#    its mode, and keeps the keys it had.
# owamp-it: needs the source
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$OWAMP_IT_LIB"
# shellcheck source=owampd-lib.sh
. ./owampd-lib.sh

src=/opt/owamp-it/source
[ -f "$src/README.md" ] || it_fail "no source tree in $src (run-in-nspawn.sh gives it on '# owamp-it: needs the source')"
command -v meson >/dev/null || it_fail "meson is not in the image (rootfs.sh OWAMP_IT_IMAGE=build)"

# readme_block HEADING: the first indented (4 spaces) block after the line
# "### HEADING" of README.md, without the indentation.
readme_block() {
        awk -v h="### $1" '
                $0 == h { inside = 1; next }
                inside && /^#/ { exit }
                inside && /^    / { block = 1; print substr($0, 5); next }
                inside && block { exit }' "$src/README.md"
}

# pfs_warnings [PRIORITY]: owampd's journal lines about owampd.pfs and others
# (a warning with allowinsecurepfs, else the refusal of a reload).
pfs_warnings() {
        journal_messages _SYSTEMD_UNIT=owampd.service ${1:+PRIORITY=$1} | grep 'owampd\.pfs:\? is .* by others' || true
}
has_pfs_refusal() { [ -n "$(pfs_warnings 3)" ]; }

it_step "the README's blocks"
readme_block "Installing from the source tree" >"$OWAMP_IT_OUT/readme-install.sh"
readme_block "Configuration" >"$OWAMP_IT_OUT/readme-pfs.sh"
it_log "install: $(tr '\n' ';' <"$OWAMP_IT_OUT/readme-install.sh")"
it_log "configuration: $(tr '\n' ';' <"$OWAMP_IT_OUT/readme-pfs.sh")"
assert_match 'meson install' "$(cat "$OWAMP_IT_OUT/readme-install.sh")" "the install block installs"
assert_match 'owampd-pfstore' "$(cat "$OWAMP_IT_OUT/readme-pfs.sh")" "the configuration block makes owampd.pfs"

it_step "a new user's tree: the quick start's build/ is there"
work=/root/owamp
mkdir -p "$work"
cp -a "$src/." "$work/"
cd "$work"
meson setup build >"$OWAMP_IT_OUT/quickstart-setup.log" 2>&1 || it_fail "meson setup build: $(tail -5 "$OWAMP_IT_OUT/quickstart-setup.log")"

# What the harness staged must not stand in for what the README installs.
systemctl stop owampd.socket owampd.service 2>/dev/null || true
rm -f /usr/sbin/owampd /usr/lib/systemd/system/owampd.service /usr/lib/systemd/system/owampd.socket
rm -rf /usr/libexec/owamp /etc/owamp
systemctl daemon-reload

it_step "the install block, as written"
if ! bash -euxo pipefail "$OWAMP_IT_OUT/readme-install.sh" >"$OWAMP_IT_OUT/readme-install.log" 2>&1; then
        tail -n 30 "$OWAMP_IT_OUT/readme-install.log"
        it_fail "the README's install commands failed"
fi
assert_eq "ExecStart=/usr/sbin/owampd -c /etc/owamp" "$(grep '^ExecStart=' /usr/lib/systemd/system/owampd.service)" \
        "owampd.service as installed"
assert_match 'path=/usr/sbin/owampd ; argv\[\]=/usr/sbin/owampd -c /etc/owamp ;' "$(unit_prop owampd.service ExecStart)" \
        "owampd.service as systemd has it"
assert_success test -x /usr/sbin/owampd
assert_success test -x /usr/libexec/owamp/owamp-session
assert_success test -f /etc/owamp/owampd.conf
assert_success test -f /etc/owamp/owampd.limits
assert_eq "" "$(find /usr/local -path '*owamp*' 2>/dev/null)" "nothing of owamp under /usr/local"
assert_eq enabled "$(systemctl is-enabled owampd.socket)" "owampd.socket enabled"
assert_unit_state owampd.socket active

it_step "an owping through the socket"
owping -c 5 -i 0.01 -L 1 127.0.0.1 >"$OWAMP_IT_OUT/owping-open.txt" 2>&1 ||
        it_fail "owping: $(cat "$OWAMP_IT_OUT/owping-open.txt")"
assert_eq 2 "$(grep -c '^5 sent, 0 lost' "$OWAMP_IT_OUT/owping-open.txt")" "both sessions ran"
assert_unit_state owampd.service active

it_step "the configuration block, as written: owampd.pfs with one identity"
reloads=$(journal_count _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONFIG_RELOADED")
# owampd-pfstore reads the pass-phrase as one line when stdin is no terminal.
if ! printf 'alice-secret\n' | bash -euxo pipefail "$OWAMP_IT_OUT/readme-pfs.sh" >"$OWAMP_IT_OUT/readme-pfs.log" 2>&1; then
        cat "$OWAMP_IT_OUT/readme-pfs.log"
        it_fail "the README's configuration commands failed"
fi
assert_eq "root owamp 640" "$(stat -c '%U %G %a' /etc/owamp/owampd.pfs)" "owampd.pfs owner, group and mode"
wait_for 10 journal_has $((reloads + 1)) _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONFIG_RELOADED"
assert_match 'Reloaded policy: 1 key from /etc/owamp/owampd\.pfs' \
        "$(journal_messages _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONFIG_RELOADED" | tail -n1)" \
        "owampd read the new file"
assert_eq "" "$(pfs_warnings)" "no warning for 0640"
printf 'alice\t%s\n' "$(printf alice-secret | od -An -tx1 | tr -d ' \n')" >/root/alice.pfs
chmod 0600 /root/alice.pfs
owping -A A -u alice -k /root/alice.pfs -c 5 -i 0.01 -L 1 127.0.0.1 >"$OWAMP_IT_OUT/owping-alice.txt" 2>&1 ||
        it_fail "owping as alice: $(cat "$OWAMP_IT_OUT/owping-alice.txt")"
assert_eq 2 "$(grep -c '^5 sent, 0 lost' "$OWAMP_IT_OUT/owping-alice.txt")" "alice's sessions ran"

it_step "owampd.pfs readable by others: the reload refused, naming it and its mode; the keys stay"
chmod 0644 /etc/owamp/owampd.pfs
systemctl reload owampd.service
wait_for 10 has_pfs_refusal
assert_match '^Reload failed: /etc/owamp/owampd\.pfs: is readable by others \(mode 0644\): refusing to use its pass-phrases' \
        "$(pfs_warnings 3 | tail -n1)" "the refusal, at priority err"
owping -A A -u alice -k /root/alice.pfs -c 5 -i 0.01 -L 1 127.0.0.1 >"$OWAMP_IT_OUT/owping-alice-2.txt" 2>&1 ||
        it_fail "owping as alice after the refused reload: $(cat "$OWAMP_IT_OUT/owping-alice-2.txt")"
chmod 0640 /etc/owamp/owampd.pfs
