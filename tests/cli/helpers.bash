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

# cgroup_limit CGROUP LIMIT: set a cgroup's memory limit (v1 or v2).  v1
# refuses a limit below the usage with EBUSY when it cannot reclaim in time
# (a loaded machine, pages on their way to swap): retry until the usage
# fits, for at most $CGROUP_LIMIT_TIMEOUT (60) s, then fail with the reason.
cgroup_limit() {
	local f=$MEMROOT$1/memory.max err
	[ -f "$f" ] || f=$MEMROOT$1/memory.limit_in_bytes
	local deadline=$((SECONDS + ${CGROUP_LIMIT_TIMEOUT:-60}))
	until err=$({ echo "$2" > "$f"; } 2>&1); do
		if [[ $err != *"Device or resource busy"* ]] || [ "$SECONDS" -ge "$deadline" ]; then
			echo "cgroup_limit: cannot set $f to $2: ${err#*: }" >&2
			return 1
		fi
		sleep 0.2
	done
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

# Make sure at least 1 GiB of swap is free; a swap file made here is removed
# by remove_swap.  Another test's swap file or loop device (of this run or another
# checkout's) does not count: it goes away when that test ends, and a cgroup
# at its limit whose pages are in it is then OOM-killed by that swapoff
# unless there is other swap to take them.
ensure_swap() {
	local have
	have=$(awk 'NR > 1 && $1 !~ /^(\/var\/tmp\/memshare-test-swap\.|\/dev\/loop)/ {s += $3 - $4} END {print s + 0}' /proc/swaps)
	[ "$have" -ge 1000000 ] && return 0
	SWAPFILE=/var/tmp/memshare-test-swap.$$.${BATS_TEST_NUMBER:-0}
	fallocate -l 1G "$SWAPFILE" && chmod 600 "$SWAPFILE" && mkswap "$SWAPFILE" >/dev/null && swapon "$SWAPFILE" ||
		{ rm -f "$SWAPFILE"; SWAPFILE=; skip "cannot enable swap on this machine"; }
}

# swapoff fails while pages in it cannot be brought back (a cgroup at its
# limit still holding them): retry, and never unlink an active swap file.
remove_swap() {
	[ -n "${SWAPFILE:-}" ] || return 0
	if until_true 60 swapoff "$SWAPFILE"; then
		rm -f "$SWAPFILE"
	else
		echo "warning: swap file $SWAPFILE is still in use; left in place" >&2
	fi
	SWAPFILE=
}

# until_true SECONDS CMD...: retry CMD every 0.1 s until it succeeds or
# SECONDS (a wall-clock deadline, however slow each try is) have passed;
# then one last try, whose output and status are the answer.
until_true() {
	local deadline=$((SECONDS + $1))
	shift
	while [ "$SECONDS" -lt "$deadline" ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	"$@"
}

# detach_host_swap DOMAIN CONTROL: `msrswap detach --host`, retried for up to
# 120 s.  Swap devices are the whole host's: pages of another cgroup (another
# test's, on a shared machine) may sit on this device, and swapoff is refused
# (ENOMEM) while that cgroup is at its limit; it succeeds once they are freed.
detach_host_swap() {
	until_true 120 "$MSRSWAP" detach --host "$1" --control "$2"
}

# The daemons a test starts come up in well under a second on a quiet
# machine; a loaded one with sanitizers can take many times that.
DAEMON_START_TIMEOUT=${MEMSHARE_DAEMON_START_TIMEOUT:-60}

# wait_socket PATH...: wait (DAEMON_START_TIMEOUT) until each PATH is a socket
wait_socket() {
	local p
	for p; do until_true "$DAEMON_START_TIMEOUT" test -S "$p" || { echo "no socket $p after ${DAEMON_START_TIMEOUT}s" >&2; return 1; }; done
}

# sockets_or_gone PID PATH...: each PATH is a socket, or PID has exited
sockets_or_gone() {
	local pid=$1 p
	shift
	gone "$pid" && return 0
	for p; do [ -S "$p" ] || return 1; done
}

# wait_started PID PATH...: wait (DAEMON_START_TIMEOUT) until the daemon PID
# listens on each socket PATH; fails as soon as it exits instead.
wait_started() {
	local pid=$1
	until_true "$DAEMON_START_TIMEOUT" sockets_or_gone "$@"
	gone "$pid" && { echo "daemon $pid exited before it listened on ${*:2}" >&2; return 1; }
	wait_socket "${@:2}"
}

# random_port [N]: a random port P such that P..P+N-1 are in no socket of
# this machine right now, all in 20000-32767: below the ephemeral range
# (32768-) that outgoing connections draw from.  Another process may still take one
# before the test's daemon binds it: a daemon that cannot listen is retried
# on another port where a test can (see msrswap_tls.bats's serve_tls_tcp).
random_port() {
	local n=${1:-1} p i used
	used=" $(ss -Htan 2>/dev/null | awk '{ sub(/.*:/, "", $4); printf "%s ", $4 }')"
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % (12768 - n)))
		for ((i = 0; i < n; i++)); do [[ $used == *" $((p + i)) "* ]] && continue 2; done
		echo "$p"
		return 0
	done
	echo "random_port: no $n free consecutive ports found" >&2
	return 1
}

