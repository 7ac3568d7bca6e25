#!/usr/bin/env bats
# msprom: memshare's records as Prometheus metrics (node_exporter's textfile
# collector), checked with promtool; the file is rewritten atomically while a
# live pipeline runs; --tee passes the stream through unchanged.
bats_require_minimum_version 1.5.0
load helpers

MSPROM=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msprom

teardown() {
	local pid
	for pid in ${SERVE_PID:-} ${CLIENT_PID:-}; do kill "$pid" 2>/dev/null && until_true 30 gone "$pid"; done
	stop_workloads
	remove_cgroups
	true
}

# promtool_ok FILE: Prometheus's own checker accepts FILE (skips without promtool).
promtool_ok() {
	command -v promtool >/dev/null || { echo "promtool missing (scripts/install-deps installs prometheus)"; return 1; }
	promtool check metrics < "$1"
}

records() {
	cat <<'JSON'
{"kind":"wss","ts":"2026-12-03T10:00:00.250Z","host":"h1","domain":"vm \"one\"\\x","wss_bytes":104857600,"alloc_bytes":268435456,"max_bytes":536870912,"usrtime":0.5,"scan_cpu_ms":12}
{"kind":"target","ts":"2026-12-03T10:00:01.000Z","host":"h1","domain":"vm1","policy":"ddpg","balloon_bytes":301989888,"bid":-0.25,"hal_overrides":3,"hal_override":true,"reason":"x"}
{"kind":"tier","ts":"2026-12-03T10:00:02.000Z","host":"h1","domain":"dev1","puts_total":10,"puts_succ":7,"gets":4,"tier_used_bytes":28672,"failovers":1,"read_latency_us":250}
{"kind":"sharing","ts":"2026-12-03T10:00:03.000Z","host":"h1","scope":"inter","total_blocks":100,"zero_blocks":5,"total_bytes":409600,"inter_reducible_bytes":8192,"inter_ratio":0.02}
{"kind":"export_stats","ts":"2026-12-03T10:00:03.000Z","host":"h1"}
{"kind":"wss","ts":"2026-12-03T10:00:05.250Z","host":"h1","domain":"vm \"one\"\\x","wss_bytes":209715200}
JSON
}

@test "msprom: each field's last value as a metric in base units, labels escaped, promtool accepts it" {
	run --separate-stderr "$MSPROM" < <(records)
	[ "$status" -eq 0 ]
	echo "$output"
	printf '%s\n' "$output" > "$BATS_TEST_TMPDIR/m.prom"
	promtool_ok "$BATS_TEST_TMPDIR/m.prom"
	# the second wss record replaced the first value; the fields it lacked keep theirs
	grep -qxF 'memshare_wss_bytes{host="h1",domain="vm \"one\"\\x"} 209715200' <<<"$output"
	grep -qxF 'memshare_domain_alloc_bytes{host="h1",domain="vm \"one\"\\x"} 268435456' <<<"$output"
	grep -qxF 'memshare_wss_scan_cpu_seconds{host="h1",domain="vm \"one\"\\x"} 0.012' <<<"$output"
	grep -qxF 'memshare_domain_usrtime_ratio{host="h1",domain="vm \"one\"\\x"} 0.5' <<<"$output"
	grep -qxF 'memshare_target_balloon_bytes{host="h1",domain="vm1",policy="ddpg"} 301989888' <<<"$output"
	grep -qxF 'memshare_target_bid{host="h1",domain="vm1",policy="ddpg"} -0.25' <<<"$output"
	grep -qxF '# TYPE memshare_target_hal_overrides_total counter' <<<"$output"
	grep -qxF 'memshare_tier_puts_succeeded_total{host="h1",domain="dev1"} 7' <<<"$output"
	grep -qxF 'memshare_tier_read_latency_mean_seconds{host="h1",domain="dev1"} 0.00025' <<<"$output"
	grep -qxF 'memshare_sharing_inter_reducible_bytes{host="h1",scope="inter"} 8192' <<<"$output"
	grep -qxF 'memshare_record_timestamp_seconds{kind="wss",host="h1",domain="vm \"one\"\\x"} 1796292005.25' <<<"$output"
	# booleans and strings are not metrics; other kinds are ignored
	! grep -q 'hal_override{\|reason\|export_stats' <<<"$output"
	# every family once, HELP before TYPE before samples
	[ "$(grep -c '^# TYPE memshare_wss_bytes ' <<<"$output")" -eq 1 ]
	# the table msprom(1) documents
	run "$MSPROM" --list-metrics
	[ "$status" -eq 0 ]
	[[ $output == *"memshare_tier_puts_total"*"counter"*"tier.puts_total"* ]]
}

