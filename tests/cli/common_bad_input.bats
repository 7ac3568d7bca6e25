#!/usr/bin/env bats
# Bad input shared by every tool (src/common/): addresses, control sockets
# that are not there, not sockets, or whose daemon does not answer.
bats_require_minimum_version 1.5.0
load helpers

MSGMC=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msgmc

teardown() {
	# a daemon stopped by a test is continued so that it can die
	if [ -n "${STOPPED_PID:-}" ]; then
		kill -CONT "$STOPPED_PID" 2>/dev/null
		kill "$STOPPED_PID" 2>/dev/null
		wait "$STOPPED_PID" 2>/dev/null
	fi
	STOPPED_PID=
	true
}

# stopped_provider: an msrswap provider on unix sockets, then SIGSTOP; sets CTL, STOPPED_PID
stopped_provider() {
	CTL=$BATS_TEST_TMPDIR/ctl.sock
	"$MSRSWAP" serve --listen "unix:$BATS_TEST_TMPDIR/nbd.sock" --control "$CTL" --capacity 64M \
		2> "$BATS_TEST_TMPDIR/serve.log" &
	STOPPED_PID=$!
	until_true 10 "$MSRSWAP" status --control "$CTL"
	kill -STOP "$STOPPED_PID"
	until_true 10 grep -q '^State:.*T' "/proc/$STOPPED_PID/status"
}

@test "common: a port above 65535 is a usage error, not a wrapped port" {
	run "$MSRSWAP" serve --listen 127.0.0.1:99000 --control "$BATS_TEST_TMPDIR/c.sock" --capacity 16M
	[ "$status" -eq 2 ]
	[[ $output == *"address '127.0.0.1:99000': port 99000 is out of range (0 to 65535)"* ]]
	run "$MSRSWAP" serve --listen '[::1]:65536' --control "$BATS_TEST_TMPDIR/c.sock" --capacity 16M
	[ "$status" -eq 2 ]
	[[ $output == *"port 65536 is out of range"* ]]
	run "$MSGMC" serve --listen 127.0.0.1:99000 --state "$BATS_TEST_TMPDIR/state"
	[ "$status" -eq 2 ]
	[[ $output == *"port 99000 is out of range"* ]]
	# the check is on the number, not its spelling
	run "$MSGMC" status --gmc 127.0.0.1:4294967297 --timeout 2s
	[ "$status" -eq 2 ]
	[[ $output == *"port 4294967297 is out of range"* ]]
}

@test "common: a control path that is a directory or a file is named as such" {
	run "$MSRSWAP" status --control "$BATS_TEST_TMPDIR"
	[ "$status" -eq 2 ]
	[[ $output == *"control socket $BATS_TEST_TMPDIR is a directory"* ]]
	[[ $output != *"Connection refused"* ]]
	: > "$BATS_TEST_TMPDIR/plain"
	run "$MSRSWAP" export list --control "$BATS_TEST_TMPDIR/plain"
	[ "$status" -eq 2 ]
	[[ $output == *"control socket $BATS_TEST_TMPDIR/plain is not a socket"* ]]
}

@test "common: control calls to a stopped daemon give up at --timeout and name its socket" {
	stopped_provider
	# (before: they waited for ever; `timeout 60` turns that into status 124)
	run timeout 60 "$MSRSWAP" status --control "$CTL" --timeout 1s
	[ "$status" -eq 1 ]
	[[ $output == *"the daemon at control socket $CTL did not answer within 1 s"* ]]
	run timeout 60 "$MSRSWAP" export add slab1 1M --control "$CTL" --timeout 500ms
	[ "$status" -eq 1 ]
	[[ $output == *"control socket $CTL did not answer within 500 ms"* ]]
	# callers that gave up stay in the stopped daemon's backlog (64): once it is
	# full, connect itself waits, and gives up at the deadline too
	for _ in $(seq 1 70); do "$MSRSWAP" status --control "$CTL" --timeout 50ms >/dev/null 2>&1 || :; done
	run timeout 60 "$MSRSWAP" status --control "$CTL" --timeout 300ms
	[ "$status" -eq 1 ]
	[[ $output == *"cannot connect to unix:$CTL: no answer within 300 ms"* ]]
}

@test "common: without --timeout a control call still has a deadline (10 s)" {
	stopped_provider
	run timeout 60 "$MSRSWAP" status --control "$CTL"
	[ "$status" -eq 1 ]
	[[ $output == *"$CTL did not answer within 10 s"* ]]
}

@test "common: msballoon plan --tier-control does not wait for ever on a stopped client daemon" {
	stopped_provider
	echo '{"kind":"tier","domain":"test","puts_total":2,"puts_succ":1}' > "$BATS_TEST_TMPDIR/tier.jsonl"
	run timeout 60 "$MSBALLOON" -c test:///default plan --policy static --tier-total 1M --apply \
		--tier-control "$CTL" < "$BATS_TEST_TMPDIR/tier.jsonl"
	[ "$status" -ne 124 ]
	[[ $output == *"tier target not applied"*"$CTL did not answer within 10 s"* ]]
	# --timeout shortens the wait; the record says why the target was not applied
	run --separate-stderr "$MSBALLOON" -c test:///default plan --policy static --tier-total 1M --apply \
		--tier-control "$CTL" --timeout 300ms < "$BATS_TEST_TMPDIR/tier.jsonl"
	jq -e --arg ctl "$CTL" '.tier_applied == false and (.tier_error | contains("the daemon at control socket " + $ctl + " did not answer within 300 ms"))' <<<"$output"
}
