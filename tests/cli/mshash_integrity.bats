#!/usr/bin/env bats
# Every reader of an index checks every checksum of what it covers
# (mshash(1)): a byte changed in any section is an input error naming the
# file and the offset, never a silent result.
bats_require_minimum_version 1.5.0
load helpers

MSHASH=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/mshash

setup() {
	[ -x "$MSHASH" ] || skip "$MSHASH is not built (run make)"
	T=$BATS_TEST_TMPDIR
	# 64 blocks of 4 KiB, two of them alike, one zero block
	for i in $(seq 1 62); do printf '%-4096s' "block $i"; done > "$T/a.img"
	printf '%-4096s' "block 1" >> "$T/a.img"
	head -c 4096 /dev/zero >> "$T/a.img"
	run -0 "$MSHASH" scan "$T/a.img" -o "$T/a.msh"
	cp "$T/a.msh" "$T/b.msh"
}

# u32/u64 of the index's header at byte offset (little-endian)
header_u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
header_u64() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }

# flip FILE OFFSET: change one byte in place
flip() {
	local byte
	byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\$(printf '%03o' $(((byte + 1) % 256)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

@test "mshash stats: a byte changed in the positions section is an input error naming the offset" {
	local header regions positions
	header=$(header_u32 "$T/a.msh" 12)
	regions=$(header_u64 "$T/a.msh" 56)
	positions=$((header + regions * 16))
	[ "$(header_u64 "$T/a.msh" 32)" -eq 64 ] # block_count: the section is 64 x 16 bytes
	flip "$T/a.msh" $((positions + 5 * 16 + 3))
	run "$MSHASH" stats "$T/a.msh"
	[ "$status" -eq 2 ]
	[[ $output == *"$T/a.msh"*"offset $positions"*"positions checksum mismatch"* ]]
	[[ $output != *'"kind"'* ]]
	# a set of indexes: the corrupt one is named
	run "$MSHASH" stats "$T/b.msh" "$T/a.msh"
	[ "$status" -eq 2 ]
	[[ $output == *"$T/a.msh"*"positions checksum mismatch"* ]]
	run "$MSHASH" query --degree most "$T/a.msh"
	[ "$status" -eq 2 ]
	run "$MSHASH" diff "$T/b.msh" "$T/a.msh"
	[ "$status" -eq 2 ]
	# the intact copy still reads
	run -0 "$MSHASH" stats "$T/b.msh"
}
