#!/usr/bin/env bats
# bats file_tags=lab
# msrswap end to end under the test lab: a provider's reservoir, the client
# daemon's tier store, hot-plugged into a real QEMU guest that swaps on it
# under memory pressure while a checksummed workload runs; then the provider
# is killed and nothing is lost.  Then the same with a provider reached by
# one-sided RDMA (serve --fabric, a fabric+unix:// remote).
bats_require_minimum_version 1.5.0
load ../lab/lab
load helpers

setup_file() {
	# MEMSHARE_LAB_PREFIX: engineers who share a machine name their domains apart
	export VM="${MEMSHARE_LAB_PREFIX:-mslab}-rs-$$"
	# short paths: unix socket names are limited to 108 bytes
	export RS=/tmp/msrs-$$
	mkdir -p "$RS"
	lab_file_start "$VM" 256M
}

setup() { lab_require; }

teardown_file() {
	lab_file_stop "$VM"
	stop_daemons "$RS"
}

start_provider() {
	rm -f "$RS/p.sock" "$RS/p.ctl" # a killed provider's: wait for the new one's
	"$MSRSWAP" serve --listen "unix:$RS/p.sock" --control "$RS/p.ctl" --capacity 512M --export "$VM:384M" \
		2>> "$RS/provider.log" &
	echo $! > "$RS/provider.pid"
	wait_socket "$RS/p.sock" "$RS/p.ctl"
}

# start_client [NAME]: the client daemon at $RS/NAME.sock and NAME.ctl
# (default c), its stats records in $RS/NAME-client.jsonl
start_client() {
	local c=${1:-c}
	"$MSRSWAP" client --listen "unix:$RS/$c.sock" --control "$RS/$c.ctl" --ram 32M --disk-dir "$RS/$c-disks" --stats 1s \
		> "$RS/$c-client.jsonl" 2>> "$RS/$c-client.log" &
	echo $! > "$RS/$c-client.pid"
	wait_socket "$RS/$c.sock" "$RS/$c.ctl"
}

# start_fabric_provider: serve --fabric (tcp;ofi_rxm on loopback; a unix
# control path, so no TLS is needed for the key exchange); skips when
# libfabric offers no provider here
start_fabric_provider() {
	"$MSRSWAP" serve --fabric --listen "unix:$RS/f.sock" --control "$RS/f.ctl" --capacity 512M --export "$VM:384M" \
		2>> "$RS/fabric-provider.log" &
	echo $! > "$RS/fabric-provider.pid"
	wait_socket "$RS/f.sock" "$RS/f.ctl" || skip "msrswap serve --fabric cannot run here: $(cat "$RS/fabric-provider.log")"
}


@test "msrswap attach hot-plugs a tier-store swap disk into the guest" {
	start_provider
	start_client
	run --separate-stderr "$MSRSWAP" -c qemu:///system attach "$VM" --size 384M --target 64M \
		--remote "nbd+unix:///$VM?socket=$RS/p.sock" --mkswap --socket "$RS/c.sock" --control "$RS/c.ctl"
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	jq -e '.kind == "attach" and .serial == "memshare" and .swap_signature' <<<"$output"
	lab_swapon_memshare_disk "$VM"
}

@test "the guest swaps on it under pressure and a checksummed workload stays correct" {
	run lab exec --timeout 240 "$VM" 'memhog -t 20 -W 280 300; echo rc=$?'
	echo "$output"
	[[ $output == *"bad_pages=0"* ]]
	[[ $output == *"rc=0"* ]]
	run lab exec "$VM" "grep -E 'SwapTotal|SwapFree' /proc/meminfo; grep -E 'pswpin|pswpout' /proc/vmstat"
	echo "$output"
	out=$(awk '/pswpout/ {print $2}' <<<"$output")
	[ "$out" -gt 10000 ]
	# the target (64M) is below the swap footprint: the rest were failed puts,
	# on disk (the client's next stats record, every second, shows it)
	until_true 60 jq -s -e '[.[] | select(.kind == "tier")][-1] | .puts_total > 0 and .puts_succ < .puts_total
	       and .gets > 0 and .tier_used_bytes <= 67108864 and .disk_bytes > 0 and .remote_bytes > 0' "$RS/c-client.jsonl" ||
		{ jq -s -c '[.[] | select(.kind == "tier")][-1]' "$RS/c-client.jsonl"; false; }
}

@test "kill -9 of the provider while the guest swaps: served from the disk copy, nothing lost" {
	puts=$(jq -s '[.[] | select(.kind == "tier")][-1].puts_total' "$RS/c-client.jsonl")
	lab exec "$VM" 'memhog -v -t 60 -W 280 300 > /tmp/hog.out 2>&1 & echo started'
	# the provider dies while the guest swaps out to the device: once 16 MiB
	# more were put (however slowly a loaded machine gets there)
	until_true 180 jq -s -e --argjson p "$puts" '[.[] | select(.kind == "tier")][-1].puts_total > $p + 4096' "$RS/c-client.jsonl"
	kill -9 "$(cat "$RS/provider.pid")"
	run lab exec --timeout 240 "$VM" 'while pidof memhog >/dev/null; do sleep 1; done; cat /tmp/hog.out'
	echo "$output"
	[[ $output == *"bad_pages=0"* ]]
	until_true 60 grep '"kind":"failover"' "$RS/c-client.jsonl"
	until_true 60 jq -s -e '[.[] | select(.kind == "tier")][-1] | .remotes_dead == 1 and .failovers == 1' "$RS/c-client.jsonl"
	# a new provider, and the device takes remote space again
	start_provider
	run "$MSRSWAP" export list --control "$RS/p.ctl"
	[ "$status" -eq 0 ]
}

@test "msrswap detach unplugs the disk after swapoff" {
	lab_detach_memshare_disk "$VM" "$RS/c.ctl"
}

@test "a fabric:// remote: the guest swaps through the client daemon whose remote is a one-sided RDMA export; nothing lost" {
	start_fabric_provider
	start_client fc
	run --separate-stderr "$MSRSWAP" -c qemu:///system attach "$VM" --size 384M --target 64M \
		--remote "fabric+unix:///$VM?socket=$RS/f.sock" --mkswap --socket "$RS/fc.sock" --control "$RS/fc.ctl"
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	lab_swapon_memshare_disk "$VM"
	run lab exec --timeout 300 "$VM" 'memhog -t 20 -W 280 300; echo rc=$?'
	echo "$output"
	[[ $output == *"bad_pages=0"* ]]
	[[ $output == *"rc=0"* ]]
	# the pages beyond the 64M target reached the fabric remote ...
	until_true 60 jq -s -e '[.[] | select(.kind == "tier")][-1] | .remote_bytes > 0 and .remotes_alive == 1 and .gets > 0' \
		"$RS/fc-client.jsonl" || { jq -s -c '[.[] | select(.kind == "tier")][-1]' "$RS/fc-client.jsonl"; false; }
	# ... by fi_write: the provider's NBD server carried none of them
	"$MSRSWAP" export list --control "$RS/f.ctl" | tee /dev/stderr |
		jq -s -e --arg e "$VM" 'map(select(.export == $e))[0] | .writes == 0 and .reads == 0'
	lab_detach_memshare_disk "$VM" "$RS/fc.ctl"
}
