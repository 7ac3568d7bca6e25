# Shared by the command-line tests: real cgroups, real swap, real workloads.
MSWSS=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/mswss
USEMEM=${MEMSHARE_BUILD:-$PWD/build}/workload/usemem
MEMHOG=${MEMSHARE_BUILD:-$PWD/build}/workload/memhog
MSBALLOON=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msballoon
MSRSWAP=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msrswap

# Mount point of the memory controller (v2 with "memory", else v1), or "".
memory_root() {
	local v2
	v2=$(awk '$9 == "cgroup2" {print $5; exit}' /proc/self/mountinfo)
	if [ -n "$v2" ] && grep -qw memory "$v2/cgroup.controllers" 2>/dev/null; then
		echo "$v2"
		return
	fi
	awk '$9 == "cgroup" && $NF ~ /(^|,)memory(,|$)/ {print $5; exit}' /proc/self/mountinfo
}

require_cgroups() {
	[ "$(id -u)" = 0 ] || skip "needs root to create cgroups"
	MEMROOT=$(memory_root)
	[ -n "$MEMROOT" ] || skip "no cgroup memory controller mounted"
	CG_BASE=/memshare-test-$$
	mkdir -p "$MEMROOT$CG_BASE"
}

# Set a cgroup's memory limit (v1 or v2).
cgroup_limit() {
	if [ -f "$MEMROOT$1/memory.max" ]; then echo "$2" > "$MEMROOT$1/memory.max"
	else echo "$2" > "$MEMROOT$1/memory.limit_in_bytes"; fi
}

# start_workload CGROUP ARGS... : usemem inside the cgroup; waits for "ready"; sets WORKLOAD_PID.
start_workload() {
	local cg=$1; shift
	mkdir -p "$MEMROOT$cg"
	local out="$BATS_TEST_TMPDIR/usemem.$RANDOM"
	mkfifo "$out"
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$MEMROOT$cg" "$USEMEM" "$@" > "$out" 2>/dev/null &
	WORKLOAD_PID=$!
	WORKLOADS="${WORKLOADS:-} $WORKLOAD_PID"
	local line
	read -r -t 60 line < "$out" || true
	rm -f "$out"
	[ "$line" = ready ] || { echo "workload did not start"; return 1; }
}

stop_workloads() {
	local p
	for p in ${WORKLOADS:-}; do kill "$p" 2>/dev/null; done
	for p in ${WORKLOADS:-}; do wait "$p" 2>/dev/null; done
	WORKLOADS=
}

remove_cgroups() {
	[ -n "${MEMROOT:-}" ] && [ -n "${CG_BASE:-}" ] || return 0
	find "$MEMROOT$CG_BASE" -depth -type d -exec rmdir {} \; 2>/dev/null || true
}

# Make sure at least 1 GiB of swap is free; a swap file made here is removed by remove_swap.
ensure_swap() {
	local have
	have=$(awk 'NR > 1 {s += $3 - $4} END {print s + 0}' /proc/swaps)
	[ "$have" -ge 1000000 ] && return 0
	SWAPFILE=/var/tmp/memshare-test-swap.$$
	fallocate -l 1G "$SWAPFILE" && chmod 600 "$SWAPFILE" && mkswap "$SWAPFILE" >/dev/null && swapon "$SWAPFILE" ||
		{ rm -f "$SWAPFILE"; SWAPFILE=; skip "cannot enable swap on this machine"; }
}

# swapoff fails while pages in it cannot be brought back (a cgroup at its
# limit still holding them): retry, and never unlink an active swap file.
remove_swap() {
	[ -n "${SWAPFILE:-}" ] || return 0
	local i
	for i in $(seq 1 30); do
		swapoff "$SWAPFILE" 2>/dev/null && { rm -f "$SWAPFILE"; SWAPFILE=; return 0; }
		sleep 1
	done
	echo "warning: swap file $SWAPFILE is still in use; left in place" >&2
	SWAPFILE=
}

# until_true SECONDS CMD...: retry CMD every 0.1 s until it succeeds; the last try's status
until_true() {
	local n=$(($1 * 10))
	shift
	for _ in $(seq 1 "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	"$@"
}

# stop_daemons DIR: kill the daemons whose pids are in DIR/*.pid, then remove DIR
stop_daemons() {
	local p
	for p in "$1"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
	sleep 0.5
	rm -rf "$1"
}

# within PERCENT GOT WANT: |got - want| <= PERCENT % of want
within() {
	awk -v p="$1" -v g="$2" -v w="$3" 'BEGIN { d = g - w; if (d < 0) d = -d; exit !(d <= w * p / 100) }'
}

# The memory limit of a cgroup in bytes (v1 or v2; "max" reads as -1).
cgroup_limit_of() {
	local v
	if [ -f "$MEMROOT$1/memory.max" ]; then v=$(cat "$MEMROOT$1/memory.max"); else v=$(cat "$MEMROOT$1/memory.limit_in_bytes"); fi
	[ "$v" = max ] && v=-1
	echo "$v"
}

# Skip unless this host can swap on an msrswap device itself (FUSE file,
# loop device, swapon) and memhog, the checksummed workload, is built.
require_host_swap() {
	[ "$(id -u)" = 0 ] || skip "needs root (FUSE mount, loop devices, swapon)"
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	[ -c /dev/loop-control ] || skip "no loop devices (/dev/loop-control)"
	[ -x "$MEMHOG" ] || skip "memhog is not built"
}

# hog CGROUP LIMIT MIB SECONDS: memhog (checksummed pages, -r 0) in a fresh
# cgroup under $CG_BASE with that memory limit; its output on stdout.
hog() {
	mkdir -p "$MEMROOT$CG_BASE/$1"
	cgroup_limit "$CG_BASE/$1" "$2"
	sh -c 'echo $$ > "$1/cgroup.procs" && exec "$2" -r 0 -t "$4" "$3"' sh "$MEMROOT$CG_BASE/$1" "$MEMHOG" "$3" "$4" 2>&1
}
