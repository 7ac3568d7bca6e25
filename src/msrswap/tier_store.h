/* The tier store: the block device a protected VM swaps on (the consumer side
 * of msrswap).  It is the Tmem of DESIGN.md: every 4 KiB block of the device
 * lives in one of three tiers,
 *
 *   1. host-local RAM: a ram_export of a ram_pool shared by every device of
 *      the host (store_ram.h);
 *   2. remote exports of one or more providers (`msrswap serve`, nbdkit,
 *      qemu-nbd...), reached over NBD with libnbd, or (fabric://,
 *      fabric+unix:// URIs, a provider running `serve --fabric`) by
 *      one-sided RDMA through libfabric (fabric.h), the export's key fetched
 *      over NBD first;
 *   3. a local disk file.
 *
 * SmarTmem Algorithm 1: writing a block is a *put*.  A put of a block that is
 * not in RAM or remote memory succeeds when the device's tier use (RAM +
 * remote blocks) is below its target and RAM, else an alive remote, has
 * room; otherwise it fails and the block goes to the disk file.  A block
 * already in RAM or remote memory stays there when rewritten (a successful
 * put that takes no new space).  Reading a block is a *get*.  Trimming or
 * zeroing a whole block is a *flush*: the block leaves its tier and reads as
 * zeros.  A lowered target evicts nothing: the device just gets no new tier
 * blocks until it is below it.  A block written with zeros is stored nowhere
 * (as in the RAM store): a successful put that frees the block's space.
 *
 * Disk mirror (SEEDS §1): the disk file holds every block that lives
 * outside this host's RAM, so that a remote's failure or release loses
 * nothing.  The rule of what is acknowledged before it reaches the file: a
 * write completes once its content is in this host's RAM (the RAM pool, or
 * the mirror queue) and, for a remote block, on the remote; the remote
 * blocks of one write request are sent together (one NBD write per run of
 * consecutive remote slots) before any reply is waited for.  A block held by
 * the RAM pool gets no disk copy at all (its place in the file is a hole):
 * host RAM is where swap lives anyway, and a host crash loses swap whatever
 * the file holds; copying it would only make sustained swap-outs wait for
 * the disk.  Every other write (remote and disk-tier blocks) is copied into
 * a bounded queue that one background thread writes to the disk file; a
 * trim punches the block out of the file the same way.  A rewrite of a block
 * whose copy still waits replaces that copy (swap rewrites slots in place);
 * a full queue makes writers wait.  FLUSH waits until the queue is drained,
 * so the file then holds the device's content but for its RAM blocks.  A
 * read of a block whose copy is still queued is served from the queue.
 *
 * Failover: an I/O error, a closed connection or a request that exceeds the
 * timeout on a remote marks it dead for good: its blocks are served from the
 * disk copy (or the queue) and count as disk blocks from then on; new puts
 * skip it, and its connections are closed.  The `on_remote_dead` callback
 * reports it once.  Nothing is lost as long as the disk file can be written.
 *
 * Operations (tier_store_ops, `self` = the struct tier_store) return 0 or a
 * positive errno: EINVAL for a range outside the device, EIO when the disk
 * file failed (the mirror error is sticky: FLUSH reports it from then on).
 * They may be called from several threads at once; each 4 KiB block is read
 * and written atomically. */
#ifndef MSRSWAP_TIER_STORE_H
#define MSRSWAP_TIER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "error.h"
#include "store_ram.h"

#define TIER_BLOCK_SIZE 4096u
#define TIER_MAX_REMOTES 256
#define TIER_MIRROR_QUEUE_DEFAULT 1024     /* blocks (4 MiB) */
#define TIER_MIRROR_QUEUE_MAX 65535
#define TIER_REMOTE_TIMEOUT_DEFAULT_MS 10000

struct tier_store;

struct tier_store_config {
	uint64_t size;              /* device bytes, a positive multiple of 4096 */
	const char *disk_path;      /* created if missing; its old content is discarded; removed on close */
	struct ram_pool *ram_pool;  /* NULL: no RAM tier; must outlive the store */
	uint64_t tier_target_bytes; /* RAM + remote bytes allowed; UINT64_MAX: unlimited */
	const char **remote_uris;   /* NBD or fabric URIs, connected at open (a failure is an error) */
	size_t remote_count;
	/* Optional (0 / NULL: the default) */
	unsigned mirror_queue_blocks;  /* TIER_MIRROR_QUEUE_DEFAULT; at most TIER_MIRROR_QUEUE_MAX */
	unsigned remote_connections;   /* per remote, when it allows multi-conn; default 2 */
	unsigned remote_timeout_ms;    /* per request; TIER_REMOTE_TIMEOUT_DEFAULT_MS */
	bool sync_on_flush;            /* fdatasync the disk file on FLUSH (swap needs no durability) */
	/* Called once per remote that fails, with no lock of the store held, from
	 * the thread whose operation (or tier_store_get_stats) found the failure:
	 * an NBD connection thread as well as the caller's.  It must not call
	 * back into the store. */
	void (*on_remote_dead)(void *ctx, const char *uri, const char *reason);
	void *callback_ctx;
};

