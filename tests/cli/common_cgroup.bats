#!/usr/bin/env bats
# The cgroup:/// driver (src/common/driver_cgroup.c) on the host's real
# memory controller: which cgroups --all takes, and limits the kernel
# refuses for a moment (EBUSY).
bats_require_minimum_version 1.5.0
load helpers

teardown() {
	[ -n "${SET_PID:-}" ] && kill "$SET_PID" 2>/dev/null && wait "$SET_PID" 2>/dev/null
	SET_PID=
	stop_workloads
	remove_cgroups
	[ -n "${INSIDE:-}" ] && rmdir "$MEMROOT$INSIDE" 2>/dev/null
	INSIDE=
	true
}

@test "cgroup driver: --all on cgroup:/// lists the /memshare subtree, not the host's other cgroups" {
	require_cgroups
	start_workload "$CG_BASE/outside" 16
	INSIDE=/memshare/alltest-$$
	start_workload "$INSIDE" 16
	run -0 "$MSWSS" -c cgroup:/// --all --method refault --window 200ms
	domains=$(jq -r .domain <<< "$output" | sort -u)
	echo "$domains"
	grep -qx "$INSIDE" <<< "$domains"
	# nothing outside the subtree: not ours, not libvirt's /machine, not the system's services
	[ -z "$(grep -v '^/memshare/' <<< "$domains")" ]
	# a subtree named in the URI is still what --all lists
	run -0 "$MSWSS" -c "cgroup://$CG_BASE" --all --method refault --window 200ms
	[ "$(jq -r .domain <<< "$output" | sort -u)" = "$CG_BASE/outside" ]
}

@test "cgroup driver: a limit below the usage is retried while the kernel answers EBUSY" {
	require_cgroups
	[ -f "$MEMROOT/memory.limit_in_bytes" ] || skip "cgroup v2: writing memory.max does not answer EBUSY"
	mkdir -p "$MEMROOT$CG_BASE/busy"
	# no swapping for this cgroup: its anonymous memory cannot be reclaimed below the new limit
	echo 0 > "$MEMROOT$CG_BASE/busy/memory.swappiness"
	start_workload "$CG_BASE/busy" 128
	"$MSBALLOON" -vv -c cgroup:/// set --min 16M "$CG_BASE/busy" 32M > "$BATS_TEST_TMPDIR/out" 2> "$BATS_TEST_TMPDIR/err" &
	SET_PID=$!
	# the kernel refused at least once, and msballoon is still trying
	until_true 30 grep -q "busy (usage above it); retrying" "$BATS_TEST_TMPDIR/err"
	stop_workloads # the usage falls: the next try succeeds
	local rc=0
	wait "$SET_PID" || rc=$?
	SET_PID=
	cat "$BATS_TEST_TMPDIR/err"
	[ "$rc" -eq 0 ]
	[ "$(jq -r .applied "$BATS_TEST_TMPDIR/out")" = true ]
	[ "$(cgroup_limit_of "$CG_BASE/busy")" = 33554432 ]
}
