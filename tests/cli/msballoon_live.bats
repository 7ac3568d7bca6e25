#!/usr/bin/env bats
# CARLEMM's live loop: msballoon plan --policy ql|dql|ddpg --model MODEL
# [--hal] [--apply] on a model trained with --state carlemm, on real cgroups
# fed by mswss, and its refusals.
bats_require_minimum_version 1.5.0
load helpers

MIB=1048576

setup() {
	SCEN=${MEMSHARE_ROOT:-$PWD}/tests/scenarios/two_contended.json
	M=$BATS_TEST_TMPDIR/model
}

teardown() {
	[ -n "${PLAN_PID:-}" ] && kill "$PLAN_PID" 2>/dev/null
	stop_workloads
	remove_cgroups
	[ -n "${CPUACCT_DIR:-}" ] && find "$CPUACCT_DIR" -depth -type d -exec rmdir {} \; 2>/dev/null
	true
}

# join_cpu_accounting CGROUP PID: on cgroup v1, user time is counted by the
# cpuacct hierarchy: put PID in the cgroup of the same path there (mswss
# reads it from that path).  On v2, cpu.stat is the memory cgroup's own.
join_cpu_accounting() {
	[ -f "$MEMROOT/cgroup.controllers" ] && return 0
	local root
	root=$(awk '$9 == "cgroup" && $NF ~ /(^|,)cpuacct(,|$)/ {print $5; exit}' /proc/self/mountinfo)
	[ -n "$root" ] || skip "cgroup v1 without a cpuacct hierarchy: no usrtime for cgroups"
	CPUACCT_DIR=$root$CG_BASE
	mkdir -p "$root$1"
	echo "$2" > "$root$1/cgroup.procs"
}

# train_carlemm AGENT: a short CARLEMM training on the contended 2-VM node into $M.
train_carlemm() {
	"$MSBALLOON" train --scenario "$SCEN" --agent "$1" --state carlemm --episodes 20 --steps 30 \
		--explore-episodes 10 --seed 5 -o "$M" > /dev/null
}

@test "msballoon train --state carlemm: records judge the usrtime deviation (Eq. 4.1)" {
	run --separate-stderr "$MSBALLOON" train --scenario "$SCEN" --agent ql --state carlemm --episodes 3 --steps 20 -o "$M"
	[ "$status" -eq 0 ]
	jq_true -s 'length == 3 and all(.[]; .usrtime_deviation >= 0 and .reward <= -.usrtime_deviation + 1e-9
		and (has("msr_deviation") | not))' <<<"$output"
	run "$MSBALLOON" train --scenario "$SCEN" --agent ql --state nope -o "$M"
	[ "$status" -eq 2 ]
	[[ $output == *"--state: unknown state layout 'nope' (cavmem or carlemm)"* ]]
}

@test "msballoon plan --policy ql --model: a state only when a domain's record advanced (a new ts)" {
	train_carlemm ql
	rec() { printf '{"kind":"wss","ts":"%s","domain":"%s","wss_bytes":1,"alloc_bytes":268435456,"max_bytes":1073741824,"usrtime":%s}\n' "$@"; }
	input=$(rec t1 a 0.2; rec t1 b 0.9; rec t2 a 0.2; rec t1 b 0.9; rec t3 a 0.2; rec t3 b 0.9)
	run --separate-stderr "$MSBALLOON" plan --policy ql --model "$M" --host-memory 1G --host-reserve 0 --min 64M <<<"$input"
	[ "$status" -eq 0 ]
	jq -c '{domain, bid, reason}' <<<"$output"
	# b's second record repeats t1: no bid, it keeps its memory; every other record bids
	jq_true -s 'length == 6 and ([.[] | has("bid")] == [true, true, true, false, true, true])
		and (.[3].reason | startswith("its stats did not advance (same ts): no new state; Bid Analyzer: no bid: keeps"))
		and (.[3].balloon_bytes == 268435456) and (.[3] | has("usrtime") or has("usrtime_target") | not)
		and ([.[] | select(has("bid")) | .usrtime] == [0.2, 0.9, 0.2, 0.2, 0.9])
		and all(.[] | select(has("bid")); .usrtime_target >= 0 and .usrtime_target <= 1)
		and all(.[] | select(has("bid")); .policy == "ql" and (.reason | test("^ql bid [-+][0-9.]+ \\(usrtime [0-9.]+, target [0-9.]+\\); Bid Analyzer: bid ")))' <<<"$output"
}

