#!/usr/bin/env bats
# The documentation against the code: man pages render cleanly, name every
# policy and every field the records can carry (every option of --help, with
# its default and meaning: docs_options.bats), and
# every field a tool reads; the shell completions offer what the tool
# accepts.  Every list taken from the code is checked to be non-trivial
# first, so that an extraction that finds nothing fails instead of passing.
load docs_helpers
load helpers # until_true, wait_socket

setup() {
	ROOT=${MEMSHARE_ROOT:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	MSWSS=${MEMSHARE_BIN:-$ROOT/bin}/mswss
	BINDIR=${MSWSS%/mswss}
	MSBALLOON=$BINDIR/msballoon
	MSRSWAP=$BINDIR/msrswap
	MAN1=$ROOT/man/mswss.1
	MAN1B=$ROOT/man/msballoon.1
	MAN1R=$ROOT/man/msrswap.1
	MAN7=$ROOT/man/memshare.7
	SRCB=$ROOT/src/msballoon
	SRCR=$ROOT/src/msrswap
	BASHCOMP=$ROOT/completions/memshare.bash
	ZSHCOMP=$ROOT/completions/_memshare
}

need_mswss() {
	[ -x "$MSWSS" ] || skip "$MSWSS is not built (run make)"
}

need_msballoon() {
	[ -x "$MSBALLOON" ] || skip "$MSBALLOON is not built (run make)"
}

need_msrswap() {
	[ -x "$MSRSWAP" ] || skip "$MSRSWAP is not built (run make; it links once src/msrswap/tier_store.c is complete)"
}

# Daemons a test started (DOCS_PIDS) and its scratch directory (DOCS_TMP).
teardown() {
	local pid
	for pid in ${DOCS_PIDS-}; do
		kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	DOCS_PIDS=
	[ -z "${DOCS_TMP-}" ] || rm -rf "$DOCS_TMP"
	DOCS_TMP=
	return 0
}

# ---- man pages -------------------------------------------------------------

render_warnings() {
	local page=$1 out
	if command -v man >/dev/null; then
		out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
		[ -z "$out" ] || { echo "man --warnings $page:"; echo "$out"; return 1; }
	fi
	if command -v groff >/dev/null; then
		out=$(groff -man -ww -z "$page" 2>&1)
		[ -z "$out" ] || { echo "groff -ww $page:"; echo "$out"; return 1; }
	fi
}

@test "docs: mswss(1) and memshare(7) render without warnings, within 80 columns" {
	command -v man >/dev/null || command -v groff >/dev/null || skip "neither man (man-db) nor groff (groff-base) is installed"
	for page in "$MAN1" "$MAN7"; do
		render_warnings "$page"
	done
	command -v man >/dev/null || skip "man (man-db) is not installed: width and sections not checked"
	for page in "$MAN1" "$MAN7"; do
		text=$(rendered "$page")
		# a page that rendered to nothing would have no warnings either
		[ "$(wc -l <<<"$text")" -gt 100 ]
		long=$(awk 'length > 80' <<<"$text")
		[ -z "$long" ] || { echo "lines over 80 columns in $page:"; echo "$long"; return 1; }
	done
	text=$(rendered "$MAN1")
	for section in NAME SYNOPSIS DESCRIPTION OPTIONS METHODS STATE OUTPUT "EXIT STATUS" ENVIRONMENT EXAMPLES "SEE ALSO"; do
		grep -qx "$section" <<<"$text" || { echo "mswss(1) has no section $section"; return 1; }
	done
	text=$(rendered "$MAN7")
	for section in NAME DESCRIPTION "COMMON RULES" "CONNECTION URIS" "DOMAIN NAMES" 'THE "wss" RECORD' \
		'THE "tier" RECORD' 'THE "bid" RECORD' 'THE "target" RECORD' 'THE "reservoir" RECORD' \
		'THE "grant_any" RECORD' 'THE "sim" RECORD' 'THE "sim_summary" RECORD' 'THE "export_stats" RECORD' \
		'THE "pool_stats" RECORD' 'THE "failover" RECORD' 'THE "attach" RECORD' "FURTHER KINDS" "SEE ALSO"; do
		grep -qx "$section" <<<"$text" || { echo "memshare(7) has no section $section"; return 1; }
	done
}

@test "docs: the pages carry the version of the tools" {
	need_mswss
	need_msballoon
	version=$("$MSWSS" --version | awk '{print $NF}')
	[[ $version =~ ^[0-9]+\.[0-9]+ ]]
	[ "$("$MSBALLOON" --version | awk '{print $NF}')" = "$version" ]
	if [ -x "$MSRSWAP" ]; then
		[ "$("$MSRSWAP" --version | awk '{print $NF}')" = "$version" ]
	fi
	for page in "$MAN1" "$MAN1B" "$MAN1R" "$MAN7"; do
		grep -q "^\.TH .* \"memshare $version\" " "$page" || { echo "$page: .TH does not say memshare $version"; return 1; }
	done
}

@test "docs: mswss(1) describes every method of --list-methods" {
	need_mswss
	methods=$("$MSWSS" --list-methods | sort)
	[ "$(wc -l <<<"$methods")" -ge 5 ]
	tags=$(roff_section "$MAN1" METHODS | tp_tags | plain_roff | sed 's/^\.B //' | sort)
	same_lists "$methods" "$tags"
}

# Fields the "wss" record can carry, from the code: "always" ones set
# unconditionally (and the common kind/ts/host of record_new), "known" ones
# through json_set_known_*.
record_fields() {
	local class=$1
	if [ "$class" = always ]; then
		sed -n '/^json_t \*record_new(/,/^}/p' "$ROOT/src/common/jsonl.c" | grep -oE '"[a-z_]+"' | tr -d '"'
		grep -oE 'json_object_set_new\(r, "[a-z0-9_]+"' "$ROOT/src/mswss/record.c" | grep -oE '"[a-z0-9_]+"' | tr -d '"'
	else
		grep -oE 'json_set_known_[a-z0-9]+\(r, "[a-z0-9_]+"' "$ROOT/src/mswss/record.c" | grep -oE '"[a-z0-9_]+"' | tr -d '"'
	fi
}

# Field tags of the wss record in memshare(7), by subsection.
documented_fields() {
	roff_section "$MAN7" 'THE \(dqwss\(dq RECORD' |
		sub=$1 awk '/^\.SS / { s = substr($0, 5); next } (ENVIRON["sub"] == "" || s == ENVIRON["sub"]) && prev == ".TP" { print } { prev = $0 }' |
		sed -n 's/^\.B \([a-z0-9_]*\)$/\1/p'
}

@test "docs: memshare(7) documents every field of the wss record, and no other" {
	always=$(record_fields always | sort -u)
	known=$(record_fields known | sort -u)
	# the extraction works: kind, ts, host, wss_bytes ... and the optional ones
	[ "$(wc -l <<<"$always")" -ge 10 ]
	[ "$(wc -l <<<"$known")" -ge 10 ]
	grep -qx kind <<<"$always"
	grep -qx wss_bytes <<<"$always"
	grep -qx refault_bytes_per_s <<<"$known"

	all_code=$(sort -u <<<"$always"$'\n'"$known")
	all_doc=$(documented_fields "" | sort -u)
	same_lists "$all_code" "$all_doc"

	# A field the code always writes is documented as always present; a field
	# documented as present only when known is one the code may leave out.
	doc_always=$(documented_fields "Always present" | sort -u)
	doc_known=$(documented_fields "Present when known" | sort -u)
	[ -n "$doc_always" ]
	[ -n "$doc_known" ]
	missing=$(comm -23 <(echo "$always") <(echo "$doc_always"))
	[ -z "$missing" ] || { echo "always written, not documented as always present: $missing"; return 1; }
	wrong=$(comm -23 <(echo "$doc_known") <(echo "$known"))
	[ -z "$wrong" ] || { echo "documented as 'when known', written always: $wrong"; return 1; }
}

@test "docs: every key of real wss records is documented in memshare(7)" {
	need_mswss
	command -v jq >/dev/null || skip "jq is not installed"
	documented=$(documented_fields "" | sort -u)
	keys=
	sleep 30 &
	local pid=$!
	if out=$("$MSWSS" -c cgroup:/// --window 200ms "pid:$pid" 2>/dev/null); then
		keys+=$(jq -r 'keys[]' <<<"$out")$'\n'
	fi
	kill "$pid" 2>/dev/null || :
	wait "$pid" 2>/dev/null || :
	for method in balloon refault; do
		if out=$("$MSWSS" -c test:///default --method "$method" --window 100ms test 2>/dev/null); then
			keys+=$(jq -r 'keys[]' <<<"$out")$'\n'
		fi
	done
	[ -n "$keys" ] || skip "mswss could measure neither a process (cgroup:///) nor libvirt's test:///default"
	undocumented=$(comm -23 <(grep . <<<"$keys" | sort -u) <(echo "$documented"))
	[ -z "$undocumented" ] || { echo "not in memshare(7): $undocumented"; return 1; }
}

# ---- msballoon(1) and the records of msballoon ---------------------------------

# The subcommands, from the usage lines of --help (of TOOL, default msballoon).
help_subcommands() {
	local tool=${1:-$MSBALLOON}
	"$tool" --help | sed -nE "s/^(Usage:)? +${tool##*/} ([a-z]+) .*/\\2/p" | sort -u
}

# The options of --help, as "NAME<TAB>DESCRIPTION" (NAME the long option; a
# description goes on on lines that begin with spaces and '(').
help_option_lines() {
	"${1:-$MSBALLOON}" --help | sed -E 's/^ +(-[a-zA-Z], )?(--[a-z-]+)( [A-Z][A-Z:-]*)? +(.*)$/\2\t\4/' |
		awk '/^--/ { if (e != "") print e; e = $0; next } /^ +\(/ && e != "" { sub(/^ +/, " "); e = e $0; next } { if (e != "") print e; e = "" } END { if (e != "") print e }'
}

@test "docs: msballoon(1) renders without warnings, within 80 columns, with its sections" {
	command -v man >/dev/null || command -v groff >/dev/null || skip "neither man (man-db) nor groff (groff-base) is installed"
	render_warnings "$MAN1B"
	command -v man >/dev/null || skip "man (man-db) is not installed: width and sections not checked"
	text=$(rendered "$MAN1B")
	[ "$(wc -l <<<"$text")" -gt 300 ]
	long=$(awk 'length > 80' <<<"$text")
	[ -z "$long" ] || { echo "lines over 80 columns in $MAN1B:"; echo "$long"; return 1; }
	for section in NAME SYNOPSIS DESCRIPTION SUBCOMMANDS OPTIONS POLICIES "SAFETY INVARIANTS" INTERVALS \
		APPLYING SIMULATOR OUTPUT "EXIT STATUS" ENVIRONMENT FILES EXAMPLES "SEE ALSO"; do
		grep -qx "$section" <<<"$text" || { echo "msballoon(1) has no section $section"; return 1; }
	done
}

# (That the options, defaults, values and subcommands of --help are those of
# the page, docs_options.bats checks for every tool.)
@test "docs: every option of msballoon(1) names its subcommands and policies, which exist" {
	need_msballoon
	entries=$(option_entries "$MAN1B")
	[ "$(wc -l <<<"$entries")" -ge 24 ]
	# Every option names the subcommands that use it, but those that exit at once.
	without=$(awk -F '\t' '$2 == "-" { print $1 }' <<<"$entries" | long_options | tr '\n' ' ')
	[ "$without" = "--help --list-policies --version " ] || { echo "no 'Subcommands:' line: $without"; return 1; }
	subcommands=$(help_subcommands | sort)
	[ "$(tr '\n' ' ' <<<"$subcommands")" = "apply plan set sim train " ]
	policies=$("$MSBALLOON" --list-policies)
	bad=$(cut -f2 <<<"$entries" | tr ', ' '\n\n' | grep . | grep -vxF -e - -e all -f <(echo "$subcommands")) || :
	[ -z "$bad" ] || { echo "not subcommands: $bad"; return 1; }
	bad=$(cut -f3 <<<"$entries" | tr ', ' '\n\n' | grep . | grep -vxF -e - -f <(echo "$policies")) || :
	[ -z "$bad" ] || { echo "not policies: $bad"; return 1; }
	# an option of policies is one of plan (and sim)
	[ "$(awk -F '\t' '$3 != "-"' <<<"$entries" | wc -l)" -ge 4 ]
	bad=$(awk -F '\t' '$3 != "-" && (", " $2 ", ") !~ /, plan, / { print $1 }' <<<"$entries")
	[ -z "$bad" ] || { echo "options of policies, not for plan: $bad"; return 1; }
}

@test "docs: msballoon(1) describes every policy of --list-policies, with its source and its kind of target" {
	need_msballoon
	policies=$("$MSBALLOON" --list-policies)
	[ "$(wc -l <<<"$policies")" -ge 7 ]
	tags=$(roff_section "$MAN1B" POLICIES | tp_tags | plain_roff | sed 's/^\.B //')
	same_lists "$policies" "$tags"
	# The summary of --help: "NAME  KIND: ... (SOURCE)".
	summaries=$("$MSBALLOON" --help | sed -nE 's/^ {20,}([a-z-]+) +(balloon|tier|share): .*\(([^()]*)\)$/\1\t\2\t\3/p')
	same_lists "$policies" "$(cut -f1 <<<"$summaries")"
	while IFS=$'\t' read -r name kind source; do
		body=$(roff_section "$MAN1B" POLICIES | plain_roff | sed 's/\\~/ /g' |
			awk -v n="$name" 'prev == ".TP" { f = ($0 == ".B " n) } { prev = $0 } f' | tr -s ' \n' ' ')
		[[ $body == *"Target: $kind."* ]] || { echo "$name: msballoon(1) does not say 'Target: $kind.'"; return 1; }
		[[ ${body,,} == *"${source,,}"* ]] || { echo "$name: msballoon(1) does not cite '$source'"; return 1; }
	done <<<"$summaries"
}

@test "docs: the examples of msballoon(1) name a subcommand and only options of --help" {
	need_msballoon
	command -v man >/dev/null || skip "man (man-db) is not installed"
	help=$("$MSBALLOON" --help)
	takes_value=$(sed -nE 's/^ +(-([a-zA-Z]), )?(--[a-z-]+) [A-Z]+ .*/\2 \3/p' <<<"$help" | tr ' ' '\n' | grep . | sed 's/^\([a-zA-Z]\)$/-\1/')
	grep -qx -- --policy <<<"$takes_value"
	# a command that ends in '|' or '\' goes on on the next line
	commands=$(rendered "$MAN1B" | sed -n '/^EXAMPLES$/,/^SEE ALSO$/p' | sed -e ':a' -e '/[|\\]$/{N;s/\\\?\n */ /;ba' -e '}' |
		grep -oE '(^|[ |#$])msballoon( [^|;>]*)?' | sed -E 's/^[ |#$]*//')
	[ "$(wc -l <<<"$commands")" -ge 7 ]
	grep -qF 'msballoon -c qemu:///system plan --policy wss --apply' <<<"$commands"
	grep -qF -- '--once' <<<"$commands"
	grep -qE 'msballoon .*set ' <<<"$commands"
	grep -qE 'msballoon sim .*--table' <<<"$commands"
	while read -r -a words; do
		sub=
		for ((i = 1; i < ${#words[@]}; i++)); do
			w=${words[i]}
			if [[ $w == -* ]]; then
				opt=${w%%=*}
				{ long_options <<<"$help"; short_options <<<"$help"; } | grep -qxF -- "$opt" ||
					{ echo "example '${words[*]}': $opt is not an option"; return 1; }
				grep -qxF -- "$w" <<<"$takes_value" && i=$((i + 1))
			elif [ -z "$sub" ]; then
				sub=$w
			fi
		done
		help_subcommands | grep -qxF -- "$sub" || { echo "example '${words[*]}': no subcommand"; return 1; }
	done <<<"$commands"
}

@test "docs: msballoon(1) documents the scenario fields sim reads and lists the shipped scenarios, which run" {
	need_msballoon
	# every key the scenario reader takes
	keys=$(grep -oE '(field_size|field_number|field_choice|parse_trigger)\([^;]*"[a-z_]+"|json_object_get\([a-z_]+, "[a-z_]+"' "$SRCB/sim_scenario.c" |
		grep -oE '"[a-z_]+"' | tr -d '"' | sort -u)
	[ "$(wc -l <<<"$keys")" -ge 20 ]
	grep -qx demand_bytes <<<"$keys"
	grep -qx remote_page_cost_us <<<"$keys"
	# the format of sim_scenario.h, the example of the page and the reader have the same keys
	in_header=$(sed -n '/^ \* {$/,/^ \* }$/p' "$SRCB/sim_scenario.h" | grep -oE '"[a-z_]+":' | tr -d '":' | sort -u)
	subsection=$(roff_section "$MAN1B" SIMULATOR | awk '/^\.SS / { s = substr($0, 5); next } s == "Scenario files"')
	in_example=$(sed -n '/^\.EX/,/^\.EE/p' <<<"$subsection" | plain_roff | grep -oE '"[a-z_]+":' | tr -d '":' | sort -u)
	same_lists "$keys" "$in_header"
	same_lists "$keys" "$in_example"
	# and each key is described in the subsection, outside the example
	text=$(sed '/^\.EX/,/^\.EE/d' <<<"$subsection" | plain_roff | sed 's/\\(dq/"/g')
	for key in $keys; do
		grep -qw -- "$key" <<<"$text" || { echo "Scenario files in msballoon(1) do not describe $key"; return 1; }
	done
	# the shipped scenarios: listed, and every one runs with every policy
	listed=$(roff_section "$MAN1B" SIMULATOR | tp_tags | plain_roff | sed -n 's/^\.B \(.*\.json\)$/\1/p' | sort)
	shipped=$(cd "$SRCB/scenarios" && ls -- *.json | sort)
	[ "$(wc -l <<<"$shipped")" -ge 4 ]
	same_lists "$shipped" "$listed"
	for f in $shipped; do
		for p in $("$MSBALLOON" --list-policies); do
			"$MSBALLOON" sim --scenario "$SRCB/scenarios/$f" --policy "$p" --table >/dev/null ||
				{ echo "msballoon sim --scenario $f --policy $p failed"; return 1; }
		done
	done
}

# The fields every record gets from record_new.
common_fields() {
	sed -n '/^json_t \*record_new(/,/^}/p' "$ROOT/src/common/jsonl.c" | grep -oE '"[a-z_]+"' | tr -d '"'
}

# read_by KIND CLASS: fields of the "Read by msballoon" subsection whose text
# begins with CLASS (Required or Optional).
read_by() {
	roff_section "$MAN7" "THE \\(dq$1\\(dq RECORD" |
		class=$2 awk '/^\.SS / { s = substr($0, 5); next }
			s == "Read by msballoon" && pprev == ".TP" && prev ~ /^\.B [a-z0-9_]+$/ && index($0, ENVIRON["class"]) == 1 { print substr(prev, 4) }
			{ pprev = prev; prev = $0 }' | sort -u
}

@test "docs: memshare(7) documents every field of the records msballoon writes, and no other" {
	[ "$(common_fields | sort | tr '\n' ' ')" = "host kind ts " ]
	# every kind of record output.c and sim.c make is one checked here
	kinds=$(grep -ohE 'record_new\("[a-z_]+"\)' "$SRCB/output.c" "$SRCB/sim.c" | grep -oE '"[a-z_]+"' | tr -d '"' | sort | tr '\n' ' ')
	[ "$kinds" = "grant_any reservoir sim sim_summary target " ]
	while read -r kind file fn min; do
		code=$(emitted "$SRCB/$file" "$fn")
		sed -n "/^[a-z].*[ *]$fn(/,/^}/p" "$SRCB/$file" | grep -qF "record_new(\"$kind\")"
		[ "$(wc -l <<<"$code")" -ge "$min" ] || { echo "$fn: only $(wc -l <<<"$code") fields found"; return 1; }
		always=$( { common_fields; sed -n 's/^always //p' <<<"$code"; } | sort -u)
		known=$(sed -n 's/^known //p' <<<"$code" | sort -u)
		all_code=$(printf '%s\n' "$always" "$known" | grep . | sort -u)
		[ -n "$known" ] || [ "$kind" = grant_any ]
		if [ "$kind" = target ]; then
			outcome=$(emitted "$SRCB/output.c" add_outcome | cut -d' ' -f2 | sort -u)
			[ "$(tr '\n' ' ' <<<"$outcome")" = "actual_bytes applied error reached " ]
			same_lists "$outcome" "$(record_tags target Outcome)"
			# what plan.c adds to tier targets, sent (--tier-control) or not
			tier_outcome=$( { emitted "$SRCB/plan.c" note_tier_not_applied; emitted "$SRCB/plan.c" apply_tier_target; } |
				cut -d' ' -f2 | sort -u)
			[ "$(tr '\n' ' ' <<<"$tier_outcome")" = "tier_applied tier_error " ]
			same_lists "$tier_outcome" "$(record_tags target "Tier outcome")"
			# what plan.c adds with a learned policy (the bid, HAL's part)
			live=$(emitted "$SRCB/plan.c" add_live_fields | cut -d' ' -f2 | sort -u)
			[ "$(tr '\n' ' ' <<<"$live")" = "bid hal_override hal_overrides usrtime usrtime_target " ]
			same_lists "$live" "$(record_tags target "Learned policy")"
			all_code=$(sort -u <<<"$all_code"$'\n'"$outcome"$'\n'"$tier_outcome"$'\n'"$live")
		fi
		same_lists "$all_code" "$(record_tags "$kind")"
		missing=$(comm -23 <(echo "$always") <(record_tags "$kind" "Always present"))
		[ -z "$missing" ] || { echo "$kind: always written, not documented as always present: $missing"; return 1; }
		doc_known=$(record_tags "$kind" "Present when known")
		[ -n "$doc_known" ] || [ -z "$known" ]
		wrong=$(comm -23 <(echo "$doc_known") <(echo "$known"))
		[ -z "$wrong" ] || { echo "$kind: documented as 'when known', written always: $wrong"; return 1; }
	done <<-'EOF'
		target output.c target_record 10
		reservoir output.c reservoir_record 5
		grant_any output.c grant_any_record 3
		sim sim.c emit_interval 20
		sim_summary sim.c emit_summaries 25
	EOF
}

# read_fields KIND CLASS: the fields observe.c takes from a KIND record, as
# "required" (jsonl_get_*: an error when missing) or "optional".
read_fields() {
	local body required
	body=$(sed -n "/^static int parse_$1(/,/^}/p" "$SRCB/observe.c")
	[ -n "$body" ] || return 1
	required=$( {
		sed -n '/^int observation_parse(/,/^}/p' "$SRCB/observe.c" | grep -oE 'jsonl_get_[a-z0-9]+\([a-z]+, record, "[a-z0-9_]+"'
		grep -oE 'jsonl_get_[a-z0-9]+\([a-z]+, rec, "[a-z0-9_]+"|record_size\([a-z]+, rec, "[a-z0-9_]+", true' <<<"$body"
	} | grep -oE '"[a-z0-9_]+"' | tr -d '"' | sort -u)
	if [ "$2" = required ]; then
		echo "$required"
	else
		grep -oE 'record_size\([a-z]+, rec, "[a-z0-9_]+", false|json_object_get\(rec, "[a-z0-9_]+"' <<<"$body" |
			grep -oE '"[a-z0-9_]+"' | tr -d '"' | sort -u | comm -23 - <(echo "$required")
	fi
}

@test "docs: memshare(7) documents the fields msballoon reads, required or optional as the code reads them" {
	kinds=$(grep -oE 'strcmp\(kind, "[a-z_]+"\)' "$SRCB/observe.c" | grep -oE '"[a-z_]+"' | tr -d '"' | sort | tr '\n' ' ')
	[ "$kinds" = "bid share tier wss " ]
	[ "$(read_fields wss required | tr '\n' ' ')" = "domain wss_bytes " ]
	read_fields wss optional | grep -qx alloc_bytes
	read_fields tier required | grep -qx puts_succ
	read_fields tier optional | grep -qx pool_bytes
	read_fields bid required | grep -qx bid
	read_fields share required | grep -qx full_s
	read_fields share optional | grep -qx service_per_s
	# wss, tier and share: the records of mswss, msrswap and msshare, with a subsection on what msballoon takes
	for kind in wss tier share; do
		same_lists "$(read_fields "$kind" required)" "$(read_by "$kind" Required)"
		same_lists "$(read_fields "$kind" optional)" "$(read_by "$kind" Optional)"
	done
	# bid: a record msballoon alone reads
	for kind in bid; do
		required=$(read_fields "$kind" required)
		doc_required=$(record_tags "$kind" Required)
		missing=$(comm -23 <(echo "$required") <(echo "$doc_required"))
		[ -z "$missing" ] || { echo "$kind: required by msballoon, not documented as required: $missing"; return 1; }
		same_lists "$(sort -u <<<"$required"$'\n'"$(common_fields)")" "$doc_required"
		same_lists "$(read_fields "$kind" optional)" "$(record_tags "$kind" Optional)"
	done
	# target: what `msballoon apply` takes (plan.c)
	required=$(sed -n '/^static int batch_add(/,/^}/p' "$SRCB/plan.c" |
		grep -oE 'jsonl_get_[a-z0-9]+\([a-z]+, rec, "[a-z0-9_]+"|record_size\([a-z]+, rec, "[a-z0-9_]+", true' |
		grep -oE '"[a-z0-9_]+"' | tr -d '"' | sort -u)
	[ "$(tr '\n' ' ' <<<"$required")" = "balloon_bytes domain " ]
	same_lists "$required" "$(read_by target Required)"
	[ -z "$(read_by target Optional)" ]
}

@test "docs: every key of real msballoon records is documented in memshare(7)" {
	need_msballoon
	command -v jq >/dev/null || skip "jq is not installed"
	out=$BATS_TEST_TMPDIR/records.jsonl
	# wss with a short host: remote needs and a reservoir
	"$MSBALLOON" plan --policy wss --host-memory 4G --host-reserve 0 --remote-cap 1G >>"$out" <<-'EOF'
		{"kind":"wss","domain":"a","wss_bytes":3000000000,"alloc_bytes":1073741824,"max_bytes":8589934592}
		{"kind":"wss","domain":"b","wss_bytes":3000000000,"alloc_bytes":1073741824,"max_bytes":8589934592}
	EOF
	# tlp beyond its tier: Grant-Any; bid
	"$MSBALLOON" plan --policy tlp --tier-total 10M --step 60% >>"$out" <<-'EOF'
		{"kind":"tier","domain":"a","puts_total":100,"puts_succ":50,"tier_used_bytes":1000000,"tier_target_bytes":4000000}
		{"kind":"tier","domain":"b","puts_total":100,"puts_succ":100,"tier_used_bytes":0}
		{"kind":"tier","domain":"a","puts_total":200,"puts_succ":50,"tier_used_bytes":1000000}
	EOF
	"$MSBALLOON" plan --policy bid --host-memory 8G >>"$out" <<-'EOF'
		{"kind":"bid","domain":"a","bid":0.5,"alloc_bytes":1073741824}
		{"kind":"bid","domain":"b","bid":-0.5,"alloc_bytes":2147483648}
	EOF
	# outcomes: errors (no such domain), and a target reached if libvirt's test driver works
	echo '{"kind":"target","domain":"/memshare-docs-nosuch","balloon_bytes":1073741824}' |
		"$MSBALLOON" -c cgroup:/// apply >>"$out" 2>/dev/null || :
	echo '{"kind":"target","domain":"nosuch","balloon_bytes":1073741824}' |
		"$MSBALLOON" -c test:///default apply >>"$out" 2>/dev/null || :
	# a tier target: written back with its tier outcome; one sent to a client daemon that is not there
	echo '{"kind":"target","domain":"test","tier_bytes":1048576}' |
		"$MSBALLOON" -c test:///default apply >>"$out" 2>/dev/null || :
	echo '{"kind":"tier","domain":"test","puts_total":2,"puts_succ":1}' |
		"$MSBALLOON" -c test:///default plan --policy static --tier-total 1M --apply \
			--tier-control "$BATS_TEST_TMPDIR/none.ctl" >>"$out" 2>/dev/null || :
	"$MSBALLOON" -c test:///default set --min 64M test 1G >>"$out" 2>/dev/null || :
	for p in wss tlp smart-alloc; do
		"$MSBALLOON" sim --scenario "$SRCB/scenarios/scenario2.json" --policy "$p" >>"$out"
	done
	keys=$(jq -r '.kind as $k | keys[] | "\($k) \(.)"' "$out" | sort -u)
	for kind in target reservoir grant_any sim sim_summary; do
		grep -q "^$kind " <<<"$keys" || { echo "no $kind record was made"; return 1; }
	done
	for key in "target remote_need_bytes" "target tier_bytes" "target prev_tier_bytes" "sim grant_any_bytes" "sim reservoir_bytes"; do
		grep -qx "$key" <<<"$keys" || { echo "no record had $key"; return 1; }
	done
	while read -r kind key; do
		record_tags "$kind" | grep -qx -- "$key" || { echo "$kind record: $key is not in memshare(7)"; return 1; }
	done <<<"$keys"
	grep -qx "target applied" <<<"$keys" || skip "neither cgroup:/// nor test:///default could take a target: outcomes not seen"
	grep -qx "target error" <<<"$keys"
	grep -qx "target tier_applied" <<<"$keys"
	grep -qx "target tier_error" <<<"$keys"
}

# ---- msrswap(1) and the records of msrswap ------------------------------------

# msrswap --help without its last lines, which show other tools' command lines
# (nbdinfo --list ...).
msrswap_help() {
	"$MSRSWAP" --help | sed '/^Clients:/,$d'
}

# The options of msrswap --help grouped by the usage lines: "SUBCOMMAND OPTION"
# for every option a usage line names.
help_usage_options() {
	"$MSRSWAP" --help | awk '
		NR > 1 && !/^ +(msrswap|\[)/ { exit }
		match($0, /msrswap [a-z]+/) { sub_ = substr($0, RSTART + 8, RLENGTH - 8) }
		{ line = $0; while (match(line, /\[(-[a-z]|--[a-z-]+)/)) { print sub_, substr(line, RSTART + 1, RLENGTH - 1); line = substr(line, RSTART + RLENGTH) }
		  line = $0; while (match(line, / --[a-z-]+ [A-Z]/)) { print sub_, substr(line, RSTART + 1, RLENGTH - 3); line = substr(line, RSTART + RLENGTH) } }' | sort -u
}

# The options of the provider's group of --help: those before "consumer", but
# the shared ones.
help_serve_group() {
	"$MSRSWAP" --help | awk '/^  consumer/ { exit } /^ +(-[a-z], )?--[a-z-]+/' | long_options | grep -vxE -- '--(pretty|verbose|quiet|help|version)'
}

# The subcommands of the page: the first word of each tag of SUBCOMMANDS.
page_subcommands() {
	roff_section "$MAN1R" SUBCOMMANDS | tp_tags | plain_roff | sed -E 's/^\.BI? "?([a-z]+).*/\1/' | sort -u
}

@test "docs: msrswap(1) renders without warnings, within 80 columns, with its sections" {
	command -v man >/dev/null || command -v groff >/dev/null || skip "neither man (man-db) nor groff (groff-base) is installed"
	render_warnings "$MAN1R"
	command -v man >/dev/null || skip "man (man-db) is not installed: width and sections not checked"
	text=$(rendered "$MAN1R")
	[ "$(wc -l <<<"$text")" -gt 400 ]
	long=$(awk 'length > 80' <<<"$text")
	[ -z "$long" ] || { echo "lines over 80 columns in $MAN1R:"; echo "$long"; return 1; }
	for section in NAME SYNOPSIS DESCRIPTION SUBCOMMANDS OPTIONS PROTOCOL "TIERS AND TARGETS" FAILOVER \
		"CONTROL SOCKET" OUTPUT "EXIT STATUS" ENVIRONMENT FILES EXAMPLES "SEE ALSO"; do
		grep -qx "$section" <<<"$text" || { echo "msrswap(1) has no section $section"; return 1; }
	done
	# what the protocol lacks is said plainly
	protocol=$(sed -n '/^PROTOCOL$/,/^TIERS AND TARGETS$/p' <<<"$text" | tr -s ' \n' ' ')
	for phrase in "NBD_REP_ERR_TLS_REQD" "NBD_REP_ERR_POLICY" "NBD_REP_ERR_UNSUP" "base:allocation" \
		"One-sided RDMA" "msrswap:fabric" "no authentication"; do
		[[ $protocol == *"$phrase"* ]] || { echo "PROTOCOL does not say '$phrase'"; return 1; }
	done
}

@test "docs: msrswap(1) describes the subcommands of --help, and main.c runs those" {
	need_msrswap
	subcommands=$(help_subcommands "$MSRSWAP")
	[ "$(tr '\n' ' ' <<<"$subcommands")" = "attach client detach export serve status " ]
	same_lists "$subcommands" "$(page_subcommands)"
	# the subcommands main() dispatches
	same_lists "$subcommands" "$(grep -oE 'strcmp\(a\.command, "[a-z]+"\)' "$SRCR/main.c" | grep -oE '"[a-z]+"' | tr -d '"' | sort -u)"
	# the verbs of export: in --help, main.c and the page
	verbs=$("$MSRSWAP" --help | sed -n 's/.*msrswap export \(.*\)\[--control.*/\1/p' | grep -oE '(^|\| )[a-z]+' | grep -oE '[a-z]+' | sort)
	[ "$(tr '\n' ' ' <<<"$verbs")" = "add list rm " ]
	same_lists "$verbs" "$(grep -oE 'strcmp\(verb, "[a-z]+"\)' "$SRCR/main.c" | grep -oE '"[a-z]+"' | tr -d '"' | sort -u)"
	same_lists "$verbs" "$(roff_section "$MAN1R" SUBCOMMANDS | tp_tags | plain_roff | sed -nE 's/^\.BI? "?export ([a-z]+).*/\1/p' | sort)"
	# and the synopsis shows every one of them
	synopsis=$(rendered "$MAN1R" | sed -n '/^SYNOPSIS$/,/^DESCRIPTION$/p')
	for sub in $subcommands $(sed 's/^/export_/' <<<"$verbs"); do
		grep -qE "msrswap (\[-c URI\] )?${sub/_/ }( |$)" <<<"$synopsis" || { echo "SYNOPSIS has no $sub"; return 1; }
	done
}

# (That the options, defaults, values and subcommands of --help are those of
# the page, docs_options.bats checks for every tool.)
@test "docs: every option of msrswap(1) is one msrswap takes, for the subcommands of its usage lines and groups" {
	need_msrswap
	entries=$(option_entries "$MAN1R")
	page_long=$(cut -f1 <<<"$entries" | long_options)
	[ "$(wc -l <<<"$page_long")" -ge 20 ]
	for o in --disk-dir --tls-psk --mkswap --socket --version; do grep -qx -- "$o" <<<"$page_long"; done
	# every option the page has, the tool accepts (an unknown option is exit status 2)
	run "$MSRSWAP" --no-such-option --help
	[ "$status" -eq 2 ]
	# (a tag set with .BI names an option with a value: "1" is a size, a duration, an address)
	for opt in $page_long; do
		tag=$(awk -F '\t' -v o="$opt" '{ n = split($1, w, /[^-a-z]+/); for (i = 1; i <= n; i++) if (w[i] == o) print $1 }' <<<"$entries")
		if [[ $tag == .BI* ]]; then
			run "$MSRSWAP" "$opt" 1 --help
		else
			run "$MSRSWAP" "$opt" --help
		fi
		[ "$status" -ne 2 ] || { echo "msrswap(1) documents $opt, msrswap rejects it: $output"; return 1; }
	done

	# Every option names the subcommands that use it, but those that exit at once.
	without=$(awk -F '\t' '$2 == "-" { print $1 }' <<<"$entries" | long_options | tr '\n' ' ')
	[ "$without" = "--help --version " ] || { echo "no 'Subcommands:' line: $without"; return 1; }
	subcommands=$(help_subcommands "$MSRSWAP")
	bad=$(cut -f2 <<<"$entries" | tr ', ' '\n\n' | grep . | grep -vxF -e - -e all -f <(echo "$subcommands")) || :
	[ -z "$bad" ] || { echo "not subcommands: $bad"; return 1; }
	# page_subs OPTION: the subcommands the page gives it
	page_subs() { awk -F '\t' -v o="$1" '{ n = split($1, w, /[^-a-z]+/); for (i = 1; i <= n; i++) if (w[i] == o) print $2 }' <<<"$entries"; }
	# the usage lines of --help: every option they name for a subcommand
	usage=$(help_usage_options)
	[ "$(wc -l <<<"$usage")" -ge 18 ]
	grep -qx 'attach --mkswap' <<<"$usage"
	grep -qx 'detach -c' <<<"$usage"
	grep -qx 'status --control' <<<"$usage"
	while read -r sub opt; do
		[[ ", $(page_subs "$opt"), " == *", $sub, "* || $(page_subs "$opt") == all ]] ||
			{ echo "$opt: --help uses it with $sub, msrswap(1) does not"; return 1; }
	done <<<"$usage"
	# the provider's group of --help: serve's options; "client: ..." and the like say whose
	group=$(help_serve_group)
	[ "$(wc -l <<<"$group")" -ge 9 ]
	for opt in $group; do
		[[ ", $(page_subs "$opt"), " == *", serve, "* ]] || { echo "$opt: in serve's group of --help, not for serve in msrswap(1)"; return 1; }
	done
}

@test "docs: msrswap(1) FILES and OPTIONS give the defaults of main.c" {
	command -v man >/dev/null || skip "man (man-db) is not installed"
	defaults=$(sed -nE 's/^#define DEFAULT_[A-Z_]+ "([^"]+)"$/\1/p' "$SRCR/main.c")
	[ "$(wc -l <<<"$defaults")" -ge 4 ]
	grep -qx /run/msrswap-client.ctl <<<"$defaults"
	listen=$(grep -oE '\.listen = "[^"]+"' "$SRCR/main.c" | cut -d'"' -f2)
	[ -n "$listen" ]
	text=$(rendered "$MAN1R")
	files=$(sed -n '/^FILES$/,/^EXAMPLES$/p' <<<"$text")
	options=$(sed -n '/^OPTIONS$/,/^PROTOCOL$/p' <<<"$text" | tr -s ' \n' ' ')
	for value in $defaults; do
		grep -qF -- "$value" <<<"$files" || { echo "FILES does not name $value"; return 1; }
		[[ $options == *"$value"* ]] || { echo "OPTIONS do not name the default $value"; return 1; }
	done
	# the client's defaults are built from DEFAULT_CLIENT_SOCKET
	grep -qE '"unix:%s".*DEFAULT_CLIENT_SOCKET' "$SRCR/main.c"
	[[ $options == *"unix:$(sed -nE 's/^#define DEFAULT_CLIENT_SOCKET "([^"]+)"$/\1/p' "$SRCR/main.c")"* ]]
	[[ $options == *"serve default: $listen"* ]]
}

# "SUBCOMMAND OPTION" for every option that synopsis lines (one per line) name.
synopsis_pairs() {
	awk '{ line = $0; sub(/^ *(Usage: )?msrswap /, "", line); sub(/^\[-c URI\] /, "", line); split(line, w, " "); s = w[1]
	       line = $0; while (match(line, /\[(-[a-z]|--[a-z-]+)/)) { print s, substr(line, RSTART + 1, RLENGTH - 1); line = substr(line, RSTART + RLENGTH) }
	       line = $0; while (match(line, / --[a-z-]+ [A-Z]/)) { print s, substr(line, RSTART + 1, RLENGTH - 3); line = substr(line, RSTART + RLENGTH) } }' | sort -u
}

@test "docs: msrswap --help and msrswap(1) give each subcommand the same synopsis and each control socket its users" {
	need_msrswap
	command -v man >/dev/null || skip "man (man-db) is not installed"
	# the usage lines of --help and the SYNOPSIS of the page, one line per synopsis
	help_synopses=$("$MSRSWAP" --help | awk 'NR > 1 && !/^ +(msrswap|\[)/ { exit } /^ +\[/ { l = l " " $0; next } { if (l != "") print l; l = $0 } END { print l }')
	page_synopses=$(LC_ALL=C MANWIDTH=1000 man -l "$MAN1R" 2>/dev/null | col -bx | sed -n '/^SYNOPSIS$/,/^DESCRIPTION$/p' | grep '^ *msrswap ')
	[ "$(wc -l <<<"$page_synopses")" -ge 10 ]
	help_pairs=$(synopsis_pairs <<<"$help_synopses")
	[ "$(wc -l <<<"$help_pairs")" -ge 25 ]
	grep -qx 'attach --socket' <<<"$help_pairs"
	same_lists "$(synopsis_pairs <<<"$page_synopses")" "$help_pairs"
	# Every file of FILES that some subcommands use is the default --help gives
	# on the line of their option, with those subcommands, and only there.
	files=$(LC_ALL=C MANWIDTH=1000 man -l "$MAN1R" 2>/dev/null | col -bx | sed -n '/^FILES$/,/^EXAMPLES$/p' |
		awk '/^       [^ ]/ { f = $1; next } /^              / && f != "" && match($0, /\(([a-z]+, )+[a-z]+\)\.?$/) { print f "\t" substr($0, RSTART + 1, RLENGTH - (substr($0, RSTART + RLENGTH - 1) == "." ? 3 : 2)) }')
	[ "$(wc -l <<<"$files")" -ge 2 ]
	lines=$(help_option_lines "$MSRSWAP")
	while IFS=$'\t' read -r file subs; do
		entry=$(grep -F "(default $file)" <<<"$lines") || { echo "--help does not give $file as a default"; return 1; }
		[ "$(wc -l <<<"$entry")" -eq 1 ] || { echo "--help gives $file as the default of several options: $entry"; return 1; }
		[[ $(cut -f2 <<<"$entry") == "$subs: "* ]] || { echo "--help: $file is the default of $subs (FILES), not: $entry"; return 1; }
	done <<<"$files"
	# the disk file has one fate: removed with its device, left only by a daemon killed outright
	tiers=$(rendered "$MAN1R" | sed -n '/^TIERS AND TARGETS$/,/^FAILOVER$/p' | tr -s ' \n' ' ')
	options=$(rendered "$MAN1R" | sed -n '/^OPTIONS$/,/^PROTOCOL$/p' | tr -s ' \n' ' ')
	for text in "$tiers" "$options"; do
		[[ $text == *"removed with the device"* ]] || { echo "msrswap(1) does not say the disk file is removed with the device"; return 1; }
		[[ $text != *"left in place"* ]] || { echo "msrswap(1) says the disk file is left in place"; return 1; }
	done
}

@test "docs: the examples of msrswap(1) name a subcommand and options the tools take" {
	need_msrswap
	need_msballoon
	command -v man >/dev/null || skip "man (man-db) is not installed"
	entries=$(option_entries "$MAN1R")
	known=$(cut -f1 <<<"$entries" | { t=$(cat); long_options <<<"$t"; short_options <<<"$t"; })
	takes_value=$(msrswap_help | grep -oE -- '(^|[ [])(-[a-zA-Z]|--[a-z-]+) [A-Z][A-Z:-]*' | grep -oE -- '-[-a-zA-Z]+' | sort -u)
	grep -qx -- --export <<<"$takes_value"
	grep -qx -- -c <<<"$takes_value"
	examples=$(rendered "$MAN1R" | sed -n '/^EXAMPLES$/,/^CAVEATS$/p' | sed -e ':a' -e '/[|\\]$/{N;s/\\\?\n */ /;ba' -e '}')
	commands=$(grep -oE '(^|[ |#$])msrswap( [^|;>]*)?' <<<"$examples" | sed -E 's/^[ |#$]*//')
	[ "$(wc -l <<<"$commands")" -ge 9 ]
	for want in 'serve --listen' 'export add' 'export list' 'client --ram' 'attach vm1 --size' '--mkswap' 'detach vm1' \
		'status --control /run/msrswap-client.ctl' 'client --ram 4G --stats 5s'; do
		grep -qF -- "$want" <<<"$commands" || { echo "no example of msrswap $want"; return 1; }
	done
	while read -r -a words; do
		sub=
		for ((i = 1; i < ${#words[@]}; i++)); do
			w=${words[i]}
			if [[ $w == -* ]]; then
				grep -qxF -- "${w%%=*}" <<<"$known" || { echo "example '${words[*]}': $w is not an option"; return 1; }
				grep -qxF -- "$w" <<<"$takes_value" && i=$((i + 1))
			elif [ -z "$sub" ]; then
				sub=$w
			fi
		done
		help_subcommands "$MSRSWAP" | grep -qxF -- "$sub" || { echo "example '${words[*]}': no subcommand"; return 1; }
	done <<<"$commands"
	# the guest side and the clients: swapon and swapoff by the label --mkswap writes, NBD clients
	label=$(grep -oE 'memcpy\(page \+ 1052, "[a-z]+"' "$SRCR/client.c" | cut -d'"' -f2)
	[ "$label" = memshare ]
	for want in "swapon --priority 10 -L $label" "swapoff -L $label" 'nbdinfo --list' 'nbdcopy' 'qemu-img info'; do
		grep -qF -- "$want" <<<"$examples" || { echo "EXAMPLES do not show $want"; return 1; }
	done
	# the msballoon of the examples: a tier policy it has, options it takes
	policy=$(grep -oE 'msballoon plan --policy [a-z-]+' <<<"$examples" | awk '{print $NF}')
	[ "$policy" = smart-alloc ]
	"$MSBALLOON" --list-policies | grep -qxF "$policy"
	mb=$(grep -oE 'msballoon plan [^|;>]*' <<<"$examples")
	[[ $mb == *"--tier-control /run/msrswap-client.ctl"* ]]
	mb_options=$("$MSBALLOON" --help | long_options)
	for w in $mb; do
		[[ $w != -* ]] || grep -qxF -- "$w" <<<"$mb_options" || { echo "example '$mb': $w is not an option of msballoon"; return 1; }
	done
}

# rs_emitted FILE: "KIND always|known FIELD" for every field the functions of
# FILE put on a record of record_new(KIND) held in a variable: with
# json_object_set_new or json_set_known_* on the variable, or through a macro
# defined on it (COUNTER(name), FIELD("name", value)).  A field is "always"
# when it is set at the indentation of the record_new line: not inside a
# condition.
rs_emitted() {
	awk '
		/^[a-z].*\(/ && !/;$/ { split("", kind); split("", base); split("", macro) }
		/^#define [A-Z_]+\(/ && match($0, /json_object_set_new\([a-z]+, /) {
			v = substr($0, RSTART + 20, RLENGTH - 22)
			m = $0; sub(/^#define /, "", m); sub(/\(.*/, "", m)
			macro[m] = v
			next
		}
		match($0, /json_t \*[a-z]+ = record_new\("[a-z_]+"\)/) {
			s = substr($0, RSTART, RLENGTH)
			v = s; sub(/^json_t \*/, "", v); sub(/ =.*/, "", v)
			k = s; sub(/.*record_new\("/, "", k); sub(/".*/, "", k)
			kind[v] = k
			match($0, /^\t*/); base[v] = RLENGTH
			next
		}
		{
			match($0, /^\t*/); indent = RLENGTH
			if (match($0, /(json_object_set_new|json_set_known_[a-z0-9]+)\([a-z]+, "[a-z0-9_]+"/)) {
				s = substr($0, RSTART, RLENGTH)
				always = s ~ /^json_object_set_new/
				v = s; sub(/^[^(]*\(/, "", v); sub(/,.*/, "", v)
				f = s; sub(/^[^"]*"/, "", f); sub(/"$/, "", f)
			} else if (match($0, /^\t*[A-Z_]+\("?[a-z0-9_]+"?[,)]/)) {
				s = substr($0, RSTART, RLENGTH)
				m = s; sub(/^\t*/, "", m); sub(/\(.*/, "", m)
				if (!(m in macro)) next
				always = 1
				v = macro[m]
				f = s; sub(/^[^(]*\("?/, "", f); sub(/"?[,)]$/, "", f)
			} else next
			if (v in kind) print kind[v], (always && indent == base[v] ? "always" : "known"), f
		}' "$1"
}

@test "docs: memshare(7) documents every field of the records msrswap writes, and no other" {
	[ "$(common_fields | sort | tr '\n' ' ')" = "host kind ts " ]
	# every kind of record the sources of msrswap make, and the extraction finds them all
	kinds=$(grep -ohE 'record_new\("[a-z_]+"\)' "$SRCR"/*.c | grep -oE '"[a-z_]+"' | tr -d '"' | sort -u)
	[ "$(tr '\n' ' ' <<<"$kinds")" = "attach device export_stats failover pool_stats tier " ]
	code=$(for f in "$SRCR"/*.c; do rs_emitted "$f"; done | sort -u)
	same_lists "$kinds" "$(cut -d' ' -f1 <<<"$code" | sort -u)"
	while read -r kind min; do
		fields=$(awk -v k="$kind" '$1 == k { print $2, $3 }' <<<"$code")
		[ "$(wc -l <<<"$fields")" -ge "$min" ] || { echo "$kind: only $(wc -l <<<"$fields") fields found"; return 1; }
		always=$( { common_fields; sed -n 's/^always //p' <<<"$fields"; } | sort -u)
		known=$(sed -n 's/^known //p' <<<"$fields" | sort -u)
		same_lists "$(printf '%s\n' "$always" "$known" | grep . | sort -u)" "$(record_tags "$kind")"
		missing=$(comm -23 <(echo "$always") <(record_tags "$kind" "Always present"))
		[ -z "$missing" ] || { echo "$kind: always written, not documented as always present: $missing"; return 1; }
		doc_known=$(record_tags "$kind" "Present when known")
		[ -n "$doc_known" ] || [ -z "$known" ]
		wrong=$(comm -23 <(echo "$doc_known") <(echo "$known" | grep .))
		[ -z "$wrong" ] || { echo "$kind: documented as 'when known', written always: $wrong"; return 1; }
	done <<-'EOF'
		export_stats 13
		pool_stats 6
		tier 19
		failover 2
		attach 9
		device 4
	EOF
	# known names in the right classes: the extraction tells a condition from a field set always
	grep -qx 'tier always puts_succ' <<<"$code"
	grep -qx 'tier known tier_target_bytes' <<<"$code"
	grep -qx 'export_stats always reads' <<<"$code"
	grep -qx 'export_stats known used_bytes' <<<"$code"
}

@test "docs: what msballoon reads of a tier record, msrswap client writes" {
	written=$(rs_emitted "$SRCR/client.c" | awk '$1 == "tier" { print $2, $3 }')
	always=$( { common_fields; sed -n 's/^always //p' <<<"$written"; } | sort -u)
	all=$(cut -d' ' -f2 <<<"$written" | cat - <(common_fields) | sort -u)
	required=$(read_fields tier required)
	optional=$(read_fields tier optional)
	[ "$(tr '\n' ' ' <<<"$required")" = "domain puts_succ puts_total " ]
	[ "$(tr '\n' ' ' <<<"$optional")" = "pool_bytes remote_capacity_bytes tier_target_bytes tier_used_bytes " ]
	# a field msballoon requires is one the client always writes; one it takes, one it writes
	missing=$(comm -23 <(echo "$required") <(echo "$always"))
	[ -z "$missing" ] || { echo "msballoon requires, msrswap client does not always write: $missing"; return 1; }
	missing=$(comm -23 <(echo "$optional") <(echo "$all"))
	[ -z "$missing" ] || { echo "msballoon reads, msrswap client never writes: $missing"; return 1; }
}

@test "docs: real records of msrswap have documented keys; a failover loses nothing; tier records drive msballoon as msrswap(1) shows" {
	need_msrswap
	need_msballoon
	command -v jq >/dev/null || skip "jq is not installed"
	command -v socat >/dev/null || skip "socat is not installed (the control socket examples use it)"
	command -v man >/dev/null || skip "man (man-db) is not installed: the example cannot be read from the page"
	"$MSBALLOON" --help | grep -q -- --tier-control || skip "this msballoon cannot send tier targets (no --tier-control)"
	# unix socket paths are short: a directory of its own under /tmp
	DOCS_TMP=$(mktemp -d /tmp/msdocs.XXXXXX)
	D=$DOCS_TMP
	"$MSRSWAP" serve --listen "unix:$D/p.sock" --control "$D/p.ctl" --capacity 16M --export docs:4M --stats 200ms \
		>"$D/serve.jsonl" 2>"$D/serve.log" &
	SPID=$!
	DOCS_PIDS="$SPID"
	"$MSRSWAP" client --listen "unix:$D/c.sock" --control "$D/c.ctl" --ram 4K --disk-dir "$D/disks" --stats 200ms \
		>"$D/client.jsonl" 2>"$D/client.log" &
	CPID=$!
	DOCS_PIDS+=" $CPID"
	wait_socket "$D/p.sock" "$D/p.ctl" "$D/c.sock" "$D/c.ctl"
	ctl() { echo "$2" | socat - "UNIX-CONNECT:$1"; }
	# a device: 1 block of RAM (the pool), a target of 3 blocks, the provider's export as remote
	reply=$(ctl "$D/c.ctl" "{\"cmd\":\"device-add\",\"name\":\"docs-vm\",\"size\":4194304,\"target\":12288,\"remotes\":[\"nbd+unix:///docs?socket=$D/p.sock\"],\"mkswap\":true}")
	jq -e '.ok and .records[0].kind == "device" and .records[0].domain == "docs-vm"' <<<"$reply" || { echo "$reply"; return 1; }
	"$MSRSWAP" status --control "$D/p.ctl" >"$D/status.jsonl"
	"$MSRSWAP" status --control "$D/c.ctl" >>"$D/status.jsonl"
	jq -e 'select(.kind == "tier") | .puts_total == 1 and .puts_succ == 1 and .tier_target_bytes == 12288 and .pool_bytes == 4096' \
		"$D/status.jsonl"
	# the provider's periodic records (every 200 ms) are part of what is checked: seen before it may be killed below
	until_true 60 grep -q '"kind":"export_stats"' "$D/serve.jsonl"
	failover=
	if command -v nbdcopy >/dev/null; then
		head -c 1M /dev/urandom >"$D/data"
		nbdcopy "$D/data" "nbd+unix:///docs-vm?socket=$D/c.sock"
		"$MSRSWAP" status --control "$D/c.ctl" >"$D/before.jsonl"
		jq -e '.tier_used_bytes == 12288 and .ram_bytes == 4096 and .remote_bytes == 8192 and .puts_total > .puts_succ' "$D/before.jsonl"
		# the provider dies: the device reads the same from its disk copy
		kill -9 "$SPID"
		wait "$SPID" 2>/dev/null || :
		DOCS_PIDS=$CPID
		nbdcopy "nbd+unix:///docs-vm?socket=$D/c.sock" "$D/back"
		cmp "$D/data" <(head -c 1M "$D/back")
		until_true 60 grep -q '"kind":"failover"' "$D/client.jsonl"
		failover=$(grep '"kind":"failover"' "$D/client.jsonl")
		[ -n "$failover" ]
		jq -e --arg uri "nbd+unix:///docs?socket=$D/p.sock" '.uri == $uri and (.reason | length) > 0' <<<"$failover"
		"$MSRSWAP" status --control "$D/c.ctl" | jq_true '.remotes_dead == 1 and .failovers == 1 and .remote_bytes == 0'
	fi
	# the client's periodic records too
	until_true 60 grep -q '"kind":"tier"' "$D/client.jsonl"
	# every key of every record is documented for its kind
	keys=$(cat "$D/serve.jsonl" "$D/client.jsonl" "$D/status.jsonl" | jq -r '.kind as $k | keys[] | "\($k) \(.)"' | sort -u)
	for kind in export_stats pool_stats tier; do
		grep -q "^$kind " <<<"$keys" || { echo "no $kind record was made"; return 1; }
	done
	while read -r kind key; do
		record_tags "$kind" | grep -qx -- "$key" || { echo "$kind record: $key is not in memshare(7)"; return 1; }
	done <<<"$keys"
	# the documented loop: tier records -> the msballoon command of the example -> the control socket
	mb=$(rendered "$MAN1R" | sed -n '/^EXAMPLES$/,/^CAVEATS$/p' | sed -e ':a' -e '/[|\\]$/{N;s/\\\?\n */ /;ba' -e '}' |
		grep -oE 'msballoon plan [^|;>]*--tier-control [^ ]+')
	[[ $mb == *" /run/msrswap-client.ctl" ]] || { echo "no msballoon --tier-control command in EXAMPLES: $mb"; return 1; }
	read -r -a words <<<"${mb% *} $D/c.ctl"
	jq -c 'select(.kind == "tier")' "$D/client.jsonl" | "$MSBALLOON" "${words[@]:1}" >"$D/plan.jsonl" 2>"$D/plan.log" ||
		{ cat "$D/plan.log"; return 1; }
	last=$(jq -c 'select(.kind == "target" and .domain == "docs-vm")' "$D/plan.jsonl" | tail -n 1)
	jq -e '.tier_applied == true and (.tier_bytes | type) == "number" and .tier_bytes != 12288' <<<"$last" ||
		{ cat "$D/plan.jsonl" "$D/plan.log"; return 1; }
	"$MSRSWAP" status --control "$D/c.ctl" | jq_true --argjson b "$(jq .tier_bytes <<<"$last")" '.tier_target_bytes == $b'
	# stopped, the daemon exits 0 and removes its sockets (FILES)
	kill "$CPID"
	wait "$CPID"
	DOCS_PIDS=
	[ ! -e "$D/c.sock" ]
	[ ! -e "$D/c.ctl" ]
	[ -n "$failover" ] || skip "nbdcopy (libnbd-bin) is not installed: no I/O, no failover record seen"
}

# ---- bash completion -------------------------------------------------------

# complete_line LINE: as bash calls it, with COMP_WORDBREAKS splitting ':' and '='.
complete_line() {
	(
		trap - DEBUG # as in complete_words
		source "$BASHCOMP"
		COMP_LINE=$1
		COMP_POINT=${#1}
		read -ra COMP_WORDS <<<"$(sed -e 's/:/ : /g' -e 's/=/ = /g' <<<"$1")"
		[[ $1 == *" " ]] && COMP_WORDS+=("")
		COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_memshare
		printf '%s\n' "${COMPREPLY[@]}" | sort
	)
}

@test "bash completion: registers _memshare for every tool" {
	# every tool the Makefile builds: a directory src/ms* with C sources
	tools=$(cd "$ROOT/src" && for d in ms*; do ls "$d"/*.c >/dev/null 2>&1 && echo "$d"; done)
	[ "$(wc -w <<<"$tools")" -ge 7 ]
	run bash -c "source '$BASHCOMP' && complete -p $(echo $tools)"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq "$(wc -w <<<"$tools")" ]
	for tool in $tools; do
		[[ $output == *"complete -F _memshare $tool"* ]]
	done
}

@test "bash completion: mswss options are exactly those of --help" {
	need_mswss
	[ "$(complete_words mswss --met)" = --method ]
	[ "$(complete_words mswss --refault)" = --refault-threshold ]
	offered=$(complete_words mswss -)
	help=$("$MSWSS" --help)
	[ "$(wc -l <<<"$offered")" -ge 24 ]
	same_lists "$(long_options <<<"$help")" "$(grep -- '^--' <<<"$offered")"
	same_lists "$(short_options <<<"$help")" "$(grep -vx -- '--.*' <<<"$offered")"
}

@test "bash completion: --method values come from mswss --list-methods, else a built-in list" {
	need_mswss
	want=$("$MSWSS" --list-methods | sort)
	[ "$(wc -l <<<"$want")" -ge 5 ]
	# the real tool, by path and from PATH
	same_lists "$want" "$(complete_words "$MSWSS" --method '')"
	same_lists "$want" "$(PATH=$BINDIR:$PATH complete_words mswss -m '')"
	same_lists "$(grep '^ref' <<<"$want")" "$(PATH=$BINDIR:$PATH complete_words mswss --method ref)"
	# the list is asked of the tool, not built in
	fake=$BATS_TEST_TMPDIR/bin
	mkdir -p "$fake"
	printf '#!/bin/sh\n[ "$1" = --list-methods ] && printf "alpha\\nbeta\\n"\n' > "$fake/mswss"
	chmod +x "$fake/mswss"
	[ "$(PATH=$fake:$PATH complete_words mswss --method '' | tr '\n' ' ')" = "alpha beta " ]
	# no tool to ask: the built-in list, which must be the tool's list
	same_lists "$want" "$(complete_words /nonexistent/mswss --method '')"
}

@test "bash completion: -c URIs, also split at ':' as bash does; --opt=value" {
	[ "$(complete_words mswss -c q | tr '\n' ' ')" = "qemu:///session qemu:///system " ]
	[ "$(complete_words mswss --connect '' | tr '\n' ' ')" = "cgroup:/// qemu:///session qemu:///system test:///default xen:/// " ]
	# bash replaces only the part after the last ':' it split at
	[ "$(complete_line 'mswss -c qemu:///s' | tr '\n' ' ')" = "///session ///system " ]
	[ "$(complete_line 'mswss -c te' | tr '\n' ' ')" = "test:///default " ]
	[ "$(complete_line 'mswss --method=refb' | tr '\n' ' ')" = "refbit " ]
	[ "$(complete_line 'mswss --connect=xe' | tr '\n' ' ')" = "xen:/// " ]
}

@test "bash completion: domains of a libvirt URI come from virsh" {
	command -v virsh >/dev/null || skip "virsh (libvirt-clients) is not installed"
	want=$(timeout 10 virsh -q -c test:///default list --name 2>/dev/null | grep .) || skip "virsh cannot open test:///default"
	same_lists "$(sort <<<"$want")" "$(complete_line 'mswss -c test:///default ')"
	same_lists "$(sort <<<"$want")" "$(complete_words mswss --connect test:///default '')"
	same_lists "$(sort <<<"$want")" "$(MEMSHARE_URI=test:///default complete_words mswss '')"
	# --all takes the place of domain names
	[ -z "$(complete_words mswss -c test:///default --all '')" ]
}

@test "bash completion: cgroup domains offer pid:N" {
	[ "$(MEMSHARE_URI='' complete_words mswss p)" = pid: ]
	MEMSHARE_URI='' complete_words mswss "pid:$$" | grep -qx "pid:$$"
	complete_words mswss -c cgroup:/// "pid:$$" | grep -qx "pid:$$"
}

@test "bash completion: msgmc offers its subcommands first, then options of msgmc(1)" {
	[ "$(complete_words msgmc '' | sort | tr '\n' ' ')" = "agent alloc leases leave nodes reclaim release serve status " ]
	complete_words msgmc serve -- | grep -qx -- --state
	complete_words msgmc agent -- | grep -qx -- --node
	# every option the completion offers is one msgmc(1) documents
	local opt
	for opt in $(complete_words msgmc -- | grep -- '^--'); do
		grep -qF -- "${opt//-/\\-}" "$ROOT/man/msgmc.1" || { echo "msgmc(1) lacks $opt"; return 1; }
	done
}

@test "bash completion: msballoon offers the subcommands first, then the options msballoon(1) gives each" {
	need_msballoon
	subcommands=$(help_subcommands | sort)
	[ "$(wc -l <<<"$subcommands")" -eq 5 ]
	# the subcommands of --help are those of the page
	same_lists "$subcommands" "$(roff_section "$MAN1B" SUBCOMMANDS | tp_tags | plain_roff | sed -E 's/^\.BI? ([a-z]+).*/\1/' | sort)"
	same_lists "$subcommands" "$(complete_words msballoon '')"
	[ "$(complete_words msballoon s | tr '\n' ' ')" = "set sim " ]
	[ "$(complete_words msballoon train --agent '' | tr '\n' ' ')" = "ddpg dql ql static " ]
	# after options, with their values, it is still the subcommand's turn
	same_lists "$subcommands" "$(complete_words msballoon -c test:///default --min 1G -v '')"
	same_lists "$subcommands" "$(complete_line 'msballoon -c qemu:///system --policy=wss ')"
	# so it is after every option that takes a value, with its value
	takes=$("$MSBALLOON" --help | grep -oE -- '^ +(-[a-zA-Z], )?--[a-z-]+ [A-Z]+' | grep -oE -- '--[a-z-]+')
	[ "$(wc -l <<<"$takes")" -ge 15 ]
	for opt in $takes; do
		same_lists "$subcommands" "$(complete_words msballoon "$opt" 1 '')" || { echo "after $opt 1"; return 1; }
	done
	# before a subcommand: every option of --help
	help=$("$MSBALLOON" --help)
	offered=$(complete_words msballoon -)
	[ "$(wc -l <<<"$offered")" -ge 30 ]
	same_lists "$(long_options <<<"$help")" "$(grep -- '^--' <<<"$offered")"
	same_lists "$(short_options <<<"$help")" "$(grep -vx -- '--.*' <<<"$offered")"
	# after one: the options msballoon(1) says the subcommand uses
	for sub in $subcommands; do
		want=$(page_options_of "$sub" "$MAN1B")
		[ "$(wc -l <<<"$want")" -ge 10 ]
		got=$(complete_words msballoon -c test:///default "$sub" -)
		same_lists "$(grep -- '^--' <<<"$want")" "$(grep -- '^--' <<<"$got")"
		same_lists "$(grep -vx -- '--.*' <<<"$want")" "$(grep -vx -- '--.*' <<<"$got")"
		same_lists "$(grep -- '^--' <<<"$want")" "$(complete_words msballoon "$sub" --min 1G --)"
	done
	# plan, apply and sim take no operands
	for sub in plan apply sim; do
		[ -z "$(complete_words msballoon "$sub" '')" ]
	done
}

@test "bash completion: --policy values come from msballoon --list-policies, else a built-in list" {
	need_msballoon
	want=$("$MSBALLOON" --list-policies | sort)
	[ "$(wc -l <<<"$want")" -ge 7 ]
	same_lists "$want" "$(complete_words "$MSBALLOON" --policy '')"
	same_lists "$want" "$(PATH=$BINDIR:$PATH complete_words msballoon plan --policy '')"
	same_lists "$want" "$(PATH=$BINDIR:$PATH complete_words msballoon sim --scenario x.json --policy '')"
	[ "$(PATH=$BINDIR:$PATH complete_words msballoon --policy sm)" = smart-alloc ]
	[ "$(PATH=$BINDIR:$PATH complete_line 'msballoon --policy=reco')" = reconf-static ]
	fake=$BATS_TEST_TMPDIR/bin
	mkdir -p "$fake"
	printf '#!/bin/sh\n[ "$1" = --list-policies ] && printf "alpha\\nbeta\\n"\n' > "$fake/msballoon"
	chmod +x "$fake/msballoon"
	[ "$(PATH=$fake:$PATH complete_words msballoon --policy '' | tr '\n' ' ')" = "alpha beta " ]
	same_lists "$want" "$(complete_words /nonexistent/msballoon --policy '')"
}

@test "bash completion: msballoon --scenario offers JSON files and directories; set offers domains, not processes" {
	dir=$BATS_TEST_TMPDIR/scn
	mkdir -p "$dir/sub"
	touch "$dir/a.json" "$dir/b.json" "$dir/notes.txt"
	[ "$(cd "$dir" && complete_words msballoon sim --scenario '' | tr '\n' ' ')" = "a.json b.json sub/ " ]
	[ "$(cd "$dir" && complete_words msballoon --scenario a)" = a.json ]
	[ "$(cd "$dir" && complete_line 'msballoon sim --scenario=b' | tr '\n' ' ')" = "b.json " ]
	[ "$(cd "$dir" && complete_words msballoon sim --scenario s)" = sub/ ]
	# cgroup://: cgroup paths for set, never pid:N
	[ -z "$(complete_words msballoon -c cgroup:/// set p)" ]
	[ -z "$(complete_words msballoon -c cgroup:/// set "pid:$$")" ]
	[ "$(complete_words mswss -c cgroup:/// p)" = pid: ]
	# the SIZE after the domain: nothing to offer
	[ -z "$(complete_words msballoon -c cgroup:/// set /x '')" ]
	# no step of the completion fails, even in a shell run with set -e
	run bash -ec "source '$BASHCOMP'; COMP_WORDS=(msballoon -c cgroup:/// set /x -); COMP_CWORD=5; _memshare; printf '%s\n' \"\${COMPREPLY[@]}\""
	[ "$status" -eq 0 ]
	[[ $output == *--wait* ]]
	command -v virsh >/dev/null || skip "virsh (libvirt-clients) is not installed"
	want=$(timeout 10 virsh -q -c test:///default list --name 2>/dev/null | grep .) || skip "virsh cannot open test:///default"
	same_lists "$(sort <<<"$want")" "$(complete_line 'msballoon -c test:///default set ')"
	same_lists "$(sort <<<"$want")" "$(complete_words msballoon set --connect test:///default '')"
}

@test "bash completion: msrswap offers the subcommands first, then the options msrswap(1) gives each" {
	subcommands=$(page_subcommands)
	[ "$(tr '\n' ' ' <<<"$subcommands")" = "attach client detach export serve status " ]
	same_lists "$subcommands" "$(complete_words msrswap '')"
	[ "$(complete_words msrswap s | tr '\n' ' ')" = "serve status " ]
	# after options, with their values, it is still the subcommand's turn
	same_lists "$subcommands" "$(complete_words msrswap -c test:///default --control /tmp/x.ctl -v '')"
	same_lists "$subcommands" "$(complete_line 'msrswap -c qemu:///system --listen=unix:/tmp/s.sock ')"
	# so it is after every option that takes a value (a .BI tag in the page), with its value
	takes=$(option_entries "$MAN1R" | cut -f1 | grep '^\.BI' | long_options)
	[ "$(wc -l <<<"$takes")" -ge 14 ]
	for opt in $takes; do
		same_lists "$subcommands" "$(complete_words msrswap "$opt" 1 '')" || { echo "after $opt 1"; return 1; }
	done
	# before one: every option of the page
	all=$(option_entries "$MAN1R" | cut -f1 | { t=$(cat); long_options <<<"$t"; short_options <<<"$t"; })
	[ "$(wc -l <<<"$all")" -ge 27 ]
	offered=$(complete_words msrswap -)
	same_lists "$(grep -- '^--' <<<"$all")" "$(grep -- '^--' <<<"$offered")"
	same_lists "$(grep -vx -- '--.*' <<<"$all")" "$(grep -vx -- '--.*' <<<"$offered")"
	# after one: the options msrswap(1) says the subcommand uses
	for sub in $subcommands; do
		want=$(page_options_of "$sub" "$MAN1R")
		[ "$(wc -l <<<"$want")" -ge 8 ]
		got=$(complete_words msrswap -c test:///default "$sub" -)
		same_lists "$(grep -- '^--' <<<"$want")" "$(grep -- '^--' <<<"$got")"
		same_lists "$(grep -vx -- '--.*' <<<"$want")" "$(grep -vx -- '--.*' <<<"$got")"
		same_lists "$(grep -- '^--' <<<"$want")" "$(complete_words msrswap "$sub" --control /x --)"
	done
	# the help lists the same options as the page (when the tool is built)
	if [ -x "$MSRSWAP" ]; then
		missing=$(comm -23 <(msrswap_help | long_options) <(grep -- '^--' <<<"$offered"))
		[ -z "$missing" ] || { echo "msrswap --help has, the completion does not: $missing"; return 1; }
	fi
}

@test "bash completion: msrswap export verbs, operands, -c URIs, files, directories and addresses" {
	[ "$(complete_words msrswap export '' | tr '\n' ' ')" = "add list rm " ]
	[ "$(complete_words msrswap --control /x export r)" = rm ]
	# serve, status, client take no operands; export add NAME SIZE: nothing to offer
	for sub in serve status client; do
		[ -z "$(complete_words msrswap "$sub" '')" ]
	done
	[ -z "$(complete_words msrswap export add '')" ]
	[ -z "$(complete_words msrswap export list '')" ]
	[ "$(complete_words msrswap attach -c q | tr '\n' ' ')" = "qemu:///session qemu:///system " ]
	[ "$(complete_line 'msrswap detach --connect=te' | tr '\n' ' ')" = "test:///default " ]
	# a cgroup URI cannot hot-plug: no domains, not even pid:N or cgroups
	[ -z "$(complete_words msrswap -c cgroup:/// attach '')" ]
	[ -z "$(MEMSHARE_URI='' complete_words msrswap detach p)" ]
	dir=$BATS_TEST_TMPDIR/comp
	mkdir -p "$dir/sub"
	touch "$dir/c.ctl" "$dir/notes.txt"
	# --control, --socket, --tls-psk: any file; --disk-dir: directories only
	for opt in --control --socket --tls-psk; do
		[ "$(cd "$dir" && complete_words msrswap attach "$opt" '' | tr '\n' ' ')" = "c.ctl notes.txt sub/ " ]
	done
	[ "$(cd "$dir" && complete_words msrswap client --disk-dir '' | tr '\n' ' ')" = "sub/ " ]
	[ "$(cd "$dir" && complete_line 'msrswap client --disk-dir=s' | tr '\n' ' ')" = "sub/ " ]
	[ "$(cd "$dir" && complete_line 'msrswap status --control c' | tr '\n' ' ')" = "c.ctl " ]
	# --listen: addresses for serve, unix: and then a path (bash replaces only what follows the ':')
	[ "$(complete_words msrswap serve --listen '' | tr '\n' ' ')" = "127.0.0.1:10809 :10809 unix: " ]
	[ "$(complete_words msrswap client --listen '' | tr '\n' ' ')" = "unix: " ]
	[ "$(cd "$dir" && complete_line 'msrswap client --listen unix:c' | tr '\n' ' ')" = "c.ctl " ]
	[ "$(cd "$dir" && complete_words msrswap client --listen unix:n)" = unix:notes.txt ]
	[ "$(complete_words msrswap attach --remote '' | tr '\n' ' ')" = "fabric+unix:/// fabric:// nbd+unix:/// nbd:// " ]
	# no step of the completion fails, even in a shell run with set -e
	run bash -ec "source '$BASHCOMP'; COMP_WORDS=(msrswap -c cgroup:/// attach vm1 -); COMP_CWORD=5; _memshare; printf '%s\n' \"\${COMPREPLY[@]}\""
	[ "$status" -eq 0 ]
	[[ $output == *--mkswap* ]]
	command -v virsh >/dev/null || skip "virsh (libvirt-clients) is not installed"
	want=$(timeout 10 virsh -q -c test:///default list --name 2>/dev/null | grep .) || skip "virsh cannot open test:///default"
	for sub in attach detach; do
		same_lists "$(sort <<<"$want")" "$(complete_line "msrswap -c test:///default $sub ")"
		same_lists "$(sort <<<"$want")" "$(MEMSHARE_URI=test:///default complete_words msrswap "$sub" --size 1G '')"
		[ -z "$(complete_words msrswap -c test:///default "$sub" vm1 '')" ]
	done
}

@test "bash completion: msrswap export rm offers the exports of the running provider" {
	need_msrswap
	command -v timeout >/dev/null || skip "timeout (coreutils) is not installed"
	DOCS_TMP=$(mktemp -d /tmp/msdocs.XXXXXX)
	"$MSRSWAP" serve --listen "unix:$DOCS_TMP/p.sock" --control "$DOCS_TMP/p.ctl" --capacity 8M \
		--export alpha:1M --export beta:1M 2>/dev/null &
	DOCS_PIDS=$!
	wait_socket "$DOCS_TMP/p.ctl"
	[ "$(complete_words "$MSRSWAP" export rm --control "$DOCS_TMP/p.ctl" '' | tr '\n' ' ')" = "alpha beta " ]
	[ "$(PATH=$BINDIR:$PATH complete_words msrswap --control="$DOCS_TMP/p.ctl" export rm b)" = beta ]
	# no provider: nothing, quickly
	[ -z "$(complete_words "$MSRSWAP" export rm --control "$DOCS_TMP/none.ctl" '')" ]
}

# ---- zsh completion ------------------------------------------------------------

@test "zsh completion: parses, and its mswss spec has exactly the options of --help" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	need_mswss
	run zsh -n "$ZSHCOMP"
	[ "$status" -eq 0 ]
	tools=$(cd "$ROOT/src" && for d in ms*; do ls "$d"/*.c >/dev/null 2>&1 && echo "$d"; done)
	same_lists "$(echo $tools | tr ' ' '\n' | sort)" "$(head -1 "$ZSHCOMP" | sed 's/^#compdef //' | tr ' ' '\n' | sort)"
	# The option specs exactly as zsh hands them to _arguments, with brace
	# expansion done: "(-c --connect)-c+[description]:message:action".
	specs=$(cd "$BATS_TEST_TMPDIR" && service=mswss zsh -fc '_arguments() { print -rl -- "$@" }; source "$1"' zsh "$ZSHCOMP")
	names=$(grep -F '[' <<<"$specs" | sed -E 's/^\([^)]*\)//; s/^\*//' | grep -oE '^-[-a-zA-Z]*[a-zA-Z]' | sort -u)
	[ "$(wc -l <<<"$names")" -ge 24 ]
	help=$("$MSWSS" --help)
	same_lists "$(long_options <<<"$help")" "$(grep -- '^--' <<<"$names")"
	same_lists "$(short_options <<<"$help")" "$(grep -vx -- '--.*' <<<"$names")"
}

@test "zsh completion: offers the methods after -m and the URIs after -c" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	need_mswss
	zsh -fc 'zmodload zsh/zpty' 2>/dev/null || skip "zsh has no zpty module"
	# An interactive zsh in a pseudo-terminal with compinit on this file; a
	# <Tab> after an ambiguous word prints the candidates below the line.
	cat > "$BATS_TEST_TMPDIR/drive.zsh" <<-'EOF'
		zmodload zsh/zpty
		zpty z "TERM=dumb PATH=$1:\$PATH zsh -f -i"
		zpty -w z "PS1='%% '; fpath=($2 \$fpath); autoload -Uz compinit; compinit -u -D; print RE''ADY@@"
		ask() {
			local out= chunk
			zpty -w -n z "$1"$'\t'
			# zsh prints the list, then draws the line again below it (or
			# what $2 says when the answer is one completion); keys typed
			# ahead would keep it from listing: none are
			local want="*"$'\n'"% $1*"
			[[ -n $2 ]] && want=$2
			zpty -r z out "$want"
			print -r -- "$out"
			zpty -w -n z $'\C-u'
		}
		zpty -r z out '*'$'\n''READY@@*' # compinit is done
		ask 'mswss -m '
		print -- '==='
		ask 'mswss -c '
		zpty -d z
	EOF
	run timeout 120 zsh -f "$BATS_TEST_TMPDIR/drive.zsh" "$BINDIR" "$ROOT/completions"
	echo "$output"
	[ "$status" -eq 0 ]
	methods_part=${output%%===*}
	uris_part=${output#*===}
	for m in $("$MSWSS" --list-methods); do
		[[ $methods_part =~ (^|[[:space:]])$m\ +--\ [a-z] ]] || { echo "no $m offered, with its description"; return 1; }
	done
	for u in cgroup:/// qemu:///system qemu:///session test:///default xen:///; do
		[[ $uris_part =~ (^|[[:space:]])$u\ +--\ [a-zA-Z] ]] || { echo "no $u offered"; return 1; }
	done
}

@test "zsh completion: its msballoon spec has the options of --help, per subcommand those of msballoon(1)" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	need_msballoon
	names=$(zsh_specs msballoon)
	[ "$(wc -l <<<"$names")" -ge 30 ]
	help=$("$MSBALLOON" --help)
	same_lists "$(long_options <<<"$help")" "$(grep -- '^--' <<<"$names")"
	same_lists "$(short_options <<<"$help")" "$(grep -vx -- '--.*' <<<"$names")"
	for sub in $(help_subcommands); do
		want=$(page_options_of "$sub" "$MAN1B")
		[ "$(wc -l <<<"$want")" -ge 10 ]
		same_lists "$want" "$(zsh_specs msballoon -c test:///default "$sub")"
		same_lists "$want" "$(zsh_specs msballoon "$sub" --min 1G)"
	done
}

@test "zsh completion: msballoon offers the subcommands first and the policies after --policy" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	need_msballoon
	zsh -fc 'zmodload zsh/zpty' 2>/dev/null || skip "zsh has no zpty module"
	mkdir -p "$BATS_TEST_TMPDIR/scn/sub"
	touch "$BATS_TEST_TMPDIR/scn/a.json" "$BATS_TEST_TMPDIR/scn/b.json" "$BATS_TEST_TMPDIR/scn/c.txt"
	cat > "$BATS_TEST_TMPDIR/drive.zsh" <<-'EOF'
		zmodload zsh/zpty
		zpty z "TERM=dumb PATH=$1:\$PATH zsh -f -i"
		zpty -w z "PS1='%% '; fpath=($2 \$fpath); autoload -Uz compinit; compinit -u -D; cd ${(q)3}; print RE''ADY@@"
		ask() {
			local out= chunk
			zpty -w -n z "$1"$'\t'
			# zsh prints the list, then draws the line again below it (or
			# what $2 says when the answer is one completion); keys typed
			# ahead would keep it from listing: none are
			local want="*"$'\n'"% $1*"
			[[ -n $2 ]] && want=$2
			zpty -r z out "$want"
			print -r -- "$out"
			zpty -w -n z $'\C-u'
		}
		zpty -r z out '*'$'\n''READY@@*' # compinit is done
		ask 'msballoon '
		print -- '==='
		ask 'msballoon plan --policy '
		print -- '==='
		ask 'msballoon sim --scenario '
		zpty -d z
	EOF
	run timeout 120 zsh -f "$BATS_TEST_TMPDIR/drive.zsh" "$BINDIR" "$ROOT/completions" "$BATS_TEST_TMPDIR/scn"
	echo "$output"
	[ "$status" -eq 0 ]
	subs_part=${output%%===*}
	rest=${output#*===}
	policies_part=${rest%%===*}
	files_part=${rest#*===}
	for s in $(help_subcommands); do
		[[ $subs_part =~ (^|[[:space:]])$s\ +--\ [a-z] ]] || { echo "no subcommand $s offered, with its description"; return 1; }
	done
	for p in $("$MSBALLOON" --list-policies); do
		[[ $policies_part =~ (^|[[:space:]])$p\ +--\ [a-z] ]] || { echo "no policy $p offered, with its description"; return 1; }
	done
	[[ $files_part == *a.json* && $files_part == *b.json* && $files_part == *sub/* ]]
	[[ $files_part != *c.txt* ]]
}

@test "zsh completion: its msrswap spec has the options of msrswap(1), per subcommand those it gives" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	all=$(option_entries "$MAN1R" | cut -f1 | { t=$(cat); long_options <<<"$t"; short_options <<<"$t"; } | sort -u)
	[ "$(wc -l <<<"$all")" -ge 27 ]
	names=$(zsh_specs msrswap)
	same_lists "$all" "$names"
	for sub in $(page_subcommands); do
		want=$(page_options_of "$sub" "$MAN1R")
		[ "$(wc -l <<<"$want")" -ge 8 ]
		same_lists "$want" "$(zsh_specs msrswap -c test:///default "$sub")"
		same_lists "$want" "$(zsh_specs msrswap "$sub" --control /x)"
	done
	if [ -x "$MSRSWAP" ]; then
		missing=$(comm -23 <(msrswap_help | long_options) <(grep -- '^--' <<<"$names"))
		[ -z "$missing" ] || { echo "msrswap --help has, the zsh completion does not: $missing"; return 1; }
	fi
}

@test "zsh completion: msrswap offers the subcommands first, the export verbs, directories for --disk-dir" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	zsh -fc 'zmodload zsh/zpty' 2>/dev/null || skip "zsh has no zpty module"
	mkdir -p "$BATS_TEST_TMPDIR/z/sub"
	touch "$BATS_TEST_TMPDIR/z/file.txt"
	cat > "$BATS_TEST_TMPDIR/drive.zsh" <<-'EOS'
		zmodload zsh/zpty
		zpty z "TERM=dumb PATH=$1:\$PATH zsh -f -i"
		zpty -w z "PS1='%% '; fpath=($2 \$fpath); autoload -Uz compinit; compinit -u -D; cd ${(q)3}; print RE''ADY@@"
		ask() {
			local out= chunk
			zpty -w -n z "$1"$'\t'
			# zsh prints the list, then draws the line again below it (or
			# what $2 says when the answer is one completion); keys typed
			# ahead would keep it from listing: none are
			local want="*"$'\n'"% $1*"
			[[ -n $2 ]] && want=$2
			zpty -r z out "$want"
			print -r -- "$out"
			zpty -w -n z $'\C-u'
		}
		zpty -r z out '*'$'\n''READY@@*' # compinit is done
		ask 'msrswap '
		print -- '==='
		ask 'msrswap export '
		print -- '==='
		ask 'msrswap client --disk-dir ' '*--disk-dir sub/*'
		print -- '==='
		ask 'msrswap attach -c '
		zpty -d z
	EOS
	run timeout 120 zsh -f "$BATS_TEST_TMPDIR/drive.zsh" "$BINDIR" "$ROOT/completions" "$BATS_TEST_TMPDIR/z"
	echo "$output"
	[ "$status" -eq 0 ]
	subs_part=${output%%===*}
	rest=${output#*===}
	verbs_part=${rest%%===*}
	rest=${rest#*===}
	dirs_part=${rest%%===*}
	uris_part=${rest#*===}
	for s in $(page_subcommands); do
		[[ $subs_part =~ (^|[[:space:]])$s\ +--\ [a-z] ]] || { echo "no subcommand $s offered, with its description"; return 1; }
	done
	for v in add list rm; do
		[[ $verbs_part =~ (^|[[:space:]])$v\ +--\ [a-z] ]] || { echo "no export verb $v offered, with its description"; return 1; }
	done
	# the only directory is completed at once, and the file is not offered
	[[ $dirs_part == *"--disk-dir sub/"* ]]
	[[ $dirs_part != *file.txt* ]]
	for u in qemu:///system qemu:///session test:///default; do
		[[ $uris_part =~ (^|[[:space:]])$u\ +--\ [a-zA-Z] ]] || { echo "no $u offered"; return 1; }
	done
}

@test "bash and zsh completion: msprom's options are exactly those of --help, -o offers .prom files" {
	local msprom=$BINDIR/msprom
	[ -x "$msprom" ] || skip "$msprom is not built (run make)"
	help=$("$msprom" --help)
	offered=$(complete_words msprom -)
	[ "$(wc -l <<<"$offered")" -ge 12 ]
	same_lists "$(long_options <<<"$help")" "$(grep -- '^--' <<<"$offered")"
	same_lists "$(short_options <<<"$help")" "$(grep -vx -- '--.*' <<<"$offered")"
	mkdir -p "$BATS_TEST_TMPDIR/d/sub"
	touch "$BATS_TEST_TMPDIR/d/a.prom" "$BATS_TEST_TMPDIR/d/b.txt"
	same_lists "$(printf '%s\n' "$BATS_TEST_TMPDIR/d/a.prom" "$BATS_TEST_TMPDIR/d/sub/")" \
		"$(complete_words msprom -o "$BATS_TEST_TMPDIR/d/")"
	[ "$(complete_words msprom --settle '')" = "$(printf '%s\n' 1s 200ms 2s 500ms)" ]
	command -v zsh >/dev/null || return 0
	specs=$(cd "$BATS_TEST_TMPDIR" && service=msprom zsh -fc '_arguments() { print -rl -- "$@" }; source "$1"' zsh "$ZSHCOMP")
	same_lists "$(long_options <<<"$help")" "$(grep -oE -- '--[a-z][a-z-]*' <<<"$specs" | sort -u)"
}
