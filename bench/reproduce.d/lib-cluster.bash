# bench/reproduce.d/lib-cluster.bash — what the remote-swap and vmca cases
# share beyond lib.bash: memory cgroups standing for VMs, a workload timed in
# one, msrswap daemons (client tier stores, serve reservoirs) and network
# namespaces standing for hosts, all removed on exit.  Sourced after lib.bash:
#
#   RP_CASE=remote-swap
#   . "$(dirname "$0")/lib.bash"
#   . "$(dirname "$0")/lib-cluster.bash"
#   rc_setup                        # RC_TMP, RC_MEMROOT, RC_CG, the exit trap
#   rc_bg NAME CMD...               # a daemon, output in RC_TMP/NAME.{out,err}
#   rc_run_usemem CG LIMIT MIB SECS # sets RC_SECONDS (mean pass), RC_SWAP_PEAK
#
# With --domain lab a "VM" is a lab guest instead (tests/lab/lab, TCG), with
# a swap disk of its own (lib.bash's rp_guest_swap_file / rc_guest_swap_tier) and the
# same workload run inside it (rc_guest_usemem: the same RC_SECONDS...).
#
# The machine is shared: every name carries the case's pid, swap devices are
# the ones whose backing file is under RC_TMP, and nothing global is changed
# but what is undone on exit.

RC_PIDS=() RC_NETNS=() RC_LINKS=() RC_SAMPLER=''

rc_setup() {
	[ "$(id -u)" = 0 ] || rp_die "needs root (cgroups, FUSE, loop devices, swapon)"
	[ -x "$MSRSWAP" ] || rp_die "run 'make' first ($MSRSWAP is needed)"
	RC_USEMEM=$RP_ROOT/build/workload/usemem
	[ -x "$RC_USEMEM" ] || rp_die "run 'make test-programs' first ($RC_USEMEM is needed)"
	local c
	for c in jq socat; do command -v $c >/dev/null || rp_die "needs $c (Debian: apt-get install $c)"; done
	[ -c /dev/fuse ] || rp_die "no /dev/fuse"
	[ -c /dev/loop-control ] || rp_die "no loop devices (/dev/loop-control)"
	RC_MEMROOT=$(memory_root)
	[ -n "$RC_MEMROOT" ] || rp_die "no cgroup memory controller mounted"
	MEMROOT=$RC_MEMROOT # cgroup_limit (helpers.bash) reads it
	# short: unix socket paths are limited to 108 bytes
	RC_TMP=$(mktemp -d "/tmp/rp-$RP_CASE.XXXXXX")
	RC_CG=/memshare-rp-$RP_CASE-$$
	mkdir -p "$RC_MEMROOT$RC_CG"
	rp_say "working in $RC_TMP, cgroups under $RC_MEMROOT$RC_CG"
	trap rc_cleanup EXIT
	trap 'rp_say interrupted; exit 130' INT
	trap 'exit 143' TERM HUP
	# a reader gone away (bench ... | head) must not skip the cleanup
	trap 'exit 141' PIPE
	if [ "$(cat /sys/module/zswap/parameters/enabled 2>/dev/null || echo N)" = Y ]; then
		rp_say "warning: zswap is on: swapped pages may stay compressed in RAM instead of reaching the device"
	fi
}

# rc_bg NAME CMD...: CMD in the background, stopped on exit; sets RC_LAST_PID.
# With RC_IN_NS set, CMD runs in that network namespace only (mounts, cgroups
# and swap stay the host's); nsenter becomes CMD, so the pid is CMD's.  With
# RC_IN_CG set (a cgroup under RC_CG/daemons, made by rc_daemon_cgroup), it
# runs in that memory cgroup from its start.
rc_bg() {
	local name=$1
	shift
	[ -n "${RC_IN_CG:-}" ] && set -- sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$RC_MEMROOT$RC_IN_CG" "$@"
	${RC_IN_NS:+nsenter "--net=/run/netns/$RC_IN_NS"} "$@" </dev/null >>"$RC_TMP/$name.out" 2>>"$RC_TMP/$name.err" &
	RC_LAST_PID=$!
	RC_PIDS+=("$RC_LAST_PID")
}

