#!/usr/bin/env bats
# bench/reproduce --case vmca --quick: the plumbing of case 3 of issue 17
# (vMCA, thesis ch. 6) — two nodes in network namespaces with one msgmc
# controller, greedy-local / greedy-remote / tlp: the table has its rows and
# columns, the figures are numbers beside the thesis', each policy did what it
# is (greedy-local borrows nothing, greedy-remote and tlp are granted memory
# by node B), the plot is an SVG, and nothing is left behind.  No timing
# threshold: which policy wins on a loaded machine is the experiment.
bats_require_minimum_version 1.5.0
load helpers

REPRODUCE=${MEMSHARE_ROOT:-$PWD}/bench/reproduce

setup() {
	require_swap_bench socat ip nsenter psktool gnuplot
	C=$BATS_TEST_TMPDIR
}

column_of() {
	awk -F'\t' -v n="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; next } c { print $c }' "$1"
}

@test "vmca --quick: run time per VM and totals per policy beside the thesis' figures; grants only where the policy borrows; nothing left behind" {
	run --separate-stderr "$REPRODUCE" --case vmca --quick --plot "$C/plot" --out "$C/out"
	echo "$output"
	echo "$stderr" | tail -20
	[ "$status" -eq 0 ]
	[[ $output == *"load average"* ]]
	[[ $output =~ run\ time\ [0-9.]+\ s ]]
	tsv=$C/out/vmca.tsv
	[ "$(cut -f1 "$tsv" | tr '\n' ' ')" = "policy greedy-local greedy-remote tlp " ]
	for v in $(column_of "$tsv" "vma s/pass") $(column_of "$tsv" "vmb s/pass") $(column_of "$tsv" "total s"); do
		[[ $v =~ ^[0-9]+\.[0-9]+$ ]] || { echo "not a number: '$v'"; false; }
	done
	column_of "$tsv" "gain (total) over greedy-remote" | grep -Eqx '[-+][0-9]+ %'
	grep -P '^greedy-remote\t.*12\.\.92 %' "$tsv"
	grep -P '^tlp\t.*32 %' "$tsv"
	# what each policy is: greedy-local borrows nothing; the other two are granted
	# memory by node B (through the controller, across the veth), which vma used
	jq -s -e 'map(select(.kind == "reproduce_run")) | length == 3' "$C/out/vmca.jsonl"
	jq -s -e 'map(select(.policy == "greedy-local"))[0] | .granted_bytes == 0 and .vma_failed_puts > 0' "$C/out/vmca.jsonl"
	jq -s -e 'map(select(.policy == "greedy-remote"))[0] | .greedy_allocs > 0 and .granted_bytes > 0 and .vma_remote_peak_bytes > 0' \
		"$C/out/vmca.jsonl"
	jq -s -e 'map(select(.policy == "tlp"))[0] | .tlp_grant_any > 0 and .granted_bytes > 0' "$C/out/vmca.jsonl"
	# tlp's records go to A's agent as they are: each grant_any names vma's device, which got the leases
	jq -s -e 'map(select(.kind == "grant_any")) | length > 0 and all(.domain == "vma")' "$C/out/vmca-plan.jsonl"
	jq -s -e 'map(select(.policy == "tlp"))[0].granted_bytes_by_domain | keys == ["vma"]' "$C/out/vmca.jsonl"
	# tlp's targets counted the granted remote in the node's tier: some target went above A's 8 MiB pool
	jq -s -e 'map(select(.kind == "target") | .tier_bytes) | max > 8388608' "$C/out/vmca-plan.jsonl"
	grep -q '<svg' "$C/plot/vmca.svg"
	# nothing left: working directory, cgroups, namespaces, swap
	cg=$(bench_work_cgroup <<<"$stderr")
	bench_left_nothing "$(bench_work_dir <<<"$stderr")" "$cg"
	pid=${cg##*-}
	! ip netns list | grep -q "^rpv${pid}[ab]\b"
}

@test "vmca: bad options are refused with the option named, exit 2" {
	run --separate-stderr "$REPRODUCE" --case vmca --domain cgroup --vma 64 --vma-limit 64
	[ "$status" -eq 2 ]
	[[ $stderr == *"--vma-limit: 64 MiB does not make vma (64 MiB) swap"* ]]
	run --separate-stderr "$REPRODUCE" --case vmca --percent 2
	[ "$status" -eq 2 ]
	[[ $stderr == *"--percent: '2' is not a percentage (2%)"* ]]
	run --separate-stderr "$REPRODUCE" --case vmca --pool-a x
	[ "$status" -eq 2 ]
	[[ $stderr == *"--pool-a: 'x' is not a whole number of MiB"* ]]
}

@test "vmca --domain: lab|cgroup, options of one mode refused in the other, guest counts and sizes checked, exit 2" {
	run --separate-stderr "$REPRODUCE" --case vmca --domain vm
	[ "$status" -eq 2 ]
	[[ $stderr == *"--domain: 'vm' is neither lab nor cgroup"* ]]
	run --separate-stderr "$REPRODUCE" --case vmca --domain cgroup --guests 2
	[ "$status" -eq 2 ]
	[[ $stderr == *"--guests: only with --domain lab"* ]]
	run --separate-stderr "$REPRODUCE" --case vmca --domain lab --vma-limit 100
	[ "$status" -eq 2 ]
	[[ $stderr == *"--vma-limit: only with --domain cgroup"* ]]
	run --separate-stderr "$REPRODUCE" --case vmca --domain lab --guests 3
	[ "$status" -eq 2 ]
	[[ $stderr == *"--guests: '3' is not 1 or 2"* ]]
	run --separate-stderr "$REPRODUCE" --case vmca --domain lab --mem 256 --vma 128
	[ "$status" -eq 2 ]
	[[ $stderr == *"--vma: 128 MiB fits a guest of --mem 256 MiB"* ]]
	run --separate-stderr "$REPRODUCE" --case vmca --domain lab --mem x
	[ "$status" -eq 2 ]
	[[ $stderr == *"--mem: 'x' is not a whole number of MiB"* ]]
	run "$REPRODUCE" --case vmca --help
	[ "$status" -eq 0 ]
	[[ $output == *"--domain lab|cgroup"*"(the default of a full"* ]]
}