@test "msprom -o FILE --tee: rewritten atomically after each quiet spell of a live pipe; the stream passes unchanged" {
	local fifo=$BATS_TEST_TMPDIR/in prom=$BATS_TEST_TMPDIR/memshare.prom copy=$BATS_TEST_TMPDIR/copy
	mkfifo "$fifo"
	"$MSPROM" -o "$prom" --tee --settle 200ms < "$fifo" > "$copy" 2> "$BATS_TEST_TMPDIR/err" &
	local pid=$!
	exec 7> "$fifo"
	records | head -2 >&7
	until_true 30 grep -q 'memshare_target_balloon_bytes' "$prom"
	grep -qF 'memshare_wss_bytes{host="h1",domain="vm \"one\"\\x"} 104857600' "$prom"
	promtool_ok "$prom"
	# the file keeps its inode only until the next write: a reader never sees half of one
	local inode
	inode=$(stat -c %i "$prom")
	records | tail -n +3 >&7
	echo '{"kind":"wss" oops' >&7
	until_true 30 grep -qF 'memshare_wss_bytes{host="h1",domain="vm \"one\"\\x"} 209715200' "$prom"
	[ "$(stat -c %i "$prom")" != "$inode" ]
	[ "$(stat -c %a "$prom")" = 644 ]
	exec 7>&-
	wait "$pid" || status=$?
	[ "${status:-0}" -eq 2 ] # the bad line
	grep -q '<stdin>:7:.*(record skipped)' "$BATS_TEST_TMPDIR/err"
	# every line, the bad one and the other kinds too, byte for byte
	diff <(records; echo '{"kind":"wss" oops') "$copy"
	[ "$(find "$BATS_TEST_TMPDIR" -name '*.tmp.*' | wc -l)" -eq 0 ]
	promtool_ok "$prom"
}

@test "msprom: bad usage and bad places exit with one line naming them" {
	run --separate-stderr "$MSPROM" --tee < /dev/null
	[ "$status" -eq 2 ]
	[[ $stderr == "msprom: --tee needs -o FILE"* ]]
	run --separate-stderr "$MSPROM" extra < /dev/null
	[ "$status" -eq 2 ]
	[[ $stderr == "msprom: unexpected operand 'extra'"* ]]
	run --separate-stderr "$MSPROM" --settle 0 < /dev/null
	[ "$status" -eq 2 ]
	run --separate-stderr "$MSPROM" -o "$BATS_TEST_TMPDIR/none/m.prom" < <(records)
	[ "$status" -eq 1 ]
	[[ $stderr == "msprom: cannot create $BATS_TEST_TMPDIR/none/m.prom.tmp."*": No such file or directory" ]]
	run --separate-stderr "$MSPROM" --strict < <(echo '{"kind":"wss","domain":"a","wss_bytes":1}'; echo '[1]'; records)
	[ "$status" -eq 2 ]
	[ "$stderr" = "msprom: <stdin>:2: expected a JSON object" ]
	# a line longer than any record: refused, named, the rest still read
	run --separate-stderr "$MSPROM" < <(head -c 1100000 /dev/zero | tr '\0' 'x'; echo; records)
	[ "$status" -eq 2 ]
	[[ $stderr == *"<stdin>:1: line longer than 1048576 bytes (record skipped)"* ]]
	grep -q memshare_wss_bytes <<<"$output"
}