@test "msballoon plan --policy ql --hal: after a target, a domain waits up to 3 intervals for its balloon, then bids again" {
	train_carlemm ql
	# the allocations never move (nothing applies the targets): every target is waited for 3 intervals
	input=$(for i in $(seq -w 1 16); do
		printf '{"kind":"wss","ts":"t%s","domain":"a","wss_bytes":1,"alloc_bytes":536870912,"max_bytes":1073741824,"usrtime":0}\n' "$i"
		printf '{"kind":"wss","ts":"t%s","domain":"b","wss_bytes":1,"alloc_bytes":536870912,"max_bytes":1073741824,"usrtime":1}\n' "$i"
	done)
	run --separate-stderr "$MSBALLOON" plan --policy ql --model "$M" --hal --host-memory 2G --host-reserve 0 --min 64M <<<"$input"
	[ "$status" -eq 0 ]
	jq -c 'select(.domain == "a") | {bid, balloon_bytes, reason}' <<<"$output"
	# a (usrtime 0, far below the target) is overridden by HAL once its 10 rewards are in: +4 %
	jq_true -s '[.[] | select(.domain == "a")] | length == 16 and any(.[]; .hal_override and .bid == 0.04)' <<<"$output"
	# after each record whose target moves, the next three wait (1/3, 2/3, 3/3), the fourth bids again
	jq_true -s '[.[] | select(.domain == "a")] as $a
		| [range(0; 12) | select($a[.].balloon_bytes != $a[.].prev_balloon_bytes)] as $moved
		| ($moved | length) >= 1 and all($moved[]; . as $i
			| ($a[$i + 1].reason | startswith("waiting for the balloon to reach \($a[$i].balloon_bytes) (1/3): no new bid"))
			and ($a[$i + 2].reason | contains("(2/3)")) and ($a[$i + 3].reason | contains("(3/3)"))
			and ($a[$i + 4] | has("bid")))' <<<"$output"
}

# wss_records N: N intervals of two domains, a below the target, b above
wss_records() {
	local i
	for i in $(seq -w 1 "$1"); do
		printf '{"kind":"wss","ts":"t%s","domain":"a","wss_bytes":1,"alloc_bytes":536870912,"max_bytes":1073741824,"usrtime":0.1}\n' "$i"
		printf '{"kind":"wss","ts":"t%s","domain":"b","wss_bytes":1,"alloc_bytes":536870912,"max_bytes":1073741824,"usrtime":0.9}\n' "$i"
	done
}

@test "msballoon plan --learn: the ql table learns from live transitions and is saved at the end, a model plan loads again" {
	train_carlemm ql
	cp "$M" "$M.before"
	run --separate-stderr "$MSBALLOON" plan --policy ql --model "$M" --learn --host-memory 2G --host-reserve 0 --min 64M \
		< <(wss_records 6)
	[ "$status" -eq 0 ]
	! cmp -s "$M" "$M.before"
	[ "$(head -c 8 "$M")" = MSBMODEL ]
	run --separate-stderr "$MSBALLOON" plan --policy ql --model "$M" --host-memory 2G --host-reserve 0 --min 64M \
		< <(wss_records 2)
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 4 ]
	# without --learn the model is only read
	cp "$M" "$M.before"
	"$MSBALLOON" plan --policy ql --model "$M" --host-memory 2G --host-reserve 0 < <(wss_records 6) > /dev/null
	cmp "$M" "$M.before"
	run "$MSBALLOON" plan --policy wss --learn < /dev/null
	[ "$status" -eq 2 ]
	[[ ${lines[0]} == *"--learn goes with a learned --policy"* ]]
}

@test "msballoon plan --learn --save-every: the model is saved while the input still flows" {
	train_carlemm ql
	cp "$M" "$M.before"
	mkfifo "$BATS_TEST_TMPDIR/in"
	"$MSBALLOON" plan --policy ql --model "$M" --learn --save-every 1ms --host-memory 2G --host-reserve 0 \
		--min 64M < "$BATS_TEST_TMPDIR/in" > "$BATS_TEST_TMPDIR/out" &
	PLAN_PID=$!
	local w
	exec {w}> "$BATS_TEST_TMPDIR/in"
	wss_records 8 >&"$w"
	# the input stays open: only a save during the run can change the file
	until_true 60 sh -c '! cmp -s "$1" "$2"' sh "$M" "$M.before"
	kill -0 "$PLAN_PID"
	exec {w}>&-
	wait "$PLAN_PID"
	PLAN_PID=
	[ "$(head -c 8 "$M")" = MSBMODEL ]
}

