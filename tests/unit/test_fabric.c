/* The fabric module of msrswap (fabric.c) over `tcp;ofi_rxm` on loopback:
 * a provider in a child process registers a region; the client's random
 * 4 KiB and unaligned reads and writes are checked byte for byte against a
 * reference copy; a stopped provider (SIGSTOP) makes an operation time out
 * within its deadline, the connection is then broken until a reconnect,
 * after which the data is all there; a deregistered region (revocation)
 * refuses the old key; a provider killed with SIGKILL fails the next
 * operation within the deadline; an unknown provider's error names what
 * fi_getinfo offers.  Skipped when built without libfabric. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fabric.h"
#include "rng.h"
#include "tap.h"
#include "units.h"

#define REGION (16u << 20)
#define TIMEOUT_MS 1500

static volatile sig_atomic_t revoke_asked;
static void on_usr1(int sig) { revoke_asked = 1; }

/* The provider: register, send the descriptor, deregister on SIGUSR1 (and say so). */
static void provider_main(int to_parent)
{
	struct ms_err err = {0};
	struct fabric_server *fs;
	struct fabric_region *region;
	void *mem = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	signal(SIGUSR1, on_usr1);
	if (mem == MAP_FAILED || fabric_server_open(FABRIC_DEFAULT_PROVIDER, "127.0.0.1", false, &fs, &err) < 0 ||
	    fabric_register(fs, mem, REGION, &region, &err) < 0) {
		dprintf(to_parent, "ERROR %s\n", err.msg);
		_exit(1);
	}
	dprintf(to_parent, "%s\n", fabric_region_descriptor(region));
	while (!revoke_asked)
		pause();
	fabric_deregister(region);
	dprintf(to_parent, "revoked\n");
	for (;;)
		pause();
}

static pid_t start_provider(char *descriptor, size_t len, int *from_child)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		provider_main(p[1]);
	}
	close(p[1]);
	*from_child = p[0];
	ssize_t n = 0, got;
	while ((size_t)n < len - 1 && (got = read(p[0], descriptor + n, len - 1 - (size_t)n)) > 0) {
		n += got;
		if (memchr(descriptor, '\n', (size_t)n))
			break;
	}
	descriptor[n > 0 ? n - 1 : 0] = '\0';
	return pid;
}

static int random_ops(struct fabric_client *fc, unsigned char *ref, struct rng *rng, int count)
{
	static unsigned char buf[3 * 4096];
	int bad = 0;
	for (int i = 0; i < count && !bad; i++) {
		bool aligned = rng_u64(rng) % 2;
		size_t len = aligned ? 4096 : 1 + rng_u64(rng) % sizeof buf;
		uint64_t off = aligned ? (rng_u64(rng) % (REGION / 4096)) * 4096 : rng_u64(rng) % (REGION - len);
		char why[200] = "";
		if (rng_u64(rng) % 2) {
			for (size_t k = 0; k < len; k++)
				buf[k] = (unsigned char)rng_u64(rng);
			if (fabric_write(fc, buf, len, off, why, sizeof why))
				return ok(0, "write %zu at %llu: %s", len, (unsigned long long)off, why), 1;
			memcpy(ref + off, buf, len);
		} else {
			if (fabric_read(fc, buf, len, off, why, sizeof why))
				return ok(0, "read %zu at %llu: %s", len, (unsigned long long)off, why), 1;
			bad = memcmp(buf, ref + off, len) != 0;
		}
	}
	return bad;
}

static bool whole_region_matches(struct fabric_client *fc, const unsigned char *ref)
{
	static unsigned char buf[1 << 20];
	for (uint64_t off = 0; off < REGION; off += sizeof buf)
		if (fabric_read(fc, buf, sizeof buf, off, NULL, 0) || memcmp(buf, ref + off, sizeof buf))
			return false;
	return true;
}

