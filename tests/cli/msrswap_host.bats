#!/usr/bin/env bats
# msrswap as the host's own swap, for kernels without an NBD client: the
# client daemon shows each device as a FUSE file, `attach --host` puts a
# loop device over it and swaps on it.  Real swap, real cgroups, a real
# checksummed workload; every test leaves swap, loop devices, mounts and
# cgroups as it found them.
bats_require_minimum_version 1.5.0
load helpers

setup() {
	require_host_swap
	C=$BATS_TEST_TMPDIR
	ROOT=${MEMSHARE_ROOT:-$PWD}
}

# client ARGS...: start the consumer daemon with its devices under $C/fuse; sets CLIENT_PID
client() {
	"$MSRSWAP" client --listen "unix:$C/c.sock" --control "$C/c.ctl" --disk-dir "$C/disks" --stats 500ms "$@" \
		> "$C/stats.jsonl" 2> "$C/client.log" &
	CLIENT_PID=$!
	wait_socket "$C/c.ctl" && return 0
	cat "$C/client.log"
	return 1
}

# provider NAME:SIZE [--fabric]: a provider with one export on a unix socket;
# sets PROVIDER_PID, REMOTE (fabric+unix:// with --fabric: one-sided RDMA
# over tcp;ofi_rxm, the keys fetched over the unix socket)
provider() {
	"$MSRSWAP" serve --listen "unix:$C/p.sock" --control "$C/p.ctl" --capacity 256M --export "$1" ${2:+"$2"} \
		2> "$C/provider.log" &
	PROVIDER_PID=$!
	REMOTE="${2:+fabric}${2:-nbd}+unix:///${1%%:*}?socket=$C/p.sock"
	REMOTE=${REMOTE/--fabric/}
	wait_socket "$C/p.ctl" && return 0
	cat "$C/provider.log"
	return 1
}

# The loop device of a host attach, from its record.
loop_of() { jq -r 'select(.kind == "attach") | .loop_device' "$1"; }

