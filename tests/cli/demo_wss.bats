#!/usr/bin/env bats
# scripts/demo-wss (make demo-wss), the first demo: its
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

@test "demo-wss: 'make demo-wss > log 2>&1' keeps every line" {
	local rc=0
	"$ROOT/scripts/demo-wss" > "$LOG" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { cat "$LOG"; false; }
	check_log
}

@test "demo-wss: runs without root, even when its stderr is a file that user cannot open" {
	[ "$(id -u)" = 0 ] || skip "needs root to run the demo as another user"
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
	id nobody >/dev/null 2>&1 || skip "no user 'nobody'"
	# the log belongs to root, mode 600: nobody writes through the descriptor it is given, and cannot reopen it
	: > "$LOG"
	chmod 600 "$LOG"
	local rc=0
	TMPDIR=/tmp setpriv --reuid=nobody --regid=nogroup --clear-groups "$ROOT/scripts/demo-wss" > "$LOG" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { cat "$LOG"; false; }
	check_log
}

# The README's in-guest swap line for busybox guests (the lab's are): run
# with busybox's own sh, grep and swapon against a /sys/block where one disk
# has the serial "memshare"; the device does not exist here, so swapon's
# complaint names the device it resolved, which shows busybox took the syntax.
@test "README: the busybox guest's swapon line finds the memshare disk by its serial" {
	[ "$(id -u)" = 0 ] || skip "needs root for a private mount namespace"
	command -v busybox >/dev/null || skip "busybox is not installed"
	command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
	line=$(grep -A2 'swapon -p 10 LABEL=memshare' "$ROOT/README.md" | grep -i -A1 busybox | sed -n 's/^ *#   //p')
	[ -n "$line" ] || { echo "README.md gives no busybox line after 'swapon -p 10 LABEL=memshare'"; false; }
	mkdir -p "$BATS_TEST_TMPDIR/block/vda" "$BATS_TEST_TMPDIR/block/vdz9"
	echo other > "$BATS_TEST_TMPDIR/block/vda/serial"
	echo memshare > "$BATS_TEST_TMPDIR/block/vdz9/serial"
	run unshare --mount --propagation private sh -c 'mount --bind "$1" /sys/block && exec busybox sh -c "$2"' \
		sh "$BATS_TEST_TMPDIR/block" "$line"
	[[ $output == *"swapon: /dev/vdz9: No such file or directory"* ]]
}
