# bash completion for the memshare tools                       -*- shell-script -*-
#
# One file serves every tool: `make install` copies it under each tool's name
# into bash-completion's completions directory (which loads it on the first
# <Tab> after that name), and it registers itself for all of them.  It needs
# nothing from the bash-completion package, so it can also be sourced alone.
#
# mswss: options; --method values from `mswss --list-methods` (or a built-in
# list); -c URIs; domains: the running guests of a libvirt URI (`virsh list
# --name`, with a time limit), pid:N and cgroup paths for cgroup:// URIs.
# msballoon: the subcommand first, then the options of that subcommand (as
# msballoon(1) lists them); --policy values from `msballoon --list-policies`
# (or a built-in list); --scenario *.json files; --tier-control sockets;
# -c URIs; the domain of `set`.
# msrswap: the subcommand first, then the options of that subcommand (as
# msrswap(1) lists them); the verbs of `export` and, for `export rm`, the
# exports of the running provider; the domains of `attach` and `detach`
# (libvirt URIs only: no other driver hot-plugs disks); sockets and files for
# --control, --socket, --tls-psk and --listen unix:; directories for --disk-dir.
# mshash: the subcommand first, then the options of that subcommand (as
# mshash(1) lists them); SOURCE of scan and watch: pid:N, domain:NAME (the
# guests of a libvirt URI) and, for scan, files; *.msh files for stats,
# diff and query; block sizes, --degree modes, -c URIs.
# msgmc: the command first, then the options msgmc(1) gives it.
# msshare: the subcommand first, then the options msshare(1) gives it; the
# domains of create (as for msballoon set), the domains that have a space
# for resize, rm and watch; sizes, --transport values, -c URIs.

