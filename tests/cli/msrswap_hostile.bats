#!/usr/bin/env bats
# msrswap serve against hostile or careless NBD clients (issue 10 §2): raw
# sockets (nbd_hostile.py) that send what libnbd would refuse to send, held
# to what the NBD protocol says and what nbdkit does with the same clients.
bats_require_minimum_version 1.5.0
load helpers

HOSTILE="python3 $BATS_TEST_DIRNAME/nbd_hostile.py"

# serve ARGS...: start a provider on a unix socket; sets SOCK, CTL, SERVER_PID
serve() {
	SOCK=$BATS_TEST_TMPDIR/nbd.sock
	CTL=$BATS_TEST_TMPDIR/ctl.sock
	# SERVE_NOFILE: the server's descriptor limit (ulimit -n)
	# SERVE_MEMLOCK_KIB: its locked-memory limit (ulimit -l); SERVE_WRAP: a command it runs under
	(ulimit -n "${SERVE_NOFILE:-$(ulimit -n)}" && { [ -z "${SERVE_MEMLOCK_KIB:-}" ] || ulimit -l "$SERVE_MEMLOCK_KIB"; } &&
		exec ${SERVE_WRAP:-} "$MSRSWAP" serve -v --listen "unix:$SOCK" --control "$CTL" "$@") \
		2> "$BATS_TEST_TMPDIR/serve.log" &
	SERVER_PID=$!
	until_true 10 test -S "$SOCK" -a -S "$CTL" || { cat "$BATS_TEST_TMPDIR/serve.log"; return 1; }
}

# nbdkit_memory SIZE: nbdkit's memory plugin on a unix socket; sets KIT_SOCK, KIT_PID
nbdkit_memory() {
	command -v nbdkit >/dev/null || skip "nbdkit is not installed"
	KIT_SOCK=$BATS_TEST_TMPDIR/kit.sock
	nbdkit --foreground --unix "$KIT_SOCK" memory "$1" 2> "$BATS_TEST_TMPDIR/nbdkit.log" &
	KIT_PID=$!
	until_true 10 test -S "$KIT_SOCK"
}

teardown() {
	local pid
	for pid in ${HOLDER_PID:-} ${SERVER_PID:-} ${KIT_PID:-}; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	HOLDER_PID= SERVER_PID= KIT_PID=
	true
}

# export_stat NAME FIELD: a counter of `msrswap status` for one export
export_stat() {
	"$MSRSWAP" status --control "$CTL" | jq -r --arg e "$1" "select(.kind == \"export_stats\" and .export == \$e) | .$2"
}

# pool_stat FIELD
pool_stat() {
	"$MSRSWAP" status --control "$CTL" | jq -r "select(.kind == \"pool_stats\") | .$1"
}

# log_count_is N TEXT: serve.log has N lines with TEXT
log_count_is() {
	[ "$(grep -c "$2" "$BATS_TEST_TMPDIR/serve.log")" -eq "$1" ]
}

# cpu_ticks PID: user + system clock ticks the process has used
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# hold N: N negotiated idle connections to export a from a background
# holder; sets HOLDER_PID, HELD (how many the server took)
hold() {
	mkfifo "$BATS_TEST_TMPDIR/holder.in"
	$HOSTILE hold "$SOCK" a "$1" < "$BATS_TEST_TMPDIR/holder.in" > "$BATS_TEST_TMPDIR/holder.out" &
	HOLDER_PID=$!
	exec 7> "$BATS_TEST_TMPDIR/holder.in" # the holder lets go when this closes
	until_true 120 grep -q held "$BATS_TEST_TMPDIR/holder.out"
	HELD=$(awk '{ print $2 }' "$BATS_TEST_TMPDIR/holder.out")
	echo "held $HELD connections"
}

let_go() {
	exec 7>&-
	wait "$HOLDER_PID"
	HOLDER_PID=
}

