#!/usr/bin/env bats
# msballoon train and the learned policies of msballoon sim (CAVMem on the
# simulated node): records, model files, evaluation, bad input.
bats_require_minimum_version 1.5.0
load helpers

setup() {
	SCEN=${MEMSHARE_ROOT:-$PWD}/tests/scenarios/two_contended.json
	M=$BATS_TEST_TMPDIR/model
}

# train AGENT EPISODES: a short training on the contended 2-VM node into $M.
train() {
	"$MSBALLOON" train --scenario "$SCEN" --agent "$1" --episodes "$2" --steps 20 --explore-episodes 2 --seed 3 -o "$M"
}

# records_well_formed AGENT EPISODES: one "train" record per episode, in order, with its fields.
records_well_formed() {
	[ "$(wc -l <<<"$output")" -eq "$2" ]
	jq_true -s --arg a "$1" --argjson n "$2" '
		length == $n and
		([.[].episode] == [range(0; $n)]) and
		all(.[]; .kind == "train" and .agent == $a and .scenario == "two_contended" and .steps == 20 and
			(.reward | type) == "number" and .reward <= 0 and .msr_deviation == -.reward and
			.miss_rate_per_s >= 0 and .epsilon > 0 and .epsilon <= 1 and .seconds >= 0 and
			(.ts | type) == "string" and (.host | type) == "string") and
		.[0].epsilon == 1 and .[-1].epsilon == 0.001' <<<"$output"
}

@test "msballoon train --agent ql: one record per episode, a model that sim --policy ql --table runs" {
	run --separate-stderr train ql 4
	[ "$status" -eq 0 ]
	[ -z "$stderr" ] # no progress bar when stderr is not a terminal
	records_well_formed ql 4
	[ "$(head -c 8 "$M")" = MSBMODEL ]
	run "$MSBALLOON" sim --scenario "$SCEN" --policy ql --model "$M" --table
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "scenario two_contended, policy ql "* ]]
	[[ $output == *"big "* && $output == *"small "* ]]
	# the JSON records: every interval's targets come from the Bid Analyzer, within the floor and the node
	run "$MSBALLOON" sim --scenario "$SCEN" --policy ql --model "$M"
	[ "$status" -eq 0 ]
	jq_true -s 'map(select(.kind == "sim")) | length == 200 and all(.[]; .policy == "ql" and
		.balloon_bytes >= 402653184 and (.reason | startswith("bid ")))' <<<"$output"
	jq_true -s '[.[] | select(.kind == "sim")] | group_by(.t_s) | all(.[]; (map(.balloon_bytes) | add) <= 2147483648)' <<<"$output"
	# the same model on another number of VMs: the usemem scenario's three
	run "$MSBALLOON" sim --scenario "${MEMSHARE_ROOT:-$PWD}/src/msballoon/scenarios/usemem.json" --policy ql --model "$M" --table
	[ "$status" -eq 0 ]
	[[ $output == *"3 VMs"* ]]
}

@test "msballoon train --agent ddpg and dql: records, models that sim runs without exploration, the same bytes for the same seed" {
	for agent in ddpg dql; do
		run --separate-stderr train $agent 3
		[ "$status" -eq 0 ]
		records_well_formed $agent 3
		cp "$M" "$M.1"
		train $agent 3 >/dev/null
		cmp "$M" "$M.1"
		run "$MSBALLOON" sim --scenario "$SCEN" --policy $agent --model "$M" --table
		[ "$status" -eq 0 ]
		[[ ${lines[0]} == "scenario two_contended, policy $agent "* ]]
		# a model of one kind is not another's
		other=$([ $agent = ddpg ] && echo dql || echo ddpg)
		run "$MSBALLOON" sim --scenario "$SCEN" --policy $other --model "$M"
		[ "$status" -eq 2 ]
		[ "$output" = "msballoon: $M: a model of agent $agent, not $other" ]
	done
}

@test "msballoon train --agent static: the equal-split baseline trains (nothing to learn) and writes a model" {
	run --separate-stderr train static 3
	[ "$status" -eq 0 ]
	records_well_formed static 3
	# a baseline's model is not a learned policy for sim
	run "$MSBALLOON" sim --scenario "$SCEN" --policy ql --model "$M"
	[ "$status" -eq 2 ]
	[ "$output" = "msballoon: $M: a model of agent static, not ql" ]
}

