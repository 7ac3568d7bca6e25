#!/usr/bin/env bats
# msrswap serve against NBD clients nobody here wrote: nbdinfo, nbdcopy,
# qemu-img, qemu-io; the control socket; hostile clients.
bats_require_minimum_version 1.5.0
load helpers

MIB=1048576

# serve NAME ARGS...: start a provider on a unix socket; sets SOCK, CTL, SERVER_PID
serve() {
	SOCK=$BATS_TEST_TMPDIR/nbd.sock
	CTL=$BATS_TEST_TMPDIR/ctl.sock
	"$MSRSWAP" serve --listen "unix:$SOCK" --control "$CTL" "$@" 2> "$BATS_TEST_TMPDIR/serve.log" &
	SERVER_PID=$!
	wait_started "$SERVER_PID" "$SOCK" "$CTL" && return 0
	cat "$BATS_TEST_TMPDIR/serve.log"
	return 1
}

uri() { echo "nbd+unix:///$1?socket=$SOCK"; }

teardown() {
	[ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	SERVER_PID=
	[ ! -d "$BATS_TEST_TMPDIR/run" ] || stop_daemons "$BATS_TEST_TMPDIR/run" # other daemons' pid files
	true
}

require_clients() {
	command -v nbdinfo >/dev/null || skip "nbdinfo (libnbd-bin) is not installed"
	command -v qemu-img >/dev/null || skip "qemu-img (qemu-utils) is not installed"
}

@test "msrswap: --help, bad usage and a TLS key file without keys" {
	run "$MSRSWAP" --help
	[ "$status" -eq 0 ]
	[[ $output == *"msrswap serve"* ]]
	run "$MSRSWAP"
	[ "$status" -eq 2 ]
	run "$MSRSWAP" serve --export nosize
	[ "$status" -eq 2 ]
	[[ $output == *"--export 'nosize': expected NAME:SIZE"* ]]
	run "$MSRSWAP" serve --capacity 10Q
	[ "$status" -eq 2 ]
	run "$MSRSWAP" serve --tls-psk /dev/null
	[ "$status" -eq 1 ]
	[[ $output == *"--tls-psk: /dev/null: no keys in it"* ]]
	run "$MSRSWAP" serve --listen unix:/tmp/x.sock --control "$BATS_TEST_TMPDIR/c" --capacity 1M --export big:2M
	[ "$status" -eq 2 ]
	[[ $output == *"does not fit"* ]]
	run "$MSRSWAP" status --control "$BATS_TEST_TMPDIR/nothing"
	[ "$status" -eq 1 ]
	[[ $output == *"is the daemon running? control socket"* ]]
}

@test "msrswap: nbdinfo lists and describes the exports" {
	require_clients
	serve --capacity 1G --export slab1:512M --export slab2:256M
	run nbdinfo --list "$(uri '')"
	[ "$status" -eq 0 ]
	[[ $output == *'export="slab1"'*'export-size: 536870912'* ]]
	[[ $output == *'export="slab2"'*'export-size: 268435456'* ]]
	run nbdinfo --json "$(uri slab1)"
	[ "$status" -eq 0 ]
	jq -e '.protocol == "newstyle-fixed" and .exports[0]."export-size" == 536870912 and .exports[0].can_trim
	       and .exports[0].can_zero and .exports[0].can_multi_conn and .exports[0].description == "memshare reservoir slab '"'"'slab1'"'"'"' <<<"$output"
	run nbdinfo "$(uri nosuch)"
	[ "$status" -ne 0 ]
}

@test "msrswap: nbdcopy and qemu-img write and read back 256 MiB of random data bit-exactly" {
	require_clients
	serve --capacity 768M --export a:256M --export b:256M
	head -c 256M /dev/urandom > "$BATS_TEST_TMPDIR/in.img"
	nbdcopy "$BATS_TEST_TMPDIR/in.img" "$(uri a)"
	nbdcopy "$(uri a)" "$BATS_TEST_TMPDIR/out.img"
	cmp "$BATS_TEST_TMPDIR/in.img" "$BATS_TEST_TMPDIR/out.img"
	qemu-img convert -n -f raw -O raw "$BATS_TEST_TMPDIR/in.img" "$(uri b)"
	qemu-img convert -f raw -O raw "$(uri b)" "$BATS_TEST_TMPDIR/out2.img"
	cmp "$BATS_TEST_TMPDIR/in.img" "$BATS_TEST_TMPDIR/out2.img"
	run qemu-img info "$(uri b)"
	[[ $output == *"virtual size: 256 MiB"* ]]
	"$MSRSWAP" status --control "$CTL" | jq_true 'select(.kind == "pool_stats") | .used_bytes == 536870912'
	rm -f "$BATS_TEST_TMPDIR"/*.img
}

@test "msrswap: qemu-io random writes with patterns read back; discard and write-zeroes read as zeros and free memory" {
	require_clients
	serve --capacity 256M --export s:64M --export t:64M
	cmds=()
	for i in $(seq 1 150); do
		off=$(( (RANDOM * 32768 + RANDOM) % (63 * 1024) * 1024 ))
		len=$(( (RANDOM % 64 + 1) * 512 ))
		pat=$(( RANDOM % 254 + 1 ))
		cmds+=(-c "write -P $pat $off $len" -c "read -P $pat $off $len")
	done
	run qemu-io -f raw "${cmds[@]}" "$(uri s)"
	[ "$status" -eq 0 ]
	[[ $output != *"Pattern verification failed"* ]]
	[[ $output != *"failed"* ]]
	run qemu-io -f raw -c "write -P 7 0 16M" -c "discard 0 8M" -c "read -P 0 0 8M" -c "read -P 7 8M 8M" \
		-c "write -z 8M 4M" -c "read -P 0 8M 4M" "$(uri t)"
	[ "$status" -eq 0 ]
	[[ $output != *"failed"* ]]
	used=$("$MSRSWAP" status --control "$CTL" | jq 'select(.export == "t") | .used_bytes')
	echo "used after 16M written, 8M discarded, 4M zeroed: $used"
	[ "$used" -eq $((4 * MIB)) ]
}

@test "msrswap: exports are added and removed at run time; capacity is never over-committed" {
	require_clients
	serve --capacity 100M --export first:60M
	run "$MSRSWAP" export add --control "$CTL" second 40M
	[ "$status" -eq 0 ]
	run "$MSRSWAP" export add --control "$CTL" third 4M
	[ "$status" -eq 2 ]
	[[ $output == *"does not fit"* ]]
	run "$MSRSWAP" export add --control "$CTL" second 4M
	[ "$status" -eq 2 ]
	[[ $output == *"exists already"* ]]
	run "$MSRSWAP" export add --control "$CTL" "bad/name" 4M
	[ "$status" -eq 2 ]
	nbdinfo "$(uri second)" | grep -q "export-size: 41943040"
	run "$MSRSWAP" export list --control "$CTL"
	[ "$(jq -r 'select(.kind == "export_stats") | .export' <<<"$output" | tr '\n' ' ')" = "first second " ]
	run "$MSRSWAP" export rm --control "$CTL" first
	[ "$status" -eq 0 ]
	run nbdinfo "$(uri first)"
	[ "$status" -ne 0 ]
	run "$MSRSWAP" export add --control "$CTL" third 60M
	[ "$status" -eq 0 ]
	run "$MSRSWAP" export rm --control "$CTL" nosuch
	[ "$status" -eq 2 ]
}

@test "msrswap: hostile clients are dropped without disturbing others" {
	require_clients
	serve --capacity 64M --export s:16M
	# garbage instead of the handshake, a wrong option magic, a huge option, a bad request magic
	head -c 4096 /dev/urandom | socat -u - "UNIX-CONNECT:$SOCK" || true
	printf '\x00\x00\x00\x03XXXXXXXX\x00\x00\x00\x07\x00\x00\x00\x00' | socat - "UNIX-CONNECT:$SOCK" >/dev/null || true
	printf '\x00\x00\x00\x03IHAVEOPT\x00\x00\x00\x07\x7f\xff\xff\xff' | socat - "UNIX-CONNECT:$SOCK" >/dev/null || true
	printf '\x00\x00\x00\x03IHAVEOPT\x00\x00\x00\x01\x00\x00\x00\x01s\xde\xad\xbe\xef' | socat - "UNIX-CONNECT:$SOCK" >/dev/null || true
	# a client that stays silent keeps its connection without blocking anyone
	socat -u "EXEC:sleep 5" "UNIX-CONNECT:$SOCK" &
	local silent=$!
	run qemu-io -f raw -c "write -P 9 0 1M" -c "read -P 9 0 1M" "$(uri s)"
	[ "$status" -eq 0 ]
	[[ $output != *"failed"* ]]
	kill "$silent" 2>/dev/null || true
	kill -0 "$SERVER_PID"
}

@test "msrswap: --latency delays every request; --dedup stores identical blocks once" {
	require_clients
	serve --capacity 256M --export s:64M --latency 2ms --dedup
	cmds=()
	for i in $(seq 1 100); do cmds+=(-c "read 0 4k"); done
	start=$(date +%s%N)
	qemu-io -f raw "${cmds[@]}" "$(uri s)" >/dev/null
	elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
	echo "100 reads with 2 ms of latency each: $elapsed_ms ms"
	[ "$elapsed_ms" -ge 200 ]
	run qemu-io -f raw -c "write -P 42 0 32M" -c "read -P 42 0 32M" "$(uri s)"
	[[ $output != *"failed"* ]]
	stats=$("$MSRSWAP" status --control "$CTL" | jq -c 'select(.kind == "pool_stats")')
	echo "$stats"
	jq -e '.logical_bytes == 33554432 and .used_bytes <= 8192 and .dedup_saved_bytes >= 33546240' <<<"$stats"
	"$MSRSWAP" status --control "$CTL" | jq -s -e 'map(select(.export == "s"))[0].latency_us | keys | any(. == "lt_2048" or . == "lt_4096")'
}

@test "msrswap client: tier targets bound a device's RAM tier; msballoon smart-alloc sets them from tier records" {
	require_clients
	C=$BATS_TEST_TMPDIR
	"$MSRSWAP" client --listen "unix:$C/c.sock" --control "$C/c.ctl" --ram 16M --disk-dir "$C/disks" 2> "$C/client.log" &
	SERVER_PID=$!
	wait_socket "$C/c.ctl"
	for d in vm1 vm2; do
		printf '{"cmd":"device-add","name":"%s","size":67108864,"target":4194304}\n' "$d" | socat - "UNIX-CONNECT:$C/c.ctl" | jq_true .ok
	done
	# vm1 writes 16M: only 4M fit its target, the rest are failed puts that land on disk
	qemu-io -f raw -c "write -P 3 0 16M" -c "read -P 3 0 16M" "nbd+unix:///vm1?socket=$C/c.sock" | grep -v failed >/dev/null
	qemu-io -f raw -c "write -P 4 0 1M" "nbd+unix:///vm2?socket=$C/c.sock" >/dev/null
	run "$MSRSWAP" status --control "$C/c.ctl"
	echo "$output"
	jq -s -e 'map(select(.domain == "vm1"))[0] | .puts_total == 4096 and .puts_succ == 1024 and .tier_used_bytes == 4194304
	          and .disk_bytes == 12582912 and .pool_bytes == 16777216' <<<"$output"
	# the SmarTmem loop: smart-alloc grows the target of the domain with failed puts
	printf '%s\n' "$output" | "$MSBALLOON" plan --policy smart-alloc -P 10% --apply --tier-control "$C/c.ctl" > "$C/plan.jsonl"
	cat "$C/plan.jsonl"
	jq -s -e 'map(select(.domain == "vm1"))[0] | .tier_applied and .tier_bytes > 4194304' "$C/plan.jsonl"
	want=$(jq -s 'map(select(.domain == "vm1"))[0].tier_bytes' "$C/plan.jsonl")
	"$MSRSWAP" status --control "$C/c.ctl" | jq -s -e --argjson w "$want" 'map(select(.domain == "vm1"))[0].tier_target_bytes == $w'
}

@test "msrswap: serves over loopback TCP too" {
	require_clients
	port=$(random_port)
	"$MSRSWAP" serve --listen "127.0.0.1:$port" --control "$BATS_TEST_TMPDIR/t.ctl" --capacity 64M --export a:16M \
		2> "$BATS_TEST_TMPDIR/serve.log" &
	SERVER_PID=$!
	wait_started "$SERVER_PID" "$BATS_TEST_TMPDIR/t.ctl"
	run nbdinfo "nbd://127.0.0.1:$port/a"
	[ "$status" -eq 0 ]
	[[ $output == *"export-size: 16777216"* ]]
	run qemu-io -f raw -c "write -P 5 0 1M" -c "read -P 5 0 1M" "nbd://127.0.0.1:$port/a"
	[ "$status" -eq 0 ]
	[[ $output != *"failed"* ]]
	run "$MSRSWAP" serve --listen "127.0.0.1:$port" --control "$BATS_TEST_TMPDIR/u.ctl" --capacity 64M
	[ "$status" -eq 1 ]
	[[ $output == *"cannot listen on 127.0.0.1:$port"* ]]
}

@test "msrswap: a second daemon on a socket in use is refused; a socket left by a killed one is taken over" {
	serve --capacity 8M --export a:4M
	run "$MSRSWAP" serve --listen "unix:$BATS_TEST_TMPDIR/other.sock" --control "$CTL" --capacity 8M
	[ "$status" -eq 1 ]
	[[ $output == *"another process listens there"* ]]
	# the first one still answers on its socket
	"$MSRSWAP" export list --control "$CTL" | jq_true -s 'map(select(.kind == "export_stats")) | length == 1'
	kill -9 "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null || true
	[ -S "$CTL" ]
	serve --capacity 8M # (the stale socket files exist already: wait for the new daemon's answer)
	until_true 60 "$MSRSWAP" export list --control "$CTL"
	"$MSRSWAP" export list --control "$CTL" | jq -e -s 'map(select(.kind == "export_stats")) | length == 0'
}

@test "msrswap export add, attach: a bad size or a negative operand is refused naming what the user typed" {
	serve --capacity 16M
	run -2 "$MSRSWAP" export add a 8E --control "$CTL"
	[[ $output == *"msrswap: export add: SIZE"*"'8E'"* ]]
	[[ $output != *'"size"'* ]]
	run -2 "$MSRSWAP" export add a 0 --control "$CTL"
	[[ $output == *"msrswap: export add: SIZE '0': must be a positive multiple of 4096"* ]]
	run -2 "$MSRSWAP" export add a 1000 --control "$CTL"
	[[ $output == *"export add: SIZE '1000': must be a positive multiple of 4096"* ]]
	run -2 "$MSRSWAP" export add a -5M --control "$CTL"
	[[ $output == *"'-5M': a negative number is not accepted"* ]]
	# nothing reached the provider
	"$MSRSWAP" export list --control "$CTL" | jq -s -e 'map(select(.kind == "export_stats")) | length == 0'

	C=$BATS_TEST_TMPDIR
	mkdir -p "$C/run"
	"$MSRSWAP" client --listen "unix:$C/c.sock" --control "$C/c.ctl" --ram 4K --disk-dir "$C/disks" 2> "$C/c.log" &
	echo $! > "$C/run/client.pid"
	until_true 10 test -S "$C/c.ctl"
	run -2 "$MSRSWAP" attach --host h1 --size 0 --control "$C/c.ctl"
	[[ $output == *"msrswap: attach: --size '0': must be a positive multiple of 4096"* ]]
	[[ $output != *'"size"'* ]]
	run -2 "$MSRSWAP" attach --host h1 --size 8E --control "$C/c.ctl"
	[[ $output == *"attach: --size"*"'8E'"* ]]
	run -2 "$MSRSWAP" detach -1
	[[ $output == *"'-1': a negative number is not accepted"* ]]
	# no device was made
	[ -z "$("$MSRSWAP" status --control "$C/c.ctl")" ]
}

# serve_on ADDR ARGS...: a provider listening on ADDR (its log in $BATS_TEST_TMPDIR/on.log); sets ON_PID
serve_on() {
	rm -f "$BATS_TEST_TMPDIR/on.ctl"
	mkdir -p "$BATS_TEST_TMPDIR/run"
	"$MSRSWAP" serve --listen "$1" --control "$BATS_TEST_TMPDIR/on.ctl" --capacity 8M "${@:2}" 2> "$BATS_TEST_TMPDIR/on.log" &
	ON_PID=$!
	echo "$ON_PID" > "$BATS_TEST_TMPDIR/run/on.pid"
	until_true 10 test -S "$BATS_TEST_TMPDIR/on.ctl" || { cat "$BATS_TEST_TMPDIR/on.log"; return 1; }
}

stop_on() { kill "$ON_PID"; wait "$ON_PID" || true; rm -f "$BATS_TEST_TMPDIR/run/on.pid"; }

@test "msrswap serve: listening outside loopback without --tls-psk warns once at start" {
	warning="is not a loopback address and there is no --tls-psk"
	for _ in 1 2 3 4 5; do # a port another test holds: try another
		port=$((20000 + RANDOM % 20000))
		serve_on "0.0.0.0:$port" && break
	done
	[ "$(grep -c -- "$warning" "$BATS_TEST_TMPDIR/on.log")" -eq 1 ]
	grep -q -- "--listen 0.0.0.0:$port" "$BATS_TEST_TMPDIR/on.log"
	stop_on
	serve_on "127.0.0.1:$port"
	stop_on
	serve_on "unix:$BATS_TEST_TMPDIR/on.sock"
	stop_on
	! grep -q -- "$warning" "$BATS_TEST_TMPDIR/on.log"
	if command -v psktool >/dev/null; then
		psktool -u alice -p "$BATS_TEST_TMPDIR/keys.psk" >/dev/null
		serve_on ":$port" --tls-psk "$BATS_TEST_TMPDIR/keys.psk"
		stop_on
		! grep -q -- "$warning" "$BATS_TEST_TMPDIR/on.log"
	fi
}
