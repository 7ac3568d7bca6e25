#!/usr/bin/env bats
# mshash on files and live processes: exact sharing metrics on images built
# from a pool of blocks with planted duplicates, hash ranges that add up,
# diff and queries, the index format's errors, scans of a running process
# and the tracer.  Lab guests: mshash_lab.bats; documentation: mshash_docs.bats.

bats_require_minimum_version 1.5.0
load helpers

MSHASH=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/mshash
CORPUS=${MEMSHARE_ROOT:-$PWD}/tests/fuzz/corpus

setup() {
	[ -x "$MSHASH" ] || skip "$MSHASH is not built (run make)"
	command -v jq >/dev/null || skip "jq is not installed"
	T=$BATS_TEST_TMPDIR
}

teardown() {
	stop_workloads
	[ -z "${SLEEPER:-}" ] || { kill -CONT "$SLEEPER" 2>/dev/null; kill "$SLEEPER" 2>/dev/null; wait "$SLEEPER" 2>/dev/null; }
	SLEEPER=
	return 0
}

# image FILE BLOCK_SIZE K...: one block per K of the pool (0: zeros; K: the
# 8-character text of K over the whole block).
image() {
	local file=$1 bs=$2
	shift 2
	perl -e 'my $bs = shift; binmode STDOUT; for my $k (@ARGV) { print $k ? sprintf("%08d", $k) x ($bs / 8) : "\0" x $bs }' \
		"$bs" "$@" >"$file"
}

# The planted pool (as in test_mshash.c):
#   A: 1 2 3 1 0 0 4 5 / B: 1 2 6 6 6 0 7 8 / C: 9 9 9 9 2 10 0 1
# per snapshot distinct 6 6 5 (intra 17), over the set 11, zero blocks 4, total 24.
make_pool() {
	image "$T/a.img" "$1" 1 2 3 1 0 0 4 5
	image "$T/b.img" "$1" 1 2 6 6 6 0 7 8
	image "$T/c.img" "$1" 9 9 9 9 2 10 0 1
	for x in a b c; do
		"$MSHASH" scan -b "$1" "$T/$x.img" -o "$T/$x.msh" >/dev/null
	done
}

# set_record FILE...: the scope "set" record of stats
set_record() {
	"$MSHASH" stats "$@" | jq -c 'select(.scope == "set")'
}

@test "mshash: --help, --version, and usage errors are one line with exit status 2" {
	run "$MSHASH" --help
	[ "$status" -eq 0 ]
	[[ $output == *"mshash [OPTION]... scan"* && $output == *"--partition I/N"* ]]
	run "$MSHASH" --version
	[ "$status" -eq 0 ]
	[[ $output =~ ^mshash\ \(memshare\)\ [0-9] ]]
	for args in "" "frob" "scan" "scan x" "scan -b 300 x -o y" "stats" "diff a" "query a.msh" \
		"query --copies 00 a.msh" "query --degree most a.msh" "stats --freeze a.msh" "scan --partition 3/3 x -o y" \
		"watch" "scan -j 0 x -o y" "query --shared 1 --degree both a.msh"; do
		run --separate-stderr "$MSHASH" $args
		[ "$status" -eq 2 ] || { echo "mshash $args: status $status"; return 1; }
		[ -z "$output" ]
		[[ ${stderr_lines[0]} == "mshash: "* ]] || { echo "mshash $args: $stderr"; return 1; }
		[ "${stderr_lines[1]}" = "Try 'mshash --help'." ]
	done
}

@test "mshash stats: exact metrics on planted duplicates, at every block size" {
	for bs in 4096 2048 1024 512 256 128; do
		make_pool "$bs"
		rec=$(set_record "$T/a.msh" "$T/b.msh" "$T/c.msh")
		echo "bs $bs: $rec"
		jq -e --argjson bs "$bs" '.snapshots == 3 and .block_size == $bs and .total_blocks == 24 and .zero_blocks == 4
			and .intra_distinct == 17 and .inter_distinct == 11 and .total_bytes == 24 * $bs
			and .intra_reducible_bytes == 7 * $bs and .inter_reducible_bytes == 13 * $bs
			and (.intra_ratio - 17 / 24 | fabs) < 1e-9 and (.inter_ratio - 11 / 24 | fabs) < 1e-9' <<<"$rec"
		snaps=$("$MSHASH" stats "$T/a.msh" "$T/b.msh" "$T/c.msh" | jq -c 'select(.scope == "snapshot") | [.intra_distinct, .zero_blocks, .total_blocks]' | tr -d '\n')
		[ "$snaps" = "[6,2,8][6,1,8][5,1,8]" ]
	done
}

