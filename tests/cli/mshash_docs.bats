#!/usr/bin/env bats
# mshash's documentation against its code: mshash(1) renders cleanly and
# has the subcommands of --help (its options against --help: see
# docs_options.bats), its file format is the one of msh_format.h,
# memshare(7) documents every field of every record mshash writes, and the
# bash and zsh completions offer what mshash(1) lists.

bats_require_minimum_version 1.5.0
load docs_helpers

setup() {
	ROOT=${MEMSHARE_ROOT:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	MSHASH=${MEMSHARE_BIN:-$ROOT/bin}/mshash
	MAN1=$ROOT/man/mshash.1
	MAN7=$ROOT/man/memshare.7
	SRC=$ROOT/src/mshash
	BASHCOMP=$ROOT/completions/memshare.bash
	ZSHCOMP=$ROOT/completions/_memshare
}

need_mshash() { [ -x "$MSHASH" ] || skip "$MSHASH is not built (run make)"; }

help_subcommands() { "$MSHASH" --help | sed -nE 's/^(Usage:| +or:) +mshash \[OPTION\]\.\.\. ([a-z]+) .*/\2/p' | sort -u; }

@test "mshash(1) renders without warnings, within 80 columns, with its sections and version" {
	command -v man >/dev/null || skip "man (man-db) is not installed"
	out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$MAN1" 2>&1 >/dev/null)
	[ -z "$out" ] || { echo "$out"; return 1; }
	if command -v groff >/dev/null; then
		out=$(groff -man -ww -z "$MAN1" 2>&1)
		[ -z "$out" ] || { echo "$out"; return 1; }
	fi
	text=$(rendered "$MAN1")
	[ "$(wc -l <<<"$text")" -gt 300 ]
	long=$(awk 'length > 80' <<<"$text")
	[ -z "$long" ] || { echo "lines over 80 columns:"; echo "$long"; return 1; }
	for section in NAME SYNOPSIS DESCRIPTION SUBCOMMANDS SOURCES OPTIONS METRICS PARTITIONS TRACING \
		"FILE FORMAT" OUTPUT "EXIT STATUS" ENVIRONMENT EXAMPLES "SEE ALSO"; do
		grep -qx "$section" <<<"$text" || { echo "mshash(1) has no section $section"; return 1; }
	done
	need_mshash
	version=$("$MSHASH" --version | awk '{print $NF}')
	grep -q "^\.TH MSHASH 1 .* \"memshare $version\" " "$MAN1"
}

# (That the options, defaults, values and subcommands of --help are those of
# the page, docs_options.bats checks for every tool.)
@test "every option of mshash(1) names its subcommands, and mshash takes it" {
	need_mshash
	entries=$(option_entries "$MAN1")
	[ "$(wc -l <<<"$entries")" -ge 19 ]
	# every option names its subcommands, but those that exit at once
	without=$(awk -F '\t' '$2 == "-" { print $1 }' <<<"$entries" | long_options | tr '\n' ' ')
	[ "$without" = "--help --version " ] || { echo "no 'Subcommands:' line: $without"; return 1; }
	# every option the page documents, mshash accepts (an unknown one is exit status 2 before --help)
	run "$MSHASH" --no-such-option --help
	[ "$status" -eq 2 ]
	while IFS=$'\t' read -r tag _; do
		opt=$(long_options <<<"$tag" | head -1)
		if [[ $tag == .BI* ]]; then run "$MSHASH" "$opt" 1 --help; else run "$MSHASH" "$opt" --help; fi
		[ "$status" -ne 2 ] || [[ $output == *"$opt:"* ]] || { echo "mshash rejects $opt: $output"; return 1; }
	done <<<"$entries"
}

@test "mshash(1) describes the subcommands of --help, main.c runs those, and the examples use real options" {
	need_mshash
	subcommands=$(help_subcommands)
	[ "$(tr '\n' ' ' <<<"$subcommands")" = "diff query scan stats watch " ]
	same_lists "$subcommands" "$(roff_section "$MAN1" SUBCOMMANDS | tp_tags | plain_roff | sed -E 's/^\.BI? ([a-z]+).*/\1/' | sort)"
	same_lists "$subcommands" "$(grep -oE 'strcmp\(command, "[a-z]+"\)' "$SRC/main.c" | grep -oE '"[a-z]+"' | tr -d '"' | sort -u)"
	synopsis=$(rendered "$MAN1" | sed -n '/^SYNOPSIS$/,/^DESCRIPTION$/p')
	for sub in $subcommands; do
		grep -qE "mshash (\[-c URI\] )?$sub( |$)" <<<"$synopsis" || { echo "SYNOPSIS has no $sub"; return 1; }
	done
	help=$("$MSHASH" --help)
	takes_value=$(sed -nE 's/^ +(-([a-zA-Z]), )?(--[a-z-]+) [A-Z/]+ .*/\2 \3/p' <<<"$help" | tr ' ' '\n' | grep . | sed 's/^\([a-zA-Z]\)$/-\1/')
	grep -qx -- --partition <<<"$takes_value"
	commands=$(rendered "$MAN1" | sed -n '/^EXAMPLES$/,/^SEE ALSO$/p' | grep -oE '(^|[ |#$])mshash( [^|;>]*)?' | sed -E 's/^[ |#$]*//')
	[ "$(wc -l <<<"$commands")" -ge 10 ]
	while read -r -a words; do
		sub=
		for ((i = 1; i < ${#words[@]}; i++)); do
			w=${words[i]}
			if [[ $w == -* ]]; then
				{ long_options <<<"$help"; short_options <<<"$help"; } | grep -qxF -- "${w%%=*}" ||
					{ echo "example '${words[*]}': $w is not an option"; return 1; }
				grep -qxF -- "$w" <<<"$takes_value" && i=$((i + 1))
			elif [ -z "$sub" ]; then
				sub=$w
			fi
		done
		grep -qxF -- "$sub" <<<"$subcommands" || { echo "example '${words[*]}': no subcommand"; return 1; }
	done <<<"$commands"
}

@test "mshash(1) FILE FORMAT has the fields and offsets of msh_format.h" {
	# "offset size field" lines of both
	header=$(sed -n '/^ \*   offset size  field/,/^ \*   then/p' "$SRC/msh_format.h" | grep -oE '^ \* +[0-9]+ +[0-9]* ' | awk '{print $2, $3}')
	page=$(roff_section "$MAN1" "FILE FORMAT" | sed -n '/^offset size/,/^\.EE/p' | grep -oE '^ *[0-9]+ +[0-9]* ' | awk '{print $1, $2}')
	[ "$(wc -l <<<"$header")" -ge 20 ]
	same_lists "$header" "$page"
	grep -q 'define MSH_VERSION 1$' "$SRC/msh_format.h"
	grep -q 'An index (version 1)' "$MAN1"
}

@test "memshare(7) documents every field of the records mshash writes, and no other" {
	common=$(sed -n '/^json_t \*record_new(/,/^}/p' "$ROOT/src/common/jsonl.c" | grep -oE '"[a-z_]+"' | tr -d '"')
	[ "$(sort <<<"$common" | tr '\n' ' ')" = "host kind ts " ]
	kinds=$(grep -ohE 'record_new\("[a-z_]+"\)' "$SRC"/*.c | grep -oE '"[a-z_]+"' | tr -d '"' | sort | tr '\n' ' ')
	[ "$kinds" = "degree diff hash scan sharing watch " ]
	while read -r kind fn min; do
		code=$(emitted "$SRC/records.c" "$fn")
		[ "$(wc -l <<<"$code")" -ge "$min" ] || { echo "$fn: only $(wc -l <<<"$code") fields found"; return 1; }
		always=$( { echo "$common"; sed -n 's/^always //p' <<<"$code"; } | sort -u)
		known=$(sed -n 's/^known //p' <<<"$code" | sort -u)
		same_lists "$(printf '%s\n' "$always" "$known" | grep . | sort -u)" "$(record_tags "$kind")"
		same_lists "$always" "$(record_tags "$kind" "Always present")"
		same_lists "$known" "$(record_tags "$kind" "Present when known")"
	done <<-'EOF'
		scan scan_record 17
		sharing sharing_record 15
		diff diff_record 14
		hash hash_record 4
		degree degree_record 6
		watch watch_record 19
	EOF
}

@test "every key of real mshash records is documented in memshare(7)" {
	need_mshash
	command -v jq >/dev/null || skip "jq is not installed"
	T=$BATS_TEST_TMPDIR
	out=$T/records.jsonl
	perl -e 'binmode STDOUT; print "a" x 4096, "\0" x 4096, "b" x 8192' >"$T/x.img"
	perl -e 'binmode STDOUT; print "a" x 4096, "c" x 4096, "b" x 12288' >"$T/y.img"
	"$MSHASH" scan "$T/x.img" -o "$T/x.msh" >>"$out"
	"$MSHASH" scan --partition 0/2 "$T/y.img" -o "$T/y0.msh" >>"$out"
	"$MSHASH" scan "$T/y.img" -o "$T/y.msh" >/dev/null
	"$MSHASH" stats "$T/x.msh" "$T/y.msh" >>"$out"
	"$MSHASH" stats --partition 1/2 "$T/x.msh" >>"$out"
	"$MSHASH" diff "$T/x.msh" "$T/y.msh" >>"$out"
	h=$("$MSHASH" query --shared 2 "$T/x.msh" "$T/y.msh" | tee -a "$out" | jq -r .hash | head -1)
	"$MSHASH" query --where "$h" "$T/x.msh" "$T/y.msh" >>"$out"
	"$MSHASH" query --degree both "$T/x.msh" "$T/y.msh" >>"$out"
	sleep 30 &
	pid=$!
	"$MSHASH" watch -n 2 -i 10ms -o "$T/w.msh" "pid:$pid" >>"$out" 2>/dev/null || :
	kill "$pid"
	keys=$(jq -r '.kind as $k | keys[] | "\($k) \(.)"' "$out" | sort -u)
	for key in "scan part_count" "sharing intra_ratio" "sharing part_index" "sharing snapshot_time" "diff dirty_fraction" \
		"hash where" "degree inter_degree"; do
		grep -qx "$key" <<<"$keys" || { echo "no record had $key"; return 1; }
	done
	for kind in $(cut -d' ' -f1 <<<"$keys" | sort -u); do
		missing=$(comm -23 <(sed -n "s/^$kind //p" <<<"$keys" | sort -u) <(record_tags "$kind"))
		[ -z "$missing" ] || { echo "$kind record: not in memshare(7): $missing"; return 1; }
	done
	grep -q "^watch " <<<"$keys" || skip "watch could not read a process here (not root?)"
}

@test "bash completion: mshash offers the subcommands, then the options mshash(1) gives each, then operands" {
	subcommands=$(roff_section "$MAN1" SUBCOMMANDS | tp_tags | plain_roff | sed -E 's/^\.BI? ([a-z]+).*/\1/' | sort)
	[ "$(tr '\n' ' ' <<<"$subcommands")" = "diff query scan stats watch " ]
	same_lists "$subcommands" "$(complete_words mshash '')"
	same_lists "$subcommands" "$(complete_words mshash -c qemu:///system -b 512 '')"
	all=$(option_entries "$MAN1" | cut -f1 | { t=$(cat); long_options <<<"$t"; short_options <<<"$t"; } | sort)
	[ "$(wc -l <<<"$all")" -ge 29 ]
	same_lists "$all" "$(complete_words mshash - | sort)"
	for sub in $subcommands; do
		want=$(page_options_of "$sub" "$MAN1" | sort)
		same_lists "$want" "$(complete_words mshash "$sub" - | sort)" || { echo "for $sub"; return 1; }
	done
	[ "$(complete_words mshash scan -b '' | tr '\n' ' ')" = "1024 128 2048 256 4096 512 " ]
	[ "$(complete_words mshash query --degree '' | tr '\n' ' ')" = "both inter intra " ]
	[ "$(complete_words mshash scan --connect '' | head -1)" = cgroup:/// ]
	[ "$(complete_words mshash watch p)" = pid: ]
	complete_words mshash scan "pid:$$" | grep -qx "pid:$$"
	dir=$BATS_TEST_TMPDIR/c
	mkdir -p "$dir/sub"
	touch "$dir/a.msh" "$dir/b.msh" "$dir/notes.txt"
	[ "$(cd "$dir" && complete_words mshash stats '' | tr '\n' ' ')" = "a.msh b.msh sub/ " ]
	[ "$(cd "$dir" && complete_words mshash diff a.msh b.msh '')" = "" ]
	[ "$(cd "$dir" && complete_words mshash scan n | tr '\n' ' ')" = "notes.txt " ]
	# no step of the completion fails, even in a shell run with set -e
	run bash -ec "source '$BASHCOMP'; COMP_WORDS=(mshash -c cgroup:/// scan x -); COMP_CWORD=5; _memshare; printf '%s\n' \"\${COMPREPLY[@]}\""
	[ "$status" -eq 0 ]
	[[ $output == *--freeze* ]]
	command -v virsh >/dev/null || skip "virsh (libvirt-clients) is not installed"
	want=$(timeout 10 virsh -q -c test:///default list --name 2>/dev/null | grep . | sed 's/^/domain:/') || skip "virsh cannot open test:///default"
	same_lists "$(sort <<<"$want")" "$(complete_words mshash -c test:///default scan domain:)"
}

@test "zsh completion: its mshash spec has the options of mshash(1), per subcommand those it gives" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	run zsh -n "$ZSHCOMP"
	[ "$status" -eq 0 ]
	all=$(option_entries "$MAN1" | cut -f1 | { t=$(cat); long_options <<<"$t"; short_options <<<"$t"; } | sort -u)
	same_lists "$all" "$(zsh_specs mshash)"
	for sub in diff query scan stats watch; do
		same_lists "$(page_options_of "$sub" "$MAN1" | sort -u)" "$(zsh_specs mshash -c test:///default "$sub")" || { echo "for $sub"; return 1; }
		same_lists "$(page_options_of "$sub" "$MAN1" | sort -u)" "$(zsh_specs mshash "$sub" -b 512)" || { echo "for $sub -b"; return 1; }
	done
}
