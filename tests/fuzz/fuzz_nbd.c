/* libFuzzer target: the NBD handshake and request parser face any client
 * on the network.  The input is one mode byte, then what a client sends;
 * replies are discarded.  A small in-memory export stands behind it.
 * Mode bit 0: the server requires TLS (FORCEDTLS); the TLS layer is a stand-in
 * that passes bytes through, so the fuzzer reaches the options and requests
 * after STARTTLS; bit 1: that stand-in's handshake fails.  Bits 2-3: the
 * stream hands out at most 1, 5 or 100 bytes a read (0: all it has), as a
 * socket may.  Bit 4: busy polling between requests.  Bit 5: the export
 * has no extent operation (block status reports it all as data).  The
 * export's extents are its 4 KiB blocks, all-zero ones holes, so structured
 * reads (data and hole chunks) and block status replies both occur.
 * `make fuzz` runs it. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nbd_server.h"

#define EXPORT_SIZE (1u << 20)
static unsigned char disk[EXPORT_SIZE];

static int mem_read(void *self, void *buf, uint32_t len, uint64_t off) { memcpy(buf, disk + off, len); return 0; }
static int mem_write(void *self, const void *buf, uint32_t len, uint64_t off) { memcpy(disk + off, buf, len); return 0; }
static int mem_flush(void *self) { return 0; }
static int mem_trim(void *self, uint32_t len, uint64_t off) { memset(disk + off, 0, len); return 0; }
static bool block_is_zero(uint64_t block)
{
	static const unsigned char zeros[4096];
	return memcmp(disk + block * 4096, zeros, 4096) == 0;
}

static int mem_extent(void *self, uint32_t len, uint64_t off, uint32_t *extent_len, bool *data)
{
	if (off > EXPORT_SIZE || len > EXPORT_SIZE - off || len == 0)
		abort(); /* the engine checks bounds before asking */
	bool hole = block_is_zero(off / 4096);
	uint64_t next = (off / 4096 + 1) * 4096, end = off + len;
	while (next < end && block_is_zero(next / 4096) == hole)
		next += 4096;
	*extent_len = (uint32_t)((next < end ? next : end) - off);
	*data = !hole;
	return 0;
}

static const struct backend_ops mem_ops = {mem_read, mem_write, mem_flush, mem_trim, mem_trim, mem_extent};
static const struct backend_ops mem_ops_no_extent = {mem_read, mem_write, mem_flush, mem_trim, mem_trim, NULL};
static struct nbd_export export = {.name = "slab", .description = "fuzz", .size = EXPORT_SIZE, .ops = &mem_ops};

static struct nbd_export *acquire(void *ctx, const char *name)
{
	return !*name || strcmp(name, "slab") == 0 ? &export : NULL;
}
static void release(void *ctx, struct nbd_export *e) {}
static int for_each(void *ctx, int (*fn)(void *, const struct nbd_export *), void *arg) { return fn(arg, &export); }

struct input {
	const uint8_t *data;
	size_t size, pos;
	size_t chunk;     /* largest read; 0: no limit */
	bool tls_fails;   /* the stand-in handshake fails */
	bool tls_started;
};

static ssize_t in_read(void *ctx, void *buf, size_t len)
{
	struct input *in = ctx;
	size_t n = in->size - in->pos < len ? in->size - in->pos : len;
	if (in->chunk && n > in->chunk)
		n = in->chunk;
	memcpy(buf, in->data + in->pos, n);
	in->pos += n;
	return (ssize_t)n;
}

static ssize_t discard_writev(void *ctx, const struct iovec *iov, int count)
{
	ssize_t total = 0;
	for (int i = 0; i < count; i++)
		total += (ssize_t)iov[i].iov_len;
	return total;
}

static int fake_starttls(void *ctx, struct ms_err *err)
{
	struct input *in = ctx;
	if (in->tls_started)
		abort(); /* the engine must never start TLS twice */
	in->tls_started = true;
	return in->tls_fails ? ms_fail(err, "TLS handshake failed: stand-in") : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[4] = {0, 1, 5, 100};
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	struct input in = {data + 1, size - 1, 0, chunks[(mode >> 2) & 3], mode & 2, false};
	struct nbd_io io = {.read = in_read, .writev = discard_writev, .ctx = &in};
	if (mode & 1)
		io.starttls = fake_starttls;
	struct export_source src = {.acquire = acquire, .release = release, .for_each = for_each};
	struct nbd_server_options opt = {.max_payload = 65536}; /* a smaller buffer: more runs per second */
	if (mode & 16) {
		io.read_nowait = in_read; /* never "nothing yet": the poll ends at once */
		opt.busy_poll_ns = 1000;
	}
	export.ops = mode & 32 ? &mem_ops_no_extent : &mem_ops;
	struct ms_err err;
	nbd_serve(&io, &src, &opt, &err);
	return 0;
}