@test "mshash stats --partition: the N partial counts add up to the whole; partitioned scans too" {
	make_pool 1024
	whole=$(set_record "$T/a.msh" "$T/b.msh" "$T/c.msh" | jq -c '[.total_blocks, .zero_blocks, .intra_distinct, .inter_distinct, .inter_reducible_bytes]')
	[ "$whole" = "[24,4,17,11,13312]" ]
	for n in 1 2 3 7 16; do
		sum=$(for ((i = 0; i < n; i++)); do
			"$MSHASH" stats --partition "$i/$n" "$T/a.msh" "$T/b.msh" "$T/c.msh" | jq -c 'select(.scope == "set")'
		done | jq -sc '[map(.total_blocks), map(.zero_blocks), map(.intra_distinct), map(.inter_distinct), map(.inter_reducible_bytes)] | map(add)')
		[ "$sum" = "$whole" ] || { echo "N=$n: $sum, whole $whole"; return 1; }
	done
	"$MSHASH" stats --partition 1/4 "$T/a.msh" | jq_true 'select(.scope == "set") | .part_index == 1 and .part_count == 4'
	# each machine scans its range only: the indexes of range I hold no positions, and add up as well
	for i in 0 1 2; do
		for x in a b c; do "$MSHASH" scan -b 1024 --partition "$i/3" "$T/$x.img" -o "$T/$x.$i.msh" >/dev/null; done
	done
	sum=$(for i in 0 1 2; do set_record "$T/a.$i.msh" "$T/b.$i.msh" "$T/c.$i.msh"; done |
		jq -sc '[map(.total_blocks), map(.zero_blocks), map(.intra_distinct), map(.inter_distinct), map(.inter_reducible_bytes)] | map(add)')
	[ "$sum" = "$whole" ]
	run "$MSHASH" diff "$T/a.0.msh" "$T/a.msh"
	[ "$status" -eq 2 ]
	[[ $output == *"a.0.msh: has no positions section"* ]]
}

@test "mshash diff: changed, added and removed blocks by position, and the new contents" {
	image "$T/old.img" 4096 1 2 3 1 0 0 4 5
	image "$T/new.img" 4096 1 2 6 6 6 0 4 5 3 11 11
	"$MSHASH" scan "$T/old.img" -o "$T/old.msh" >/dev/null
	"$MSHASH" scan "$T/new.img" -o "$T/new.msh" >/dev/null
	run "$MSHASH" diff "$T/old.msh" "$T/new.msh"
	[ "$status" -eq 0 ]
	echo "$output"
	# positions 2,3,4 changed; 8,9,10 added (3 was in old); new contents: 6 and 11
	jq -e '.kind == "diff" and .unchanged_blocks == 5 and .changed_blocks == 3 and .added_blocks == 3 and .removed_blocks == 0
		and .new_distinct == 2 and .new_distinct_bytes == 8192 and .dirty_bytes == 24576
		and (.dirty_fraction - 6 / 11 | fabs) < 1e-9 and .old_blocks == 8 and .new_blocks == 11' <<<"$output"
	run "$MSHASH" diff "$T/new.msh" "$T/old.msh"
	jq -e '.removed_blocks == 3 and .changed_blocks == 3 and .new_distinct == 0' <<<"$output"
	"$MSHASH" scan -b 512 "$T/old.img" -o "$T/old512.msh" >/dev/null
	run "$MSHASH" diff "$T/old512.msh" "$T/new.msh"
	[ "$status" -eq 2 ]
	[[ $output == *"blocks of 512 bytes"* ]]
}

