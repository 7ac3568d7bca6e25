#!/usr/bin/env bats
# bats file_tags=lab
# mswss against a real QEMU guest under libvirt (the test lab): the guest's
# working set measured from its QEMU process, with no agent in the guest.
# Skipped with the reason when this machine cannot run the lab.

bats_require_minimum_version 1.5.0
load ../lab/lab
load helpers

setup_file() {
	export VM="mslab-wss-$$"
	lab_file_start "$VM" 256M
}

setup() { lab_require; }

teardown_file() {
	lab_file_stop "$VM"
}

MIB=1048576

# wss_of METHOD WINDOW: the guest's wss_bytes
wss_of() {
	"$MSWSS" -c qemu:///system --method "$1" --window "$2" "$VM" | jq_true .wss_bytes
}

@test "mswss --all over qemu:///system reports the guest with its allocation" {
	# other domains on this daemon may come and go: their warnings go to stderr
	run --separate-stderr "$MSWSS" -c qemu:///system --all --method refbit --window 1s
	[ "$status" -eq 0 ]
	rec=$(printf '%s\n' "${lines[@]}" | jq -c --arg d "$VM" 'select(.domain == $d)')
	echo "$rec"
	jq -e '.alloc_bytes == 268435456 and .max_bytes == 268435456 and .wss_bytes > 0
	       and .wss_bytes <= .rss_bytes and .state == "less" and .signal == "clear_refs+smaps_rollup"' <<<"$rec"
}

# wss_at_least METHOD WINDOW BYTES: the method reports at least BYTES
wss_at_least() { [ "$(wss_of "$1" "$2")" -ge "$3" ]; }

# guest_hog ARGS...: memhog ARGS in the guest, in the background; returns
# once it has written all its pages (a loaded TCG guest takes a while)
guest_hog() {
	lab exec "$VM" "memhog -v -q $* >/dev/null 2>/tmp/hog.err &"
	until_true 120 lab exec "$VM" 'grep -q filled /tmp/hog.err'
}

@test "mswss refbit sees a guest workload from the QEMU process" {
	before=$(wss_of refbit 2s)
	guest_hog -W 96 -t 120 112
	until_true 60 wss_at_least refbit 2s $((before + 80 * MIB)) || true
	during=$(wss_of refbit 2s)
	lab exec "$VM" 'killall memhog; true'
	echo "guest WSS from the host: idle $((before / MIB)) MiB, memhog touching 96 MiB: $((during / MIB)) MiB"
	[ "$during" -ge $((before + 80 * MIB)) ]
}

@test "mswss balloon reads the guest's own view, and it follows the guest's use" {
	idle=$(wss_of balloon 2500ms)
	guest_hog -W 0 -t 120 100
	# the guest refreshes its balloon statistics every 2 s: wait for the report
	until_true 60 wss_at_least balloon 2500ms $((idle + 90 * MIB)) || true
	busy=$(wss_of balloon 2500ms)
	lab exec "$VM" 'killall memhog; true'
	echo "guest-reported used memory: idle $((idle / MIB)) MiB, holding 100 MiB: $((busy / MIB)) MiB"
	[ "$idle" -gt 0 ]
	[ "$busy" -ge $((idle + 90 * MIB)) ]
}

@test "mswss records usrtime and balloon facts for a libvirt guest" {
	run "$MSWSS" -c qemu:///system --window 1s "$VM"
	[ "$status" -eq 0 ]
	jq -e '.usrtime >= 0 and .usrtime <= 1 and .method == "auto"' <<<"$output"
}

@test "mswss: unknown libvirt domain is an input error" {
	run "$MSWSS" -c qemu:///system no-such-domain-$$
	[ "$status" -eq 2 ]
	[[ $output == "mswss: unknown domain 'no-such-domain-$$'"* ]]
	[ "${#lines[@]}" -eq 1 ]
}
