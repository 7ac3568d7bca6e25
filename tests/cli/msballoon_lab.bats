#!/usr/bin/env bats
# bats file_tags=lab
# msballoon moving a real QEMU guest's balloon under libvirt (the test lab).
# Skipped with the reason when this machine cannot run the lab.

bats_require_minimum_version 1.5.0
load ../lab/lab
load helpers

setup_file() {
	export VM="mslab-bal-$$"
	lab_file_start "$VM" 256M
}

setup() { lab_require; }

teardown_file() {
	lab_file_stop "$VM"
}

MIB=1048576

actual_kib() {
	virsh -c qemu:///system dommemstat "$VM" | awk '$1 == "actual" {print $2}'
}
balloon_is() { [ "$(actual_kib)" -eq "$1" ]; }
# balloon_at KIB: the balloon gets to KIB within a deadline (a TCG guest on a
# loaded host moves it slowly; "reached" is within 1 % or 2 MiB of the target)
balloon_at() { until_true 120 balloon_is "$1"; }

# msballoon waits up to --wait for the guest to move its balloon: 10 s by
# default, too short for a TCG guest beside other work
WAIT=(--wait 120s)

@test "msballoon set moves the guest's balloon and reports that it got there" {
	run --separate-stderr "$MSBALLOON" -c qemu:///system set "${WAIT[@]}" --min 64M "$VM" 192M
	[ "$status" -eq 0 ]
	echo "$output"
	jq -e '.applied and .reached and .balloon_bytes == 201326592 and .prev_balloon_bytes == 268435456' <<<"$output"
	balloon_at 196608
	# the guest sees it too
	total=$(lab exec "$VM" "awk '/MemTotal/ {print \$2}' /proc/meminfo")
	echo "guest MemTotal: $total kB"
	[ "$total" -lt 200000 ]
	run --separate-stderr "$MSBALLOON" -c qemu:///system set "${WAIT[@]}" --min 64M "$VM" 100%
	[ "$status" -eq 0 ]
	balloon_at 262144
}

@test "msballoon set above the guest's maximum is refused before anything moves" {
	run "$MSBALLOON" -c qemu:///system set --min 64M "$VM" 512M
	[ "$status" -eq 2 ]
	[[ $output == *"maximum 256M"* ]]
	[ "$(actual_kib)" -eq 262144 ]
}

@test "msballoon apply: a plan moves the balloon down then back up" {
	plan="{\"kind\":\"target\",\"domain\":\"$VM\",\"balloon_bytes\":$((160 * MIB))}"
	run --separate-stderr "$MSBALLOON" -c qemu:///system apply "${WAIT[@]}" --min 64M <<<"$plan"
	[ "$status" -eq 0 ]
	echo "$output"
	# "reached" is within 1 % and at least 2 MiB, bounds included (msballoon(1));
	# the balloon moves 1 MiB at a time, so the read that reaches it can be the
	# one exactly 2 MiB away
	jq -e '.applied and .reached and (.actual_bytes - 167772160 | fabs) <= 2097152' <<<"$output"
	balloon_at 163840
	plan="{\"kind\":\"target\",\"domain\":\"$VM\",\"balloon_bytes\":$((256 * MIB))}"
	run --separate-stderr "$MSBALLOON" -c qemu:///system apply "${WAIT[@]}" --min 64M <<<"$plan"
	[ "$status" -eq 0 ]
	balloon_at 262144
}

@test "mswss | msballoon plan --policy wss --apply sizes the guest from its working set, within floor and maximum" {
	out=$BATS_TEST_TMPDIR/plan.jsonl
	"$MSWSS" -c qemu:///system --interval 2s --count 3 "$VM" |
		"$MSBALLOON" -c qemu:///system plan --policy wss --apply "${WAIT[@]}" --min 160M --headroom 20% > "$out"
	cat "$out"
	jq -e -s '[.[] | select(.kind == "target")] | length == 3 and
	          all(.[] | select(.kind == "target"); .balloon_bytes >= 167772160 and .balloon_bytes <= 268435456)' "$out"
	last=$(jq -s '[.[] | select(.kind == "target")][-1].balloon_bytes' "$out")
	balloon_at $((last / 1024))
	"$MSBALLOON" -c qemu:///system set "${WAIT[@]}" --min 64M "$VM" 256M >/dev/null
}
