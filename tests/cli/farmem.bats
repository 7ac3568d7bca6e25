#!/usr/bin/env bats
# bench/farmem in small: usemem with half its footprint on a remote reservoir
# (msrswap serve --latency) behind an msrswap client tier store, as host swap
# of a cgroup, against the run with no remote memory; and the remote latency
# measured against the configured one.  No timing threshold a slow machine
# can miss: only what must hold however slow it is (a remote run is not faster
# than the local one by more than the local runs' own spread; no request is
# answered before the configured latency).
bats_require_minimum_version 1.5.0
load helpers

FARMEM=${MEMSHARE_ROOT:-$PWD}/bench/farmem

setup() {
	require_swap_bench socat
	C=$BATS_TEST_TMPDIR
}

@test "bench/farmem --quick: slowdown and latency tables of the right shape; remote pages slow usemem down; nothing left behind" {
	run --separate-stderr "$FARMEM" --quick --json "$C/runs.jsonl" --plot "$C/plot"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	# the slowdown table: a column per latency, a row per percentage, 1.00 at 0 %
	grep -A4 '^## usemem: slowdown' <<<"$output" > "$C/slowdown"
	[ "$(sed -n 3p "$C/slowdown" | awk '{print $1, $2, $3, $4, $5}')" = "remote % 0 us 50" ]
	[ "$(sed -n 4p "$C/slowdown" | awk '{print $1, $2, $3}')" = "0 1.00 1.00" ]
	sed -n 5p "$C/slowdown" | awk '$1 == 50 && NF == 3 && $2 + 0 > 0 && $3 + 0 > 0 { ok = 1 } END { exit !ok }'
	# the latency table: a row per configured latency
	grep -A3 '^configured us' <<<"$output" | awk 'NR > 1 { print $1 }' | paste -sd ' ' | grep -qx '0 50'
	# the runs: two at 0 % (first and last), one at 50 % per latency
	jq -s -e 'map(select(.kind == "farmem_run")) | length == 4 and (map(select(.remote_pct == 0)) | length == 2)' "$C/runs.jsonl"
	# pages really went to the remote (the 64 KiB RAM pool holds 16 of them), and back
	jq -s -e 'map(select(.kind == "farmem_run" and .remote_pct == 50)) | length == 2 and
		all(.remote_peak_bytes > 0 and .tier.gets_succ > 0 and .tier.remotes_dead == 0 and .tier.ram_bytes <= 65536)' \
		"$C/runs.jsonl"
	# not faster with remote pages than at 0 %, beyond the spread of the two 0 % runs
	jq -s -e 'map(select(.kind == "farmem_run")) | (map(select(.remote_pct == 0) | .seconds)) as $b |
		(($b | min) - (($b | max) - ($b | min))) as $floor | map(select(.remote_pct == 50)) | all(.seconds >= $floor)' \
		"$C/runs.jsonl"
	# the provider answers no request before the configured latency; the probe's blocks are remote
	jq -s -e 'map(select(.kind == "farmem_latency")) | length == 2 and
		(map(select(.configured_us == 50))[0] | .read_latency_us >= 50 and .write_latency_us >= 50) and
		all(.remote_bytes >= .blocks * 4096 * 0.9)' "$C/runs.jsonl"
	# both pictures, complete SVG documents
	for f in slowdown latency; do grep -q '</svg>' "$C/plot/farmem-$f.svg"; done
	bench_left_nothing "$(bench_work_dir <<<"$stderr")" "$(bench_work_cgroup <<<"$stderr")"
}

@test "bench/farmem: Ctrl-C in a remote run stops it and leaves no cgroup, swap, mount or daemon behind" {
	# SIGINT as from a terminal: a background job starts with it ignored, perl gives it back its default
	perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV' "$FARMEM" --quick 2> "$C/err" > /dev/null &
	pid=$!
	until_true 120 grep -q 'run 2: usemem, 50 % remote' "$C/err"
	dir=$(bench_work_dir < "$C/err") cg=$(bench_work_cgroup < "$C/err")
	# the run's swap device is in use
	[ -n "$(swaps_in "$dir")" ]
	kill -INT "$pid"
	rc=0
	wait "$pid" || rc=$?
	cat "$C/err"
	[ "$rc" -eq 130 ]
	grep -q interrupted "$C/err"
	bench_left_nothing "$dir" "$cg"
	# its daemons are gone: no process has its directory on its command line
	! pgrep -f "$dir/" > /dev/null
}

@test "bench/farmem: bad arguments are usage errors that name them" {
	run "$FARMEM" --remote 0,120
	[ "$status" -eq 2 ]
	[[ $output == *"--remote: '120'"* ]]
	run "$FARMEM" --workloads usemem,gcc
	[ "$status" -eq 2 ]
	[[ $output == *"unknown workload 'gcc'"* ]]
	run "$FARMEM" --latency 5us
	[ "$status" -eq 2 ]
	[[ $output == *"--latency: '5us'"* ]]
	run "$FARMEM" --frobnicate
	[ "$status" -eq 2 ]
}
