#!/usr/bin/env bats
# mswss against real cgroups, real processes and real swap.
load helpers

setup() { :; }

teardown() {
	stop_workloads
	remove_cgroups
	remove_swap
}

MIB=1048576

@test "mswss: --help, --version and --list-methods" {
	run "$MSWSS" --help
	[ "$status" -eq 0 ]
	[[ $output == *"--method NAME"* ]]
	run "$MSWSS" --version
	[ "$status" -eq 0 ]
	[[ $output == "mswss (memshare) "* ]]
	run "$MSWSS" --list-methods
	[ "$output" = "$(printf 'auto\nrefbit\nsample\nrefault\nballoon')" ]
}

@test "mswss: usage errors exit 2 with one line naming the input" {
	run "$MSWSS"
	[ "$status" -eq 2 ]
	[[ $output == *"name the domains to measure, or give --all"* ]]
	run "$MSWSS" --method nosuch pid:1
	[ "$status" -eq 2 ]
	[[ $output == *"unknown method 'nosuch'"* ]]
	run "$MSWSS" --interval 5parsecs pid:1
	[ "$status" -eq 2 ]
	[[ $output == *"--interval: '5parsecs' has an unknown unit"* ]]
	run "$MSWSS" --interval 1s --window 2s pid:1
	[ "$status" -eq 2 ]
	run "$MSWSS" --count 0 pid:1
	[ "$status" -eq 2 ]
	run "$MSWSS" --all pid:1
	[ "$status" -eq 2 ]
	run "$MSWSS" -c nonsense pid:1
	[ "$status" -eq 2 ]
	[[ $output == *"connect"*"no scheme"* || $output == *"URI 'nonsense'"* ]]
}

@test "mswss: unknown domain, dead pid and bad cgroup path are input errors" {
	require_cgroups
	run "$MSWSS" -c cgroup:/// /no/such/cgroup-$$
	[ "$status" -eq 2 ]
	[[ $output == "mswss: unknown domain '/no/such/cgroup-$$'"* ]]
	sleep 0 & local dead=$!; wait $dead
	run "$MSWSS" -c cgroup:/// "pid:$dead"
	[ "$status" -eq 2 ]
	[[ $output == *"pid:$dead"*"no such process"* ]]
	run "$MSWSS" -c cgroup:/// "pid:abc"
	[ "$status" -eq 2 ]
	run "$MSWSS" -c cgroup:/// "/../etc"
	[ "$status" -eq 2 ]
	[[ $output == *"'..' are not allowed"* ]]
	run "$MSWSS" -c cgroup:/// "relative"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 1 ]
}

@test "mswss: refbit is within 5% of W for W = 16 MiB .. 1 GiB (usemem in a cgroup)" {
	require_cgroups
	for w in 16 64 256 1024; do
		start_workload "$CG_BASE/w$w" --touch "$w" --pass 100ms $((w + 64))
	done
	# Under shadow paging (this CI's virtual machines) every first touch after a clear
	# costs the workload ~5 µs: a pass over 1 GiB takes over a second, so give it 5.
	run "$MSWSS" -c "cgroup://$CG_BASE" --all --method refbit --window 5s
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 4 ]
	for w in 16 64 256 1024; do
		got=$(printf '%s\n' "${lines[@]}" | jq -r --arg d "$CG_BASE/w$w" 'select(.domain == $d) | .wss_bytes')
		echo "W=$w MiB: wss_bytes=$got ($(awk -v g="$got" -v w="$w" 'BEGIN{printf "%+.2f%%", (g/(w*1048576)-1)*100}'))"
		within 5 "$got" $((w * MIB))
	done
}

@test "mswss: refbit follows a Normal-distribution (CMS) pattern and a pid domain" {
	require_cgroups
	start_workload "$CG_BASE/cms" --pattern normal --touch 96 --pass 100ms 384
	run "$MSWSS" -c cgroup:/// --method refbit --window 1s "$CG_BASE/cms" "pid:$WORKLOAD_PID"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	for l in "${lines[@]}"; do
		got=$(jq -r .wss_bytes <<<"$l")
		within 5 "$got" $((96 * MIB))
	done
	[ "$(jq -r .domain <<<"${lines[1]}")" = "pid:$WORKLOAD_PID" ]
}

