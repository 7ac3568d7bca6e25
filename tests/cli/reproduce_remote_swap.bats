#!/usr/bin/env bats
# bench/reproduce --case remote-swap --quick: the plumbing of case 2 of issue
# 17 (Kocharyan et al., remote swap vs disk swap) on a memory cgroup — its two
# tables have every row and column, the figures are numbers, the paper's
# figures stand beside them, the plots are SVG, the raw records are written,
# and no swap device, cgroup or daemon is left behind.  No timing threshold:
# which configuration wins depends on the machine (that is the experiment).
bats_require_minimum_version 1.5.0
load helpers

REPRODUCE=${MEMSHARE_ROOT:-$PWD}/bench/reproduce

setup() {
	require_swap_bench socat gnuplot
	C=$BATS_TEST_TMPDIR
}

# column TSV NAME: the values of the column whose header is NAME
column_of() {
	awk -F'\t' -v n="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; next } c { print $c }' "$1"
}

@test "remote-swap --quick: both tables, numbers beside the paper's figures, SVG plots, records, nothing left behind" {
	run --separate-stderr "$REPRODUCE" --case remote-swap --quick --plot "$C/plot" --out "$C/out"
	echo "$output"
	echo "$stderr" | tail -20
	[ "$status" -eq 0 ]
	# the stamps: commit, load average, run time
	[[ $output == *"load average"* ]]
	[[ $output =~ run\ time\ [0-9.]+\ s ]]
	slow=$C/out/remote-swap-slowdown.tsv micro=$C/out/remote-swap-micro.tsv
	# a row per level and configuration, RAM first
	[ "$(cut -f1 "$slow" | tail -n +2 | tr '\n' ' ')" = "light/ram light/disk light/pool light/unix light/10gbe heavy/ram heavy/disk heavy/pool heavy/unix heavy/10gbe " ]
	[ "$(cut -f1 "$micro" | tail -n +2 | tr '\n' ' ')" = "local disk pool unix 10gbe " ]
	# the tier store's time per request, the measurement that explains the swap runs
	[ "$(tail -n +2 "$C/out/remote-swap-requests.tsv" | wc -l)" -eq 3 ]
	for v in $(cut -f2,3,6,7 "$C/out/remote-swap-requests.tsv" | tail -n +2); do [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]]; done
	# swap-outs held by the RAM pool never wait for the disk copy: they get none
	[ "$(awk -F'\t' '$1 == "tier store RAM pool" { print $7 }' "$C/out/remote-swap-requests.tsv")" = 0 ]
	# the measured figures are numbers (a run the OOM killer ended would be counted, not hidden)
	for v in $(column_of "$slow" "pass s (median)") $(column_of "$slow" "slowdown vs RAM") \
		$(column_of "$micro" "us per 4 KiB page (dd, median)") $(column_of "$micro" "x local memory"); do
		[[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "not a number: '$v'"; false; }
	done
	for v in $(column_of "$slow" "oom-killed runs (retried)"); do [[ $v =~ ^[0-9]+$ ]]; done
	column_of "$slow" "gain over disk" | grep -Eqx '[-+][0-9]+ %'
	# the remote runs really swapped remote: blocks in the tier store at their peak
	for v in $(awk -F'\t' '$1 ~ /unix|10gbe/' "$slow" | cut -f7); do [ "$v" -gt 0 ]; done
	# the paper's figures beside the rows they belong to
	grep -P '^heavy/unix\t.*\+17 %' "$slow"
	grep -P '^heavy/10gbe\t.*\+8 %' "$slow"
	grep -P '^10gbe\t.*5x' "$micro"
	# the plots and the raw records
	for f in remote-swap-slowdown remote-swap-micro; do grep -q '<svg' "$C/plot/$f.svg"; done
	jq -s -e 'map(select(.kind == "reproduce_run")) | length == 10 and all(.seconds > 0)' "$C/out/remote-swap.jsonl"
	jq -s -e 'map(select(.kind == "reproduce_micro")) | length == 5' "$C/out/remote-swap.jsonl"
	# nothing left: its working directory (swap file, FUSE files) and cgroups are gone, no swap of its own
	bench_left_nothing "$(bench_work_dir <<<"$stderr")" "$(bench_work_cgroup <<<"$stderr")"
}

@test "remote-swap: bad options are refused with the option named, exit 2, before anything runs" {
	run --separate-stderr "$REPRODUCE" --case remote-swap --levels 10,95
	[ "$status" -eq 2 ]
	[[ $stderr == *"--levels: '95' is not a percentage 1-90"* ]]
	run --separate-stderr "$REPRODUCE" --case remote-swap --configs unix,tcp
	[ "$status" -eq 2 ]
	[[ $stderr == *"--configs must include disk"* ]]
	run --separate-stderr "$REPRODUCE" --case remote-swap --rounds
	[ "$status" -eq 2 ]
	[[ $stderr == *"--rounds needs a value"* ]]
}

@test "remote-swap --domain: lab|cgroup, options of one mode refused in the other, guest sizes checked, exit 2 before a guest boots" {
	run --separate-stderr "$REPRODUCE" --case remote-swap --domain vm
	[ "$status" -eq 2 ]
	[[ $stderr == *"--domain: 'vm' is neither lab nor cgroup"* ]]
	run --separate-stderr "$REPRODUCE" --case remote-swap --domain
	[ "$status" -eq 2 ]
	[[ $stderr == *"--domain needs a value (lab or cgroup)"* ]]
	# --quick defaults to cgroup: a guest's RAM means nothing there
	run --separate-stderr "$REPRODUCE" --case remote-swap --quick --mem 256
	[ "$status" -eq 2 ]
	[[ $stderr == *"--mem: only with --domain lab"* ]]
	run --separate-stderr "$REPRODUCE" --case remote-swap --domain lab --mem 64
	[ "$status" -eq 2 ]
	[[ $stderr == *"--mem: '64' is not MiB, at least 128"* ]]
	run --separate-stderr "$REPRODUCE" --case remote-swap --domain lab --mem 256 --footprint 300
	[ "$status" -eq 2 ]
	[[ $stderr == *"--footprint: 300 MiB does not fit a guest of --mem 256 MiB"* ]]
	# a full run's default is lab; --help says so, with its run time
	run "$REPRODUCE" --case remote-swap --help
	[ "$status" -eq 0 ]
	[[ $output == *"--domain lab|cgroup"*"the default of a full run"* ]]
	run "$REPRODUCE" --help
	[[ $output =~ remote-swap.*full\ run:\ about\ [0-9]+\ min\ on\ a\ guest ]]
}
