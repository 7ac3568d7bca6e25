#!/usr/bin/env bats
# msballoon sim on trace files (issue 12): every shipped scenario loads and
# runs under the policies with well-formed records, a trace VM's demand is
# the file's wss_bytes, bad trace files are one-line input errors naming the
# scenario, the field, the trace and its line; scripts/record-trace records
# a real program in its own cgroup and removes the cgroup.
bats_require_minimum_version 1.5.0
load helpers

SCENARIOS=${MEMSHARE_ROOT:-$PWD}/src/msballoon/scenarios
RECORD_TRACE=${MEMSHARE_ROOT:-$PWD}/scripts/record-trace
MIB=1048576

teardown() {
	stop_workloads
	remove_cgroups
	# record-trace removes its cgroup; a failed test may leave it behind
	[ -z "${TRACE_CG:-}" ] || rmdir "$TRACE_CG" 2>/dev/null || true
}

# A scenario in the test's directory whose one VM has demand $2 (JSON); path on stdout.
scenario_with() {
	local f=$BATS_TEST_TMPDIR/$1
	cat > "$f" <<-EOF
	{"interval_s": 1, "duration_s": 30, "tier_total_bytes": "64M", "host_bytes": "1G",
	 "disk_page_cost_us": 100, "tier_page_cost_us": 2,
	 "vms": [{"name": "a", "ram_bytes": "512M", "access_bytes_per_s": "64M", "start": 0, "demand": $2}]}
	EOF
	echo "$f"
}

# wss record LINE of a trace: {"kind":"wss",...} at second S with W bytes.
wss_line() {
	printf '{"kind":"wss","ts":"2026-12-03T00:00:%02d.000Z","host":"h","domain":"/memshare/x","wss_bytes":%s}\n' "$1" "$2"
}

