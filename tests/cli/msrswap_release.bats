#!/usr/bin/env bats
# A consumer that releases a remote (what msgmc reclaim and release ask the
# client daemon for) lets go of the provider's export: its connections close,
# so the provider frees the export's memory when it is removed, and the data
# stays readable from the disk copy.  A real `msrswap serve` provider and
# `msrswap client` consumer on unix sockets.
bats_require_minimum_version 1.5.0
load helpers

setup() {
	command -v nbdcopy >/dev/null || skip "nbdcopy (libnbd-bin) is not installed"
	command -v socat >/dev/null || skip "socat is not installed"
	C=$BATS_TEST_TMPDIR
	mkdir -p "$C/run"
}

teardown() {
	stop_daemons "$C/run"
}

ctl() { echo "$2" | socat - "UNIX-CONNECT:$1"; }

# start_pair: a provider with export r1 (32 MiB) and a consumer whose RAM tier
# is one block, so that a device's data goes to the remote.
start_pair() {
	"$MSRSWAP" serve --listen "unix:$C/p.sock" --control "$C/p.ctl" --capacity 64M --export r1:32M 2> "$C/p.log" &
	echo $! > "$C/run/provider.pid"
	"$MSRSWAP" client --listen "unix:$C/c.sock" --control "$C/c.ctl" --ram 4K --disk-dir "$C/disks" 2> "$C/c.log" &
	echo $! > "$C/run/client.pid"
	until_true 10 test -S "$C/p.ctl"
	until_true 10 test -S "$C/c.ctl"
	REMOTE="nbd+unix:///r1?socket=$C/p.sock"
	DEVICE="nbd+unix:///vm1?socket=$C/c.sock"
}

# The provider's open NBD connections, from its control socket.
provider_connections() {
	ctl "$C/p.ctl" '{"cmd":"stats"}' | jq_true .connections
}

provider_connections_are() {
	[ "$(provider_connections)" = "$1" ]
}

# Field $1 of the provider's pool_stats record.
pool_field() {
	"$MSRSWAP" status --control "$C/p.ctl" | jq -r "select(.kind == \"pool_stats\") | .$1"
}

@test "msrswap client remote-release: the connections to the export close; export rm frees the provider's memory; nothing is lost" {
	start_pair
	ctl "$C/c.ctl" "{\"cmd\":\"device-add\",\"name\":\"vm1\",\"size\":16777216,\"remotes\":[\"$REMOTE\"]}" | jq_true .ok
	head -c 8M /dev/urandom > "$C/data"
	nbdcopy "$C/data" "$DEVICE"
	"$MSRSWAP" status --control "$C/c.ctl" | jq_true '.remote_bytes > 8000000 and .remotes_alive == 1'
	provider_connections_are 2
	[ "$(pool_field reserved_bytes)" = 33554432 ]

	ctl "$C/c.ctl" "{\"cmd\":\"remote-release\",\"name\":\"vm1\",\"uri\":\"$REMOTE\"}" | jq_true .ok
	# the consumer has let go: the provider sees no client any more
	until_true 10 provider_connections_are 0
	"$MSRSWAP" status --control "$C/c.ctl" |
		jq -e '.remote_bytes == 0 and .remotes_released == 1 and .failovers == 0 and .mirror_errors == 0'
	# the controller's next step (msgmc reclaim): the export goes, and its memory with it
	"$MSRSWAP" export rm r1 --control "$C/p.ctl"
	[ "$(pool_field reserved_bytes)" = 0 ]
	[ "$(pool_field used_bytes)" = 0 ]
	# the whole reservoir can be reserved again
	"$MSRSWAP" export add r2 64M --control "$C/p.ctl"
	# the device's data, served from its disk copy, is intact
	nbdcopy "$DEVICE" - | head -c 8M | cmp - "$C/data"
	! grep -i "dropped\|error" "$C/p.log"
}

MSGMC=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msgmc

# bg NAME CMD...: a daemon of this test, output in $C/NAME.out/.err, pid in $C/run
bg() {
	local name=$1
	shift
	"$@" </dev/null >"$C/$name.out" 2>"$C/$name.err" 3>&- &
	echo $! > "$C/run/$name.pid"
}

gmc() { "$MSGMC" --gmc "$GMC" "$@"; }

nodes_active() { [ "$(gmc nodes | jq -s 'map(select(.state == "active")) | length')" = "$1" ]; }

@test "msgmc release: the provider's memory is free again, as the controller believes: the same alloc fits again" {
	[ -x "$MSGMC" ] || skip "$MSGMC is not built (run make)"
	# ports of our own, below the ephemeral range
	base=$((20000 + (RANDOM % 1200) * 10))
	GMC=127.0.0.1:$base
	bg gmc "$MSGMC" serve --listen "$GMC" --state "$C/state" --node-timeout 2s
	until_true 5 gmc status
	bg p1-serve "$MSRSWAP" serve --listen "127.0.0.1:$((base + 1))" --capacity 32M --control "$C/p.ctl"
	until_true 10 test -S "$C/p.ctl"
	bg p1-agent "$MSGMC" agent --gmc "$GMC" --node p1 --rswap-control "$C/p.ctl" --address "127.0.0.1:$((base + 1))" --interval 1s
	bg client "$MSRSWAP" client --listen "unix:$C/c.sock" --control "$C/c.ctl" --ram 4K --disk-dir "$C/disks"
	until_true 10 test -S "$C/c.ctl"
	ctl "$C/c.ctl" '{"cmd":"device-add","name":"vm1","size":67108864}' | jq_true .ok
	bg c1-agent "$MSGMC" agent --gmc "$GMC" --node c1 --client-control "$C/c.ctl" --interval 1s
	until_true 10 nodes_active 2

	# the whole reservoir, lent to the device, which writes to it
	gmc alloc --node c1 --domain vm1 32M > "$C/lease.jsonl"
	jq -e '.provider == "p1" and .attached' "$C/lease.jsonl"
	lease=$(jq -r .lease "$C/lease.jsonl")
	head -c 8M /dev/urandom > "$C/data"
	nbdcopy "$C/data" "nbd+unix:///vm1?socket=$C/c.sock"
	"$MSRSWAP" status --control "$C/c.ctl" | jq_true '.remote_bytes > 8000000'
	provider_connections_are 2

	# GMC_release: the device lets go, the export goes, and its memory with it
	gmc release "$lease" | jq_true '.event == "released"'
	until_true 10 provider_connections_are 0
	[ "$(pool_field reserved_bytes)" = 0 ]
	# what the controller believes free is free: the same alloc again
	gmc alloc --node c1 --domain vm1 32M | jq_true '.provider == "p1" and .attached'
	nbdcopy "nbd+unix:///vm1?socket=$C/c.sock" - | head -c 8M | cmp - "$C/data"
}
