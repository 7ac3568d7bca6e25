#!/usr/bin/env bats
# msballoon plan --policy memnet (issue 13): MemNet's M/M/1 estimator and
# self-tuning loop on "share" records — targets against the closed form,
# the controller's state carried from interval to interval, the budget,
# bad input, and --apply on real tmpfs spaces.
bats_require_minimum_version 1.5.0
load helpers

KIB=1024

# share DOMAIN SIZE USED JOB LAMBDA MU FULL_S [DEPARTURES]: one "share" record of a 10 s
# interval (departures per second: LAMBDA unless given)
share() {
	printf '{"kind":"share","domain":"%s","window_s":10,"size_bytes":%s,"used_bytes":%s,"files":0,' "$1" "$2" "$3"
	printf '"arrivals_per_s":%s,"departures_per_s":%s,"mean_job_bytes":%s,"service_per_s":%s,"full_s":%s}\n' \
		"$5" "${8:-$5}" "$4" "$6" "$7"
}

plan_memnet() {
	"$MSBALLOON" plan --policy memnet --host-memory 8G "$@"
}

# target DOMAIN FIELD: that field of DOMAIN's (last) target record in $output
target() {
	jq -r --arg d "$1" "select(.kind == \"target\" and .domain == \$d) | .$2" <<<"$output" | tail -1
}

@test "memnet: targets are the M/M/1 closed form, (n + 1) mean jobs with P(N > n) <= SLO" {
	# a: lambda 4, mu 8: rho 0.5; 0.5^7 = 0.78% <= 1% < 0.5^6: n = 6, 7 x 64K = 448K
	# b: lambda 8, mu 10: rho 0.8; 0.8^21 = 0.92% <= 1% < 0.8^20: n = 20, 21 x 32K = 672K
	run --separate-stderr plan_memnet < <(share a $((768 * KIB)) 0 $((64 * KIB)) 4 8 0; share b $((1024 * KIB)) 0 $((32 * KIB)) 8 10 0)
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(target a share_bytes)" -eq $((448 * KIB)) ]
	[ "$(target b share_bytes)" -eq $((672 * KIB)) ]
	[ "$(target a prev_share_bytes)" -eq $((768 * KIB)) ]
	[ "$(target a policy)" = memnet ]
	[ "$(target a balloon_bytes)" = null ]
	[[ $(target a reason) == "M/M/1 λ=4/s μ=8/s ρ=0.5 n=6: "*"gain=1;"* ]]
	[[ $(target b reason) == "M/M/1 λ=8/s μ=10/s ρ=0.8 n=20: "* ]]
	# --slo 5%: b needs 0.8^(n+1) <= 5%: n = 13, 14 x 32K = 448K
	run --separate-stderr plan_memnet --slo 5% < <(share b $((768 * KIB)) 0 $((32 * KIB)) 8 10 0)
	[ "$status" -eq 0 ]
	[ "$(target b share_bytes)" -eq $((448 * KIB)) ]
	[[ $(target b reason) == *"n=13"* ]]
}

@test "memnet: rho >= 1 grows the space by the largest step and says the queue is unbounded" {
	run --separate-stderr plan_memnet < <(share c $((1024 * KIB)) $((512 * KIB)) $((64 * KIB)) 10 8 5 8)
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(target c share_bytes)" -eq $((2048 * KIB)) ]
	[[ $(target c reason) == *"ρ=1.25 ≥ 1: the queue grows without bound"* ]]
}

