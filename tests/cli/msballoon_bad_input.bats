#!/usr/bin/env bats
# msballoon and bad input (issue 11): sizes bounded at 4E where they enter,
# the --max-step 8E repro against a real cgroup, bad records skipped by a
# long-running plan or apply (--strict stops), and the messages of item 7.
bats_require_minimum_version 1.5.0
load helpers

teardown() {
	[ -n "${PLAN_PID:-}" ] && kill "$PLAN_PID" 2>/dev/null
	stop_workloads
	remove_cgroups
}

MIB=1048576
GIB=1073741824

# A cgroup with a 1G limit and a process in it (the issue's repro).
cgroup_at_1g() {
	require_cgroups
	mkdir -p "$MEMROOT$CG_BASE/p"
	cgroup_limit "$CG_BASE/p" $GIB
	start_workload "$CG_BASE/p" --touch 8 16
	[ "$(cgroup_limit_of "$CG_BASE/p")" -eq $GIB ]
}

@test "msballoon plan --apply --max-step 8E: refused naming the option; the cgroup keeps its 1G limit" {
	cgroup_at_1g
	run --separate-stderr bash -c '"$1" -c cgroup:/// -w 200ms "$2" | "$3" -c cgroup:/// plan --policy wss --apply --min 64M --max-step 8E' \
		sh "$MSWSS" "$CG_BASE/p" "$MSBALLOON"
	echo "status $status, stderr: $stderr, stdout: $output"
	[ "$status" -eq 2 ]
	[[ $stderr == *"--max-step: '8E' is too large (the largest size is 4E, 4611686018427387904 bytes)"* ]]
	[ -z "$output" ]
	limit=$(cgroup_limit_of "$CG_BASE/p")
	echo "limit after: $limit"
	[ "$limit" -eq $GIB ]
}

@test "msballoon plan --apply --max-step 4E (the largest): the cgroup's limit goes down from 1G to its target, never up" {
	cgroup_at_1g
	run --separate-stderr bash -c '"$1" -c cgroup:/// -w 200ms "$2" | "$3" -c cgroup:/// plan --policy wss --apply --min 64M --max-step 4E' \
		sh "$MSWSS" "$CG_BASE/p" "$MSBALLOON"
	echo "status $status, stderr: $stderr, stdout: $output"
	[ "$status" -eq 0 ]
	target=$(jq 'select(.kind == "target") | .balloon_bytes' <<<"$output")
	jq -e -s 'map(select(.kind == "target")) | length == 1 and all(.applied and .reached)' <<<"$output"
	limit=$(cgroup_limit_of "$CG_BASE/p")
	echo "target $target, limit $limit"
	[ "$target" -ge $((64 * MIB)) ]
	[ "$target" -lt $GIB ]
	[ "$limit" -eq "$target" ]
}

@test "msballoon plan --apply: a record with a size above 4E is skipped with its line named; the cgroup's limit is not lifted" {
	cgroup_at_1g
	input="{\"kind\":\"wss\",\"domain\":\"$CG_BASE/p\",\"wss_bytes\":9223372036854775807,\"alloc_bytes\":$GIB}"
	run --separate-stderr "$MSBALLOON" -c cgroup:/// plan --policy wss --apply --min 64M --max-step 4E <<<"$input"
	echo "status $status, stderr: $stderr, stdout: $output"
	[ "$status" -eq 2 ]
	[[ $stderr == *'<stdin>:1: field "wss_bytes" is more than the largest size, 4E (4611686018427387904 bytes)'* ]]
	[ -z "$output" ]
	[ "$(cgroup_limit_of "$CG_BASE/p")" -eq $GIB ]
	# apply: a target above 4E is refused the same way, and nothing is set
	run --separate-stderr "$MSBALLOON" -c cgroup:/// apply --min 64M <<<"{\"kind\":\"target\",\"domain\":\"$CG_BASE/p\",\"balloon_bytes\":9223372036854771712}"
	[ "$status" -eq 2 ]
	[[ $stderr == *'<stdin>:1: field "balloon_bytes" is more than the largest size'* ]]
	[ "$(cgroup_limit_of "$CG_BASE/p")" -eq $GIB ]
}

@test "msballoon plan: huge sizes in records and options give complete, bounded targets (no overflow)" {
	# the issue's cases: WSS 8E (now refused), two domains at 5e18 (above 4E: refused), and the largest accepted
	run --separate-stderr "$MSBALLOON" plan --policy wss --host-memory 8G <<<'{"kind":"wss","domain":"a","wss_bytes":9223372036854775807,"alloc_bytes":1073741824}'
	[ "$status" -eq 2 ]
	[[ $stderr == *'<stdin>:1: field "wss_bytes" is more than the largest size'* ]]
	input='{"kind":"wss","domain":"a","wss_bytes":4611686018427387904,"alloc_bytes":4611686018427387904}
{"kind":"wss","domain":"b","wss_bytes":4611686018427387904,"alloc_bytes":1073741824}
{"kind":"wss","domain":"c","wss_bytes":4611686018427387904}'
	run --separate-stderr "$MSBALLOON" plan --policy wss --headroom 100% --min 64M --max-step 4E --host-memory 4E --host-reserve 0 <<<"$input"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -s '[.[] | select(.kind == "target" and .balloon_bytes != null)] | length' <<<"$output")" -eq 3 ]
	jq -e -s 'all(.[] | select(.kind == "target"); .balloon_bytes >= 67108864 and .balloon_bytes <= 4611686018427387904)' <<<"$output"
	jq -e -s '[.[] | select(.kind == "target") | .balloon_bytes] | add <= 4611686018427387904 + 4611686018427387904' <<<"$output"
	! grep -q -- '-[0-9.]*E' <<<"$output"
}