@test "mshash query: copies, where, shared and degree of sharing" {
	make_pool 4096
	# the hash of content 1, as xxhsum -H2 prints it (or as mshash finds it)
	image "$T/one.img" 4096 1
	if command -v xxhsum >/dev/null; then
		h=$(xxhsum -H2 "$T/one.img" | awk '{print $1}')
	else
		"$MSHASH" scan "$T/one.img" -o "$T/one.msh" >/dev/null
		h=$("$MSHASH" query --shared 1 "$T/one.msh" | jq -r .hash)
	fi
	[[ $h =~ ^[0-9a-f]{32}$ ]]
	run "$MSHASH" query --copies "$h" "$T/a.msh" "$T/b.msh" "$T/c.msh"
	[ "$status" -eq 0 ]
	jq -e --arg h "$h" '.kind == "hash" and .hash == $h and .copies == 4 and .snapshots == 3 and (has("where") | not)' <<<"$output"
	run "$MSHASH" query --where "$h" "$T/a.msh" "$T/b.msh" "$T/c.msh"
	jq -e '[.where[] | [(.index | split("/") | last), .copies]] == [["a.msh", 2], ["b.msh", 1], ["c.msh", 1]]' <<<"$output"
	run "$MSHASH" query --copies 0123456789abcdef0123456789abcdef "$T/a.msh"
	[ "$status" -eq 0 ]
	jq -e '.copies == 0 and .snapshots == 0' <<<"$output"
	# >= 4 copies over the set: content 1 (4), zeros (4), content 9 (4); >= 3: also 6 (3) and 2 (3)
	[ "$("$MSHASH" query --shared 4 "$T/a.msh" "$T/b.msh" "$T/c.msh" | wc -l)" -eq 3 ]
	[ "$("$MSHASH" query --shared 3 "$T/a.msh" "$T/b.msh" "$T/c.msh" | wc -l)" -eq 5 ]
	"$MSHASH" query --shared 4 "$T/a.msh" "$T/b.msh" "$T/c.msh" | jq -se --arg h "$h" 'map(.hash) | index($h) != null'
	# degree of sharing: 1 - distinct / total
	run "$MSHASH" query --degree both "$T/a.msh" "$T/b.msh" "$T/c.msh"
	jq -e '.kind == "degree" and .mode == "both" and (.intra_degree - 7 / 24 | fabs) < 1e-9
		and (.inter_degree - 13 / 24 | fabs) < 1e-9' <<<"$output"
	run "$MSHASH" query --degree intra "$T/a.msh"
	jq -e 'has("intra_degree") and (has("inter_degree") | not)' <<<"$output"
	run "$MSHASH" query --degree inter "$T/a.msh"
	jq -e 'has("inter_degree") and (has("intra_degree") | not)' <<<"$output"
}

@test "mshash scan: the blocks of xxhsum -H2, a partial last block padded with zeros, threads agree" {
	command -v xxhsum >/dev/null || skip "xxhsum (package xxhash) is not installed"
	head -c 1048576 /dev/urandom >"$T/r.img"
	cat "$T/r.img" "$T/r.img" >"$T/rr.img"
	"$MSHASH" scan -b 2048 -j 1 "$T/rr.img" -o "$T/rr1.msh" >/dev/null
	"$MSHASH" scan -b 2048 -j 4 "$T/rr.img" -o "$T/rr4.msh" >/dev/null
	cmp <(tail -c +200 "$T/rr1.msh") <(tail -c +200 "$T/rr4.msh")
	rec=$(set_record "$T/rr4.msh")
	jq -e '.total_blocks == 1024 and .inter_distinct == 512 and .zero_blocks == 0' <<<"$rec"
	# the hash of block 7 is what xxhsum -H2 says of those bytes
	h=$(dd if="$T/r.img" bs=2048 skip=7 count=1 status=none | xxhsum -H2 | awk '{print $1}')
	"$MSHASH" query --copies "$h" "$T/rr4.msh" | jq_true '.copies == 2'
	# 5000 bytes at 4096: a second block of 904 bytes and zeros
	head -c 5000 "$T/r.img" >"$T/odd.img"
	"$MSHASH" scan "$T/odd.img" -o "$T/odd.msh" | jq_true '.blocks == 2 and .scanned_bytes == 5000'
	{ tail -c +4097 "$T/odd.img"; head -c 3192 /dev/zero; } >"$T/tail.blk"
	h=$(xxhsum -H2 "$T/tail.blk" | awk '{print $1}')
	"$MSHASH" query --copies "$h" "$T/odd.msh" | jq_true '.copies == 1'
}

@test "mshash scan of an ELF core: PT_LOAD segments at their addresses, p_memsz beyond p_filesz as zeros" {
	run "$MSHASH" scan -b 1024 "$CORPUS/msh_elf/core64.elf" -o "$T/core.msh"
	[ "$status" -eq 0 ]
	# two segments: 0x0 (2 KiB in the file of 4 KiB) and 0x100000 (1 KiB); 1 KiB of pattern, then zeros
	jq -e '.source == "elf:'"$CORPUS"'/msh_elf/core64.elf" and .blocks == 5 and .zero_blocks == 3 and .distinct == 2' <<<"$output"
	"$MSHASH" scan -b 1024 "$CORPUS/msh_elf/core64x.elf" -o "$T/x.msh" | jq_true '.blocks == 2'
	"$MSHASH" scan -b 1024 "$CORPUS/msh_elf/core32.elf" -o "$T/32.msh" | jq_true '.blocks == 1 and .distinct == 1'
	# a core cut short: an input error naming the file and the offset of the segment's header
	head -c 1500 "$CORPUS/msh_elf/core64.elf" >"$T/cut.elf"
	run "$MSHASH" scan "$T/cut.elf" -o "$T/cut.msh"
	[ "$status" -eq 2 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ $output == "mshash: $T/cut.elf: offset 120: PT_LOAD segment 1: its bytes run past the end of the file" ]]
	[ ! -e "$T/cut.msh" ]
}

