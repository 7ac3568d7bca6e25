# Helpers the documentation tests share (docs.bats, mshash_docs.bats): roff
# and rendered man pages, option lists, the fields records get in the code
# and in memshare(7), and what the bash and zsh completions offer.
# They read $MAN7, $BASHCOMP and $ZSHCOMP, which each file's setup sets.

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

rendered() {
	LC_ALL=C MANWIDTH=80 man -l "$1" 2>/dev/null | col -bx
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

# emitted FILE FUNCTION: "always FIELD" or "known FIELD" for every field the
# function puts on its record.  A field is "always" when it is set with
# json_object_set_new at the indentation of record_new (or of the function's
# first line): not inside a condition.
emitted() {
	awk -v fn="$2" '
		!body && $0 ~ ("^[a-z].*[ *]" fn "\\(") { head = 1 }
		head && /^\{/ { body = 1; head = 0; next }
		body && /^}/ { exit }
		body && /[^ \t]/ {
			match($0, /^\t*/); indent = RLENGTH
			if (first == "") first = indent
			if (base == "" && $0 ~ /record_new\(/) base = indent
			if (match($0, /(json_object_set_new|json_set_known_[a-z0-9]+)\([a-z]+, "[a-z0-9_]+"/)) {
				f = substr($0, RSTART, RLENGTH); sub(/^[^"]*"/, "", f); sub(/"$/, "", f)
				print (($0 ~ /^\t*json_object_set_new\(/ && indent == (base != "" ? base : first)) ? "always" : "known"), f
			}
		}' "$1"
}

# record_tags KIND [SUBSECTION]: the field tags of THE "KIND" RECORD in memshare(7).
record_tags() {
	roff_section "$MAN7" "THE \\(dq$1\\(dq RECORD" |
		sub=${2-} awk '/^\.SS / { s = substr($0, 5); next } (ENVIRON["sub"] == "" || s == ENVIRON["sub"]) && prev == ".TP" { print } { prev = $0 }' |
		sed -n 's/^\.B \([a-z0-9_]*\)$/\1/p' | sort -u
}

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

# zsh_specs TOOL [WORD...]: the option names of the specs the completion
# hands to _arguments for TOOL, with WORD... on the line before the cursor.
zsh_specs() {
	local tool=$1
	shift
	(cd "$BATS_TEST_TMPDIR" && service=$tool zsh -fc 'words=("$@[2,-1]" ""); CURRENT=$#words; _arguments() { print -rl -- "$@" }; source "$1"' \
		zsh "$ZSHCOMP" "$tool" "$@") |
		grep -F '[' | sed -E 's/^\([^)]*\)//; s/^\*//' | grep -oE '^-[-a-zA-Z]*[a-zA-Z]' | sort -u
}
