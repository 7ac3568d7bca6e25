#!/usr/bin/env bats
# bats file_tags=lab
# bench/reproduce and its case smartmem (issue 17): the dispatcher lists the
# cases with their run times and refuses bad input with one line; --quick
# runs SmarTmem's plumbing on one lab guest (no-tier and smart-alloc, usemem
# a little beyond the guest's free memory): the table has its rows and
# columns, its figures are numbers, the tier store counted puts and failed
# puts, msballoon sent tier targets, the plot is an SVG, and no guest is left
# behind.  The result itself (which policy wins) is the full run's business,
# not the suite's.
bats_require_minimum_version 1.5.0
load ../lab/lab
load helpers

REPRODUCE=${MEMSHARE_ROOT:-$PWD}/bench/reproduce

@test "bench/reproduce: --help lists the cases with their run times; bad cases and options exit 2 with one line" {
	run -0 "$REPRODUCE" --help
	[[ $output == *"--case CASE|all"* ]]
	grep -E '^  smartmem +SmarTmem .*\| full run: about [0-9]+ min( \([^|]*\))? \| --quick: about [0-9]+ s$' <<<"$output"
	run -2 --separate-stderr "$REPRODUCE"
	[ "${#stderr_lines[@]}" -eq 1 ]
	[[ $stderr == "bench/reproduce: give --case (one of: "*smartmem*" all); see --help" ]]
	run -2 --separate-stderr "$REPRODUCE" --case nosuch
	[[ $stderr == "bench/reproduce: unknown case 'nosuch' (one of: "*smartmem*"all); see --help" ]]
	run -2 --separate-stderr "$REPRODUCE" --case ../bin/msballoon
	[ "${#stderr_lines[@]}" -eq 1 ]
	run -0 "$REPRODUCE" --case smartmem --help
	[[ $output == *"--policies LIST"* ]]
	run -2 --separate-stderr "$REPRODUCE" --case smartmem --policies greedy,nosuch
	[ "$stderr" = "bench/reproduce smartmem: --policies: unknown policy 'nosuch'; see --help" ]
	run -2 --separate-stderr "$REPRODUCE" --case smartmem --passes 3x
	[ "$stderr" = "bench/reproduce smartmem: --passes: '3x' is not a whole number; see --help" ]
	run -2 --separate-stderr "$REPRODUCE" --case smartmem --cal-rounds 0
	[ "$stderr" = "bench/reproduce smartmem: --step, --passes, --rounds and --cal-rounds must be positive; see --help" ]
	run -2 --separate-stderr "$REPRODUCE" --case smartmem --late-after 8 --late-delay 5
	[ "$stderr" = "bench/reproduce smartmem: --late-after and --late-delay: one or the other; see --help" ]
	run -2 --separate-stderr "$REPRODUCE" --case smartmem --late-after 8M
	[ "$stderr" = "bench/reproduce smartmem: --late-after: '8M' is not a whole number; see --help" ]
	run -2 --separate-stderr "$REPRODUCE" --case smartmem --frobnicate 1
	[ "$stderr" = "bench/reproduce smartmem: unknown option '--frobnicate'; see --help" ]
	run -2 --separate-stderr "$REPRODUCE" --case smartmem --mem
	[ "${#stderr_lines[@]}" -eq 1 ]
}

# a table's data rows (after its title and header) until the blank line
table_rows() { awk -v t="$2" 'index($0, t) == 1 { on = 1; getline; next } on && NF == 0 { exit } on' "$1"; }