teardown() {
	# swap first (its pages come back while the daemon still serves them), then the daemons
	local dev
	for dev in $(awk 'NR > 1 {print $1}' /proc/swaps); do
		[[ $(cat "/sys/block/${dev#/dev/}/loop/backing_file" 2>/dev/null) == "${C:-/nonexistent}"/* ]] || continue
		until_true 60 swapoff "$dev" || true
	done
	stop_workloads
	remove_cgroups
	local pid mnt
	for pid in ${CLIENT_PID:-} ${CLIENT2_PID:-}; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
	[ -n "${PROVIDER_PID:-}" ] && kill -9 "$PROVIDER_PID" 2>/dev/null && wait "$PROVIDER_PID" 2>/dev/null
	for mnt in "${C:-/nonexistent}"/fuse*; do mountpoint -q "$mnt" && umount -l "$mnt"; done
	CLIENT_PID= CLIENT2_PID= PROVIDER_PID=
	true
}

@test "msrswap client --fuse: each device is a file of its size; reads, writes and hole punching reach the tiers" {
	client --ram 16M --fuse "$C/fuse"
	[ -z "$(ls -A "$C/fuse")" ]
	printf '{"cmd":"device-add","name":"d1","size":8388608}\n' | socat - "UNIX-CONNECT:$C/c.ctl" | jq_true .ok
	[ "$(stat -c %s "$C/fuse/d1")" = 8388608 ]
	[ "$(ls "$C/fuse")" = d1 ]
	# direct I/O both ways, bit-exact
	head -c 4M /dev/urandom > "$C/data"
	dd if="$C/data" of="$C/fuse/d1" bs=1M oflag=direct conv=notrunc status=none
	cmp <(dd if="$C/fuse/d1" bs=1M count=4 iflag=direct status=none) "$C/data"
	# through the NBD socket the same content
	qemu-io -f raw -r -c "read -v 0 512" "nbd+unix:///d1?socket=$C/c.sock" | head -1 > "$C/nbd.head"
	[ -s "$C/nbd.head" ]
	# a punched hole is a Tmem flush: the blocks leave their tier and read as zeros
	fallocate -p -o 1M -l 1M "$C/fuse/d1"
	cmp <(dd if="$C/fuse/d1" bs=1M skip=1 count=1 iflag=direct status=none) <(head -c 1M /dev/zero)
	"$MSRSWAP" status --control "$C/c.ctl" > "$C/status.jsonl"
	cat "$C/status.jsonl"
	jq -s -e '.[0] | .domain == "d1" and .flushes == 256 and .puts_total >= 1024 and .tier_used_bytes == 3145728' "$C/status.jsonl"
	# the device does not grow, and writes past its end fail
	run truncate -s 16M "$C/fuse/d1"
	[ "$status" -ne 0 ]
	run dd if=/dev/zero of="$C/fuse/d1" bs=4096 seek=2048 count=1 oflag=direct conv=notrunc status=none
	[ "$status" -ne 0 ]
	# a removed device disappears from the directory
	printf '{"cmd":"device-rm","name":"d1"}\n' | socat - "UNIX-CONNECT:$C/c.ctl" | jq_true .ok
	[ ! -e "$C/fuse/d1" ]
	# stopping the daemon unmounts
	kill "$CLIENT_PID"
	wait "$CLIENT_PID"
	CLIENT_PID=
	! mountpoint -q "$C/fuse"
}

@test "msrswap attach --host: a memory-limited cgroup swaps through RAM, a remote and disk tiers; its data stays intact" {
	require_cgroups
	provider r1:48M
	client --ram 32M --fuse "$C/fuse"
	"$MSRSWAP" attach --host hs1 --size 256M --remote "$REMOTE" --control "$C/c.ctl" > "$C/attach.jsonl"
	cat "$C/attach.jsonl"
	jq -e 'select(.kind == "attach") | .host_swap and .swap_signature and .file == "'"$C"'/fuse/hs1" and .priority == 32767' \
		"$C/attach.jsonl"
	dev=$(loop_of "$C/attach.jsonl")
	grep -q "^$dev " /proc/swaps
	[ "$(cat "/sys/block/${dev#/dev/}/loop/dio")" = 1 ]
	# 192 MiB of checksummed pages in a 64 MiB cgroup: about 128 MiB go to swap
	hog h1 64M 192 4 > "$C/hog.out"
	cat "$C/hog.out"
	grep -q 'bad_pages=0' "$C/hog.out"
	"$MSRSWAP" status --control "$C/c.ctl" > "$C/status.jsonl"
	cat "$C/status.jsonl"
	# 32 MiB of RAM and 48 MiB remote fill up; the rest were failed puts, on disk
	jq -s -e '.[0] | .puts_total > 32768 and .puts_succ >= 20480 and .puts_succ < .puts_total and .gets > 0' \
		"$C/status.jsonl"
	jq -s -e 'map(select(.kind == "tier")) | (map(.remote_bytes) | max) > 0 and (map(.disk_bytes) | max) > 0' \
		"$C/stats.jsonl"
	# detach: swapoff brings the pages back, the loop device, the device and its disk file go
	[ -f "$C/disks/hs1.disk" ]
	detach_host_swap hs1 "$C/c.ctl"
	! grep -q "^$dev " /proc/swaps
	[ ! -e "$C/fuse/hs1" ]
	[ ! -e "$C/disks/hs1.disk" ]
	[ -z "$(cat "/sys/block/${dev#/dev/}/loop/backing_file" 2>/dev/null)" ]
}

@test "msrswap attach --host: kill -9 of the provider while the cgroup swaps loses nothing" {
	require_cgroups
	provider r1:128M
	client --ram 8M --fuse "$C/fuse"
	"$MSRSWAP" attach --host hs1 --size 256M --remote "$REMOTE" --control "$C/c.ctl" > "$C/attach.jsonl"
	hog h1 48M 160 6 > "$C/hog.out" &
	hog_pid=$!
	# once the remote holds swapped pages, the provider dies
	until_true 120 jq -s -e 'map(select(.kind == "tier")) | last | .remote_bytes > 8388608' "$C/stats.jsonl"
	kill -9 "$PROVIDER_PID"
	wait "$hog_pid"
	cat "$C/hog.out"
	grep -q 'bad_pages=0' "$C/hog.out"
	jq -s -e 'map(select(.kind == "failover")) | length == 1 and .[0].domain == "hs1"' "$C/stats.jsonl"
	grep -q 'failed' "$C/client.log"
	detach_host_swap hs1 "$C/c.ctl"
}

# fabric_failover SIGNAL: a fabric:// remote whose provider gets SIGNAL
# (KILL: error completions; STOP: silence, ended by the deadline) while the
# cgroup swaps through it.
fabric_failover() {
	require_cgroups
	"$MSRSWAP" serve --fabric --listen "unix:$C/probe.sock" --control "$C/probe.ctl" --capacity 8M 2> "$C/probe.log" &
	local probe=$!
	wait_socket "$C/probe.ctl" || skip "msrswap serve --fabric cannot run here: $(cat "$C/probe.log")"
	kill "$probe"
	wait "$probe" || true
	provider r1:128M --fabric
	[[ $REMOTE == fabric+unix:///r1\?socket=* ]]
	client --ram 8M --fuse "$C/fuse"
	"$MSRSWAP" attach --host hs1 --size 256M --remote "$REMOTE" --control "$C/c.ctl" > "$C/attach.jsonl"
	hog h1 48M 160 6 > "$C/hog.out" &
	hog_pid=$!
	# once the remote holds swapped pages, mid-write, the provider dies or hangs
	until_true 120 jq -s -e 'map(select(.kind == "tier")) | last | .remote_bytes > 8388608' "$C/stats.jsonl"
	kill "-$1" "$PROVIDER_PID"
	wait "$hog_pid"
	cat "$C/hog.out"
	grep -q 'bad_pages=0' "$C/hog.out"
	jq -s -e 'map(select(.kind == "failover")) | length == 1 and .[0].domain == "hs1"' "$C/stats.jsonl"
	grep -q 'fabric' "$C/client.log"
	[ "$1" = STOP ] && kill -CONT "$PROVIDER_PID"
	detach_host_swap hs1 "$C/c.ctl"
}

@test "msrswap attach --host: kill -9 of a fabric:// provider while the cgroup swaps loses nothing" {
	fabric_failover KILL
}

@test "msrswap attach --host: a stopped (SIGSTOP) fabric:// provider fails over by the deadline, nothing lost" {
	fabric_failover STOP
}

@test "scripts/clear-dead-swaps: the swap device of a client killed -9 is turned off and its FUSE directory unmounted; a live client's device stays" {
	client --ram 8M --fuse "$C/fuse"
	"$MSRSWAP" attach --host hs1 --size 64M --control "$C/c.ctl" > "$C/attach.jsonl"
	dev=$(loop_of "$C/attach.jsonl")
	# a second client, alive, with a device of its own
	"$MSRSWAP" client --listen "unix:$C/c2.sock" --control "$C/c2.ctl" --disk-dir "$C/disks2" --ram 8M \
		--fuse "$C/fuse2" 2> "$C/client2.log" &
	CLIENT2_PID=$!
	wait_socket "$C/c2.ctl"
	"$MSRSWAP" attach --host hs2 --size 64M --control "$C/c2.ctl" > "$C/attach2.jsonl"
	dev2=$(loop_of "$C/attach2.jsonl")
	kill -9 "$CLIENT_PID"
	wait "$CLIENT_PID" || true
	CLIENT_PID=
	# the kernel keeps swapping on the dead client's device
	grep -q "^$dev " /proc/swaps
	run "$ROOT/scripts/clear-dead-swaps" -n
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"would swapoff $dev (over $C/fuse/hs1"* ]]
	[[ $output != *"$dev2"* ]]
	grep -q "^$dev " /proc/swaps
	run "$ROOT/scripts/clear-dead-swaps"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"swapoff $dev (over $C/fuse/hs1: its msrswap client is gone)"* ]]
	[[ $output == *"unmounted $C/fuse "* ]]
	! grep -q "^$dev " /proc/swaps
	! mountpoint -q "$C/fuse"
	# the live client's device and directory are untouched
	grep -q "^$dev2 " /proc/swaps
	mountpoint -q "$C/fuse2"
	detach_host_swap hs2 "$C/c2.ctl"
	run "$ROOT/scripts/clear-dead-swaps" --bogus
	[ "$status" -eq 2 ]
	[[ $output == *"unknown argument '--bogus'"* ]]
}

@test "msrswap attach --host: errors name the cause and leave nothing behind" {
	client --ram 8M
	# a client without --fuse has no files to swap on
	run "$MSRSWAP" attach --host hs1 --size 64M --control "$C/c.ctl"
	[ "$status" -eq 2 ]
	[[ $output == *"start it with --fuse DIR"* ]]
	"$MSRSWAP" status --control "$C/c.ctl" > "$C/status.jsonl"
	[ ! -s "$C/status.jsonl" ]
	run "$MSRSWAP" attach --host hs1 --size 64M --priority 40000 --control "$C/c.ctl"
	[ "$status" -eq 2 ]
	[[ $output == *"--priority"* ]]
	run "$MSRSWAP" attach vm1 --size 64M --priority 5 --control "$C/c.ctl"
	[ "$status" -eq 2 ]
	[[ $output == *"--priority is for attach --host"* ]]
	run "$MSRSWAP" detach --host nothere --control "$C/c.ctl"
	[ "$status" -eq 2 ]
	[[ $output == *"no such device 'nothere'"* ]]
	run "$MSRSWAP" attach --host hs1 --size 64M --control "$C/none.ctl"
	[ "$status" -ne 0 ]
	[[ $output == *"is the daemon running?"* ]]
	# a FUSE directory that cannot be one is a run-time failure, not a hang
	kill "$CLIENT_PID"
	wait "$CLIENT_PID" || true
	CLIENT_PID=
	touch "$C/afile"
	run "$MSRSWAP" client --listen "unix:$C/c2.sock" --control "$C/c2.ctl" --disk-dir "$C/disks" --ram 8M --fuse "$C/afile"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"$C/afile"* ]]
}