_memshare_methods_builtin=(auto refbit sample refault balloon)
_memshare_policies_builtin=(wss greedy static reconf-static smart-alloc tlp bid memnet)
_memshare_uris=(cgroup:/// qemu:///system qemu:///session test:///default xen:///)

# Rebuild the words that bash split at ':' and '=' (COMP_WORDBREAKS), so that
# `-c qemu:///s` and `--method=re` are seen whole.  Sets _ms_words, _ms_cword,
# _ms_cur (the current word up to the cursor) and _ms_rawcur (the part of it
# that bash will replace).  Without COMP_LINE (a test calling the function
# directly) COMP_WORDS is taken as it is.
_memshare_words() {
	_ms_words=() _ms_cword=0 _ms_cur='' _ms_rawcur=''
	local line=${COMP_LINE-} i word rest sep
	if [[ -n $line ]]; then
		line=${line:0:${COMP_POINT:-${#line}}}
		for ((i = 0; i <= COMP_CWORD; i++)); do
			word=${COMP_WORDS[i]-}
			rest=${line#"${line%%[![:blank:]]*}"}
			sep=0
			[[ $i -eq 0 || $rest != "$line" ]] && sep=1
			line=$rest
			if ((i == COMP_CWORD)); then
				word=$line
			elif [[ $line == "$word"* ]]; then
				line=${line:${#word}}
			else
				_ms_words=() # the line does not match the words: give up rebuilding
				break
			fi
			if ((sep || ${#_ms_words[@]} == 0)); then
				_ms_words+=("$word")
			else
				_ms_words[${#_ms_words[@]} - 1]+=$word
			fi
		done
		if ((${#_ms_words[@]})); then
			_ms_cword=$((${#_ms_words[@]} - 1))
			_ms_cur=${_ms_words[_ms_cword]}
			_ms_rawcur=$word
			return 0
		fi
	fi
	_ms_words=("${COMP_WORDS[@]}")
	_ms_cword=${COMP_CWORD:-0}
	_ms_cur=${COMP_WORDS[_ms_cword]-}
	_ms_rawcur=$_ms_cur
	return 0
}

# _memshare_reply CANDIDATE...: the candidates that begin with the current
# word, less what bash will not replace (the part before a ':' or '=' it split at).
_memshare_reply() {
	local c trim=${_ms_cur%"$_ms_rawcur"}
	for c in "$@"; do
		[[ -n $c && $c == "$_ms_cur"* ]] || continue
		c=${c#"$trim"}
		COMPREPLY+=("$(printf '%q' "$c")")
	done
	return 0
}

_memshare_nospace() {
	compopt -o nospace 2>/dev/null || :
	return 0
}

# Run a command with a time limit, quietly, reading nothing.
_memshare_quiet() {
	if type -P timeout >/dev/null; then
		timeout 3 "$@" </dev/null 2>/dev/null
	else
		"$@" </dev/null 2>/dev/null
	fi
}

# _memshare_names OPTION BUILTIN...: the names the tool being completed
# prints for OPTION (--list-methods, --list-policies), else the built-in ones.
_memshare_names() {
	local option=$1 cmd=${_ms_words[0]-} out=
	shift
	if [[ $cmd == */* && -x $cmd ]] || type -P "$cmd" >/dev/null 2>&1; then
		out=$(_memshare_quiet "$cmd" "$option") || out=
	fi
	# Accept only a plain list of names: anything else means an unexpected program.
	if [[ -z $out || $out == *[!a-z0-9_$'\n'-]* ]]; then
		printf '%s\n' "$@"
	else
		printf '%s\n' "$out"
	fi
}

# The estimators of mswss, the policies of msballoon.
_memshare_methods() { _memshare_names --list-methods "${_memshare_methods_builtin[@]}"; }
_memshare_policies() { _memshare_names --list-policies "${_memshare_policies_builtin[@]}"; }

# The connection URI the command line names, else $MEMSHARE_URI, else cgroup:///.
_memshare_uri() {
	local i uri=
	for ((i = 1; i < _ms_cword; i++)); do
		case ${_ms_words[i]} in
		-c | --connect) uri=${_ms_words[i + 1]-} ;;
		--connect=*) uri=${_ms_words[i]#--connect=} ;;
		-c?*) uri=${_ms_words[i]#-c} ;;
		--) break ;;
		esac
	done
	[[ -n $uri ]] || uri=${MEMSHARE_URI-}
	printf '%s\n' "${uri:-cgroup:///}"
}

# Running domains of a libvirt URI.  An ssh URI is told never to prompt.
_memshare_libvirt_domains() {
	local uri=$1
	type -P virsh >/dev/null || return 0
	if [[ $uri == *+ssh://* && $uri != *no_tty=* ]]; then
		[[ $uri == *\?* ]] && uri+='&no_tty=1' || uri+='?no_tty=1'
	fi
	_memshare_quiet virsh -q -c "$uri" list --name
	return 0
}

# Mount point of the memory controller: cgroup v2 with "memory", else v1.
_memshare_cgroup_root() {
	local mnt type rest
	while read -r _ _ _ _ mnt rest; do
		type=${rest#* - }
		type=${type%% *}
		if [[ $type == cgroup2 && -r $mnt/cgroup.controllers ]] &&
			[[ " $(<"$mnt/cgroup.controllers") " == *" memory "* ]]; then
			printf '%s\n' "$mnt"
			return 0
		fi
	done </proc/self/mountinfo 2>/dev/null
	while read -r _ _ _ _ mnt rest; do
		[[ $rest == *" - cgroup "* && ,${rest##* },  == *,memory,* ]] && { printf '%s\n' "$mnt"; return 0; }
	done </proc/self/mountinfo 2>/dev/null
	return 0
}

# Domains of a cgroup:// URI: pid:N, and cgroup paths below the memory root.
_memshare_cgroup_domains() {
	local p root dir
	if [[ $_ms_cur == pid:* ]]; then
		for p in /proc/[0-9]*; do
			printf 'pid:%s\n' "${p#/proc/}"
		done
		return 0
	fi
	printf '%s\n' pid:
	root=$(_memshare_cgroup_root)
	[[ -n $root && ( -z $_ms_cur || $_ms_cur == /* ) ]] || return 0
	for dir in "$root${_ms_cur:-/}"*/; do
		dir=${dir%/}
		[[ -d $dir ]] && printf '%s\n' "${dir#"$root"}"
	done
	return 0
}

# Values of an option that takes one (the option as typed: -m or --method).
_memshare_mswss_values() {
	case $1 in
	-c | --connect) printf '%s\n' "${_memshare_uris[@]}" ;;
	-m | --method) _memshare_methods ;;
	-i | --interval | -w | --window) printf '%s\n' 500ms 1s 2s 5s 10s 30s 1m ;;
	--refault-threshold) printf '%s\n' 0.05% 0.1% 0.5% 1% ;;
	esac
	return 0
}

_memshare_mswss() {
	local opts=(-c --connect --all -m --method -i --interval -w --window -n --count
		--sample-pages --refault-threshold --seed --list-methods -p --pretty
		-v --verbose -q --quiet -h --help --version)
	local takes_value=' -c --connect -m --method -i --interval -w --window -n --count
		--sample-pages --refault-threshold --seed '
	local prev=${_ms_words[_ms_cword - 1]-} i all=0 opts_done=0 line
	local -a values

	for ((i = 1; i < _ms_cword; i++)); do
		case ${_ms_words[i]} in
		--all) all=1 ;;
		--) opts_done=1 ;;
		esac
	done

	# --option=VALUE
	if ((!opts_done)) && [[ $_ms_cur == --*=* ]]; then
		local opt=${_ms_cur%%=*}
		mapfile -t values < <(_memshare_mswss_values "$opt")
		_memshare_reply "${values[@]/#/$opt=}"
		return 0
	fi
	# the value of the option before
	if ((!opts_done)) && [[ $takes_value == *" $prev "* && $_ms_cword -ge 2 ]]; then
		mapfile -t values < <(_memshare_mswss_values "$prev")
		_memshare_reply "${values[@]}"
		return 0
	fi
	if ((!opts_done)) && [[ $_ms_cur == -* ]]; then
		_memshare_reply "${opts[@]}"
		return 0
	fi
	((all)) && return 0
	local uri
	uri=$(_memshare_uri)
	case $uri in
	cgroup://*) mapfile -t values < <(_memshare_cgroup_domains) ;;
	*) mapfile -t values < <(_memshare_libvirt_domains "$uri") ;;
	esac
	_memshare_reply "${values[@]}"
	if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == *: ]]; then
		_memshare_nospace
	fi
	return 0
}

# ---- msballoon ----

# Options that take a value (as a separate word, or after '=').
_memshare_msballoon_takes_value=' -c --connect --policy --headroom -P --step --threshold --remote-cap
	--slo --share-total --tier-total --tier-control --timeout --min --max-step --deadband --host-reserve --host-memory --wait --settle
	--save-every --scenario --model --state --agent --episodes --steps --explore-episodes --seed -o --output --plot '
# one space between words, so that *" $word "* finds each
_memshare_msballoon_takes_value=${_memshare_msballoon_takes_value//[[:space:]]/ }

# The options of a subcommand, as msballoon(1) lists them; all of them before one.
_memshare_msballoon_options() {
	local common=(-p --pretty -v --verbose -q --quiet -h --help --version)
	case $1 in
	set) printf '%s\n' -c --connect --min --wait "${common[@]}" ;;
	plan)
		printf '%s\n' -c --connect --policy --apply --once --headroom -P --step --threshold \
			--remote-cap --slo --share-total --tier-total --tier-control --timeout --min --max-step --deadband \
			--host-reserve --host-memory --wait --settle --strict --model --hal --learn --save-every "${common[@]}"
		;;
	apply) printf '%s\n' -c --connect --min --wait --settle --strict "${common[@]}" ;;
	sim)
		printf '%s\n' --policy --headroom -P --step --threshold --remote-cap --min --scenario \
			--table --plot --model "${common[@]}"
		;;
	train)
		printf '%s\n' --scenario --agent --state --episodes --steps --explore-episodes --seed -o --output --min \
			--plot "${common[@]}"
		;;
	*)
		printf '%s\n' -c --connect --policy --apply --once --headroom -P --step --threshold \
			--remote-cap --slo --share-total --tier-total --tier-control --timeout --min --max-step --deadband \
			--host-reserve --host-memory --wait --settle --strict --scenario --table --plot --model --hal --learn --save-every --state --agent --episodes --steps \
			--explore-episodes --seed -o --output --list-policies "${common[@]}"
		;;
	esac
}

# Paths beginning with $1: directories (to descend into) and files: with $2
# "dirs", none; with a pattern ("*.json"), those it matches; else files of
# any kind (sockets included).
_memshare_paths() {
	local f
	while IFS= read -r f; do
		if [[ -d $f ]]; then
			printf '%s/\n' "$f"
		elif [[ -z ${2-} ]] || [[ $2 != dirs && $f == $2 ]]; then
			printf '%s\n' "$f"
		fi
	done < <(compgen -f -- "$1")
	return 0
}

# Values of an option that takes one (the option as typed; then the value
# typed so far).
_memshare_msballoon_values() {
	case $1 in
	-c | --connect) printf '%s\n' "${_memshare_uris[@]}" ;;
	--policy) _memshare_policies ;;
	--scenario) _memshare_paths "$2" '*.json' ;;
	--model | -o | --output) _memshare_paths "$2" ;;
	--plot) _memshare_paths "$2" '*.svg' ;;
	--agent) printf '%s\n' ddpg dql ql static ;;
	--state) printf '%s\n' cavmem carlemm ;;
	--save-every) printf '%s\n' 10s 1m 5m ;;
	--episodes) printf '%s\n' 200 1000 2000 ;;
	--steps) printf '%s\n' 100 ;;
	--explore-episodes) printf '%s\n' 180 200 ;;
	--tier-control) _memshare_paths "$2" ;;
	--timeout) printf '%s\n' 2s 10s 30s ;;
	--headroom) printf '%s\n' 0% 5% 10% 25% 50% ;;
	--slo) printf '%s\n' 0.1% 1% 5% ;;
	-P | --step) printf '%s\n' 0.5% 0.75% 1% 2% 4% 6% ;;
	--host-reserve) printf '%s\n' 5% 10% 20% ;;
	--wait) printf '%s\n' 0 1s 5s 10s 30s ;;
	--settle) printf '%s\n' 100ms 500ms 1s 2s ;;
	esac
	return 0
}