@test "memnet: the controller's state is carried from interval to interval (the gain keeps learning)" {
	# full 10% of each interval where the model says 0.78%: the gain grows, and goes on growing
	run --separate-stderr plan_memnet < <(share a $((448 * KIB)) 0 $((64 * KIB)) 4 8 1; share a $((448 * KIB)) 0 $((64 * KIB)) 4 8 1)
	echo "$output"
	[ "$status" -eq 0 ]
	gains=$(jq -r 'select(.kind == "target") | .reason | capture("gain=(?<g>[0-9.]+)").g' <<<"$output")
	[ "$(wc -l <<<"$gains")" -eq 2 ]
	first=$(head -1 <<<"$gains") second=$(tail -1 <<<"$gains")
	echo "gains $first $second"
	awk -v a="$first" -v b="$second" 'BEGIN { exit !(a > 1.2 && b > a) }'
	# small changes are not made: at the model's size and fullness the size is held
	run --separate-stderr plan_memnet < <(share a $((448 * KIB)) $((64 * KIB)) $((64 * KIB)) 4 8 0.078125)
	[ "$(target a share_bytes)" -eq $((448 * KIB)) ]
	[[ $(target a reason) == *"within the hysteresis band"* ]]
}

@test "memnet: never below what is in use plus one mean job" {
	# rho 0.2 wants 3 x 64K, but 900K are in use: 900K + 64K
	run --separate-stderr plan_memnet < <(share a $((1024 * KIB)) $((900 * KIB)) $((64 * KIB)) 2 10 0)
	[ "$status" -eq 0 ]
	[ "$(target a share_bytes)" -eq $((964 * KIB)) ]
	[[ $(target a reason) == *"raised to the floor"* ]]
}

@test "memnet --share-total: targets that do not fit are scaled down in proportion above their floors" {
	# a wants 448K (floor: one job, 64K), b 672K (floor 32K): 1120K in 800K; the 704K above the
	# floors are shared in proportion to 384K and 640K: a 64K + 264K = 328K, b 32K + 440K = 472K
	run --separate-stderr plan_memnet --share-total 800K < <(share a $((768 * KIB)) 0 $((64 * KIB)) 4 8 0; share b $((1024 * KIB)) 0 $((32 * KIB)) 8 10 0)
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(target a share_bytes)" -eq $((328 * KIB)) ]
	[ "$(target b share_bytes)" -eq $((472 * KIB)) ]
	[[ $(target a reason) == *"the spaces want 1.1M of the budget 800K: scaled to 328K"* ]]
	# targets that fit are left alone
	run --separate-stderr plan_memnet --share-total 2M < <(share a $((768 * KIB)) 0 $((64 * KIB)) 4 8 0; share b $((1024 * KIB)) 0 $((32 * KIB)) 8 10 0)
	[ "$(target a share_bytes)" -eq $((448 * KIB)) ]
	[ "$(target b share_bytes)" -eq $((672 * KIB)) ]
	# a floor is kept even when the budget is smaller
	run --separate-stderr plan_memnet --share-total 100K < <(share a $((768 * KIB)) $((500 * KIB)) $((64 * KIB)) 4 8 0)
	[ "$(target a share_bytes)" -eq $((564 * KIB)) ]
	[[ $(target a reason) == *"its floor: the floors alone exceed the budget"* ]]
}