# idle_for SECONDS: the server used under a tenth of a CPU meanwhile (a spinning accept loop uses all of one)
idle_for() {
	local before after
	before=$(cpu_ticks "$SERVER_PID")
	sleep "$1"
	after=$(cpu_ticks "$SERVER_PID")
	echo "server CPU: $((after - before)) ticks in $1 s"
	[ $((after - before)) -lt $(($1 * $(getconf CLK_TCK) / 10)) ]
}

# --- F1: out of descriptors ---

@test "msrswap hostile: F1 out of descriptors the server logs it once, does not spin, answers its control socket, and recovers" {
	SERVE_NOFILE=64 serve --capacity 64M --export a:1M --max-connections 1000
	hold 100
	[ "$HELD" -gt 30 ]
	[ "$HELD" -lt 64 ]
	# clients beyond the limit are waiting in the backlog now
	run --separate-stderr $HOSTILE cmd "$SOCK" a 0:0:0:4096
	[ "$status" -ne 0 ]
	idle_for 3
	run "$MSRSWAP" status --control "$CTL"
	[ "$status" -eq 0 ]
	[ "$(jq -r 'select(.kind == "pool_stats") | .reserved_bytes' <<<"$output")" -eq 1048576 ]
	cat "$BATS_TEST_TMPDIR/serve.log"
	[ "$(grep -c 'accept: Too many open files' "$BATS_TEST_TMPDIR/serve.log")" -eq 1 ]
	let_go
	run $HOSTILE cmd "$SOCK" a 0:0:0:4096
	[ "$output" = "0" ]
}

@test "msrswap hostile: F1 --max-connections defaults to ulimit -n less 16; beyond it clients wait, the server idles" {
	run "$MSRSWAP" serve --max-connections 0
	[ "$status" -eq 2 ]
	[[ $output == *"--max-connections: '0' is less than 1"* ]]
	run "$MSRSWAP" serve --max-connections lots
	[ "$status" -eq 2 ]
	SERVE_NOFILE=64 serve --capacity 64M --export a:1M
	grep -q 'at most 48 NBD connections' "$BATS_TEST_TMPDIR/serve.log"
	hold 60
	[ "$HELD" -eq 48 ]
	idle_for 3
	run "$MSRSWAP" status --control "$CTL"
	[ "$status" -eq 0 ]
	[ "$(grep -c 'the --max-connections limit' "$BATS_TEST_TMPDIR/serve.log")" -eq 1 ]
	! grep -q 'Too many open files' "$BATS_TEST_TMPDIR/serve.log"
	let_go
	run $HOSTILE cmd "$SOCK" a 0:0:0:4096
	[ "$output" = "0" ]
}

# --- F2: capacity the host cannot back ---

@test "msrswap hostile: F2 a capacity or export beyond MemAvailable + SwapFree is refused unless --overcommit" {
	run timeout 10 "$MSRSWAP" serve --listen "unix:$BATS_TEST_TMPDIR/x.sock" --control "$BATS_TEST_TMPDIR/x.ctl" \
		--capacity 1T --export a:1T
	[ "$status" -eq 2 ]
	[[ $output == *"--capacity 1099511627776 bytes: more than this host can back"*"--overcommit allows it"* ]]
	# with --overcommit it starts, and export add takes what the reservoir has
	serve --capacity 1T --export a:512G --overcommit
	"$MSRSWAP" export add b 256G --control "$CTL"
	[ "$(pool_stat reserved_bytes)" -eq $((768 << 30)) ]
}

# vm_locked_kib PID: the process's locked memory (VmLck), in KiB
vm_locked_kib() {
	awk '$1 == "VmLck:" { print $2 }' "/proc/$1/status"
}

# the pool and the exports of `msrswap status`, without the time stamps
pool_and_exports() {
	"$MSRSWAP" status --control "$CTL" | jq -c 'select(.kind == "pool_stats" or .kind == "export_stats") | del(.ts, .time, .uptime_s)'
}