@test "msballoon train: the same --seed gives the same model bytes" {
	train ql 3 >/dev/null
	mv "$M" "$M.1"
	train ql 3 >/dev/null
	cmp "$M" "$M.1"
}

@test "msballoon sim --policy ql: a missing, corrupt or truncated model is refused with one line (exit 2)" {
	run "$MSBALLOON" sim --scenario "$SCEN" --policy ql --model "$M"
	[ "$status" -eq 2 ]
	[ "$output" = "msballoon: $M: no such model file" ]
	run "$MSBALLOON" sim --scenario "$SCEN" --policy ql
	[ "$status" -eq 2 ]
	[[ ${lines[0]} == "msballoon: sim --policy ql needs --model MODEL"* ]]
	train ql 1 >/dev/null
	cp "$M" "$M.good"
	# a flipped byte in the table
	printf '\x7f' | dd of="$M" bs=1 seek=4000 conv=notrunc status=none
	run "$MSBALLOON" sim --scenario "$SCEN" --policy ql --model "$M"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == "msballoon: $M: bad checksum"* ]]
	head -c 5000 "$M.good" >"$M"
	run "$MSBALLOON" sim --scenario "$SCEN" --policy ql --model "$M"
	[ "$status" -eq 2 ]
	[[ $output == "msballoon: $M: truncated: 5000 of its "*" bytes" ]]
	echo 'not a model at all' >"$M"
	run "$MSBALLOON" sim --scenario "$SCEN" --policy ql --model "$M"
	[ "$status" -eq 2 ]
	[ "$output" = "msballoon: $M: not a msballoon model file (no MSBMODEL magic)" ]
	# --model with a policy that is not learned
	run "$MSBALLOON" sim --scenario "$SCEN" --policy bid --model "$M.good"
	[ "$status" -eq 2 ]
	[[ ${lines[0]} == "msballoon: --model goes with a learned --policy"* ]]
}

@test "msballoon train: bad arguments exit 2 with one line naming them" {
	run "$MSBALLOON" train --scenario "$SCEN" --agent nosuch -o "$M"
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "msballoon: --agent: unknown agent 'nosuch' (agents: ddpg, dql, ql, static)" ]
	for n in 0 -1 99999999999999999999 1000001; do
		run "$MSBALLOON" train --scenario "$SCEN" --agent ql --episodes "$n" -o "$M"
		[ "$status" -eq 2 ]
		[[ ${lines[0]} == "msballoon: --episodes: '$n' "* || ${lines[0]} == "msballoon: --episodes: must be at least 1" ]]
	done
	run "$MSBALLOON" train --scenario "$SCEN" --agent ql --steps 0 -o "$M"
	[ "$status" -eq 2 ]
	[ "${lines[0]}" = "msballoon: --steps: must be at least 1" ]
	run "$MSBALLOON" train --scenario "$SCEN" --agent ql
	[ "$status" -eq 2 ]
	[[ ${lines[0]} == "msballoon: train needs -o MODEL"* ]]
	run "$MSBALLOON" train --scenario "$BATS_TEST_TMPDIR/none.json" --agent ql -o "$M"
	[ "$status" -eq 2 ]
	[[ ${lines[0]} == "msballoon: $BATS_TEST_TMPDIR/none.json"* ]]
	# a scenario without host_bytes: the agents need the node's memory
	jq 'del(.host_bytes)' "$SCEN" >"$BATS_TEST_TMPDIR/nohost.json"
	run "$MSBALLOON" train --scenario "$BATS_TEST_TMPDIR/nohost.json" --agent ql -o "$M"
	[ "$status" -eq 2 ]
	[ "$output" = "msballoon: $BATS_TEST_TMPDIR/nohost.json: the scenario gives no host_bytes: the agents need the node's memory" ]
	[ ! -e "$M" ]
	# an output directory that does not exist: an operation failure, no model
	run "$MSBALLOON" train --scenario "$SCEN" --agent ql --episodes 1 --steps 1 -o "$BATS_TEST_TMPDIR/no/dir/m"
	[ "$status" -eq 1 ]
	[[ $output == *"cannot create $BATS_TEST_TMPDIR/no/dir/m.tmp."* ]]
}