# The domains `msballoon set` can change: those of mswss but single processes.
_memshare_settable_domains() {
	local uri
	uri=$(_memshare_uri)
	case $uri in
	cgroup://*) [[ $_ms_cur == pid:* ]] || _memshare_cgroup_domains | grep -v '^pid:' ;;
	*) _memshare_libvirt_domains "$uri" ;;
	esac
	return 0
}

_memshare_msballoon() {
	local prev=${_ms_words[_ms_cword - 1]-} i word sub='' operands=0 opts_done=0
	local -a values

	# The subcommand is the first word that is neither an option nor an option's value.
	for ((i = 1; i < _ms_cword; i++)); do
		word=${_ms_words[i]}
		if ((opts_done)) || [[ $word != -?* ]]; then
			if [[ -z $sub ]]; then sub=$word; else operands=$((operands + 1)); fi
		elif [[ $word == -- ]]; then
			opts_done=1
		elif [[ $_memshare_msballoon_takes_value == *" $word "* ||
			$word =~ ^-[pvqh]*[cPo]$ ]]; then
			i=$((i + 1)) # its value is the next word
		fi
	done

	if ((!opts_done)) && [[ $_ms_cur == --*=* ]]; then
		local opt=${_ms_cur%%=*}
		mapfile -t values < <(_memshare_msballoon_values "$opt" "${_ms_cur#*=}")
		_memshare_reply "${values[@]/#/$opt=}"
	elif ((!opts_done)) && [[ $_ms_cword -ge 2 && ( $_memshare_msballoon_takes_value == *" $prev "* ||
		$prev =~ ^-[pvqh]*([cPo])$ ) ]]; then
		# -pc URI: the value of the last letter's option
		[[ $prev =~ ^-[pvqh]+([cPo])$ ]] && prev=-${BASH_REMATCH[1]}
		mapfile -t values < <(_memshare_msballoon_values "$prev" "$_ms_cur")
		_memshare_reply "${values[@]}"
	elif ((!opts_done)) && [[ $_ms_cur == -* ]]; then
		mapfile -t values < <(_memshare_msballoon_options "$sub")
		_memshare_reply "${values[@]}"
	elif [[ -z $sub ]]; then
		_memshare_reply set plan apply sim train
	elif [[ $sub == set ]] && ((operands == 0)); then
		mapfile -t values < <(_memshare_settable_domains)
		_memshare_reply "${values[@]}"
	fi
	if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == */ ]]; then
		_memshare_nospace
	fi
	return 0
}