@test "mshash: corrupt, truncated or foreign indexes are one-line input errors naming the file and offset" {
	make_pool 4096
	size=$(stat -c %s "$T/a.msh")
	for cut in 0 7 100 200 $((size - 1)); do
		head -c "$cut" "$T/a.msh" >"$T/cut.msh"
		run "$MSHASH" stats "$T/cut.msh"
		[ "$status" -eq 2 ]
		[ "${#lines[@]}" -eq 1 ]
		[[ $output == "mshash: $T/cut.msh: offset "[0-9]*": "* ]] || { echo "cut $cut: $output"; return 1; }
	done
	# one byte changed in the hashes: the checksum of its section
	cp "$T/a.msh" "$T/flip.msh"
	printf 'X' | dd of="$T/flip.msh" bs=1 seek=$((size - 30)) conv=notrunc status=none
	run "$MSHASH" stats "$T/flip.msh"
	[ "$status" -eq 2 ]
	[[ $output == *"flip.msh: offset "*"runs checksum mismatch"* ]]
	run "$MSHASH" diff "$T/flip.msh" "$T/b.msh"
	[ "$status" -eq 2 ]
	head -c 4096 /dev/urandom >"$T/noise.msh"
	run "$MSHASH" query --degree both "$T/noise.msh"
	[ "$status" -eq 2 ]
	[[ $output == "mshash: $T/noise.msh: offset 0: not a .msh index (bad magic)" ]]
	run "$MSHASH" stats "$T/none.msh"
	[ "$status" -eq 2 ]
	[[ $output == "mshash: $T/none.msh: no such file" ]]
	run "$MSHASH" stats "$T"
	[ "$status" -eq 2 ]
	[[ $output == *"not a regular file" ]]
	# indexes of different block sizes are not compared
	"$MSHASH" scan -b 512 "$T/a.img" -o "$T/a512.msh" >/dev/null
	run "$MSHASH" stats "$T/a.msh" "$T/a512.msh"
	[ "$status" -eq 2 ]
	[[ $output == *"a512.msh: blocks of 512 bytes"* ]]
}

@test "mshash scan: sources that do not exist or cannot be read are errors, not crashes" {
	run "$MSHASH" scan "$T/nothing" -o "$T/x.msh"
	[ "$status" -eq 2 ]
	[[ $output == *"source '$T/nothing': no such file"* ]]
	run "$MSHASH" scan pid:999999999 -o "$T/x.msh"
	[ "$status" -eq 2 ]
	run "$MSHASH" scan pid:abc -o "$T/x.msh"
	[ "$status" -eq 2 ]
	[[ $output == *"source 'pid:abc'"* ]]
	run "$MSHASH" -c cgroup:/// scan domain:vm1 -o "$T/x.msh"
	[ "$status" -eq 2 ]
	[[ $output == *"a domain is a libvirt guest: give -c qemu:///system"* ]]
	run "$MSHASH" scan xen:vm1 -o "$T/x.msh"
	[ "$status" -eq 2 ]
	[[ $output == *"Xen domains are not supported"* ]]
	run "$MSHASH" scan --freeze "$CORPUS/msh_elf/core32.elf" -o "$T/x.msh"
	[ "$status" -eq 2 ]
	run "$MSHASH" scan "$CORPUS/msh_elf/core32.elf" -o "$T/no/such/dir/x.msh"
	[ "$status" -eq 1 ]
	[[ $output == *"cannot create $T/no/such/dir/x.msh"* ]]
	# an empty image is an empty snapshot
	: >"$T/empty.img"
	"$MSHASH" scan "$T/empty.img" -o "$T/empty.msh" | jq_true '.blocks == 0'
	set_record "$T/empty.msh" | jq_true '.total_blocks == 0 and (has("intra_ratio") | not)'
}

