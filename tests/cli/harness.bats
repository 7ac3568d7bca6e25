#!/usr/bin/env bats
# The test harness's own helpers (tests/cli/helpers.bash, tests/lab/lab.bash,
# tests/lab/lab): they must wait for events with deadlines, retry what the
# kernel refuses for a moment, and leave a libvirt daemon alone while another
# checkout's run uses it.  No guest is started here.
bats_require_minimum_version 1.5.0
load ../lab/lab
load helpers

teardown() {
	stop_workloads
	remove_cgroups
	[ -z "${HOLD_PID:-}" ] || kill "$HOLD_PID" 2>/dev/null || true
	[ -z "${FAKE_PID:-}" ] || kill "$FAKE_PID" 2>/dev/null || true
	true
}

slow_false() { sleep 1; false; }

@test "until_true's deadline is wall-clock time, however slow each try is" {
	SECONDS=0
	run until_true 3 slow_false
	[ "$status" -ne 0 ]
	echo "gave up after $SECONDS s"
	[ "$SECONDS" -le 6 ]
	# and it returns as soon as the event happens
	(sleep 1; touch "$BATS_TEST_TMPDIR/flag") &
	SECONDS=0
	until_true 30 test -e "$BATS_TEST_TMPDIR/flag"
	[ "$SECONDS" -le 5 ]
}

@test "wait_started fails at once when the daemon exits instead of listening" {
	sh -c 'exit 3' &
	SECONDS=0
	run wait_started $! "$BATS_TEST_TMPDIR/never.sock"
	[ "$status" -ne 0 ]
	[ "$SECONDS" -le 5 ]
	# a socket that shows up later is waited for
	socat "UNIX-LISTEN:$BATS_TEST_TMPDIR/late.sock,fork" /dev/null 2>/dev/null 3>&- &
	local pid=$!
	wait_started "$pid" "$BATS_TEST_TMPDIR/late.sock"
	kill "$pid"
}

@test "random_port gives consecutive ports no socket uses" {
	command -v ss >/dev/null || skip "ss (iproute2) is not installed"
	for _ in $(seq 1 20); do
		p=$(random_port 4)
		[ "$p" -ge 20000 ]
		[ $((p + 3)) -le 32767 ]
		for i in 0 1 2 3; do
			! ss -Htan | awk '{ sub(/.*:/, "", $4); print $4 }' | grep -qx "$((p + i))"
		done
	done
}

@test "cgroup_limit retries a limit the kernel refuses with EBUSY until the usage fits" {
	require_cgroups
	[ -f "$MEMROOT/memory.limit_in_bytes" ] || skip "cgroup v2: memory.max reclaims or OOM-kills, it never says EBUSY"
	mkdir -p "$MEMROOT$CG_BASE/busy"
	# no swap for this cgroup: 64 MiB of anonymous pages cannot be reclaimed
	echo 0 > "$MEMROOT$CG_BASE/busy/memory.swappiness"
	start_workload "$CG_BASE/busy" --touch 64 64
	local f=$MEMROOT$CG_BASE/busy/memory.limit_in_bytes
	run -1 bash -c "echo 16M > '$f'"
	[[ $output == *"Device or resource busy"* ]]
	# the workload ends 2 s later: then the limit fits
	(sleep 2; kill "$WORKLOAD_PID") &
	SECONDS=0
	cgroup_limit "$CG_BASE/busy" 16M
	echo "limit in place after $SECONDS s"
	[ "$(cgroup_limit_of "$CG_BASE/busy")" -eq $((16 * 1024 * 1024)) ]
	# a limit refused for another reason fails at once, with the reason
	SECONDS=0
	run cgroup_limit "$CG_BASE/busy" not-a-size
	[ "$status" -eq 1 ]
	[[ $output == *"cannot set $f to not-a-size"* ]]
	[ "$SECONDS" -le 2 ]
	# and a limit that never fits fails at the deadline
	start_workload "$CG_BASE/busy" --touch 8 8
	CGROUP_LIMIT_TIMEOUT=2 run cgroup_limit "$CG_BASE/busy" 1M
	[ "$status" -eq 1 ]
	[[ $output == *"Device or resource busy"* ]]
}