@test "mswss: records carry the fields of memshare(7)" {
	require_cgroups
	start_workload "$CG_BASE/f" --touch 8 32
	run "$MSWSS" -c cgroup:/// --window 300ms "$CG_BASE/f"
	[ "$status" -eq 0 ]
	jq -e '.kind == "wss" and (.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$")) and (.host | length > 0)
	       and .method == "auto" and .estimator == "refbit" and (.wss_bytes | type == "number")
	       and .window_s > 0.25 and .state == "less" and .alloc_bytes > 0 and .max_bytes > 0
	       and .rss_bytes > 8388608 and (.major_faults_per_s | type == "number") and .scan_cpu_ms >= 0' <<<"$output"
}

@test "mswss: sample's confidence interval holds the true WSS in >= 90% of windows" {
	require_cgroups
	ensure_swap
	# 128 of 256 MiB touched every 50 ms: p = 0.5, the widest binomial interval.
	# 100 windows: a true 95 % interval fails this check with probability ~1 %.
	start_workload "$CG_BASE/s" --pattern normal --touch 128 --pass 50ms 256
	run "$MSWSS" -c cgroup:/// --method sample --interval 300ms --count 100 --sample-pages 1000 "$CG_BASE/s"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 100 ]
	printf '%s\n' "${lines[@]}" > "$BATS_TEST_TMPDIR/s.jsonl"
	hits=$(jq -s --argjson w $((128 * MIB)) '[.[] | select(.wss_low_bytes <= $w and .wss_high_bytes >= $w)] | length' "$BATS_TEST_TMPDIR/s.jsonl")
	mean=$(jq -s '[.[].wss_bytes] | add / length / 1048576' "$BATS_TEST_TMPDIR/s.jsonl")
	echo "windows whose 95% interval holds W = 128 MiB: $hits / 100; mean estimate $mean MiB"
	[ "$hits" -ge 90 ]
	within 5 "$mean" 128
}

@test "mswss: auto flips to 'more' within two windows when the limit drops below W" {
	require_cgroups
	ensure_swap
	start_workload "$CG_BASE/a" --touch 256 --pass 50ms 256
	out=$BATS_TEST_TMPDIR/auto.jsonl
	"$MSWSS" -c cgroup:/// --interval 1s --count 300 "$CG_BASE/a" > "$out" &
	local mon=$!
	until_true 60 test -s "$out"
	# The write returns once the kernel has pushed the excess to swap, which can take
	# a while on a loaded machine: the two windows are counted from the moment the
	# limit is in place, and the monitor runs until it has written two more after them.
	cgroup_limit "$CG_BASE/a" $((160 * MIB))
	local before=$(wc -l < "$out")
	until_true 120 eval '[ "$(wc -l < "$out")" -ge $((before + 5)) ]'
	kill "$mon"
	wait "$mon" || true
	cat "$out"
	echo "records before the limit was in place: $before"
	[ "$(sed -n 1p "$out" | jq -r .state)" = less ]
	# one of the two windows that start after the change says "more", with a WSS above the allocation
	sed -n "$((before + 2)),$((before + 3))p" "$out" | jq_true -s 'any(.state == "more" and .estimator == "refault" and .wss_bytes > .alloc_bytes)'
	# and it stays short of memory while the limit holds, its WSS within 15 % of W
	# (the larger of the last two: a thrashing workload covers more or less of it per window)
	n=$(wc -l < "$out")
	[ "$(sed -n ${n}p "$out" | jq -r .state)" = more ]
	within 15 "$(sed -n "$((n - 1)),${n}p" "$out" | jq -s 'map(.wss_bytes) | max')" $((256 * MIB))
}