@test "msrswap hostile: F2 serve --mlock locks an export's memory when it is created, and refuses one it cannot lock then" {
	# without CAP_IPC_LOCK, which would let root lock past ulimit -l
	local drop="setpriv --bounding-set=-ipc_lock --inh-caps=-ipc_lock"
	command -v setpriv >/dev/null && $drop true || skip "setpriv cannot drop CAP_IPC_LOCK here"
	(ulimit -l 8192) 2>/dev/null || skip "ulimit -l 8192 is not allowed here"
	# ASan intercepts mlock and locks nothing: neither VmLck nor RLIMIT_MEMLOCK applies to a sanitized build
	! ldd "$MSRSWAP" 2>/dev/null | grep -q libasan || skip "a sanitized msrswap locks nothing (ASan makes mlock a no-op)"
	local cause="the locked-memory limit (RLIMIT_MEMLOCK, ulimit -l) is 8388608 bytes: raise it, or give msrswap CAP_IPC_LOCK"
	# an --export too big to lock: exit 1 at start, naming the export, the bytes and the cause
	run timeout 10 bash -c 'ulimit -l 8192 && exec $0 "$@"' $drop "$MSRSWAP" serve --mlock \
		--listen "unix:$BATS_TEST_TMPDIR/x.sock" --control "$BATS_TEST_TMPDIR/x.ctl" --capacity 256M --export big:64M
	[ "$status" -eq 1 ]
	[[ $output == *"export 'big' (67108864 bytes): cannot lock "*" bytes of memory to back it (--mlock): "*"$cause"* ]]
	# export add too big: refused with the same message, the pool unchanged
	SERVE_MEMLOCK_KIB=8192 SERVE_WRAP=$drop serve --mlock --capacity 256M --export small:1M
	[ "$(pool_stat locked)" = true ]
	local before locked_before
	before=$(pool_and_exports)
	locked_before=$(vm_locked_kib "$SERVER_PID")
	[ "$locked_before" -ge 2048 ]
	run "$MSRSWAP" export add big 64M --control "$CTL"
	[ "$status" -eq 1 ]
	[[ $output == *"export 'big' (67108864 bytes): cannot lock "*"$cause"* ]]
	[ "$(pool_and_exports)" = "$before" ]
	[ "$(vm_locked_kib "$SERVER_PID")" -eq "$locked_before" ]
	# one that fits: accepted, and locked before any write
	"$MSRSWAP" export add more 2M --control "$CTL"
	[ "$(vm_locked_kib "$SERVER_PID")" -ge $((locked_before + 2048)) ]
	run $HOSTILE cmd "$SOCK" more 1:0:0:4096
	[ "$output" = "0" ]
	# removed: its locked memory goes back
	"$MSRSWAP" export rm more --control "$CTL"
	until_true 10 test "$(vm_locked_kib "$SERVER_PID")" -eq "$locked_before"
}

# --- F4: command flags ---

# READ=0 WRITE=1 FLUSH=3 TRIM=4 WRITE_ZEROES=6; FUA=1 NO_HOLE=2 FAST_ZERO=0x10
INVALID_REQUESTS=(1:0x8000:0:4096 0:2:0:4096 1:2:0:4096 4:2:0:4096 3:0:4096:0 3:0:0:1)
VALID_REQUESTS=(1:1:0:4096 6:2:0:4096 6:1:4096:4096 0:0:0:4096 3:0:0:0 4:1:0:4096)

@test "msrswap hostile: F4 flags a command may not carry and FLUSH with a range are EINVAL, as nbdkit answers" {
	serve --capacity 64M --export a:1M
	run $HOSTILE cmd "$SOCK" a "${INVALID_REQUESTS[@]}" 6:0x10:0:4096
	[ "$status" -eq 0 ]
	[ "$output" = "22 22 22 22 22 22 22" ]
	run $HOSTILE cmd "$SOCK" a "${VALID_REQUESTS[@]}"
	[ "$status" -eq 0 ]
	[ "$output" = "0 0 0 0 0 0" ]
	# the same requests to nbdkit's memory plugin (it advertises FAST_ZERO, so that one is left out)
	nbdkit_memory 1M
	run $HOSTILE cmd "$KIT_SOCK" "" "${INVALID_REQUESTS[@]}"
	[ "$output" = "22 22 22 22 22 22" ]
	run $HOSTILE cmd "$KIT_SOCK" "" "${VALID_REQUESTS[@]}"
	[ "$output" = "0 0 0 0 0 0" ]
}

