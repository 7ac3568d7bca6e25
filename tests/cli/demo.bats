#!/usr/bin/env bats
# scripts/demo (make demo), the whole system on one host: run on a pipe, its
# JSON Lines hold every tool's records, 0 bad pages, and nothing it started
# is left behind, whether it ends or is interrupted (SIGINT) midway.
bats_require_minimum_version 1.5.0
load helpers

setup() {
	ROOT=${MEMSHARE_ROOT:-$PWD}
	[ -x "$ROOT/scripts/demo" ] || skip "not run from a memshare checkout"
	[ -x "$ROOT/bin/msrswap" ] && [ -x "$ROOT/build/workload/usemem" ] || skip "run make first"
	command -v jq >/dev/null || skip "jq is not installed"
	OUT=$BATS_TEST_TMPDIR/demo.jsonl
	ERR=$BATS_TEST_TMPDIR/demo.err
	# short phases: the test is about the plumbing, not the figures
	export MEMSHARE_DEMO_PHASE=${MEMSHARE_DEMO_PHASE:-10}
	# every process the demo starts inherits this variable, whatever its
	# command line: nothing_left finds them by it.  The demo runs without
	# bats's descriptor 3: a process it left behind then makes nothing_left
	# fail, not bats wait for ever (a CI run: demo.bats killed after 1200 s)
	MARK=MEMSHARE_DEMO_TEST_RUN=$BATS_TEST_TMPDIR
}

require_demo() {
	[ "$(id -u)" = 0 ] || skip "the demo needs root"
	[ -n "$(memory_root)" ] || skip "no cgroup memory controller mounted"
	[ -c /dev/fuse ] && [ -c /dev/loop-control ] || skip "no /dev/fuse or loop devices"
}

# The demo's directory and cgroup, from its first words on stderr.
demo_places() {
	DIR=$(sed -n 's/^demo: setting up in \([^,]*\), cgroups \([^{]*\)\/{.*/\1/p' "$ERR")
	CG=$(sed -n 's/^demo: setting up in \([^,]*\), cgroups \([^{]*\)\/{.*/\2/p' "$ERR")
	[ -n "$DIR" ] && [ -n "$CG" ] || { echo "the demo did not say where it works"; cat "$ERR"; return 1; }
}

