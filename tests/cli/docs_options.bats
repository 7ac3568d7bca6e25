#!/usr/bin/env bats
# Every option of every tool's --help against the OPTIONS of its man page,
# the same way for the five tools:
#  - the same long and short options, each short one the same long one's;
#  - the same defaults: each "(default X)" of --help is a "Default X" (or
#    "X (the default)", "default: X", ...) of the page's entry, and each
#    default the page states is in --help, but a default that is the
#    option's absence ("Default: none", "no TLS"): --help leaves those out;
#  - the same meaning, as far as both say it: the same value placeholder
#    (SIZE, DUR, NAME:SIZE ...), and the subcommands (and msballoon's
#    policies) a description of --help begins with ("plan, apply: ...")
#    are those of the entry's "Subcommands: ..." ("Policies: ...") line;
#  - a page with durations lists every unit parse_duration_ns accepts.
# Each check lists every mismatch it finds, then fails.
load docs_helpers

setup() {
	ROOT=${MEMSHARE_ROOT:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	BINDIR=${MEMSHARE_BIN:-$ROOT/bin}
}

need_tool() {
	TOOL=$BINDIR/$1
	PAGE=$ROOT/man/$1.1
	[ -x "$TOOL" ] || skip "$TOOL is not built (run make)"
}

# Print every problem of $problems, and fail when there is one.
report() {
	[ ${#problems[@]} -eq 0 ] && return 0
	printf '%s\n' "${problems[@]}"
	return 1
}

# "SHORT LONG PLACEHOLDER" of each option line of --help, of each entry of OPTIONS.
help_names() { help_options "$TOOL" | cut -f1 | option_names; }
page_names() { man_options "$PAGE" | cut -f2 | option_names; }

# check_options TOOL MIN_LONG MIN_SHORT: --help and TOOL(1) have the same
# options (at least MIN_LONG long and MIN_SHORT short ones, so that an
# extraction that finds nothing fails), each short one for the same long one.
check_options() {
	need_tool "$1"
	local help page h_long h_short p_long mentioned missing
	problems=()
	help=$(help_names)
	page=$(page_names)
	h_long=$(cut -d' ' -f2 <<<"$help" | grep -vx -- - | sort -u)
	h_short=$(cut -d' ' -f1 <<<"$help" | grep -vx -- - | sort -u)
	[ "$(wc -l <<<"$h_long")" -ge "$2" ] || problems+=("only $(wc -l <<<"$h_long") long options found in --help: $(echo $h_long)")
	[ "$(wc -l <<<"$h_short")" -ge "$3" ] || problems+=("only $(wc -l <<<"$h_short") short options found in --help: $(echo $h_short)")
	p_long=$(cut -d' ' -f2 <<<"$page" | grep -vx -- - | sort -u)
	missing=$(comm -23 <(echo "$h_long") <(echo "$p_long"))
	[ -z "$missing" ] || problems+=("--help has, $1(1) OPTIONS lack: $(echo $missing)")
	missing=$(comm -13 <(echo "$h_long") <(echo "$p_long"))
	[ -z "$missing" ] || problems+=("$1(1) OPTIONS have, --help lacks: $(echo $missing)")
	same_lists "$h_short" "$(cut -d' ' -f1 <<<"$page" | grep -vx -- - | sort -u)" >/dev/null ||
		problems+=("short options: --help $(echo $h_short), $1(1) $(cut -d' ' -f1 <<<"$page" | grep -vx -- - | sort -u | tr '\n' ' ')")
	same_lists "$(awk '$1 != "-" { print $1, $2 }' <<<"$help" | sort -u)" "$(awk '$1 != "-" { print $1, $2 }' <<<"$page" | sort -u)" >/dev/null ||
		problems+=("short options stand for other long ones: --help $(awk '$1 != "-" { printf "%s=%s ", $1, $2 }' <<<"$help"), $1(1) $(awk '$1 != "-" { printf "%s=%s ", $1, $2 }' <<<"$page")")
	# every option the usage lines and the descriptions name has its own line
	mentioned=$( { "$TOOL" --help | sed '/^$/q'; help_options "$TOOL" | cut -f2; } | long_options)
	missing=$(comm -23 <(echo "$mentioned") <(echo "$h_long"))
	[ -z "$missing" ] || problems+=("--help names options it does not describe (or its lines were not read): $(echo $missing)")
	report
}

@test "docs_options: mswss --help and mswss(1) have the same options" { check_options mswss 15 9; }
@test "docs_options: msballoon --help and msballoon(1) have the same options" { check_options msballoon 27 6; }
@test "docs_options: msrswap --help and msrswap(1) have the same options" { check_options msrswap 28 5; }
@test "docs_options: mshash --help and mshash(1) have the same options" { check_options mshash 19 10; }
@test "docs_options: msgmc --help and msgmc(1) have the same options" { check_options msgmc 26 5; }
@test "docs_options: msshare --help and msshare(1) have the same options" { check_options msshare 14 9; }

# "OPTION<TAB>DESCRIPTION" of each option line of --help.
help_by_option() {
	help_options "$TOOL" | awk -F '\t' "$OPTION_NAMES_AWK"'
		{ n = option_names($1, o); for (i = 1; i <= n; i++) print option_key(o[i]) "\t" $2 }'
}
# "OPTION<TAB>SUBCOMMANDS<TAB>POLICIES<TAB>TEXT" of each entry of OPTIONS.
page_by_option() {
	man_options "$PAGE" | awk -F '\t' "$OPTION_NAMES_AWK"'
		{ n = option_names($2, o); for (i = 1; i <= n; i++) print option_key(o[i]) "\t" $3 "\t" $4 "\t" $5 }'
}
# "OPTION<TAB>VALUE" of the defaults the lines "OPTION<TAB>TEXT" state.
defaults_of() {
	local lines
	lines=$(cat)
	# default_statements numbers the lines it found a default in: put the option back in front
	cut -f2 <<<"$lines" | default_statements |
		awk -F '\t' 'NR == FNR { option[FNR] = $1; next } { print option[$1] "\t" $2 }' <(cut -f1 <<<"$lines") -
}

# check_defaults TOOL MIN: every default of --help (at least MIN found) is the
# default TOOL(1) states for the option, and every default the page states
# (but an absence: none, no ...) is in --help.
check_defaults() {
	need_tool "$1"
	local help_d page_d opt value found other
	problems=()
	help_d=$(help_by_option | strict=1 defaults_of)
	page_d=$(page_by_option | cut -f1,4 | defaults_of)
	[ "$(grep -c . <<<"$help_d")" -ge "$2" ] || problems+=("only $(grep -c . <<<"$help_d") defaults found in --help")
	while IFS=$'\t' read -r opt value; do
		[ -n "$opt" ] || continue
		if [[ $value == '?'* ]]; then
			problems+=("$opt: --help says 'default' where no value can be read: '${value#\?}' (write '(default X)')")
			continue
		fi
		found=
		while IFS=$'\t' read -r other; do
			same_default "$value" "$other" && found=1
		done < <(awk -F '\t' -v o="$opt" '$1 == o { print $2 }' <<<"$page_d")
		[ -n "$found" ] || problems+=("$opt: --help's default '$value', $1(1)'s: '$(awk -F '\t' -v o="$opt" '$1 == o { printf "%s; ", $2 }' <<<"$page_d")'")
	done <<<"$help_d"
	while IFS=$'\t' read -r opt value; do
		[ -n "$opt" ] || continue
		[[ $value =~ ^(none|no\ |not\ ) ]] && continue
		found=
		while IFS=$'\t' read -r other; do
			same_default "$value" "$other" && found=1
		done < <(awk -F '\t' -v o="$opt" '$1 == o { print $2 }' <<<"$help_d")
		[ -n "$found" ] || problems+=("$opt: $1(1)'s default '$value' is not in --help")
	done <<<"$page_d"
	report
}

@test "docs_options: mswss --help and mswss(1) state the same defaults" { check_defaults mswss 8; }
@test "docs_options: msballoon --help and msballoon(1) state the same defaults" { check_defaults msballoon 14; }
@test "docs_options: msrswap --help and msrswap(1) state the same defaults" { check_defaults msrswap 12; }
@test "docs_options: mshash --help and mshash(1) state the same defaults" { check_defaults mshash 6; }
@test "docs_options: msgmc --help and msgmc(1) state the same defaults" { check_defaults msgmc 12; }
@test "docs_options: msshare --help and msshare(1) state the same defaults" { check_defaults msshare 4; }

# check_meaning TOOL MIN_PLACEHOLDERS MIN_PREFIXED: each option takes the same
# placeholder in --help and TOOL(1) (at least MIN_PLACEHOLDERS options take
# one), and the subcommands or policies a description of --help begins with
# (at least MIN_PREFIXED do) are in the entry's "Subcommands:" or
# "Policies:" line; when every line of an option begins with subcommands,
# they are all the page gives it.
check_meaning() {
	need_tool "$1"
	local help page opt ph other entry subs pols words word prefixed=0 placeholders=0
	problems=()
	help=$(help_names)
	page=$(page_names)
	while read -r _ opt ph; do
		[ "$ph" != - ] || continue
		placeholders=$((placeholders + 1))
		other=$(awk -v o="$opt" '$2 == o { print $3 }' <<<"$page" | sort -u | tr '\n' ' ')
		[ "$other" = "$ph " ] || problems+=("$opt: --help's value is $ph, $1(1)'s: ${other:-none}")
	done <<<"$help"
	while read -r _ opt ph; do
		[ "$ph" != - ] || [ -z "$(awk -v o="$opt" '$2 == o && $3 != "-"' <<<"$help")" ] ||
			problems+=("$opt: $1(1) gives it no value, --help does")
	done <<<"$page"
	[ "$placeholders" -ge "$2" ] || problems+=("only $placeholders placeholders found in --help")

	page=$(page_by_option)
	local by_option
	by_option=$(help_by_option) # once: it forks per line of --help
	for opt in $(cut -f1 <<<"$by_option" | sort -u); do
		entry=$(awk -F '\t' -v o="$opt" '$1 == o' <<<"$page" | head -1)
		[ -n "$entry" ] || continue # check_options reports it
		subs=$(cut -f2 <<<"$entry")
		pols=$(cut -f3 <<<"$entry")
		[ "$subs" != - ] || [ "$pols" != - ] || continue
		words=() all_prefixed=1
		while IFS=$'\t' read -r _ desc; do
			if [[ $desc =~ ^([a-z-]+(,\ [a-z-]+)*):\  ]]; then
				prefixed=$((prefixed + 1))
				words+=(${BASH_REMATCH[1]//,/ })
			else
				all_prefixed=
			fi
		done < <(awk -F '\t' -v o="$opt" '$1 == o' <<<"$by_option")
		policy_words=
		for word in "${words[@]}"; do
			if [[ ", $pols, " == *", $word, "* ]]; then
				policy_words=1
			elif [[ ", $subs, " != *", $word, "* && $subs != all ]]; then
				problems+=("$opt: --help says it is for $word, $1(1) says: subcommands $subs, policies $pols")
			fi
		done
		if [ -n "$all_prefixed" ] && [ -z "$policy_words" ] && [ "$subs" != all ]; then
			extra=$(comm -13 <(printf '%s\n' "${words[@]}" | sort -u) <(tr ',' '\n' <<<"$subs" | tr -d ' ' | sort -u) | tr '\n' ' ')
			[ -z "$extra" ] || problems+=("$opt: $1(1) gives it $extra, --help does not")
		fi
	done
	[ "$prefixed" -ge "$3" ] || problems+=("only $prefixed lines of --help found with subcommands to check")
	report
}

@test "docs_options: mswss --help and mswss(1) give each option the same value" { check_meaning mswss 8 0; }
@test "docs_options: msballoon --help and msballoon(1) give each option the same value, subcommands and policies" { check_meaning msballoon 16 9; }
@test "docs_options: msrswap --help and msrswap(1) give each option the same value and subcommands" { check_meaning msrswap 18 10; }
@test "docs_options: mshash --help and mshash(1) give each option the same value and subcommands" { check_meaning mshash 12 14; }
@test "docs_options: msgmc --help and msgmc(1) give each option the same value" { check_meaning msgmc 18 0; }
@test "docs_options: msshare --help and msshare(1) give each option the same value and subcommands" { check_meaning msshare 7 8; }

@test "docs_options: every page with durations lists the units parse_duration_ns takes" {
	# the units of the table in units.c: "ns", "us", ... and "" (a bare number)
	table=$(sed -n '/^static int parse_duration(/,/^}/p' "$ROOT/src/common/units.c" | grep -oE '\{"[a-z]*", [0-9e.]+\}' | cut -d'"' -f2)
	[ "$(wc -l <<<"$table")" -ge 7 ]
	grep -qx ns <<<"$table"
	grep -qx min <<<"$table"
	problems=()
	pages=0
	for page in "$ROOT"/man/*.1; do
		man_options "$page" | cut -f2 | option_names | awk '$3 == "DUR"' | grep -q . || continue
		pages=$((pages + 1))
		# the paragraph that begins "Durations are ..."
		text=$(roff_section "$page" OPTIONS | awk "$ROFF_TEXT_AWK"'
			/^\.(PP|TP|SH|SS)/ { f = 0 }
			{ t = roff_text($0) }
			t ~ /^Durations / { f = 1 }
			f { printf "%s ", t }')
		if [ -z "$text" ]; then
			problems+=("${page##*/}: OPTIONS take durations (DUR) but say nowhere which (no 'Durations ...' paragraph)")
			continue
		fi
		while read -r unit; do
			if [ -z "$unit" ]; then
				[[ $text == *"bare number"* ]] || problems+=("${page##*/}: does not say a bare number is seconds: $text")
			else
				[[ " ${text//[,;()]/ } " == *" $unit "* ]] || problems+=("${page##*/}: does not list the unit $unit: $text")
			fi
		done <<<"$table"
	done
	[ "$pages" -ge 5 ]
	report
}

@test "docs_options: msprom --help and msprom(1) have the same options, defaults and values" {
	check_options msprom 9 3
	check_defaults msprom 1
	check_meaning msprom 2 0
}
