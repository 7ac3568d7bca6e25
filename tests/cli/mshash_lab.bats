#!/usr/bin/env bats
# bats file_tags=lab
# mshash against real QEMU guests under libvirt (the test lab): guest RAM
# read from the QEMU process (memfd and anonymous backing), two guests booted
# from the same kernel sharing content, a memory-only dump that holds the
# same blocks as the paused guest, and the tracer on a guest.
# Skipped with the reason when this machine cannot run the lab.

bats_require_minimum_version 1.5.0
load ../lab/lab
load helpers

MSHASH=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/mshash

setup_file() {
	export VM1="mslab-hash1-$$" VM2="mslab-hash2-$$"
	lab_file_start "$VM1" 256M --memfd
	lab_file_start "$VM2" 256M
}

setup() {
	lab_require
	command -v jq >/dev/null || skip "jq is not installed"
	T=$BATS_TEST_TMPDIR
}

teardown_file() {
	lab_file_stop "$VM1" "$VM2"
}

teardown() {
	if [ -n "${SUSPENDED:-}" ]; then virsh -q -c qemu:///system resume "$SUSPENDED" >/dev/null 2>&1 || :; fi
	SUSPENDED=
	return 0
}

scan_vm() { "$MSHASH" -c qemu:///system scan "domain:$1" -o "$2"; }

@test "mshash scan domain:NAME reads guest RAM from the QEMU process (memfd and anonymous)" {
	for vm in "$VM1" "$VM2"; do
		run scan_vm "$vm" "$T/$vm.msh"
		[ "$status" -eq 0 ]
		echo "$output"
		pid=$(lab_qemu_pid "$vm")
		jq -e --arg s "domain:$vm" --arg p "QEMU pid $pid," '.source == $s and (.detail | startswith($p))
			and .blocks == 65536 and .present_blocks == 65536 and .distinct > 1000 and .zero_blocks > 0' <<<"$output"
	done
	[[ $(scan_vm "$VM1" "$T/x.msh" | jq -r .detail) == *memfd* ]]
	[[ $(scan_vm "$VM2" "$T/x.msh" | jq -r .detail) == *anonymous* ]]
}

@test "mshash stats: two guests booted from the same kernel share content" {
	scan_vm "$VM1" "$T/1.msh" >/dev/null
	scan_vm "$VM2" "$T/2.msh" >/dev/null
	run "$MSHASH" stats "$T/1.msh" "$T/2.msh"
	[ "$status" -eq 0 ]
	printf '%s\n' "${lines[@]}"
	set=$(jq -c 'select(.scope == "set")' <<<"$output")
	shared=$(jq '.intra_distinct - .inter_distinct' <<<"$set")
	echo "# contents in both guests: $shared blocks of 4 KiB ($((shared * 4 / 1024)) MiB)" >&3
	# the kernel, the initramfs and the page cache of the same boot: several MiB in common
	[ "$shared" -ge 1000 ]
	jq -e '.inter_ratio < .intra_ratio and .inter_reducible_bytes > .intra_reducible_bytes' <<<"$set"
	run "$MSHASH" query --degree both "$T/1.msh" "$T/2.msh"
	jq -e '.inter_degree > .intra_degree' <<<"$output"
	# the contents that both hold, one of them found by --where in both
	h=$("$MSHASH" query --shared 2 "$T/1.msh" "$T/2.msh" | jq -r 'select(.snapshots == 2) | .hash' | tail -n 1)
	"$MSHASH" query --where "$h" "$T/1.msh" "$T/2.msh" | jq_true '.snapshots == 2 and (.where | length) == 2'
}

@test "mshash: a memory-only virsh dump holds the same blocks as the guest scanned live while paused" {
	virsh -q -c qemu:///system suspend "$VM1" >/dev/null
	SUSPENDED=$VM1
	scan_vm "$VM1" "$T/live.msh" >/dev/null
	virsh -q -c qemu:///system dump "$VM1" "$T/vm.core" --memory-only >/dev/null
	virsh -q -c qemu:///system resume "$VM1" >/dev/null
	SUSPENDED=
	run "$MSHASH" scan "$T/vm.core" -o "$T/core.msh"
	[ "$status" -eq 0 ]
	echo "$output"
	# guest RAM at physical address 0, plus the firmware ROM QEMU maps below 4 GiB
	jq -e '(.detail | startswith("ELF core")) and .blocks >= 65536' <<<"$output"
	run "$MSHASH" diff "$T/live.msh" "$T/core.msh"
	echo "$output"
	jq -e '.unchanged_blocks == 65536 and .changed_blocks == 0 and .removed_blocks == 0' <<<"$output"
	# The dump's RAM segment alone gives exactly the stats of the live scan.
	read -r off size < <(perl -e 'open my $f, "<", $ARGV[0] or die; binmode $f; read $f, my $h, 64;
		my ($phoff, $phnum) = (unpack("Q<", substr($h, 32, 8)), unpack("v", substr($h, 56, 2)));
		for my $i (0 .. $phnum - 1) { seek $f, $phoff + 56 * $i, 0; read $f, my $p, 56;
			my ($type, $o, $pa, $fs) = (unpack("V", $p), unpack("Q<", substr($p, 8, 8)), unpack("Q<", substr($p, 24, 8)), unpack("Q<", substr($p, 32, 8)));
			if ($type == 1 && $pa == 0) { print "$o $fs\n"; last } }' "$T/vm.core")
	[ "$size" -eq 268435456 ]
	tail -c +$((off + 1)) "$T/vm.core" | head -c "$size" >"$T/ram.img"
	"$MSHASH" scan "$T/ram.img" -o "$T/ram.msh" >/dev/null
	live=$("$MSHASH" stats "$T/live.msh" | jq -c 'select(.scope == "set") | [.total_blocks, .zero_blocks, .intra_distinct, .inter_distinct]')
	dump=$("$MSHASH" stats "$T/ram.msh" | jq -c 'select(.scope == "set") | [.total_blocks, .zero_blocks, .intra_distinct, .inter_distinct]')
	echo "# live paused guest: $live, its dump: $dump" >&3
	[ "$live" = "$dump" ]
}

@test "mshash scan --freeze stops the guest's QEMU process only while it reads" {
	run "$MSHASH" -c qemu:///system scan --freeze -j 2 "domain:$VM2" -o "$T/f.msh"
	[ "$status" -eq 0 ]
	jq -e '.frozen == true and .blocks == 65536' <<<"$output"
	pid=$(lab_qemu_pid "$VM2")
	[ "$(awk '{print $3}' "/proc/$pid/stat")" != T ]
	run lab exec "$VM2" 'echo alive'
	[ "$output" = alive ]
}

@test "mshash watch domain:NAME: a guest workload shows as changed blocks" {
	# fresh random bytes into the guest's RAM-backed root file system, 16 MiB at a time
	lab exec "$VM1" "sh -c 'echo \$\$ >/hog.pid; while :; do dd if=/dev/urandom of=/hog bs=1M count=16 2>/dev/null; done' >/dev/null 2>&1 &"
	until_true 60 lab exec "$VM1" 'test -s /hog' # the writer runs
	run --separate-stderr "$MSHASH" -c qemu:///system watch -n 3 -i 1s "domain:$VM1"
	lab exec "$VM1" 'kill $(cat /hog.pid); rm -f /hog /hog.pid; true'
	[ "$status" -eq 0 ]
	printf '%s\n' "${lines[@]}"
	[ "${#lines[@]}" -eq 3 ]
	# the guest writes new contents all the time: thousands of blocks change per round
	jq -se 'map(.blocks == 65536 and (.source | startswith("domain:"))) | all' <<<"$output"
	jq -se '.[1:] | map(.changed_blocks >= 2000 and .cpu_s > 0 and .overhead > 0) | all' <<<"$output"
}

@test "mshash: an unknown domain is an input error" {
	run "$MSHASH" -c qemu:///system scan "domain:no-such-domain-$$" -o "$T/x.msh"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"no-such-domain-$$"* ]]
}
