#!/usr/bin/env bats
# msrswap serve --tls-psk: TLS with pre-shared keys (NBD_OPT_STARTTLS, GnuTLS
# PSK) against clients nobody here wrote: nbdinfo and nbdcopy (libnbd),
# qemu-img and qemu-io (QEMU's tls-creds-psk); the keys come from psktool.
# The tier store of `msrswap client` reaches a TLS provider by an nbds:// URI.
bats_require_minimum_version 1.5.0
load helpers

setup() {
	command -v psktool >/dev/null || skip "psktool (gnutls-bin) is not installed"
	command -v nbdinfo >/dev/null || skip "nbdinfo (libnbd-bin) is not installed"
	KEYS=$BATS_TEST_TMPDIR/keys        # QEMU's tls-creds-psk wants a directory with keys.psk
	mkdir -p "$KEYS" "$BATS_TEST_TMPDIR/wrong"
	psktool -u alice -p "$KEYS/keys.psk" >/dev/null
	psktool -u alice -p "$BATS_TEST_TMPDIR/wrong/keys.psk" >/dev/null # same user, another key
	psktool -u mallory -p "$BATS_TEST_TMPDIR/mallory.psk" >/dev/null  # a user the server does not know
	LOG=$BATS_TEST_TMPDIR/serve.log
}

teardown() {
	local p
	for p in ${PIDS:-}; do kill "$p" 2>/dev/null; done
	for p in ${PIDS:-}; do wait "$p" 2>/dev/null; done
	PIDS=
	true
}

# serve_tls LISTEN ARGS...: a provider with TLS required; sets CTL and SERVER_PID
serve_tls() {
	local listen=$1
	shift
	CTL=$BATS_TEST_TMPDIR/ctl.sock
	"$MSRSWAP" serve --listen "$listen" --control "$CTL" --tls-psk "$KEYS/keys.psk" "$@" 2>>"$LOG" &
	SERVER_PID=$!
	PIDS="${PIDS:-} $SERVER_PID"
	wait_started "$SERVER_PID" "$CTL" && return 0
	cat "$LOG"
	return 1
}

# serve_tls_tcp ARGS...: on a free loopback port; sets PORT
serve_tls_tcp() {
	local i
	for i in 1 2 3 4 5; do
		PORT=$(random_port)
		serve_tls "127.0.0.1:$PORT" "$@" && return 0
		grep -q "cannot listen" "$LOG" || return 1
	done
	return 1
}

tls_uri() { echo "nbds://alice@127.0.0.1:$PORT/$1?tls-psk-file=$KEYS/keys.psk"; }

require_qemu() { command -v qemu-io >/dev/null && command -v qemu-img >/dev/null || skip "qemu-img/qemu-io (qemu-utils) are not installed"; }

# QEMU's options for a TLS export: qemu_tls EXPORT -> sets QOBJ and QIMG
qemu_tls() {
	QOBJ="tls-creds-psk,id=tls0,endpoint=client,dir=$KEYS,username=alice"
	QIMG="driver=nbd,host=127.0.0.1,port=$PORT,export=$1,tls-creds=tls0"
}

@test "msrswap TLS: nbdinfo lists and describes exports over TLS; a plain client is told TLS is required" {
	serve_tls_tcp --capacity 64M --export exp:16M --export other:8M
	run nbdinfo "$(tls_uri exp)"
	[ "$status" -eq 0 ]
	[[ $output == *"newstyle-fixed with TLS"* ]]
	[[ $output == *"export-size: 16777216"* ]]
	run nbdinfo --list "$(tls_uri '')"
	[ "$status" -eq 0 ]
	[[ $output == *'export="exp"'* && $output == *'export="other"'* ]]
	# no TLS: every option is refused with NBD_REP_ERR_TLS_REQD; the server says why in its log
	run env LIBNBD_DEBUG=1 nbdinfo "nbd://127.0.0.1:$PORT/exp"
	[ "$status" -ne 0 ]
	[[ $output == *"TLS is required"* ]]
	run nbdinfo --list "nbd://127.0.0.1:$PORT"
	[ "$status" -ne 0 ]
	until_true 30 grep -q "client refused: TLS is required and the client did not start TLS" "$LOG"
	kill -0 "$SERVER_PID"
}