@test "msballoon sim: every shipped scenario runs under static, bid and wss with well-formed records" {
	local n=0 traced=0
	for f in "$SCENARIOS"/*.json; do
		n=$((n + 1))
		grep -q '"trace"' "$f" && traced=$((traced + 1))
		for p in static bid wss; do
			run --separate-stderr "$MSBALLOON" sim --scenario "$f" --policy "$p"
			[ "$status" -eq 0 ] || { echo "$f $p: status $status: $stderr"; return 1; }
			# every line an object of a known kind; one summary per VM; time never goes back
			vms=$(jq '.vms | length' "$f")
			jq -se --argjson vms "$vms" '
				all(.[]; .kind == "sim" or .kind == "sim_summary")
				and ([.[] | select(.kind == "sim_summary")] | length) == $vms
				and ([.[] | select(.kind == "sim") | .t_s] as $t | [range(1; $t | length)] | all($t[.] >= $t[. - 1]))
				and all(.[] | select(.kind == "sim"); .demand_bytes >= 0 and .ram_bytes > 0)' <<<"$output" >/dev/null ||
				{ echo "$f $p: malformed records"; return 1; }
		done
	done
	echo "$n scenarios, $traced with traces"
	[ "$traced" -ge 8 ]
}

@test "msballoon sim: a trace VM's demand follows the file's wss_bytes (scale, time_scale) and ends at its last record" {
	{ wss_line 1 $((100 * MIB)); wss_line 2 $((300 * MIB)); wss_line 4 $((200 * MIB)); } > "$BATS_TEST_TMPDIR/t.jsonl"
	s=$(scenario_with s.json '{"trace": "t.jsonl", "scale": 0.5, "time_scale": 2}')
	run --separate-stderr "$MSBALLOON" sim --scenario "$s" --policy static
	[ "$status" -eq 0 ]
	demand() { jq -r --argjson t "$1" 'select(.kind == "sim" and .t_s == $t) | .demand_bytes' <<<"$output"; }
	[ "$(demand 0)" -eq $((50 * MIB)) ]
	[ "$(demand 1)" -eq $((100 * MIB)) ]
	[ "$(demand 2)" -eq $((150 * MIB)) ]
	[ "$(demand 4)" -eq $((125 * MIB)) ]
	end=$(jq -r 'select(.kind == "sim_summary") | .end_s' <<<"$output")
	echo "end_s $end"
	[ "$end" = 6.0 ] || [ "$end" = 6 ]
}

# bad_trace NAME TRACE_TEXT EXPECTED: the CLI fails with exit 2 and one line
# naming the scenario, the field, the trace file and EXPECTED.
bad_trace() {
	printf '%s' "$2" > "$BATS_TEST_TMPDIR/$1.jsonl"
	s=$(scenario_with "s-$1.json" "{\"trace\": \"$1.jsonl\"}")
	run --separate-stderr "$MSBALLOON" sim --scenario "$s" --policy static
	echo "status $status, stderr: $stderr"
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[ "$(wc -l <<<"$stderr")" -eq 1 ]
	[[ $stderr == "msballoon: $s: vms[0].demand.trace: $BATS_TEST_TMPDIR/$1.jsonl"*"$3"* ]]
}

@test "msballoon sim: bad trace files exit 2 with one line naming the scenario, the field, the trace file and the line" {
	ok=$(wss_line 1 4096)
	bad_trace malformed "$ok"$'\n''{"kind":"wss", nope'$'\n' ":2:"
	bad_trace nowss "$ok"$'\n''{"kind":"wss","ts":"2026-12-03T00:00:02Z","domain":"/memshare/x"}'$'\n' \
		':2: missing field "wss_bytes"'
	bad_trace backwards "$(wss_line 5 4096)"$'\n'"$(wss_line 3 4096)"$'\n' ':2: field "ts": 2026-12-03T00:00:03.000Z is earlier'
	bad_trace badts '{"kind":"wss","ts":"noon","domain":"d","wss_bytes":1}'$'\n' ":1: field \"ts\": 'noon'"
	bad_trace empty "" ": no wss record"
	bad_trace single "$ok"$'\n' ": only one wss record"
	bad_trace twodomains "$ok"$'\n''{"kind":"wss","ts":"2026-12-03T00:00:02Z","domain":"vm2","wss_bytes":1}'$'\n' \
		":2: a second domain 'vm2'"
	# a missing file
	s=$(scenario_with s-missing.json '{"trace": "no-such.jsonl"}')
	run --separate-stderr "$MSBALLOON" sim --scenario "$s" --policy static
	[ "$status" -eq 2 ]
	[ "$stderr" = "msballoon: $s: vms[0].demand.trace: $BATS_TEST_TMPDIR/no-such.jsonl: No such file or directory" ]
	# bad options of the trace form
	s=$(scenario_with s-scale.json '{"trace": "single.jsonl", "scale": -1}')
	run --separate-stderr "$MSBALLOON" sim --scenario "$s" --policy static
	[ "$status" -eq 2 ]
	[[ $stderr == *"s-scale.json: vms[0].demand.scale: must be a non-negative number" ]]
}

@test "record-trace: --help; usage errors exit 2 with one line" {
	run "$RECORD_TRACE" --help
	[ "$status" -eq 0 ]
	[[ $output == "Usage: record-trace [OPTION]... NAME -- COMMAND"* ]]
	for args in "" "name" "name true" "name --" "bad/name -- true" "--frob x -- true" "-o"; do
		# shellcheck disable=SC2086
		run "$RECORD_TRACE" $args
		echo "args '$args': $status $output"
		[ "$status" -eq 2 ]
		[ "${#lines[@]}" -eq 1 ]
		[[ $output == "record-trace: "*"see --help" ]]
	done
}

@test "record-trace: records a program's changing working set in /memshare/trace-NAME, removes the cgroup, and the trace runs in sim" {
	require_cgroups
	local name=bats$$ trace=$BATS_TEST_TMPDIR/usemem.jsonl
	TRACE_CG=$MEMROOT/memshare/trace-$name
	# 16 MiB touched for 3 s, then 96 MiB for 3 s (after one first touch of all 128)
	run --separate-stderr "$RECORD_TRACE" -o "$trace" "$name" -- \
		"$USEMEM" --schedule 16@3,96@3 --duration 6s --pass 100ms 128
	echo "status $status; stderr: $stderr"
	[ "$status" -eq 0 ]
	[ ! -e "$MEMROOT/memshare/trace-$name" ]
	jq -c '[.ts, .domain, .wss_bytes]' "$trace"
	[ "$(wc -l < "$trace")" -ge 4 ]
	jq -se --arg d "/memshare/trace-$name" 'all(.[]; .kind == "wss" and .domain == $d and .method == "refbit")' "$trace"
	# a small working set, and later a large one
	jq -se '(map(.wss_bytes < 40 * 1048576) | index(true)) as $small
		| $small != null and (.[$small:] | any(.wss_bytes > 80 * 1048576))' "$trace"
	s=$(scenario_with s.json '{"trace": "usemem.jsonl"}')
	run --separate-stderr "$MSBALLOON" sim --scenario "$s" --policy wss
	[ "$status" -eq 0 ]
}

@test "record-trace: the command's exit status is the script's; its leftovers are killed and the cgroup removed" {
	require_cgroups
	local name=bats-status$$
	TRACE_CG=$MEMROOT/memshare/trace-$name
	# each command runs until mswss has written its first record (up to 60 s), however slow the machine
	local first_record='i=0; until [ -s "$0" ] || [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done'
	run --separate-stderr "$RECORD_TRACE" -o "$BATS_TEST_TMPDIR/t.jsonl" "$name" -- \
		sh -c "sleep 600 & $first_record; exit 3" "$BATS_TEST_TMPDIR/t.jsonl"
	echo "status $status; stderr: $stderr"
	[ "$status" -eq 3 ]
	[ ! -e "$MEMROOT/memshare/trace-$name" ]
	[ "$(wc -l < "$BATS_TEST_TMPDIR/t.jsonl")" -ge 1 ]
	# without -o the records go to standard output and the command's output to standard error
	local out=$BATS_TEST_TMPDIR/stdout.jsonl err=$BATS_TEST_TMPDIR/stderr.txt
	"$RECORD_TRACE" "$name" -- sh -c "echo hello; $first_record" "$out" >"$out" 2>"$err"
	grep -q hello "$err"
	jq -se 'length >= 1 and all(.[]; .kind == "wss")' "$out"
}

@test "msballoon sim --table prints the cost model it used and where the scenario says its costs come from" {
	f=$(scenario_with costs.json '{"step_bytes": "128M", "every_s": 5, "max_bytes": "1G"}')
	run -0 "$MSBALLOON" sim --scenario "$f" --policy greedy --table
	echo "$output"
	[[ $output == *"cost model: tier 2 us/page, remote tier 52 us/page, disk 100 us/page (4096-byte pages);"* ]]
	[[ $output == *"costs: not given by the scenario (assumed)"* ]]
	jq '. + {"costs": "measured: bench/reproduce --case smartmem", "tier_page_cost_us": 7.5}' "$f" > "$f.2"
	run -0 "$MSBALLOON" sim --scenario "$f.2" --policy greedy --table
	[[ $output == *"cost model: tier 7.5 us/page, remote tier 57.5 us/page, disk 100 us/page"* ]]
	[[ $output == *"costs: measured: bench/reproduce --case smartmem"* ]]
	# not a string: one line naming the file and the field, exit 2
	jq '. + {"costs": 3}' "$f" > "$f.3"
	run -2 "$MSBALLOON" sim --scenario "$f.3" --policy greedy --table
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"$f.3: costs: expected a string"* ]]
}
