#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# A connection storm against the socket-activated owampd (issue 11):
# 1,200 hostile connections (owamp-it-storm: idle, slowloris, garbage and
# half Set-Up-Responses, 50 from each of 127.0.0.2..127.0.0.23, and 100
# from 127.0.0.24, over maxcontrolsessionsperaddr) for 12 s, with a
# setuptimeout of 3 s from a drop-in. Meanwhile a real owping completes
# both ways with no loss; owampd.service stays the same process (not
# restarted, the watchdog fed), the refusals are in the journal, summed
# up; afterwards owampd's descriptors and memory are back to where they
# were, and owping still works.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$OWAMP_IT_LIB"
# shellcheck source=owampd-lib.sh
. ./owampd-lib.sh

storm_pid=""
stop_storm() {
        if [ -n "$storm_pid" ]; then
                kill "$storm_pid" 2>/dev/null || true
                wait "$storm_pid" 2>/dev/null || true
                storm_pid=""
        fi
}
it_on_exit stop_storm

fds_of() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l; }
rss_of() { sed -n 's/^Rss:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/smaps_rollup"; }
fds_back() { [ "$(fds_of "$1")" -le "$2" ]; }

mkdir -p /etc/owamp/owampd.conf.d
printf 'setuptimeout 3\n' >/etc/owamp/owampd.conf.d/storm.conf
systemctl start owampd.socket

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

it_step "owampd serves, unloaded"
owping -L 1 -c 10 -i 0.01 127.0.0.1 >/dev/null # starts owampd
start=$(now)
owping -L 1 -c 100 -i 0.01 127.0.0.1 >"$OWAMP_IT_OUT/owping-unloaded.txt"
unloaded=$(since "$start")
assert_eq 2 "$(grep -c '^100 sent, 0 lost' "$OWAMP_IT_OUT/owping-unloaded.txt")" "complete sessions unloaded"
pid=$(unit_prop owampd.service MainPID)
assert_ne 0 "$pid" "MainPID of owampd.service"
wait_for 10 no_session_units
fds0=$(fds_of "$pid")
rss0=$(rss_of "$pid")
it_log "owampd: $fds0 descriptors, RSS $rss0 KiB before the storm"

it_step "the storm, and owping through it"
/opt/owamp-it/bin/owamp-it-storm 127.0.0.1 861 2 22 50 12 >"$OWAMP_IT_OUT/storm-main.txt" &
storm_pid=$!
/opt/owamp-it/bin/owamp-it-storm 127.0.0.1 861 24 1 100 12 >"$OWAMP_IT_OUT/storm-greedy.txt" &
greedy_pid=$!
sleep 3
peak_fds=$(fds_of "$pid")
start=$(now)
owping -L 1 -c 100 -i 0.01 127.0.0.1 >"$OWAMP_IT_OUT/owping-loaded.txt"
took=$(since "$start")
assert_eq 2 "$(grep -c '^100 sent, 0 lost' "$OWAMP_IT_OUT/owping-loaded.txt")" "complete sessions under the storm"
assert_num "$took" '<=' "$(awk -v u="$unloaded" 'BEGIN { print u + 5 }')" \
        "seconds owping took under the storm ($unloaded s unloaded)"
peak_rss=$(rss_of "$pid")
wait "$storm_pid"
storm_pid=""
wait "$greedy_pid"
it_log "storm: $(cat "$OWAMP_IT_OUT/storm-main.txt") / greedy: $(cat "$OWAMP_IT_OUT/storm-greedy.txt")"
it_log "owampd: $peak_fds descriptors 3 s into the storm, RSS $peak_rss KiB; owping took $took s ($unloaded s unloaded)"
assert_num "$peak_fds" '>' 500 "descriptors owampd held in the storm"
closed=$(sed -n 's/.*closed_by_server=\([0-9]*\).*/\1/p' "$OWAMP_IT_OUT/storm-main.txt")
assert_num "$closed" '>=' 1000 "connections owampd closed (setuptimeout 3)"
refused=$(sed -n 's/.*refused_at_once=\([0-9]*\).*/\1/p' "$OWAMP_IT_OUT/storm-greedy.txt")
assert_num "$refused" '>=' 36 "connections refused at once from 127.0.0.24 (cap 64)"

it_step "afterwards: the same owampd, descriptors and memory back, the journal summed up"
assert_eq "$pid" "$(unit_prop owampd.service MainPID)" "owampd's PID after the storm"
assert_eq 0 "$(unit_prop owampd.service NRestarts)" "restarts of owampd.service"
wait_for 30 fds_back "$pid" "$fds0"
sleep 2 # the heap is trimmed a second after the connections are gone
rss1=$(rss_of "$pid")
it_log "owampd: $(fds_of "$pid") descriptors, RSS $rss1 KiB after the storm"
assert_num "$rss1" '<=' $((rss0 + 4096)) "owampd's RSS (KiB) after the storm"
assert_match 'maxcontrolsessionsperaddr' \
        "$(journal_messages _SYSTEMD_UNIT=owampd.service MESSAGE_ID="$MSGID_CONNECTION_REFUSED")" \
        "refusals over the per-address cap in the journal"
lines=$(journal_count _SYSTEMD_UNIT=owampd.service)
it_log "owampd wrote $lines journal lines"
assert_num "$lines" '<' 1000 "journal lines for the storm"
owping -L 1 -c 10 -i 0.01 127.0.0.1 >"$OWAMP_IT_OUT/owping-after.txt"
assert_eq 2 "$(grep -c '^10 sent, 0 lost' "$OWAMP_IT_OUT/owping-after.txt")" "complete sessions after the storm"
