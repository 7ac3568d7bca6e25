#!/usr/bin/env bats
# bats file_tags=lab
# The test lab itself (tests/lab/lab): a cached guest build, the libvirt
# daemon, a real TCG guest, commands run in it, and its removal.
# Skipped with the reason when this machine cannot run the lab.

bats_require_minimum_version 1.5.0
load ../lab/lab

setup_file() {
	export LAB_VM="mslab-cli-$$"
	lab_file_start "$LAB_VM" 256M --memfd
}

setup() {
	lab_require
}

teardown_file() {
	lab_file_stop "$LAB_VM"
}

@test "lab: a second build is a cache hit" {
	# a hit rebuilds nothing: the image files keep their inode and time
	local image=${MEMSHARE_LAB_DIR:-$BATS_TEST_DIRNAME/../../build/lab}/image before
	before=$(stat -c '%i %Y' "$image/initramfs.cpio.gz" "$image/vmlinuz")
	run lab build
	[ "$status" -eq 0 ]
	[[ "$output" == *"cache hit"* ]]
	[ "$(stat -c '%i %Y' "$image/initramfs.cpio.gz" "$image/vmlinuz")" = "$before" ]
}

@test "lab: up is idempotent and prints the URI" {
	run lab up
	[ "$status" -eq 0 ]
	[ "${lines[${#lines[@]} - 1]}" = "qemu:///system" ]
	[ "$(lab_uri)" = "qemu:///system" ]
}

@test "lab: start of a running domain is a no-op" {
	run lab start "$LAB_VM" --mem 256M --memfd
	[ "$status" -eq 0 ]
	[[ "$output" == *"already running"* ]]
}

@test "lab: start with other settings is refused" {
	run lab start "$LAB_VM" --mem 512M
	[ "$status" -eq 1 ]
	[[ "$output" == *"other settings"* ]]
}

@test "lab: exec prints the guest's output and MemTotal fits --mem" {
	run lab exec "$LAB_VM" 'grep MemTotal /proc/meminfo'
	[ "$status" -eq 0 ]
	local kib
	kib=$(awk '{ print $2 }' <<<"$output")
	[ "$kib" -gt $((128 * 1024)) ]
	[ "$kib" -le $((256 * 1024)) ]
}

@test "lab: exec passes the exit status and keeps stderr apart" {
	run --separate-stderr lab exec "$LAB_VM" 'echo out; echo err >&2; exit 7'
	[ "$status" -eq 7 ]
	[ "$output" = "out" ]
	[ "$stderr" = "err" ]
}

@test "lab: exec of a long script with quotes" {
	local long
	long=$(printf 'x%.0s' $(seq 1 5000))
	run lab exec "$LAB_VM" "v='$long'; echo \"\${#v} \\\$HOME\""
	[ "$status" -eq 0 ]
	[ "$output" = '5000 $HOME' ]
}

@test "lab: exec enforces its time limit and the guest stays usable" {
	run lab exec --timeout 1 "$LAB_VM" 'sleep 30'
	[ "$status" -eq 124 ]
	run lab exec "$LAB_VM" 'echo alive'
	[ "$status" -eq 0 ]
	[ "$output" = alive ]
}

@test "lab: the balloon driver reports statistics" {
	run virsh -c "$(lab_uri)" dommemstat "$LAB_VM"
	[ "$status" -eq 0 ]
	[[ "$output" == *"actual 262144"* ]]
}

@test "lab: a guest workload (memhog) grows the QEMU process" {
	local before after
	before=$(lab_rss_kib "$LAB_VM")
	# the guest command waits (within lab exec's time limit) until memhog has written its pages
	run lab exec --timeout 120 "$LAB_VM" 'memhog -v -q 96 2>/tmp/grow.err & until grep -q filled /tmp/grow.err; do sleep 0.2; done; grep AnonPages /proc/meminfo'
	[ "$status" -eq 0 ]
	after=$(lab_rss_kib "$LAB_VM")
	echo "QEMU VmRSS ${before} -> ${after} KiB; guest: $output" >&3
	[ $((after - before)) -gt $((32 * 1024)) ]
	run lab exec "$LAB_VM" 'killall memhog'
	[ "$status" -eq 0 ]
}

@test "lab: memhog verifies its pages" {
	run lab exec "$LAB_VM" 'memhog -t 1 -W 8 16'
	[ "$status" -eq 0 ]
	[[ "$output" == *"bad_pages=0"* ]]
}

@test "lab: stop removes the domain and is idempotent" {
	local vm="$LAB_VM-stop"
	run lab start "$vm" --mem 128M
	[ "$status" -eq 0 ]
	run lab stop "$vm"
	[ "$status" -eq 0 ]
	run virsh -c "$(lab_uri)" domstate "$vm"
	[ "$status" -ne 0 ]
	run lab stop "$vm"
	[ "$status" -eq 0 ]
	run lab exec "$vm" true
	[ "$status" -eq 1 ]
}

@test "lab: stop and start leave domains the lab did not create alone" {
	local vm="mslab-foreign-$$" uri
	uri=$(lab_uri)
	virsh -q -c "$uri" define /dev/stdin <<EOF
<domain type='qemu'><name>$vm</name><memory unit='MiB'>64</memory>
<os><type arch='x86_64'>hvm</type></os></domain>
EOF
	run lab stop "$vm"
	local stop_status=$status
	run lab start "$vm"
	local start_status=$status
	run virsh -q -c "$uri" domstate "$vm"
	local still_there=$status
	virsh -q -c "$uri" undefine "$vm"
	[ "$stop_status" -eq 1 ]
	[ "$start_status" -eq 1 ]
	[ "$still_there" -eq 0 ]
}
