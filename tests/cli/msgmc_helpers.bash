# Shared by the msgmc test files (msgmc.bats, msgmc_faults.bats): background
# daemons with their output in $T, and the two views every lease is held to —
# the controller's leases and the providers' real exports.
# Needs $T, $MSGMC, $MSRSWAP and a gmc_cli function of the test file's own.

# bg NAME CMD...: run CMD in the background, output in $T/NAME.out/.err (appended); sets LAST_PID
bg() {
	local name=$1
	shift
	"$@" </dev/null >>"$T/$name.out" 2>>"$T/$name.err" 3>&- &
	LAST_PID=$!
	PIDS="${PIDS:-} $LAST_PID"
}

# A failed test shows the daemons' last words.
show_daemon_logs() {
	local f
	[ -z "${BATS_TEST_COMPLETED:-}" ] && [ -n "${T:-}" ] || return 0
	for f in "$T"/*.err; do
		[ -s "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
	done
	return 0
}

# nodes_ready N: N nodes active and connected, every provider with a reservoir
nodes_ready() {
	gmc_cli nodes | jq_true -s --argjson n "$1" \
		'map(select(.state == "active" and .connected and ((.provider | not) or .reservoir_bytes > 0))) | length == $n'
}

# The exports named msgmc-* a provider really has, "NAME SIZE" sorted.
exports_of() {
	"$MSRSWAP" export list --control "$T/$1.ctl" |
		jq -r 'select(.kind == "export_stats" and (.export | startswith("msgmc-"))) | "\(.export) \(.size_bytes)"' | sort
}

# The active leases the controller has on a provider, in the same form.
leases_on() {
	gmc_cli leases | jq -r --arg p "$1" 'select(.provider == $p and .state == "active") | "\(.export) \(.size_bytes)"' | sort
}
