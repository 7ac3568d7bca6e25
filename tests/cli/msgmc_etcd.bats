#!/usr/bin/env bats
# msgmc serve --state etcd://: two controllers on a real 3-member etcd
# cluster (loopback, ports chosen free), two providers (msrswap serve + agent)
# and two consumers.  The leading controller killed (kill -9) during a burst
# of allocs, the etcd leader killed, a leader paused past its lease: no
# acknowledged lease is lost or doubled, no id comes twice, and every active
# lease has its export on its provider.
bats_require_minimum_version 1.5.0
load helpers
load msgmc_helpers
load etcd_helpers

MSGMC=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msgmc
PROVIDERS="p1 p2"

setup() {
	[ -x "$MSGMC" ] || skip "$MSGMC is not built (run make)"
	require_etcd
	T=$BATS_TEST_TMPDIR
	PIDS=""
	etcd_start "$T/etcd"
	BASE=$(random_port 6) # controllers a, b; providers p1, p2
	GMC_A=127.0.0.1:$BASE
	GMC_B=127.0.0.1:$((BASE + 1))
	GMCS=$GMC_A,$GMC_B
	STATE=etcd://$ETCD_ENDPOINTS/memshare-test-$$
}

teardown() {
	local p
	show_daemon_logs
	for p in $PIDS; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	etcd_stop "$T/etcd"
	true
}

gmc_cli() { "$MSGMC" --gmc "$GMCS" --timeout 20s "$@"; }
# leads ADDR: the controller at ADDR answers as the leader (a standby's
# answer names the other, which --gmc ADDR alone cannot follow if it is dead)
leads() { "$MSGMC" --gmc "$1" --timeout 2s status | jq_true --arg a "$1" '.leader == $a' >/dev/null; }

# controller a|b: start it (again); sets <x>_PID
controller() {
	local addr
	[ "$1" = a ] && addr=$GMC_A || addr=$GMC_B
	bg "gmc-$1" "$MSGMC" serve --listen "$addr" --state "$STATE" --node-timeout 30s -v
	eval "$1_PID=$LAST_PID"
}

