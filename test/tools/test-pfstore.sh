#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# owampd-pfstore end to end: create, add, replace, list, delete; the file
# is what pfstore writes, mode 0600, comments kept, and every refusal
# leaves the file alone.
# Usage: test-pfstore.sh PATH-TO-owampd-pfstore
set -eu

pfstore=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
f=$tmp/owampd.pfs
fail() {
        echo "FAIL: $*" >&2
        exit 1
}
# hex of a string, as pfstore encodes pass-phrases
hex() {
        printf '%s' "$1" | od -An -tx1 | tr -d ' \n'
}
expect_file() {
        printf "$1" >"$tmp/expected"
        cmp -s "$tmp/expected" "$f" || {
                echo "--- expected"; cat "$tmp/expected"; echo "--- got"; cat "$f"
                fail "$2"
        }
}

# -n creates; the pass-phrase comes from stdin (one line, its newline dropped).
printf 'secret one\n' | "$pfstore" -n -f "$f" alice
expect_file "alice\t$(hex 'secret one')\n" "create"
[ "$(stat -c %a "$f")" = 600 ] || fail "mode after create is $(stat -c %a "$f")"

# -n on an existing file changes nothing.
if printf 'x\n' | "$pfstore" -n -f "$f" bob 2>"$tmp/err"; then fail "-n on an existing file succeeded"; fi
grep -q "already exists" "$tmp/err" || fail "-n message: $(cat "$tmp/err")"
expect_file "alice\t$(hex 'secret one')\n" "-n refusal kept the file"

# Without -n the file must exist.
if printf 'x\n' | "$pfstore" -f "$tmp/none.pfs" bob 2>/dev/null; then fail "missing file accepted"; fi
[ ! -e "$tmp/none.pfs" ] || fail "missing file was created"

# Comments survive; new identities go to the end; a replaced one keeps its place.
printf '# keys for owampd\n\nalice\t%s\n' "$(hex 'secret one')" >"$f"
chmod 604 "$f"  # readable by others: that goes
printf 'bob pass' | "$pfstore" -f "$f" bob
printf 'changed\r\n' | "$pfstore" -f "$f" alice
expect_file "# keys for owampd\n\nalice\t$(hex changed)\nbob\t$(hex 'bob pass')\n" "add and replace"
[ "$(stat -c %a "$f")" = 600 ] || fail "mode after rewrite is $(stat -c %a "$f")"

# A file its group may read (shared with owampd's group) stays so; nothing more.
chmod 0664 "$f"
printf 'bob pass' | "$pfstore" -f "$f" bob
[ "$(stat -c %a "$f")" = 640 ] || fail "mode after rewriting a group-readable file is $(stat -c %a "$f")"
chmod 0600 "$f"

# -l lists in file order.
[ "$("$pfstore" -l -f "$f" | tr '\n' ' ')" = "alice bob " ] || fail "list: $("$pfstore" -l -f "$f")"

# -d deletes; an unknown identity is an error.
"$pfstore" -d -f "$f" alice
expect_file "# keys for owampd\n\nbob\t$(hex 'bob pass')\n" "delete"
if "$pfstore" -d -f "$f" alice 2>/dev/null; then fail "deleting an unknown identity succeeded"; fi

# Refused: empty pass-phrase, invalid identity, a file that does not parse.
if printf '\n' | "$pfstore" -f "$f" carol 2>/dev/null; then fail "empty pass-phrase accepted"; fi
if printf 'x\n' | "$pfstore" -f "$f" '#carol' 2>/dev/null; then fail "identity starting with # accepted"; fi
long=$(printf '%081d' 0)
if printf 'x\n' | "$pfstore" -f "$f" "$long" 2>/dev/null; then fail "81-octet identity accepted"; fi
expect_file "# keys for owampd\n\nbob\t$(hex 'bob pass')\n" "refusals kept the file"
printf 'bob zz\n' >"$tmp/bad.pfs"
if printf 'x\n' | "$pfstore" -f "$tmp/bad.pfs" carol 2>"$tmp/err"; then fail "bad file accepted"; fi
grep -q "bad.pfs:1" "$tmp/err" || fail "parse error does not name file and line: $(cat "$tmp/err")"

# Usage errors.
if "$pfstore" -f "$f" 2>/dev/null; then fail "no identity accepted"; fi
if "$pfstore" -l -f "$f" bob 2>/dev/null; then fail "-l with an identity accepted"; fi

# No temporary file is left behind.
[ "$(ls -A "$tmp" | grep -c '^\.')" = 0 ] || fail "temporary files left: $(ls -A "$tmp")"
echo "ok"
