#!/usr/bin/env bats
# bats file_tags=lab
# msgmc under the test lab: the consumer's agent, given --attach-size and a
# libvirt URI, turns the first lease for a real QEMU guest into a swap disk
# hot-plugged into it (msrswap attach), which the guest swaps on while a
# checksummed workload runs.
bats_require_minimum_version 1.5.0
load ../lab/lab
load helpers

MSGMC=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msgmc

setup_file() {
	export VM="mslab-gmc-$$"
	# short paths: unix socket names are limited to 108 bytes
	export RS=/tmp/msgmc-$$
	PORT=$(random_port 2) && export PORT
	mkdir -p "$RS"
	lab_file_start "$VM" 256M
}

setup() { lab_require; }

teardown_file() {
	lab_file_stop "$VM"
	stop_daemons "$RS"
}

# daemon NAME CMD...: CMD in the background, its pid in $RS/NAME.pid, output in $RS/NAME.out/.err
daemon() {
	local name=$1
	shift
	"$@" </dev/null >"$RS/$name.out" 2>"$RS/$name.err" 3>&- &
	echo $! > "$RS/$name.pid"
}

gmc() { "$MSGMC" --gmc "127.0.0.1:$PORT" "$@"; }


@test "msgmc agent --attach-size -c qemu:///system: the first lease for a guest hot-plugs its swap disk" {
	daemon gmc "$MSGMC" serve --listen "127.0.0.1:$PORT" -v
	until_true 30 gmc status
	daemon p1-serve "$MSRSWAP" serve --listen "127.0.0.1:$((PORT + 1))" --capacity 256M --control "$RS/p1.ctl"
	until_true 30 test -S "$RS/p1.ctl"
	daemon p1-agent "$MSGMC" agent --gmc "127.0.0.1:$PORT" --node p1 --rswap-control "$RS/p1.ctl" \
		--address "127.0.0.1:$((PORT + 1))" --interval 1s
	daemon client "$MSRSWAP" client --listen "unix:$RS/c.sock" --control "$RS/c.ctl" --ram 16M --disk-dir "$RS/disks" \
		--stats 1s
	until_true 30 test -S "$RS/c.ctl"
	daemon c1-agent "$MSGMC" agent --gmc "127.0.0.1:$PORT" --node c1 --client-control "$RS/c.ctl" \
		--attach-size 384M -c qemu:///system --interval 1s -v
	until_true 60 eval 'gmc nodes | jq_true -s "length == 2 and all(.connected)"'
	[ -z "$(lab_memshare_disk "$VM")" ]
	run --separate-stderr gmc alloc --node c1 --domain "$VM" 192M --timeout 150s
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	jq -e '.provider == "p1" and .attached' <<<"$output"
	grep '"event":"granted"' "$RS/c1-agent.out" | jq_true '.attached and .device_created'
	lab_swapon_memshare_disk "$VM"
}

@test "the guest swaps on the leased disk: its pages reach the provider and stay correct" {
	run lab exec --timeout 240 "$VM" 'memhog -t 15 -W 280 300; echo rc=$?'
	echo "$output"
	[[ $output == *"bad_pages=0"* ]]
	[[ $output == *"rc=0"* ]]
	# the client's next stats record (every second) shows the pages it put
	until_true 60 jq -s -e '[.[] | select(.kind == "tier")][-1] | .puts_total > 0 and .remote_bytes > 0
	       and .remotes_alive == 1' "$RS/client.out" ||
		{ jq -s -c '[.[] | select(.kind == "tier")][-1]' "$RS/client.out"; false; }
	"$MSRSWAP" export list --control "$RS/p1.ctl" | jq_true -s 'map(select(.kind == "export_stats" and .used_bytes > 0)) | length == 1'
}

@test "the guest lets go of the disk: swapoff, msrswap detach, the lease released" {
	lab_detach_memshare_disk "$VM" "$RS/c.ctl"
	lease=$(gmc leases | jq -r .lease)
	gmc release "$lease" | jq_true '.event == "released"'
	[ -z "$(gmc leases)" ]
}