# ---- msrswap ----

# Options that take a value (as a separate word, or after '=').
_memshare_msrswap_takes_value=' -c --connect --listen --capacity --export --latency --control --stats --metrics
	--tls-psk --busy-poll --max-connections --ram --disk-dir --fuse --size --target --remote --socket --priority --timeout '
_memshare_msrswap_takes_value=${_memshare_msrswap_takes_value//[[:space:]]/ }

# The options of a subcommand, as msrswap(1) lists them; all of them before one.
_memshare_msrswap_options() {
	local common=(-p --pretty -v --verbose -q --quiet -h --help --version)
	case $1 in
	serve)
		printf '%s\n' --listen --capacity --export --latency --dedup --mlock --overcommit --control --stats \
			--metrics --tls-psk --busy-poll --max-connections --fabric "${common[@]}"
		;;
	export | status) printf '%s\n' --control --timeout "${common[@]}" ;;
	client) printf '%s\n' --listen --ram --disk-dir --fuse --control --stats --metrics "${common[@]}" ;;
	attach)
		printf '%s\n' -c --connect --size --target --remote --mkswap --socket --host --priority \
			--control --timeout "${common[@]}"
		;;
	detach) printf '%s\n' -c --connect --host --control --timeout "${common[@]}" ;;
	*)
		printf '%s\n' -c --connect --listen --capacity --export --latency --dedup --mlock --overcommit --control \
			--stats --metrics --tls-psk --busy-poll --max-connections --fabric --ram --disk-dir --fuse --size --target --remote --mkswap --socket \
			--host --priority --timeout "${common[@]}"
		;;
	esac
}

# The --control the command line gives, if any.
_memshare_msrswap_control() {
	local i
	for ((i = 1; i < _ms_cword; i++)); do
		case ${_ms_words[i]} in
		--control) printf '%s\n' "${_ms_words[i + 1]-}" ;;
		--control=*) printf '%s\n' "${_ms_words[i]#--control=}" ;;
		--) break ;;
		esac
	done | tail -n 1
	return 0
}

# The exports of the running provider, from `msrswap export list`.
_memshare_msrswap_exports() {
	local cmd=${_ms_words[0]-} control
	[[ $cmd == */* && -x $cmd ]] || type -P "$cmd" >/dev/null 2>&1 || return 0
	control=$(_memshare_msrswap_control)
	_memshare_quiet "$cmd" export list ${control:+--control "$control"} |
		sed -n 's/^{"kind":"export_stats",.*"export":"\([^"\\]*\)".*/\1/p'
	return 0
}

# Values of an option that takes one (the option as typed, the value typed
# so far, the subcommand).
_memshare_msrswap_values() {
	case $1 in
	-c | --connect) printf '%s\n' "${_memshare_uris[@]}" ;;
	--listen)
		if [[ $2 == unix:* ]]; then
			_memshare_paths "${2#unix:}" | sed 's/^/unix:/'
		elif [[ $3 == client ]]; then
			printf '%s\n' unix:
		else
			printf '%s\n' 127.0.0.1:10809 :10809 unix:
		fi
		;;
	--control | --socket | --tls-psk) _memshare_paths "$2" ;;
	--disk-dir | --fuse) _memshare_paths "$2" dirs ;;
	--priority) printf '%s\n' 32767 100 10 ;;
	--capacity | --ram) printf '%s\n' 10% 25% 50% ;;
	--target) printf '%s\n' 25% 50% 100% ;;
	--latency) printf '%s\n' 10us 50us 100us 1ms ;;
	--busy-poll) printf '%s\n' 10us 20us 50us ;;
	--timeout) printf '%s\n' 2s 10s 30s ;;
	--max-connections) printf '%s\n' 64 256 1024 ;;
	--stats) printf '%s\n' 1s 5s 10s 30s ;;
	--metrics) printf '%s\n' 127.0.0.1:9310 :9310 ;;
	--remote) printf '%s\n' nbd:// nbd+unix:/// fabric:// fabric+unix:/// ;;
	esac
	return 0
}

