#!/usr/bin/env bats
# msgmc end to end on loopback: a controller, two msrswap providers with
# their agents and a consumer agent, all real processes; the providers'
# actual exports are the ground truth every lease is checked against.
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
	local dev
	show_daemon_logs
	for dev in $(awk 'NR > 1 {print $1}' /proc/swaps); do
		[[ $(cat "/sys/block/${dev#/dev/}/loop/backing_file" 2>/dev/null) == "${T:-/nonexistent}"/* ]] || continue
		until_true 60 swapoff "$dev" || true
	done
	stop_workloads
	remove_cgroups
	local p
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	mountpoint -q "${T:-/nonexistent}/fuse" && umount -l "$T/fuse"
	local ns
	for ns in ${NETNS:-}; do ip netns del "$ns" 2>/dev/null; done
	true
}

# bg NAME CMD...: run CMD in the background, output in $T/NAME.out/.err; sets LAST_PID
controller() {
	bg gmc "$MSGMC" serve --listen "$GMC" --state "$T/state" --node-timeout 2s -v "$@"
	GMC_PID=$LAST_PID
	until_true 30 gmc_cli status
}

# provider NAME PORT CAPACITY: msrswap serve and its agent; sets <NAME>_SERVE and <NAME>_AGENT pids
provider() {
	local name=$1 port=$2 capacity=$3
	bg "$name-serve" "$MSRSWAP" serve --listen "127.0.0.1:$port" --capacity "$capacity" --control "$T/$name.ctl"
	eval "${name}_SERVE=$LAST_PID"
	until_true 60 test -S "$T/$name.ctl" || { cat "$T/$name-serve.err"; return 1; }
	bg "$name-agent" "$MSGMC" agent --gmc "$GMC" --node "$name" --rswap-control "$T/$name.ctl" \
		--address "127.0.0.1:$port" --interval 1s -v
	eval "${name}_AGENT=$LAST_PID"
}

consumer() {
	bg c1-agent "$MSGMC" agent --gmc "$GMC" --node c1 --interval 1s -v "$@"
	C1_AGENT=$LAST_PID
}

# gmc_cli ARGS...: a command to the controller at $GMC, from its network
# namespace ($GMC_NS) and with its keys ($GMC_KEYS) when the test has them
gmc_cli() {
	${GMC_NS:+nsenter "--net=/run/netns/$GMC_NS"} "$MSGMC" --gmc "$GMC" ${GMC_KEYS:+--tls-psk "$GMC_KEYS"} "$@"
}

cluster() {
	controller "$@"
	provider p1 $((BASE + 1)) 64M
	provider p2 $((BASE + 2)) 128M
	consumer
	until_true 60 nodes_ready 3
}

no_leases() { [ -z "$(gmc_cli leases)" ]; }
lease_count_is() { [ "$(gmc_cli leases | wc -l)" = "$1" ]; }
no_exports_on() { [ -z "$(exports_of "$1")" ]; }

@test "msgmc: --help names every command; bad usage exits 2" {
	run "$MSGMC" --help
	[ "$status" -eq 0 ]
	for w in serve agent status nodes leases alloc release reclaim leave --state --policy --reserve --tls-psk --rswap-control; do
		[[ $output == *"$w"* ]]
	done
	run "$MSGMC"
	[ "$status" -eq 2 ]
	run "$MSGMC" frobnicate
	[ "$status" -eq 2 ]
	run "$MSGMC" alloc 1G
	[ "$status" -eq 2 ]
	[[ $output == *"--node"* ]]
	run "$MSGMC" serve --policy best
	[ "$status" -eq 2 ]
	run "$MSGMC" agent
	[ "$status" -eq 2 ]
	run "$MSGMC" --gmc 127.0.0.1:1 status
	[ "$status" -eq 1 ]
	[[ $output == *"controller 127.0.0.1:1"* ]]
}

node_connected() { gmc_cli nodes | jq_true -s --arg n "$1" 'map(select(.node == $n and .connected and .state == "active")) | length == 1'; }

# keys FILE USER...: a psktool key file with a fresh key per user
keys() {
	local file=$1 user
	shift
	command -v psktool >/dev/null || skip "needs psktool (gnutls-bin)"
	for user; do psktool -u "$user" -p "$file" >/dev/null; done
	chmod 600 "$file"
}

@test "msgmc: no plain text outside loopback; a key file that cannot be used is an input error" {
	run "$MSGMC" serve --listen 0.0.0.0:$BASE
	[ "$status" -eq 2 ]
	[[ $output == *"not a loopback address"* && $output == *"--tls-psk"* ]]
	run "$MSGMC" serve --listen ":$BASE"
	[ "$status" -eq 2 ]
	run "$MSGMC" agent --gmc 10.1.2.3:$BASE --node n1
	[ "$status" -eq 2 ]
	[[ $output == *"--gmc 10.1.2.3:$BASE is not a loopback address"* ]]
	run "$MSGMC" --gmc 10.1.2.3:$BASE status
	[ "$status" -eq 2 ]
	echo "key" > "$T/bad.psk"
	run "$MSGMC" serve --listen "$GMC" --tls-psk "$T/bad.psk"
	[ "$status" -eq 2 ]
	[[ $output == *"bad.psk line 1: expected username:hexkey"* ]]
	run "$MSGMC" serve --listen "$GMC" --tls-psk "$T/absent.psk"
	[ "$status" -eq 2 ]
	[[ $output == *"absent.psk"* ]]
	keys "$T/keys.psk" alice
	run "$MSGMC" --gmc "$GMC" --tls-psk "$T/keys.psk" --tls-username carol status
	[ "$status" -eq 2 ]
	[[ $output == *"no key for PSK username 'carol'"* ]]
	run "$MSGMC" serve --tls-psk "$T/keys.psk" --tls-username alice
	[ "$status" -eq 2 ]
	run "$MSGMC" status --tls-username alice
	[ "$status" -eq 2 ]
}

@test "msgmc --tls-psk: every peer must authenticate; plain, wrong-key, unknown, silent and garbage peers are refused while agents are served" {
	keys "$T/keys.psk" alice bob
	keys "$T/other.psk" alice
	keys "$T/mallory.psk" mallory
	GMC_KEYS=$T/keys.psk
	controller --tls-psk "$T/keys.psk"
	grep -q "TLS with pre-shared keys required" "$T/gmc.err"
	# a silent client (connects, never starts the handshake) and one that sends garbage
	exec 5<>"/dev/tcp/127.0.0.1/$BASE"
	exec 6<>"/dev/tcp/127.0.0.1/$BASE"
	# (text: random bytes may look like the start of a long TLS record, which waits for the timeout)
	head -c 3072 /dev/urandom | base64 >&6 || true # the controller may hang up before all is written
	# the garbage sender is cut off (end of file or reset, not a timeout)
	run timeout 5 cat <&6
	[ "$status" -ne 124 ]
	# an agent with alice's key registers, one without TLS does not
	bg p1-agent "$MSGMC" agent --gmc "$GMC" --tls-psk "$T/keys.psk" --node p1 --interval 1s -v
	bg p2-agent "$MSGMC" agent --gmc "$GMC" --node p2 --interval 1s -v
	until_true 60 node_connected p1
	# commands: with either identity of the file, yes; in plain text, with another key or user, no
	gmc_cli status | jq_true '.kind == "gmc_status"'
	gmc_cli --tls-username bob nodes | jq_true -s 'length == 1'
	run "$MSGMC" --gmc "$GMC" status
	[ "$status" -eq 1 ]
	[[ $output == *"answered in TLS: it requires --tls-psk FILE"* ]]
	run "$MSGMC" --gmc "$GMC" --tls-psk "$T/other.psk" status
	[ "$status" -eq 1 ]
	[[ $output == *"TLS handshake failed"* && $output == *"'alice'"* ]]
	run "$MSGMC" --gmc "$GMC" --tls-psk "$T/mallory.psk" leases
	[ "$status" -eq 1 ]
	[[ $output == *"TLS handshake failed"* ]]
	grep -q "peer refused: TLS handshake failed: .*wrong key for PSK username 'alice'" "$T/gmc.err"
	grep -q "peer refused: TLS handshake failed: unknown PSK username 'mallory'" "$T/gmc.err"
	# the plain agent is told why and never registers
	until_true 60 grep -q "it answered in TLS: it requires --tls-psk FILE" "$T/p2-agent.err"
	gmc_cli nodes | jq_true -s 'map(.node) == ["p1"]'
	# the silent client is dropped after the handshake timeout (10 s); alice's agent is still there
	until_true 60 grep -q "did not complete it in time" "$T/gmc.err"
	exec 5>&- 6>&-
	node_connected p1
	kill -0 "$GMC_PID"
	# the file is read at every handshake: a key taken out of it no longer opens
	grep '^bob:' "$T/keys.psk" > "$T/bob.psk"
	chmod 600 "$T/bob.psk"
	"$MSGMC" --gmc "$GMC" --tls-psk "$T/bob.psk" status | jq_true '.kind == "gmc_status"'
	grep -v '^bob:' "$T/keys.psk" > "$T/keys.new" && cat "$T/keys.new" > "$T/keys.psk"
	run "$MSGMC" --gmc "$GMC" --tls-psk "$T/bob.psk" status
	[ "$status" -eq 1 ]
	grep -q "unknown PSK username 'bob'" "$T/gmc.err"
	node_connected p1
}

@test "msgmc: alloc picks the provider with the most free memory; the export really exists there; release removes it" {
	cluster
	gmc_cli nodes > "$T/nodes.jsonl"
	jq -s -e 'length == 3 and all(.state == "active")' "$T/nodes.jsonl"
	run gmc_cli alloc --node c1 --domain vm1 32M
	echo "$output"
	[ "$status" -eq 0 ]
	jq -e 'select(.kind == "lease") | .provider == "p2" and .size_bytes == 33554432 and .consumer == "c1" and .domain == "vm1"' <<<"$output"
	lease=$(jq -r .lease <<<"$output")
	[ "$(exports_of p2)" = "msgmc-$lease 33554432" ]
	[ -z "$(exports_of p1)" ]
	[ "$(leases_on p2)" = "$(exports_of p2)" ]
	# the consumer agent was told (it has no client daemon here: granted, not attached)
	until_true 30 grep -q '"event":"granted"' "$T/c1-agent.out"
	# p2 has 96M free now, p1 64M: 80M goes to p2 again, then 64M to p1
	gmc_cli alloc --node c1 --domain vm1 80M | jq_true '.provider == "p2"'
	gmc_cli alloc --node c1 --domain vm2 40M | jq_true '.provider == "p1"'
	[ "$(leases_on p1)" = "$(exports_of p1)" ]
	[ "$(leases_on p2)" = "$(exports_of p2)" ]
	# more than anyone has: a partial grant across both (no reserve), or a refusal
	run gmc_cli alloc --node c1 --domain vm3 1G
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(jq -s 'map(.size_bytes) | add' <<<"$output")" = $((16 * 1048576 + 24 * 1048576)) ]
	run gmc_cli alloc --node c1 --domain vm3 4K
	[ "$status" -eq 1 ]
	[[ $output == *"no node can serve"* ]]
	# release: the export goes
	gmc_cli release "$lease" | jq_true '.event == "released"'
	! exports_of p2 | grep -q "^msgmc-$lease "
	[ "$(leases_on p2)" = "$(exports_of p2)" ]
	run gmc_cli release "$lease"
	[ "$status" -eq 1 ]
	gmc_cli status | jq_true '.leases == 4 and .decisions >= 5'
}

@test "msgmc: a peer that sends garbage is dropped; the others are unharmed" {
	cluster
	gmc_cli alloc --node c1 --domain vm1 8M >/dev/null
	# garbage, a wrong version, an unknown type and an endless line, each on its own connection
	for junk in 'hello' '{"v":2,"type":"status","id":1}' '{"v":1,"type":"rm_rf","id":1}'; do
		exec 5<>"/dev/tcp/127.0.0.1/$BASE"
		printf '%s\n' "$junk" >&5
		# the controller closes the connection
		run timeout 5 cat <&5
		[ "$status" -eq 0 ]
		exec 5>&-
	done
	exec 5<>"/dev/tcp/127.0.0.1/$BASE"
	head -c 200000 /dev/zero | tr '\0' 'x' >&5 || true
	run timeout 5 cat <&5
	exec 5>&-
	grep -q 'longer than 65536 bytes' "$T/gmc.err"
	grep -q "unknown message type 'rm_rf'" "$T/gmc.err"
	# the agents are still connected and the controller serves
	gmc_cli nodes | jq -s -e 'length == 3 and all(.connected)'
	gmc_cli alloc --node c1 --domain vm2 8M | jq_true '.kind == "lease"'
	kill -0 "$GMC_PID"
}

@test "msgmc: kill -9 of the controller and restart with --state: no lease lost, nothing double-allocated" {
	cluster
	gmc_cli alloc --node c1 --domain vm1 32M >/dev/null
	gmc_cli alloc --node c1 --domain vm1 64M >/dev/null
	gmc_cli alloc --node c1 --domain vm2 48M >/dev/null
	gmc_cli leases | jq -c 'del(.ts, .attached)' | sort > "$T/before"
	[ "$(wc -l < "$T/before")" = 3 ]
	kill -9 "$GMC_PID"
	wait "$GMC_PID" 2>/dev/null || true
	# while it is down, the exports stay
	[ "$(exports_of p2 | wc -l)" = 2 ]
	controller
	gmc_cli leases | jq -c 'del(.ts, .attached)' | sort > "$T/after"
	diff "$T/before" "$T/after"
	# the agents come back (backoff) and the nodes are active again
	until_true 60 nodes_ready 3
	# leases match the providers' real exports, one for one
	[ "$(leases_on p1)" = "$(exports_of p1)" ]
	[ "$(leases_on p2)" = "$(exports_of p2)" ]
	# free memory is computed from the reloaded leases
	gmc_cli nodes | jq -s -e 'map(select(.node == "p2")) | .[0].leased_out_bytes == 96 * 1048576'
	# a new lease gets a new id and export: nothing is handed out twice
	new=$(gmc_cli alloc --node c1 --domain vm3 8M | jq -r .lease)
	! grep -q "\"lease\":$new," "$T/before"
	[ "$(gmc_cli leases | jq -s 'map(.export) | unique | length')" = 4 ]
	[ "$(leases_on p1)" = "$(exports_of p1)" ]
	[ "$(leases_on p2)" = "$(exports_of p2)" ]
}

@test "msgmc: an agent serves no more leases than its registration can list; after a controller restart it registers with all of them" {
	controller
	provider p1 $((BASE + 1)) 16M
	consumer
	until_true 60 nodes_ready 2
	n=0
	while gmc_cli alloc --node c1 --domain vm1 4K > /dev/null 2> "$T/alloc.err"; do
		n=$((n + 1))
		[ "$n" -lt 1100 ] || break
	done
	echo "leases granted: $n"
	cat "$T/alloc.err"
	grep -q "as many as its registration can list" "$T/alloc.err"
	[ "$n" -gt 300 ]
	[ "$n" -lt 1024 ]
	[ "$(exports_of p1 | wc -l)" -eq "$n" ]
	# the controller restarts: p1 registers again, listing every lease it serves
	kill -9 "$GMC_PID"
	wait "$GMC_PID" 2>/dev/null || true
	controller
	until_true 60 nodes_ready 2
	[ "$(gmc_cli leases | wc -l)" -eq "$n" ]
	[ "$(leases_on p1)" = "$(exports_of p1)" ]
	! grep -q "message longer than" "$T/gmc.err"
}

@test "msgmc: exports without a live lease are removed when their provider registers" {
	# the controller journalled ids up to 5; msgmc-3 was never confirmed (a crash in between)
	printf '{"op":"issued","lease":5}\n' > "$T/state"
	controller
	bg p1-serve "$MSRSWAP" serve --listen "127.0.0.1:$((BASE + 1))" --capacity 64M --control "$T/p1.ctl"
	until_true 30 test -S "$T/p1.ctl"
	"$MSRSWAP" export add msgmc-3 4M --control "$T/p1.ctl"
	"$MSRSWAP" export add other 4M --control "$T/p1.ctl"
	bg p1-agent "$MSGMC" agent --gmc "$GMC" --node p1 --rswap-control "$T/p1.ctl" --address "127.0.0.1:$((BASE + 1))"
	until_true 60 no_exports_on p1
	# exports that are not msgmc's are not touched
	"$MSRSWAP" export list --control "$T/p1.ctl" | jq -s -e 'map(select(.export == "other")) | length == 1'
	grep -q 'msgmc-3 (lease 3) has no live lease' "$T/gmc.err"
}

@test "msgmc: leave drains a provider; reclaim takes leases back from one" {
	cluster
	gmc_cli alloc --node c1 --domain vm1 16M | jq_true '.provider == "p2"'
	gmc_cli alloc --node c1 --domain vm1 16M | jq_true '.provider == "p2"'
	gmc_cli alloc --node c1 --domain vm2 100M | jq_true '.provider == "p1" or .provider == "p2"'
	# reclaim 16M from p2: the newest lease there goes
	gmc_cli reclaim --node p2 16M | jq -s -e 'length == 1 and .[0].event == "released"'
	[ "$(leases_on p2)" = "$(exports_of p2)" ]
	until_true 30 grep -q '"event":"reclaimed"' "$T/c1-agent.out"
	# leave: every lease served by p2 ends, its exports are gone, the agent exits
	gmc_cli leave --node p2
	[ -z "$(exports_of p2)" ]
	[ -z "$(leases_on p2)" ]
	gmc_cli nodes | jq -s -e 'map(select(.node == "p2")) | .[0].state == "inactive"'
	until_true 30 grep -q '"event":"left"' "$T/p2-agent.out"
	wait "$p2_AGENT"
	# an inactive node serves nobody: new leases go to p1 only
	gmc_cli alloc --node c1 --domain vm3 4M | jq_true '.provider == "p1"'
	run gmc_cli leave --node p2
	[ "$status" -eq 1 ]
}

@test "msgmc: a provider that dies has its leases revoked; the consumer is told to fail over" {
	cluster
	gmc_cli alloc --node c1 --domain vm1 32M | jq_true '.provider == "p2"'
	kill -9 "$p2_SERVE" "$p2_AGENT"
	# --node-timeout 2s: then Recovery, revocation, and the node is inactive
	until_true 60 no_leases
	until_true 30 grep -q '"event":"reclaimed"' "$T/c1-agent.out"
	grep -q 'node p2 away' "$T/gmc.err"
	gmc_cli nodes | jq -s -e 'map(select(.node == "p2")) | .[0].state == "inactive" and (.[0].connected | not)'
	gmc_cli alloc --node c1 --domain vm1 8M | jq_true '.provider == "p1"'
}

@test "msgmc: the agent takes msballoon's records from stdin (reservoir, grant_any for the domain it names)" {
	controller
	provider p1 $((BASE + 1)) 64M
	until_true 60 nodes_ready 1
	# a consumer whose msballoon reports a shortfall and then asks for more (tlp's grant_any);
	# its stdin is a FIFO opened read-write, so it never reaches end of file between records
	mkfifo "$T/c1.fifo"
	"$MSGMC" agent --gmc "$GMC" --node c1 --domain vm7 --interval 1s 0<>"$T/c1.fifo" > "$T/c1.out" 2> "$T/c1.err" 3>&- &
	PIDS="$PIDS $!"
	echo '{"kind":"reservoir","ts":"x","host":"c1","policy":"wss","free_bytes":0,"remote_need_bytes":8388608,"domains":1}' > "$T/c1.fifo"
	until_true 60 lease_count_is 1
	# a grant_any without "domain" (msballoon before it named one): for --domain
	echo '{"kind":"grant_any","ts":"x","host":"c1","policy":"tlp","bytes":4096,"pages":1}' > "$T/c1.fifo"
	until_true 60 lease_count_is 2
	# tlp's grant_any names the domain whose device the lease is for: two domains,
	# back to back (the second waits for the answer to the first), and a bad name skipped
	{
		echo '{"kind":"grant_any","ts":"x","host":"c1","policy":"tlp","domain":"vm8","bytes":8192,"pages":2}'
		echo '{"kind":"grant_any","ts":"x","host":"c1","policy":"tlp","domain":"vm 9","bytes":4096,"pages":1}'
		echo '{"kind":"grant_any","ts":"x","host":"c1","policy":"tlp","domain":"vm9","bytes":12288,"pages":3}'
	} > "$T/c1.fifo"
	until_true 60 lease_count_is 4
	gmc_cli leases | jq -s -e 'map("\(.domain) \(.size_bytes)") | sort == ["vm7 4096", "vm7 8388608", "vm8 8192", "vm9 12288"]'
	gmc_cli leases | jq -s -e 'all(.consumer == "c1")'
	grep -q '<stdin>:4: grant_any: "domain" is not a domain name' "$T/c1.err"
	# the pipeline as it is: msballoon plan --policy tlp | msgmc agent (the agent skips its target records);
	# a's target is the smaller, but b's device holds 16M of remotes: the lease is for a
	"$MSBALLOON" plan --policy tlp -P 2% > "$T/c1.fifo" <<-'EOF'
		{"kind":"tier","domain":"a","puts_total":100,"puts_succ":10,"tier_used_bytes":8388608,"tier_target_bytes":10485760,"pool_bytes":8388608,"remote_capacity_bytes":0}
		{"kind":"tier","domain":"b","puts_total":100,"puts_succ":10,"tier_used_bytes":14680064,"tier_target_bytes":14680064,"pool_bytes":8388608,"remote_capacity_bytes":16777216}
	EOF
	until_true 60 lease_count_is 5
	gmc_cli leases | jq -s -e 'map(select(.domain == "a" or .domain == "b")) | map("\(.domain) \(.size_bytes)") == ["a 1007616"]'
	gmc_cli nodes | jq -s -e 'map(select(.node == "c1")) | .[0].local_need_bytes == 8388608'
	[ "$(leases_on p1)" = "$(exports_of p1)" ]
}

@test "msgmc agent --invalidate: an unclean restart ends every lease of the node (Recovery, Invalidate-Notify)" {
	cluster
	gmc_cli alloc --node c1 --domain vm1 16M | jq_true '.provider == "p2"'
	gmc_cli alloc --node p2 --domain vm2 8M | jq_true '.provider == "p1"'
	kill "$p2_AGENT"
	wait "$p2_AGENT" || true
	bg p2-agent2 "$MSGMC" agent --gmc "$GMC" --node p2 --rswap-control "$T/p2.ctl" --address "127.0.0.1:$((BASE + 2))" \
		--interval 1s --invalidate -v
	until_true 60 grep -q '"event":"invalidated"' "$T/p2-agent2.out"
	# both leases ended: the one p2 served (its consumer told to fail over) and the one it used
	until_true 30 no_leases
	grep -q '"event":"reclaimed"' "$T/c1-agent.out"
	[ -z "$(exports_of p2)" ]
	[ -z "$(exports_of p1)" ]
	grep -q 'node p2 is recovery' "$T/gmc.err"
	gmc_cli nodes | jq -s -e 'map(select(.node == "p2")) | .[0].state == "active" and .[0].connected'
	gmc_cli alloc --node c1 --domain vm1 16M | jq_true '.provider == "p2"'
}

@test "msgmc serve --policy local-first: a provider whose own domains lack memory serves nobody; per-domain cap" {
	controller --policy local-first --vm-cap 24M
	provider p1 $((BASE + 1)) 64M
	# p2 has the most memory, but msballoon says its own domains lack 4M
	bg p2-serve "$MSRSWAP" serve --listen "127.0.0.1:$((BASE + 2))" --capacity 128M --control "$T/p2.ctl"
	until_true 60 test -S "$T/p2.ctl"
	mkfifo "$T/p2.fifo"
	"$MSGMC" agent --gmc "$GMC" --node p2 --rswap-control "$T/p2.ctl" --address "127.0.0.1:$((BASE + 2))" \
		--interval 1s 0<>"$T/p2.fifo" > "$T/p2.out" 2> "$T/p2.err" 3>&- &
	PIDS="$PIDS $!"
	echo '{"kind":"reservoir","ts":"x","host":"p2","policy":"wss","free_bytes":1073741824,"remote_need_bytes":4194304,"domains":2}' > "$T/p2.fifo"
	consumer
	until_true 60 nodes_ready 3
	gmc_cli nodes | jq -s -e 'map(select(.node == "p2")) | .[0].local_need_bytes == 4194304 and .[0].free_bytes == 134217728'
	gmc_cli alloc --node c1 --domain vm1 16M | jq_true '.provider == "p1"'
	# the cap: 24M per domain, 16M held: 16M more is cut to 8M, then nothing is left
	gmc_cli alloc --node c1 --domain vm1 16M | jq_true '.provider == "p1" and .size_bytes == 8388608'
	run gmc_cli alloc --node c1 --domain vm1 4K
	[ "$status" -eq 1 ]
	[[ $output == *"cap"* ]]
	# another domain has its own cap
	gmc_cli alloc --node c1 --domain vm2 4M | jq_true '.provider == "p1"'
	gmc_cli status | jq_true '.policy == "local-first" and .vm_cap_bytes == 25165824'
	# p2's own shortfall was asked for, and served by p1
	until_true 30 lease_on_consumer p2
	[ "$(leases_on p1)" = "$(exports_of p1)" ]
}

lease_on_consumer() { gmc_cli leases | jq -s -e --arg c "$1" 'map(select(.consumer == $c)) | length == 1'; }

need_is() { gmc_cli nodes | jq -s -e --argjson n "$1" 'map(select(.node == "c1")) | .[0].local_need_bytes == $n'; }

@test "msgmc agent: cron-style, one run per interval writes msballoon's records into the agent's FIFO" {
	controller
	provider p1 $((BASE + 1)) 64M
	mkfifo "$T/lmc.fifo"
	# opened read-write, the FIFO never reaches end of file: every cron run adds records
	"$MSGMC" agent --gmc "$GMC" --node c1 --interval 1s 0<>"$T/lmc.fifo" > "$T/c1.out" 2> "$T/c1.err" 3>&- &
	PIDS="$PIDS $!"
	until_true 60 nodes_ready 2
	echo '{"kind":"reservoir","ts":"x","host":"c1","policy":"wss","free_bytes":0,"remote_need_bytes":4194304,"domains":1}' > "$T/lmc.fifo"
	until_true 30 need_is 4194304
	until_true 30 lease_count_is 1
	echo '{"kind":"reservoir","ts":"x","host":"c1","policy":"wss","free_bytes":0,"remote_need_bytes":0,"domains":1}' > "$T/lmc.fifo"
	until_true 30 need_is 0
	gmc_cli leases | jq_true '.consumer == "c1" and .domain == "c1" and .size_bytes == 4194304'
}

remote_holds() {
	jq -s -e --argjson n "$1" 'map(select(.kind == "tier")) | last | .remote_bytes > $n' "$T/client.out"
}

# The consumer c1: a client daemon whose device hs1 is this host's swap,
# and its agent; waits until the controller knows all three nodes.
# host_swap_consumer [auto]: the consumer's client daemon (FUSE) and agent;
# the host swap device hs1 is made now, or with "auto" by the agent itself
# when the first lease for hs1 arrives (--attach-size)
host_swap_consumer() {
	bg client "$MSRSWAP" client --listen "unix:$T/c.sock" --control "$T/c.ctl" --disk-dir "$T/disks" --ram 8M \
		--fuse "$T/fuse" --stats 500ms
	until_true 30 test -S "$T/c.ctl"
	if [ "${1:-}" = auto ]; then
		consumer --client-control "$T/c.ctl" --attach-size 256M
	else
		"$MSRSWAP" attach --host hs1 --size 256M --control "$T/c.ctl" > "$T/attach.jsonl"
		consumer --client-control "$T/c.ctl"
	fi
	until_true 60 nodes_ready 3
}

@test "msgmc: a cgroup short of memory swaps to the granted lease (the agent makes the swap device); its data survives a controller kill -9 and the provider's death" {
	require_host_swap
	require_cgroups
	controller
	provider p1 $((BASE + 1)) 64M
	provider p2 $((BASE + 2)) 192M
	host_swap_consumer auto
	# the controller grants 128M from p2 (most free memory); hs1 has no device yet:
	# the agent runs msrswap attach --host, which makes it with the lease as its remote and swaps on it
	gmc_cli alloc --node c1 --domain hs1 128M > "$T/lease.jsonl"
	cat "$T/lease.jsonl"
	jq -e '.provider == "p2" and .attached' "$T/lease.jsonl"
	grep '"event":"granted"' "$T/c1-agent.out" | jq_true '.attached and .device_created'
	"$MSRSWAP" status --control "$T/c.ctl" | jq_true -s 'map(select(.kind == "tier" and .domain == "hs1")) | .[0].size_bytes == 268435456 and .[0].remotes_alive == 1'
	grep -q "^$(readlink -f "$(losetup -j "$T/fuse/hs1" | cut -d: -f1)") " /proc/swaps
	lease=$(jq -r .lease "$T/lease.jsonl")
	[ "$(exports_of p2)" = "msgmc-$lease 134217728" ]
	# 160 MiB of checksummed pages in a 48 MiB cgroup: over 100 MiB are swapped
	hog h1 48M 160 8 > "$T/hog.out" &
	hog_pid=$!
	until_true 60 remote_holds 16777216
	# the controller dies mid-run: swapping goes on; it comes back with the lease
	kill -9 "$GMC_PID"
	sleep 1
	remote_holds 16777216
	controller
	gmc_cli leases | jq_true --argjson l "$lease" '.lease == $l and .provider == "p2"'
	until_true 60 nodes_ready 3
	[ "$(leases_on p2)" = "$(exports_of p2)" ]
	# then the provider dies: the device fails over to its disk copy, the lease is revoked
	kill -9 "$p2_SERVE" "$p2_AGENT"
	wait "$hog_pid"
	cat "$T/hog.out"
	grep -q 'bad_pages=0' "$T/hog.out"
	jq -s -e 'map(select(.kind == "tier")) | (map(.remote_bytes) | max) > 16777216' "$T/client.out"
	until_true 60 no_leases
	until_true 30 grep -q '"event":"reclaimed"' "$T/c1-agent.out"
	detach_host_swap hs1 "$T/c.ctl"
}

@test "msgmc: reclaim and release while a cgroup swaps to the leases: the device lets go first, no page is lost" {
	require_host_swap
	require_cgroups
	controller
	provider p1 $((BASE + 1)) 32M
	provider p2 $((BASE + 2)) 192M
	host_swap_consumer
	first=$(gmc_cli alloc --node c1 --domain hs1 64M | jq -r 'select(.attached and .provider == "p2") | .lease')
	second=$(gmc_cli alloc --node c1 --domain hs1 64M | jq -r 'select(.attached and .provider == "p2") | .lease')
	[ -n "$first" ]
	[ -n "$second" ]
	hog h1 48M 160 8 > "$T/hog.out" &
	hog_pid=$!
	until_true 60 remote_holds 16777216
	# GMC_reclaim from p2: the newest lease; the consumer releases the remote before the export goes
	gmc_cli reclaim --node p2 64M | jq_true --argjson l "$second" '.lease == $l and .event == "released"'
	grep -q "\"event\":\"reclaimed\",\"lease\":$second,.*\"detached\":true" "$T/c1-agent.out"
	[ "$(exports_of p2)" = "msgmc-$first 67108864" ]
	# GMC_release of the other one
	gmc_cli release "$first" | jq_true '.event == "released"'
	[ -z "$(exports_of p2)" ]
	wait "$hog_pid"
	cat "$T/hog.out"
	grep -q 'bad_pages=0' "$T/hog.out"
	detach_host_swap hs1 "$T/c.ctl"
}

# ---- three hosts in network namespaces ------------------------------------

# lab: namespaces p1, p2 and c1, the consumer linked to each provider by a veth
# pair (10.N.1.0/24 to p1, 10.N.2.0/24 to p2); sets NS_P1 NS_P2 NS_C1 and NET.
lab() {
	[ "$(id -u)" = 0 ] || skip "needs root (network namespaces)"
	command -v ip >/dev/null && command -v nsenter >/dev/null || skip "needs ip and nsenter"
	local tag=mg$BASHPID i # unique on this machine now; "mgNNNNNNN-p1" fits IFNAMSIZ
	NET=10.$((100 + RANDOM % 100))
	NS_P1=$tag-p1 NS_P2=$tag-p2 NS_C1=$tag-c1
	NETNS="$NS_P1 $NS_P2 $NS_C1"
	for ns in $NETNS; do
		ip netns add "$ns" || skip "cannot create network namespaces"
		ip -n "$ns" link set lo up
	done
	for i in 1 2; do
		local ns=$tag-p$i
		ip link add "$tag-c$i" type veth peer name "$tag-p$i"
		ip link set "$tag-c$i" netns "$NS_C1"
		ip link set "$tag-p$i" netns "$ns"
		ip -n "$NS_C1" addr add "$NET.$i.1/24" dev "$tag-c$i"
		ip -n "$ns" addr add "$NET.$i.2/24" dev "$tag-p$i"
		ip -n "$NS_C1" link set "$tag-c$i" up
		ip -n "$ns" link set "$tag-p$i" up
	done
	TAG=$tag
}

# in NS CMD...: CMD in that network namespace only (the mounts, cgroups and
# swap stay the host's, as they would be on a real host).  Daemons are started
# with nsenter itself, which becomes the daemon: its pid is the daemon's.
in_ns() {
	local ns=$1
	shift
	nsenter "--net=/run/netns/$ns" "$@"
}

# lab_controller [NAME]: msgmc serve in the consumer's namespace, on every
# address, TLS required; GMC and GMC_NS say where commands reach it.
lab_controller() {
	GMC=127.0.0.1:$BASE GMC_NS=$NS_C1
	bg "${1:-gmc}" nsenter "--net=/run/netns/$NS_C1" "$MSGMC" serve --listen "0.0.0.0:$BASE" --tls-psk "$GMC_KEYS" \
		--state "$T/state" --node-timeout 2s -v
	GMC_PID=$LAST_PID
	until_true 30 gmc_cli status
}

# lab_provider NAME NS CAPACITY: msrswap serve on NS's veth address and its
# agent, which reaches the controller across the veth; both require TLS
lab_provider() {
	local name=$1 ns=$2 capacity=$3 addr=$NET.${1#p}.2:10809
	bg "$name-serve" nsenter "--net=/run/netns/$ns" "$MSRSWAP" serve --listen "$addr" --capacity "$capacity" \
		--control "$T/$name.ctl" --tls-psk "$GMC_KEYS"
	eval "${name}_SERVE=$LAST_PID"
	until_true 60 test -S "$T/$name.ctl" || { cat "$T/$name-serve.err"; return 1; }
	bg "$name-agent" nsenter "--net=/run/netns/$ns" "$MSGMC" agent --gmc "$NET.${1#p}.1:$BASE" --tls-psk "$GMC_KEYS" \
		--node "$name" --rswap-control "$T/$name.ctl" --address "$addr" --location "rack1/board$1/$1" --interval 1s -v
	eval "${name}_AGENT=$LAST_PID"
}

# bytes received on interface $2 of namespace $1 (/proc/net is the reader's namespace's)
rx_bytes() { in_ns "$1" awk -v dev="$2:" '$1 == dev {print $2}' /proc/net/dev; }

@test "msgmc in three network namespaces, TLS on every link: the consumer swaps over veth to the provider with the most free memory; controller kill -9, leave and provider death lose nothing" {
	require_host_swap
	require_cgroups
	lab
	# the whole cluster speaks TLS with one key file: controller, agents, NBD exports
	keys "$T/keys.psk" cluster
	GMC_KEYS=$T/keys.psk
	lab_controller
	lab_provider p1 "$NS_P1" 96M
	lab_provider p2 "$NS_P2" 192M
	bg client nsenter "--net=/run/netns/$NS_C1" "$MSRSWAP" client --listen "unix:$T/c.sock" --control "$T/c.ctl" --disk-dir "$T/disks" \
		--ram 8M --fuse "$T/fuse" --stats 500ms
	until_true 60 test -S "$T/c.ctl"
	"$MSRSWAP" attach --host hs1 --size 320M --control "$T/c.ctl" > "$T/attach.jsonl"
	bg c1-agent nsenter "--net=/run/netns/$NS_C1" "$MSGMC" agent --gmc "$GMC" --tls-psk "$GMC_KEYS" --node c1 \
		--client-control "$T/c.ctl" --location rack1/board0/c1 --interval 1s -v
	until_true 60 nodes_ready 3
	# a provider's namespace cannot reach the other's: the data path is the veth
	! in_ns "$NS_P1" bash -c "exec 3<>/dev/tcp/$NET.2.2/10809" 2>/dev/null
	# 128M: p2 has the most free memory
	gmc_cli alloc --node c1 --domain hs1 128M > "$T/lease.jsonl"
	cat "$T/lease.jsonl"
	jq -e --arg a "$NET.2.2:10809" '.provider == "p2" and .attached and .address == $a and (.uri | startswith("nbds://"))' "$T/lease.jsonl"
	lease=$(jq -r .lease "$T/lease.jsonl")
	[ "$(exports_of p2)" = "msgmc-$lease 134217728" ]
	# 64M more: p1 (96M free) now has more than p2 (64M)
	gmc_cli alloc --node c1 --domain hs1 64M | jq_true '.provider == "p1" and .attached'
	rx0=$(rx_bytes "$NS_P2" "$TAG-p2")
	# a 64M cgroup writes 256M of checksummed pages: most go to swap, over the veths
	hog h1 64M 256 10 > "$T/hog.out" &
	hog_pid=$!
	until_true 90 remote_holds 33554432
	# controller kill -9 mid-run: swapping goes on; the restart keeps both leases
	gmc_cli leases | jq -c 'del(.ts, .attached)' | sort > "$T/before"
	kill -9 "$GMC_PID"
	wait "$GMC_PID" 2>/dev/null || true
	sleep 1
	lab_controller gmc2
	gmc_cli leases | jq -c 'del(.ts, .attached)' | sort > "$T/after"
	diff "$T/before" "$T/after"
	until_true 60 nodes_ready 3
	[ "$(leases_on p1)" = "$(exports_of p1)" ]
	[ "$(leases_on p2)" = "$(exports_of p2)" ]
	# leave drains p1 while the workload runs: the device lets go of its export first
	gmc_cli leave --node p1 | jq_true '.event == "released"'
	[ -z "$(exports_of p1)" ]
	# p2 dies (kill -9 of its daemon and agent): the device fails over to disk, the lease is revoked
	kill -9 "$p2_SERVE" "$p2_AGENT"
	wait "$hog_pid"
	cat "$T/hog.out"
	grep -q 'bad_pages=0' "$T/hog.out"
	rx1=$(rx_bytes "$NS_P2" "$TAG-p2" 2>/dev/null || echo 0)
	echo "p2 received $((rx1 - rx0)) bytes over its veth"
	[ $((rx1 - rx0)) -gt 16777216 ]
	jq -s -e 'map(select(.kind == "tier")) | (map(.remote_bytes) | max) > 33554432' "$T/client.out"
	until_true 60 no_leases
	gmc_cli nodes | jq -s -e 'map(select(.node == "p1" or .node == "p2")) | all(.state == "inactive")'
	grep -q '"event":"reclaimed".*"detached":true' "$T/c1-agent.out"
	detach_host_swap hs1 "$T/c.ctl"
}

@test "msgmc serve and agent --metrics: nodes, leases by state, commits and the agent's leases as Prometheus metrics, scraped while allocating" {
	command -v curl >/dev/null || skip "curl is not installed"
	command -v promtool >/dev/null || skip "promtool is not installed (scripts/install-deps installs prometheus)"
	local mport=$((BASE + 9)) aport=$((BASE + 8))
	controller --metrics "127.0.0.1:$mport"
	provider p1 $((BASE + 1)) 64M
	provider p2 $((BASE + 2)) 128M
	consumer --metrics "127.0.0.1:$aport"
	until_true 60 nodes_ready 3
	scrape_gmc() { curl -sf --max-time 10 -o "$T/m.prom" "http://127.0.0.1:$mport/metrics"; }
	until_true 30 scrape_gmc
	local i
	for i in 1 2 3; do
		gmc_cli alloc --node c1 --domain "vm$i" 8M > /dev/null
		scrape_gmc
		promtool check metrics < "$T/m.prom"
	done
	has() { scrape_gmc && grep -qE "$1" "$T/m.prom"; }
	until_true 30 has '^memshare_gmc_leases[{]host="[^"]*"[}] 3$'
	grep -qE '^memshare_gmc_leader[{]host="[^"]*"[}] 1$' "$T/m.prom"
	grep -qE '^memshare_gmc_leases_by_state[{]host="[^"]*",state="[a-z_]+"[}] 3$' "$T/m.prom"
	grep -qE '^memshare_gmc_commits_total[{]host="[^"]*"[}] [1-9]' "$T/m.prom"
	grep -qE '^memshare_node_free_bytes[{]host="[^"]*",node="p2"[}] [0-9]+$' "$T/m.prom"
	grep -qE '^memshare_gmc_leased_bytes[{]host="[^"]*"[}] 25165824$' "$T/m.prom"
	promtool check metrics < "$T/m.prom"
	# the consumer's agent: connected, three leases in use
	agent_has() { curl -sf --max-time 10 -o "$T/a.prom" "http://127.0.0.1:$aport/metrics" && grep -qE "$1" "$T/a.prom"; }
	until_true 30 agent_has '^memshare_agent_leases_used[{]host="[^"]*",node="c1"[}] 3$'
	grep -qE '^memshare_agent_controller_connected[{]host="[^"]*",node="c1"[}] 1$' "$T/a.prom"
	promtool check metrics < "$T/a.prom"
}

# ---- leases by one-sided RDMA (libfabric) ---------------------------------

# fabric_consumer NAME [AGENT ARGS]: a client daemon with a 16 MiB device "vm"
# (1 MiB of host RAM, the rest for remotes) and its agent, TLS to the controller
fabric_consumer() {
	local name=$1
	shift
	bg "$name-client" "$MSRSWAP" client --listen "unix:$T/$name.sock" --control "$T/$name.ctl" --ram 1M \
		--disk-dir "$T/$name-disks"
	wait_socket "$T/$name.ctl"
	printf '{"cmd":"device-add","name":"vm","size":16777216,"target":16777216,"remotes":[]}\n' |
		socat -t 60 - "UNIX-CONNECT:$T/$name.ctl" | jq_true .ok
	bg "$name-agent" "$MSGMC" agent --gmc "$GMC" --tls-psk "$GMC_KEYS" --node "$name" --client-control "$T/$name.ctl" \
		--interval 1s -v "$@"
}

@test "msgmc agent --fabric: a lease is used by one-sided RDMA where both ends have --fabric, by NBD where the consumer has not; data exact" {
	command -v nbdcopy >/dev/null && command -v socat >/dev/null || skip "needs nbdcopy (libnbd-bin) and socat"
	"$MSRSWAP" serve --fabric --listen "unix:$T/probe.sock" --control "$T/probe.ctl" --capacity 8M 2>"$T/probe.log" &
	probe=$!
	wait_socket "$T/probe.ctl" || skip "msrswap serve --fabric cannot run here: $(cat "$T/probe.log")"
	kill "$probe"
	wait "$probe" || true
	keys "$T/keys.psk" alice
	GMC_KEYS=$T/keys.psk
	controller --tls-psk "$GMC_KEYS"
	# the provider: serve --fabric (keys only over TLS) and an agent that offers fabric:// leases
	local port=$((BASE + 1))
	bg p1-serve "$MSRSWAP" serve --fabric --listen "127.0.0.1:$port" --capacity 64M --control "$T/p1.ctl" --tls-psk "$GMC_KEYS"
	wait_socket "$T/p1.ctl"
	bg p1-agent "$MSGMC" agent --gmc "$GMC" --tls-psk "$GMC_KEYS" --node p1 --rswap-control "$T/p1.ctl" \
		--address "127.0.0.1:$port" --interval 1s --fabric -v
	fabric_consumer c1 --fabric
	fabric_consumer c2
	until_true 60 nodes_ready 3
	# c1 has --fabric: its client daemon reaches the export by fi_read/fi_write
	gmc_cli alloc --node c1 --domain vm 16M | tee "$T/lease1.jsonl"
	jq_true '.attached and .provider == "p1" and (.fabric_uri | startswith("fabric://127.0.0.1:'"$port"'/msgmc-")) and (.uri | startswith("nbds://"))' <"$T/lease1.jsonl"
	lease1=$(jq -r .lease "$T/lease1.jsonl")
	grep '"event":"granted"' "$T/c1-agent.out" | jq_true '.attached and (.fabric_uri | startswith("fabric://"))'
	# c2 has not: the same kind of lease, used by NBD
	gmc_cli alloc --node c2 --domain vm 16M | tee "$T/lease2.jsonl"
	jq_true '.attached and (.fabric_uri | startswith("fabric://"))' <"$T/lease2.jsonl"
	lease2=$(jq -r .lease "$T/lease2.jsonl")
	grep '"event":"granted"' "$T/c2-agent.out" | jq_true '.attached and (has("fabric_uri") | not)'
	# 16 MiB of random data through each device: 1 MiB in host RAM, the rest on the lease
	head -c 16M /dev/urandom >"$T/in1.img"
	head -c 16M /dev/urandom >"$T/in2.img"
	nbdcopy "$T/in1.img" "nbd+unix:///vm?socket=$T/c1.sock"
	nbdcopy "$T/in2.img" "nbd+unix:///vm?socket=$T/c2.sock"
	nbdcopy "nbd+unix:///vm?socket=$T/c1.sock" "$T/out1.img"
	nbdcopy "nbd+unix:///vm?socket=$T/c2.sock" "$T/out2.img"
	cmp "$T/in1.img" "$T/out1.img"
	cmp "$T/in2.img" "$T/out2.img"
	for c in c1 c2; do
		"$MSRSWAP" status --control "$T/$c.ctl" | tee /dev/stderr |
			jq_true -s 'map(select(.kind == "tier" and .domain == "vm"))[0] | .remote_bytes >= 8388608 and .remotes_alive == 1'
	done
	# one-sided: p1's NBD server saw none of c1's writes, all of c2's
	"$MSRSWAP" export list --control "$T/p1.ctl" | tee /dev/stderr |
		jq_true -s --arg e1 "msgmc-$lease1" --arg e2 "msgmc-$lease2" \
			'(map(select(.export == $e1))[0].writes == 0) and (map(select(.export == $e2))[0].write_bytes >= 8388608)'
	# the lease released: c1 lets go of the fabric remote first, its disk copy has every block
	gmc_cli release "$lease1" | jq_true '.event == "released"'
	grep -q "\"event\":\"reclaimed\",\"lease\":$lease1,.*\"detached\":true" "$T/c1-agent.out"
	[ "$(exports_of p1)" = "msgmc-$lease2 16777216" ]
	nbdcopy "nbd+unix:///vm?socket=$T/c1.sock" "$T/out1.img"
	cmp "$T/in1.img" "$T/out1.img"
	"$MSRSWAP" status --control "$T/c1.ctl" | jq_true -s 'map(select(.kind == "tier" and .domain == "vm"))[0] | .remote_bytes == 0'
	rm -f "$T"/*.img
}
