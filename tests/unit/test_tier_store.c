/* The tier store of msrswap (tier_store.c): contents against a reference
 * buffer with RAM only, disk only and RAM + remote; Tmem accounting (targets,
 * failed puts, flushes); the disk mirror (the file equals the device after
 * FLUSH, reads served from the queue); failover when a provider is killed
 * with SIGKILL, release of a remote (its connections closed, refused while
 * the disk file fails), a remote added at run time; concurrent use, with a
 * provider killed or released in the middle.  Remotes are `msrswap serve`
 * children on unix sockets (skipped when bin/msrswap is not built); nbdkit
 * when installed.  TIER_STORE_STRESS_OPS sets the operations per stress
 * thread (fewer under ThreadSanitizer). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fabric.h"
#include "store_ram.h"
#include "tap.h"
#include "tier_store.h"

#define BS 4096u
#define MIB(n) ((uint64_t)(n) << 20)

static char tmpdir[256];
static char msrswap_bin[1024];
static int stress_ops = 20000;
/* providers started from now on serve --fabric, and their URIs are fabric+unix:// */
static bool fabric_remotes;

/* ---- helpers ---- */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *s, uint64_t n) { return splitmix(s) % n; }

static void fill_random(uint64_t *s, unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)splitmix(s);
}

static void bail(const char *what, const char *msg)
{
	printf("Bail out! %s: %s\n", what, msg);
	exit(1);
}

static struct ram_pool *pool_or_die(uint64_t capacity)
{
	struct ram_pool *pool;
	struct ms_err err = {0};
	if (ram_pool_new(capacity, false, false, &pool, &err) != 0)
		bail("ram_pool_new", err.msg);
	return pool;
}

static void disk_path(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s.disk", tmpdir, name);
}

static struct tier_store *open_or_die(struct tier_store_config *cfg)
{
	struct tier_store *ts;
	struct ms_err err = {0};
	if (tier_store_open(cfg, &ts, &err) != 0)
		bail("tier_store_open", err.msg);
	return ts;
}

static struct tier_stats stats(struct tier_store *ts)
{
	struct tier_stats s;
	tier_store_get_stats(ts, &s);
	return s;
}

static int ts_read(struct tier_store *ts, void *buf, uint32_t len, uint64_t off)
{
	return tier_store_ops.read(ts, buf, len, off);
}

static int ts_write(struct tier_store *ts, const void *buf, uint32_t len, uint64_t off)
{
	return tier_store_ops.write(ts, buf, len, off);
}

static int put_blocks(struct tier_store *ts, unsigned char *ref, uint64_t *seed, uint64_t first, uint64_t count)
{
	for (uint64_t b = first; b < first + count; b++) {
		fill_random(seed, ref + b * BS, BS);
		int rc = ts_write(ts, ref + b * BS, BS, b * BS);
		if (rc)
			return rc;
	}
	return 0;
}

/* count new blocks from `first` in one write request */
static int put_run(struct tier_store *ts, unsigned char *ref, uint64_t *seed, uint64_t first, uint64_t count)
{
	fill_random(seed, ref + first * BS, count * BS);
	return ts_write(ts, ref + first * BS, (uint32_t)(count * BS), first * BS);
}

/* Read the whole device in pieces of every alignment and compare. */
static bool device_equals(struct tier_store *ts, const unsigned char *ref, uint64_t size)
{
	unsigned char *buf = malloc(size);
	bool same = true;
	for (uint64_t off = 0; off < size;) {
		uint32_t n = (uint32_t)((off / BS) % 3 == 0 ? 3 * BS : (off % BS == 0 ? 1000 : BS));
		if (n > size - off)
			n = (uint32_t)(size - off);
		if (ts_read(ts, buf + off, n, off) != 0) {
			same = false;
			break;
		}
		off += n;
	}
	if (same && memcmp(buf, ref, size) != 0) {
		for (uint64_t b = 0; b < size / BS; b++)
			if (memcmp(buf + b * BS, ref + b * BS, BS)) {
				printf("#   block %llu differs\n", (unsigned long long)b);
				break;
			}
		same = false;
	}
	free(buf);
	return same;
}

static bool file_equals(const char *path, const unsigned char *ref, uint64_t size)
{
	int fd = open(path, O_RDONLY);
	unsigned char *buf = malloc(size);
	struct stat st;
	bool same = fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size == size &&
		    pread(fd, buf, size, 0) == (ssize_t)size && memcmp(buf, ref, size) == 0;
	if (fd >= 0)
		close(fd);
	free(buf);
	return same;
}

/* The disk copy of a store with a RAM pool: RAM blocks have none (their
 * place in the file is a hole), every other block is there.  So the blocks
 * where the file differs from the device are zeros in the file, and there
 * are exactly as many as the device holds in RAM (a RAM block is never all
 * zeros: zeros are stored nowhere). */