@test "msballoon plan: a bad line is skipped with a warning naming it, counted at the end (exit 2); --strict stops at it" {
	input='{"kind":"wss","domain":"a","wss_bytes":1073741824,"alloc_bytes":2147483648}
{"kind":"wss","domain":"b","wss_bytes":1073741824,"alloc_bytes":2147483648}
this is not JSON
{"kind":"wss","domain":"a","wss_bytes":-5}
{"kind":"wss","domain":"a","wss_bytes":536870912,"alloc_bytes":1181116006}
{"kind":"wss","domain":"b","wss_bytes":536870912,"alloc_bytes":1181116006}
{"kind":"wss","domain":"a","wss_bytes":536870912,"alloc_bytes":1181116006}'
	run --separate-stderr "$MSBALLOON" plan --policy wss --host-memory 64G <<<"$input"
	echo "status $status"; echo "$stderr"
	[ "$status" -eq 2 ]
	# every interval is decided: a, b | a, b | a
	[ "$(jq -s '[.[] | select(.kind == "target")] | length' <<<"$output")" -eq 5 ]
	[[ $stderr == *"warning: <stdin>:3:"*"expected near 'this' (record skipped)"* ]]
	[[ $stderr == *'<stdin>:4: field "wss_bytes" must be a non-negative integer (record skipped)'* ]]
	[[ $stderr == *"msballoon: 2 bad input lines skipped"* ]]
	run --separate-stderr "$MSBALLOON" plan --policy wss --host-memory 64G --strict <<<"$input"
	[ "$status" -eq 2 ]
	[[ $stderr == "msballoon: <stdin>:3:"*"expected near 'this'" ]]
	[ -z "$output" ]
}

@test "msballoon plan on a live pipe: a bad line between intervals does not end it" {
	fifo=$BATS_TEST_TMPDIR/in
	mkfifo "$fifo"
	out=$BATS_TEST_TMPDIR/out err=$BATS_TEST_TMPDIR/err
	"$MSBALLOON" plan --policy wss --host-memory 64G --settle 100ms <"$fifo" >"$out" 2>"$err" &
	PLAN_PID=$!
	exec {writer}>"$fifo"
	targets() { [ "$(jq -s '[.[] | select(.kind == "target")] | length' "$out")" -ge "$1" ]; }
	echo '{"kind":"wss","domain":"a","wss_bytes":1073741824,"alloc_bytes":2147483648}' >&"$writer"
	until_true 20 targets 1
	echo '{"kind":"wss","domain":"a","wss_bytes":' >&"$writer"
	echo '{"kind":"wss","domain":"a","wss_bytes":1073741824,"alloc_bytes":1181116006}' >&"$writer"
	until_true 20 targets 2
	kill -0 "$PLAN_PID"
	exec {writer}>&-
	status=0
	wait "$PLAN_PID" || status=$?
	PLAN_PID=
	cat "$err"
	[ "$status" -eq 2 ]
	grep -q '<stdin>:2:.*(record skipped)' "$err"
	grep -q '1 bad input line skipped' "$err"
}

@test "msballoon apply: bad lines are skipped and the rest applied; --strict stops at the first" {
	plan='{"kind":"target","domain":"test","balloon_bytes":1073741824}
{"kind":"target","domain":"test"
{"kind":"target","domain":"test","balloon_bytes":"lots"}'
	run --separate-stderr "$MSBALLOON" -c test:///default apply --min 64M <<<"$plan"
	echo "$stderr"
	[ "$status" -eq 2 ]
	jq -e '.applied and .reached and .balloon_bytes == 1073741824' <<<"$output"
	[[ $stderr == *"<stdin>:2:"*"(record skipped)"* ]]
	[[ $stderr == *'<stdin>:3: field "balloon_bytes" must be a non-negative integer (record skipped)'* ]]
	[[ $stderr == *"2 bad input lines skipped"* ]]
	run --separate-stderr "$MSBALLOON" -c test:///default apply --min 64M --strict <<<"$plan"
	[ "$status" -eq 2 ]
	[[ $stderr == "msballoon: <stdin>:2:"* ]]
	[[ $stderr != *"skipped"* ]]
}

@test "msballoon: --host-memory 0 names itself, --wait 0 looks once, a negative SIZE is refused as such" {
	run "$MSBALLOON" plan --policy wss --host-memory 0 </dev/null
	[ "$status" -eq 2 ]
	[[ $output == "msballoon: --host-memory: '0': the host's memory must be more than 0"* ]]
	run --separate-stderr "$MSBALLOON" -c test:///default set --wait 0 --min 64M test 1536M
	[ "$status" -eq 0 ]
	jq -e '.applied and .balloon_bytes == 1610612736' <<<"$output"
	run "$MSBALLOON" -c test:///default set test -5M
	[ "$status" -eq 2 ]
	[[ $output == "msballoon: '-5M': a negative number is not accepted (sizes and counts are never negative)"* ]]
	run "$MSBALLOON" -c test:///default set test -- -5M
	[ "$status" -eq 2 ]
	[[ $output == "msballoon: SIZE: '-5M': a size cannot be negative"* ]]
	run "$MSBALLOON" plan --policy wss --max-step -1G </dev/null
	[ "$status" -eq 2 ]
	[[ $output == "msballoon: --max-step: '-1G': a size cannot be negative"* ]]
}
