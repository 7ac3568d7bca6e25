# A real 3-member etcd cluster on loopback for the tests of msgmc's etcd
# backend: free random ports, data under a directory of the test's own,
# health awaited with a deadline.  Needs helpers.bash (random_port, until_true, gone).

# Skip (with the reason) when etcd is not installed.
require_etcd() {
	command -v etcd >/dev/null || skip "etcd is not installed (Debian: etcd-server; scripts/install-deps)"
	command -v etcdctl >/dev/null || skip "etcdctl is not installed (Debian: etcd-client; scripts/install-deps)"
}

etcdctl3() { ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" --command-timeout=2s "$@"; }

# Every member answers and the cluster has a leader.
etcd_healthy() { etcdctl3 endpoint health >/dev/null 2>&1 && [ -n "$(etcd_leader)" ]; }

# etcd_start DIR: three members m1..m3 (data in DIR/mN, log DIR/mN.log, pid
# DIR/mN.pid); sets ETCD_ENDPOINTS (HOST:PORT,...) and ETCD_CLIENT_mN.
# Elections are quick (heartbeat 100 ms, election 1 s: etcd's defaults).
etcd_start() {
	local dir=$1 base i cluster="" client peer
	mkdir -p "$dir"
	base=$(random_port 6) || return 1
	for i in 1 2 3; do cluster+="${cluster:+,}m$i=http://127.0.0.1:$((base + 2 * i - 1))"; done
	ETCD_ENDPOINTS=""
	for i in 1 2 3; do
		client=$((base + 2 * i - 2))
		peer=$((base + 2 * i - 1))
		etcd --name "m$i" --data-dir "$dir/m$i" --listen-client-urls "http://127.0.0.1:$client" \
			--advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer" \
			--initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "$cluster" \
			--initial-cluster-state new --initial-cluster-token "memshare-$$-$base" \
			</dev/null >"$dir/m$i.log" 2>&1 3>&- &
		echo $! >"$dir/m$i.pid"
		eval "ETCD_CLIENT_m$i=127.0.0.1:$client"
		ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}127.0.0.1:$client"
	done
	export ETCD_ENDPOINTS
	until_true 60 etcd_healthy || { echo "etcd did not become healthy in 60 s" >&2; tail -n 5 "$dir"/m*.log >&2; return 1; }
}

# The member (m1..m3) that leads now ("" none).
etcd_leader() {
	local i
	for i in 1 2 3; do
		local ep
		eval "ep=\$ETCD_CLIENT_m$i"
		ETCDCTL_API=3 etcdctl --endpoints "$ep" --command-timeout=1s endpoint status -w json 2>/dev/null |
			jq_true '.[0].Status | .header.member_id == .leader' >/dev/null 2>&1 && { echo "m$i"; return 0; }
	done
	echo ""
}

# etcd_stop DIR: stop the members (TERM, then KILL), remove DIR.
etcd_stop() {
	local dir=$1 f pids=()
	for f in "$dir"/m*.pid; do [ -f "$f" ] && pids+=("$(cat "$f")"); done
	if [ ${#pids[@]} -gt 0 ]; then
		kill "${pids[@]}" 2>/dev/null
		until_true 20 gone "${pids[@]}" || { kill -9 "${pids[@]}" 2>/dev/null; until_true 10 gone "${pids[@]}"; }
	fi
	rm -rf "$dir"
}
