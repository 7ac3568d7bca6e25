# bench/reproduce.d/lib.bash — what every case of bench/reproduce shares:
# the common options, the stamps a table carries (commit, load average, run
# time), table printing and saving, gnuplot bar charts, and lab guests that
# are stopped on exit.  Sourced by a case after it sets RP_CASE:
#
#   RP_CASE=smartmem
#   . "$(dirname "$0")/lib.bash"       # also sources tests/cli/helpers.bash
#   rp_parse_common "$@"; set -- "${RP_REST[@]}"   # --quick --plot --out --help
#   rp_begin                           # stamps the start
#   rp_table TITLE FILE.tsv            # prints it aligned, saves it in --out
#   rp_plot_bars FILE.tsv NAME TITLE YLABEL COLUMN...   # --plot DIR/NAME.svg
#   rp_end                             # commit, load average, run time
#
# Diagnostics go to stderr; tables to stdout.

RP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export MEMSHARE_ROOT=$RP_ROOT
# until_true, gone, stop_daemons, wait_socket, random_port, $MSRSWAP, $MSBALLOON, $MSWSS
# shellcheck source=/dev/null
. "$RP_ROOT/tests/cli/helpers.bash"

rp_die() { echo "bench/reproduce $RP_CASE: $*" >&2; exit 1; }
rp_bad() { echo "bench/reproduce $RP_CASE: $*; see --help" >&2; exit 2; }
rp_say() { echo "bench/reproduce $RP_CASE: $*" >&2; }

# rp_parse_common ARG...: takes the options every case has; the others are
# left in RP_REST for the case.  Sets RP_QUICK (0/1), RP_PLOT, RP_OUT and
# RP_HELP (1 when --help was given: the case prints its usage).
rp_parse_common() {
	RP_QUICK=0 RP_PLOT='' RP_OUT='' RP_HELP=0 RP_REST=()
	while [ $# -gt 0 ]; do
		case $1 in
		--quick) RP_QUICK=1 ;;
		--plot) [ $# -ge 2 ] || rp_bad "--plot needs a DIR"; RP_PLOT=$2; shift ;;
		--out) [ $# -ge 2 ] || rp_bad "--out needs a DIR"; RP_OUT=$2; shift ;;
		-h | --help) RP_HELP=1 ;;
		*) RP_REST+=("$1") ;;
		esac
		shift
	done
}

# rp_prepare_dirs: creates --out and --plot (checks gnuplot for --plot).
rp_prepare_dirs() {
	if [ -n "$RP_PLOT" ]; then
		command -v gnuplot >/dev/null || rp_die "--plot needs gnuplot (Debian: apt-get install gnuplot-nox)"
		mkdir -p "$RP_PLOT" || rp_die "--plot: cannot create $RP_PLOT"
	fi
	if [ -n "$RP_OUT" ]; then mkdir -p "$RP_OUT" || rp_die "--out: cannot create $RP_OUT"; fi
}

rp_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

rp_commit() {
	local c
	c=$(git -C "$RP_ROOT" rev-parse --short=12 HEAD 2>/dev/null) || { echo unknown; return; }
	git -C "$RP_ROOT" diff --quiet HEAD -- 2>/dev/null || c="$c+dirty"
	echo "$c"
}

# rp_begin: stamps the start (time, load average, commit) on stdout.
rp_begin() {
	RP_T0=$(date +%s.%N) RP_LOAD0=$(rp_loadavg)
	echo "bench/reproduce --case $RP_CASE$([ "$RP_QUICK" = 1 ] && echo ' --quick'): commit $(rp_commit)," \
		"started $(date -u +%Y-%m-%dT%H:%M:%SZ), load average $RP_LOAD0, $(nproc) CPUs"
}

