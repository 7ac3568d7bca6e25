#!/usr/bin/env bats
# msshare under the test lab: a virtiofs space attached live to a running
# QEMU (TCG) guest whose RAM is shared (--memfd); the guest mounts it by its
# tag and writes jobs into it, which the host sees and `msshare watch`
# counts; a resize shows in the guest's df at once; rm detaches it.
bats_require_minimum_version 1.5.0
load ../lab/lab
load helpers

MSSHARE=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msshare

setup_file() {
	export VM="mslab-sh-$$"
	export MEMSHARE_SHARE_DIR=/tmp/msshare-lab-$$
	lab_file_start "$VM" 256M --memfd
}

setup() { lab_require; }

teardown_file() {
	[ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null
	lab_file_stop "$VM"
	local m
	for m in $(awk -v d="$MEMSHARE_SHARE_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo 2>/dev/null); do
		umount -l "$m"
	done
	rm -rf "$MEMSHARE_SHARE_DIR"
}

# The guest probes the hot-plugged device a while after libvirt's attach returns.
guest_mounts() { lab exec "$VM" 'mkdir -p /mnt/jobs && { grep -q " /mnt/jobs " /proc/mounts || mount -t virtiofs jobs /mnt/jobs; }'; }
guest_df_kib() { lab exec "$VM" "df -k /mnt/jobs | awk 'NR == 2 { print \$2 }'"; }
guest_sees_kib() { [ "$(guest_df_kib)" = "$1" ]; }

@test "msshare create attaches a virtiofs space live, and the guest mounts it by its tag" {
	run --separate-stderr "$MSSHARE" -c qemu:///system create "$VM" --size 16M --tag jobs
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	jq -e '.kind == "share_space" and .tag == "jobs" and .transport == "virtiofs" and .accessmode == "passthrough" and .size_bytes == 16777216' <<<"$output"
	virsh -c qemu:///system dumpxml "$VM" | grep -q "<target dir='jobs'/>"
	virsh -c qemu:///system dumpxml "$VM" | grep -A6 "<driver type='virtiofs'" | grep -q "<cache mode='none'/>"
	until_true "${LAB_DISK_TIMEOUT:-120}" guest_mounts
	guest_sees_kib 16384
}

@test "msshare watch counts the jobs the guest writes and the host takes" {
	dir=$MEMSHARE_SHARE_DIR/$VM
	out=$BATS_TEST_TMPDIR/watch.jsonl
	"$MSSHARE" -c qemu:///system watch -i 1s --all > "$out" &
	WATCH_PID=$!
	until_true 60 test -s "$out"
	# the guest writes 5 jobs of 256 KiB (temporary name, then renamed), the host removes them
	run lab exec --timeout 120 "$VM" 'for i in 1 2 3 4 5; do dd if=/dev/zero of=/mnt/jobs/.t$i bs=64k count=4 2>/dev/null && mv /mnt/jobs/.t$i /mnt/jobs/job.$i; done; echo done'
	[[ $output == *done* ]]
	until_true 60 test -f "$dir/job.5"
	rm -f "$dir"/job.*
	# the jobs the host removed free their room: the guest does not keep their inodes (cache none)
	space_used() { [ $(($(stat -f -c '%b - %f' "$dir"))) -eq "$1" ]; }
	until_true 30 space_used 0
	counted() { [ "$(jq -s --arg d "$VM" '[.[] | select(.domain == $d) | .departures_per_s * .window_s] | add // 0 | round' < "$out")" -ge 5 ]; }
	until_true 60 counted
	kill "$WATCH_PID"
	wait "$WATCH_PID" || true
	WATCH_PID=
	cat "$out"
	[ "$(jq -s --arg d "$VM" '[.[] | select(.domain == $d) | .arrivals_per_s * .window_s] | add | round' < "$out")" -eq 5 ]
	jq -e -s 'map(.mean_job_bytes | select(. != null)) | length > 0 and all(. == 262144)' < "$out"
}

@test "msshare resize shows in the guest's df at once; below its use it is refused" {
	run -0 "$MSSHARE" -c qemu:///system resize "$VM" 32M
	guest_sees_kib 32768
	lab exec "$VM" 'dd if=/dev/zero of=/mnt/jobs/keep bs=64k count=64 2>/dev/null' # 4 MiB in use
	run -2 "$MSSHARE" -c qemu:///system resize "$VM" 2M
	echo "$output"
	# at least the 4 MiB: removed jobs the guest still holds an inode of (virtiofsd keeps it open) count too
	[[ $output =~ "size 2M is below the "([0-9.]+)M" in use" ]]
	awk -v u="${BASH_REMATCH[1]}" 'BEGIN { exit !(u >= 4) }'
	guest_sees_kib 32768
}

@test "msshare rm detaches the space (--force: no guest agent can say whether it is mounted)" {
	run -1 "$MSSHARE" -c qemu:///system rm "$VM"
	[[ $output == *"cannot tell whether '$VM' has mounted its share 'jobs'"* ]]
	lab exec "$VM" 'umount /mnt/jobs'
	run -0 "$MSSHARE" -c qemu:///system rm --force "$VM"
	! virsh -c qemu:///system dumpxml "$VM" | grep -q "<target dir='jobs'/>"
	! findmnt --mountpoint "$MEMSHARE_SHARE_DIR/$VM"
}

@test "msshare create --transport 9p adds the space to the definition, for the next boot (9p is not hot-plugged)" {
	run --separate-stderr "$MSSHARE" -c qemu:///system create "$VM" --size 8M --transport 9p --tag p9
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	jq -e '.transport == "9p" and .tag == "p9"' <<<"$output"
	virsh -c qemu:///system dumpxml --inactive "$VM" | grep -A4 "<filesystem type='mount' accessmode='mapped'>" | grep -q "<target dir='p9'/>"
	! virsh -c qemu:///system dumpxml "$VM" | grep -q "<target dir='p9'/>"
	# the running guest cannot have it mounted: rm needs no --force
	run -0 "$MSSHARE" -c qemu:///system rm "$VM"
	! virsh -c qemu:///system dumpxml --inactive "$VM" | grep -q "<target dir='p9'/>"
	! findmnt --mountpoint "$MEMSHARE_SHARE_DIR/$VM"
	# --accessmode: MemNet's other 9p security models
	for mode in passthrough squash; do
		run --separate-stderr "$MSSHARE" -c qemu:///system create "$VM" --size 8M --transport 9p --tag p9 --accessmode $mode
		[ "$status" -eq 0 ]
		jq -e --arg m $mode '.accessmode == $m' <<<"$output"
		virsh -c qemu:///system dumpxml --inactive "$VM" | grep -A4 "<filesystem type='mount' accessmode='$mode'>" | grep -q "<target dir='p9'/>"
		run -0 "$MSSHARE" -c qemu:///system rm "$VM"
	done
}