# --- F3: the handshake deadline ---

@test "msrswap hostile: F3 a client trickling options or bytes is dropped 10 s after it connected, logged once as a timeout" {
	serve --capacity 64M --export a:1M
	$HOSTILE drip "$SOCK" options 3 > "$BATS_TEST_TMPDIR/options.out" &
	local options_pid=$!
	$HOSTILE drip "$SOCK" bytes 0.25 > "$BATS_TEST_TMPDIR/bytes.out" &
	local bytes_pid=$!
	wait "$options_pid" "$bytes_pid"
	local options bytes
	options=$(cat "$BATS_TEST_TMPDIR/options.out")
	bytes=$(cat "$BATS_TEST_TMPDIR/bytes.out")
	echo "options: ${options}s, bytes: ${bytes}s"
	# the deadline is 10 s from accept; a second of slack for a loaded machine
	awk -v t="$options" 'BEGIN { exit !(t >= 9.5 && t < 14) }'
	awk -v t="$bytes" 'BEGIN { exit !(t >= 9.5 && t < 14) }'
	until_true 10 log_count_is 2 'no handshake within 10 s'
	cat "$BATS_TEST_TMPDIR/serve.log"
	! grep -q 'Resource temporarily unavailable' "$BATS_TEST_TMPDIR/serve.log"
	# a client that keeps to its time is served as before
	run $HOSTILE cmd "$SOCK" a 1:0:0:4096
	[ "$output" = "0" ]
}

# --- issue 11: an export removed under a connected client ---

@test "msrswap hostile: export rm frees the export's memory at once; a client still connected gets ESHUTDOWN" {
	serve --capacity 256M --export keep:16M
	"$MSRSWAP" export add gone 64M --control "$CTL"
	mkfifo "$BATS_TEST_TMPDIR/linger.in"
	$HOSTILE linger "$SOCK" gone 8 < "$BATS_TEST_TMPDIR/linger.in" > "$BATS_TEST_TMPDIR/linger.out" &
	HOLDER_PID=$!
	exec 7> "$BATS_TEST_TMPDIR/linger.in"
	until_true 30 grep -q written "$BATS_TEST_TMPDIR/linger.out"
	[ "$(pool_stat reserved_bytes)" -eq $((80 << 20)) ]
	[ "$(pool_stat used_bytes)" -eq $((8 << 20)) ]
	"$MSRSWAP" export rm gone --control "$CTL"
	# at once, with the client still connected: the controller's view and ours agree
	[ "$(pool_stat reserved_bytes)" -eq $((16 << 20)) ]
	[ "$(pool_stat used_bytes)" -eq 0 ]
	kill -0 "$HOLDER_PID"
	echo >&7
	until_true 30 grep -q 'read' "$BATS_TEST_TMPDIR/linger.out"
	grep -qx 'read 108 write 108' "$BATS_TEST_TMPDIR/linger.out"
	exec 7>&-
	wait "$HOLDER_PID"
	HOLDER_PID=
	# the name can be used again, and the memory is there for it
	"$MSRSWAP" export add gone 240M --control "$CTL"
	run $HOSTILE cmd "$SOCK" gone 1:0:0:4096
	[ "$output" = "0" ]
}

# --- structured replies and base:allocation ---

require_clients() {
	command -v nbdinfo >/dev/null || skip "nbdinfo (libnbd-bin) is not installed"
	command -v nbdcopy >/dev/null || skip "nbdcopy (libnbd-bin) is not installed"
	command -v qemu-io >/dev/null || skip "qemu-io (qemu-utils) is not installed"
}

