# lab.bash — bats helpers for tests that run real guests in the memshare test lab.
#
#   load ../lab/lab        (from a file in tests/cli/)
#
#   setup_file() { export VM=mslab-mytest-$$; lab_file_start "$VM" 256M; }
#   setup() { lab_require; }
#   teardown_file() { lab_file_stop "$VM"; }
#   @test "..." { run lab exec "$VM" 'grep MemTotal /proc/meminfo'; ... }
#
# bats 1.8 cannot skip from setup_file, hence the split: lab_available
# decides once per file (and exports its reason), lab_require skips each
# test with that reason.  The lab cannot run when QEMU is missing, no libvirt
# daemon is reachable and none can be started, there is no cached guest and
# no way to build one, or MEMSHARE_LAB_SKIP is set.  Failures after that are
# real failures.  The lab keeps its cache and state in $MEMSHARE_LAB_DIR
# (default <repo>/build/lab).

LAB_BIN=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lab

# lab_file_start VM MEM [OPTION...]: setup_file's part: start the file's
# guest VM with MEM of RAM (and lab start's OPTIONs), when the lab runs here.
lab_file_start() {
	local vm=$1 mem=$2
	shift 2
	if lab_available; then
		lab_ready
		lab start "$vm" --mem "$mem" "$@"
	fi
}

# lab_file_stop VM...: teardown_file's part.
lab_file_stop() {
	local vm
	if lab_available; then
		for vm; do lab stop "$vm"; done
	fi
}

# lab_memshare_disk VM: the guest's name for the hot-plugged memshare disk
# (serial "memshare"), empty when it has none.  Fails only when the guest
# cannot be asked (lab exec failed), never because the disk is not there.
lab_memshare_disk() {
	lab exec "$1" 'for b in /sys/block/*; do [ "$(cat $b/serial 2>/dev/null)" = memshare ] && basename $b; done; true'
}

# A hot-plugged disk shows up in the guest a while after libvirt's attach
# returns (about a second on an idle TCG guest, much longer on a loaded
# host), and goes away a while after detach: wait for it, with a deadline.
LAB_DISK_TIMEOUT=${MEMSHARE_LAB_DISK_TIMEOUT:-120}

lab_has_memshare_disk() { local d; d=$(lab_memshare_disk "$1") && [ -n "$d" ]; }
lab_lacks_memshare_disk() { local d; d=$(lab_memshare_disk "$1") && [ -z "$d" ]; }

# lab_wait_memshare_disk VM present|absent: wait (LAB_DISK_TIMEOUT) until the
# guest sees the memshare disk, or no longer sees it; needs helpers.bash.
lab_wait_memshare_disk() {
	local check=lab_has_memshare_disk
	[ "$2" = absent ] && check=lab_lacks_memshare_disk
	until_true "$LAB_DISK_TIMEOUT" "$check" "$1" && return 0
	echo "guest $1: memshare disk not $2 after $LAB_DISK_TIMEOUT s (sees: $(lab_memshare_disk "$1" 2>&1 | tr '\n' ' '))"
	return 1
}

# lab_swapon_memshare_disk VM: wait for the hot-plugged memshare disk and
# swap on it: the signature msrswap attach --mkswap wrote is what the
# guest's swapon expects.
lab_swapon_memshare_disk() {
	local dev
	lab_wait_memshare_disk "$1" present || return 1
	dev=$(lab_memshare_disk "$1") || return 1
	echo "guest disk: $dev"
	lab exec "$1" "swapprio /dev/$dev 10 && grep -q /dev/$dev /proc/swaps"
}

# lab_detach_memshare_disk VM CONTROL: the guest lets go of the memshare
# disk: swapoff in the guest, msrswap detach (the client daemon at control
# socket CONTROL), and wait until the guest no longer sees it; needs
# helpers.bash (MSRSWAP).
lab_detach_memshare_disk() {
	local dev
	dev=$(lab_memshare_disk "$1") && [ -n "$dev" ] || { echo "guest $1: no memshare disk to detach"; return 1; }
	lab exec "$1" "swapoff /dev/$dev" || return 1
	"$MSRSWAP" -c qemu:///system detach "$1" --control "$2" || return 1
	lab_wait_memshare_disk "$1" absent
}

# The lab command itself (tests/lab/lab).
lab() {
	"$LAB_BIN" "$@"
}

# True when this machine can run the lab; otherwise false, with the reason
# in LAB_SKIP_REASON.  The answer is exported, so setup_file decides once.
lab_available() {
	if [ -z "${LAB_CHECKED:-}" ]; then
		if LAB_SKIP_REASON=$("$LAB_BIN" check 2>&1); then
			LAB_SKIP_REASON=''
		else
			LAB_SKIP_REASON=${LAB_SKIP_REASON:-lab check failed}
		fi
		export LAB_CHECKED=1 LAB_SKIP_REASON
	fi
	[ -z "$LAB_SKIP_REASON" ]
}

# Skip the current test, with the reason, when the lab cannot run here.
# Use it in setup() or in a test, not in setup_file.
lab_require() {
	lab_available || skip "lab: $LAB_SKIP_REASON"
}

# Build the guest (a cache hit after the first time) and make the libvirt
# daemon reachable.  Meant for setup_file, after lab_require.
lab_ready() {
	"$LAB_BIN" build || return 1
	"$LAB_BIN" up >/dev/null || return 1
}

# The libvirt URI the lab's domains live under (starts the daemon if needed).
lab_uri() {
	"$LAB_BIN" up 2>/dev/null
}

# Pid of the QEMU process of lab domain NAME.
lab_qemu_pid() {
	"$LAB_BIN" pid "$1"
}

# Resident memory of NAME's QEMU process in KiB (VmRSS; anonymous plus
# shared, so it also counts guest RAM of --memfd domains).
lab_rss_kib() {
	local pid
	pid=$("$LAB_BIN" pid "$1") || return 1
	awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status"
}