# A guest stand-in for the memshare disk helpers: 'lab exec VM CMD' runs CMD
# here, with /sys/block seen through GUEST_SYS (the disk appears after
# DISK_AFTER probes); swapprio is recorded.
fake_guest() {
	GUEST_SYS=$BATS_TEST_TMPDIR/sys
	rm -rf "$GUEST_SYS"
	mkdir -p "$GUEST_SYS/block/vda"
	echo 0 > "$BATS_TEST_TMPDIR/probes"
	lab() {
		[ "$1" = exec ] || return 99
		local cmd=$3 n
		n=$(($(cat "$BATS_TEST_TMPDIR/probes") + 1))
		echo "$n" > "$BATS_TEST_TMPDIR/probes"
		if [ "$n" -ge "$DISK_AFTER" ] && [ ! -e "$GUEST_SYS/block/vdb" ]; then
			mkdir -p "$GUEST_SYS/block/vdb" && echo memshare > "$GUEST_SYS/block/vdb/serial"
		fi
		cmd=${cmd//\/sys\/block/$GUEST_SYS/block}
		swapprio() { echo "swapprio $*" >> "$BATS_TEST_TMPDIR/swapprio"; }
		grep() { [ "$*" = "-q /dev/vdb /proc/swaps" ] || command grep "$@"; }
		eval "$cmd"
	}
}

@test "lab_memshare_disk: no disk yet is an empty answer, not a failure" {
	DISK_AFTER=1000
	fake_guest
	run lab_memshare_disk vm
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "lab_swapon_memshare_disk waits for a disk the guest sees late, then swaps on it" {
	DISK_AFTER=4
	fake_guest
	lab_swapon_memshare_disk vm
	[ "$(cat "$BATS_TEST_TMPDIR/swapprio")" = "swapprio /dev/vdb 10" ]
	[ "$(cat "$BATS_TEST_TMPDIR/probes")" -ge 4 ]
	lab_has_memshare_disk vm
	! lab_lacks_memshare_disk vm
	# and a disk that never comes is a failure at the deadline
	DISK_AFTER=1000
	fake_guest
	LAB_DISK_TIMEOUT=2 run lab_swapon_memshare_disk vm
	[ "$status" -ne 0 ]
	[[ $output == *"memshare disk not present after 2 s"* ]]
}

# A lab whose daemon is a stand-in: a process named libvirtd, recorded as
# started by a tests/run, and a virsh that answers for it and lists the
# running domains in $BATS_TEST_TMPDIR/running.
fake_lab_daemon() {
	export MEMSHARE_LAB_HOST_DIR=$BATS_TEST_TMPDIR/host MEMSHARE_LAB_DIR=$BATS_TEST_TMPDIR/lab
	export MEMSHARE_LAB_QEMU_CONF=$BATS_TEST_TMPDIR/qemu.conf
	mkdir -p "$MEMSHARE_LAB_HOST_DIR" "$BATS_TEST_TMPDIR/bin"
	cp "$(command -v sleep)" "$BATS_TEST_TMPDIR/bin/libvirtd"
	# not our child (a daemon is not): init reaps it when 'lab down' kills it
	("$BATS_TEST_TMPDIR/bin/libvirtd" 600 3>&- & echo $! > "$BATS_TEST_TMPDIR/fake.pid")
	FAKE_PID=$(cat "$BATS_TEST_TMPDIR/fake.pid")
	until_true 10 grep -q libvirtd "/proc/$FAKE_PID/comm"
	echo "$FAKE_PID $(awk '{ print $22 }' "/proc/$FAKE_PID/stat") tests/run" > "$MEMSHARE_LAB_HOST_DIR/libvirtd.owner"
	: > "$BATS_TEST_TMPDIR/running"
	cat > "$BATS_TEST_TMPDIR/bin/virsh" <<-EOF
		#!/bin/sh
		case " \$* " in
		*" list "*) cat "$BATS_TEST_TMPDIR/running" ;;
		*" uri "*) echo qemu:///system ;;
		*) exit 1 ;;
		esac
	EOF
	chmod +x "$BATS_TEST_TMPDIR/bin/virsh"
	export PATH=$BATS_TEST_TMPDIR/bin:$PATH
}

