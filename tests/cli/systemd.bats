#!/usr/bin/env bats
# The systemd units `make install` installs (systemd/): systemd-analyze
# verify finds nothing to say about them, install + uninstall leaves a
# DESTDIR without a file, and ExecStart lines, expanded from their
# EnvironmentFile as systemd does, start daemons that work together (this
# machine has no systemd as PID 1 to start the units themselves).
bats_require_minimum_version 1.5.0
load helpers

MSGMC=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msgmc

setup() {
	ROOT=${MEMSHARE_ROOT:-$PWD}
	[ -f "$ROOT/Makefile" ] && [ -d "$ROOT/systemd" ] || skip "not run from a memshare checkout"
	T=$BATS_TEST_TMPDIR
	PIDS=""
}

teardown() {
	local p
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	rm -f "${INSTANCE_CTL:-/nonexistent}"
	true
}

# install_to DIR MAKE-ARGS...: make install into DIR (the worktree's tools are built already)
install_to() {
	local d=$1
	shift
	make -C "$ROOT" --no-print-directory -s BUILD="$T/build" "$@" install > "$T/install.log" 2>&1 || { cat "$T/install.log"; return 1; }
}

@test "systemd: make install puts every unit and its settings file in place; make uninstall takes every file away" {
	D=$T/dest
	install_to "$D" DESTDIR="$D" PREFIX=/usr/local
	local u
	for u in msrswap-serve@ msrswap-client msgmc-serve msgmc-agent; do
		[ -f "$D/usr/local/lib/systemd/system/$u.service" ]
	done
	! grep -l '@BINDIR@\|@SYSCONFDIR@' "$D"/usr/local/lib/systemd/system/*.service
	grep -q '^ExecStart=/usr/local/bin/msgmc agent ' "$D/usr/local/lib/systemd/system/msgmc-agent.service"
	grep -q '^EnvironmentFile=-/etc/memshare/msgmc-agent.conf$' "$D/usr/local/lib/systemd/system/msgmc-agent.service"
	for u in msrswap-serve msrswap-client msgmc-serve msgmc-agent; do [ -f "$D/etc/memshare/$u.conf" ]; done
	[ -x "$D/usr/local/bin/msrswap" ]
	make -C "$ROOT" --no-print-directory -s BUILD="$T/build" DESTDIR="$D" PREFIX=/usr/local uninstall
	run find "$D" -type f
	[ -z "$output" ] || { echo "left behind: $output"; false; }
	[ ! -e "$D/etc/memshare" ]
}

@test "systemd: make install keeps an operator's settings, make uninstall too; the unit directory can be pkg-config's" {
	D=$T/dest
	mkdir -p "$D/etc/memshare"
	echo 'MSGMC_GMC=10.0.0.1:10810' > "$D/etc/memshare/msgmc-agent.conf"
	install_to "$D" DESTDIR="$D" PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system
	[ "$(cat "$D/etc/memshare/msgmc-agent.conf")" = 'MSGMC_GMC=10.0.0.1:10810' ]
	[ -f "$D/lib/systemd/system/msgmc-serve.service" ]
	make -C "$ROOT" --no-print-directory -s BUILD="$T/build" DESTDIR="$D" PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system uninstall
	run find "$D" -type f
	[ "$output" = "$D/etc/memshare/msgmc-agent.conf" ]
}

@test "systemd: systemd-analyze verify passes on every unit" {
	command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"
	D=$T/root
	# installed under D itself, so that their programs and man pages are where the units say
	install_to "$D" PREFIX="$D/usr" SYSCONFDIR="$D/etc"
	local units=("$D"/usr/lib/systemd/system/*.service)
	[ "${#units[@]}" -eq 4 ]
	MANPATH=$D/usr/share/man run systemd-analyze verify "${units[@]}"
	echo "$output"
	[ "$status" -eq 0 ]
	# anything it says is a warning, an unknown key or a missing file: none
	[ -z "$output" ]
}

# unit_exec UNIT INSTANCE: the unit's ExecStart as systemd would run it, one
# argument a line after the environment it gets (VAR=VALUE lines, then
# "--"): Environment=, then each EnvironmentFile= (later ones override), %i
# and %H, ${VAR} as one word, $VAR split at white space.
unit_exec() {
	local unit=$1 instance=$2 host line key value w
	host=$(hostname)
	declare -A env=()
	while IFS= read -r line; do
		line=${line//%i/$instance}
		line=${line//%H/$host}
		case $line in
		Environment=*)
			eval "set -- ${line#Environment=}"
			for w; do env[${w%%=*}]=${w#*=}; done ;;
		EnvironmentFile=*)
			local f=${line#EnvironmentFile=}
			[[ $f == -* ]] && { f=${f#-}; [ -f "$f" ] || continue; }
			while IFS= read -r w; do
				[[ $w =~ ^([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
				key=${BASH_REMATCH[1]} value=${BASH_REMATCH[2]}
				[[ $value =~ ^\"(.*)\"$ ]] && value=${BASH_REMATCH[1]}
				env[$key]=$value
			done < "$f" ;;
		ExecStart=*)
			for key in "${!env[@]}"; do echo "$key=${env[$key]}"; done
			echo --
			for w in ${line#ExecStart=}; do
				if [[ $w =~ ^\$\{([A-Za-z_0-9]+)\}$ ]]; then
					echo "${env[${BASH_REMATCH[1]}]-}"
				elif [[ $w =~ ^\$([A-Za-z_0-9]+)$ ]]; then
					for value in ${env[${BASH_REMATCH[1]}]-}; do echo "$value"; done
				else
					echo "$w"
				fi
			done ;;
		esac
	done < "$unit"
}

# start_unit NAME UNIT INSTANCE: run the unit's ExecStart in the background
start_unit() {
	local name=$1 unit=$2 instance=$3 lines=() n
	shift 3
	mapfile -t lines < <(unit_exec "$unit" "$instance")
	for ((n = 0; n < ${#lines[@]}; n++)); do [ "${lines[n]}" = -- ] && break; done
	echo "$name: ${lines[*]:n+1}" >> "$T/exec.log"
	env -i PATH="$PATH" "${lines[@]:0:n}" "${lines[@]:n+1}" < /dev/null > "$T/$name.out" 2> "$T/$name.err" &
	PIDS="$PIDS $!"
}

provider_registered() {
	"$MSGMC" --gmc "$GMC" nodes | jq_true -s --arg n "$1" \
		'map(select(.node == $n and .state == "active" and .connected and .reservoir_bytes == 33554432)) | length == 1'
}

node_active() {
	"$MSGMC" --gmc "$GMC" nodes | jq_true -s --arg n "$1" 'map(select(.node == $n and .state == "active")) | length == 1'
}

@test "systemd: msrswap-serve@ and msgmc-agent, started as their units say with their settings files, serve a lease" {
	[ -x "$MSGMC" ] && [ -x "$MSRSWAP" ] || skip "run make first"
	[ -w /run ] || skip "needs to write /run (the units' control sockets), as root"
	D=$T/root
	install_to "$D" PREFIX="$D/usr" SYSCONFDIR="$D/etc"
	units=$D/usr/lib/systemd/system
	local port instance=bats$$x$BATS_TEST_NUMBER
	port=$(random_port 2)
	GMC=127.0.0.1:$((port + 1))
	INSTANCE_CTL=/run/msrswap-$instance.ctl
	# the installed example settings, with this test's addresses
	printf 'MSRSWAP_LISTEN=127.0.0.1:%s\nMSRSWAP_CAPACITY=32M\n' "$port" > "$D/etc/memshare/msrswap-serve-$instance.conf"
	sed -i "s|^MSGMC_GMC=.*|MSGMC_GMC=$GMC|; s|^#MSGMC_NODE=.*|MSGMC_NODE=$instance|; s|^MSGMC_AGENT_OPTS=.*|MSGMC_AGENT_OPTS=--rswap-control $INSTANCE_CTL --address 127.0.0.1:$port --interval 1s|" \
		"$D/etc/memshare/msgmc-agent.conf"
	"$MSGMC" serve --listen "$GMC" --state "$T/state" 2> "$T/gmc.err" &
	PIDS="$PIDS $!"
	until_true 30 "$MSGMC" --gmc "$GMC" status
	start_unit serve "$units/msrswap-serve@.service" "$instance"
	start_unit agent "$units/msgmc-agent.service" "$instance"
	cat "$T/exec.log"
	grep -qx "serve: $D/usr/bin/msrswap serve --listen 127.0.0.1:$port --capacity 32M --control $INSTANCE_CTL" "$T/exec.log"
	wait_socket "$INSTANCE_CTL"
	until_true 60 provider_registered "$instance" || { cat "$T"/*.err; false; }
	# a consumer (no client daemon: its grants are reported, not attached);
	# the lease it gets is an export of the unit's msrswap serve
	"$MSGMC" agent --gmc "$GMC" --node c1 --interval 1s < /dev/null > "$T/c1.out" 2> "$T/c1.err" &
	PIDS="$PIDS $!"
	until_true 60 node_active c1
	"$MSGMC" --gmc "$GMC" alloc --node c1 --domain d1 8M > "$T/lease.jsonl" || true
	cat "$T/lease.jsonl"
	jq_true --arg n "$instance" '.provider == $n and .size_bytes == 8388608' < "$T/lease.jsonl"
	"$MSRSWAP" export list --control "$INSTANCE_CTL" | jq_true -s 'map(select(.kind == "export_stats" and (.export | startswith("msgmc-")))) | length == 1'
}
