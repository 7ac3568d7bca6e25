#!/usr/bin/env bats
# msgmc under faults, on loopback with real processes: msrswap serve killed
# with kill -9 under a living agent, providers that cannot create an export,
# a controller killed with kill -9, and a seeded random mix of all of them.
# The providers' actual exports are the ground truth every lease is held to.
bats_require_minimum_version 1.5.0
load helpers
load msgmc_helpers

MSGMC=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msgmc

setup() {
	[ -x "$MSGMC" ] || skip "$MSGMC is not built (run make)"
	T=$BATS_TEST_TMPDIR
	# ports of our own, below the ephemeral range (32768-) that outgoing connections draw from
	BASE=$(random_port 10) # BASE .. BASE+9: a controller, providers
	GMC=127.0.0.1:$BASE
	PIDS=""
}

teardown() {
	local p
	show_daemon_logs
	[ -z "${BATS_TEST_COMPLETED:-}" ] && [ -f "${T:-/nonexistent}/steps" ] && { echo "--- the fault test's steps"; tail -n 30 "$T/steps"; }
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	true
}

gmc_cli() { "$MSGMC" --gmc "$GMC" --timeout 20s "$@"; }

controller() {
	bg gmc "$MSGMC" serve --listen "$GMC" --state "$T/state" --node-timeout 3s -v "$@"
	GMC_PID=$LAST_PID
	until_true 10 gmc_cli status
}

# serve NAME: (re)start the provider NAME's msrswap serve; sets <NAME>_SERVE
serve() {
	local name=$1
	rm -f "$T/$name.ctl"
	bg "$name-serve" "$MSRSWAP" serve --listen "127.0.0.1:$(port_of "$name")" --capacity "$(capacity_of "$name")" \
		--control "$T/$name.ctl"
	eval "${name}_SERVE=$LAST_PID"
	until_true 10 test -S "$T/$name.ctl"
}

# agent NAME [ARGS]: (re)start the provider NAME's agent; sets <NAME>_AGENT
agent() {
	local name=$1
	shift
	bg "$name-agent" "$MSGMC" agent --gmc "$GMC" --node "$name" --rswap-control "$T/$name.ctl" \
		--address "127.0.0.1:$(port_of "$name")" --interval 1s -v "$@"
	eval "${name}_AGENT=$LAST_PID"
}