int main(void)
{
	if (!fabric_built_in()) {
		skip("built without libfabric");
		return done_testing();
	}
	struct ms_err err = {0};
	struct fabric_server *none;
	ok(fabric_server_open("no-such-provider", "127.0.0.1", false, &none, &err) < 0, "an unknown provider is refused");
	like(err.msg, "tcp;ofi_rxm", "its error names the providers fi_getinfo offers");

	char descriptor[FABRIC_DESCRIPTOR_MAX + 1];
	int from_child = -1;
	pid_t pid = start_provider(descriptor, sizeof descriptor, &from_child);
	if (!ok(pid > 0 && strncmp(descriptor, "ERROR", 5) != 0, "provider registered a region: %s", descriptor))
		return done_testing();
	struct fabric_client *fc;
	err.msg[0] = '\0';
	if (!ok(fabric_client_open(descriptor, NULL, TIMEOUT_MS, &fc, &err) == 0, "client connects: %s", err.msg))
		return done_testing();
	is_int((long long)fabric_client_size(fc), REGION, "the region's size comes with the descriptor");

	unsigned char *ref = calloc(1, REGION);
	struct rng rng;
	rng_seed(&rng, 14);
	ok(random_ops(fc, ref, &rng, 20000) == 0, "20000 random 4 KiB and unaligned reads/writes: data exact");
	char why[200] = "";
	unsigned char small[16];
	is_int(fabric_read(fc, small, sizeof small, REGION - 8, why, sizeof why), EINVAL, "a read past the end: EINVAL");

	/* a stopped provider answers nothing: our deadline ends the operation */
	kill(pid, SIGSTOP);
	int status;
	waitpid(pid, &status, WUNTRACED); /* until it is stopped: a signal is delivered later */
	why[0] = '\0';
	uint64_t t0 = monotonic_ns();
	int rc = fabric_read(fc, small, sizeof small, 0, why, sizeof why);
	uint64_t took_ms = (monotonic_ns() - t0) / 1000000;
	ok(rc == ETIMEDOUT && took_ms >= TIMEOUT_MS && took_ms < TIMEOUT_MS + 2000,
	   "stopped provider: ETIMEDOUT after %llu ms (deadline %d): %s", (unsigned long long)took_ms, TIMEOUT_MS, why);
	ok(fabric_client_broken(fc) && fabric_read(fc, small, sizeof small, 0, why, sizeof why) == EIO,
	   "the connection is broken until a reconnect");
	kill(pid, SIGCONT);
	err.msg[0] = '\0';
	ok(fabric_client_reconnect(fc, &err) == 0, "reconnect after SIGCONT: %s", err.msg);
	ok(whole_region_matches(fc, ref), "after the reconnect the region holds every byte written");
	ok(random_ops(fc, ref, &rng, 2000) == 0, "2000 more random operations: data exact");

	/* revocation: the provider deregisters, the key is refused */
	char line[64] = "";
	kill(pid, SIGUSR1);
	ssize_t n = read(from_child, line, sizeof line - 1);
	line[n > 0 ? n : 0] = '\0';
	like(line, "revoked", "the provider deregistered the region");
	rc = fabric_write(fc, small, sizeof small, 0, why, sizeof why);
	ok(rc == EIO || rc == ETIMEDOUT, "a write with a revoked key fails (%d: %s)", rc, why);

	/* a killed provider: the next operation fails within the deadline */
	ok(fabric_client_reconnect(fc, &err) == 0, "reconnect: %s", err.msg);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	t0 = monotonic_ns();
	rc = fabric_read(fc, small, sizeof small, 0, why, sizeof why);
	took_ms = (monotonic_ns() - t0) / 1000000;
	ok((rc == EIO || rc == ETIMEDOUT) && took_ms < TIMEOUT_MS + 2000, "killed provider: %d after %llu ms: %s", rc,
	   (unsigned long long)took_ms, why);
	fabric_client_close(fc);
	free(ref);
	return done_testing();
}