@test "memnet: bad share records are named by input and line; --slo out of range is refused" {
	good=$(share a $((768 * KIB)) 0 $((64 * KIB)) 4 8 0)
	# a record without full_s, with --strict: stops, exit 2, names <stdin>:2 and the field
	run --separate-stderr plan_memnet --strict < <(echo "$good"; echo '{"kind":"share","domain":"a","window_s":10,"size_bytes":1,"used_bytes":0,"arrivals_per_s":1,"departures_per_s":1}')
	echo "stderr: $stderr"
	[ "$status" -eq 2 ]
	[[ $stderr == *"<stdin>:2"*"full_s"* ]]
	# skipped with a warning without --strict; the good records still get targets; exit 2 at the end
	run --separate-stderr plan_memnet < <(echo '{"kind":"share","domain":"b","window_s":0,"size_bytes":1,"used_bytes":0,"arrivals_per_s":1,"departures_per_s":1,"full_s":0}'; echo "$good")
	echo "stderr: $stderr"
	[ "$status" -eq 2 ]
	[[ $stderr == *"<stdin>:1: field \"window_s\" must be more than 0"* ]]
	[ "$(target a share_bytes)" -eq $((448 * KIB)) ]
	run --separate-stderr plan_memnet --strict < <(echo '{"kind":"share","domain":"b","window_s":10,"size_bytes":1,"used_bytes":0,"arrivals_per_s":-1,"departures_per_s":1,"full_s":0}')
	[ "$status" -eq 2 ]
	[[ $stderr == *"<stdin>:1: field \"arrivals_per_s\" must be a number >= 0 (got -1)"* ]]
	run --separate-stderr plan_memnet --strict < <(echo '{"kind":"share","domain":"b","window_s":10,"size_bytes":1,"used_bytes":0,"arrivals_per_s":1,"departures_per_s":1,"full_s":20}')
	[ "$status" -eq 2 ]
	[[ $stderr == *"<stdin>:1: full_s 20"*"longer than window_s 10"* ]]
	run --separate-stderr plan_memnet --strict < <(echo '{"kind":"share","domain":"b","window_s":10,"size_bytes":"big","used_bytes":0,"arrivals_per_s":1,"departures_per_s":1,"full_s":0}')
	[ "$status" -eq 2 ]
	[[ $stderr == *"<stdin>:1"*"size_bytes"* ]]
	for slo in 0% 100% 150% abc; do
		run --separate-stderr plan_memnet --slo "$slo" <<<"$good"
		echo "--slo $slo: $status $stderr"
		[ "$status" -eq 2 ]
		[[ $stderr == *"--slo"*"$slo"* ]]
		[ -z "$output" ]
	done
}

# ---- --apply on real tmpfs spaces ----------------------------------------

require_tmpfs() {
	[ "$(id -u)" = 0 ] || skip "needs root to mount tmpfs spaces"
	export MEMSHARE_SHARE_DIR=$BATS_TEST_TMPDIR/share
	SPACES=()
}

# space DOMAIN SIZE: a tmpfs of SIZE for DOMAIN under $MEMSHARE_SHARE_DIR
space() {
	mkdir -p "$MEMSHARE_SHARE_DIR/$1"
	mount -t tmpfs -o "size=$2" tmpfs "$MEMSHARE_SHARE_DIR/$1"
	SPACES+=("$MEMSHARE_SHARE_DIR/$1")
}

size_of() {
	echo $(($(stat -f -c '%b * %S' "$MEMSHARE_SHARE_DIR/$1")))
}

teardown() {
	[ -n "${LOOP_PIDS:-}" ] && kill $LOOP_PIDS 2>/dev/null && wait $LOOP_PIDS 2>/dev/null
	local d
	for d in "${SPACES[@]}"; do until_true 30 umount "$d" || umount -l "$d"; done
	remove_cgroups 2>/dev/null || :
}

@test "memnet --apply: each space is resized to its target; a refused resize is a warning and the loop goes on" {
	require_tmpfs
	space a 768K
	space b 1M
	# b's record says nothing is in use, but 900K are: its 672K target is refused, a is still resized
	head -c $((900 * KIB)) /dev/zero >"$MEMSHARE_SHARE_DIR/b/job"
	run --separate-stderr "$MSBALLOON" -c cgroup:/// plan --policy memnet --host-memory 8G --apply \
		< <(share a $((768 * KIB)) 0 $((64 * KIB)) 4 8 0; share b $((1024 * KIB)) 0 $((32 * KIB)) 8 10 0)
	echo "status $status; stderr: $stderr; $output"
	[ "$status" -eq 1 ]
	[ "$(size_of a)" -eq $((448 * KIB)) ]
	[ "$(target a applied)" = true ]
	[ "$(target a actual_bytes)" -eq $((448 * KIB)) ]
	[ "$(size_of b)" -eq $((1024 * KIB)) ]
	[ "$(target b applied)" = false ]
	[[ $(target b error) == "b: shared space not resized: "* ]]
	[[ $stderr == *"b: shared space not resized"* ]]
}