port_of() { echo $((BASE + 1 + ${1#p})); }

provider() {
	bg "$1-serve" "$MSRSWAP" serve --listen "127.0.0.1:$(port_of "$1")" --capacity 1G --control "$T/$1.ctl"
	until_true 10 test -S "$T/$1.ctl"
	bg "$1-agent" "$MSGMC" agent --gmc "$GMCS" --node "$1" --rswap-control "$T/$1.ctl" \
		--address "127.0.0.1:$(port_of "$1")" --interval 1s -v
}

# Two controllers (a leads), two providers, two consumers, all registered.
cluster() {
	controller a
	until_true 20 leads "$GMC_A"
	controller b
	provider p1
	provider p2
	bg c1-agent "$MSGMC" agent --gmc "$GMCS" --node c1 --interval 1s -v
	bg c2-agent "$MSGMC" agent --gmc "$GMCS" --node c2 --interval 1s -v
	until_true 30 nodes_ready 4
}

# burst FILE: allocs one after the other until $T/stop exists; the lease
# ids of acknowledged allocs go to FILE as "ID SECONDS" (the time acknowledged)
burst() {
	local i=0 out
	rm -f "$T/stop"
	while [ ! -f "$T/stop" ]; do
		i=$((i + 1))
		if out=$("$MSGMC" --gmc "$GMCS" --timeout 10s alloc --node "c$((i % 2 + 1))" --domain "d$i" 1M 2>>"$T/burst.err"); then
			jq -r --arg t "$(date +%s.%N)" '"\(.lease) \($t)"' <<<"$out" >>"$1" || echo "not JSON: $out" >>"$T/burst.err"
		else
			sleep 0.05
		fi
	done
}

# connected_to PORT: some connection to PORT is established (the kernel accepts for a paused process)
connected_to() { ss -Htn state established "( dport = :$1 )" | grep -q .; }
acked_more() { [ "$(wc -l <"$T/acked")" -gt "$1" ]; }

# Every acknowledged lease is known, once, with its export; ids only grew.
check_acknowledged() {
	local acked=$1 table
	table=$(gmc_cli leases) || return 1
	[ -s "$acked" ] || { echo "no alloc was acknowledged"; return 1; }
	# no id twice, in the acknowledgements or in the table
	[ -z "$(cut -d' ' -f1 "$acked" | sort | uniq -d)" ] || { echo "an id acknowledged twice"; return 1; }
	[ -z "$(jq -r .lease <<<"$table" | sort | uniq -d)" ] || { echo "an id listed twice"; return 1; }
	# sequential allocs: each new id is above every one before (none reused)
	cut -d' ' -f1 "$acked" | awk 'NR > 1 && $1 <= last { print "id " $1 " after " last; bad = 1 } { last = $1 } END { exit bad }' || return 1
	# no acknowledged lease lost
	local id
	for id in $(cut -d' ' -f1 "$acked"); do
		jq_true -s --argjson id "$id" 'any(.[]; .lease == $id and .state == "active")' <<<"$table" >/dev/null ||
			{ echo "acknowledged lease $id lost"; return 1; }
	done
}

# Every active lease has its export and no export lacks its lease.
exports_match() {
	local p
	for p in $PROVIDERS; do [ "$(leases_on "$p")" = "$(exports_of "$p")" ] || return 1; done
}

@test "msgmc etcd: --state etcd:// with no etcd reachable fails within a few seconds with a clear message; a bad URI is a usage error" {
	local port start
	port=$(random_port 1)
	start=$SECONDS
	run -1 "$MSGMC" serve --listen "127.0.0.1:$port" --state "etcd://127.0.0.1:1,127.0.0.1:2/x"
	[ $((SECONDS - start)) -le 8 ]
	[[ $output == *"--state etcd://127.0.0.1:1,127.0.0.1:2/x: no etcd member of 127.0.0.1:1,127.0.0.1:2 answered"* ]]
	run -2 "$MSGMC" serve --listen "127.0.0.1:$port" --state "etcd://$ETCD_ENDPOINTS"
	[[ $output == *"use etcd://HOST:PORT"* ]]
	run -2 "$MSGMC" serve --listen "127.0.0.1:$port" --state "etcd://$ETCD_ENDPOINTS/"
	[[ $output == *"PREFIX is missing"* ]]
}

@test "msgmc etcd: a standby answers 'not the leader, it is X'; commands follow; status names backend, leader, since when, commit latency" {
	cluster
	# B, the standby, names A; the command follows it there
	# (a standby that has not read the leader key yet names nobody: retried until it does)
	alloc_via_b() { "$MSGMC" --gmc "$GMC_B" alloc --node c1 --domain d 1M > "$T/via-b.json"; }
	until_true 30 alloc_via_b
	jq_true '.lease > 0' < "$T/via-b.json"
	"$MSGMC" --gmc "$GMC_B" status | jq_true --arg a "$GMC_A" \
		'.state_backend == "etcd" and .leader == $a and (.leading_since | length) > 0 and .last_commit_ms > 0'
	# the standby's own answer, as an agent sees it
	grep -q "not the leader, it is $GMC_A" <(printf '{"v":1,"type":"status","id":7}\n' | timeout 5 socat -t 2 - "TCP:$GMC_B")
}

# takeover N: kill -9 the leading controller N times during a burst of
# allocs, restarting it as the standby; prints the takeover times.
takeover() {
	local n=$1 k leader standby lpid t0 t1
	cluster
	touch "$T/acked"
	burst "$T/acked" &
	local burst_pid=$!
	leader=a standby=b
	for ((k = 1; k <= n; k++)); do
		local want
		[ $standby = a ] && want=$GMC_A || want=$GMC_B
		# allocs in flight as it dies: two more acknowledged than before
		until_true 20 acked_more "$(($(wc -l <"$T/acked") + 1))"
		eval "lpid=\$${leader}_PID"
		t0=$(date +%s.%N)
		kill -9 "$lpid"
		until leads "$want" 2>/dev/null; do
			awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a > 30) }' && break
			sleep 0.05
		done
		t1=$(date +%s.%N)
		awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", b - a }' >>"$T/takeover"
		controller "$leader" # the killed one comes back as the standby
		local tmp=$leader
		leader=$standby standby=$tmp
		until_true 30 nodes_ready 4
	done
	touch "$T/stop"
	wait "$burst_pid"
	echo "# takeover after kill -9 of the leader (s): $(sort -n "$T/takeover" | tr '\n' ' ')" >&3
	echo "# acknowledged allocs: $(wc -l <"$T/acked"), refused or cut: $(grep -c . "$T/burst.err" || true)" >&3
	awk '$1 > 3 { print "takeover took " $1 " s"; bad = 1 } END { exit bad }' "$T/takeover"
	until_true 60 exports_match
	check_acknowledged "$T/acked"
}

@test "msgmc etcd: kill -9 of the leading controller during allocs (3 times, MSGMC_ETCD_KILLS=N for more): the standby leads within 3 s; no acknowledged lease lost or doubled; ids never reused; every lease has its export" {
	takeover "${MSGMC_ETCD_KILLS:-3}"
}

@test "msgmc etcd: kill -9 of the etcd leader during allocs: no acknowledged lease lost; the pause is stated" {
	cluster
	touch "$T/acked"
	burst "$T/acked" &
	local burst_pid=$! member
	until_true 20 acked_more 1 # the burst is running: allocs in flight when the member dies
	member=$(etcd_leader)
	[ -n "$member" ]
	local before
	before=$(wc -l <"$T/acked")
	kill -9 "$(cat "$T/etcd/$member.pid")"
	until_true 30 acked_more "$((before + 5))"
	touch "$T/stop"
	wait "$burst_pid"
	# the longest gap between two acknowledgements: the pause
	echo "# etcd leader $member killed: longest pause between acknowledged allocs $(awk 'NR > 1 && $2 - t > m { m = $2 - t } { t = $2 } END { printf "%.2f s", m }' "$T/acked"), $(wc -l <"$T/acked") acknowledged" >&3
	until_true 60 exports_match
	check_acknowledged "$T/acked"
}

@test "msgmc etcd: a leader paused past its lease (SIGSTOP, SIGCONT) cannot write: its txn fails, it steps down, the new leader's state is untouched" {
	cluster
	out=$(gmc_cli alloc --node c1 --domain d0 1M)
	jq_true '.lease > 0' <<<"$out"
	kill -STOP "$a_PID"
	GMCS=$GMC_B,$GMC_A # a command waits its --timeout for a paused controller: B first
	until_true 20 leads "$GMC_B"
	until_true 30 nodes_ready 4 # the agents left the silent controller for the new leader
	out=$(gmc_cli alloc --node c2 --domain d1 1M)
	jq_true '.lease > 0' <<<"$out"
	local before
	before=$(gmc_cli leases | jq -s -c 'map(.lease) | sort')
	# a request waits in the paused leader's socket: it decides, writes, fails
	"$MSGMC" --gmc "$GMC_A" --timeout 10s alloc --node c1 --domain d2 1M >"$T/late.out" 2>"$T/late.err" &
	local late=$!
	until_true 10 connected_to "${GMC_A##*:}"
	kill -CONT "$a_PID"
	local rc=0
	wait "$late" || rc=$?
	[ "$rc" = 1 ] # refused or cut, never acknowledged
	until_true 20 grep -q "no longer the leader" "$T/gmc-a.err"
	# its keep-alive found the lease gone, or its txn was refused (the next test forces that one)
	grep -E "no longer the leader: (deposed|the leader lease expired)" "$T/gmc-a.err"
	# nothing of A's reached etcd or the leases: the same set, every export in place
	[ "$(gmc_cli leases | jq -s -c 'map(.lease) | sort')" = "$before" ]
	[ "$(etcdctl3 get --prefix "/memshare-test-$$/lease/" --keys-only | grep -c lease)" = "$(jq 'length' <<<"$before")" ]
	until_true 30 exports_match
	leads "$GMC_B"
}

@test "msgmc etcd: a leader whose leader key another holds cannot write: the guarded txn fails, nothing is acknowledged, it steps down" {
	cluster
	local prefix=/memshare-test-$$
	# another controller's key in its place (as after a lease expiry it did not see)
	etcdctl3 del "$prefix/leader"
	etcdctl3 put "$prefix/leader" 127.0.0.1:1
	run -1 "$MSGMC" --gmc "$GMC_A" --timeout 10s alloc --node c1 --domain d1 1M
	until_true 10 grep -q "no longer the leader: deposed" "$T/gmc-a.err"
	[ "$(etcdctl3 get --prefix "$prefix/lease/" --keys-only | grep -c lease)" = 0 ]
	# what it had decided was never sent: the consumer was told nothing
	! grep -q '"granted"' "$T/c1-agent.out"
}