@test "msrswap TLS: the handshake follows the protocol's FORCEDTLS rules (raw client)" {
	command -v python3 >/dev/null || skip "python3 is not installed"
	serve_tls_tcp --capacity 64M --export exp:16M
	run python3 - "$PORT" <<'EOF'
import socket, struct, sys
port = int(sys.argv[1])
IHAVEOPT = 0x49484156454f5054

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    hello = s.recv(18, socket.MSG_WAITALL)
    assert hello[:8] == b"NBDMAGIC" and hello[8:16] == b"IHAVEOPT", hello
    s.sendall(struct.pack(">I", 3))              # fixed newstyle, no zeroes
    return s

def option(s, opt, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, opt, len(data)) + data)
    head = s.recv(20, socket.MSG_WAITALL)
    magic, ropt, rtype, rlen = struct.unpack(">QIII", head)
    s.recv(rlen, socket.MSG_WAITALL) if rlen else b""
    assert ropt == opt, (ropt, opt)
    return rtype

TLS_REQD, INVALID, ACK = 0x80000005, 0x80000003, 1
s = connect()
# LIST, GO, INFO and options the server does not even know: TLS_REQD before STARTTLS
assert option(s, 3) == TLS_REQD
assert option(s, 7, struct.pack(">I", 3) + b"exp" + struct.pack(">H", 0)) == TLS_REQD
assert option(s, 6, struct.pack(">I", 3) + b"exp" + struct.pack(">H", 0)) == TLS_REQD
assert option(s, 8) == TLS_REQD
assert option(s, 1234) == TLS_REQD
# STARTTLS with data is invalid; ABORT is still answered
assert option(s, 5, b"x") == INVALID
assert option(s, 2) == ACK
s.close()
# EXPORT_NAME cannot be refused: the server closes the connection
s = connect()
s.sendall(struct.pack(">QII", IHAVEOPT, 1, 3) + b"exp")
assert s.recv(100) == b"", "EXPORT_NAME without TLS got an answer"
s.close()
# STARTTLS is acknowledged; then the server waits for a TLS handshake
s = connect()
assert option(s, 5) == ACK
s.sendall(b"not a TLS record at all")
reply = s.recv(100)
assert reply == b"" or reply[0] == 0x15, reply  # a TLS alert or a close, never NBD
s.close()
print("ok")
EOF
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *ok* ]]
	until_true 30 grep -q "client chose an export without starting TLS" "$LOG"
	until_true 30 grep -q "TLS handshake failed" "$LOG"
	nbdinfo --size "$(tls_uri exp)" | grep -qx 16777216
}

