#!/usr/bin/env bats
# scripts/demo (make demo) as README.md tells a newcomer to run it: its
# whole output in a log, as root and as a user without root.
bats_require_minimum_version 1.5.0
load helpers

setup() {
	ROOT=${MEMSHARE_ROOT:-$PWD}
	[ -x "$ROOT/bin/mswss" ] && [ -x "$ROOT/build/workload/usemem" ] || skip "run make first"
	command -v jq >/dev/null || skip "jq is not installed"
	LOG=$BATS_TEST_TMPDIR/demo.log
}

# check_log: every line the demo writes is there, first to last
check_log() {
	cat "$LOG"
	[ "$(grep -c '^started pid' "$LOG")" -eq 2 ]
	head -n 1 "$LOG" | grep -q '^started pid'
	grep -q '^running: mswss' "$LOG"
	[ "$(grep '^{' "$LOG" | jq -r .kind | grep -cx wss)" -eq 6 ]
	grep -q '^domain  *true MiB  *mswss MiB$' "$LOG"
	# the host-sized alloc_bytes of a bare process is explained
	grep -q "is the host's memory" "$LOG"
}

@test "demo: 'make demo > log 2>&1' keeps every line" {
	local rc=0
	"$ROOT/scripts/demo" > "$LOG" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { cat "$LOG"; false; }
	check_log
}

@test "demo: runs without root, even when its stderr is a file that user cannot open" {
	[ "$(id -u)" = 0 ] || skip "needs root to run the demo as another user"
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
	id nobody >/dev/null 2>&1 || skip "no user 'nobody'"
	# the log belongs to root, mode 600: nobody writes through the descriptor it is given, and cannot reopen it
	: > "$LOG"
	chmod 600 "$LOG"
	local rc=0
	TMPDIR=/tmp setpriv --reuid=nobody --regid=nogroup --clear-groups "$ROOT/scripts/demo" > "$LOG" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { cat "$LOG"; false; }
	check_log
}
