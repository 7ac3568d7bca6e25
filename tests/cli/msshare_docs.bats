#!/usr/bin/env bats
# msshare's documentation against its code: msshare(1) renders cleanly,
# memshare(7) documents every field of the records msshare writes, and the
# bash and zsh completions offer what msshare(1) lists.
bats_require_minimum_version 1.5.0
load docs_helpers

setup() {
	ROOT=${MEMSHARE_ROOT:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)}
	MSSHARE=${MEMSHARE_BIN:-$ROOT/bin}/msshare
	MAN1=$ROOT/man/msshare.1
	MAN7=$ROOT/man/memshare.7
	SRC=$ROOT/src/msshare
	BASHCOMP=$ROOT/completions/memshare.bash
	ZSHCOMP=$ROOT/completions/_memshare
}

@test "msshare(1) renders without warnings, within 80 columns, with its sections and version" {
	command -v groff >/dev/null || skip "groff (groff-base) is not installed"
	out=$(groff -man -ww -z "$MAN1" 2>&1)
	[ -z "$out" ] || { echo "$out"; return 1; }
	command -v man >/dev/null || skip "man (man-db) is not installed"
	text=$(rendered "$MAN1")
	[ "$(wc -l <<<"$text")" -gt 100 ]
	long=$(awk 'length > 80' <<<"$text")
	[ -z "$long" ] || { echo "$long"; return 1; }
	for section in NAME SYNOPSIS DESCRIPTION SUBCOMMANDS OPTIONS LIBVIRT OUTPUT "EXIT STATUS" ENVIRONMENT EXAMPLES "SEE ALSO"; do
		grep -qx "$section" <<<"$text" || { echo "msshare(1) has no section $section"; return 1; }
	done
	[ -x "$MSSHARE" ] || skip "$MSSHARE is not built"
	grep -q "^\.TH .* \"memshare $("$MSSHARE" --version | awk '{print $NF}')\" " "$MAN1"
}

@test "msshare(1) describes the subcommands of --help" {
	[ -x "$MSSHARE" ] || skip "$MSSHARE is not built"
	help=$("$MSSHARE" --help | sed -nE 's/^(Usage:| +or:) +msshare \[OPTION\]\.\.\. ([a-z]+).*/\2/p' | sort -u)
	[ "$(tr '\n' ' ' <<<"$help")" = "create list resize rm watch " ]
	same_lists "$help" "$(roff_section "$MAN1" SUBCOMMANDS | tp_tags | plain_roff | sed -E 's/^\.B ([a-z]+).*/\1/' | sort)"
}

@test "memshare(7) documents every field of the records msshare writes, and no other" {
	common=$(sed -n '/^json_t \*record_new(/,/^}/p' "$ROOT/src/common/jsonl.c" | grep -oE '"[a-z_]+"' | tr -d '"')
	kinds=$(grep -ohE 'record_new\("[a-z_]+"\)' "$SRC"/*.c | grep -oE '"[a-z_]+"' | tr -d '"' | sort | tr '\n' ' ')
	[ "$kinds" = "share share_space " ]
	while read -r kind file fn min; do
		code=$(emitted "$SRC/$file" "$fn")
		[ "$(wc -l <<<"$code")" -ge "$min" ] || { echo "$fn: only $(wc -l <<<"$code") fields found"; return 1; }
		always=$( { echo "$common"; sed -n 's/^always //p' <<<"$code"; } | sort -u)
		known=$(sed -n 's/^known //p' <<<"$code" | sort -u)
		same_lists "$(printf '%s\n' "$always" "$known" | grep . | sort -u)" "$(record_tags "$kind")"
		same_lists "$always" "$(record_tags "$kind" "Always present")"
		same_lists "$known" "$(record_tags "$kind" "Present when known")"
	done <<-'EOF'
		share share_watch.c share_record 12
		share_space space.c space_record 5
	EOF
}

@test "bash completion: msshare offers the subcommands, then the options msshare(1) gives each" {
	subcommands=$(roff_section "$MAN1" SUBCOMMANDS | tp_tags | plain_roff | sed -E 's/^\.BI? ([a-z]+).*/\1/' | sort)
	same_lists "$subcommands" "$(complete_words msshare '')"
	same_lists "$subcommands" "$(complete_words msshare -c qemu:///system '')"
	all=$(option_entries "$MAN1" | cut -f1 | { t=$(cat); long_options <<<"$t"; short_options <<<"$t"; } | sort)
	[ "$(wc -l <<<"$all")" -ge 20 ]
	same_lists "$all" "$(complete_words msshare - | sort)"
	for sub in $subcommands; do
		same_lists "$(page_options_of "$sub" "$MAN1" | sort)" "$(complete_words msshare "$sub" - | sort)" || { echo "for $sub"; return 1; }
	done
	[ "$(complete_words msshare create x --transport '' | tr '\n' ' ')" = "9p virtiofs " ]
	[ "$(complete_words msshare --connect '' | head -1)" = cgroup:/// ]
	# the domains that have a space: tmpfs mounts under MEMSHARE_SHARE_DIR
	[ "$(id -u)" = 0 ] || skip "needs root to mount a space"
	export MEMSHARE_SHARE_DIR=$BATS_TEST_TMPDIR/share
	mkdir -p "$MEMSHARE_SHARE_DIR/memshare/c1"
	mount -t tmpfs -o size=1M none "$MEMSHARE_SHARE_DIR/memshare/c1"
	got=$(complete_words msshare rm '')
	umount "$MEMSHARE_SHARE_DIR/memshare/c1"
	[ "$got" = /memshare/c1 ]
}

@test "zsh completion: its msshare spec has the options of msshare(1), per subcommand those it gives" {
	command -v zsh >/dev/null || skip "zsh is not installed"
	run zsh -n "$ZSHCOMP"
	[ "$status" -eq 0 ]
	all=$(option_entries "$MAN1" | cut -f1 | { t=$(cat); long_options <<<"$t"; short_options <<<"$t"; } | sort -u)
	same_lists "$all" "$(zsh_specs msshare)"
	for sub in create resize rm list watch; do
		same_lists "$(page_options_of "$sub" "$MAN1" | sort -u)" "$(zsh_specs msshare -c cgroup:/// "$sub")" || { echo "for $sub"; return 1; }
	done
}