rc_stop() { # PID: TERM, wait for it (KILL after 30 s)
	local t0=$SECONDS what
	what=$({ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | head -c 100) || true
	kill "$1" 2>/dev/null && { until_true 30 gone "$1" >/dev/null || kill -KILL "$1" 2>/dev/null; }
	[ $((SECONDS - t0)) -lt 5 ] || rp_say "process $1 ($what) took $((SECONDS - t0)) s to stop"
	wait "$1" 2>/dev/null || true
	return 0
}

# rc_stop_all PID...: TERM to all at once, one 30 s deadline for all, then
# KILL: a daemon slow to exit (a tier store finishing its disk copy) does
# not make the others wait in turn
rc_stop_all() {
	local t0=$SECONDS p alive=()
	[ $# -gt 0 ] || return 0
	kill "$@" 2>/dev/null
	until_true 30 gone "$@" >/dev/null || true
	for p; do gone "$p" || alive+=("$p"); done
	if [ ${#alive[@]} -gt 0 ]; then
		for p in "${alive[@]}"; do
			rp_say "process $p ($({ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | head -c 100)) did not stop in 30 s: killed"
		done
		kill -KILL "${alive[@]}" 2>/dev/null
	fi
	for p; do wait "$p" 2>/dev/null || true; done
	[ $((SECONDS - t0)) -lt 5 ] || rp_say "the daemons took $((SECONDS - t0)) s to stop"
	return 0
}

# Swap devices of ours: swap files under RC_TMP, loop devices backed by one.
rc_our_swaps() {
	local dev
	for dev in $(awk 'NR > 1 {print $1}' /proc/swaps); do
		if [[ $dev == "$RC_TMP"/* ]] || [[ $(cat "/sys/block/${dev#/dev/}/loop/backing_file" 2>/dev/null) == "$RC_TMP"/* ]]; then
			echo "$dev"
		fi
	done
	return 0
}

# the workloads' processes (the daemons' cgroups, under daemons/, are not theirs)
rc_cgroup_procs() {
	local f
	for f in "$RC_MEMROOT$RC_CG"/*/cgroup.procs; do [[ $f == */daemons/* ]] || cat "$f" 2>/dev/null; done
	return 0
}

# rc_daemon_cgroup NAME LIMIT: a memory cgroup RC_CG/daemons/NAME for a daemon
# (rc_bg with RC_IN_CG), echoed.  A tier store's disk file is written through
# the page cache: bounded by LIMIT, its blocks reach the disk, as a Tmem
# host's swap did, instead of staying in this host's spare RAM.
rc_daemon_cgroup() {
	local cg=$RC_CG/daemons/$1
	mkdir -p "$RC_MEMROOT$cg"
	cgroup_limit "$cg" "$2" || rp_die "cannot limit cgroup $cg"
	echo "$cg"
}
rc_cgroups_empty() { [ -z "$(rc_cgroup_procs)" ]; }

rc_cleanup() {
	local t0=$SECONDS
	set +e
	trap '' INT TERM HUP
	[ -n "$RC_SAMPLER" ] && rc_stop "$RC_SAMPLER"
	local pid dev ns m
	for pid in $(rc_cgroup_procs); do kill -KILL "$pid" 2>/dev/null; done
	until_true 30 rc_cgroups_empty >/dev/null || rp_say "warning: processes left in $RC_MEMROOT$RC_CG"
	# swap first: its pages come back while the daemons still serve them
	for dev in $(rc_our_swaps); do until_true 120 swapoff "$dev" >/dev/null || rp_say "warning: cannot swapoff $dev"; done
	# the guests before the daemons their disks are served by
	rp_guests_stop
	rc_stop_all "${RC_PIDS[@]}"
	for m in "$RC_TMP"/*/fuse; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
	for ns in "${RC_NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
	# a veth left in the root namespace (its peer's namespace is gone with it, or was never made)
	for m in "${RC_LINKS[@]}"; do ip link del "$m" 2>/dev/null; done
	[ -d "$RC_MEMROOT$RC_CG" ] && until_true 30 find "$RC_MEMROOT$RC_CG" -depth -type d -exec rmdir {} + >/dev/null
	rm -rf "$RC_TMP"
	[ $((SECONDS - t0)) -lt 10 ] || rp_say "cleanup took $((SECONDS - t0)) s"
}

# ---- cgroups: a "VM" is a memory cgroup whose workload swaps

rc_cg_file() { if [ -f "$RC_MEMROOT$1/$2" ]; then echo "$RC_MEMROOT$1/$2"; else echo "$RC_MEMROOT$1/$3"; fi; }
rc_cg_peak() { cat "$(rc_cg_file "$1" memory.peak memory.max_usage_in_bytes)"; }
rc_cg_swap_now() {
	if [ -f "$RC_MEMROOT$1/memory.swap.current" ]; then cat "$RC_MEMROOT$1/memory.swap.current"
	else awk '$1 == "swap" {print $2; f = 1} END {if (!f) print 0}' "$RC_MEMROOT$1/memory.stat"; fi
}
# rc_cg_sampler CGROUP FILE: the cgroup's largest swap use so far, into FILE every 0.2 s
rc_cg_sampler() {
	local max=0 now
	while :; do
		now=$(rc_cg_swap_now "$1" 2>/dev/null) || break
		[ "${now:-0}" -gt "$max" ] && { max=$now; echo "$max" >"$2.new" && mv "$2.new" "$2"; }
		sleep 0.2
	done
}

# rc_run_usemem_retry CGROUP ...: rc_run_usemem, run again (up to 2 more
# times) when the cgroup's OOM killer ended it, a fact of the run that
# RC_OOMS counts (and the tables show), not a result.  usemem runs with
# --madv-random (no swap readahead): without it, a limit 10 % under the
# footprint had 8 of 25 runs killed beside four CPU hogs, with it none.
rc_run_usemem_retry() {
	local try cg=$1
	shift
	RC_OOMS=0
	for try in 1 2 3; do
		rc_run_usemem "$cg-$try" "$@"
		[ "$RC_SECONDS" = oom ] || return 0
		RC_OOMS=$((RC_OOMS + 1))
	done
}

# rc_run_usemem CGROUP LIMIT MIB SECONDS [USEMEM OPTION...]: usemem MIB
# (every page read and written once per pass, as fast as it can,
# --madv-random) in a fresh cgroup with memory limit LIMIT ("max": none) for
# SECONDS.  Sets RC_SECONDS
# (its mean pass time; "oom" when the cgroup's OOM killer ended it),
# RC_SWAP_PEAK (bytes) and RC_PEAK (the cgroup's peak memory use).
rc_run_usemem() {
	local name=$1 cg=$RC_CG/$1 limit=$2 mib=$3 secs=$4 rc=0 pid
	shift 4
	mkdir -p "$RC_MEMROOT$cg"
	# swapped pages are to reach the device, not zswap's compressed RAM
	[ -f "$RC_MEMROOT$cg/memory.zswap.max" ] && echo 0 >"$RC_MEMROOT$cg/memory.zswap.max"
	[ "$limit" = max ] || cgroup_limit "$cg" "$limit" || rp_die "cannot limit cgroup $cg to $limit"
	rm -f "$RC_TMP/$name.swap.peak"
	rc_cg_sampler "$cg" "$RC_TMP/$name.swap.peak" &
	RC_SAMPLER=$!
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' sh "$RC_MEMROOT$cg" \
		"$RC_USEMEM" --madv-random --pass 0 --duration "$secs" "$@" "$mib" >/dev/null 2>"$RC_TMP/$name.usemem.err" &
	pid=$!
	wait "$pid" || rc=$?
	rc_stop "$RC_SAMPLER"
	RC_SAMPLER=''
	RC_SWAP_PEAK=$(cat "$RC_TMP/$name.swap.peak" 2>/dev/null || echo 0)
	RC_PEAK=$(rc_cg_peak "$cg")
	until_true 30 rmdir "$RC_MEMROOT$cg" >/dev/null || rp_say "warning: cgroup $cg not removed yet"
	if [ "$rc" = 137 ]; then
		rp_say "usemem in $cg was killed (the cgroup's OOM killer): recorded as oom"
		RC_SECONDS=oom
		return 0
	fi
	[ "$rc" = 0 ] || rp_die "usemem failed (exit status $rc): $(cat "$RC_TMP/$name.usemem.err")"
	RC_SECONDS=$(sed -n 's/.*mean_pass_ms=\([0-9.]*\).*/\1/p' "$RC_TMP/$name.usemem.err" | awk '{printf "%.4f", $1 / 1000}')
	[ -n "$RC_SECONDS" ] || rp_die "usemem reported no pass time: $(cat "$RC_TMP/$name.usemem.err")"
}

# ---- msrswap daemons

# rc_client NAME [OPTION...]: an msrswap client tier store with FUSE exports
# in RC_TMP/NAME/ (control socket RC_TMP/NAME/c.ctl, tier records every
# 500 ms in RC_TMP/NAME.out); the OPTIONs go to msrswap client (--ram ...).
rc_client() {
	local name=$1 d=$RC_TMP/$1
	shift
	mkdir -p "$d"
	rc_bg "$name" "$MSRSWAP" client -q \
		--listen "unix:$d/c.sock" --control "$d/c.ctl" --disk-dir "$d/disks" --fuse "$d/fuse" --stats 500ms "$@"
	wait_started "$RC_LAST_PID" "$d/c.ctl" || rp_die "msrswap client $name did not start: $(head -c 400 "$RC_TMP/$name.err")"
}

# rc_serve NAME LISTEN CAPACITY [OPTION...]: an msrswap serve reservoir
# (control socket RC_TMP/NAME.ctl); LISTEN is unix:PATH or HOST:PORT.
rc_serve() {
	local name=$1 listen=$2 capacity=$3 sock=()
	shift 3
	[[ $listen == unix:* ]] && sock=("${listen#unix:}")
	rc_bg "$name" "$MSRSWAP" serve -q --listen "$listen" \
		--control "$RC_TMP/$name.ctl" --capacity "$capacity" "$@"
	wait_started "$RC_LAST_PID" "$RC_TMP/$name.ctl" "${sock[@]}" ||
		rp_die "msrswap serve $name did not start: $(head -c 400 "$RC_TMP/$name.err")"
}

# rc_serve_tcp NAME CAPACITY [OPTION...]: rc_serve on a random loopback port
# (another may take it first: retried on others); sets RC_PORT
rc_serve_tcp() {
	local name=$1 capacity=$2 try
	shift 2
	for try in 1 2 3 4 5; do
		RC_PORT=$(random_port) || rp_die "no free port"
		rc_bg "$name" "$MSRSWAP" serve -q --listen "127.0.0.1:$RC_PORT" --control "$RC_TMP/$name.ctl" \
			--capacity "$capacity" "$@"
		if wait_started "$RC_LAST_PID" "$RC_TMP/$name.ctl" 2>/dev/null &&
			until_true 10 socat -u /dev/null "TCP:127.0.0.1:$RC_PORT" && ! gone "$RC_LAST_PID"; then
			return 0
		fi
		rc_stop "$RC_LAST_PID"
		rm -f "$RC_TMP/$name.ctl"
	done
	rp_die "msrswap serve $name could not listen on a loopback port: $(tail -c 400 "$RC_TMP/$name.err")"
}

# rc_ctl CONTROL JSON: one command to a daemon's control socket; its answer must be ok
rc_ctl() {
	local ans
	ans=$(printf '%s\n' "$2" | socat - "UNIX-CONNECT:$1") && jq -e .ok >/dev/null <<<"$ans" ||
		rp_die "control command $2 to $1 failed: $ans"
}

# rc_tier CONTROL DOMAIN: the client's tier record of DOMAIN now ({} if none)
rc_tier() {
	local t
	t=$("$MSRSWAP" status --control "$1" | jq -c --arg d "$2" 'select(.domain == $d)')
	echo "${t:-{\}}"
}

# rc_records FILE [FROM]: the complete JSON lines of a file a daemon is still
# writing (its last line may be half written), from line FROM on, as one array
rc_records() {
	tail -n "+${2:-1}" "$1" | jq -cR 'fromjson? // empty' | jq -s .
}

# rc_lines FILE: how many lines FILE has now (0 without it): the FROM of a
# later rc_records or rc_tier_peak that is to see only what comes next
rc_lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# rc_tier_peak NAME DOMAIN FIELD [FROM]: the largest FIELD (remote_bytes,
# tier_used_bytes...) of DOMAIN in client NAME's tier records so far, from
# line FROM on (a guest's device keeps the guest's name from run to run); 0 if none
rc_tier_peak() {
	rc_records "$RC_TMP/$1.out" "${4:-1}" |
		jq --arg d "$2" --arg f "$3" '[.[] | select(.kind == "tier" and .domain == $d) | .[$f] // 0] | max // 0'
}

# ---- small arithmetic

# rc_median V...: the median of the numbers (oom and "-" values are left out; "-" if none)
rc_median() {
	printf '%s\n' "$@" | awk '$1 != "oom" && $1 != "" && $1 != "-" {v[n++] = $1} END {
		if (!n) { print "-"; exit }
		for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
		printf "%.4f", n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2 }'
}

# ---- lab guests: a "VM" is a TCG guest with a swap disk of its own (--domain lab)

# rc_domain_option VALUE: checks --domain's VALUE (lab or cgroup), echoes it
rc_domain_option() {
	case $1 in lab | cgroup) echo "$1" ;; *) rp_bad "--domain: '$1' is neither lab nor cgroup" ;; esac
}

# rc_lab_setup: the lab runs here (else exit 1 with the reason), and the
# names of this run's guests: RC_GUEST_PREFIX (the branch, so that others'
# tests leave them alone, and the pid); RC_URI
rc_lab_setup() {
	command -v virsh >/dev/null || rp_die "--domain lab needs virsh (libvirt-clients)"
	rp_lab_require
	RC_URI=$(lab_uri) || rp_die "lab: no libvirt daemon"
	local branch
	branch=$(git -C "$RP_ROOT" rev-parse --abbrev-ref HEAD 2>/dev/null | tr -c 'A-Za-z0-9\n-' - | cut -c1-20)
	RC_GUEST_PREFIX=${branch:-rp}-${RP_CASE:0:4}$$
}

# rc_guest_meminfo VM FIELD...: the guest's /proc/meminfo values (KiB), one line
rc_guest_meminfo() {
	local vm=$1 f pat=''
	shift
	for f; do pat="$pat${pat:+|}$f"; done
	lab exec "$vm" "grep -E '^($pat):' /proc/meminfo" | awk '{ printf "%s%s", (NR > 1 ? " " : ""), $2 } END { print "" }'
}

rc_balloon_at() { # VM KIB: the balloon driver reports the guest at KIB
	[ "$(virsh -q -c "$RC_URI" dommemstat "$1" 2>/dev/null | awk '$1 == "actual" { print $2 }')" = "$2" ]
}

# rc_guest_balloon VM MIB: sets the guest's memory (virtio-balloon) and waits
# until the guest's driver has given the difference back
rc_guest_balloon() {
	virsh -q -c "$RC_URI" setmem "$1" "${2}M" --live >/dev/null || rp_die "$1: virsh setmem ${2}M failed"
	until_true 300 rc_balloon_at "$1" $(($2 * 1024)) ||
		rp_die "$1: the balloon did not reach $2 MiB in 300 s ($(virsh -q -c "$RC_URI" dommemstat "$1" | tr '\n' ' '))"
}

# rc_guest_swap_tier VM CLIENT MIB [msrswap attach OPTION...]: a device of
# the msrswap client tier store NAME (rc_client) as the guest's swap disk
rc_guest_swap_tier() {
	local vm=$1 d=$RC_TMP/$2 mib=$3
	shift 3
	"$MSRSWAP" -c "$RC_URI" attach "$vm" --size "${mib}M" --mkswap --socket "$d/c.sock" --control "$d/c.ctl" "$@" \
		>>"$RC_TMP/attach.jsonl" || rp_die "$vm: msrswap attach failed"
}

# rc_guest_swap_on VM: waits for the hot-plugged disk and swaps on it; RC_GUEST_DEV
rc_guest_swap_on() {
	lab_swapon_memshare_disk "$1" >/dev/null || rp_die "$1: no swap on its disk"
	RC_GUEST_DEV=$(lab_memshare_disk "$1") && [ -n "$RC_GUEST_DEV" ] || rp_die "$1: cannot find its swap disk"
}

# rc_guest_swapped VM: pages the guest swapped in and out so far
rc_guest_swapped() {
	lab exec "$1" "$RP_VMSTAT_SWAP" | rp_swapped_sum
}

# rc_guest_usemem_start VM MIB SECONDS [USEMEM OPTION...]: usemem in the
# guest, in the background (rc_guest_usemem_wait collects it)
rc_guest_usemem_start() {
	local vm=$1 mib=$2 secs=$3
	shift 3
	lab exec "$vm" "rm -f /tmp/usemem.err /tmp/usemem.rc; (usemem --pass 0 --duration $secs $* $mib >/dev/null 2>/tmp/usemem.err; \
		echo \$? >/tmp/usemem.rc) & echo started" >/dev/null || rp_die "$vm: cannot start usemem"
}

# rc_guest_usemem_poll VM FILE: true once usemem ended; each call keeps the
# most the guest had only in swap so far (bytes) in FILE: the poll is the
# sampler.  A page read back keeps its swap slot (SwapCached) while swap is
# less than half full: it is in RAM, not counted
rc_guest_usemem_poll() {
	local out used
	out=$(lab exec "$1" 'cat /tmp/usemem.rc 2>/dev/null; grep -E "^Swap(Total|Free|Cached):" /proc/meminfo') || return 1
	used=$(awk '/^SwapTotal/ { t = $2 } /^SwapFree/ { f = $2 } /^SwapCached/ { c = $2 } END { print (t - f - c) * 1024 }' <<<"$out")
	[ "$used" -le "$(cat "$2" 2>/dev/null || echo 0)" ] || echo "$used" >"$2"
	# usemem's exit status, once there, is the first line
	[[ $(head -1 <<<"$out") =~ ^[0-9]+$ ]]
}

# rc_guest_usemem_wait VM SECONDS NAME: waits for usemem in VM (its
# --duration SECONDS, and as long again beside 15 min for a slow last pass);
# sets RC_SECONDS (mean pass, "oom" when the guest's OOM killer ended it),
# RC_PASSES and RC_SWAP_PEAK (bytes)
rc_guest_usemem_wait() {
	local vm=$1 secs=${2%.*} peak=$RC_TMP/$3.swap.peak rc err
	rm -f "$peak"
	until_true $((2 * secs + 900)) rc_guest_usemem_poll "$vm" "$peak" || rp_die "$vm: usemem did not end in $((2 * secs + 900)) s"
	rc=$(lab exec "$vm" 'cat /tmp/usemem.rc') err=$(lab exec "$vm" 'cat /tmp/usemem.err')
	RC_SWAP_PEAK=$(cat "$peak" 2>/dev/null || echo 0)
	if [ "$rc" = 137 ]; then
		rp_say "usemem in $vm was killed (the guest's OOM killer): recorded as oom"
		RC_SECONDS=oom RC_PASSES=0
		return 0
	fi
	[ "$rc" = 0 ] || rp_die "$vm: usemem failed (exit status $rc): $err"
	RC_SECONDS=$(sed -n 's/.*mean_pass_ms=\([0-9.]*\).*/\1/p' <<<"$err" | awk '{printf "%.4f", $1 / 1000}')
	RC_PASSES=$(sed -n 's/.*passes=\([0-9]*\).*/\1/p' <<<"$err")
	[ -n "$RC_SECONDS" ] || rp_die "$vm: usemem reported no pass time: $err"
}

# rc_guest_read_us VM FILE [DD FLAG]: microseconds per 4 KiB read of the
# first 1,024 blocks of FILE in the guest, one read at a time; the guest's
# clock (/proc/uptime) ticks in 10 ms, so the 1,024 reads are repeated until
# a second has passed
rc_guest_read_us() {
	lab exec --timeout 120 "$1" "s=\$(cut -d' ' -f1 /proc/uptime); n=0
		while :; do dd if=$2 of=/dev/null bs=4096 count=1024 ${3:-} 2>/dev/null || exit 1; n=\$((n + 1))
			e=\$(cut -d' ' -f1 /proc/uptime); awk -v s=\$s -v e=\$e 'BEGIN { exit !(e - s >= 1) }' && break; done
		awk -v s=\$s -v e=\$e -v n=\$n 'BEGIN { printf \"%.2f\\n\", (e - s) * 1e6 / (n * 1024) }'"
}