uri() { echo "nbd+unix:///$1?socket=$SOCK"; }

@test "msrswap hostile: structured replies and base:allocation; nbdcopy of 1 GiB holding 8 MiB reads only the data" {
	require_clients
	serve --capacity 2G --export a:1G
	run nbdinfo "$(uri a)"
	[ "$status" -eq 0 ]
	[[ $output == *"using structured packets"* ]]
	[[ $output == *"contexts:"*"base:allocation"* ]]
	[[ $output == *"can_df: true"* ]]
	qemu-io -f raw -c 'write -P 0xaa 0 4M' -c 'write -P 0x55 512M 4M' "$(uri a)" >/dev/null
	run nbdinfo --map "$(uri a)"
	[ "$status" -eq 0 ]
	echo "$output"
	[ "$(awk '{ print $1, $2, $3 }' <<<"$output" | tr '\n' ,)" = "0 4194304 0,4194304 532676608 3,536870912 4194304 0,541065216 532676608 3," ]
	local before after
	before=$(export_stat a read_bytes)
	nbdcopy "$(uri a)" "$BATS_TEST_TMPDIR/copy.img"
	after=$(export_stat a read_bytes)
	echo "nbdcopy of 1 GiB with 8 MiB of data: the server read $((after - before)) bytes"
	[ $((after - before)) -eq $((8 << 20)) ]
	[ "$(stat -c %s "$BATS_TEST_TMPDIR/copy.img")" -eq $((1 << 30)) ]
	cmp -n $((4 << 20)) "$BATS_TEST_TMPDIR/copy.img" <(head -c 4M /dev/zero | tr '\0' '\252')
	cmp -i $((512 << 20)):0 -n $((4 << 20)) "$BATS_TEST_TMPDIR/copy.img" <(head -c 4M /dev/zero | tr '\0' 'U')
	cmp -i $((4 << 20)):0 -n $((508 << 20)) "$BATS_TEST_TMPDIR/copy.img" /dev/zero
	# a read of a hole is answered with one hole chunk: no data counted
	before=$(export_stat a read_bytes)
	qemu-io -f raw -c 'read -P 0 100M 1M' "$(uri a)" >/dev/null
	[ "$(export_stat a read_bytes)" -eq "$before" ]
	# clients that negotiate nothing (the kernel's) still get simple replies, data included
	run $HOSTILE cmd "$SOCK" a 0:0:0:4096 7:0:0:4096
	[ "$output" = "0 22" ]
}

@test "msrswap hostile: structured replies and block status over TLS" {
	require_clients
	command -v psktool >/dev/null || skip "psktool (gnutls-bin) is not installed"
	psktool -u alice -p "$BATS_TEST_TMPDIR/keys.psk" >/dev/null
	serve --capacity 256M --export a:64M --tls-psk "$BATS_TEST_TMPDIR/keys.psk"
	local tls="nbds+unix://alice@/a?socket=$SOCK&tls-psk-file=$BATS_TEST_TMPDIR/keys.psk"
	# QEMU's PSK credentials read DIR/keys.psk
	qemu-io --object "tls-creds-psk,id=tls0,endpoint=client,username=alice,dir=$BATS_TEST_TMPDIR" \
		--image-opts "driver=nbd,path=$SOCK,export=a,tls-creds=tls0" -c 'write -P 0xaa 1M 1M' >/dev/null
	run nbdinfo "$tls"
	[[ $output == *"TLS, using structured packets"* ]]
	run nbdinfo --map "$tls"
	[ "$status" -eq 0 ]
	[ "$(awk '{ print $1, $2, $3 }' <<<"$output" | tr '\n' ,)" = "0 1048576 3,1048576 1048576 0,2097152 65011712 3," ]
	nbdcopy "$tls" "$BATS_TEST_TMPDIR/copy.img"
	[ "$(stat -c %s "$BATS_TEST_TMPDIR/copy.img")" -eq $((64 << 20)) ]
}
