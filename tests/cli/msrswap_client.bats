#!/usr/bin/env bats
# The client daemon's control commands that move a device's remotes:
# remote-add and remote-release (a provider reclaiming its memory).
bats_require_minimum_version 1.5.0
load helpers

setup() {
	command -v qemu-io >/dev/null || skip "qemu-io (qemu-utils) is not installed"
	command -v socat >/dev/null || skip "socat is not installed"
	C=$BATS_TEST_TMPDIR
}

teardown() {
	local p
	for p in ${PIDS:-}; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	true
}

wait_for() { wait_socket "$1" && return 0; return 1; }
ctl() { echo "$2" | socat - "UNIX-CONNECT:$1"; }

@test "msrswap client remote-release: the device leaves the remote, its data served from the disk copy" {
	"$MSRSWAP" serve --listen "unix:$C/p.sock" --control "$C/p.ctl" --capacity 64M --export r1:32M 2> "$C/p.log" &
	PROVIDER=$!
	"$MSRSWAP" client --listen "unix:$C/c.sock" --control "$C/c.ctl" --ram 4K --disk-dir "$C/disks" 2> "$C/c.log" &
	PIDS="$PROVIDER $!"
	wait_for "$C/p.ctl" && wait_for "$C/c.ctl"
	remote="nbd+unix:///r1?socket=$C/p.sock"
	ctl "$C/c.ctl" "{\"cmd\":\"device-add\",\"name\":\"vm1\",\"size\":16777216,\"remotes\":[\"$remote\"]}" | jq_true .ok
	# 8 MiB of a pattern: one block in RAM, the rest on the remote
	qemu-io -f raw -c "write -P 7 0 8M" "nbd+unix:///vm1?socket=$C/c.sock" | grep -v failed >/dev/null
	# the remote's room is in the record: msballoon's tier policies count it in the node's tier
	"$MSRSWAP" status --control "$C/c.ctl" |
		jq_true '.remote_bytes == 8384512 and .remotes_alive == 1 and .remote_capacity_bytes == 33554432'
	run ctl "$C/c.ctl" '{"cmd":"remote-release","name":"vm1","uri":"nbd://elsewhere:10809/x"}'
	[[ $output == *'"ok":false'*"no alive remote of that URI"* ]]
	run ctl "$C/c.ctl" "{\"cmd\":\"remote-release\",\"name\":\"nothere\",\"uri\":\"$remote\"}"
	[[ $output == *"no such device 'nothere'"* ]]
	ctl "$C/c.ctl" "{\"cmd\":\"remote-release\",\"name\":\"vm1\",\"uri\":\"$remote\"}" | jq_true .ok
	"$MSRSWAP" status --control "$C/c.ctl" > "$C/status.jsonl"
	cat "$C/status.jsonl"
	jq -e '.remote_bytes == 0 and .remotes_alive == 0 and .remotes_released == 1 and .failovers == 0 and .remote_capacity_bytes == 0
	       and .disk_bytes == 8384512 and .mirror_errors == 0' "$C/status.jsonl"
	# the provider may now drop the export and go: nothing is lost
	kill -9 "$PROVIDER"
	qemu-io -f raw -r -c "read -P 7 0 8M" "nbd+unix:///vm1?socket=$C/c.sock" > "$C/read.out"
	! grep -q -i 'fail\|mismatch' "$C/read.out"
	# a second release of the same remote is refused; new writes go to RAM or disk
	run ctl "$C/c.ctl" "{\"cmd\":\"remote-release\",\"name\":\"vm1\",\"uri\":\"$remote\"}"
	[[ $output == *'"ok":false'* ]]
	qemu-io -f raw -c "write -P 9 8M 1M" -c "read -P 9 8M 1M" "nbd+unix:///vm1?socket=$C/c.sock" | grep -v failed >/dev/null
}