@test "memnet apply < plan: share targets are resized as plan --apply resizes them, never below use + the plan's margin" {
	require_tmpfs
	space a 768K
	space b 1M
	space c 640K
	head -c $((900 * KIB)) /dev/zero >"$MEMSHARE_SHARE_DIR/b/job"
	# c: 256K in use when planned: its 320K target is the floor, 256K + one 64K job; the plan keeps that margin
	head -c $((256 * KIB)) /dev/zero >"$MEMSHARE_SHARE_DIR/c/job"
	plan=$BATS_TEST_TMPDIR/plan.jsonl
	plan_memnet < <(share a $((768 * KIB)) 0 $((64 * KIB)) 4 8 0; share b $((1024 * KIB)) 0 $((32 * KIB)) 8 10 0
		share c $((640 * KIB)) $((256 * KIB)) $((64 * KIB)) 1 100 0) > "$plan"
	cat "$plan"
	jq_true -s 'map(select(.domain == "c")) | .[0].share_margin_bytes == 65536' < "$plan"
	[ "$(size_of a)" -eq $((768 * KIB)) ] # planning alone resizes nothing
	# then c's job grows past what the plan saw: 300K + the 64K margin do not fit in its 320K target
	head -c $((300 * KIB)) /dev/zero >"$MEMSHARE_SHARE_DIR/c/job"
	run --separate-stderr "$MSBALLOON" -c cgroup:/// apply < "$plan"
	echo "status $status; stderr: $stderr; $output"
	[ "$status" -eq 1 ]
	[ "$(size_of a)" -eq $((448 * KIB)) ]
	[ "$(target a applied)" = true ]
	[ "$(target a actual_bytes)" -eq $((448 * KIB)) ]
	[ "$(target a share_bytes)" -eq $((448 * KIB)) ]
	[ "$(size_of b)" -eq $((1024 * KIB)) ]
	[ "$(target b applied)" = false ]
	[[ $(target b error) == "b: shared space not resized: "* ]]
	[ "$(size_of c)" -eq $((640 * KIB)) ]
	[ "$(target c share_bytes)" -eq $((320 * KIB)) ]
	[ "$(target c applied)" = false ]
	[[ $(target c error) == "c: shared space not resized: "*"below"* ]]
	[ "$(jq -s length <<<"$output")" -eq 3 ]
	# a share target without a margin (another program's plan) goes as low as tmpfs allows
	run --separate-stderr "$MSBALLOON" -c cgroup:/// apply \
		<<<'{"kind":"target","domain":"c","policy":"hand","share_bytes":307200,"reason":"by hand"}'
	[ "$status" -eq 0 ]
	[ "$(size_of c)" -eq 307200 ]
	# a bad share_bytes is bad input, named by line
	run --separate-stderr "$MSBALLOON" -c cgroup:/// apply <<<'{"kind":"target","domain":"c","share_bytes":"x"}'
	[ "$status" -eq 2 ]
	[[ $stderr == *"<stdin>:1"*"share_bytes"* ]]
}

# ---- the whole loop: msshare watch | msballoon plan --policy memnet --apply -----

MSSHARE=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msshare

# exp_draw RATE: an exponential draw of mean 1/RATE seconds
exp_draw() {
	awk -v s="$RANDOM$RANDOM" -v r="$1" 'BEGIN { srand(s); printf "%.4f\n", -log(1 - rand()) / r }'
}

# producer DIR LAMBDA BYTES: jobs of BYTES written at Poisson rate LAMBDA (a temporary name,
# then renamed into place); a job that does not fit waits for room, as a writer would.
producer() {
	local i=0
	while :; do
		sleep "$(exp_draw "$2")"
		i=$((i + 1))
		until head -c "$3" /dev/zero > "$1/.tmp.$i" 2>/dev/null; do
			rm -f "$1/.tmp.$i"
			sleep 0.01
		done
		mv "$1/.tmp.$i" "$(printf '%s/job.%08d' "$1" "$i")"
	done
}

# consumer DIR MU: the host's transmitter: the oldest job is sent (exponential time, rate MU)
# and removed, one at a time.
consumer() {
	local j
	while :; do
		j=$(cd "$1" && ls job.* 2>/dev/null | head -1)
		if [ -n "$j" ]; then
			sleep "$(exp_draw "$2")"
			rm -f "$1/$j"
		else
			sleep 0.01
		fi
	done
}