@test "msballoon plan --policy ql: a CAVMem model, another agent's, a missing one, no model: exit 2, one line" {
	"$MSBALLOON" train --scenario "$SCEN" --agent ql --episodes 1 --steps 5 -o "$M.cavmem" > /dev/null
	run "$MSBALLOON" plan --policy ql --model "$M.cavmem" < /dev/null
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"$M.cavmem: a model for the cavmem state; the live loop feeds CARLEMM's: train one with --state carlemm" ]]
	train_carlemm ql
	run "$MSBALLOON" plan --policy dql --model "$M" < /dev/null
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"$M: a model of agent ql, not dql" ]]
	run "$MSBALLOON" plan --policy ql --model "$BATS_TEST_TMPDIR/none" < /dev/null
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == *"none: no such model file"* ]]
	run "$MSBALLOON" plan --policy ql < /dev/null
	[ "$status" -eq 2 ]
	[[ ${lines[0]} == *"plan --policy ql needs --model MODEL (made by msballoon train --agent ql --state carlemm)" ]]
	run "$MSBALLOON" plan --policy wss --hal < /dev/null
	[ "$status" -eq 2 ]
	[[ ${lines[0]} == *"--hal goes with a learned --policy"* ]]
}

# Two cgroups: "busy" touches its memory without pause (user time), "idle"
# sleeps between passes (no user time).  Under Eq. 4.2 the target lies
# between them, so idle's reward stays far below -usrtimeTgt/2 and, after
# HAL's window of 10 rewards, HAL requests +4 % for it every interval.
@test "mswss | msballoon plan --policy ql --model --hal --apply moves real cgroups' limits, never below the floor" {
	require_cgroups
	train_carlemm ql
	local busy=$CG_BASE/busy idle=$CG_BASE/idle out=$BATS_TEST_TMPDIR/plan.jsonl
	mkdir -p "$MEMROOT$busy" "$MEMROOT$idle"
	cgroup_limit "$busy" $((128 * MIB))
	cgroup_limit "$idle" $((128 * MIB))
	start_workload "$busy" --pass 0 --touch 16 64
	join_cpu_accounting "$busy" "$WORKLOAD_PID"
	start_workload "$idle" --pass 30s 32
	join_cpu_accounting "$idle" "$WORKLOAD_PID"
	timeout 120 "$MSWSS" -c cgroup:/// --interval 1s --count 20 "$busy" "$idle" |
		"$MSBALLOON" -c cgroup:/// plan --policy ql --model "$M" --hal --apply --min 96M --max-step 64M \
			--host-memory 2G --host-reserve 0 > "$out"
	jq -c '{domain, bid, balloon_bytes, hal_overrides, reason}' "$out"
	local n
	n=$(jq -s 'length' "$out")
	[ "$n" -ge 30 ]
	# every record is a target of the ql agent with HAL's count, its reason the bid (or why none) then the BA's decision
	jq_true -s 'all(.[]; .kind == "target" and .policy == "ql" and (.hal_overrides | type) == "number"
		and (.reason | test("^(ql bid [-+][0-9.]+( \\(usrtime|, HAL override)|its stats did not advance|waiting for the balloon).*; Bid Analyzer: ")))' < "$out"
	jq_true -s '[.[] | select(has("bid"))] | length >= 20' < "$out"
	# never below the floor; every change applied and reached
	jq_true -s 'all(.[]; .balloon_bytes >= 96 * 1048576)' < "$out"
	jq_true -s 'all(.[] | select(has("applied")); .applied and .reached)' < "$out"
	# HAL requested memory for the idle cgroup, and its limit moved to the last target applied
	# (actual_bytes: the kernel keeps whole pages)
	jq_true -s --arg d "$idle" '[.[] | select(.domain == $d)] | (.[-1].hal_overrides >= 1)
		and any(.[]; .hal_override and .bid == 0.04)' < "$out"
	local last
	last=$(jq -s --arg d "$idle" '[.[] | select(.domain == $d and has("applied"))][-1].actual_bytes' "$out")
	[ "$last" -gt $((128 * MIB)) ]
	[ "$(cgroup_limit_of "$idle")" -eq "$last" ]
}