# provider NAME CAPACITY: serve and agent, the serve on BASE + the name's digit
provider() {
	echo "$2" > "$T/$1.capacity"
	serve "$1"
	agent "$1"
}
port_of() { echo $((BASE + ${1#p})); }
capacity_of() { cat "$T/$1.capacity"; }

consumer() {
	bg "$1-agent" "$MSGMC" agent --gmc "$GMC" --node "$1" --interval 1s -v
}

leases_match() { [ "$(leases_on "$1")" = "$(exports_of "$1")" ]; }
no_leases_on() { [ -z "$(gmc_cli leases | jq -r --arg p "$1" 'select(.provider == $p)')" ]; }
requests_in_flight() { gmc_cli status | jq -s -e --argjson n "$1" 'length == 1 and .[0].requests_in_flight == $n'; }
reservoir_is() { gmc_cli nodes | jq -s -e --arg n "$1" --argjson b "$2" 'map(select(.node == $n)) | .[0].reservoir_bytes == $b'; }
# alloc_to PROVIDER ARGS...: an alloc that succeeds, every part on PROVIDER
# (jq -e alone passes on empty input: a failed alloc must not pass)
alloc_to() {
	local want=$1 out
	shift
	out=$(gmc_cli alloc "$@") && jq -s -e --arg p "$want" 'length >= 1 and all(.provider == $p)' <<<"$out"
}
leased_out_is() { gmc_cli nodes | jq -s -e --arg n "$1" --argjson b "$2" 'map(select(.node == $n)) | .[0].leased_out_bytes == $b'; }

@test "msgmc V1: msrswap serve killed (kill -9) and restarted under its agent: its leases end, the consumer is told, nothing is counted as lent" {
	controller
	provider p1 64M
	consumer c1
	until_true 10 nodes_ready 2
	gmc_cli alloc --node c1 --domain vm1 32M > "$T/lease.jsonl"
	jq -e '.provider == "p1" and .size_bytes == 33554432' "$T/lease.jsonl"
	lease=$(jq -r .lease "$T/lease.jsonl")
	[ "$(exports_of p1)" = "msgmc-$lease 33554432" ]
	kill -9 "$p1_SERVE"
	wait "$p1_SERVE" 2>/dev/null || true
	serve p1
	# the agent finds the export gone (a new serve has none): the lease ends, p1 lends nothing
	until_true 15 no_leases_on p1
	leased_out_is p1 0
	grep -q "lease $lease: export msgmc-$lease .*: the controller is told" "$T/p1-agent.err"
	grep '"event":"export_lost"' "$T/p1-agent.out" | jq -s -e --argjson l "$lease" 'length == 1 and .[0].lease == $l'
	# the consumer was told to stop using it (LMC_reclaim)
	until_true 5 grep -q '"event":"reclaimed"' "$T/c1-agent.out"
	grep '"event":"reclaimed"' "$T/c1-agent.out" | jq -s -e --argjson l "$lease" 'length == 1 and .[0].lease == $l'
	# and it stays ended over a controller restart
	kill -9 "$GMC_PID"
	wait "$GMC_PID" 2>/dev/null || true
	controller
	until_true 15 nodes_ready 2
	[ -z "$(gmc_cli leases)" ]
	# p1 serves again: a new lease, a new id, an export that exists
	out=$(gmc_cli alloc --node c1 --domain vm1 16M)
	jq -e --argjson l "$lease" '.provider == "p1" and .lease > $l' <<<"$out"
	leases_match p1
}

@test "msgmc: msrswap serve killed (kill -9) and not restarted: the lease of the dead provider ends; msgmc leases tells the truth" {
	controller
	provider p1 64M
	provider p2 128M
	consumer c1
	until_true 10 nodes_ready 3
	alloc_to p2 --node c1 --domain vm1 32M
	kill -9 "$p2_SERVE"
	wait "$p2_SERVE" 2>/dev/null || true
	# the agent lives (connected, its node active) but its serve is gone: so is the lease
	until_true 15 no_leases_on p2
	until_true 5 grep -q '"event":"reclaimed"' "$T/c1-agent.out"
	grep -q "msrswap serve $T/p2.ctl: not running" "$T/p2-agent.err"
	gmc_cli nodes | jq -s -e 'map(select(.node == "p2")) | .[0].connected and .[0].leased_out_bytes == 0'
	# it offers nothing while its serve is down: new leases go to p1
	until_true 5 reservoir_is p2 0
	alloc_to p1 --node c1 --domain vm1 8M
	leases_match p1
	# the serve comes back: said once, and p2 lends again
	serve p2
	until_true 10 grep -q "msrswap serve $T/p2.ctl answers again" "$T/p2-agent.err"
	[ "$(grep -c "msrswap serve $T/p2.ctl: not running" "$T/p2-agent.err")" = 1 ]
	until_true 10 nodes_ready 3
	alloc_to p2 --node c1 --domain vm2 100M
	leases_match p2
}

@test "msgmc: an alloc the chosen provider cannot create (its serve is down) falls back to the next provider" {
	controller
	provider p1 64M
	provider p2 128M
	consumer c1
	until_true 10 nodes_ready 3
	# p2 (most free memory) is chosen; its serve dies before its agent could tell
	kill -STOP "$p2_AGENT"
	kill -9 "$p2_SERVE"
	wait "$p2_SERVE" 2>/dev/null || true
	gmc_cli alloc --node c1 --domain vm1 32M > "$T/alloc.out" 2> "$T/alloc.err" &
	alloc=$!
	until_true 10 requests_in_flight 1
	kill -CONT "$p2_AGENT"
	wait "$alloc" || { cat "$T/alloc.out" "$T/alloc.err"; false; }
	jq -e '.provider == "p1" and .size_bytes == 33554432' "$T/alloc.out"
	leases_match p1
	grep -q "could not create export" "$T/gmc.err"
	grep -q "33554432 bytes refused by p2 are placed again" "$T/gmc.err"
	# nobody can: refused, naming the provider's reason
	kill -9 "$p1_SERVE"
	wait "$p1_SERVE" 2>/dev/null || true
	until_true 15 no_leases_on p1
	run gmc_cli alloc --node c1 --domain vm1 4K
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"no node can serve"* || $output == *"could not create export"* ]]
}

@test "msgmc: an alloc an agent at its lease limit refuses goes to another provider" {
	controller
	provider p1 16M
	consumer c1
	until_true 10 nodes_ready 2
	n=0
	while gmc_cli alloc --node c1 --domain vm1 4K > /dev/null 2> "$T/alloc.err"; do
		n=$((n + 1))
		[ "$n" -lt 1100 ] || break
	done
	grep -q "as many as its registration can list" "$T/alloc.err"
	provider p2 4M
	until_true 10 nodes_ready 3
	# p1 still has the most free memory: it is asked first, refuses, p2 serves
	gmc_cli nodes | jq -s -e 'map(select(.node == "p1")) | .[0].free_bytes > 4194304'
	alloc_to p2 --node c1 --domain vm1 4K
	grep -q "4096 bytes refused by p1 are placed again" "$T/gmc.err"
	leases_match p2
}

@test "msgmc: messages: a dead controller is said once at the default level and its return too; bad control paths, huge sizes, negative operands" {
	port=$((BASE + 9))
	"$MSGMC" agent --gmc "127.0.0.1:$port" --node c9 --interval 1s </dev/null > "$T/c9.out" 2> "$T/c9.err" 3>&- &
	PIDS="$PIDS $!"
	until_true 5 grep -q "controller 127.0.0.1:$port: .*refused" "$T/c9.err"
	GMC=127.0.0.1:$port controller
	until_true 15 grep -q "controller 127.0.0.1:$port reached again after" "$T/c9.err"
	[ "$(grep -c "refused" "$T/c9.err")" = 1 ]
	# --rswap-control: not a socket, or in a directory that does not exist
	touch "$T/file"
	run "$MSGMC" agent --node x --rswap-control "$T/file"
	[ "$status" -eq 2 ]
	[[ $output == *"--rswap-control $T/file: not a socket"* ]]
	run "$MSGMC" agent --node x --rswap-control "$T/nodir/p.ctl"
	[ "$status" -eq 2 ]
	[[ $output == *"--rswap-control $T/nodir/p.ctl: No such file or directory"* ]]
	# a control socket not there yet is said at start, at the default level, controller or not
	"$MSGMC" agent --gmc "127.0.0.1:$((port + 1))" --node p9 --rswap-control "$T/later.ctl" </dev/null > "$T/p9.out" 2> "$T/p9.err" 3>&- &
	PIDS="$PIDS $!"
	until_true 5 grep -q "msrswap serve $T/later.ctl: not running" "$T/p9.err"
	# sizes above 2^62 are refused before anything is sent; a negative operand is an operand
	run "$MSGMC" --gmc "127.0.0.1:$port" alloc --node c9 --domain vm 8E
	[ "$status" -eq 2 ]
	[[ $output == *"'8E' is too large (the largest size is 4E"* && $output != *TLS* ]]
	run "$MSGMC" --gmc "127.0.0.1:$port" release -1
	[ "$status" -eq 2 ]
	[[ $output == *"LEASE -1: a lease number"* ]]
	run "$MSGMC" --gmc "127.0.0.1:$port" reclaim --node c9 -5M
	[ "$status" -eq 2 ]
	[[ $output == *"SIZE: '-5M': a size cannot be negative"* ]]
	run "$MSGMC" serve --reserve 5E
	[ "$status" -eq 2 ]
	# a message the controller refuses is answered (id 0) before it hangs up, not left to look like TLS
	exec 5<>"/dev/tcp/127.0.0.1/$port"
	printf '%s\n' '{"v":1,"type":"alloc","id":3,"node":"c9","domain":"vm","size_bytes":9223372036854775807}' >&5
	run timeout 5 cat <&5
	exec 5>&-
	jq -e '.type == "reply" and .id == 0 and (.ok | not) and (.error | contains("larger than 2^62 bytes"))' <<<"$output"
	# --help says plain text is fine on unix sockets
	"$MSGMC" --help | grep -q "loopback and unix:PATH may be plain text"
}

# ---- the randomized fault test ----
# Seeded (MEMSHARE_FAULT_SEED, printed), bounded by MEMSHARE_FAULT_SECONDS
# (default 75: make check stays within 2 minutes) and MEMSHARE_FAULT_STEPS
# (default: no bound).  After every step, once the cluster has settled:
#  - every active lease has its export on its provider, of the same size, and
#    every msgmc export a live provider has belongs to an active lease;
#  - a provider whose serve is down has no active lease;
#  - no provider lends more than its capacity;
#  - lease ids are never reused (an id keeps its provider, size and consumer,
#    and an id that ended never comes back);
#  - a controller killed with kill -9 comes back with the very same lease set.

FAULT_PROVIDERS="p1 p2 p3"

# The controller's leases as "ID PROVIDER CONSUMER DOMAIN SIZE STATE", sorted.
lease_table() {
	gmc_cli leases | jq -r '"\(.lease) \(.provider) \(.consumer) \(.domain) \(.size_bytes) \(.state)"' | sort -n
}

# Settled and true: the invariants that need the agents to have caught up.
settled() {
	local p table
	table=$(gmc_cli leases) || return 1
	# nothing half-done
	[ -z "$(jq -r 'select(.state != "active") | .lease' <<<"$table")" ] || return 1
	for p in $FAULT_PROVIDERS; do
		local mine
		mine=$(jq -r --arg p "$p" 'select(.provider == $p) | "\(.export) \(.size_bytes)"' <<<"$table" | sort)
		if [ -f "$T/$p.down" ]; then
			[ -z "$mine" ] || return 1
		else
			[ "$mine" = "$(exports_of "$p")" ] || return 1
		fi
	done
}

# Always true, settled or not: capacity and ids.
check_always() {
	local p table
	table=$(lease_table) || return 1
	for p in $FAULT_PROVIDERS; do
		local lent cap
		lent=$(awk -v p="$p" '$2 == p {s += $5} END {print s + 0}' <<<"$table")
		cap=$(numfmt --from=iec "$(capacity_of "$p")")
		[ "$lent" -le "$cap" ] || { echo "over-commit: $p lends $lent of $cap"; return 1; }
	done
	# an id keeps its attributes; an id gone never returns
	local id rest
	while read -r id rest; do
		[ -n "$id" ] || continue
		if grep -q "^$id " "$T/ended"; then
			echo "lease id $id reused: $rest (ended before as $(grep "^$id " "$T/ended"))"
			return 1
		fi
		local known
		known=$(awk -v i="$id" '$1 == i {print $2, $3, $4, $5}' "$T/seen")
		if [ -z "$known" ]; then
			echo "$id ${rest% *}" >> "$T/seen"
		elif [ "$known" != "${rest% *}" ]; then
			echo "lease id $id changed: $known, now ${rest% *}"
			return 1
		fi
	done <<<"$table"
	# ids seen before and not listed now have ended
	awk 'NR == FNR {live[$1] = 1; next} !($1 in live)' <(echo "$table") "$T/seen" | while read -r id rest; do
		grep -q "^$id " "$T/ended" || echo "$id $rest" >> "$T/ended"
	done
}

all_connected() { gmc_cli nodes | jq -s -e --argjson n "$1" 'map(select(.state == "active" and .connected)) | length == $n'; }

random_active_lease() { gmc_cli leases | jq -r 'select(.state == "active") | .lease' | shuf -n 1 --random-source=<(yes "$RANDOM"); }

fault_step() {
	local r=$((RANDOM % 100)) p=p$((RANDOM % 3 + 1)) c=c$((RANDOM % 2 + 1)) out status
	if [ "$r" -lt 45 ]; then
		local size=$(((RANDOM % 12 + 1) * 4))M
		[ $((RANDOM % 4)) = 0 ] && size=$(((RANDOM % 64 + 1) * 4))K
		echo "alloc $c $size"
		status=0
		out=$(gmc_cli alloc --node "$c" --domain "vm$((RANDOM % 3))" "$size" 2>&1) || status=$?
		# a refusal is an answer (no room); a usage error or a hang is not
		[ "$status" -le 1 ] || { echo "$out"; return 1; }
	elif [ "$r" -lt 58 ]; then
		local lease
		lease=$(random_active_lease)
		echo "release ${lease:-none}"
		[ -z "$lease" ] || gmc_cli release "$lease" >/dev/null 2>&1 || true # it may have ended meanwhile
	elif [ "$r" -lt 64 ]; then
		echo "reclaim $p"
		gmc_cli reclaim --node "$p" 8M >/dev/null 2>&1 || true
	elif [ "$r" -lt 74 ]; then
		echo "kill -9 serve $p and restart it"
		kill -9 "$(eval echo "\$${p}_SERVE")" 2>/dev/null || true
		wait "$(eval echo "\$${p}_SERVE")" 2>/dev/null || true
		serve "$p"
		rm -f "$T/$p.down"
	elif [ "$r" -lt 82 ]; then
		if [ -f "$T/$p.down" ]; then
			echo "restart serve $p"
			serve "$p"
			rm -f "$T/$p.down"
		else
			echo "kill -9 serve $p (stays down)"
			kill -9 "$(eval echo "\$${p}_SERVE")" 2>/dev/null || true
			wait "$(eval echo "\$${p}_SERVE")" 2>/dev/null || true
			touch "$T/$p.down"
		fi
	elif [ "$r" -lt 90 ]; then
		echo "kill -9 agent $p and restart it"
		kill -9 "$(eval echo "\$${p}_AGENT")" 2>/dev/null || true
		wait "$(eval echo "\$${p}_AGENT")" 2>/dev/null || true
		agent "$p"
	else
		echo "kill -9 controller"
		lease_table > "$T/before.kill"
		kill -9 "$GMC_PID"
		wait "$GMC_PID" 2>/dev/null || true
		controller
		# straight from the journal, before any agent is back: the same leases
		lease_table > "$T/after.kill"
		diff "$T/before.kill" "$T/after.kill" || { echo "the lease set changed over a controller restart"; return 1; }
		until_true 20 all_connected 5 || { gmc_cli nodes; return 1; }
	fi
}

@test "msgmc randomized faults: allocs, releases, reclaims, kill -9 of serves, agents and the controller; invariants after every step" {
	command -v numfmt >/dev/null || skip "needs numfmt (coreutils)"
	local seed=${MEMSHARE_FAULT_SEED:-$((RANDOM * 32768 + RANDOM))}
	local budget=${MEMSHARE_FAULT_SECONDS:-75} max_steps=${MEMSHARE_FAULT_STEPS:-0}
	echo "# fault test: seed $seed, $budget s${MEMSHARE_FAULT_STEPS:+, at most $max_steps steps}" >&3
	: > "$T/seen"
	: > "$T/ended"
	controller
	provider p1 64M
	provider p2 96M
	provider p3 128M
	consumer c1
	consumer c2
	until_true 15 nodes_ready 5
	RANDOM=$seed
	local step=0 end=$((SECONDS + budget)) kills=0
	while [ "$SECONDS" -lt "$end" ] && { [ "$max_steps" = 0 ] || [ "$step" -lt "$max_steps" ]; }; do
		step=$((step + 1))
		# in this shell, not a subshell: it restarts daemons and keeps their pids
		fault_step > "$T/what" || { echo "seed $seed step $step: $(cat "$T/what")"; false; }
		what=$(cat "$T/what")
		echo "step $step: $what" >> "$T/steps"
		[[ $what == *kill* ]] && kills=$((kills + 1))
		# the agents reconcile every second: settled within a few intervals
		until_true 20 settled || { echo "seed $seed step $step ($what): not settled"; lease_table; for p in $FAULT_PROVIDERS; do echo "$p: $(exports_of "$p" | tr '\n' ' ')"; done; false; }
		check_always || { echo "seed $seed step $step ($what)"; false; }
	done
	echo "# fault test: seed $seed, $step steps ($kills with kill -9), $(wc -l < "$T/seen") lease ids, $(wc -l < "$T/ended") ended, $(lease_table | wc -l) active at the end" >&3
	[ "$step" -ge 5 ]
}

mirror_done() { "$MSRSWAP" status --control "$T/c.ctl" | jq -s -e 'map(select(.domain == "vm1")) | .[0].mirror_pending_bytes == 0 and .[0].remote_bytes > 0'; }
remote_gone() { "$MSRSWAP" status --control "$T/c.ctl" | jq -s -e 'map(select(.domain == "vm1")) | .[0].remotes_alive == 0'; }

@test "msgmc V1 with a real consumer: the lost lease's device serves its blocks from the disk copy, nothing is lost" {
	command -v qemu-io >/dev/null || skip "qemu-io (qemu-utils) is not installed"
	command -v socat >/dev/null || skip "socat is not installed"
	controller
	provider p1 64M
	bg client "$MSRSWAP" client --listen "unix:$T/c.sock" --control "$T/c.ctl" --ram 4K --disk-dir "$T/disks"
	until_true 10 test -S "$T/c.ctl"
	echo '{"cmd":"device-add","name":"vm1","size":33554432}' | socat - "UNIX-CONNECT:$T/c.ctl" | jq_true .ok
	bg c1-agent "$MSGMC" agent --gmc "$GMC" --node c1 --client-control "$T/c.ctl" --interval 1s -v
	until_true 10 nodes_ready 2
	gmc_cli alloc --node c1 --domain vm1 32M > "$T/lease.jsonl"
	jq -e '.provider == "p1" and .attached' "$T/lease.jsonl"
	# 8 MiB of a pattern: on the remote (and its disk copy, once the mirror has caught up)
	qemu-io -f raw -c "write -P 7 0 8M" "nbd+unix:///vm1?socket=$T/c.sock" | grep -v failed >/dev/null
	until_true 20 mirror_done
	kill -9 "$p1_SERVE"
	wait "$p1_SERVE" 2>/dev/null || true
	serve p1
	# the lease ends; the consumer's device no longer uses the export
	until_true 15 no_leases_on p1
	until_true 10 grep -q '"event":"reclaimed"' "$T/c1-agent.out"
	until_true 10 remote_gone
	[ -z "$(exports_of p1)" ]
	# every block reads back, from the disk copy
	qemu-io -f raw -r -c "read -P 7 0 8M" "nbd+unix:///vm1?socket=$T/c.sock" > "$T/read.out"
	! grep -q -i 'fail\|mismatch' "$T/read.out"
	"$MSRSWAP" status --control "$T/c.ctl" | jq -s -e 'map(select(.domain == "vm1")) | .[0].mirror_errors == 0'
}
