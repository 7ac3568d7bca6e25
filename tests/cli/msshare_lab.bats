#!/usr/bin/env bats
# bats file_tags=lab
# msshare under the test lab: a virtiofs space attached live to a running
# QEMU (TCG) guest whose RAM is shared (--memfd); the guest mounts it by its
# tag and writes jobs into it, which the host sees and `msshare watch`
# counts; a resize shows in the guest's df at once; rm detaches it.
bats_require_minimum_version 1.5.0
load ../lab/lab
load helpers

MSSHARE=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msshare

setup_file() {
	export VM="${MEMSHARE_LAB_PREFIX:-mslab}-sh-$$"
	export MEMSHARE_SHARE_DIR=/tmp/msshare-lab-$$
	lab_file_start "$VM" 256M --memfd
}

setup() { lab_require; }

teardown_file() {
	[ -n "${WATCH_PID:-}" ] && kill "$WATCH_PID" 2>/dev/null
	lab_file_stop "$VM"
	MEMSHARE_LAB_DIR=$LAB_9P_DIR lab stop "${VM}-9p" >/dev/null 2>&1 || :
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

# ---- 9p at define time, on Debian's generic kernel --------------------------------
# The cloud kernel of the lab has no 9p; a lab image on the generic kernel does (its own
# MEMSHARE_LAB_DIR: 70 MB to download, so it is not built here): build it once with
#   MEMSHARE_LAB_DIR=build/lab-generic MEMSHARE_LAB_KERNEL_PKG=linux-image-6.1.0-57-amd64 tests/lab/lab build
LAB_9P_DIR=${MEMSHARE_LAB_9P_DIR:-${MEMSHARE_ROOT:-$PWD}/build/lab-generic}

serial_ready() { grep -qa 'MSLAB: READY' "$LAB_9P_DIR/log/$1.serial.log" 2>/dev/null; }

@test "msshare create --transport 9p --accessmode: the guest mounts it at its next boot and writes jobs the host sees" {
	[ -s "$LAB_9P_DIR/image/initramfs.cpio.gz" ] && grep -q -- '-amd64$' "$LAB_9P_DIR/image/release" ||
		skip "no lab image on the generic kernel in $LAB_9P_DIR (see this file)"
	export MEMSHARE_LAB_DIR=$LAB_9P_DIR
	VM9=${VM}-9p
	lab build # the cached generic kernel, this checkout's guest programs
	lab start "$VM9" --mem 256M --timeout 240
	run --separate-stderr "$MSSHARE" -c qemu:///system create "$VM9" --size 8M --transport 9p --tag p9 --accessmode mapped
	echo "$output $stderr"
	[ "$status" -eq 0 ]
	jq -e '.transport == "9p" and .accessmode == "mapped"' <<<"$output"
	# 9p is not hot-plugged: the next boot has it
	virsh -c qemu:///system destroy "$VM9" >/dev/null
	rm -f "$LAB_9P_DIR/log/$VM9.serial.log"
	virsh -c qemu:///system start "$VM9" >/dev/null
	until_true 240 serial_ready "$VM9"
	run lab exec --timeout 120 "$VM9" 'mkdir -p /mnt/p9 && mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 p9 /mnt/p9 && jobgen /mnt/p9 64 5:2 && df -k /mnt/p9 | tail -1'
	echo "$output"
	[[ $output == *"jobgen: "*" jobs of 64 KiB"* ]]
	dir=$MEMSHARE_SHARE_DIR/$VM9
	ls "$dir"/job.* >/dev/null
	# mapped: the host files are QEMU's, the guest's owner and mode are kept aside
	[ "$(stat -c %a "$dir/job.00000000")" = 600 ]
	rm -f "$dir"/job.*
	[ $(($(stat -f -c '%b - %f' "$dir"))) -eq 0 ] # removed jobs free their room at once
	# libvirt cannot unplug 9p from a running guest either: rm once it is shut off
	virsh -c qemu:///system destroy "$VM9" >/dev/null
	run -0 "$MSSHARE" -c qemu:///system rm "$VM9"
	! virsh -c qemu:///system dumpxml --inactive "$VM9" | grep -q "<target dir='p9'/>"
	lab stop "$VM9"
}

# ---- the MemNet loop in a guest, short (bench/msshare-memnet has the long one) ----------
@test "memnet in the lab: jobs from the guest at λ 2 → 8 → 2/s, msshare watch | msballoon plan --policy memnet --apply keeps the space within the SLO" {
	out=$BATS_TEST_TMPDIR/memnet.jsonl
	# a guest of its own (the bench starts and stops it), adaptive runs only
	run "${MEMSHARE_ROOT:-$PWD}/bench/msshare-memnet" --vm "${VM}-mn" --phase 30 --settle 10 --static '' \
		--slo 5 --tolerance 5 --json "$out"
	echo "$output"
	[ "$status" -eq 0 ]
	jq -c . "$out"
	echo "# $(grep -E '^1 +adaptive' <<<"$output" | tr -s ' ' | paste -sd ';')" >&3
	# every phase, after the change settled: full at most 5% + 5 points of the time
	jq -e '.run == "adaptive" and (.phases | length == 3) and all(.phases[]; .intervals >= 15 and .full <= 0.10)' "$out"
	# the space followed the load: larger at λ = 8 than at λ = 2 on either side
	jq -e '.phases[1].size_kib > .phases[0].size_kib and .phases[1].size_kib > .phases[2].size_kib' "$out"
}
