#!/usr/bin/env bats
# bench/workloads: the proxies recorded for SmarTmem scenarios 1-3 (als.py for
# in-memory-analytics, pagerank.py for graph-analytics) do their jobs in small
# (ALS fits the ratings, PageRank keeps the rank mass at 1) and refuse bad
# arguments with one line, exit 2.  They need numpy and scipy
# (scripts/install-deps installs them); skipped without them.  About 2 s.
bats_require_minimum_version 1.5.0
load helpers

WORKLOADS=${MEMSHARE_ROOT:-$PWD}/bench/workloads

setup() {
	/usr/bin/python3 -c 'import numpy, scipy' 2>/dev/null ||
		skip "needs /usr/bin/python3 with numpy and scipy (python3-numpy python3-scipy)"
}

@test "bench/workloads/als.py: ALS in small fits its ratings (training RMSE under 1 where a random model is over 3)" {
	run --separate-stderr "$WORKLOADS/als.py" --users 300 --items 80 --ratings 20000 --iterations 5
	[ "$status" -eq 0 ]
	rmse=$(sed -n 's/^als: training RMSE \([0-9.]*\)$/\1/p' <<<"$stderr")
	[ -n "$rmse" ]
	awk -v r="$rmse" 'BEGIN { exit !(r > 0 && r < 1) }'
	grep -q '^als: iteration 5 at ' <<<"$stderr"
}

@test "bench/workloads/pagerank.py: PageRank in small keeps the rank mass at 1 and ranks an R-MAT hub far above the mean" {
	run --separate-stderr "$WORKLOADS/pagerank.py" --scale 12 --iterations 10
	[ "$status" -eq 0 ]
	grep -qx 'pagerank: rank sum 1.000[0-9]\|pagerank: rank sum 0.999[0-9]' <<<"$stderr"
	top=$(sed -n 's/^pagerank: top vertices [0-9]* (\([0-9.e+-]*\)).*/\1/p' <<<"$stderr")
	# 4096 vertices: the mean rank is 2.4e-4; a power-law graph's top vertex has 10x that or more
	awk -v t="$top" 'BEGIN { exit !(t > 0.0024) }'
}

@test "bench/workloads: bad arguments are one-line usage errors naming them, exit 2" {
	run --separate-stderr "$WORKLOADS/als.py" --ratings 0
	[ "$status" -eq 2 ]
	[ "$stderr" = "als.py: --ratings 0: must be at least 1; see --help" ]
	run --separate-stderr "$WORKLOADS/pagerank.py" --scale 31
	[ "$status" -eq 2 ]
	[ "$stderr" = "pagerank.py: --scale 31: must be 1 to 30; see --help" ]
	run --separate-stderr "$WORKLOADS/pagerank.py" --edge-factor x
	[ "$status" -eq 2 ]
	[[ $stderr == *"--edge-factor"* && $stderr != *$'\n'* ]]
}