# Running domains of the connection, for attach and detach: only a libvirt
# URI can hot-plug a disk.
_memshare_attachable_domains() {
	local uri
	uri=$(_memshare_uri)
	case $uri in
	cgroup://* | xen://*) ;;
	*) _memshare_libvirt_domains "$uri" ;;
	esac
	return 0
}

_memshare_msrswap() {
	local prev=${_ms_words[_ms_cword - 1]-} i word sub='' opts_done=0
	local -a values operands=()

	# The subcommand is the first word that is neither an option nor an option's value.
	for ((i = 1; i < _ms_cword; i++)); do
		word=${_ms_words[i]}
		if ((opts_done)) || [[ $word != -?* ]]; then
			if [[ -z $sub ]]; then sub=$word; else operands+=("$word"); fi
		elif [[ $word == -- ]]; then
			opts_done=1
		elif [[ $_memshare_msrswap_takes_value == *" $word "* || $word =~ ^-[pvqh]*c$ ]]; then
			i=$((i + 1)) # its value is the next word
		fi
	done

	if ((!opts_done)) && [[ $_ms_cur == --*=* ]]; then
		local opt=${_ms_cur%%=*}
		mapfile -t values < <(_memshare_msrswap_values "$opt" "${_ms_cur#*=}" "$sub")
		_memshare_reply "${values[@]/#/$opt=}"
	elif ((!opts_done)) && [[ $_ms_cword -ge 2 && ( $_memshare_msrswap_takes_value == *" $prev "* ||
		$prev =~ ^-[pvqh]*c$ ) ]]; then
		[[ $prev =~ ^-[pvqh]+c$ ]] && prev=-c
		mapfile -t values < <(_memshare_msrswap_values "$prev" "$_ms_cur" "$sub")
		_memshare_reply "${values[@]}"
	elif ((!opts_done)) && [[ $_ms_cur == -* ]]; then
		mapfile -t values < <(_memshare_msrswap_options "$sub")
		_memshare_reply "${values[@]}"
	elif [[ -z $sub ]]; then
		_memshare_reply serve export status client attach detach
	elif [[ $sub == export ]] && ((${#operands[@]} == 0)); then
		_memshare_reply add rm list
	elif [[ $sub == export && ${operands[0]} == rm ]] && ((${#operands[@]} == 1)); then
		mapfile -t values < <(_memshare_msrswap_exports)
		_memshare_reply "${values[@]}"
	elif [[ $sub == attach || $sub == detach ]] && ((${#operands[@]} == 0)); then
		mapfile -t values < <(_memshare_attachable_domains)
		_memshare_reply "${values[@]}"
	fi
	# a directory, unix: or an NBD URI's beginning: the word goes on
	if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == */ || ${COMPREPLY[0]} == *: ]]; then
		_memshare_nospace
	fi
	return 0
}

# ---- mshash ----

_memshare_mshash_takes_value=' -c --connect -o --output -b --block-size -j --threads --partition --copies
	--where --shared --degree -i --interval --max-overhead -n --count '
_memshare_mshash_takes_value=${_memshare_mshash_takes_value//[[:space:]]/ }

# The options of a subcommand, as mshash(1) lists them; all of them before one.
_memshare_mshash_options() {
	local common=(-p --pretty -v --verbose -q --quiet -h --help --version)
	case $1 in
	scan) printf '%s\n' -c --connect -o --output -b --block-size -j --threads --partition --freeze "${common[@]}" ;;
	stats) printf '%s\n' --partition "${common[@]}" ;;
	diff) printf '%s\n' "${common[@]}" ;;
	query) printf '%s\n' --copies --where --shared --degree "${common[@]}" ;;
	watch)
		printf '%s\n' -c --connect -o --output -b --block-size -j --threads --freeze -i --interval \
			--max-overhead -n --count --full "${common[@]}"
		;;
	*)
		printf '%s\n' -c --connect -o --output -b --block-size -j --threads --partition --freeze --copies \
			--where --shared --degree -i --interval --max-overhead -n --count --full "${common[@]}"
		;;
	esac
}

# A SOURCE: pid:N, domain:NAME (the running guests of a libvirt URI), files.
_memshare_mshash_sources() {
	local p uri name
	if [[ $_ms_cur == pid:* ]]; then
		for p in /proc/[0-9]*; do
			printf 'pid:%s\n' "${p#/proc/}"
		done
	elif [[ $_ms_cur == domain:* ]]; then
		uri=$(_memshare_uri)
		case $uri in
		cgroup://* | xen://*) ;;
		*) while IFS= read -r name; do [[ -n $name ]] && printf 'domain:%s\n' "$name"; done < <(_memshare_libvirt_domains "$uri") ;;
		esac
	else
		printf '%s\n' pid: domain:
		[[ $1 == live ]] || _memshare_paths "$_ms_cur"
	fi
	return 0
}

_memshare_mshash_values() {
	case $1 in
	-c | --connect) printf '%s\n' "${_memshare_uris[@]}" ;;
	-o | --output) _memshare_paths "$2" ;;
	-b | --block-size) printf '%s\n' 4096 2048 1024 512 256 128 ;;
	-j | --threads) printf '%s\n' 1 2 4 8 ;;
	--degree) printf '%s\n' intra inter both ;;
	-i | --interval) printf '%s\n' 500ms 1s 2s 5s 10s ;;
	--max-overhead) printf '%s\n' 1% 5% 10% ;;
	esac
	return 0
}