@test "msrswap TLS: qemu-img and qemu-io with tls-creds-psk read and write bit-exactly" {
	require_qemu
	serve_tls_tcp --capacity 128M --export a:32M --export b:16M
	qemu_tls a
	head -c 32M /dev/urandom >"$BATS_TEST_TMPDIR/in.img"
	qemu-img convert -n --object "$QOBJ" -f raw "$BATS_TEST_TMPDIR/in.img" --target-image-opts "$QIMG"
	qemu-img convert --object "$QOBJ" --image-opts "$QIMG" -O raw "$BATS_TEST_TMPDIR/out.img"
	cmp "$BATS_TEST_TMPDIR/in.img" "$BATS_TEST_TMPDIR/out.img"
	# and libnbd's copier reads back what QEMU wrote
	nbdcopy "$(tls_uri a)" "$BATS_TEST_TMPDIR/out2.img"
	cmp "$BATS_TEST_TMPDIR/in.img" "$BATS_TEST_TMPDIR/out2.img"
	qemu_tls b
	cmds=()
	for i in $(seq 1 100); do
		off=$(( (RANDOM * 32768 + RANDOM) % (15 * 1024) * 1024 ))
		len=$(( (RANDOM % 64 + 1) * 512 ))
		pat=$(( RANDOM % 254 + 1 ))
		cmds+=(-c "write -P $pat $off $len" -c "read -P $pat $off $len")
	done
	run qemu-io --object "$QOBJ" --image-opts "$QIMG" "${cmds[@]}" -c "discard 0 1M" -c "read -P 0 0 1M"
	[ "$status" -eq 0 ]
	[[ $output != *"failed"* ]]
	[[ $output != *"Pattern verification"* ]]
	"$MSRSWAP" status --control "$CTL" | jq -s -e 'map(select(.export == "a"))[0] | .used_bytes == 33554432'
	rm -f "$BATS_TEST_TMPDIR"/*.img
}

@test "msrswap TLS: a wrong key, an unknown user and a silent client are refused; good clients are served meanwhile" {
	require_qemu
	command -v socat >/dev/null || skip "socat is not installed"
	serve_tls_tcp --capacity 64M --export exp:16M
	# a client that acknowledges STARTTLS and then never starts the handshake: dropped after the timeout.
	# (Its program keeps the connection open and reads until socat ends, so killing socat ends
	# it: a pipeline from a sleep was waited out by the teardown's wait.)
	printf '%s\n' "printf '\\000\\000\\000\\003IHAVEOPT\\000\\000\\000\\005\\000\\000\\000\\000'" 'exec cat 4>&1 >/dev/null' \
		>"$BATS_TEST_TMPDIR/silent.sh"
	socat EXEC:"sh $BATS_TEST_TMPDIR/silent.sh" "TCP:127.0.0.1:$PORT" 3>&- &
	local silent=$!
	PIDS="$PIDS $silent"
	run nbdinfo "nbds://alice@127.0.0.1:$PORT/exp?tls-psk-file=$BATS_TEST_TMPDIR/wrong/keys.psk"
	[ "$status" -ne 0 ]
	run nbdinfo "nbds://mallory@127.0.0.1:$PORT/exp?tls-psk-file=$BATS_TEST_TMPDIR/mallory.psk"
	[ "$status" -ne 0 ]
	run qemu-io --object "tls-creds-psk,id=tls0,endpoint=client,dir=$BATS_TEST_TMPDIR/wrong,username=alice" \
		--image-opts "driver=nbd,host=127.0.0.1,port=$PORT,export=exp,tls-creds=tls0" -c "read 0 4k"
	[ "$status" -ne 0 ]
	# garbage where the TLS handshake should be
	{ printf '\x00\x00\x00\x03IHAVEOPT\x00\x00\x00\x05\x00\x00\x00\x00'; head -c 2048 /dev/urandom; } |
		socat - "TCP:127.0.0.1:$PORT" >/dev/null || true
	# the server still serves a client with the right key, while the silent one waits
	qemu_tls exp
	run qemu-io --object "$QOBJ" --image-opts "$QIMG" -c "write -P 9 0 1M" -c "read -P 9 0 1M"
	[ "$status" -eq 0 ]
	[[ $output != *"failed"* ]]
	cat "$LOG"
	grep -q "client refused: TLS handshake failed: .*wrong key for PSK username 'alice'" "$LOG"
	grep -q "client refused: TLS handshake failed: unknown PSK username 'mallory'" "$LOG"
	# (the server drops it 10 s after it connected)
	until_true 60 grep -q "did not complete it in time" "$LOG"
	grep -q "client refused: TLS handshake failed: the peer did not complete it in time" "$LOG"
	kill -0 "$SERVER_PID"
	"$MSRSWAP" status --control "$CTL" | jq -s -e 'map(select(.export == "exp"))[0] | .writes >= 1'
}

@test "msrswap TLS: on a unix socket too (nbds+unix)" {
	SOCK=$BATS_TEST_TMPDIR/nbd.sock
	serve_tls "unix:$SOCK" --capacity 64M --export s:16M
	uri="nbds+unix://alice@/s?socket=$SOCK&tls-psk-file=$KEYS/keys.psk"
	head -c 16M /dev/urandom >"$BATS_TEST_TMPDIR/in.img"
	nbdcopy "$BATS_TEST_TMPDIR/in.img" "$uri"
	nbdcopy "$uri" "$BATS_TEST_TMPDIR/out.img"
	cmp "$BATS_TEST_TMPDIR/in.img" "$BATS_TEST_TMPDIR/out.img"
	run nbdinfo "nbd+unix:///s?socket=$SOCK"
	[ "$status" -ne 0 ]
	if command -v qemu-io >/dev/null; then
		run qemu-io --object "tls-creds-psk,id=tls0,endpoint=client,dir=$KEYS,username=alice" \
			--image-opts "driver=nbd,server.type=unix,server.path=$SOCK,export=s,tls-creds=tls0" -c "read -P 0 0 0" -c "write -P 3 4k 4k" -c "read -P 3 4k 4k"
		[ "$status" -eq 0 ]
		[[ $output != *"failed"* ]]
	fi
	rm -f "$BATS_TEST_TMPDIR"/*.img
}

@test "msrswap TLS: the client daemon's tier store keeps blocks on a provider reached by an nbds:// URI" {
	require_qemu
	serve_tls_tcp --capacity 64M --export slab:32M
	C=$BATS_TEST_TMPDIR
	"$MSRSWAP" client --listen "unix:$C/c.sock" --control "$C/c.ctl" --ram 1M --disk-dir "$C/disks" 2>"$C/client.log" &
	PIDS="$PIDS $!"
	wait_socket "$C/c.ctl"
	# a wrong key: the device is refused, and the reason names the TLS failure
	reply=$(printf '{"cmd":"device-add","name":"bad","size":16777216,"target":16777216,"remotes":["%s"]}\n' \
		"nbds://alice@127.0.0.1:$PORT/slab?tls-psk-file=$C/wrong/keys.psk" | socat -t 60 - "UNIX-CONNECT:$C/c.ctl")
	echo "$reply"
	jq -e '.ok == false and (.error | test("TLS|tls"))' <<<"$reply"
	# the username as a query parameter (which libnbd before 1.16 ignores, and the tier store does not)
	printf '{"cmd":"device-add","name":"vm1","size":16777216,"target":16777216,"remotes":["%s"]}\n' \
		"nbds://127.0.0.1:$PORT/slab?tls-psk-file=$KEYS/keys.psk&tls-username=alice" | socat -t 60 - "UNIX-CONNECT:$C/c.ctl" | jq_true .ok
	# 8 MiB written: 1 MiB fits the host RAM pool, the rest goes to the remote over TLS
	run qemu-io -f raw -c "write -P 6 0 8M" -c "read -P 6 0 8M" "nbd+unix:///vm1?socket=$C/c.sock"
	[ "$status" -eq 0 ]
	[[ $output != *"failed"* ]]
	"$MSRSWAP" status --control "$C/c.ctl" | tee /dev/stderr |
		jq -s -e 'map(select(.domain == "vm1"))[0] | .remote_bytes >= 6291456 and .remotes_alive == 1'
	"$MSRSWAP" status --control "$CTL" | tee /dev/stderr | jq -s -e 'map(select(.export == "slab"))[0] | .write_bytes >= 6291456'
}

@test "msrswap TLS: --tls-psk checks its key file; without it STARTTLS is refused as before" {
	run "$MSRSWAP" serve --listen "unix:$BATS_TEST_TMPDIR/x.sock" --control "$BATS_TEST_TMPDIR/x.ctl" --tls-psk /dev/null
	[ "$status" -eq 1 ]
	[[ $output == *"--tls-psk: /dev/null: no keys in it"* ]]
	run "$MSRSWAP" serve --listen "unix:$BATS_TEST_TMPDIR/x.sock" --control "$BATS_TEST_TMPDIR/x.ctl" --tls-psk "$BATS_TEST_TMPDIR/nosuch"
	[ "$status" -eq 1 ]
	[[ $output == *"--tls-psk: $BATS_TEST_TMPDIR/nosuch: No such file or directory"* ]]
	printf 'alice:00ff\nbob 1234\n' >"$BATS_TEST_TMPDIR/bad.psk"
	run "$MSRSWAP" serve --listen "unix:$BATS_TEST_TMPDIR/x.sock" --control "$BATS_TEST_TMPDIR/x.ctl" --tls-psk "$BATS_TEST_TMPDIR/bad.psk"
	[ "$status" -eq 1 ]
	[[ $output == *"bad.psk line 2: expected username:hexkey"* ]]
	# a key file others may read: served, with a warning
	chmod 644 "$KEYS/keys.psk"
	SOCK=$BATS_TEST_TMPDIR/nbd.sock
	serve_tls "unix:$SOCK" --capacity 16M --export s:4M
	grep -q "others than its owner may read it" "$LOG"
	kill "$SERVER_PID"; wait "$SERVER_PID" || true
	# no --tls-psk: NBD_OPT_STARTTLS gets NBD_REP_ERR_POLICY, so a client that insists on TLS fails
	"$MSRSWAP" serve --listen "unix:$SOCK" --control "$BATS_TEST_TMPDIR/p.ctl" --capacity 16M --export s:4M 2>>"$LOG" &
	PIDS="$PIDS $!"
	wait_socket "$BATS_TEST_TMPDIR/p.ctl"
	run env LIBNBD_DEBUG=1 nbdinfo "nbds+unix://alice@/s?socket=$SOCK&tls-psk-file=$KEYS/keys.psk"
	[ "$status" -ne 0 ]
	[[ $output == *"TLS is not enabled on this server"* ]]
	nbdinfo --size "nbd+unix:///s?socket=$SOCK" | grep -qx 4194304
}

# serve --fabric: the memory keys travel only over TLS; the tier store reaches
# the export by one-sided RDMA (tcp;ofi_rxm), and a removed export revokes it.
@test "msrswap TLS: serve --fabric gives its keys only over TLS; a fabric:// remote keeps blocks by RDMA; rm revokes it" {
	require_qemu
	"$MSRSWAP" serve --fabric --listen "unix:$BATS_TEST_TMPDIR/probe.sock" --control "$BATS_TEST_TMPDIR/probe.ctl" \
		--capacity 8M 2>"$BATS_TEST_TMPDIR/probe.log" &
	probe=$!
	wait_socket "$BATS_TEST_TMPDIR/probe.ctl" || skip "msrswap serve --fabric cannot run here: $(cat "$BATS_TEST_TMPDIR/probe.log")"
	kill "$probe"
	wait "$probe" || true
	serve_tls_tcp --capacity 64M --export slab:32M --fabric
	C=$BATS_TEST_TMPDIR
	"$MSRSWAP" client --listen "unix:$C/c.sock" --control "$C/c.ctl" --ram 1M --disk-dir "$C/disks" --stats 200ms \
		>"$C/stats.jsonl" 2>"$C/client.log" &
	PIDS="$PIDS $!"
	wait_socket "$C/c.ctl"
	# without TLS the key exchange is refused, like every NBD option
	reply=$(printf '{"cmd":"device-add","name":"plain","size":16777216,"remotes":["%s"]}\n' \
		"fabric://127.0.0.1:$PORT/slab" | socat -t 60 - "UNIX-CONNECT:$C/c.ctl")
	echo "$reply"
	jq -e '.ok == false and (.error | test("TLS"))' <<<"$reply"
	# a wrong key: refused too
	reply=$(printf '{"cmd":"device-add","name":"bad","size":16777216,"remotes":["%s"]}\n' \
		"fabric://alice@127.0.0.1:$PORT/slab?tls-psk-file=$C/wrong/keys.psk" | socat -t 60 - "UNIX-CONNECT:$C/c.ctl")
	jq -e '.ok == false' <<<"$reply"
	# a provider= other than the export's is an error that names both
	reply=$(printf '{"cmd":"device-add","name":"other","size":16777216,"remotes":["%s"]}\n' \
		"fabric://alice@127.0.0.1:$PORT/slab?tls-psk-file=$KEYS/keys.psk&provider=udp;ofi_rxd" | socat -t 60 - "UNIX-CONNECT:$C/c.ctl")
	echo "$reply"
	jq -e '.ok == false and (.error | test("udp;ofi_rxd")) and (.error | test("tcp;ofi_rxm"))' <<<"$reply"
	uri="fabric://alice@127.0.0.1:$PORT/slab?tls-psk-file=$KEYS/keys.psk&provider=tcp;ofi_rxm"
	printf '{"cmd":"device-add","name":"vm1","size":16777216,"target":16777216,"remotes":["%s"]}\n' "$uri" |
		socat -t 60 - "UNIX-CONNECT:$C/c.ctl" | jq_true .ok
	# 8 MiB written: 1 MiB fits the host RAM pool, the rest goes to the remote by fi_write
	run qemu-io -f raw -c "write -P 7 0 8M" -c "read -P 7 0 8M" "nbd+unix:///vm1?socket=$C/c.sock"
	[ "$status" -eq 0 ]
	[[ $output != *"failed"* ]]
	"$MSRSWAP" status --control "$C/c.ctl" | tee /dev/stderr |
		jq -s -e 'map(select(.domain == "vm1"))[0] | .remote_bytes >= 6291456 and .remotes_alive == 1'
	# one-sided: the provider's NBD server saw none of those writes; yet the
	# memory they fill is counted, in the export's and the pool's used_bytes
	"$MSRSWAP" status --control "$CTL" | tee /dev/stderr | jq -s -e 'map(select(.export == "slab"))[0] | .writes == 0
		and .used_bytes >= 6291456 and .used_bytes <= 33554432'
	"$MSRSWAP" status --control "$CTL" | jq -s -e 'map(select(.kind == "pool_stats"))[0] | .used_bytes >= 6291456
		and .fabric == "tcp;ofi_rxm"'
	# the export removed: its registration is closed, the remote fails over to the disk copy
	"$MSRSWAP" export rm slab --control "$CTL"
	run qemu-io -f raw -c "read -P 7 0 8M" "nbd+unix:///vm1?socket=$C/c.sock"
	[ "$status" -eq 0 ]
	[[ $output != *"failed"* ]]
	until_true 30 jq -s -e 'map(select(.kind == "failover")) | length == 1' "$C/stats.jsonl"
	"$MSRSWAP" status --control "$C/c.ctl" | jq -s -e 'map(select(.domain == "vm1"))[0] | .remotes_dead == 1 and .remote_bytes == 0'
}

@test "msrswap serve --fabric: refused without an authenticated channel, with --dedup, or an unknown provider" {
	run "$MSRSWAP" serve --fabric --listen "127.0.0.1:$(random_port)" --control "$BATS_TEST_TMPDIR/c1.ctl" --capacity 8M
	[ "$status" -eq 2 ]
	[[ $output == *"needs --tls-psk"* ]]
	run "$MSRSWAP" serve --fabric --dedup --listen "unix:$BATS_TEST_TMPDIR/s2.sock" --control "$BATS_TEST_TMPDIR/c2.ctl" --capacity 8M
	[ "$status" -eq 2 ]
	[[ $output == *"--dedup"* ]]
	run "$MSRSWAP" serve --fabric no-such-provider --listen "unix:$BATS_TEST_TMPDIR/s3.sock" \
		--control "$BATS_TEST_TMPDIR/c3.ctl" --capacity 8M
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"no-such-provider"* && $output == *"fi_getinfo offers: "*"tcp;ofi_rxm"* ]]
}