# svg_has FILE TEXT...: FILE is a complete SVG (gnuplot closed it) that shows every TEXT.
svg_has() {
	local svg=$1
	shift
	head -c 200 "$svg" | grep -q '<svg'
	tail -c 20 "$svg" | grep -q '</svg>'
	for text in "$@"; do
		grep -qF -- "$text" "$svg" || { echo "$svg lacks '$text'"; return 1; }
	done
}

@test "msballoon train --plot and sim --plot: gnuplot draws the records the command writes (SVG, atomically)" {
	command -v gnuplot >/dev/null || skip "gnuplot is not installed (scripts/install-deps installs gnuplot-nox)"
	run --separate-stderr "$MSBALLOON" train --scenario "$SCEN" --agent ql --episodes 5 --steps 20 --seed 3 \
		--explore-episodes 2 -o "$M" \
		--plot "$BATS_TEST_TMPDIR/train.svg"
	[ "$status" -eq 0 ]
	records_well_formed ql 5
	svg_has "$BATS_TEST_TMPDIR/train.svg" "msballoon train: ql on two_contended" "epsilon" "|msr - msrTgt|" "episode"
	[ "$(stat -c %a "$BATS_TEST_TMPDIR/train.svg")" = 644 ]
	# sim: one line per domain, the JSON Lines unchanged beside the picture; with --table too
	run --separate-stderr "$MSBALLOON" sim --scenario "$SCEN" --policy ql --model "$M" --plot "$BATS_TEST_TMPDIR/sim.svg"
	[ "$status" -eq 0 ]
	jq_true -s 'map(select(.kind == "sim")) | length > 0 and all(.[]; (.miss_rate_per_s | type) == "number")' <<<"$output"
	svg_has "$BATS_TEST_TMPDIR/sim.svg" "msballoon sim: ql on two_contended" "big RAM" "small RAM" "big demand" \
		"RAM misses (pages/s)"
	run --separate-stderr "$MSBALLOON" sim --scenario "$SCEN" --policy static --table --plot "$BATS_TEST_TMPDIR/table.svg"
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == "scenario two_contended, policy static "* ]]
	svg_has "$BATS_TEST_TMPDIR/table.svg" "msballoon sim: static on two_contended" "big RAM"
	# nothing left beside the pictures
	[ "$(find "$BATS_TEST_TMPDIR" -name '*.tmp.*' | wc -l)" -eq 0 ]
}

@test "msballoon --plot: no gnuplot or no place to write fails before the run (exit 1, one line), a failed run draws nothing" {
	mkdir "$BATS_TEST_TMPDIR/bin" # a PATH without gnuplot
	run --separate-stderr env PATH="$BATS_TEST_TMPDIR/bin" "$MSBALLOON" train --scenario "$SCEN" --agent ql --episodes 3 \
		-o "$M" --plot "$BATS_TEST_TMPDIR/t.svg"
	[ "$status" -eq 1 ]
	[ -z "$output" ] # refused before the first episode
	[ "$stderr" = "msballoon: --plot $BATS_TEST_TMPDIR/t.svg: gnuplot is not installed (Debian: apt install gnuplot-nox)" ]
	[ ! -e "$M" ]
	command -v gnuplot >/dev/null || skip "gnuplot is not installed"
	run --separate-stderr "$MSBALLOON" sim --scenario "$SCEN" --policy static --plot "$BATS_TEST_TMPDIR/nowhere/s.svg"
	[ "$status" -eq 1 ]
	[[ $stderr == "msballoon: --plot $BATS_TEST_TMPDIR/nowhere/s.svg: cannot write in $BATS_TEST_TMPDIR/nowhere: "* ]]
	[ -z "$output" ]
	run --separate-stderr "$MSBALLOON" sim --scenario "$BATS_TEST_TMPDIR/absent.json" --policy static \
		--plot "$BATS_TEST_TMPDIR/s.svg"
	[ "$status" -ne 0 ]
	[ ! -e "$BATS_TEST_TMPDIR/s.svg" ]
}
