#!/usr/bin/env bats
# The documentation against the code: man pages render cleanly, name every
# option of --help and every field the "wss" record can carry; the shell
# completions offer what the tool accepts.  Every list taken from the code is
# checked to be non-trivial first, so that an extraction that finds nothing
# fails instead of passing.

setup() {
	ROOT=${MEMSHARE_ROOT:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	MSWSS=${MEMSHARE_BIN:-$ROOT/bin}/mswss
	BINDIR=${MSWSS%/mswss}
	MAN1=$ROOT/man/mswss.1
	MAN7=$ROOT/man/memshare.7
	BASHCOMP=$ROOT/completions/memshare.bash
	ZSHCOMP=$ROOT/completions/_memshare
}

need_mswss() {
	[ -x "$MSWSS" ] || skip "$MSWSS is not built (run make)"
}

# Roff source as text: \- is -, font changes and \& dropped.
plain_roff() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g'
}

# roff_section PAGE TITLE: the source lines of section .SH TITLE, up to the next .SH.
roff_section() {
	want=$2 awk '/^\.SH / { f = (substr($0, 5) == ENVIRON["want"]); next } f' "$1"
}

# The tag lines of .TP paragraphs (the line after each .TP).
tp_tags() {
	awk 'prev == ".TP" { print } { prev = $0 }'
}

long_options() { grep -oE -- '--[a-z][a-z-]*[a-z]' | sort -u; }
short_options() { grep -oE -- '(^|[^-[:alnum:]])-[a-zA-Z]([^-[:alnum:]]|$)' | grep -oE -- '-[a-zA-Z]' | sort -u; }

# Show both sides when two lists differ.
same_lists() {
	if [ "$1" != "$2" ]; then
		echo "expected: $(tr '\n' ' ' <<<"$1")"
		echo "got:      $(tr '\n' ' ' <<<"$2")"
		return 1
	fi
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

rendered() {
	LC_ALL=C MANWIDTH=80 man -l "$1" 2>/dev/null | col -bx
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
	for section in NAME DESCRIPTION "COMMON RULES" "CONNECTION URIS" "DOMAIN NAMES" 'THE "wss" RECORD' "FURTHER KINDS" "SEE ALSO"; do
		grep -qx "$section" <<<"$text" || { echo "memshare(7) has no section $section"; return 1; }
	done
}

@test "docs: the pages carry the version of the tools" {
	need_mswss
	version=$("$MSWSS" --version | awk '{print $NF}')
	[[ $version =~ ^[0-9]+\.[0-9]+ ]]
	for page in "$MAN1" "$MAN7"; do
		grep -q "^\.TH .* \"memshare $version\" " "$page" || { echo "$page: .TH does not say memshare $version"; return 1; }
	done
}

@test "docs: the options of mswss(1) are exactly those of mswss --help" {
	need_mswss
	help=$("$MSWSS" --help)
	help_long=$(long_options <<<"$help")
	help_short=$(short_options <<<"$help")
	# the extraction itself works: 15 long options, 9 short ones, known names among them
	[ "$(wc -l <<<"$help_long")" -ge 15 ]
	[ "$(wc -l <<<"$help_short")" -ge 9 ]
	grep -qx -- --refault-threshold <<<"$help_long"
	grep -qx -- --quiet <<<"$help_long"
	grep -qx -- --version <<<"$help_long"
	grep -qx -- -q <<<"$help_short"

	tags=$(roff_section "$MAN1" OPTIONS | tp_tags | plain_roff)
	same_lists "$help_long" "$(long_options <<<"$tags")"
	same_lists "$help_short" "$(short_options <<<"$tags")"
}

@test "docs: mswss(1) describes every method of --list-methods and the defaults of --help" {
	need_mswss
	methods=$("$MSWSS" --list-methods | sort)
	[ "$(wc -l <<<"$methods")" -ge 5 ]
	tags=$(roff_section "$MAN1" METHODS | tp_tags | plain_roff | sed 's/^\.B //' | sort)
	same_lists "$methods" "$tags"
	# each default --help states, and the same default in the page's OPTIONS
	help=$("$MSWSS" --help | tr -s ' \n' ' ')
	command -v man >/dev/null || skip "man (man-db) is not installed"
	options=$(rendered "$MAN1" | sed -n '/^OPTIONS$/,/^METHODS$/p' | tr -s ' \n' ' ')
	[ -n "$options" ]
	while IFS='|' read -r in_help in_page; do
		[[ $help == *"$in_help"* ]] || { echo "--help no longer says '$in_help'"; return 1; }
		[[ $options == *"$in_page"* ]] || { echo "mswss(1) OPTIONS do not say '$in_page'"; return 1; }
	done <<-'EOF'
		estimator (default auto)|auto (the default)
		(default 5s)|Default 5s.
		(default: the interval)|Default: the whole interval.
		(default 1 unless --interval is given)|Default: 1, unless --interval is given
		(default 1000)|default 1000)
		(default 0.1%, at least 64K/s)|Default 0.1%.
		(default 0.1%, at least 64K/s)|never below 64 KiB per second
		(default or 0: from the clock)|Default (and 0): taken from the clock.
		(default: $MEMSHARE_URI, then cgroup:///)|Default: the value of MEMSHARE_URI, then cgroup:///.
	EOF
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
	[ -n "$doc_always" ] && [ -n "$doc_known" ]
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

# ---- bash completion -------------------------------------------------------

# complete WORD...: run _memshare on the words, the last one being completed;
# prints COMPREPLY one per line, sorted.
complete_words() {
	(
		source "$BASHCOMP"
		unset COMP_LINE COMP_POINT
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		_memshare
		printf '%s\n' "${COMPREPLY[@]}" | sort
	)
}

# complete_line LINE: as bash calls it, with COMP_WORDBREAKS splitting ':' and '='.
complete_line() {
	(
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
	run bash -c "source '$BASHCOMP' && complete -p mswss msballoon msrswap mshash msgmc"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 5 ]
	for tool in mswss msballoon msrswap mshash msgmc; do
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

@test "bash completion: the tools to come offer --help and --version" {
	for tool in msballoon msrswap mshash msgmc; do
		[ "$(complete_words $tool -- | tr '\n' ' ')" = "--help --version " ]
		[ -z "$(complete_words $tool '')" ]
	done
}

# ---- zsh completion ------------------------------------------------------------

@test "zsh completion: parses, and its mswss spec has exactly the options of --help" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	need_mswss
	run zsh -n "$ZSHCOMP"
	[ "$status" -eq 0 ]
	head -1 "$ZSHCOMP" | grep -qx '#compdef mswss msballoon msrswap mshash msgmc'
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
		zpty -w z "PS1='%% '; fpath=($2 \$fpath); autoload -Uz compinit; compinit -u -D"
		ask() {
			local out= chunk
			zpty -w -n z "$1"$'\t'
			sleep 3
			while zpty -r -t z chunk; do out+=$chunk; done
			print -r -- "$out"
			zpty -w -n z $'\C-u'
		}
		sleep 1
		ask 'mswss -m '
		print -- '==='
		ask 'mswss -c '
		zpty -d z
	EOF
	run timeout 60 zsh -f "$BATS_TEST_TMPDIR/drive.zsh" "$BINDIR" "$ROOT/completions"
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