# rp_elapsed: seconds since rp_begin, one decimal.
rp_elapsed() { awk -v t0="$RP_T0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }'; }

# rp_end: the closing stamp (commit, load averages at start and end, run time).
rp_end() {
	echo "commit $(rp_commit); load average at start $RP_LOAD0, at end $(rp_loadavg); run time $(rp_elapsed) s"
}

# rp_table TITLE FILE: prints FILE (tab-separated, first line the header)
# aligned under TITLE, with the load average beside it, and keeps a copy in
# --out as RP_CASE-BASENAME.
rp_table() {
	local title=$1 file=$2
	echo
	echo "$title (load average $(rp_loadavg))"
	column -t -s $'\t' "$file"
	if [ -n "$RP_OUT" ]; then cp "$file" "$RP_OUT/$(basename "$file")" || rp_die "cannot write $RP_OUT"; fi
}

# rp_plot_bars FILE NAME TITLE YLABEL COLUMN...: with --plot, draws the
# numeric COLUMNs (1-based) of the tab-separated FILE as clustered bars, one
# cluster per row labelled by column 1, into RP_PLOT/NAME.svg.
rp_plot_bars() {
	local file=$1 name=$2 title=$3 ylabel=$4 gp c first=1
	shift 4
	[ -n "$RP_PLOT" ] || return 0
	gp=$(mktemp "${TMPDIR:-/tmp}/reproduce-plot.XXXXXX")
	{
		echo "set terminal svg size 960,480 dynamic noenhanced font 'sans,11' background '#ffffff'"
		echo "set output '$RP_PLOT/$name.svg'"
		echo "set datafile separator '\\t'"
		echo "set datafile missing '-'"
		echo "set title '$title'"
		echo "set ylabel '$ylabel'"
		echo "set yrange [0:*]"
		echo "set grid ytics"
		echo "set key outside right top"
		echo "set style data histogram"
		echo "set style histogram clustered gap 1"
		echo "set style fill solid 0.8 border -1"
		echo "set xtics rotate by -20"
		printf 'plot '
		for c; do
			[ $first = 1 ] || printf ', '
			printf "'%s' using %d:xtic(1) title columnheader(%d)" "$file" "$c" "$c"
			first=0
		done
		echo
	} >"$gp"
	gnuplot "$gp" 2>"$gp.err" || { rp_say "gnuplot: $(head -c 400 "$gp.err")"; rm -f "$gp" "$gp.err"; return 1; }
	rm -f "$gp" "$gp.err"
	rp_say "drew $RP_PLOT/$name.svg"
}

# ---- lab guests: started through tests/lab/lab, stopped on exit

RP_GUESTS=()
# shellcheck source=/dev/null
. "$RP_ROOT/tests/lab/lab.bash"

# rp_lab_require: the lab runs here (else exit 1 with the reason) and is ready.
rp_lab_require() {
	lab_available || rp_die "the lab cannot run here: $LAB_SKIP_REASON"
	lab_ready || rp_die "lab: cannot build the guest or reach libvirt"
}

# rp_guest_start NAME MEM [lab start OPTION...]: boots a guest that
# rp_guests_stop (called by the case's exit trap) stops.
rp_guest_start() {
	local name=$1 mem=$2
	shift 2
	RP_GUESTS+=("$name")
	lab start "$name" --mem "$mem" "$@" >/dev/null || rp_die "lab: cannot start $name"
}

# rp_guests_start MEM NAME...: boots the guests at once (each boot is mostly
# waiting for the guest's agent), fails when any of them did not come up.
rp_guests_start() {
	local mem=$1 name pids=() p rc=0
	shift
	for name; do
		RP_GUESTS+=("$name")
		lab start "$name" --mem "$mem" >/dev/null &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || rc=1; done
	[ $rc = 0 ] || rp_die "lab: cannot start every guest of: $*"
}

# rp_guest_swap_file URI VM FILE MIB: a swap file of the host (cache=none:
# every page the guest swaps reaches the host's disk) as the guest's swap
# disk (serial memshare; the swapon is lab_swapon_memshare_disk's).  Its XML
# is FILE.xml, for rp_guest_swap_off.
rp_guest_swap_file() {
	local uri=$1 vm=$2 f=$3
	fallocate -l "${4}M" "$f" && chmod 600 "$f" && mkswap -L memshare "$f" >/dev/null || rp_die "cannot make swap file $f"
	cat >"$f.xml" <<END
<disk type='file' device='disk'><driver name='qemu' type='raw' cache='none' io='native'/>
<source file='$f'/><target dev='vdb' bus='virtio'/><serial>memshare</serial></disk>
END
	virsh -q -c "$uri" attach-device "$vm" "$f.xml" --live >/dev/null || rp_die "$vm: cannot attach $f"
}

# rp_guest_swap_off URI VM SECONDS file FILE | URI VM SECONDS tier CONTROL:
# swapoff in the guest (within SECONDS) if it swaps on its memshare disk (its
# pages come back first), the disk detached - rp_guest_swap_file's FILE, or
# the device of the msrswap client at control socket CONTROL - and gone from
# the guest.
rp_guest_swap_off() {
	local uri=$1 vm=$2 dev
	dev=$(lab_memshare_disk "$vm") && [ -n "$dev" ] || rp_die "$vm: cannot find its swap disk"
	# busybox swapoff -a reads /etc/fstab, which the guest has not: name the
	# device (a disk can be attached and never swapped on)
	lab exec --timeout "$3" "$vm" "! grep -q '^/dev/$dev ' /proc/swaps || swapoff /dev/$dev" >/dev/null ||
		rp_die "$vm: swapoff /dev/$dev failed"
	if [ "$4" = file ]; then
		virsh -q -c "$uri" detach-device "$vm" "$5.xml" --live >/dev/null || rp_die "$vm: cannot detach $5"
	else
		"$MSRSWAP" -c "$uri" detach "$vm" --control "$5" >/dev/null || rp_die "$vm: msrswap detach failed"
	fi
	lab_wait_memshare_disk "$vm" absent >/dev/null || rp_die "$vm: its swap disk did not go away"
}

# RP_VMSTAT_SWAP, a guest command: its pswpin and pswpout lines of
# /proc/vmstat; rp_swapped_sum: pages swapped in and out, summed from such
# lines on stdin (in a report that has other lines too).
RP_VMSTAT_SWAP='grep -E "^pswp(in|out) " /proc/vmstat'
rp_swapped_sum() { awk '/^pswp(in|out) / { n += $2 } END { print n + 0 }'; }

rp_guests_stop() {
	local g
	for g in "${RP_GUESTS[@]}"; do lab stop "$g" >/dev/null 2>&1 || true; done
	RP_GUESTS=()
}