@test "mswss | msprom -o --tee | msballoon plan: the metrics of a real cgroup while the pipeline runs" {
	require_cgroups
	local cg=$CG_BASE/app prom=$BATS_TEST_TMPDIR/memshare.prom
	start_workload "$cg" --touch 16 32
	timeout 120 "$MSWSS" -c cgroup:/// --interval 1s --count 4 "$cg" |
		"$MSPROM" -o "$prom" --tee --settle 200ms |
		"$MSBALLOON" -c cgroup:/// plan --policy wss --host-memory 4G > "$BATS_TEST_TMPDIR/plan.jsonl"
	[ "$(jq -s 'map(select(.kind == "target")) | length' "$BATS_TEST_TMPDIR/plan.jsonl")" -eq 4 ]
	cat "$prom"
	promtool_ok "$prom"
	local wss
	wss=$(awk -v d="$cg" '$1 ~ "^memshare_wss_bytes[{]" && index($1, "domain=\"" d "\"") {print $2}' "$prom")
	[ "$wss" -ge $((8 * 1048576)) ]
	grep -q "^memshare_domain_alloc_bytes{host=\"[^\"]*\",domain=\"$cg\"}" "$prom"
}

@test "msrswap serve --stats | msprom: a real provider's exports and pool as metrics" {
	local sock=$BATS_TEST_TMPDIR/p.sock ctl=$BATS_TEST_TMPDIR/p.ctl prom=$BATS_TEST_TMPDIR/p.prom
	"$MSRSWAP" serve --listen "unix:$sock" --control "$ctl" --capacity 64M --export "vm1:16M" --stats 200ms \
		2> "$BATS_TEST_TMPDIR/serve.log" > >("$MSPROM" -o "$prom" --settle 100ms 2> "$BATS_TEST_TMPDIR/prom.log") &
	SERVE_PID=$!
	wait_socket "$sock" "$ctl"
	# a write and a read through a real NBD client
	head -c 65536 /dev/urandom > "$BATS_TEST_TMPDIR/data"
	nbdcopy "$BATS_TEST_TMPDIR/data" "nbd+unix:///vm1?socket=$sock"
	nbdcopy "nbd+unix:///vm1?socket=$sock" "$BATS_TEST_TMPDIR/back"
	until_true 30 grep -qE '^memshare_export_reads_total[{]host="[^"]*",export="vm1"[}] [1-9]' "$prom"
	grep -qE '^memshare_export_writes_total[{]host="[^"]*",export="vm1"[}] [1-9]' "$prom"
	grep -qE '^memshare_pool_capacity_bytes[{]host="[^"]*"[}] 67108864$' "$prom"
	grep -qE '^memshare_export_used_bytes[{]host="[^"]*",export="vm1"[}] 65536$' "$prom"
	promtool_ok "$prom"
}

@test "msprom: msshare's share records and memnet's share targets" {
	run --separate-stderr "$MSPROM" < <(cat <<'JSON'
{"kind":"share","ts":"2026-12-03T10:00:00Z","host":"h1","domain":"/memshare/a","size_bytes":1048576,"used_bytes":65536,"files":1,"arrivals_per_s":2.5,"departures_per_s":2,"full_s":0.5}
{"kind":"target","ts":"2026-12-03T10:00:01Z","host":"h1","domain":"/memshare/a","policy":"memnet","share_bytes":458752}
JSON
)
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" > "$BATS_TEST_TMPDIR/s.prom"
	promtool_ok "$BATS_TEST_TMPDIR/s.prom"
	grep -qxF 'memshare_share_arrivals_per_second{host="h1",domain="/memshare/a"} 2.5' <<<"$output"
	grep -qxF 'memshare_share_full_seconds{host="h1",domain="/memshare/a"} 0.5' <<<"$output"
	grep -qxF 'memshare_target_share_bytes{host="h1",domain="/memshare/a",policy="memnet"} 458752' <<<"$output"
}

# scrape PORT FILE: GET /metrics from a daemon into FILE; fails unless 200.
scrape() {
	curl -sf --max-time 10 -o "$2" "http://127.0.0.1:$1/metrics"
}

# scrape_has PORT FILE REGEX: a scrape into FILE has a line matching REGEX.
scrape_has() {
	scrape "$1" "$2" && grep -qE "$3" "$2"
}