space_size() { echo $(($(stat -f -c '%b * %S' "$1"))); }
size_below() { [ "$(space_size "$1")" -lt "$2" ]; }
lines_at_least() { [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ]; }

@test "memnet loop: msshare watch | msballoon plan --policy memnet --apply sizes a cgroup domain's space to the SLO" {
	[ "$(id -u)" = 0 ] || skip "needs root (tmpfs spaces, cgroups)"
	command -v jq >/dev/null || skip "jq is not installed"
	require_cgroups
	export MEMSHARE_SHARE_DIR=$BATS_TEST_TMPDIR/share
	mkdir -p "$MEMROOT$CG_BASE/vm1"
	d=$CG_BASE/vm1
	"$MSSHARE" create "$d" --size 4M > /dev/null
	dir=$MEMSHARE_SHARE_DIR$d
	SPACES=("$dir")
	shares=$BATS_TEST_TMPDIR/shares.jsonl targets=$BATS_TEST_TMPDIR/targets.jsonl
	mkfifo "$BATS_TEST_TMPDIR/p1" "$BATS_TEST_TMPDIR/p2"
	"$MSSHARE" watch -i 1s "$d" > "$BATS_TEST_TMPDIR/p1" &
	LOOP_PIDS="$!"
	tee "$shares" < "$BATS_TEST_TMPDIR/p1" > "$BATS_TEST_TMPDIR/p2" &
	LOOP_PIDS="$LOOP_PIDS $!"
	"$MSBALLOON" -c cgroup:/// plan --policy memnet --slo 5% --apply --host-memory 8G \
		< "$BATS_TEST_TMPDIR/p2" > "$targets" 2> "$BATS_TEST_TMPDIR/plan.err" &
	LOOP_PIDS="$LOOP_PIDS $!"
	# lambda 5/s of 64K jobs, mu 10/s (less what the shell loops take: the model sees the rates
	# measured): rho 0.5; 0.5^5 = 3.1% <= 5% < 0.5^4: n = 4, 5 x 64K = 320K
	producer "$dir" 5 65536 &
	LOOP_PIDS="$LOOP_PIDS $!"
	consumer "$dir" 10 &
	LOOP_PIDS="$LOOP_PIDS $!"
	# the space comes down from 4M toward the model's size
	until_true 120 size_below "$dir" $((2 * 1024 * 1024))
	first=$(wc -l < "$shares")
	# then 30 intervals of the loop at work
	until_true 120 lines_at_least "$shares" $((first + 30))
	kill $LOOP_PIDS
	LOOP_PIDS=
	cat "$BATS_TEST_TMPDIR/plan.err"
	jq -c 'select(.kind == "target") | [.share_bytes, .applied, .reason]' "$targets" | tail -5
	# the figures of those 30 intervals: the full fraction, the mean size, the rates
	figures=$(tail -n +$((first + 1)) "$shares" | head -30 | jq -s '{
		full: ((map(.full_s) | add) / (map(.window_s) | add)),
		size_k: ((map(.size_bytes) | add) / length / 1024 | floor),
		lambda: ((map(.arrivals_per_s * .window_s) | add) / (map(.window_s) | add)),
		mu: ((map(.departures_per_s * .window_s) | add) / (map(.busy_s) | add))}')
	echo "# memnet loop, 30 intervals after the first resize: $(jq -c . <<<"$figures")" >&3
	jq -e '.full <= 0.05 + 0.05' <<<"$figures"                      # within the SLO, 5% tolerance
	jq -e '.size_k >= 192 and .size_k <= 2048' <<<"$figures"        # the model's size x gain, far below 4M
	# the targets were applied, explained by the model
	jq_true -s 'map(select(.kind == "target" and .applied == true)) | length >= 1' < "$targets"
	jq_true -s 'map(select(.kind == "target" and (.reason | startswith("M/M/1 λ=")))) | length >= 30' < "$targets"
}