static bool disk_copy_equals(const char *path, const unsigned char *ref, uint64_t size, uint64_t ram_bytes)
{
	static const unsigned char zeros[BS];
	int fd = open(path, O_RDONLY);
	unsigned char *buf = malloc(size);
	bool read_all = fd >= 0 && pread(fd, buf, size, 0) == (ssize_t)size;
	uint64_t holes = 0, other = 0;
	for (uint64_t b = 0; read_all && b < size / BS; b++) {
		if (memcmp(buf + b * BS, ref + b * BS, BS) == 0)
			continue;
		if (memcmp(buf + b * BS, zeros, BS) == 0)
			holes++;
		else
			other++;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	if (read_all && (other || holes != ram_bytes / BS))
		printf("#   disk copy: %llu blocks differ, %llu holes where the device has %llu RAM blocks\n",
		       (unsigned long long)other, (unsigned long long)holes, (unsigned long long)(ram_bytes / BS));
	return read_all && other == 0 && holes == ram_bytes / BS;
}

static bool file_is_zero(const char *path, uint64_t size)
{
	unsigned char *zeros = calloc(1, size);
	bool z = file_equals(path, zeros, size);
	free(zeros);
	return z;
}

/* Random reads, writes (aligned or not), trims and zeroing against ref. */
static int random_ops(struct tier_store *ts, unsigned char *ref, uint64_t size, int nops, uint64_t seed)
{
	uint64_t s = seed;
	unsigned char *buf = malloc(4 * BS);
	int bad = 0;
	for (int i = 0; i < nops && !bad; i++) {
		int kind = (int)rnd(&s, 100);
		uint64_t off;
		uint32_t len;
		if (rnd(&s, 2)) { /* aligned, 1..3 blocks */
			len = (uint32_t)(1 + rnd(&s, 3)) * BS;
			off = rnd(&s, size / BS - 3) * BS;
		} else {
			len = (uint32_t)(1 + rnd(&s, 3 * BS));
			off = rnd(&s, size - len);
		}
		if (kind < 45) {
			fill_random(&s, buf, len);
			if (ts_write(ts, buf, len, off) != 0)
				bad = 1;
			memcpy(ref + off, buf, len);
		} else if (kind < 85) {
			if (ts_read(ts, buf, len, off) != 0 || memcmp(buf, ref + off, len) != 0) {
				printf("#   op %d: read of %u at %llu differs\n", i, len, (unsigned long long)off);
				bad = 1;
			}
		} else {
			int rc = kind < 93 ? tier_store_ops.trim(ts, len, off) : tier_store_ops.write_zeroes(ts, len, off);
			if (rc)
				bad = 1;
			memset(ref + off, 0, len);
		}
	}
	free(buf);
	return bad;
}

/* ---- providers: `msrswap serve` children ---- */

struct provider {
	pid_t pid;
	char sock[300], uri[400];
	char ctl[320]; /* msrswap serve's control socket; "" for other servers */
};

static bool socket_ready(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	bool ok_ = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	if (fd >= 0)
		close(fd);
	return ok_;
}

static bool wait_socket(pid_t pid, const char *path)
{
	for (int i = 0; i < 500; i++) {
		if (socket_ready(path))
			return true;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return false;
		usleep(10000);
	}
	return false;
}

/* argv: the server's command line, with the socket path already in it. */
static bool provider_spawn(struct provider *p, char **argv)
{
	p->pid = fork();
	if (p->pid == 0) {
		char log[400];
		snprintf(log, sizeof log, "%s.log", p->sock);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	if (p->pid < 0 || !wait_socket(p->pid, p->sock)) {
		printf("# cannot start %s\n", argv[0]);
		return false;
	}
	return true;
}

static bool provider_start(struct provider *p, const char *name, const char *export_size)
{
	char listen[320], control[320], capacity[64], export[128];
	snprintf(p->sock, sizeof p->sock, "%s/%s.sock", tmpdir, name);
	snprintf(listen, sizeof listen, "unix:%s", p->sock);
	snprintf(control, sizeof control, "%s/%s.ctl", tmpdir, name);
	snprintf(p->ctl, sizeof p->ctl, "%s", control);
	snprintf(capacity, sizeof capacity, "%s", export_size);
	snprintf(export, sizeof export, "slab:%s", export_size);
	snprintf(p->uri, sizeof p->uri, "%s+unix:///slab?socket=%s", fabric_remotes ? "fabric" : "nbd", p->sock);
	char *argv[] = {msrswap_bin, "serve", "-q", "--listen", listen, "--control", control,
			"--capacity", capacity, "--export", export, fabric_remotes ? "--fabric" : NULL, NULL};
	return provider_spawn(p, argv);
}

/* The NBD connections the provider has open (its control socket's "stats"
 * reply), or -1. */
static int provider_connections(const struct provider *p)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", p->ctl);
	static const char request[] = "{\"cmd\":\"stats\"}\n";
	char reply[16384];
	size_t used = 0;
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
	    write(fd, request, sizeof request - 1) == (ssize_t)(sizeof request - 1)) {
		ssize_t n;
		while (used < sizeof reply - 1 && (n = read(fd, reply + used, sizeof reply - 1 - used)) > 0)
			used += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	reply[used] = '\0';
	const char *at = strstr(reply, "\"connections\":");
	return at ? atoi(at + strlen("\"connections\":")) : -1;
}

/* Wait up to 10 s for the provider to have `want` connections (it sees a
 * client go when its thread reads the end of the stream); the last count. */
static int provider_connections_become(const struct provider *p, int want)
{
	int n = provider_connections(p);
	for (int i = 0; i < 1000 && n != want; i++) {
		usleep(10000);
		n = provider_connections(p);
	}
	return n;
}

static void provider_kill(struct provider *p, int sig)
{
	if (p->pid > 0) {
		kill(p->pid, sig);
		waitpid(p->pid, NULL, 0);
		p->pid = 0;
	}
}

/* ---- tests ---- */

static void test_config(void)
{
	char path[300];
	disk_path(path, sizeof path, "config");
	struct tier_store *ts = NULL;
	struct ms_err err = {0};
	struct tier_store_config cfg = {.size = 10000, .disk_path = path, .tier_target_bytes = UINT64_MAX};
	is_int(tier_store_open(&cfg, &ts, &err), -1, "a size that is not a multiple of 4096 is refused");
	ok(err.usage, "as an input error");
	cfg.size = MIB(1);
	cfg.disk_path = NULL;
	is_int(tier_store_open(&cfg, &ts, &err), -1, "no disk file: refused");
	cfg.disk_path = path;
	char bad_uri[400];
	snprintf(bad_uri, sizeof bad_uri, "nbd+unix:///x?socket=%s/nobody.sock", tmpdir);
	const char *uris[] = {bad_uri};
	cfg.remote_uris = uris;
	cfg.remote_count = 1;
	is_int(tier_store_open(&cfg, &ts, &err), -1, "a remote that does not answer fails the open");
	like(err.msg, "nobody.sock", "the message names the remote");

	cfg.remote_count = 0;
	ts = open_or_die(&cfg);
	unsigned char buf[2 * BS];
	memset(buf, 7, sizeof buf);
	is_int(ts_write(ts, buf, 17, MIB(1) - 16), EINVAL, "a write past the end: EINVAL");
	is_int(ts_read(ts, buf, 1, MIB(1)), EINVAL, "a read at the end: EINVAL");
	is_int(ts_read(ts, buf, 2 * BS, MIB(1) - 2 * BS), 0, "the last blocks read");
	ok(buf[0] == 0 && buf[2 * BS - 1] == 0, "a never-written block reads as zeros");
	is_int(stats(ts).gets, 2, "a get per block read");
	is_int(tier_store_add_remote(ts, bad_uri, &err), -1, "adding a remote that does not answer fails");
	is_int(stats(ts).remotes_alive + stats(ts).remotes_dead, 0, "and adds nothing");
	ok(access(path, F_OK) == 0, "the disk file exists while the device does");
	tier_store_close(ts);
	ok(access(path, F_OK) != 0 && errno == ENOENT, "and is removed with it");
}

static void test_ram_only(void)
{
	const uint64_t size = MIB(8);
	char path[300];
	disk_path(path, sizeof path, "ram");
	struct ram_pool *pool = pool_or_die(MIB(64));
	struct tier_store_config cfg = {.size = size, .disk_path = path, .ram_pool = pool, .tier_target_bytes = UINT64_MAX};
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	is_int(random_ops(ts, ref, size, 20000, 1), 0, "RAM only: 20000 random operations match the reference");
	ok(device_equals(ts, ref, size), "RAM only: the whole device matches");
	struct tier_stats st = stats(ts);
	is_int(st.puts_total, st.puts_succ, "every put succeeded");
	ok(st.puts_total > 10000, "puts counted per block (%llu)", (unsigned long long)st.puts_total);
	is_int(st.disk_bytes, 0, "nothing on the disk tier");
	is_int(st.ram_bytes, st.tier_used_bytes, "the tier is all RAM");
	struct ram_pool_stats ps;
	ram_pool_get_stats(pool, &ps);
	is_int(ps.used_bytes, st.ram_bytes, "the pool holds the RAM blocks");
	ok(st.gets_succ > 0 && st.gets_succ <= st.gets, "gets and gets served by the tier");
	is_int(tier_store_ops.flush(ts), 0, "FLUSH");
	is_int(stats(ts).mirror_pending_bytes, 0, "FLUSH drained the mirror");
	ok(disk_copy_equals(path, ref, size, stats(ts).ram_bytes), "after FLUSH the disk file holds every block but the RAM ones");
	tier_store_close(ts);
	ram_pool_get_stats(pool, &ps);
	is_int(ps.used_bytes, 0, "closing gives the RAM back to the pool");
	ram_pool_free(pool);
	free(ref);
}

static void test_disk_only(void)
{
	const uint64_t size = MIB(4);
	char path[300];
	disk_path(path, sizeof path, "diskonly");
	struct tier_store_config cfg = {.size = size, .disk_path = path, .tier_target_bytes = UINT64_MAX};
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ok(fd >= 0 && write(fd, "old content", 11) == 11 && close(fd) == 0, "an old disk file");
	struct tier_store *ts = open_or_die(&cfg);
	ok(file_is_zero(path, size), "is emptied and sized at open");
	unsigned char *ref = calloc(1, size);
	is_int(random_ops(ts, ref, size, 10000, 2), 0, "disk only: 10000 random operations match the reference");
	ok(device_equals(ts, ref, size), "disk only: the whole device matches");
	struct tier_stats st = stats(ts);
	uint64_t seed = 3;
	put_blocks(ts, ref, &seed, 0, 10);
	struct tier_stats st2 = stats(ts);
	ok(st2.puts_total == st.puts_total + 10 && st2.puts_succ == st.puts_succ, "with no tier every put fails");
	ok(st.puts_succ > 0, "except of zero blocks, which are stored nowhere");
	is_int(st.tier_used_bytes, 0, "no tier use");
	ok(st.disk_bytes > 0, "blocks on the disk tier");
	is_int(tier_store_ops.flush(ts), 0, "FLUSH");
	ok(file_equals(path, ref, size), "the disk file equals the device");

	/* Blocks of the disk tier whose copy is still queued are read from the queue. */
	tier_store_mirror_hold(ts, true);
	memset(ref, 0, size);
	is_int(tier_store_ops.trim(ts, (uint32_t)size, 0), 0, "trim the whole device");
	is_int(put_blocks(ts, ref, &seed, 10, 20), 0, "write 20 blocks with the mirror held");
	ok(stats(ts).mirror_pending_bytes >= 20 * BS, "their copies wait in the queue");
	ok(device_equals(ts, ref, size), "reads are served from the queue");
	tier_store_mirror_hold(ts, false);
	is_int(tier_store_ops.flush(ts), 0, "FLUSH");
	ok(file_equals(path, ref, size), "then the file has them (and the trimmed blocks are zeros)");
	tier_store_close(ts);
	free(ref);
}

/* A swap-out held by the RAM pool completes at RAM speed: RAM blocks get no
 * disk copy, so a sustained burst far larger than the mirror queue never
 * waits for the disk, and nothing of it is written to the file. */
static void test_ram_blocks_have_no_disk_copy(void)
{
	const uint64_t size = MIB(16), nblocks = size / BS, chunk = MIB(1);
	char path[300];
	disk_path(path, sizeof path, "ramnocopy");
	struct ram_pool *pool = pool_or_die(MIB(32));
	struct tier_store_config cfg = {.size = size, .disk_path = path, .ram_pool = pool,
					.tier_target_bytes = UINT64_MAX, .mirror_queue_blocks = 16};
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	uint64_t seed = 21;
	int rc = 0;
	for (int pass = 0; pass < 2 && rc == 0; pass++) { /* the second pass rewrites in place, as swap does */
		fill_random(&seed, ref, size);
		for (uint64_t off = 0; off < size && rc == 0; off += chunk)
			rc = ts_write(ts, ref + off, (uint32_t)chunk, off);
	}
	is_int(rc, 0, "two passes of 1 MiB writes over a 16 MiB device, 256 times the queue's 16 blocks");
	struct tier_stats st = stats(ts);
	is_int(st.puts_succ, 2 * nblocks, "every block was put in RAM");
	is_int(st.mirror_waits, 0, "no write waited for the disk copy");
	is_int(st.mirror_pending_bytes, 0, "nothing is queued for the disk");
	ok(device_equals(ts, ref, size), "every block reads back");
	is_int(tier_store_ops.trim(ts, (uint32_t)(size / 2), 0), 0, "trim half the device");
	memset(ref, 0, size / 2);
	is_int(tier_store_ops.flush(ts), 0, "FLUSH");
	st = stats(ts);
	is_int(st.mirror_written_bytes, 0, "the disk file was never written: RAM blocks need no punch either");
	ok(file_is_zero(path, size), "the file is all holes");
	ok(device_equals(ts, ref, size), "every block reads back after the trim");
	tier_store_close(ts);
	ram_pool_free(pool);
	free(ref);
}

/* Swap rewrites its slots in place: a rewrite of a block whose copy still
 * waits in the queue replaces that copy instead of queueing another. */
static void test_mirror_coalesces_rewrites(void)
{
	const uint64_t size = MIB(1);
	char path[300];
	disk_path(path, sizeof path, "coalesce");
	struct tier_store_config cfg = {.size = size, .disk_path = path, .tier_target_bytes = UINT64_MAX,
					.mirror_queue_blocks = 64};
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	uint64_t seed = 22;
	tier_store_mirror_hold(ts, true);
	for (int i = 0; i < 40; i++)
		put_blocks(ts, ref, &seed, 5, 1);
	put_blocks(ts, ref, &seed, 0, 10);
	struct tier_stats st = stats(ts);
	is_int(st.mirror_pending_bytes, 10 * BS, "51 writes of 10 blocks with the mirror held: 10 copies queued");
	is_int(st.mirror_coalesced_bytes, 40 * BS, "40 rewrites replaced a waiting copy");
	ok(device_equals(ts, ref, size), "reads get the newest copy from the queue");
	is_int(tier_store_ops.trim(ts, BS, 5 * BS), 0, "trim a block whose copy waits");
	memset(ref + 5 * BS, 0, BS);
	unsigned char part[300];
	fill_random(&seed, part, sizeof part);
	is_int(ts_write(ts, part, sizeof part, 3 * BS + 100), 0, "write part of a block whose copy waits");
	memcpy(ref + 3 * BS + 100, part, sizeof part);
	is_int(stats(ts).mirror_pending_bytes, 10 * BS, "still 10 copies queued");
	ok(device_equals(ts, ref, size), "reads see the trim and the partial write");
	tier_store_mirror_hold(ts, false);
	is_int(tier_store_ops.flush(ts), 0, "FLUSH");
	is_int(stats(ts).mirror_written_bytes, 10 * BS, "the mirror wrote each block once");
	ok(file_equals(path, ref, size), "and the file equals the device");
	tier_store_close(ts);
	free(ref);
}

static void test_targets(void)
{
	const uint64_t size = MIB(1);
	char path[300];
	disk_path(path, sizeof path, "targets");
	struct ram_pool *pool = pool_or_die(MIB(16));
	struct tier_store_config cfg = {.size = size, .disk_path = path, .ram_pool = pool, .tier_target_bytes = 10 * BS};
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	uint64_t seed = 4;
	put_blocks(ts, ref, &seed, 0, 30);
	struct tier_stats st = stats(ts);
	is_int(st.puts_total, 30, "30 puts");
	is_int(st.puts_succ, 10, "10 succeed: the target is 10 blocks");
	is_int(st.puts_total - st.puts_succ, st.disk_bytes / BS, "failed puts = blocks on the disk tier");
	is_int(st.tier_used_bytes, 10 * BS, "tier use is at the target");
	is_int(st.ram_bytes, 10 * BS, "in RAM");
	put_blocks(ts, ref, &seed, 0, 10);
	st = stats(ts);
	is_int(st.puts_succ, 20, "rewriting tier blocks succeeds (no new space)");
	is_int(st.tier_used_bytes, 10 * BS, "and takes no new space");
	put_blocks(ts, ref, &seed, 10, 20);
	st = stats(ts);
	is_int(st.puts_total - st.puts_succ, 40, "rewriting disk blocks with the tier full fails again");
	is_int(st.disk_bytes, 20 * BS, "they stay on disk");

	tier_store_set_target(ts, 5 * BS);
	st = stats(ts);
	is_int(st.tier_target_bytes, 5 * BS, "the target is lowered");
	is_int(st.tier_used_bytes, 10 * BS, "a lower target evicts nothing");
	ok(device_equals(ts, ref, size), "every block reads back");
	put_blocks(ts, ref, &seed, 40, 1);
	is_int(stats(ts).disk_bytes, 21 * BS, "above the target, a new block goes to disk");
	put_blocks(ts, ref, &seed, 0, 1);
	is_int(stats(ts).ram_bytes, 10 * BS, "above the target, a RAM block is still rewritten in RAM");

	is_int(tier_store_ops.trim(ts, 6 * BS, 0), 0, "trim 6 tier blocks");
	memset(ref, 0, 6 * BS);
	st = stats(ts);
	is_int(st.flushes, 6, "6 flushes");
	is_int(st.tier_used_bytes, 4 * BS, "the trim freed their tier space");
	struct ram_pool_stats ps;
	ram_pool_get_stats(pool, &ps);
	is_int(ps.used_bytes, 4 * BS, "and their RAM");
	uint64_t succ = st.puts_succ;
	put_blocks(ts, ref, &seed, 41, 2);
	st = stats(ts);
	is_int(st.puts_succ - succ, 1, "below the target again: one new put succeeds, the next fails");
	is_int(st.tier_used_bytes, 5 * BS, "tier use back at the target");
	is_int(tier_store_ops.write_zeroes(ts, BS, 41 * BS), 0, "zeroing a block");
	memset(ref + 41 * BS, 0, BS);
	is_int(stats(ts).flushes, 7, "is a flush too");
	is_int(tier_store_ops.trim(ts, 100, 20 * BS + 50), 0, "trimming part of a disk block");
	memset(ref + 20 * BS + 50, 0, 100);
	is_int(stats(ts).flushes, 7, "is not a flush: the block keeps its other bytes");

	static const unsigned char zeros[BS];
	uint64_t puts = stats(ts).puts_total;
	succ = stats(ts).puts_succ;
	is_int(ts_write(ts, zeros, BS, 7 * BS), 0, "writing zeros over a RAM block");
	memset(ref + 7 * BS, 0, BS);
	st = stats(ts);
	ok(st.puts_total == puts + 1 && st.puts_succ == succ + 1, "is a successful put");
	is_int(st.tier_used_bytes, 4 * BS, "that frees its tier space: zeros are stored nowhere");
	is_int(st.flushes, 7, "but is no flush");

	tier_store_set_target(ts, UINT64_MAX);
	put_blocks(ts, ref, &seed, 10, 20);
	st = stats(ts);
	is_int(st.disk_bytes, 2 * BS, "unlimited target: rewritten disk blocks move into RAM");
	ok(device_equals(ts, ref, size), "every block reads back");
	is_int(tier_store_ops.flush(ts), 0, "FLUSH");
	ok(disk_copy_equals(path, ref, size, stats(ts).ram_bytes),
	   "the disk file holds every block but the RAM ones (disk blocks that moved into RAM were punched out)");
	tier_store_close(ts);

	/* A full RAM pool (and no remote) makes puts fail whatever the target. */
	struct ram_pool *small = pool_or_die(8 * BS);
	cfg.ram_pool = small;
	cfg.tier_target_bytes = UINT64_MAX;
	ts = open_or_die(&cfg);
	memset(ref, 0, size);
	put_blocks(ts, ref, &seed, 0, 20);
	st = stats(ts);
	is_int(st.puts_succ, 8, "a pool of 8 blocks takes 8 puts");
	is_int(st.disk_bytes, 12 * BS, "the others go to disk");
	ok(device_equals(ts, ref, size), "every block reads back");
	tier_store_close(ts);
	ram_pool_free(small);
	ram_pool_free(pool);
	free(ref);
}

static void test_remote(struct provider *p, const char *label)
{
	const uint64_t size = MIB(8);
	char path[300];
	disk_path(path, sizeof path, "remote");
	struct ram_pool *pool = pool_or_die(32 * BS);
	const char *uris[] = {p->uri};
	struct tier_store_config cfg = {.size = size, .disk_path = path, .ram_pool = pool,
					.tier_target_bytes = UINT64_MAX, .remote_uris = uris, .remote_count = 1};
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	ok(random_ops(ts, ref, size, 8000, 5) == 0, "%s: RAM + remote, 8000 random operations match", label);
	ok(device_equals(ts, ref, size), "%s: the whole device matches", label);
	struct tier_stats st = stats(ts);
	is_int(st.ram_bytes, 32 * BS, "RAM is full");
	ok(st.remote_bytes > 100 * BS, "most blocks are remote (%llu KiB)", (unsigned long long)st.remote_bytes >> 10);
	is_int(st.puts_total, st.puts_succ, "every put succeeded");
	is_int(st.remotes_alive, 1, "one remote alive");
	is_int(st.ram_bytes + st.remote_bytes, st.tier_used_bytes, "tier use = RAM + remote");
	is_int(tier_store_ops.trim(ts, (uint32_t)size, 0), 0, "trim everything");
	memset(ref, 0, size);
	st = stats(ts);
	is_int(st.tier_used_bytes + st.remote_bytes + st.disk_bytes, 0, "nothing left anywhere");
	uint64_t seed = 6;
	put_blocks(ts, ref, &seed, 0, 200);
	is_int(stats(ts).remote_bytes, 168 * BS, "after the trim, new puts fill RAM, then the remote");
	is_int(tier_store_ops.flush(ts), 0, "FLUSH");
	ok(disk_copy_equals(path, ref, size, 32 * BS), "the disk file holds every block but the 32 RAM ones");
	tier_store_close(ts);
	ram_pool_free(pool);
	free(ref);
}

/* Remote space is allocated block by block: the first remote fills, then the next. */
static void test_two_remotes(void)
{
	struct provider a, b;
	if (!provider_start(&a, "small1", "64K") || !provider_start(&b, "small2", "128K"))
		bail("provider", "cannot start msrswap serve");
	const uint64_t size = MIB(1);
	char path[300];
	disk_path(path, sizeof path, "two");
	const char *uris[] = {a.uri, b.uri};
	struct tier_store_config cfg = {.size = size, .disk_path = path, .tier_target_bytes = UINT64_MAX,
					.remote_uris = uris, .remote_count = 2};
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	uint64_t seed = 11;
	put_blocks(ts, ref, &seed, 0, 60);
	struct tier_stats st = stats(ts);
	is_int(st.remote_capacity_bytes, 48 * BS, "remote capacity: 16 + 32 blocks");
	is_int(st.puts_succ, 48, "48 puts fit the two remotes");
	is_int(st.disk_bytes, 12 * BS, "the others go to disk");
	struct tier_remote_info info[2];
	tier_store_get_remotes(ts, info, 2);
	ok(info[0].used_bytes == 16 * BS && info[1].used_bytes == 32 * BS, "the first remote is full, then the second");
	is_int(tier_store_ops.trim(ts, BS, 5 * BS), 0, "trim a block of the first remote");
	memset(ref + 5 * BS, 0, BS);
	put_blocks(ts, ref, &seed, 70, 1);
	tier_store_get_remotes(ts, info, 2);
	is_int(info[0].used_bytes, 16 * BS, "its slot takes the next put");
	ok(device_equals(ts, ref, size), "every block reads back");
	tier_store_close(ts);
	provider_kill(&a, SIGTERM);
	provider_kill(&b, SIGTERM);
	free(ref);
}

static int dead_calls;
static char dead_uri[512], dead_reason[256];

static void on_dead(void *ctx, const char *uri, const char *reason)
{
	dead_calls++;
	snprintf(dead_uri, sizeof dead_uri, "%s", uri);
	snprintf(dead_reason, sizeof dead_reason, "%s", reason);
	printf("# remote dead: %s: %s\n", uri, reason);
}

static void test_failover(bool detect_by_write)
{
	const char *how = detect_by_write ? "found by a write" : "found by a read";
	const uint64_t size = MIB(4), nblocks = size / BS;
	struct provider p;
	if (!provider_start(&p, "failover", "8M"))
		bail("provider", "cannot start msrswap serve");
	char path[300];
	disk_path(path, sizeof path, "failover");
	struct ram_pool *pool = pool_or_die(16 * BS);
	const char *uris[] = {p.uri};
	struct tier_store_config cfg = {.size = size, .disk_path = path, .ram_pool = pool,
					.tier_target_bytes = UINT64_MAX, .remote_uris = uris, .remote_count = 1,
					.mirror_queue_blocks = 4096, .on_remote_dead = on_dead};
	dead_calls = 0;
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	uint64_t seed = 7;
	put_blocks(ts, ref, &seed, 0, nblocks);
	is_int(tier_store_ops.flush(ts), 0, "all blocks written and mirrored");
	struct tier_stats st = stats(ts);
	is_int(st.remote_bytes, (nblocks - 16) * BS, "all but 16 blocks are remote");
	/* Rewrite half the blocks with the mirror held: their new content is only
	 * in the tiers and the queue when the provider dies. */
	tier_store_mirror_hold(ts, true);
	for (uint64_t b = 0; b < nblocks; b += 2)
		put_blocks(ts, ref, &seed, b, 1);
	unsigned char partial[100];
	fill_random(&seed, partial, sizeof partial);
	ts_write(ts, partial, sizeof partial, 501 * BS + 3000);
	memcpy(ref + 501 * BS + 3000, partial, sizeof partial);
	ok(stats(ts).mirror_pending_bytes >= (nblocks / 2 - 16) * BS, "copies of the remote blocks are pending in the queue");

	provider_kill(&p, SIGKILL);
	if (detect_by_write) {
		/* remote blocks: the request's writes fail together, then one alone */
		is_int(put_run(ts, ref, &seed, 96, 64), 0, "a write request of 64 remote blocks fails over");
		put_blocks(ts, ref, &seed, 200, 1);
	}
	ok(device_equals(ts, ref, size), "%s: every block reads back after SIGKILL of the provider", how);
	st = stats(ts);
	is_int(st.remotes_dead, 1, "remotes_dead = 1");
	is_int(st.remotes_alive, 0, "no remote alive");
	is_int(st.failovers, 1, "failovers = 1");
	is_int(st.remote_bytes, 0, "no block counts as remote any more");
	is_int(st.failover_bytes, (nblocks - 16) * BS, "every remote block fell back to its copy");
	is_int(st.tier_used_bytes, 16 * BS, "tier use: the RAM blocks");
	is_int(st.disk_bytes, (nblocks - 16) * BS, "the others are disk blocks");
	is_int(dead_calls, 1, "the callback reported it once");
	like(dead_uri, "failover.sock", "with the remote's URI");
	ok(dead_reason[0] != 0, "and a reason");
	ok(st.mirror_pending_bytes > 0, "some of them were served from the queue");
	tier_store_mirror_hold(ts, false);
	is_int(tier_store_ops.flush(ts), 0, "FLUSH after the failover");
	ok(disk_copy_equals(path, ref, size, 16 * BS), "the disk file holds every block but the 16 RAM ones");

	/* Keep writing; then a new remote takes new puts. */
	put_blocks(ts, ref, &seed, 0, 64);
	is_int(stats(ts).remote_bytes, 0, "new puts skip the dead remote");
	struct provider q;
	if (!provider_start(&q, "failover2", "8M"))
		bail("provider", "cannot start msrswap serve");
	struct ms_err err = {0};
	is_int(tier_store_add_remote(ts, q.uri, &err), 0, "add a new remote at run time");
	put_blocks(ts, ref, &seed, 200, 300);
	st = stats(ts);
	is_int(st.remote_bytes, 300 * BS, "new puts go to the new remote");
	is_int(st.remotes_alive, 1, "one remote alive");
	is_int(st.remotes_dead, 1, "one dead");
	struct tier_remote_info info[4];
	is_int(tier_store_get_remotes(ts, info, 4), 2, "two remotes listed");
	ok(info[0].state == TIER_REMOTE_DEAD && info[1].state == TIER_REMOTE_ALIVE, "their states");
	ok(device_equals(ts, ref, size), "every block reads back");
	is_int(tier_store_ops.flush(ts), 0, "FLUSH");
	ok(disk_copy_equals(path, ref, size, 16 * BS), "the disk file holds every block but the 16 RAM ones");
	tier_store_close(ts);
	provider_kill(&q, SIGTERM);
	ram_pool_free(pool);
	free(ref);
}

static void test_release(void)
{
	const uint64_t size = MIB(2), nblocks = size / BS;
	struct provider p;
	if (!provider_start(&p, "release", "8M"))
		bail("provider", "cannot start msrswap serve");
	char path[300];
	disk_path(path, sizeof path, "release");
	const char *uris[] = {p.uri};
	struct tier_store_config cfg = {.size = size, .disk_path = path, .tier_target_bytes = UINT64_MAX,
					.remote_uris = uris, .remote_count = 1};
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	uint64_t seed = 8;
	put_blocks(ts, ref, &seed, 0, nblocks);
	is_int(stats(ts).remote_bytes, size, "every block is remote");
	struct tier_remote_info info;
	tier_store_get_remotes(ts, &info, 1);
	/* (wait_socket's probe may still count for a moment) */
	is_int(provider_connections_become(&p, (int)info.connections), (int)info.connections,
	       "the provider sees the store's connections");
	ok(info.connections >= 1, "(%u)", info.connections);
	struct ms_err err = {0};
	is_int(tier_store_release_remote(ts, 0, &err), 0, "release the remote");
	is_int(tier_store_release_remote(ts, 5, &err), -1, "releasing a remote that does not exist fails");
	is_int(tier_store_release_remote(ts, 0, &err), -1, "releasing it again fails");
	like(err.msg, "not in use", "it is not in use any more");
	struct tier_stats st = stats(ts);
	is_int(st.remotes_released, 1, "remotes_released = 1");
	is_int(st.failovers, 0, "a release is not a failover");
	is_int(st.remote_bytes, 0, "no block is remote");
	is_int(st.disk_bytes, size, "they are disk blocks");
	tier_store_get_remotes(ts, &info, 1);
	is_int(info.connections, 0, "the store closed its connections to the remote");
	is_int(provider_connections_become(&p, 0), 0, "the provider sees none any more");
	ok(device_equals(ts, ref, size), "every block reads back from the disk copy");
	provider_kill(&p, SIGKILL);
	ok(device_equals(ts, ref, size), "every block reads back once the provider is gone");
	tier_store_close(ts);
	free(ref);
}

/* A release needs a complete disk copy: while the disk file fails (its file
 * system is full), the remote holds the only copy of some blocks and stays. */
static void test_release_disk_failed(void)
{
	char dir[300], path[340];
	snprintf(dir, sizeof dir, "%s/small-fs", tmpdir);
	if (mkdir(dir, 0700) != 0 || mount("memshare-test", dir, "tmpfs", 0, "size=64k") != 0) {
		printf("# cannot mount a small tmpfs: %s\n", strerror(errno));
		skip("release while the disk file fails: cannot mount a small tmpfs (needs root)");
		rmdir(dir);
		return;
	}
	struct provider p;
	if (!provider_start(&p, "release-full", "4M"))
		bail("provider", "cannot start msrswap serve");
	const uint64_t size = MIB(1), nblocks = size / BS;
	snprintf(path, sizeof path, "%s/device.disk", dir);
	const char *uris[] = {p.uri};
	struct tier_store_config cfg = {.size = size, .disk_path = path, .tier_target_bytes = UINT64_MAX,
					.remote_uris = uris, .remote_count = 1};
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	uint64_t seed = 12;
	put_blocks(ts, ref, &seed, 0, nblocks);
	is_int(tier_store_ops.flush(ts), EIO, "FLUSH reports that the 64 KiB file system cannot hold the disk copy");
	ok(stats(ts).mirror_errors > 0, "mirror errors counted");
	struct ms_err err = {0};
	is_int(tier_store_release_remote(ts, 0, &err), -1, "releasing the remote is refused");
	like(err.msg, "incomplete", "the disk copy is incomplete");
	printf("# %s\n", err.msg);
	struct tier_stats st = stats(ts);
	ok(st.remotes_alive == 1 && st.remotes_released == 0, "the remote stays in use");
	is_int(st.remote_bytes, size, "with every block");
	struct tier_remote_info info;
	tier_store_get_remotes(ts, &info, 1);
	ok(info.connections >= 1, "and its connections");
	ok(device_equals(ts, ref, size), "every block reads back from the remote");
	tier_store_close(ts);
	provider_kill(&p, SIGTERM);
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	free(ref);
}

/* ---- concurrent use: each thread owns the blocks b % THREADS == t and keeps
 * its own reference; the threads share stripes, RAM, the remote, the mirror. */

#define THREADS 4
/* Each thread has its own chunks of CHUNK blocks (chunk number % THREADS):
 * its requests of several blocks stay in one; 24 blocks, so that the
 * threads' chunks share stripes and some wrap around the stripe numbers. */
#define CHUNK 24
static atomic_int progress; /* operations done by all workers */

struct worker {
	struct tier_store *ts;
	unsigned char *ref; /* the whole device: each thread touches only its chunks */
	uint64_t nblocks;
	int t, ops, bad;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t s = 1000 + (uint64_t)w->t;
	unsigned char *buf = malloc(CHUNK * BS);
	for (int i = 0; i < w->ops && !w->bad; i++) {
		uint64_t chunk = rnd(&s, w->nblocks / CHUNK / THREADS) * THREADS + (uint64_t)w->t;
		uint64_t b = chunk * CHUNK + rnd(&s, CHUNK);
		uint32_t at = 0, n = BS;
		if (rnd(&s, 4) == 0) {
			at = (uint32_t)rnd(&s, BS);
			n = (uint32_t)(1 + rnd(&s, BS - at));
		} else if (rnd(&s, 4) == 0) { /* a request of several blocks of the chunk */
			uint64_t count = 2 + rnd(&s, CHUNK - 1);
			b = chunk * CHUNK + rnd(&s, CHUNK - count + 1);
			n = (uint32_t)(count * BS);
		}
		uint64_t off = b * BS + at;
		int kind = (int)rnd(&s, 100);
		if (kind < 50) {
			fill_random(&s, buf, n);
			if (ts_write(w->ts, buf, n, off))
				w->bad = 1;
			memcpy(w->ref + off, buf, n);
		} else if (kind < 90) {
			if (ts_read(w->ts, buf, n, off) || memcmp(buf, w->ref + off, n)) {
				printf("#   thread %d: block %llu differs\n", w->t, (unsigned long long)b);
				w->bad = 1;
			}
		} else {
			if (tier_store_ops.trim(w->ts, n, off))
				w->bad = 1;
			memset(w->ref + off, 0, n);
		}
		if (i % 1000 == 0 && w->t == 0)
			tier_store_ops.flush(w->ts);
		atomic_fetch_add(&progress, 1);
	}
	free(buf);
	return NULL;
}

struct target_changer {
	struct tier_store *ts;
	atomic_int stop;
};

static void *target_main(void *arg)
{
	struct target_changer *c = arg;
	uint64_t s = 99;
	while (!atomic_load(&c->stop)) {
		tier_store_set_target(c->ts, rnd(&s, 3) == 0 ? UINT64_MAX : rnd(&s, 600) * BS);
		struct tier_stats st;
		tier_store_get_stats(c->ts, &st);
		usleep(1000);
	}
	return NULL;
}

/* p NULL: RAM and disk only; else p's export is a remote, and the provider is
 * killed midway, or (release) the remote released midway. */
static void test_concurrent(struct provider *p, bool release)
{
	const uint64_t size = MIB(4);
	char path[300];
	disk_path(path, sizeof path, "concurrent");
	struct ram_pool *pool = pool_or_die(64 * BS);
	const char *uris[] = {p ? p->uri : NULL};
	struct tier_store_config cfg = {.size = size, .disk_path = path, .ram_pool = pool, .tier_target_bytes = UINT64_MAX,
					.remote_uris = uris, .remote_count = p ? 1 : 0, .mirror_queue_blocks = 64};
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	struct worker w[THREADS];
	pthread_t tid[THREADS], changer;
	struct target_changer c = {.ts = ts};
	atomic_store(&progress, 0);
	pthread_create(&changer, NULL, target_main, &c);
	for (int t = 0; t < THREADS; t++) {
		w[t] = (struct worker){ts, ref, size / BS, t, stress_ops, 0};
		pthread_create(&tid[t], NULL, worker_main, &w[t]);
	}
	if (p) { /* kill the provider, or release it, in the middle of it all */
		while (atomic_load(&progress) < THREADS * stress_ops / 3)
			usleep(1000);
		if (release) {
			struct ms_err err = {0};
			is_int(tier_store_release_remote(ts, 0, &err), 0, "release the remote while 4 threads use it");
		} else {
			provider_kill(p, SIGKILL);
		}
		printf("# provider %s after %d operations\n", release ? "released" : "killed", atomic_load(&progress));
	}
	int bad = 0;
	for (int t = 0; t < THREADS; t++) {
		pthread_join(tid[t], NULL);
		bad += w[t].bad;
	}
	atomic_store(&c.stop, 1);
	pthread_join(changer, NULL);
	const char *label = !p ? "RAM and disk" : release ? "with the remote released midway" : "with the provider killed midway";
	ok(bad == 0, "%d threads x %d operations, %s: every read matched", THREADS, stress_ops, label);
	ok(device_equals(ts, ref, size), "%s: the whole device matches", label);
	struct tier_stats st = stats(ts);
	if (p) {
		is_int(release ? st.remotes_released : st.remotes_dead, 1, release ? "the remote is released" : "the remote is dead");
		is_int(st.remote_bytes, 0, "no block counts as remote");
		struct tier_remote_info info;
		tier_store_get_remotes(ts, &info, 1);
		is_int(info.connections, 0, "its connections are closed");
		if (release)
			is_int(provider_connections_become(p, 0), 0, "the provider sees none");
	}
	is_int(st.ram_bytes + st.remote_bytes, st.tier_used_bytes, "tier use = RAM + remote");
	is_int(tier_store_ops.flush(ts), 0, "FLUSH");
	ok(disk_copy_equals(path, ref, size, st.ram_bytes), "%s: the disk file holds every block but the RAM ones", label);
	tier_store_close(ts);
	ram_pool_free(pool);
	free(ref);
}

/* Interoperability: nbdkit's memory plugin as the remote. */
static void test_nbdkit(const char *nbdkit)
{
	struct provider p;
	snprintf(p.sock, sizeof p.sock, "%s/nbdkit.sock", tmpdir);
	p.ctl[0] = '\0';
	snprintf(p.uri, sizeof p.uri, "nbd+unix://?socket=%s", p.sock);
	char *argv[] = {(char *)nbdkit, "-f", "-U", p.sock, "memory", "16M", NULL};
	if (!provider_spawn(&p, argv)) {
		skip("nbdkit did not start");
		return;
	}
	test_remote(&p, "nbdkit memory");
	provider_kill(&p, SIGTERM);
}

/* A hung provider (SIGSTOP) fails like a dead one once a request times out. */
static void test_hung_provider(void)
{
	struct provider p;
	if (!provider_start(&p, "hung", "4M"))
		bail("provider", "cannot start msrswap serve");
	const uint64_t size = MIB(1);
	char path[300];
	disk_path(path, sizeof path, "hung");
	const char *uris[] = {p.uri};
	struct tier_store_config cfg = {.size = size, .disk_path = path, .tier_target_bytes = UINT64_MAX,
					.remote_uris = uris, .remote_count = 1, .remote_timeout_ms = 300};
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	uint64_t seed = 9;
	put_blocks(ts, ref, &seed, 0, 100);
	kill(p.pid, SIGSTOP);
	int status;
	waitpid(p.pid, &status, WUNTRACED); /* until it is stopped: a signal is delivered later */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	unsigned char buf[BS];
	is_int(ts_read(ts, buf, BS, 5 * BS), 0, "a read from a stopped provider succeeds");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	ok(memcmp(buf, ref + 5 * BS, BS) == 0, "from the disk copy");
	ok(waited >= 0.29 && waited < 3, "after the 300 ms timeout (%.3f s)", waited);
	is_int(stats(ts).remotes_dead, 1, "the remote is dead");
	struct tier_remote_info info;
	tier_store_get_remotes(ts, &info, 1);
	is_int(info.connections, 0, "its connections are closed");
	ok(device_equals(ts, ref, size), "every block reads back");
	kill(p.pid, SIGCONT);
	is_int(provider_connections_become(&p, 0), 0, "the provider, going on, sees no connection of ours");
	provider_kill(&p, SIGKILL);
	tier_store_close(ts);
	free(ref);
}

/* A tier store of SIZE on the remote URI, all blocks remote-eligible, its
 * disk copy DISK_NAME (its path into path[]). */
static struct tier_store *open_on_one_remote(const char *uri, const char *disk_name, uint64_t size, char *path,
					     size_t path_len)
{
	disk_path(path, path_len, disk_name);
	const char *uris[] = {uri};
	struct tier_store_config cfg = {.size = size, .disk_path = path, .tier_target_bytes = UINT64_MAX,
					.remote_uris = uris, .remote_count = 1, .on_remote_dead = on_dead};
	return open_or_die(&cfg);
}

/* nbdkit's error filter: a full provider (ENOSPC) is not a dead one; a
 * provider that answers EIO on a live connection is. */
static void test_provider_errors(const char *nbdkit)
{
	struct provider p;
	char full[300], broken[300], a1[340], a2[340];
	snprintf(full, sizeof full, "%s/full", tmpdir);
	snprintf(broken, sizeof broken, "%s/broken", tmpdir);
	snprintf(a1, sizeof a1, "error-pwrite-file=%s", full);
	snprintf(a2, sizeof a2, "error-pread-file=%s", broken);
	snprintf(p.sock, sizeof p.sock, "%s/errors.sock", tmpdir);
	snprintf(p.uri, sizeof p.uri, "nbd+unix://?socket=%s", p.sock);
	char *argv[] = {(char *)nbdkit, "-f", "-U", p.sock, "--filter=error", "memory", "1M",
			"error-pwrite=ENOSPC", "error-pwrite-rate=100%", a1,
			"error-pread=EIO", "error-pread-rate=100%", a2, NULL};
	if (!provider_spawn(&p, argv)) {
		skip("nbdkit with the error filter did not start");
		return;
	}
	const uint64_t size = MIB(1);
	char path[300];
	struct tier_store *ts = open_on_one_remote(p.uri, "errors", size, path, sizeof path);
	unsigned char *ref = calloc(1, size);
	uint64_t seed = 10;
	put_blocks(ts, ref, &seed, 0, 10);
	close(open(full, O_WRONLY | O_CREAT, 0600));
	put_blocks(ts, ref, &seed, 10, 10);
	struct tier_stats st = stats(ts);
	is_int(st.remote_bytes, 10 * BS, "a provider answering ENOSPC takes no new blocks");
	is_int(st.disk_bytes, 10 * BS, "they go to disk");
	is_int(st.remotes_alive, 1, "and stays alive");
	put_blocks(ts, ref, &seed, 3, 1);
	st = stats(ts);
	ok(st.remote_bytes == 9 * BS && st.disk_bytes == 11 * BS, "a rewrite refused with ENOSPC moves the block to disk");
	unlink(full);
	is_int(tier_store_ops.trim(ts, BS, 0), 0, "trim a remote block");
	memset(ref, 0, BS);
	put_blocks(ts, ref, &seed, 30, 2);
	is_int(stats(ts).remote_bytes, 10 * BS, "once we freed a block there, new puts use the provider again");
	ok(device_equals(ts, ref, size), "every block reads back");

	dead_calls = 0;
	close(open(broken, O_WRONLY | O_CREAT, 0600));
	ok(device_equals(ts, ref, size), "reads answered with EIO fail over to the disk copy");
	st = stats(ts);
	ok(st.remotes_dead == 1 && st.failovers == 1, "the remote is dead");
	is_int(dead_calls, 1, "reported once");
	like(dead_reason, "Input/output error", "with the provider's error");
	tier_store_close(ts);
	provider_kill(&p, SIGTERM);
	free(ref);
}

/* Blocks 0..n-1 written one request each, in reverse order: block b gets
 * slot n-1-b of a fresh remote, so a request rewriting them in block order
 * finds no two consecutive slots (one NBD command per block). */
static void put_reversed(struct tier_store *ts, unsigned char *ref, uint64_t *seed, uint64_t first, uint64_t n)
{
	for (uint64_t i = n; i-- > 0;)
		put_blocks(ts, ref, seed, first + i, 1);
}

static long read_number(const char *dir, const char *name)
{
	char path[400], text[32] = "";
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (f) {
		if (!fgets(text, sizeof text, f))
			text[0] = '\0';
		fclose(f);
	}
	return text[0] ? atol(text) : -1;
}

static void write_number(const char *dir, const char *name, long value)
{
	char path[400];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (f) {
		fprintf(f, "%ld\n", value);
		fclose(f);
	}
}

/* An nbdkit sh plugin that counts the write commands it gets and the most
 * in flight at once, and holds each write until `want` were in flight at
 * once (at most 10 s): a client that waits for each reply before it sends
 * the next never gets beyond one. */
static const char counting_plugin[] =
	"#!/bin/sh\n"
	"d=%s\n"
	"case \"$1\" in\n"
	"get_size) echo 1M ;;\n"
	"thread_model) echo parallel ;;\n"
	"can_write) exit 0 ;;\n"
	"can_trim|can_flush|can_multi_conn) exit 3 ;;\n"
	"pread) dd if=$d/disk iflag=skip_bytes,count_bytes skip=$4 count=$3 status=none ;;\n"
	"pwrite)\n"
	"  ( flock 9; n=$(($(cat $d/inflight) + 1)); echo $n >$d/inflight\n"
	"    [ $n -gt $(cat $d/max) ] && echo $n >$d/max; echo $(($(cat $d/writes) + 1)) >$d/writes ) 9>$d/lock\n"
	"  i=0; while [ $(cat $d/max) -lt $(cat $d/want) ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done\n"
	"  dd of=$d/disk oflag=seek_bytes conv=notrunc seek=$4 status=none\n"
	"  ( flock 9; echo $(($(cat $d/inflight) - 1)) >$d/inflight ) 9>$d/lock ;;\n"
	"*) exit 2 ;;\n"
	"esac\n";

/* The NBD commands a write request sends, as the provider sees them: one
 * per run of consecutive remote slots, all sent before any reply is waited
 * for (before: one per block, each after the previous one's reply). */
static void test_pipelined_writes(const char *nbdkit)
{
	char dir[300], script[340], disk[340];
	snprintf(dir, sizeof dir, "%s/counting", tmpdir);
	snprintf(script, sizeof script, "%s/plugin.sh", tmpdir);
	snprintf(disk, sizeof disk, "%s/disk", dir);
	mkdir(dir, 0700);
	FILE *f = fopen(script, "w");
	if (!f || fprintf(f, counting_plugin, dir) < 0 || fclose(f) != 0 || chmod(script, 0700) != 0 ||
	    close(open(disk, O_WRONLY | O_CREAT | O_TRUNC, 0600)) != 0 || truncate(disk, MIB(1)) != 0)
		bail("counting plugin", strerror(errno));
	write_number(dir, "inflight", 0);
	write_number(dir, "max", 0);
	write_number(dir, "writes", 0);
	write_number(dir, "want", 1);
	struct provider p;
	snprintf(p.sock, sizeof p.sock, "%s/counting.sock", tmpdir);
	snprintf(p.uri, sizeof p.uri, "nbd+unix://?socket=%s", p.sock);
	char *argv[] = {(char *)nbdkit, "-f", "-U", p.sock, "sh", script, NULL};
	if (!provider_spawn(&p, argv)) {
		skip("pipelined writes: nbdkit's sh plugin did not start");
		return;
	}
	const uint64_t size = MIB(1);
	char path[300];
	disk_path(path, sizeof path, "pipelined");
	const char *uris[] = {p.uri};
	/* the plugin may hold a write 10 s: no remote timeout before that */
	struct tier_store_config cfg = {.size = size, .disk_path = path, .tier_target_bytes = UINT64_MAX,
					.remote_uris = uris, .remote_count = 1, .remote_timeout_ms = 60000};
	struct tier_store *ts = open_or_die(&cfg);
	unsigned char *ref = calloc(1, size);
	uint64_t seed = 12;
	is_int(put_run(ts, ref, &seed, 0, 32), 0, "a write request of 32 new blocks");
	is_int(read_number(dir, "writes"), 1, "goes to consecutive slots in one NBD command (before: 32)");
	put_reversed(ts, ref, &seed, 64, 8);
	write_number(dir, "writes", 0);
	write_number(dir, "max", 0);
	write_number(dir, "want", 4);
	is_int(put_run(ts, ref, &seed, 64, 8), 0, "a write request rewriting 8 blocks of scattered slots");
	is_int(read_number(dir, "writes"), 8, "is 8 NBD commands");
	long most = read_number(dir, "max");
	ok(most >= 4, "sent before any reply is waited for: the provider had %ld in flight at once (before: 1)", most);
	write_number(dir, "want", 1);
	is_int(tier_store_ops.trim(ts, 32 * BS, 0), 0, "trim the first 32 blocks: their slots are free again");
	memset(ref, 0, 32 * BS);
	write_number(dir, "writes", 0);
	is_int(put_run(ts, ref, &seed, 128, 32), 0, "a write request of 32 new blocks");
	is_int(read_number(dir, "writes"), 1, "takes the freed slots in order: one NBD command (before: 32)");
	struct tier_stats st = stats(ts);
	is_int(st.remote_bytes, 40 * BS, "every block is remote");
	is_int(st.remotes_alive, 1, "the remote stayed alive");
	ok(device_equals(ts, ref, size), "every block reads back");
	tier_store_close(ts);
	provider_kill(&p, SIGTERM);
	free(ref);
}

/* A remote that fails in the middle of a request: nbdkit's error filter
 * answers EIO to about half the request's commands; the others succeed.
 * Nothing is lost: every block is on the disk copy. */
static void test_failover_mid_request(const char *nbdkit)
{
	struct provider p;
	char trigger[300], a1[340];
	snprintf(trigger, sizeof trigger, "%s/fail-writes", tmpdir);
	snprintf(a1, sizeof a1, "error-pwrite-file=%s", trigger);
	snprintf(p.sock, sizeof p.sock, "%s/midway.sock", tmpdir);
	snprintf(p.uri, sizeof p.uri, "nbd+unix://?socket=%s", p.sock);
	char *argv[] = {(char *)nbdkit, "-f", "-U", p.sock, "--filter=error", "memory", "1M",
			"error-pwrite=EIO", "error-pwrite-rate=50%", a1, NULL};
	if (!provider_spawn(&p, argv)) {
		skip("a remote failing mid-request: nbdkit with the error filter did not start");
		return;
	}
	const uint64_t size = MIB(1);
	char path[300];
	struct tier_store *ts = open_on_one_remote(p.uri, "midway", size, path, sizeof path);
	unsigned char *ref = calloc(1, size);
	uint64_t seed = 13;
	put_reversed(ts, ref, &seed, 0, 64);
	put_run(ts, ref, &seed, 100, 20);
	is_int(stats(ts).remote_bytes, 84 * BS, "84 remote blocks");
	dead_calls = 0;
	close(open(trigger, O_WRONLY | O_CREAT, 0600));
	is_int(put_run(ts, ref, &seed, 0, 128), 0, "a write request of 128 blocks while the remote fails half its writes");
	struct tier_stats st = stats(ts);
	ok(st.remotes_dead == 1 && st.failovers == 1, "the remote is dead");
	is_int(dead_calls, 1, "reported once");
	is_int(st.remote_bytes, 0, "no block counts as remote");
	is_int(st.disk_bytes, 128 * BS, "the request's blocks are disk blocks");
	ok(device_equals(ts, ref, size), "every block reads back");
	is_int(tier_store_ops.flush(ts), 0, "FLUSH");
	ok(file_equals(path, ref, size), "the disk file holds the whole device");
	tier_store_close(ts);
	provider_kill(&p, SIGTERM);
	free(ref);
}

/* The same tests with fabric:// remotes: one-sided RDMA over tcp;ofi_rxm,
 * the keys fetched over the provider's unix socket. */
static void test_fabric_remotes(void)
{
	if (!fabric_built_in()) {
		skip("fabric remotes: built without libfabric");
		return;
	}
	fabric_remotes = true;
	struct provider p;
	if (!provider_start(&p, "fabric", "32M"))
		bail("provider", "cannot start msrswap serve --fabric");
	test_remote(&p, "msrswap serve --fabric (fabric+unix://)");
	provider_kill(&p, SIGTERM);
	test_failover(false);
	test_failover(true);
	test_hung_provider();
	if (!provider_start(&p, "fabric-stress", "32M"))
		bail("provider", "cannot start msrswap serve --fabric");
	test_concurrent(&p, false);
	if (!provider_start(&p, "fabric-stress-release", "32M"))
		bail("provider", "cannot start msrswap serve --fabric");
	test_concurrent(&p, true);
	provider_kill(&p, SIGTERM);
	fabric_remotes = false;
}

static void cleanup(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	char path[600];
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(tmpdir);
}

int main(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_tier_store.XXXXXX");
	if (!mkdtemp(tmpdir))
		bail("mkdtemp", strerror(errno));
	atexit(cleanup);
	const char *env = getenv("TIER_STORE_STRESS_OPS");
	if (env && atoi(env) > 0)
		stress_ops = atoi(env);
	const char *bin = getenv("MEMSHARE_BIN");
	snprintf(msrswap_bin, sizeof msrswap_bin, "%s/msrswap", bin ? bin : "bin");

	test_config();
	test_ram_only();
	test_disk_only();
	test_ram_blocks_have_no_disk_copy();
	test_mirror_coalesces_rewrites();
	test_targets();
	test_concurrent(NULL, false);
	if (access(msrswap_bin, X_OK) != 0) {
		skip("RAM + remote: bin/msrswap is not built");
		skip("two remotes: bin/msrswap is not built");
		skip("failover: bin/msrswap is not built");
		skip("release: bin/msrswap is not built");
		skip("release while the disk file fails: bin/msrswap is not built");
		skip("hung provider: bin/msrswap is not built");
		skip("concurrent use with a provider killed: bin/msrswap is not built");
		skip("concurrent use with a remote released: bin/msrswap is not built");
	} else {
		struct provider p;
		if (!provider_start(&p, "remote", "32M"))
			bail("provider", "cannot start msrswap serve");
		test_remote(&p, "msrswap serve");
		provider_kill(&p, SIGTERM);
		test_two_remotes();
		test_failover(false);
		test_failover(true);
		test_release();
		test_release_disk_failed();
		test_hung_provider();
		if (!provider_start(&p, "stress", "32M"))
			bail("provider", "cannot start msrswap serve");
		test_concurrent(&p, false);
		if (!provider_start(&p, "stress-release", "32M"))
			bail("provider", "cannot start msrswap serve");
		test_concurrent(&p, true);
		provider_kill(&p, SIGTERM);
		test_fabric_remotes();
	}
	const char *nbdkit = access("/usr/sbin/nbdkit", X_OK) == 0 ? "/usr/sbin/nbdkit" : "/usr/bin/nbdkit";
	if (access(nbdkit, X_OK) == 0) {
		test_nbdkit(nbdkit);
		test_provider_errors(nbdkit);
		test_pipelined_writes(nbdkit);
		test_failover_mid_request(nbdkit);
	} else {
		skip("nbdkit memory as a remote: nbdkit is not installed");
		skip("provider errors (nbdkit error filter): nbdkit is not installed");
		skip("pipelined writes (nbdkit sh plugin): nbdkit is not installed");
		skip("a remote failing mid-request (nbdkit error filter): nbdkit is not installed");
	}
	return done_testing();
}