# nothing_left: no directory, cgroup, swap device, mount or process of the demo's
nothing_left() {
	local dev p
	[ ! -e "$DIR" ] || { echo "left: $DIR"; return 1; }
	[ ! -e "$(memory_root)$CG" ] || { echo "left: cgroup $CG"; return 1; }
	for dev in $(awk 'NR > 1 {print $1}' /proc/swaps); do
		[[ $(cat "/sys/block/${dev#/dev/}/loop/backing_file" 2>/dev/null) != "$DIR"/* ]] || { echo "left: swap $dev"; return 1; }
	done
	! grep -q " $DIR" /proc/mounts || { echo "left: a mount under $DIR"; return 1; }
	for p in /proc/[0-9]*; do
		# (a kernel thread has no environment to read: its error is dropped)
		if { tr '\0' ' ' < "$p/cmdline"; } 2>/dev/null | grep -q -e "$DIR" -e "$CG" ||
			{ tr '\0' '\n' < "$p/environ"; } 2>/dev/null | grep -qxF "$MARK"; then
			echo "left: process ${p#/proc/}: $(tr '\0' ' ' < "$p/cmdline")"
			return 1
		fi
	done
}

@test "demo: on a pipe, JSON Lines with every tool's records, 0 bad pages, nothing left behind" {
	require_demo
	local rc=0 start=$SECONDS
	env "$MARK" "$ROOT/scripts/demo" > "$OUT" 2> "$ERR" 3>&- || rc=$?
	echo "$((SECONDS - start)) s"
	cat "$ERR"
	[ "$rc" -eq 0 ]
	[ $((SECONDS - start)) -le 120 ]
	# every line is one JSON object with a kind
	[ -s "$OUT" ]
	jq -e -s 'all(type == "object" and has("kind"))' "$OUT"
	# mswss, msballoon, msgmc, msrswap (client and reservoir), mshash
	jq -e -s 'map(select(.kind == "wss")) | map(.domain) | unique | length == 3' "$OUT"
	jq -e -s 'any(.kind == "target" and .policy == "wss" and .applied)' "$OUT"
	jq -e -s 'any(.kind == "reservoir" and .remote_need_bytes > 0)' "$OUT"
	jq -e -s 'any(.kind == "agent" and .event == "registered")' "$OUT"
	jq -e -s 'any(.kind == "agent" and .event == "granted" and .attached and .domain == "swap0")' "$OUT"
	# the lease is the swap device's remote tier, and swapped pages went there
	jq -e -s 'any(.kind == "tier" and .domain == "swap0" and .remotes_alive >= 1 and .remote_bytes > 0)' "$OUT"
	jq -e -s 'map(select(.kind == "scan")) | length == 3' "$OUT"
	jq -e -s 'any(.kind == "sharing" and .scope == "set")' "$OUT"
	# every page of every workload checked: none bad
	jq -e -s 'map(select(.kind == "demo_domain")) | length == 3 and all(.bad_pages == 0 and (.usemem | test("bad_pages=0$")))' "$OUT"
	# the three share the pages of their common pattern (at least the two 128 MiB ones)
	jq -e -s 'map(select(.kind == "demo_summary")) | length == 1 and (.[0] | .bad_pages == 0 and .lease.leases >= 1 and .shared_bytes >= 2 * 128 * 1048576)' "$OUT"
	[ "$(tail -n 1 "$OUT" | jq -r .kind)" = demo_summary ]
	demo_places
	nothing_left
}

@test "demo: SIGINT midway stops it, exit 130, and it leaves nothing behind" {
	require_demo
	# a background job of a script ignores SIGINT: give the demo the default back, as a terminal's would be
	env --default-signal=INT "$MARK" "$ROOT/scripts/demo" > "$OUT" 2> "$ERR" 3>&- &
	local pid=$!
	# midway: the host loop has measured and the cluster has granted a lease
	until_true 120 jq -e -s 'any(.kind == "agent" and .event == "granted")' "$OUT" || { cat "$ERR"; false; }
	kill -INT "$pid"
	local rc=0
	wait "$pid" || rc=$?
	cat "$ERR"
	[ "$rc" -eq 130 ]
	grep -q '^demo: interrupted: cleaning up' "$ERR"
	! grep -q demo_summary "$OUT"
	demo_places
	nothing_left
}

@test "demo: SIGINT while the VMs start leaves nothing behind either" {
	require_demo
	env --default-signal=INT "$MARK" "$ROOT/scripts/demo" > "$OUT" 2> "$ERR" 3>&- &
	local pid=$! rc=0
	# the moment the first VM's cgroup exists, its workload is on its way in
	until_true 60 test -d "$(memory_root)/memshare-demo-$pid/vm1" || { cat "$ERR"; false; }
	kill -INT "$pid"
	# the cleanup does not wait for a workload that never started
	until_true 120 gone "$pid" || { cat "$ERR"; false; }
	wait "$pid" || rc=$?
	cat "$ERR"
	[ "$rc" -eq 130 ]
	demo_places
	nothing_left
}

@test "demo: without root it says what is missing and exits 1" {
	[ "$(id -u)" = 0 ] || skip "needs root to run the demo as another user"
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
	id nobody >/dev/null 2>&1 || skip "no user 'nobody'"
	run -1 setpriv --reuid=nobody --regid=nogroup --clear-groups "$ROOT/scripts/demo"
	[[ $output == *"demo: cannot run; missing:"* ]]
	[[ $output == *"root (cgroups, FUSE, loop devices, swapon"* ]]
	run -2 env MEMSHARE_DEMO_PHASE=ten "$ROOT/scripts/demo"
	[[ $output == *"MEMSHARE_DEMO_PHASE must be a whole number of seconds, not 'ten'"* ]]
}

# usemem_region PID MIB: the start address (decimal) of the process's anonymous mapping of MIB MiB
usemem_region() {
	local range rest
	while read -r range rest; do
		local a=$((16#${range%-*})) b=$((16#${range#*-}))
		[ $((b - a)) -eq $(($2 * 1048576)) ] && [ "$(wc -w <<< "$rest")" -eq 4 ] && { echo "$a"; return; }
	done < "/proc/$1/maps"
	return 1
}

@test "usemem --verify, the demo's check: a page changed behind its back is counted (bad_pages=1, exit 3)" {
	[ "$(id -u)" = 0 ] || skip "needs root to write another process's memory"
	local fifo=$BATS_TEST_TMPDIR/ready line pid addr rc=0
	mkfifo "$fifo"
	"$ROOT/build/workload/usemem" --verify --touch 1 4 > "$fifo" 2> "$BATS_TEST_TMPDIR/usemem.err" &
	pid=$!
	read -r -t 30 line < "$fifo"
	[ "$line" = ready ]
	addr=$(usemem_region "$pid" 4)
	# page 300, outside the 1 MiB touched: only the check of every page on exit sees it
	printf '\377\377\377\377\377\377\377\377' | dd of="/proc/$pid/mem" bs=1 seek=$((addr + 300 * 4096)) conv=notrunc status=none
	kill "$pid"
	wait "$pid" || rc=$?
	cat "$BATS_TEST_TMPDIR/usemem.err"
	[ "$rc" -eq 3 ]
	grep -q 'bad_pages=1$' "$BATS_TEST_TMPDIR/usemem.err"
}

# vm_flags PID START: the VmFlags of the mapping at START (hex) in /proc/PID/smaps
vm_flags() {
	awk -v start="$2" '$1 ~ /^[0-9a-f]+-[0-9a-f]+$/ {split($1, r, "-"); here = (r[1] == start)} here && $1 == "VmFlags:" {print; exit}' "/proc/$1/smaps"
}

@test "usemem --madv-random, the cgroup runs' workload: its memory is marked random-read (VmFlags rr: no swap readahead)" {
	local fifo=$BATS_TEST_TMPDIR/ready line pid addr flags
	for opt in --madv-random ""; do
		rm -f "$fifo" && mkfifo "$fifo"
		# shellcheck disable=SC2086 # no option: no word
		"$ROOT/build/workload/usemem" $opt --touch 1 4 > "$fifo" 2>/dev/null &
		pid=$!
		read -r -t 30 line < "$fifo"
		[ "$line" = ready ]
		addr=$(usemem_region "$pid" 4)
		flags=$(vm_flags "$pid" "$(printf '%x' "$addr")")
		kill "$pid"
		wait "$pid" || true
		echo "usemem $opt: $flags"
		[[ $flags == VmFlags:* ]]
		if [ -n "$opt" ]; then [[ " $flags " == *" rr "* ]]; else [[ " $flags " != *" rr "* ]]; fi
	done
}