# gone PID...: true when none of the processes runs any more (a zombie
# not yet reaped by its parent counts as gone)
gone() {
	local p state
	for p; do
		state=$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null) || continue
		[ -z "$state" ] || [ "$state" = Z ] || return 1
	done
	return 0
}

# stop_daemons DIR: stop the daemons whose pids are in DIR/*.pid (TERM, then
# KILL after 30 s), wait until they are gone, then remove DIR
stop_daemons() {
	local f pids=()
	for f in "$1"/*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
	if [ ${#pids[@]} -gt 0 ]; then
		kill "${pids[@]}" 2>/dev/null
		until_true 30 gone "${pids[@]}" || { kill -9 "${pids[@]}" 2>/dev/null; until_true 10 gone "${pids[@]}"; }
	fi
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

# Skip unless a bench that swaps memory cgroups on msrswap devices can run
# here (bench/farmem, bench/reproduce's cgroup cases): host swap, usemem, the
# memory controller, and each command named.
require_swap_bench() {
	local c
	require_host_swap
	[ -x "$USEMEM" ] || skip "usemem is not built (make test-programs)"
	[ -n "$(memory_root)" ] || skip "no cgroup memory controller mounted"
	for c in "$@"; do command -v "$c" >/dev/null || skip "needs $c"; done
}

# bench_work_dir, bench_work_cgroup < LOG: where such a bench worked, from its
# "NAME: working in DIR, cgroups under CGROUP" line.
bench_work_dir() { sed -n 's/^.*: working in \(.*\), cgroups under .*/\1/p'; }
bench_work_cgroup() { sed -n 's/^.*: working in .*, cgroups under \(.*\)/\1/p'; }

# swaps_in DIR: the swap devices whose loop device's file is under DIR
swaps_in() {
	local dev
	for dev in $(awk 'NR > 1 {print $1}' /proc/swaps); do
		[[ $(cat "/sys/block/${dev#/dev/}/loop/backing_file" 2>/dev/null) == "$1"/* ]] && echo "$dev"
	done
	return 0
}

# bench_left_nothing DIR CGROUP: nothing of such a bench is left: no swap on
# its files (a loop device's or a swap file's), no mount under DIR, no
# cgroup, no directory.
bench_left_nothing() {
	local dir=$1 cg=$2
	[ -n "$dir" ] && [ -n "$cg" ] || return 1
	[ -z "$(swaps_in "$dir")" ] && ! grep -q "$dir" /proc/swaps && ! grep -q " $dir/" /proc/mounts &&
		[ ! -e "$cg" ] && [ ! -e "$dir" ]
}

# hog CGROUP LIMIT MIB SECONDS: memhog (checksummed pages, -r 0) in a fresh
# cgroup under $CG_BASE with that memory limit; its output on stdout.
hog() {
	mkdir -p "$MEMROOT$CG_BASE/$1"
	cgroup_limit "$CG_BASE/$1" "$2"
	sh -c 'echo $$ > "$1/cgroup.procs" && exec "$2" -r 0 -t "$4" "$3"' sh "$MEMROOT$CG_BASE/$1" "$MEMHOG" "$3" "$4" 2>&1
}

# jq -e FILTER that fails on empty input.  jq 1.6 exits 0 when its input is
# empty, so `cmd | jq -e FILTER` passes when cmd printed nothing: a test that
# cannot fail.
jq_true() {
	local input
	input=$(cat) || return 1
	if [ -z "$input" ]; then
		echo "jq_true: no input for: $*" >&2
		return 1
	fi
	jq -e "$@" <<<"$input"
}