# For tools with subcommands (mshash, msshare): _memshare_subcommand_words
# TAKES_VALUE SHORT sets _ms_sub (the first word that is neither an option nor
# an option's value), _ms_operands (the words after it) and _ms_opts_done
# (a "--" was seen); TAKES_VALUE lists the options whose value is the next
# word, SHORT matches a bundle of short flags ending in such an option
# ("-[pvqh]*[cobjin]").
_memshare_subcommand_words() {
	local i word
	_ms_sub='' _ms_operands=() _ms_opts_done=0
	for ((i = 1; i < _ms_cword; i++)); do
		word=${_ms_words[i]}
		if ((_ms_opts_done)) || [[ $word != -?* ]]; then
			if [[ -z $_ms_sub ]]; then _ms_sub=$word; else _ms_operands+=("$word"); fi
		elif [[ $word == -- ]]; then
			_ms_opts_done=1
		elif [[ $1 == *" $word "* || $word =~ ^$2$ ]]; then
			i=$((i + 1)) # its value is the next word
		fi
	done
}

# _memshare_reply_option TOOL TAKES_VALUE SHORT: after _memshare_subcommand_words,
# the value of an option being typed (--opt=VALUE, or the word after it) from
# _memshare_TOOL_values, or the options of the subcommand from
# _memshare_TOOL_options.  False when the word is neither (an operand).
_memshare_reply_option() {
	# SHORT is -FLAGS*VALUED: "-pc" stands for "-c"
	local prev=${_ms_words[_ms_cword - 1]-} flags=${3#-} valued=${3#-\[*\]\*}
	flags=${flags%%\**}
	local -a values
	((_ms_opts_done)) && return 1
	if [[ $_ms_cur == --*=* ]]; then
		local opt=${_ms_cur%%=*}
		mapfile -t values < <("_memshare_$1_values" "$opt" "${_ms_cur#*=}")
		_memshare_reply "${values[@]/#/$opt=}"
	elif [[ $_ms_cword -ge 2 && ( $2 == *" $prev "* || $prev =~ ^$3$ ) ]]; then
		[[ $prev =~ ^-$flags+($valued)$ ]] && prev=-${BASH_REMATCH[1]}
		mapfile -t values < <("_memshare_$1_values" "$prev" "$_ms_cur")
		_memshare_reply "${values[@]}"
	elif [[ $_ms_cur == -* ]]; then
		mapfile -t values < <("_memshare_$1_options" "$_ms_sub")
		_memshare_reply "${values[@]}"
	else
		return 1
	fi
	return 0
}

_memshare_mshash() {
	local sub
	local -a operands values
	_memshare_subcommand_words "$_memshare_mshash_takes_value" '-[pvqh]*[cobjin]'
	sub=$_ms_sub operands=("${_ms_operands[@]}")
	if _memshare_reply_option mshash "$_memshare_mshash_takes_value" '-[pvqh]*[cobjin]'; then
		:
	elif [[ -z $sub ]]; then
		_memshare_reply scan stats diff query watch
	elif [[ $sub == scan || $sub == watch ]] && ((${#operands[@]} == 0)); then
		mapfile -t values < <(_memshare_mshash_sources "$([[ $sub == watch ]] && echo live)")
		_memshare_reply "${values[@]}"
	elif [[ $sub == stats || $sub == query ]] || { [[ $sub == diff ]] && ((${#operands[@]} < 2)); }; then
		mapfile -t values < <(_memshare_paths "$_ms_cur" '*.msh')
		_memshare_reply "${values[@]}"
	fi
	# a directory, pid: or domain: — the word goes on
	if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == */ || ${COMPREPLY[0]} == *: ]]; then
		_memshare_nospace
	fi
	return 0
}

# ---- msshare ----

_memshare_msshare_takes_value=' -c --connect -s --size --tag --dir --transport --accessmode -i --interval -n --count '

# The options of a subcommand, as msshare(1) lists them; all of them before one.
_memshare_msshare_options() {
	local common=(-c --connect -p --pretty -v --verbose -q --quiet -h --help --version)
	case $1 in
	create) printf '%s\n' -s --size --tag --dir --transport --accessmode "${common[@]}" ;;
	resize | list) printf '%s\n' "${common[@]}" ;;
	rm) printf '%s\n' -f --force "${common[@]}" ;;
	watch) printf '%s\n' --all -i --interval -n --count "${common[@]}" ;;
	*) printf '%s\n' -s --size --tag --dir --transport --accessmode -f --force --all -i --interval -n --count "${common[@]}" ;;
	esac
}

_memshare_msshare_values() {
	case $1 in
	-c | --connect) printf '%s\n' "${_memshare_uris[@]}" ;;
	-s | --size) printf '%s\n' 64M 256M 1G ;;
	--dir) _memshare_paths "$2" ;;
	--transport) printf '%s\n' virtiofs 9p ;;
	--accessmode) printf '%s\n' passthrough mapped squash ;;
	-i | --interval) printf '%s\n' 500ms 1s 2s 5s 10s ;;
	esac
	return 0
}

