#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Runs inside the container as owamp-it.service (see run-in-nspawn.sh):
#   1. installs the staged project (meson install --destdir) into /,
#   2. applies its sysusers.d and tmpfiles.d files, reloads systemd,
#   3. runs the test script with a time limit, its output going to
#      $OWAMP_IT_OUT/test.log and (live) to the journal and console,
#   4. exports the journal into $OWAMP_IT_OUT,
#   5. exits with the test's status; the unit's SuccessAction=/FailureAction=
#      then end the container with that status.
#
# Inputs from /opt/owamp-it/run.env: OWAMP_IT_TEST (name), OWAMP_IT_SCRIPT
# (path in the container), OWAMP_IT_TEST_TIMEOUT_SEC, OWAMP_IT_INSTALL_STAGE
# (0 for a test of the packages: steps 1 and 2 are then left to the test).
set -u

it=/opt/owamp-it
out=/opt/owamp-it-out
stage=$it/stage

export OWAMP_IT_LIB=$it/lib.sh
export OWAMP_IT_BIN=$it/bin
export OWAMP_IT_OUT=$out
export OWAMP_IT_STAGE=$stage
export OWAMP_IT_TESTDIR=$it/tests
export OWAMP_IT_TEST OWAMP_IT_SCRIPT
export SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat SYSTEMD_LESS=FRX
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { echo "owamp-it: $*"; }

finish() {
        rc=$1
        # Everything the test and the units logged, for reading on the host
        # after the container (and its volatile journal copy) is gone.
        systemctl list-units --all --failed --plain --no-legend --no-pager >"$out/failed-units.txt" 2>&1
        timeout 30 journalctl --sync >/dev/null 2>&1
        timeout 60 journalctl --no-pager -o export >"$out/journal.export" 2>/dev/null
        timeout 60 journalctl --no-pager -o short-precise >"$out/journal.txt" 2>/dev/null
        echo "$rc" >"$out/rc"
        sync
        log "finished $OWAMP_IT_TEST with status $rc"
        exit "$rc"
}

# Staged configuration of one kind (sysusers.d, tmpfiles.d), as paths in /.
staged_conf() {
        for d in usr/lib lib etc; do
                for f in "$stage/$d/$1"/*.conf; do
                        [ -f "$f" ] && echo "/$d/$1/${f##*/}"
                done
        done
}

log "setting up for $OWAMP_IT_TEST"

# A test of the packages (OWAMP_IT_INSTALL_STAGE=0) installs them itself.
if [ "${OWAMP_IT_INSTALL_STAGE:-1}" = 1 ]; then
        # --keep-directory-symlink: the image has merged /usr (/lib -> usr/lib); a
        # staged lib/ must go through the link, not replace it.
        if ! tar -C "$stage" -cf - . | tar -C / --keep-directory-symlink --no-overwrite-dir -xf -; then
                log "installing the staged project failed"
                finish 125
        fi

        mapfile -t sysusers < <(staged_conf sysusers.d)
        if [ "${#sysusers[@]}" -gt 0 ] && ! systemd-sysusers "${sysusers[@]}"; then
                log "systemd-sysusers ${sysusers[*]} failed"
                finish 125
        fi
        mapfile -t tmpfiles < <(staged_conf tmpfiles.d)
        if [ "${#tmpfiles[@]}" -gt 0 ] && ! systemd-tmpfiles --create "${tmpfiles[@]}"; then
                log "systemd-tmpfiles --create ${tmpfiles[*]} failed"
                finish 125
        fi
fi
if ! systemctl daemon-reload; then
        log "systemctl daemon-reload failed"
        finish 125
fi

# Let the rest of the boot settle: wait (bounded) until no job but ours is
# running. What is still waiting then waits for us (graphical.target, which
# wants this unit and so is ordered after it, and what follows it).
# `systemctl is-system-running --wait` would wait for this very job and
# deadlock.
settled=0
for _ in $(seq 100); do
        if ! systemctl list-jobs --no-legend --no-pager |
                awk '$2 != "owamp-it.service" && $4 == "running" { found = 1 } END { exit !found }'; then
                settled=1
                break
        fi
        sleep 0.1
done
if [ "$settled" = 0 ]; then
        log "boot has not settled after 10 s; jobs still queued:"
        systemctl list-jobs --no-legend --no-pager
fi

log "running $OWAMP_IT_SCRIPT (limit ${OWAMP_IT_TEST_TIMEOUT_SEC}s)"
cd "$OWAMP_IT_TESTDIR" || finish 125
# The test writes straight to the file (so a stray background child holding
# its stdout cannot stall us); tail copies it live to the journal and console
# and stops with the test.
timeout --kill-after=5 "$OWAMP_IT_TEST_TIMEOUT_SEC" "$OWAMP_IT_SCRIPT" >"$out/test.log" 2>&1 </dev/null &
test_pid=$!
tail -s 0.2 -n +1 -F --pid="$test_pid" "$out/test.log" 2>/dev/null &
tail_pid=$!
wait "$test_pid"
rc=$?
wait "$tail_pid"
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        log "$OWAMP_IT_TEST timed out after ${OWAMP_IT_TEST_TIMEOUT_SEC}s"
fi
finish "$rc"