struct tier_stats {
	uint64_t size_bytes;
	/* Tmem accounting, in blocks (every whole or partial block counts once) */
	uint64_t puts_total, puts_succ; /* puts_total - puts_succ: blocks written to the disk tier */
	uint64_t gets, gets_succ;       /* gets_succ: served from RAM or a remote */
	uint64_t flushes;               /* blocks that left RAM or a remote by trim or zeroing */
	uint64_t tier_used_bytes, tier_target_bytes; /* target UINT64_MAX: unlimited */
	/* where the written blocks are now (trimmed and never-written blocks: nowhere) */
	uint64_t ram_bytes, remote_bytes, disk_bytes;
	uint64_t remote_capacity_bytes; /* of the alive remotes */
	/* the disk mirror */
	uint64_t mirror_pending_bytes, mirror_written_bytes;
	uint64_t mirror_errors; /* blocks the disk file refused (then reads of disk blocks and FLUSH give EIO) */
	uint64_t mirror_waits, mirror_wait_ns; /* block writes that waited for room in the queue, and for how long */
	uint64_t mirror_queued_bytes;    /* copies that took a queue entry */
	uint64_t mirror_coalesced_bytes; /* copies that replaced the block's copy still waiting in the queue */
	/* remotes */
	uint32_t remotes_alive, remotes_dead, remotes_released;
	uint64_t failovers;      /* remotes that died */
	uint64_t failover_bytes; /* blocks that fell back to the disk copy because their remote died */
	/* requests (whole read/write calls) and their summed service time: mean = ns / count */
	uint64_t read_requests, write_requests, read_ns, write_ns;
};

enum tier_remote_state { TIER_REMOTE_ALIVE, TIER_REMOTE_DEAD, TIER_REMOTE_RELEASED };

struct tier_remote_info {
	char uri[512];
	enum tier_remote_state state;
	uint64_t size_bytes, used_bytes; /* used: blocks of this device stored there now */
	unsigned connections; /* open now: 0 once the remote has left ALIVE */
};

int tier_store_open(const struct tier_store_config *cfg, struct tier_store **out, struct ms_err *err);
/* Drains the mirror, then frees everything and removes the disk file.  No
 * operation may be running or start afterwards. */
void tier_store_close(struct tier_store *ts);

extern const struct backend_ops tier_store_ops;

/* New target for tier use (RAM + remote), bytes rounded down to blocks;
 * UINT64_MAX: unlimited.  Takes effect for the next put. */
void tier_store_set_target(struct tier_store *ts, uint64_t bytes);

/* Connect one more remote export; new puts may use it at once.  Its index
 * (for tier_store_release_remote) is the number of remotes added before it. */
int tier_store_add_remote(struct tier_store *ts, const char *uri, struct ms_err *err);

/* Stop using remote `index` (the provider wants its memory back, GMC
 * reclaim): its blocks are served from the disk copy from now on, as after a
 * failure but without counting one.  It first waits until the mirror has
 * written every queued copy to the disk file (a held mirror makes it wait),
 * and fails, keeping the remote in use, if the file has failed: the remote
 * may hold the only copy of some blocks.  Before it returns, the remote's
 * connections are closed: the provider may drop the export and its memory. */
int tier_store_release_remote(struct tier_store *ts, size_t index, struct ms_err *err);

void tier_store_get_stats(struct tier_store *ts, struct tier_stats *out);
/* Is uri one of the alive remotes?  1 with its index, else 0. */
int tier_store_find_alive_remote(struct tier_store *ts, const char *uri, size_t *index);
/* Fills up to `max` entries; returns the number of remotes. */
size_t tier_store_get_remotes(struct tier_store *ts, struct tier_remote_info *out, size_t max);

/* Hold (true) or let go (false) of the disk mirror: while held, copies only
 * accumulate in the queue; once it is full, writers wait, and FLUSH waits
 * too.  For tests that need copies still queued, and for measuring the store
 * without its mirror. */
void tier_store_mirror_hold(struct tier_store *ts, bool hold);

#endif
