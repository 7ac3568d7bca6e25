#!/usr/bin/env bats
# msshare on cgroup:/// domains: real tmpfs spaces, a host producer leaving
# job files in them and a consumer taking them away, watched by inotify.
bats_require_minimum_version 1.5.0
load helpers

MSSHARE=${MEMSHARE_BIN:-${MEMSHARE_ROOT:-$PWD}/bin}/msshare
MIB=1048576

setup() {
	export MEMSHARE_SHARE_DIR=$BATS_TEST_TMPDIR/share
	PIDS=
}

teardown() {
	local p m
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	# every mount a test left under its directory, deepest first
	for m in $(awk -v d="$BATS_TEST_TMPDIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		umount -l "$m"
	done
	stop_workloads
	remove_cgroups
}

# A cgroup domain in $d (an empty cgroup is enough for create, resize, rm, watch DOMAIN).
domain() {
	require_cgroups
	mkdir -p "$MEMROOT$CG_BASE/$1"
	d=$CG_BASE/$1
}

space_of() { echo "$MEMSHARE_SHARE_DIR$1"; }

# The sum of a rate times the window over the records of FILE for a domain: a count of jobs.
jobs_counted() {
	jq -s --arg d "$2" --arg f "$3" '[.[] | select(.domain == $d) | .[$f] * .window_s] | add // 0 | round' "$1"
}

# records_true FILE JQ-ARGS...: jq -e on the records written so far (a fresh read at every try of until_true).
records_true() {
	local file=$1
	shift
	jq_true "$@" < "$file"
}

jobs_at_least() { [ "$(jobs_counted "$1" "$2" "$3")" -ge "$4" ]; }

@test "msshare: --help and --version" {
	run -0 "$MSSHARE" --help
	[[ $output == *"create DOMAIN --size SIZE"* ]]
	[[ $output == *"watch [-i DUR] [-n N] [--all | DOMAIN...]"* ]]
	run -0 "$MSSHARE" --version
	[[ $output == "msshare (memshare) "* ]]
}

@test "msshare: usage errors exit 2 with one line naming the input" {
	run -2 "$MSSHARE"
	[[ $output == *"create, resize, rm, list or watch"* ]]
	run -2 "$MSSHARE" frobnicate
	[[ $output == *"unknown subcommand 'frobnicate'"* ]]
	run -2 "$MSSHARE" create /x
	[[ $output == *"create: give the size of the space with --size SIZE"* ]]
	run -2 "$MSSHARE" create /x --size 12Q
	[[ $output == *"--size: '12Q'"* ]]
	run -2 "$MSSHARE" create /x --size -4M
	[[ $output == *"--size: '-4M': a size cannot be negative"* ]]
	run -2 "$MSSHARE" resize /x 1.5.5G
	[[ $output == *"resize: SIZE: '1.5.5G'"* ]]
	run -2 "$MSSHARE" resize /x
	[[ $output == *"resize: expected DOMAIN SIZE"* ]]
	run -2 "$MSSHARE" create /x --size 4M --force
	[[ $output == *"--force does not apply to create"* ]]
	run -2 "$MSSHARE" create /x --size 4M --transport nfs
	[[ $output == *"--transport: 'nfs' (use virtiofs or 9p)"* ]]
	run -2 "$MSSHARE" create /x --size 4M --transport 9p --accessmode none
	[[ $output == *"--accessmode: 'none' (use passthrough, mapped or squash)"* ]]
	run -2 "$MSSHARE" resize /x 4M --accessmode mapped
	[[ $output == *"--accessmode does not apply to resize"* ]]
	run -2 "$MSSHARE" watch
	[[ $output == *"watch: name the domains to watch, or give --all"* ]]
	run -2 "$MSSHARE" watch --all /x
	[[ $output == *"give either --all or domain names, not both"* ]]
	run -2 "$MSSHARE" watch --interval 5parsecs /x
	[[ $output == *"--interval: '5parsecs' has an unknown unit"* ]]
	run -2 "$MSSHARE" list extra
	[[ $output == *"list: expected no operand"* ]]
}

@test "msshare: create, list, resize and rm a cgroup domain's space" {
	domain vm1
	start_workload "$d" 8 # list shows domains with processes
	run -0 "$MSSHARE" create "$d" --size 8M
	jq_true --arg d "$d" '.kind == "share_space" and .domain == $d and .size_bytes == 8388608 and .used_bytes == 0' <<<"$output"
	dir=$(space_of "$d")
	[ "$(findmnt -n -o FSTYPE --mountpoint "$dir")" = tmpfs ]
	head -c $((3 * MIB)) /dev/zero > "$dir/job1"

	run -0 "$MSSHARE" -c "cgroup://$CG_BASE" list
	jq_true --arg d "$d" 'select(.domain == $d) | .used_bytes == 3145728 and .files == 1' <<<"$output"

	run -0 "$MSSHARE" resize "$d" 16M
	jq_true '.size_bytes == 16777216' <<<"$output"
	[ "$(df -B1 --output=size "$dir" | tail -1 | tr -d ' ')" = 16777216 ]
	run -0 "$MSSHARE" resize "$d" 4M
	[ "$(df -B1 --output=size "$dir" | tail -1 | tr -d ' ')" = 4194304 ]
	[ -f "$dir/job1" ] # resizing keeps what is in the space

	run -2 "$MSSHARE" resize "$d" 2M
	[[ $output == *"size 2M is below the 3M in use"* ]]
	run -2 "$MSSHARE" create "$d" --size 8M
	[[ $output == *"already has a share space"* ]]

	run -0 "$MSSHARE" rm "$d"
	[ -z "$output" ]
	! findmnt --mountpoint "$dir"
	[ ! -e "$dir" ]
	run -2 "$MSSHARE" rm "$d"
	[[ $output == *"domain '$d' has no share space"* ]]
}

@test "msshare: bad input: unknown domain, no space, a directory that is not a tmpfs, --dir" {
	domain vm1
	run -2 "$MSSHARE" create "$CG_BASE/nosuch" --size 4M
	[[ $output == *"unknown domain '$CG_BASE/nosuch'"* ]]
	run -2 "$MSSHARE" watch -n 1 -i 100ms "$CG_BASE/nosuch"
	[[ $output == *"unknown domain '$CG_BASE/nosuch'"* ]]
	run -2 "$MSSHARE" resize "$d" 8M
	[[ $output == *"domain '$d' has no share space ($(space_of "$d") is not a tmpfs mount"* ]]
	# a plain directory where the space should be
	mkdir -p "$(space_of "$d")"
	run -2 "$MSSHARE" watch -n 1 -i 100ms "$d"
	[[ $output == *"$(space_of "$d") is not a tmpfs mount"* ]]
	run -2 "$MSSHARE" create "$d" --size 0
	[[ $output == *"needs a size above 0"* ]]
	rmdir "$(space_of "$d")"
	run -2 "$MSSHARE" create "$d" --size 4M --dir relative/path
	[[ $output == *"--dir relative/path: give an absolute path"* ]]

	# --dir: the space lives elsewhere and every subcommand finds it
	run -0 "$MSSHARE" create "$d" --size 4M --dir "$BATS_TEST_TMPDIR/elsewhere"
	jq_true --arg dir "$BATS_TEST_TMPDIR/elsewhere" '.dir == $dir' <<<"$output"
	run -0 "$MSSHARE" resize "$d" 6M
	[ "$(df -B1 --output=size "$BATS_TEST_TMPDIR/elsewhere" | tail -1 | tr -d ' ')" = 6291456 ]
	run -0 "$MSSHARE" rm "$d"
	[ ! -e "$(space_of "$d")" ]
	! findmnt --mountpoint "$BATS_TEST_TMPDIR/elsewhere"
}

@test "msshare: a libvirt domain without shared memory is refused, naming the XML it needs" {
	command -v virsh >/dev/null || skip "libvirt is not installed"
	run -2 "$MSSHARE" -c test:///default create test --size 4M
	[[ $output == *"domain 'test' does not share its memory, which virtiofs needs"* ]]
	[[ $output == *"<memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>"* ]]
	# the space made for it went again
	[ -z "$(awk -v d="$MEMSHARE_SHARE_DIR/" 'index($5, d) == 1' /proc/self/mountinfo)" ]
	[ ! -e "$MEMSHARE_SHARE_DIR/test" ]
	run -2 "$MSSHARE" -c test:///default create nosuch --size 4M
	[[ $output == *"unknown domain 'nosuch'"* ]]
	# virtiofs has one access mode
	run -2 "$MSSHARE" -c test:///default create test --size 4M --accessmode mapped
	[[ $output == *"--accessmode mapped: virtiofs shares only in passthrough mode; mapped and squash are for --transport 9p"* ]]
	[ ! -e "$MEMSHARE_SHARE_DIR/test" ]
	# a container's space is bind-mounted by the operator: no tag, no transport
	domain vm1
	run -2 "$MSSHARE" create "$d" --size 4M --transport virtiofs
	[[ $output == *"--tag, --transport and --accessmode are for libvirt domains"* ]]
	run -2 "$MSSHARE" create "$d" --size 4M --accessmode passthrough
	[[ $output == *"--tag, --transport and --accessmode are for libvirt domains"* ]]
}

@test "msshare: rm refuses while the space is bind-mounted elsewhere, unless --force" {
	domain vm1
	run -0 "$MSSHARE" create "$d" --size 4M
	mkdir "$BATS_TEST_TMPDIR/container-root"
	mount --bind "$(space_of "$d")" "$BATS_TEST_TMPDIR/container-root"
	run -1 "$MSSHARE" rm "$d"
	[[ $output == *"is still mounted at $BATS_TEST_TMPDIR/container-root"* ]]
	findmnt --mountpoint "$(space_of "$d")"
	run -0 "$MSSHARE" rm --force "$d"
	! findmnt --mountpoint "$(space_of "$d")"
	umount "$BATS_TEST_TMPDIR/container-root"
}

@test "msshare: rm refuses while a container (its own mount namespace, in the domain's cgroup) has the space mounted" {
	domain c1
	run -0 "$MSSHARE" create "$d" --size 4M
	mkdir "$BATS_TEST_TMPDIR/rootfs"
	ready=$BATS_TEST_TMPDIR/ready
	# the container's bind mount exists only in its namespace: the host's mount table does not show it
	sh -c 'echo $$ > "$1/cgroup.procs" && exec unshare -m --propagation private sh -c "mount --bind \"\$0\" \"\$1\" && touch \"\$2\" && exec sleep 300" "$2" "$3" "$4"' \
		sh "$MEMROOT$d" "$(space_of "$d")" "$BATS_TEST_TMPDIR/rootfs" "$ready" &
	PIDS="$!"
	until_true 30 test -e "$ready"
	! findmnt --mountpoint "$BATS_TEST_TMPDIR/rootfs"
	run -1 "$MSSHARE" rm "$d"
	[[ $output == *"is still mounted at $BATS_TEST_TMPDIR/rootfs (seen by pid "* ]]
	kill $PIDS
	wait $PIDS || true
	PIDS=
	run -0 "$MSSHARE" rm "$d"
}

# produce DIR N BYTES: N jobs written to a temporary name and renamed into place (no rename counts twice).
produce() {
	local i
	for ((i = 0; i < $2; i++)); do
		head -c "$3" /dev/urandom > "$1/.tmp.$i"
		mv "$1/.tmp.$i" "$1/job.$i"
		sleep 0.05 # the producer's pace: jobs spread over several intervals
	done
}

# consume DIR: take every finished job away until stopped.
consume() {
	while :; do
		find "$1" -maxdepth 1 -name 'job.*' -delete
		sleep 0.02
	done
}

@test "msshare: watch counts the jobs a producer leaves and a consumer takes, with their size" {
	domain vm1
	run -0 "$MSSHARE" create "$d" --size 16M
	dir=$(space_of "$d")
	out=$BATS_TEST_TMPDIR/watch.jsonl
	"$MSSHARE" watch -i 500ms "$d" > "$out" &
	PIDS="$!"
	until_true 30 test -s "$out" # watching (one record written)
	consume "$dir" &
	PIDS="$PIDS $!"
	produce "$dir" 40 65536
	# every job was seen arriving and leaving, however the intervals fell
	until_true 60 jobs_at_least "$out" "$d" departures_per_s 40
	[ "$(jobs_counted "$out" "$d" arrivals_per_s)" -eq 40 ]
	[ "$(jobs_counted "$out" "$d" departures_per_s)" -eq 40 ]
	# a job taken before watch read its size leaves the mean to the others: never another size
	records_true "$out" -s 'map(.mean_job_bytes | select(. != null)) | length > 0 and all(. == 65536)'
	records_true "$out" -s 'map(select(.service_per_s > 0)) | length > 0'
	records_true "$out" -s 'all(.kind == "share" and .size_bytes == 16777216 and (.host | length > 0) and (.ts | test("Z$")) and .full_s == 0)'
}

@test "msshare: watch measures the time the space could not take one more job" {
	domain vm1
	run -0 "$MSSHARE" create "$d" --size 1M
	dir=$(space_of "$d")
	out=$BATS_TEST_TMPDIR/watch.jsonl
	"$MSSHARE" watch -i 500ms "$d" > "$out" &
	PIDS="$!"
	until_true 30 test -s "$out"
	records_true "$out" -s 'all(.full_s == 0)'
	head -c 700000 /dev/urandom > "$dir/job.big" # 700K of 1M: no room for another one
	until_true 30 records_true "$out" -s 'map(select(.mean_job_bytes >= 700000 and .full_s >= 0.9 * .window_s)) | length >= 2'
	rm "$dir/job.big"
	n=$(wc -l < "$out")
	until_true 30 records_true "$out" -s --argjson n "$n" '.[$n:] | map(select(.full_s == 0)) | length >= 1'
}

@test "msshare: watch --all follows the domains that have a space" {
	require_cgroups
	start_workload "$CG_BASE/vm1" 8
	start_workload "$CG_BASE/vm2" 8
	run -0 "$MSSHARE" create "$CG_BASE/vm1" --size 2M
	out=$BATS_TEST_TMPDIR/watch.jsonl
	"$MSSHARE" -c "cgroup://$CG_BASE" watch --all -i 300ms > "$out" &
	PIDS="$!"
	until_true 30 records_true "$out" -s --arg d "$CG_BASE/vm1" 'map(select(.domain == $d)) | length >= 1'
	# a space created while watching joins at the next interval; one removed leaves
	run -0 "$MSSHARE" create "$CG_BASE/vm2" --size 2M
	until_true 30 records_true "$out" -s --arg d "$CG_BASE/vm2" 'map(select(.domain == $d)) | length >= 1'
	run -0 "$MSSHARE" rm "$CG_BASE/vm1"
	n=$(wc -l < "$out")
	until_true 30 records_true "$out" -s --argjson n "$n" --arg d "$CG_BASE/vm2" '.[$n:] | map(select(.domain == $d)) | length >= 2'
	records_true "$out" -s --argjson n "$n" --arg d "$CG_BASE/vm1" '.[$n+1:] | map(select(.domain == $d)) | length == 0'
}

@test "msshare: watch of one domain ends when its space is removed" {
	domain vm1
	run -0 "$MSSHARE" create "$d" --size 2M
	out=$BATS_TEST_TMPDIR/watch.jsonl
	"$MSSHARE" watch -i 200ms "$d" > "$out" 2> "$BATS_TEST_TMPDIR/err" &
	pid=$!
	PIDS="$pid"
	until_true 30 test -s "$out"
	run -0 "$MSSHARE" rm "$d"
	rc=0
	wait "$pid" || rc=$?
	PIDS=
	[ "$rc" -eq 1 ]
	grep -q "every watched share space is gone" "$BATS_TEST_TMPDIR/err"
}