# The domains that have a space (under $MEMSHARE_SHARE_DIR), for resize, rm and watch.
_memshare_msshare_spaces() {
	local root=${MEMSHARE_SHARE_DIR:-/run/memshare/share} uri mnt rest
	uri=$(_memshare_uri)
	while read -r _ _ _ _ mnt rest; do
		[[ $mnt == "$root"/* && $rest == *" - tmpfs "* ]] || continue
		mnt=${mnt#"$root"}
		[[ $uri == cgroup://* ]] && printf '%s\n' "$mnt" || printf '%s\n' "${mnt#/}"
	done </proc/self/mountinfo 2>/dev/null
	return 0
}

_memshare_msshare() {
	local sub
	local -a operands values
	_memshare_subcommand_words "$_memshare_msshare_takes_value" '-[pvqhf]*[csin]'
	sub=$_ms_sub operands=("${_ms_operands[@]}")
	if _memshare_reply_option msshare "$_memshare_msshare_takes_value" '-[pvqhf]*[csin]'; then
		:
	elif [[ -z $sub ]]; then
		_memshare_reply create resize rm list watch
	elif [[ $sub == create ]] && ((${#operands[@]} == 0)); then
		mapfile -t values < <(_memshare_settable_domains)
		_memshare_reply "${values[@]}"
	elif [[ $sub == watch ]] || { [[ $sub == resize || $sub == rm ]] && ((${#operands[@]} == 0)); }; then
		mapfile -t values < <(_memshare_msshare_spaces)
		_memshare_reply "${values[@]}"
	elif [[ $sub == resize ]] && ((${#operands[@]} == 1)); then
		_memshare_reply 64M 256M 1G
	fi
	if ((${#COMPREPLY[@]} == 1)) && [[ ${COMPREPLY[0]} == */ ]]; then
		_memshare_nospace
	fi
	return 0
}

# ---- msgmc ----

_memshare_msgmc_takes_value=' --listen --state --advertise --metrics --policy --reserve --vm-cap --node-timeout --tls-psk --tls-username --gmc --node
	--domain --rswap-control --rswap --client-control --location --address --interval --timeout --attach-size
	-c --connect '
_memshare_msgmc_takes_value=${_memshare_msgmc_takes_value//[[:space:]]/ }

# The options of a command, as msgmc(1) lists them; all of them before one.
_memshare_msgmc_options() {
	local common=(-p --pretty -v --verbose -q --quiet -h --help --version)
	case $1 in
	serve) printf '%s\n' --listen --state --advertise --metrics --policy --reserve --vm-cap --node-timeout --tls-psk "${common[@]}" ;;
	agent)
		printf '%s\n' --gmc --node --rswap-control --rswap --client-control --location --address --domain \
			--interval --invalidate --fabric --attach-size -c --connect --tls-psk --tls-username --metrics "${common[@]}"
		;;
	status | nodes | leases | release) printf '%s\n' --gmc --timeout --tls-psk --tls-username "${common[@]}" ;;
	alloc) printf '%s\n' --gmc --node --domain --timeout --tls-psk --tls-username "${common[@]}" ;;
	reclaim | leave) printf '%s\n' --gmc --node --timeout --tls-psk --tls-username "${common[@]}" ;;
	*)
		printf '%s\n' --listen --state --advertise --metrics --policy --reserve --vm-cap --node-timeout --tls-psk --tls-username --gmc --node \
			--rswap-control --rswap --client-control --location --address --domain --interval --invalidate --fabric --attach-size \
			--timeout "${common[@]}"
		;;
	esac
}

# The value the command line gives option $1, if any, else $2.
_memshare_msgmc_option() {
	local i
	for ((i = 1; i < _ms_cword; i++)); do
		case ${_ms_words[i]} in
		"$1") printf '%s\n' "${_ms_words[i + 1]-}"; return 0 ;;
		"$1"=*) printf '%s\n' "${_ms_words[i]#"$1"=}"; return 0 ;;
		esac
	done
	printf '%s\n' "$2"
}