@test "lab down leaves the daemon while another run holds the lab or any domain runs; the last one stops it" {
	fake_lab_daemon
	run "$LAB_BIN" status
	[[ $output == *"started by the lab, pid $FAKE_PID, by tests/run"* ]]
	# another checkout's tests/run is going on
	"$LAB_BIN" hold sleep 600 3>&- &
	HOLD_PID=$!
	until_true 10 test -e "$MEMSHARE_LAB_HOST_DIR/runs.lock"
	until_true 10 bash -c "! flock -n -x '$MEMSHARE_LAB_HOST_DIR/runs.lock' true"
	run "$LAB_BIN" down
	echo "$output"
	[[ $output == *"a tests/run is using the lab"* ]]
	! gone "$FAKE_PID"
	kill "$HOLD_PID"
	until_true 10 gone "$HOLD_PID"
	# another lab dir's domain runs
	echo mslab-other-1 > "$BATS_TEST_TMPDIR/running"
	run "$LAB_BIN" down
	echo "$output"
	[[ $output == *"it serves 1 other domain(s)"* ]]
	! gone "$FAKE_PID"
	# nothing uses it any more: the last down stops it
	: > "$BATS_TEST_TMPDIR/running"
	run "$LAB_BIN" down
	echo "$output"
	[[ $output == *"stopped libvirtd (pid $FAKE_PID)"* ]]
	gone "$FAKE_PID"
	[ ! -e "$MEMSHARE_LAB_HOST_DIR/libvirtd.owner" ]
}

@test "lab down --leave-domains (tests/run's) leaves this lab dir's guests and their files to a bench that runs them" {
	fake_lab_daemon
	mkdir -p "$MEMSHARE_LAB_DIR/vms/bench-g1"
	echo bench-g1 > "$BATS_TEST_TMPDIR/running"
	run "$LAB_BIN" down --leave-domains
	echo "$output"
	[ "$status" -eq 0 ]
	[ -d "$MEMSHARE_LAB_DIR/vms/bench-g1" ]
	! gone "$FAKE_PID"
	run "$LAB_BIN" down --keep
	[ "$status" -eq 2 ]
	[[ $output == *"unknown option '--keep'"* ]]
	# a plain down clears the lab dir's guests
	: > "$BATS_TEST_TMPDIR/running"
	run "$LAB_BIN" down
	[ "$status" -eq 0 ]
	[ ! -e "$MEMSHARE_LAB_DIR/vms/bench-g1" ]
}

@test "lab up from two lab dirs at once starts one daemon, and both use it" {
	fake_lab_daemon # (its stand-in daemon is not the one started here)
	rm -f "$MEMSHARE_LAB_HOST_DIR/libvirtd.owner"
	kill "$FAKE_PID"
	# a libvirtd that takes a second to write its pid file; virsh reaches it once it has
	mkdir -p "$BATS_TEST_TMPDIR/sbin"
	mv "$BATS_TEST_TMPDIR/bin/libvirtd" "$BATS_TEST_TMPDIR/sbin/libvirtd"
	cat > "$BATS_TEST_TMPDIR/bin/libvirtd" <<-EOF
		#!/bin/sh
		[ "\$1" = -d ] && [ "\$2" = -p ] || exit 2
		echo started >> "$BATS_TEST_TMPDIR/starts"
		"$BATS_TEST_TMPDIR/sbin/libvirtd" 600 </dev/null >/dev/null 2>&1 &
		(sleep 1; echo \$! > "\$3") &
	EOF
	cat > "$BATS_TEST_TMPDIR/bin/virsh" <<-EOF
		#!/bin/sh
		pid=\$(cat "$MEMSHARE_LAB_HOST_DIR/libvirtd.pid" 2>/dev/null) && kill -0 "\$pid" 2>/dev/null || exit 1
		case " \$* " in
		*" uri "*) echo qemu:///system ;;
		*) exit 0 ;;
		esac
	EOF
	chmod +x "$BATS_TEST_TMPDIR/bin/libvirtd" "$BATS_TEST_TMPDIR/bin/virsh"
	MEMSHARE_LAB_DIR=$BATS_TEST_TMPDIR/lab1 "$LAB_BIN" up > "$BATS_TEST_TMPDIR/up1" 2>&1 3>&- &
	local a=$!
	MEMSHARE_LAB_DIR=$BATS_TEST_TMPDIR/lab2 "$LAB_BIN" up > "$BATS_TEST_TMPDIR/up2" 2>&1 3>&- &
	local b=$!
	wait "$a" && wait "$b"
	cat "$BATS_TEST_TMPDIR/up1" "$BATS_TEST_TMPDIR/up2"
	[ "$(wc -l < "$BATS_TEST_TMPDIR/starts")" -eq 1 ]
	grep -q "libvirtd already running (started by the lab" "$BATS_TEST_TMPDIR/up1" "$BATS_TEST_TMPDIR/up2"
	FAKE_PID=$(cat "$MEMSHARE_LAB_HOST_DIR/libvirtd.pid")
}