@test "mswss: --all lists cgroups with processes; --count and --interval repeat" {
	require_cgroups
	start_workload "$CG_BASE/x" --touch 4 8
	start_workload "$CG_BASE/y" --touch 4 8
	run "$MSWSS" -c "cgroup://$CG_BASE" --all --interval 200ms --count 2
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 4 ]
	[ "$(printf '%s\n' "${lines[@]}" | jq -r .domain | sort -u | tr '\n' ' ')" = "$CG_BASE/x $CG_BASE/y " ]
}

@test "mswss: a domain that disappears mid-run is reported and the others go on" {
	require_cgroups
	start_workload "$CG_BASE/keep" --touch 4 8
	start_workload "$CG_BASE/gone" --touch 4 8
	local victim=$WORKLOAD_PID
	"$MSWSS" -c cgroup:/// --interval 500ms --count 4 "$CG_BASE/keep" "pid:$victim" > "$BATS_TEST_TMPDIR/o" 2> "$BATS_TEST_TMPDIR/e" &
	local mon=$!
	# the victim dies once it has been measured at least once
	until_true 60 grep -q "pid:$victim" "$BATS_TEST_TMPDIR/o"
	kill "$victim"
	wait "$mon"
	[ "$(jq -r 'select(.domain == "'"$CG_BASE/keep"'") | .domain' "$BATS_TEST_TMPDIR/o" | wc -l)" -eq 4 ]
	grep -q "pid:$victim" "$BATS_TEST_TMPDIR/e"
}

@test "mswss: a closed pipe ends it quietly" {
	require_cgroups
	start_workload "$CG_BASE/p" --touch 4 8
	run bash -c "'$MSWSS' -c cgroup:/// --interval 100ms '$CG_BASE/p' | head -n 1"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
}

@test "mswss: libvirt's test driver has no process to scan: refbit fails with a reason; balloon reads its stats" {
	run "$MSWSS" -c test:///default --method refbit --window 100ms test
	[ "$status" -eq 1 ]
	[ "$output" = "mswss: test:///default: domain 'test' has no host process holding its memory" ]
	run "$MSWSS" -c test:///default --method balloon --window 100ms test
	[ "$status" -eq 0 ]
	jq -e '.domain == "test" and .estimator == "balloon" and .alloc_bytes == 2147483648' <<<"$output"
}

@test "mswss: xen:/// fails cleanly on a host that is not a Xen dom0" {
	[ -e /dev/xen/privcmd ] && skip "this host runs Xen"
	run "$MSWSS" -c xen:/// --all
	[ "$status" -eq 1 ]
	[[ $output == "mswss: xen:///: /dev/xen/privcmd is absent"* || $output == *"built without"* ]]
}

@test "mswss: a domain named twice is measured once per interval" {
	require_cgroups
	start_workload "$CG_BASE/twice" 8
	"$MSWSS" -c cgroup:/// --method refault --interval 200ms --count 2 "$CG_BASE/twice" "$CG_BASE/twice" \
		> "$BATS_TEST_TMPDIR/out" 2> "$BATS_TEST_TMPDIR/err"
	# two intervals, one record each
	[ "$(jq -r .domain "$BATS_TEST_TMPDIR/out" | grep -cx "$CG_BASE/twice")" -eq 2 ]
	grep -qF "domain '$CG_BASE/twice' is named more than once: measured once" "$BATS_TEST_TMPDIR/err"
}

@test "mswss: a URI no driver serves is bad input (exit 2), as mswss(1) says" {
	run "$MSWSS" -c foo:/// pid:1
	[ "$status" -eq 2 ]
	[[ $output == *"foo:///"* ]]
	# the EXIT STATUS section names the case under 2
	ROOT=${MEMSHARE_ROOT:-$PWD}
	run awk '/^\.SH EXIT STATUS/ {on = 1} /^\.SH ENVIRONMENT/ {on = 0} on' "$ROOT/man/mswss.1"
	[[ $output == *'.B 2'*'one no driver serves'*'foo:///'* ]]
}