@test "mshash scan pid:N: a live process's identical pages, with and without --freeze" {
	[ "$(id -u)" = 0 ] || skip "needs root to read another process's memory"
	[ -x "$USEMEM" ] || skip "$USEMEM is not built"
	local out=$T/usemem.out
	mkfifo "$T/fifo"
	"$USEMEM" --touch 0 64 >"$T/fifo" 2>/dev/null &
	WORKLOADS="$!"
	read -r -t 30 line <"$T/fifo"
	[ "$line" = ready ]
	pid=$WORKLOADS
	# every page of usemem holds one byte 1 and zeros: 16384 copies of one block
	perl -e 'binmode STDOUT; print "\x01", "\0" x 4095' >"$T/page.blk"
	"$MSHASH" scan -b 4096 "$T/page.blk" -o "$T/page.msh" >/dev/null
	h=$("$MSHASH" query --shared 1 "$T/page.msh" | jq -r .hash)
	run "$MSHASH" scan "pid:$pid" -o "$T/p.msh"
	[ "$status" -eq 0 ]
	echo "$output"
	jq -e --arg p "pid:$pid" '.source == $p and .present_blocks >= 16384 and .blocks > .present_blocks and .frozen == false' <<<"$output"
	"$MSHASH" query --copies "$h" "$T/p.msh" | jq_true '.copies >= 16384 and .copies < 16400'
	# frozen: the same, and the process runs on afterwards
	run "$MSHASH" scan --freeze -j 2 -b 512 "pid:$pid" -o "$T/f.msh"
	[ "$status" -eq 0 ]
	jq -e '.frozen == true' <<<"$output"
	state=$(awk '{print $3}' "/proc/$pid/stat")
	[ "$state" != T ]
	# the stats of a process: its 64 MiB of one content make most of it reducible
	set_record "$T/p.msh" | jq_true '.intra_reducible_bytes >= 16383 * 4096'
}

@test "mshash watch pid:N: per-round records, rehashing what changed, an interval that adapts" {
	[ "$(id -u)" = 0 ] || skip "needs root to read another process's memory"
	[ -x "$USEMEM" ] || skip "$USEMEM is not built"
	mkfifo "$T/fifo"
	"$USEMEM" --touch 8 --pass 100ms 32 >"$T/fifo" 2>/dev/null &
	WORKLOADS="$!"
	read -r -t 30 line <"$T/fifo"
	[ "$line" = ready ]
	pid=$WORKLOADS
	run --separate-stderr "$MSHASH" watch -n 3 -i 300ms -o "$T/w.msh" "pid:$pid"
	[ "$status" -eq 0 ]
	printf '%s\n' "${lines[@]}"
	[ "${#lines[@]}" -eq 3 ]
	jq -se --arg p "pid:$pid" 'map(.kind == "watch" and .source == $p and .blocks > 8192) | all' <<<"$output"
	jq -se 'map(.round) == [1, 2, 3] and .[0].added_blocks == .[0].blocks and .[0].changed_blocks == 0' <<<"$output"
	# usemem writes 8 MiB (2048 pages) in every pass: later rounds see them change
	jq -se '.[1:] | map(.changed_blocks >= 1000 and .update_bytes >= 48 * .changed_blocks) | all' <<<"$output"
	method=$(jq -sr '.[1].method' <<<"$output")
	if [ "$method" = full ]; then
		jq -se '.[1:] | map(.rehashed_blocks == .blocks and .reused_blocks == 0) | all' <<<"$output"
	else
		jq -se '.[1:] | map(.reused_blocks > 0) | all' <<<"$output"
	fi
	# the index of the last round
	set_record "$T/w.msh" | jq_true '.total_blocks > 8192'
	# a tiny CPU budget stretches the interval: 1.1 x round CPU / max-overhead
	run --separate-stderr "$MSHASH" watch -n 2 -i 10ms --max-overhead 20% --full "pid:$pid"
	[ "$status" -eq 0 ]
	jq -se 'map(.method == "full" and .next_interval_s > 0.01 and (.next_interval_s - 1.1 * .cpu_s / 0.2 | fabs) < 0.01 * .next_interval_s) | all' <<<"$output"
	jq -se '.[1].interval_s == .[0].next_interval_s' <<<"$output"
	run "$MSHASH" watch "$CORPUS/msh_elf/core32.elf"
	[ "$status" -eq 2 ]
	[[ $output == *"is not a live source"* ]]
}

@test "mshash: a domain source's error says 'source ...' once" {
	run "$MSHASH" -c cgroup:/// scan domain:x -o "$T/x.msh"
	[ "$status" -eq 2 ]
	[ "$output" = "mshash: source 'domain:x': a domain is a libvirt guest: give -c qemu:///system (or set MEMSHARE_URI); for a process use pid:N" ]
	run "$MSHASH" -c foo:/// scan domain:x -o "$T/x.msh"
	[ "$status" -eq 2 ]
	[ "$(grep -o "source 'domain:x'" <<<"$output" | wc -l)" -eq 1 ]
}