@test "bench/reproduce --case smartmem --quick: one guest, a row per policy of numbers, puts and failed puts, tier targets sent, an SVG; no guest left" {
	lab_require
	C=$BATS_TEST_TMPDIR
	run --separate-stderr "$REPRODUCE" --case smartmem --quick --out "$C/out" --plot "$C/plot"
	echo "$output"
	echo "$stderr" | tail -20
	[ "$status" -eq 0 ]
	# the stamps: commit, load average, run time
	[[ ${lines[0]} == "bench/reproduce --case smartmem --quick: commit "*", load average "* ]]
	[[ ${lines[-1]} =~ ^commit\ [0-9a-f]+.*load\ average\ at\ start\ .*run\ time\ [0-9.]+\ s$ ]]
	# the run-time table: header (one guest), then no-tier and smart-alloc with numbers where numbers belong
	grep -q '^policy  *vm1_s  *total_s  *vs_no-tier  *vs_greedy  *puts  *failed_puts  *failed_%  *paper_vs_no-tmem  *paper_vs_greedy$' <<<"$output"
	table_rows <(echo "$output") "SmarTmem Scenario 1 shape" > "$C/rows"
	cat "$C/rows"
	[ "$(awk '{print $1}' "$C/rows" | paste -sd' ')" = "no-tier smart-alloc" ]
	awk '{ for (i = 2; i <= 3; i++) if ($i !~ /^[0-9]+(\.[0-9]+)?$/) exit 1 }' "$C/rows"
	# smart-alloc's row: puts counted by the tier store, failed ones among them, and the paper's figures
	read -r _ _ _ _ _ puts failed _ <<<"$(grep '^smart-alloc' "$C/rows")"
	[[ $puts =~ ^[0-9]+$ && $failed =~ ^[0-9]+$ ]]
	[ "$puts" -gt 0 ]
	[ "$failed" -le "$puts" ]
	grep -q '^smart-alloc .*-28% to -35.7%  *-7.1% to -12.7%$' "$C/rows"
	# msballoon sent the tier targets, and the client applied them
	jq -s -e 'map(select(.kind == "target" and .tier_applied == true)) | length > 0' "$C/out/plan-smart-alloc-1.jsonl"
	# raw records and tables in --out, an SVG from --plot
	jq -s -e 'map(select(.kind == "usemem")) | length == 2 and all(.run_time_s > 0 and .guest_swapped_pages > 0)' "$C/out/runs.jsonl"
	# where the time went: each run's QEMU CPU time and the guest's system time (its swap path), the client's CPU time
	table_rows <(echo "$output") "where the time went" > "$C/time"
	cat "$C/time"
	[ "$(awk '{print $1}' "$C/time" | paste -sd' ')" = "no-tier smart-alloc" ]
	awk '$4 > 0 && $6 > 0 && $7 > 0 { n++ } END { exit n != 2 }' "$C/time"
	awk '$1 == "smart-alloc" && $8 ~ /^[0-9.]+$/ { f = 1 } END { exit !f }' "$C/time"
	[ -s "$C/out/smartmem-runtime.tsv" ]
	head -c 400 "$C/plot/smartmem-runtime.svg" | grep -q '<svg'
	# the guests are gone
	guests=$(sed -n 's/^guests: [0-9]* x [0-9A-Z]* (TCG): \([^;]*\);.*/\1/p' <<<"$output")
	[ -n "$guests" ]
	run -0 virsh -q -c qemu:///system list --all --name
	for g in $guests; do ! grep -qx "$g" <<<"$output"; done
}

# usemem_record POLICY ROUND VM SECONDS: one run's record, as runs.jsonl holds them
usemem_record() {
	jq -n -c --arg p "$1" --argjson r "$2" --arg d "$3" --argjson t "$4" \
		'{kind: "usemem", policy: $p, round: $r, domain: $d, passes: 10, mean_pass_ms: 1, run_time_s: $t, guest_swapped_pages: 1, start_s: 0}'
}

@test "bench/reproduce --case smartmem --steps tables: the tables of a run's records, ranks within rounds and Friedman's test, no guest" {
	C=$BATS_TEST_TMPDIR/out
	mkdir -p "$C"
	# 3 rounds: no-tier always last; greedy and static swap places each round (their order is chance)
	local r
	for r in 1 2 3; do
		usemem_record no-tier "$r" a 50; usemem_record no-tier "$r" b 50
		usemem_record greedy "$r" a $((r % 2 ? 20 : 30)); usemem_record greedy "$r" b 10
		usemem_record static "$r" a $((r % 2 ? 30 : 20)); usemem_record static "$r" b 10
	done > "$C/runs.jsonl"
	run -0 --separate-stderr "$REPRODUCE" --case smartmem --steps tables --out "$C"
	echo "$output"
	[[ ${lines[1]} == "tables of the records in $C" ]]
	[[ $output != *"guests:"* ]]
	# the run-time table has the runs' policies only, in the case's order
	table_rows <(echo "$output") "SmarTmem Scenario 1 shape" > "$C/rows"
	[ "$(awk '{print $1}' "$C/rows" | paste -sd' ')" = "no-tier greedy static" ]
	table_rows <(echo "$output") "rank of each configuration" > "$C/ranks"
	cat "$C/ranks"
	grep -qx "no-tier  *3  *3  *3  *3" "$C/ranks"
	grep -qx 'greedy  *1  *2  *1  *1.33' "$C/ranks"
	grep -qx 'static  *2  *1  *2  *1.67' "$C/ranks"
	# 2 tier policies, 3 rounds, rank sums 4 and 5: Q = 12/(3*2*3) * (16 + 25) - 3*3*3 = 0.33
	grep -qx 'Friedman test over the 2 tier policies in 3 rounds: Q = 0.33 (5 % point 3.84): their order is within chance: the medians do not rank them' <<<"$output"
	[ -s "$C/smartmem-ranks.tsv" ]
	# tables goes alone, and reads an --out
	run -2 --separate-stderr "$REPRODUCE" --case smartmem --steps runs,tables --out "$C"
	[ "$stderr" = "bench/reproduce smartmem: --steps: tables goes alone (runs and calibrate print the tables too); see --help" ]
	run -2 --separate-stderr "$REPRODUCE" --case smartmem --steps tables
	[ "$stderr" = "bench/reproduce smartmem: --steps tables needs the --out of a run; see --help" ]
}