@test "msrswap serve and client --metrics: Prometheus scrapes them during load; promtool accepts every scrape" {
	command -v curl >/dev/null || skip "curl is not installed"
	local d=$BATS_TEST_TMPDIR pport cport
	pport=$(random_port 2)
	cport=$((pport + 1))
	"$MSRSWAP" serve --listen "unix:$d/p.sock" --control "$d/p.ctl" --capacity 64M --export "vm1:32M" \
		--metrics "127.0.0.1:$pport" 2> "$d/serve.log" &
	SERVE_PID=$!
	"$MSRSWAP" client --listen "unix:$d/c.sock" --control "$d/c.ctl" --ram 1M --disk-dir "$d/disks" \
		--metrics "127.0.0.1:$cport" 2> "$d/client.log" &
	CLIENT_PID=$!
	wait_socket "$d/p.sock" "$d/p.ctl" "$d/c.sock" "$d/c.ctl"
	until_true 30 scrape "$pport" "$d/p.prom"
	# load: writes through a real NBD client while the provider is scraped
	head -c 8M /dev/urandom > "$d/data"
	( for _ in 1 2 3; do nbdcopy "$d/data" "nbd+unix:///vm1?socket=$d/p.sock"; done ) &
	local load=$!
	local n=0
	while ! gone "$load" || [ "$n" -lt 3 ]; do
		scrape "$pport" "$d/p.$n.prom"
		promtool_ok "$d/p.$n.prom"
		n=$((n + 1))
		[ "$n" -lt 200 ] || break
	done
	wait "$load"
	# every byte written is counted within a refresh (1 s) of the copies' end
	until_true 30 scrape_has "$pport" "$d/p.prom" '^memshare_export_written_bytes_total[{]host="[^"]*",export="vm1"[}] 25165824$'
	promtool_ok "$d/p.prom"
	grep -qE '^memshare_pool_capacity_bytes[{]host="[^"]*"[}] 67108864$' "$d/p.prom"
	# the service times as a real histogram: cumulative buckets up to +Inf = _count, a _sum in seconds
	grep -qE '^# TYPE memshare_export_request_duration_seconds histogram$' "$d/p.prom"
	local count inf
	count=$(awk '/^memshare_export_request_duration_seconds_count[{].*export="vm1"/ {print $2}' "$d/p.prom")
	inf=$(awk '/^memshare_export_request_duration_seconds_bucket[{].*export="vm1".*le="[+]Inf"/ {print $2}' "$d/p.prom")
	[ "$count" -gt 0 ]
	[ "$count" = "$inf" ]
	awk '/^memshare_export_request_duration_seconds_bucket[{].*export="vm1"/ { if ($2 < last) bad = 1; last = $2 }
		END { exit bad }' "$d/p.prom"
	grep -qE '^memshare_export_request_duration_seconds_sum[{].*export="vm1".*[}] [0-9.e-]+$' "$d/p.prom"
	# the client's endpoint: a device written through NBD, its requests as a histogram; 404 elsewhere
	printf '{"cmd":"device-add","name":"dev1","size":16777216}\n' | socat - "UNIX-CONNECT:$d/c.ctl" | jq_true .ok
	head -c 1M /dev/urandom > "$d/small"
	nbdcopy "$d/small" "nbd+unix:///dev1?socket=$d/c.sock"
	until_true 30 scrape_has "$cport" "$d/c.prom" \
		'^memshare_tier_request_duration_seconds_count[{]host="[^"]*",domain="dev1"[}] [1-9]'
	grep -qE '^memshare_tier_puts_total[{]host="[^"]*",domain="dev1"[}] 256$' "$d/c.prom"
	promtool_ok "$d/c.prom"
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$cport/")" = 404 ]
	kill "$CLIENT_PID"
	until_true 30 gone "$CLIENT_PID"
}

@test "msrswap --metrics: a port in use or a unix socket is refused at start (one line, non-zero)" {
	local d=$BATS_TEST_TMPDIR port
	port=$(random_port)
	run --separate-stderr "$MSRSWAP" serve --listen "unix:$d/p.sock" --control "$d/p.ctl" --capacity 16M \
		--metrics "unix:$d/m.sock"
	[ "$status" -eq 2 ]
	[[ $stderr == *"--metrics unix:$d/m.sock: Prometheus scrapes over TCP: give HOST:PORT"* ]]
	socat TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr,fork /dev/null &
	local holder=$!
	until_true 30 bash -c "ss -Htln | grep -q ':$port '"
	run --separate-stderr timeout 30 "$MSRSWAP" serve --listen "unix:$d/q.sock" --control "$d/q.ctl" --capacity 16M \
		--metrics "127.0.0.1:$port"
	kill "$holder"
	[ "$status" -eq 1 ]
	[[ $stderr == *"--metrics"* ]]
}