# Names from the running controller: nodes or leases (quietly nothing when it is not running).
_memshare_msgmc_names() {
	command -v jq >/dev/null || return 0
	local keys
	keys=$(_memshare_msgmc_option --tls-psk "${MSGMC_TLS_PSK-}")
	"${_ms_words[0]}" --gmc "$(_memshare_msgmc_option --gmc "${MSGMC_GMC:-127.0.0.1:10810}")" ${keys:+--tls-psk "$keys"} \
		--timeout 2s "$1" 2>/dev/null | jq -r "select(.kind == \"${1%s}\") | .${1%s}" 2>/dev/null
	return 0
}

_memshare_msgmc_values() {
	case $1 in
	--listen | --gmc)
		if [[ $2 == unix:* ]]; then
			_memshare_paths "${2#unix:}" | sed 's/^/unix:/'
		else
			printf '%s\n' 127.0.0.1:10810 '[::1]:10810' 0.0.0.0:10810 unix:
		fi
		;;
	--state | --tls-psk | --rswap-control | --client-control) _memshare_paths "$2" ;;
	--rswap) _memshare_paths "${2#unix:}" | sed 's/^/unix:/' ;;
	--policy) printf '%s\n' slm local-first ;;
	--reserve | --vm-cap | --attach-size) printf '%s\n' 256M 1G 4G ;;
	-c | --connect) printf '%s\n' cgroup:/// qemu:///system ;;
	--node-timeout) printf '%s\n' 30s 60s 5m ;;
	--interval) printf '%s\n' 1s 5s 10s ;;
	--timeout) printf '%s\n' 10s 60s ;;
	--node) [[ $3 == agent ]] && hostname || _memshare_msgmc_names nodes ;;
	--address) printf '%s\n' 127.0.0.1:10809 ;;
	esac
	return 0
}

_memshare_msgmc() {
	local prev=${_ms_words[_ms_cword - 1]-} i word sub='' opts_done=0
	local -a values operands=()
	for ((i = 1; i < _ms_cword; i++)); do
		word=${_ms_words[i]}
		if ((opts_done)) || [[ $word != -?* ]]; then
			if [[ -z $sub ]]; then sub=$word; else operands+=("$word"); fi
		elif [[ $word == -- ]]; then
			opts_done=1
		elif [[ $_memshare_msgmc_takes_value == *" $word "* ]]; then
			i=$((i + 1))
		fi
	done
	if ((!opts_done)) && [[ $_ms_cur == --*=* ]]; then
		local opt=${_ms_cur%%=*}
		mapfile -t values < <(_memshare_msgmc_values "$opt" "${_ms_cur#*=}" "$sub")
		_memshare_reply "${values[@]/#/$opt=}"
	elif ((!opts_done)) && [[ $_ms_cword -ge 2 && $_memshare_msgmc_takes_value == *" $prev "* ]]; then
		mapfile -t values < <(_memshare_msgmc_values "$prev" "$_ms_cur" "$sub")
		_memshare_reply "${values[@]}"
	elif ((!opts_done)) && [[ $_ms_cur == -* ]]; then
		mapfile -t values < <(_memshare_msgmc_options "$sub")
		_memshare_reply "${values[@]}"
	elif [[ -z $sub ]]; then
		_memshare_reply serve agent status nodes leases alloc release reclaim leave
	elif [[ $sub == release ]] && ((${#operands[@]} == 0)); then
		mapfile -t values < <(_memshare_msgmc_names leases)
		_memshare_reply "${values[@]}"
	elif [[ $sub == alloc || $sub == reclaim ]] && ((${#operands[@]} == 0)); then
		_memshare_reply 64M 256M 1G
	fi
	return 0
}

# ---- msprom ----

_memshare_msprom() {
	local prev=${_ms_words[_ms_cword - 1]-}
	local -a values
	case $prev in
	-o | --output)
		mapfile -t values < <(_memshare_paths "$_ms_cur" '*.prom')
		_memshare_reply "${values[@]}"
		return 0
		;;
	--settle) _memshare_reply 200ms 500ms 1s 2s; return 0 ;;
	esac
	[[ $_ms_cur == -* ]] && _memshare_reply -o --output --tee --settle --strict --list-metrics -v --verbose \
		-q --quiet -h --help --version
	return 0
}

# Any other name the completion is registered for: the shared options only.
_memshare_common() {
	[[ $_ms_cur == -* ]] && _memshare_reply -h --help --version
	return 0
}

_memshare() {
	COMPREPLY=()
	_memshare_words
	case ${_ms_words[0]##*/} in
	mswss) _memshare_mswss ;;
	msballoon) _memshare_msballoon ;;
	msrswap) _memshare_msrswap ;;
	mshash) _memshare_mshash ;;
	msgmc) _memshare_msgmc ;;
	msprom) _memshare_msprom ;;
	msshare) _memshare_msshare ;;
	*) _memshare_common ;;
	esac
	return 0
}

complete -F _memshare mswss msballoon msrswap mshash msgmc msprom msshare
