# Helpers the documentation tests share (docs.bats, mshash_docs.bats,
# docs_options.bats): roff and rendered man pages, option lists and the
# entries of OPTIONS and of --help, the fields records get in the code and
# in memshare(7), and what the bash and zsh completions offer.
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
		# bats traces every command of a test (a DEBUG trap): in the completion's
		# shell code that costs ~200 ms a call; the subshell goes without it
		trap - DEBUG
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

# ---- the entries of OPTIONS and of --help ----------------------------------

# roff_text: roff source lines as the text they print, one line each: the
# font macros (.B, .BI, .RB, ...) as their joined arguments, text lines as
# they are, other requests (.TP, .RS, .EX, ...) as empty lines; escapes as
# their characters (\- as -, \(dq as ", font changes and \& dropped).
ROFF_TEXT_AWK='
	# the arguments of a macro line: words, or "quoted words"
	function args(line, a,    n, c, w, q) {
		n = 0
		while (line != "") {
			sub(/^[ \t]+/, "", line)
			if (line == "") break
			w = ""; q = substr(line, 1, 1) == "\""
			if (q) line = substr(line, 2)
			while (line != "") {
				c = substr(line, 1, 1)
				if (q && c == "\"") { line = substr(line, 2); break }
				if (!q && (c == " " || c == "\t")) break
				if (c == "\\") { w = w substr(line, 1, 2); line = substr(line, 3); continue }
				w = w c; line = substr(line, 2)
			}
			a[++n] = w
		}
		return n
	}
	function escapes(t) {
		gsub(/\\-/, "-", t); gsub(/\\f(\[[^]]*\]|\(..|.)/, "", t); gsub(/\\&|\\c/, "", t)
		gsub(/\\[ ~]/, " ", t); gsub(/\\\(dq|\\\(lq|\\\(rq/, "\"", t); gsub(/\\\(em/, "--", t)
		gsub(/\\\(mu/, "x", t); gsub(/\\\(<=/, "<=", t); gsub(/\\\(->/, "->", t); gsub(/\\\(../, "", t)
		return t
	}
	function roff_text(line,    m, a, n, i, t, sep) {
		if (substr(line, 1, 1) != "." && substr(line, 1, 1) != "\x27") return escapes(line)
		m = line; sub(/[ \t].*/, "", m); sub(/^[.\x27]/, "", m)
		if (m !~ /^(B|I|SM|SB|BI|BR|IB|IR|RB|RI)$/) return ""
		sub(/^[^ \t]*/, "", line)
		n = args(line, a)
		sep = length(m) == 2 && m != "SM" && m != "SB" ? "" : " "
		t = ""
		for (i = 1; i <= n; i++) t = t (i > 1 ? sep : "") a[i]
		return escapes(t)
	}'

# man_options PAGE: the .TP entries of the OPTIONS section of PAGE, one a
# line: "ROFF_TAG<TAB>TAG<TAB>SUBCOMMANDS<TAB>POLICIES<TAB>TEXT".  ROFF_TAG is
# the tag's source line as plain_roff gives it (".BI -c ..."), TAG its text
# ("-c URI, --connect URI"),
# SUBCOMMANDS and POLICIES the lists of the entry's "Subcommands: ..." and
# "Policies: ..." lines ("-": none), TEXT the entry's text on one line.
man_options() {
	roff_section "$1" OPTIONS | awk "$ROFF_TEXT_AWK"'
		function flush() {
			if (roff != "") {
				gsub(/\\-/, "-", roff); gsub(/\\f[BIRP]|\\&/, "", roff)
				gsub(/  +/, " ", text); sub(/^ /, "", text); sub(/ $/, "", text)
				print roff "\t" tag "\t" subs "\t" pols "\t" text
			}
			roff = ""
		}
		/^\.TP/ { flush(); getline roff; tag = roff_text(roff); subs = "-"; pols = "-"; text = ""; next }
		/^\.(PP|SH|SS)/ { flush(); next }
		roff == "" { next }
		{ t = roff_text($0) }
		t ~ /^Subcommands: / { subs = substr(t, 14); sub(/\.$/, "", subs); next }
		t ~ /^Policies: / { pols = substr(t, 11); sub(/\.$/, "", pols); next }
		{ text = text " " t }
		END { flush() }'
}

# option_entries PAGE: "ROFF_TAG<TAB>SUBCOMMANDS<TAB>POLICIES" of the
# entries of OPTIONS.
option_entries() {
	man_options "$1" | cut -f1,3,4
}

# page_options_of SUBCOMMAND PAGE: the options PAGE gives SUBCOMMAND (-h,
# --help, --version always).
page_options_of() {
	option_entries "$2" | sub=$1 awk -F '\t' '
		{ n = split($2, s, /, */); for (i = 1; i <= n; i++) if (s[i] == ENVIRON["sub"] || s[i] == "all") print $1 }' |
		{ cat; echo '-h --help --version'; } | { t=$(cat); long_options <<<"$t"; short_options <<<"$t"; }
}

# option_names TAG: "SHORT LONG PLACEHOLDER" of a tag, help line or man
# page alike ("-c URI, --connect URI", "-c, --connect URI",
# "--export NAME:SIZE", "-p, --pretty"); "-" for what it lacks.  A tag
# with two long options ("--rswap-control PATH, --rswap unix:PATH") is a
# line for each; a placeholder given to the short option only is the long
# one's too.
OPTION_NAMES_AWK='
	function option_names(tag, out,    short, sph, nlong, n, part, i, name, p, long, lph) {
		short = "-"; sph = "-"; nlong = 0
		n = split(tag, part, /, /)
		for (i = 1; i <= n; i++) {
			name = part[i]; p = part[i]
			sub(/ .*/, "", name); sub(/^[^ ]*( |$)/, "", p)
			if (name ~ /^--/) { long[++nlong] = name; lph[nlong] = p == "" ? "-" : p }
			else if (name ~ /^-[a-zA-Z]$/) { short = name; if (p != "") sph = p }
		}
		if (nlong == 0) { out[1] = short " - " sph; return 1 }
		for (i = 1; i <= nlong; i++) out[i] = short " " long[i] " " (lph[i] == "-" ? sph : lph[i])
		return nlong
	}
	# the key an option is known by: its long name, else its short one
	function option_key(names,    f) { split(names, f, " "); return f[2] != "-" ? f[2] : f[1] }'
option_names() {
	awk "$OPTION_NAMES_AWK"'{ n = option_names($0, o); for (i = 1; i <= n; i++) print o[i] }'
}

# help_options TOOL: the option lines of TOOL --help, one entry a line:
# "NAMES<TAB>DESCRIPTION" (NAMES as in "-c, --connect URI").  A description
# goes on on the lines that begin in its column (that of -h's "this text");
# lines indented further (the lists of methods and policies) are left out.
help_options() {
	"$1" --help | awk '
		function flush() { if (names != "") print names "\t" desc; names = "" }
		col == 0 && match($0, /^ +-h, --help +/) { col = RLENGTH }
		{ lines[NR] = $0 }
		END {
			for (i = 1; i <= NR; i++) {
				line = lines[i]
				match(line, /^ */); indent = RLENGTH
				if (indent < 10 && match(line, /^ +(-[a-zA-Z], )?--[a-z][a-z-]*/)) {
					flush()
					names = substr(line, RSTART, RLENGTH); sub(/^ +/, "", names)
					rest = substr(line, RSTART + RLENGTH)
					# a placeholder: capitals, or unix:PATH
					if (match(rest, /^ ([a-z]+:)?[A-Z][A-Z0-9_:\/.-]*( |$)/)) {
						ph = substr(rest, 2, RLENGTH - 1); sub(/ $/, "", ph)
						names = names " " ph
						rest = substr(rest, RLENGTH + 1)
					}
					desc = rest; sub(/^ +/, "", desc)
				} else if (names != "" && indent == col) {
					desc = desc " " substr(line, col + 1)
				} else if (indent <= col) {
					flush()
				}
			}
			flush()
		}'
}

# default_statements: the defaults a text states, one per line of input
# (an option's description or man page entry), as "LINE<TAB>VALUE": after
# "Default", "(default", "; default", ", default", "default:" or
# "default is", up to the end of the sentence, a ';' or the ')' that closes
# the parenthesis; or the word before "(default)" or "(the default)".
# Values are normalised: "the value of X" is $X, commas and parentheses
# dropped, spaces squeezed.  A "default" in none of these forms, in a
# line of --help, is "LINE<TAB>?..." (an unclear default).
default_statements() {
	awk '
		function norm(v) {
			gsub(/the value of /, "$", v); gsub(/[,()]/, "", v); gsub(/  +/, " ", v)
			sub(/^ /, "", v); sub(/[ .]+$/, "", v)
			return v
		}
		# the value from position p of t: to a sentence end, ";" or an unopened ")"
		function value_at(t, p,    depth, c, v) {
			depth = 0; v = ""
			for (; p <= length(t); p++) {
				c = substr(t, p, 1)
				if (c == "(") depth++
				else if (c == ")" && depth-- == 0) break
				else if (c == ";" || (c == "." && (p == length(t) || substr(t, p + 1, 1) == " "))) break
				v = v c
			}
			return norm(v)
		}
		{
			t = $0; off = 0
			while (match(t, /[Dd]efault/)) {
				p = off + RSTART; end = p + RLENGTH
				before = substr($0, 1, p - 1); after = substr($0, end)
				t = substr(t, RSTART + RLENGTH); off = end - 1
				# a word that holds it (defaults), a URI (test:///default)
				if (substr(before, length(before)) ~ /[a-z\/:_-]/ || after ~ /^[a-z]/) continue
				if (match(before, /(\(the |\(|, )$/) && after ~ /^\)/) {
					# "X (the default)", "X (…, default)": the word before the parenthesis
					w = before; sub(/ *\([^(]*$/, "", w); sub(/.* /, "", w)
					print NR "\t" norm(w)
				} else if (after ~ /^(:| is) / || (before ~ /(^|\. )$/ && substr($0, p, 1) == "D") || before ~ /[(;,] *$/) {
					sub(/^(:| is)/, "", after)
					print NR "\t" value_at(after, 1)
				} else if (ENVIRON["strict"] != "")
					print NR "\t?" substr($0, p > 20 ? p - 20 : 1, 50)
			}
		}'
}

# same_default A B: A and B state the same default: equal, or one the other
# with more words after it ("10%" and "10% of the host").
same_default() {
	[ "$1" = "$2" ] || [[ $2 == "$1 "* ]] || [[ $1 == "$2 "* ]]
}
