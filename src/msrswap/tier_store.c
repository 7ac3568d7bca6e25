/* The tier store (see tier_store.h).  Parts, innermost first:
 *
 *  - the block map: one 64-bit word per 4 KiB block says where the block is
 *    (EMPTY, RAM, REMOTE with remote index and slot, DISK) and how many of
 *    its copies wait in the mirror queue.  Every change is made under the
 *    block's stripe lock (256 striped mutexes by block number); the word is
 *    atomic so that a read of an EMPTY block and the failover sweep can peek
 *    without the lock.
 *
 *  - the mirror: a ring of block copies (and "punch" entries for trims)
 *    written to the disk file, in ring order, by one thread.  A writer takes
 *    a credit (a semaphore of free entries) *before* its stripe lock, so it
 *    never waits for space while holding one (a batch takes further credits
 *    only if free at once); the mirror thread takes stripe
 *    locks to count copies as written.  Entries get their ring position under
 *    the block's stripe lock, so the copies of one block are queued, and
 *    written, in the order of its writes; a copy not yet taken by the mirror
 *    thread is replaced in place by the block's next one (`newest`).
 *    Invariant: a DISK or REMOTE block's content is its newest queued copy
 *    if one is pending, else the disk file's; an EMPTY or RAM block's newest
 *    copy, if one is pending, is a punch, else the file is a hole there (the
 *    file starts empty and sparse; a block entering RAM from the disk or a
 *    remote is punched out; RAM blocks are never copied).
 *
 *  - remotes: of two kinds (remote_kinds): libnbd handles (one or a few per
 *    remote, each used by one thread at a time), or one libfabric client
 *    that every thread uses at once; a slot allocator per remote, and the state ALIVE /
 *    DEAD / RELEASED.  Requests run asynchronously under a deadline, so a
 *    hung provider fails like a dead one.  A remote that leaves ALIVE is
 *    "swept": its blocks become DISK blocks, whose content the mirror holds;
 *    then its connections are closed, so that the provider sees us go and
 *    can free the export (a handle is closed under its connection's lock and
 *    left NULL: a request that chose the remote before it left finds it so).
 *
 * Lock order: stripes, then remote connections, then one at a time: a
 * remote's slot allocator, the RAM store's own locks, the mirror queue, the
 * admin lock (remote list and states).  Most holders take one stripe and one
 * connection; a write request's batch (write_blocks) takes the stripes of its
 * blocks in stripe order, then the connections its remote writes use in
 * address order, and waits for no mirror credit while it holds a stripe.
 * The mirror thread and the sweep take a stripe with nothing else held. */
#include "tier_store.h"
#include "fabric.h"
#include "nbd_proto.h"
#include "units.h"

#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define BLOCK TIER_BLOCK_SIZE
#define BLOCK_SHIFT 12
#define STRIPES 256
#define CACHELINE 64
#define MIRROR_BATCH 256 /* entries per round of the mirror thread */
#define DEFAULT_CONNECTIONS 2
#define MAX_CONNECTIONS 16
#define WRITE_BATCH 128 /* whole blocks of a write request put together (at most STRIPES) */
_Static_assert(WRITE_BATCH <= STRIPES, "a batch locks each of its blocks' stripes once");
#define RUN_MAX 32      /* blocks per NBD command of consecutive remote slots (128 KiB) */

/* ---- block words ---- */

enum { T_EMPTY = 0, T_RAM = 1, T_REMOTE = 2, T_DISK = 3 };

#define W_TIER ((uint64_t)3)
#define W_PENDING_SHIFT 2
#define W_PENDING_ONE ((uint64_t)1 << W_PENDING_SHIFT)
#define W_PENDING_MASK ((uint64_t)0xffff << W_PENDING_SHIFT) /* up to TIER_MIRROR_QUEUE_MAX */
#define W_REMOTE_SHIFT 18
#define W_REMOTE_MASK ((uint64_t)0xff << W_REMOTE_SHIFT) /* TIER_MAX_REMOTES */
#define W_SLOT_SHIFT 26
#define MAX_SLOTS ((uint64_t)1 << (64 - W_SLOT_SHIFT))

static int w_tier(uint64_t w) { return (int)(w & W_TIER); }
static uint64_t w_pending(uint64_t w) { return w & W_PENDING_MASK; } /* in place, for carrying over */
static unsigned w_remote(uint64_t w) { return (unsigned)((w & W_REMOTE_MASK) >> W_REMOTE_SHIFT); }
static uint64_t w_slot(uint64_t w) { return w >> W_SLOT_SHIFT; }
static uint64_t w_remote_at(unsigned r, uint64_t slot)
{
	return T_REMOTE | (uint64_t)r << W_REMOTE_SHIFT | slot << W_SLOT_SHIFT;
}

/* A memcpy of a constant 4096 bytes is expanded by GCC into `rep movsq`,
 * twice as slow as the C library's vector routine for blocks out of cache
 * (measured by store_ram.c): keep the library's routine. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noipa))
#else
__attribute__((noinline))
#endif
static void copy_bytes(void *dst, const void *src, size_t n)
{
	memcpy(dst, src, n);
}

/* ---- structures ---- */

struct remote_conn {
	pthread_mutex_t lock;
	struct nbd_handle *h;
};

struct remote;
struct tier_store;
enum remote_op { R_READ, R_WRITE, R_TRIM };

/* What a remote is reached with: libnbd (nbd://, nbds://, nbd+unix://...),
 * or one-sided RDMA through libfabric (fabric://, fabric+unix://), whose
 * keys an NBD option exchange fetched.  The failure semantics are the
 * store's own (remote_io): any error or a missed deadline makes it DEAD. */
struct remote_kind {
	const char *name;
	/* fill size, nslots, can_trim, nconns and the connections */
	int (*connect)(struct tier_store *ts, struct remote *r, struct ms_err *err);
	/* one request; 0, ENOSPC (the provider is full, the connection lives) or EIO with why */
	int (*io)(struct tier_store *ts, struct remote *r, enum remote_op op, void *buf, uint64_t slot, uint64_t off,
		  uint32_t n, char *why, size_t why_len);
	/* close the connections once no request uses them */
	void (*disconnect)(struct remote *r);
};

struct remote {
	const struct remote_kind *kind;
	char *uri;
	uint64_t size, nslots;
	bool can_trim;
	unsigned nconns;
	struct remote_conn conns[MAX_CONNECTIONS]; /* nbd: all locks initialised, nconns handles until disconnected */
	pthread_rwlock_t fabric_lock;             /* fabric: requests share it, the disconnect takes it alone */
	struct fabric_client *fabric;             /* fabric: NULL once disconnected */
	atomic_uint connected;    /* handles still open */
	_Atomic int state;        /* enum tier_remote_state; changed under the admin lock */
	atomic_bool full;         /* the provider said ENOSPC: no new slots until we free one */
	bool reported;            /* admin lock */
	char reason[256];         /* admin lock */
	_Atomic uint64_t used;    /* our blocks stored there */
	pthread_mutex_t alloc_lock;
	uint64_t fresh;           /* slots below were handed out once */
	uint64_t *free_slots;
	size_t nfree, free_cap;
};

struct mirror_entry {
	uint64_t block;
	bool punch; /* trim: the block reads as zeros */
};

struct mirror {
	pthread_mutex_t lock;
	pthread_cond_t work, drained;
	/* positions: [head, tail) are queued; [head, taken) are being written by
	 * the mirror thread, [taken, tail) wait and may still be replaced */
	uint64_t head, taken, tail;
	unsigned cap;
	struct mirror_entry *entries;
	uint64_t *newest;    /* per block: the position of its newest entry, valid while its pending count is not 0 */
	unsigned char *data; /* cap blocks */
	bool stop, hold, sleeping;
	sem_t space;         /* credits: free entries not reserved by a writer */
	pthread_t thread;
	bool started;
	_Atomic int error;   /* first errno from the disk file, sticky */
	_Atomic uint64_t written_blocks, errors;
	_Atomic uint64_t waits, wait_ns; /* writers that found the queue full, and how long they waited */
	_Atomic uint64_t queued_blocks, coalesced_blocks; /* copies that took an entry / replaced a waiting one */
};

struct stripe {
	pthread_mutex_t lock;
	/* Tmem counters kept per stripe (summed by get_stats): no shared line on the hot path */
	_Atomic uint64_t puts_total, puts_succ, gets, gets_succ, flushes;
} __attribute__((aligned(CACHELINE)));

struct tier_store {
	uint64_t size, nblocks;
	int fd;
	char *disk_path; /* removed with the store: its content means nothing without the block map */
	bool sync_on_flush;
	unsigned nconns_wanted, timeout_ms;
	void (*on_remote_dead)(void *ctx, const char *uri, const char *reason);
	void *callback_ctx;
	struct ram_export *ram; /* NULL: no RAM tier */
	_Atomic uint64_t *words;

	pthread_mutex_t admin_lock; /* the remote list, remote states */
	struct remote *remotes[TIER_MAX_REMOTES];
	_Atomic size_t nremotes;
	atomic_bool sweep_needed;

	struct mirror mirror;

	_Atomic uint64_t tier_used __attribute__((aligned(CACHELINE))); /* blocks in RAM or remote */
	_Atomic uint64_t target_blocks, target_bytes;
	_Atomic uint64_t ram_blocks, disk_blocks, failovers, failover_blocks;
	_Atomic uint64_t read_requests, write_requests, read_ns, write_ns;

	struct stripe stripes[STRIPES];
};

#define RELAXED memory_order_relaxed

static void add(_Atomic uint64_t *counter, int64_t delta)
{
	atomic_fetch_add_explicit(counter, (uint64_t)delta, RELAXED);
}

static struct stripe *stripe_of(struct tier_store *ts, uint64_t b)
{
	return &ts->stripes[b % STRIPES];
}

static uint64_t word_get(struct tier_store *ts, uint64_t b)
{
	return atomic_load(&ts->words[b]);
}

/* seq_cst, paired with remote_set_state: a block placed on a remote that is
 * being swept is seen by the sweep or sees the new state itself. */
static void word_set(struct tier_store *ts, uint64_t b, uint64_t w)
{
	atomic_store(&ts->words[b], w);
}

/* Take a tier block if the target allows (Algorithm 1). */
static bool tier_reserve(struct tier_store *ts)
{
	uint64_t used = atomic_load_explicit(&ts->tier_used, RELAXED);
	do {
		if (used >= atomic_load_explicit(&ts->target_blocks, RELAXED))
			return false;
	} while (!atomic_compare_exchange_weak_explicit(&ts->tier_used, &used, used + 1, RELAXED, RELAXED));
	return true;
}

static void tier_release(struct tier_store *ts)
{
	atomic_fetch_sub_explicit(&ts->tier_used, 1, RELAXED);
}

/* ---- remotes ---- */

static struct remote *remote_get(struct tier_store *ts, unsigned i)
{
	return i < atomic_load_explicit(&ts->nremotes, memory_order_acquire) ? ts->remotes[i] : NULL;
}

static bool remote_alive(const struct remote *r)
{
	return atomic_load(&r->state) == TIER_REMOTE_ALIVE;
}

/* ALIVE -> DEAD or RELEASED, once.  Returns whether this call changed it. */
static bool remote_set_state(struct tier_store *ts, struct remote *r, int state, const char *reason)
{
	bool changed = false;
	pthread_mutex_lock(&ts->admin_lock);
	if (atomic_load(&r->state) == TIER_REMOTE_ALIVE) {
		snprintf(r->reason, sizeof r->reason, "%s", reason);
		atomic_store(&r->state, state);
		changed = true;
		if (state == TIER_REMOTE_DEAD)
			add(&ts->failovers, 1);
		else
			r->reported = true; /* a release is the caller's decision: nothing to report */
	}
	pthread_mutex_unlock(&ts->admin_lock);
	if (changed)
		atomic_store(&ts->sweep_needed, true);
	return changed;
}

static bool remote_wait(struct nbd_handle *h, int64_t cookie, unsigned timeout_ms, char *why, size_t why_len)
{
	uint64_t deadline = monotonic_ns() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		int done = nbd_aio_command_completed(h, (uint64_t)cookie);
		if (done == 1)
			return true;
		if (done == -1) {
			snprintf(why, why_len, "%s", nbd_get_error() ? nbd_get_error() : "request failed");
			return false;
		}
		uint64_t now = monotonic_ns();
		if (now >= deadline) {
			snprintf(why, why_len, "no reply in %u ms", timeout_ms);
			return false;
		}
		if (nbd_poll(h, (int)((deadline - now + 999999) / 1000000)) == -1) {
			snprintf(why, why_len, "%s", nbd_get_error() ? nbd_get_error() : "connection lost");
			return false;
		}
	}
}

/* A command that completed with an error: a full reservoir answers ENOSPC
 * on a live connection (not a failure); anything else is EIO. */
static int nbd_failure(struct nbd_handle *h)
{
	return nbd_get_errno() == ENOSPC && nbd_aio_is_ready(h) == 1 ? ENOSPC : EIO;
}

/* Close connection c of r whose command failed or is still in flight past
 * the deadline, with c's lock held: libnbd then no longer holds the
 * caller's buffer (a late reply is never read into it), which the request
 * gives back when it returns.  Every EIO fails the remote anyway. */
static void conn_close_failed(struct remote *r, struct remote_conn *c)
{
	if (!c->h)
		return;
	nbd_close(c->h);
	c->h = NULL;
	atomic_fetch_sub(&r->connected, 1);
}

/* NBD: one request on the slot's connection, waited for under the store's deadline. */
static int nbd_remote_io(struct tier_store *ts, struct remote *r, enum remote_op op, void *buf, uint64_t slot,
			 uint64_t off, uint32_t n, char *why, size_t why_len)
{
	struct remote_conn *c = &r->conns[slot % r->nconns];
	int rc = 0;
	pthread_mutex_lock(&c->lock);
	/* The remote may have left ALIVE (and lost its handles) while we waited for the lock. */
	if (!c->h || !remote_alive(r)) {
		pthread_mutex_unlock(&c->lock);
		snprintf(why, why_len, "disconnected");
		return EIO;
	}
	int64_t cookie = -1;
	switch (op) {
	case R_READ: cookie = nbd_aio_pread(c->h, buf, n, off, NBD_NULL_COMPLETION, 0); break;
	case R_WRITE: cookie = nbd_aio_pwrite(c->h, buf, n, off, NBD_NULL_COMPLETION, 0); break;
	case R_TRIM: cookie = nbd_aio_trim(c->h, n, off, NBD_NULL_COMPLETION, 0); break;
	}
	if (cookie == -1)
		snprintf(why, why_len, "%s", nbd_get_error() ? nbd_get_error() : "cannot send a request");
	if (cookie == -1 || !remote_wait(c->h, cookie, ts->timeout_ms, why, why_len))
		rc = op == R_WRITE ? nbd_failure(c->h) : EIO;
	if (rc == EIO)
		conn_close_failed(r, c);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* Fabric: a one-sided read or write of the slot, under the store's deadline
 * (fabric.c); the provider's memory is reserved whole, so there is no trim
 * and no ENOSPC. */
static int fabric_remote_io(struct tier_store *ts, struct remote *r, enum remote_op op, void *buf, uint64_t slot,
			    uint64_t off, uint32_t n, char *why, size_t why_len)
{
	int rc = EIO;
	pthread_rwlock_rdlock(&r->fabric_lock);
	if (!r->fabric || !remote_alive(r))
		snprintf(why, why_len, "disconnected");
	else if (op == R_READ)
		rc = fabric_read(r->fabric, buf, n, off, why, why_len);
	else if (op == R_WRITE)
		rc = fabric_write(r->fabric, buf, n, off, why, why_len);
	else
		rc = 0;
	pthread_rwlock_unlock(&r->fabric_lock);
	return rc ? EIO : 0;
}

/* What a request's result says of its remote: ENOSPC, full; EIO, dead. */
static int remote_outcome(struct tier_store *ts, struct remote *r, int rc, const char *why)
{
	if (rc == ENOSPC)
		atomic_store(&r->full, true);
	else if (rc)
		remote_set_state(ts, r, TIER_REMOTE_DEAD, why);
	return rc;
}

/* One block-sized request on slot `slot` (`at`, `n`: a part of it, for reads).
 * Returns 0, ENOSPC (the provider is full: the slot kept its old content), or
 * EIO: the remote is dead now. */
static int remote_io(struct tier_store *ts, struct remote *r, enum remote_op op, void *buf, uint64_t slot, uint32_t at,
		     uint32_t n)
{
	if (!remote_alive(r))
		return EIO;
	char why[256] = "";
	return remote_outcome(ts, r, r->kind->io(ts, r, op, buf, slot, slot * BLOCK + at, n, why, sizeof why), why);
}

static bool slot_alloc(struct remote *r, uint64_t *slot)
{
	if (atomic_load_explicit(&r->full, RELAXED))
		return false;
	bool got = true;
	pthread_mutex_lock(&r->alloc_lock);
	if (r->nfree)
		*slot = r->free_slots[--r->nfree];
	else if (r->fresh < r->nslots)
		*slot = r->fresh++;
	else
		got = false;
	pthread_mutex_unlock(&r->alloc_lock);
	return got;
}

/* `space_freed`: the provider got the block's memory back (it was trimmed),
 * so a full provider may take new blocks again. */
static void slot_free(struct remote *r, uint64_t slot, bool space_freed)
{
	pthread_mutex_lock(&r->alloc_lock);
	if (r->nfree == r->free_cap) {
		size_t cap = r->free_cap ? r->free_cap * 2 : 256;
		uint64_t *grown = realloc(r->free_slots, cap * sizeof *grown);
		if (grown) {
			r->free_slots = grown;
			r->free_cap = cap;
		}
	}
	if (r->nfree < r->free_cap) /* else the slot is lost: only space, never data */
		r->free_slots[r->nfree++] = slot;
	pthread_mutex_unlock(&r->alloc_lock);
	if (space_freed)
		atomic_store_explicit(&r->full, false, RELAXED);
}

static void remote_free(struct remote *r)
{
	if (!r)
		return;
	for (unsigned i = 0; i < MAX_CONNECTIONS; i++) {
		if (r->conns[i].h)
			nbd_close(r->conns[i].h);
		pthread_mutex_destroy(&r->conns[i].lock);
	}
	fabric_client_close(r->fabric);
	pthread_rwlock_destroy(&r->fabric_lock);
	pthread_mutex_destroy(&r->alloc_lock);
	free(r->free_slots);
	free(r->uri);
	free(r);
}

/* Close the connections of a remote that left ALIVE: the provider sees us
 * go (a server keeps an export's memory while a client holds it).  Waits for
 * a request still running on a connection; with no other lock held. */
static void nbd_remote_disconnect(struct remote *r)
{
	for (unsigned i = 0; i < r->nconns && atomic_load(&r->connected); i++) {
		struct remote_conn *c = &r->conns[i];
		pthread_mutex_lock(&c->lock);
		struct nbd_handle *h = c->h;
		c->h = NULL;
		pthread_mutex_unlock(&c->lock);
		if (h) {
			nbd_close(h); /* the server takes the end of the stream as the end of the client */
			atomic_fetch_sub(&r->connected, 1);
		}
	}
}

/* The value of query parameter key in uri, %XX decoded, into out; false if absent. */
static bool uri_query_value(const char *uri, const char *key, char *out, size_t out_len)
{
	const char *q = strchr(uri, '?');
	size_t key_len = strlen(key);
	for (const char *p = q; p && *p && *p != '#'; p = strpbrk(p + 1, "&;#")) {
		if (*p == '#')
			break;
		if (strncmp(p + 1, key, key_len) != 0 || p[1 + key_len] != '=')
			continue;
		size_t n = 0;
		for (const char *v = p + 2 + key_len; *v && !strchr("&;#", *v) && n + 1 < out_len; v++) {
			unsigned hex;
			if (*v == '%' && sscanf(v + 1, "%2x", &hex) == 1) {
				out[n++] = (char)hex;
				v += 2;
			} else {
				out[n++] = *v;
			}
		}
		out[n] = '\0';
		return true;
	}
	return false;
}

/* The PSK username of a TLS remote when its URI has no user@: tls-username=
 * (which libnbd before 1.16 ignores), else the daemon's user.  libnbd would
 * ask getlogin(), which fails in a daemon without a terminal. */
static int set_tls_username(struct nbd_handle *h, const char *uri)
{
	char name[256];
	if (strncmp(uri, "nbds", 4) != 0)
		return 0;
	if (uri_query_value(uri, "tls-username", name, sizeof name))
		return nbd_set_tls_username(h, name);
	struct passwd pw, *found = NULL;
	char buf[1024];
	if (getpwuid_r(geteuid(), &pw, buf, sizeof buf, &found) == 0 && found)
		return nbd_set_tls_username(h, found->pw_name);
	return 0;
}

static struct nbd_handle *remote_dial(const char *uri, struct ms_err *err)
{
	struct nbd_handle *h = nbd_create();
	if (!h) {
		ms_fail(err, "%s", nbd_get_error());
		return NULL;
	}
	/* nbds:// remotes name their key file in the URI (tls-psk-file=); the
	 * URIs come from the daemon's owner-only control socket, so reading a
	 * local file they name is what that owner asked for.  A user@ in the
	 * URI overrides the username set here. */
	if (nbd_set_uri_allow_local_file(h, true) == -1 || set_tls_username(h, uri) == -1 ||
	    nbd_connect_uri(h, uri) == -1) {
		ms_fail(err, "cannot connect to %s: %s", uri, nbd_get_error());
		nbd_close(h);
		return NULL;
	}
	return h;
}

static int nbd_remote_connect(struct tier_store *ts, struct remote *r, struct ms_err *err)
{
	const char *uri = r->uri;
	struct nbd_handle *h = remote_dial(uri, err);
	if (!h)
		return -1;
	r->conns[0].h = h;
	int64_t size = nbd_get_size(h);
	const char *bad = size < 0 ? nbd_get_error() : size < BLOCK ? "smaller than one block"
						    : nbd_is_read_only(h) == 1 ? "read-only" : NULL;
	if (bad)
		return ms_fail(err, "remote %s: %s", uri, bad);
	r->size = (uint64_t)size;
	r->can_trim = nbd_can_trim(h) == 1;
	/* Our own block locks order every request on a block; more connections
	 * only need a server that keeps them coherent (multi-conn). */
	unsigned want = nbd_can_multi_conn(h) == 1 ? ts->nconns_wanted : 1, n = 1;
	for (; n < want; n++) {
		struct ms_err ignored;
		if (!(r->conns[n].h = remote_dial(uri, &ignored)))
			break;
	}
	r->nconns = n;
	return 0;
}

/* Where "provider=" starts a parameter of uri's query, or NULL. */
static const char *provider_param(const char *uri)
{
	const char *q = strchr(uri, '?');
	for (const char *p = q; p; p = strstr(p + 1, "provider="))
		if (p > q && (p[-1] == '?' || p[-1] == '&') && strncmp(p, "provider=", 9) == 0)
			return p;
	return NULL;
}

/* provider=NAME, %XX decoded; up to '&' or '#' only: provider names
 * contain ';' (tcp;ofi_rxm), which URI queries may also use as a separator. */
static void fabric_provider(const char *uri, char *out, size_t len)
{
	const char *p = provider_param(uri);
	size_t n = 0;
	for (const char *v = p ? p + 9 : ""; *v && *v != '&' && *v != '#' && n + 1 < len; v++) {
		unsigned hex;
		if (*v == '%' && sscanf(v + 1, "%2x", &hex) == 1) {
			out[n++] = (char)hex;
			v += 2;
		} else {
			out[n++] = *v;
		}
	}
	out[n] = '\0';
}

/* fabric[+unix]://... -> nbd[s][+unix]://... without provider=: the NBD
 * URI of the control exchange (nbds when the URI names a TLS key file). */
static int fabric_control_uri(const char *uri, char *out, size_t len, char *provider, size_t provider_len,
			      struct ms_err *err)
{
	char key_file[8];
	bool tls = uri_query_value(uri, "tls-psk-file", key_file, sizeof key_file);
	fabric_provider(uri, provider, provider_len);
	if ((size_t)snprintf(out, len, "nbd%s%s", tls ? "s" : "", uri + strlen("fabric")) >= len)
		return ms_fail_input(err, "remote %.100s: URI too long", uri);
	/* drop provider=... from the query: libnbd does not know it */
	char *p = (char *)provider_param(out);
	if (p) {
		char *end = strpbrk(p, "&#");
		if (end && *end == '&')
			memmove(p, end + 1, strlen(end + 1) + 1);
		else if (end)
			memmove(p - 1, end, strlen(end) + 1);
		else
			p[-1] = '\0';
	}
	return 0;
}

static int save_descriptor(void *user_data, const char *name)
{
	static const char prefix[] = NBD_META_FABRIC_PREFIX;
	if (strncmp(name, prefix, sizeof prefix - 1) == 0)
		snprintf(user_data, FABRIC_DESCRIPTOR_MAX, "%s", name + sizeof prefix - 1);
	return 0;
}

/* The control exchange: an NBD connection (TLS-PSK when nbds) asks for the
 * export's fabric descriptor, then the one-sided connection is opened. */
static int fabric_remote_connect(struct tier_store *ts, struct remote *r, struct ms_err *err)
{
	char nbd_uri[1100], provider[64], descriptor[FABRIC_DESCRIPTOR_MAX] = "";
	if (fabric_control_uri(r->uri, nbd_uri, sizeof nbd_uri, provider, sizeof provider, err) < 0)
		return -1;
	if (!fabric_built_in())
		return ms_fail(err, "remote %s: fabric:// remotes are not supported: built without libfabric", r->uri);
	struct nbd_handle *h = nbd_create();
	if (!h)
		return ms_fail(err, "%s", nbd_get_error());
	int rc = -1;
	if (nbd_set_opt_mode(h, true) == -1 || nbd_set_uri_allow_local_file(h, true) == -1 ||
	    set_tls_username(h, nbd_uri) == -1 || nbd_connect_uri(h, nbd_uri) == -1 ||
	    nbd_add_meta_context(h, NBD_META_MSRSWAP_FABRIC) == -1 ||
	    nbd_opt_list_meta_context(h, (nbd_context_callback){.callback = save_descriptor, .user_data = descriptor}) == -1)
		ms_fail(err, "cannot connect to %s: %s%s", r->uri, nbd_get_error(),
			strncmp(nbd_uri, "nbds", 4) ? " (a provider with --tls-psk answers no option before TLS: "
						      "give the URI tls-psk-file=)" : "");
	else if (!*descriptor)
		ms_fail(err, "remote %s: the provider has no fabric registration for the export (serve --fabric)", r->uri);
	else
		rc = fabric_client_open(descriptor, *provider ? provider : NULL, ts->timeout_ms, &r->fabric, err);
	if (rc < 0 && *descriptor)
		ms_fail_prefix(err, "remote %s", r->uri);
	nbd_opt_abort(h);
	nbd_close(h);
	if (rc < 0)
		return -1;
	r->size = fabric_client_size(r->fabric);
	r->can_trim = false;
	r->nconns = 1;
	return 0;
}

static void fabric_remote_disconnect(struct remote *r)
{
	pthread_rwlock_wrlock(&r->fabric_lock); /* no request is running */
	struct fabric_client *fc = r->fabric;
	r->fabric = NULL;
	pthread_rwlock_unlock(&r->fabric_lock);
	if (fc) {
		fabric_client_close(fc);
		atomic_fetch_sub(&r->connected, 1);
	}
}

static const struct remote_kind remote_kinds[] = {
	{"nbd", nbd_remote_connect, nbd_remote_io, nbd_remote_disconnect},
	{"fabric", fabric_remote_connect, fabric_remote_io, fabric_remote_disconnect},
};

static const struct remote_kind *kind_of(const char *uri)
{
	return strncmp(uri, "fabric", 6) == 0 && (uri[6] == ':' || uri[6] == '+') ? &remote_kinds[1] : &remote_kinds[0];
}

static void remote_disconnect(struct remote *r)
{
	r->kind->disconnect(r);
}

static int remote_connect(struct tier_store *ts, const char *uri, struct remote **out, struct ms_err *err)
{
	struct remote *r = calloc(1, sizeof *r);
	if (!r)
		return ms_fail_errno(err, "cannot allocate a remote");
	r->kind = kind_of(uri);
	pthread_mutex_init(&r->alloc_lock, NULL);
	pthread_rwlock_init(&r->fabric_lock, NULL);
	for (unsigned i = 0; i < MAX_CONNECTIONS; i++)
		pthread_mutex_init(&r->conns[i].lock, NULL);
	if (!(r->uri = strdup(uri))) {
		remote_free(r);
		return ms_fail_errno(err, "cannot allocate a remote");
	}
	if (r->kind->connect(ts, r, err) < 0) {
		remote_free(r);
		return -1;
	}
	r->nslots = r->size / BLOCK < MAX_SLOTS ? r->size / BLOCK : MAX_SLOTS;
	atomic_init(&r->connected, r->nconns);
	atomic_init(&r->state, TIER_REMOTE_ALIVE);
	*out = r;
	return 0;
}

/* ---- the mirror ---- */

/* Wait for a free queue entry; with no lock held.  A wait is counted, with
 * its time: it is the disk copy holding a writer back. */
static void mirror_reserve(struct tier_store *ts)
{
	struct mirror *m = &ts->mirror;
	if (sem_trywait(&m->space) == 0)
		return;
	uint64_t t0 = monotonic_ns();
	while (sem_wait(&m->space) != 0)
		; /* EINTR */
	add(&m->waits, 1);
	add(&m->wait_ns, (int64_t)(monotonic_ns() - t0));
}

static void mirror_unreserve(struct tier_store *ts)
{
	sem_post(&ts->mirror.space);
}

/* A free entry if there is one now: for a writer that holds stripe locks. */
static bool mirror_try_reserve(struct tier_store *ts)
{
	return sem_trywait(&ts->mirror.space) == 0;
}

/* Queue a copy of block b (data NULL: a punch); w is b's word.  With b's
 * stripe lock held.  Swap rewrites its slots in place, so a rewrite often
 * finds the block's previous copy still waiting: the new content replaces
 * it (only the newest copy of a block matters to the file) and takes no new
 * entry.  Returns whether it took a new entry, using the caller's credit:
 * then the caller adds one to the block's pending count. */
static bool mirror_push(struct tier_store *ts, uint64_t b, uint64_t w, const unsigned char *data)
{
	struct mirror *m = &ts->mirror;
	pthread_mutex_lock(&m->lock);
	bool fresh = !w_pending(w) || m->newest[b] < m->taken;
	uint64_t pos = fresh ? m->tail++ : m->newest[b];
	size_t i = pos % m->cap;
	m->entries[i] = (struct mirror_entry){b, data == NULL};
	m->newest[b] = pos;
	if (data)
		copy_bytes(m->data + i * BLOCK, data, BLOCK);
	if (fresh)
		add(&m->queued_blocks, 1);
	else
		add(&m->coalesced_blocks, 1);
	if (fresh && m->sleeping)
		pthread_cond_signal(&m->work);
	pthread_mutex_unlock(&m->lock);
	return fresh;
}

/* The newest queued copy of block b (pending, so it is there): with b's
 * stripe lock held. */
static bool mirror_lookup(struct tier_store *ts, uint64_t b, uint32_t at, uint32_t n, unsigned char *out)
{
	struct mirror *m = &ts->mirror;
	pthread_mutex_lock(&m->lock);
	size_t i = m->newest[b] % m->cap;
	bool found = m->entries[i].block == b;
	if (found && m->entries[i].punch)
		memset(out, 0, n);
	else if (found)
		copy_bytes(out, m->data + i * BLOCK + at, n);
	pthread_mutex_unlock(&m->lock);
	return found;
}

/* pwritev until done (a regular file may still write less than asked). */
static int writev_all(int fd, struct iovec *iov, int n, off_t off)
{
	while (n) {
		ssize_t w = pwritev(fd, iov, n, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		off += w;
		for (; n && (size_t)w >= iov->iov_len; iov++, n--)
			w -= (ssize_t)iov->iov_len;
		if (n) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static int write_all(int fd, const unsigned char *p, size_t n, off_t off)
{
	struct iovec v = {(void *)p, n};
	return writev_all(fd, &v, 1, off);
}

static int punch(int fd, off_t off, off_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0)
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS)
		return errno;
	static const unsigned char zeros[BLOCK];
	for (off_t done = 0; done < len; done += BLOCK) {
		int rc = write_all(fd, zeros, BLOCK, off + done);
		if (rc)
			return rc;
	}
	return 0;
}

struct batch_item {
	uint64_t block;
	size_t slot; /* ring index */
};

static int by_block(const void *a, const void *b)
{
	uint64_t x = ((const struct batch_item *)a)->block, y = ((const struct batch_item *)b)->block;
	return x < y ? -1 : x > y;
}

/* Write entries [start, end) in block order: a batch holds at most one
 * entry per block (a rewrite replaces a copy not yet taken), so its order
 * does not matter, and sorting it turns swap's scattered slots into runs of
 * consecutive blocks, one system call each (pwritev, or one punch). */
static void mirror_write(struct tier_store *ts, uint64_t start, uint64_t end)
{
	struct mirror *m = &ts->mirror;
	struct batch_item items[MIRROR_BATCH];
	struct iovec iov[MIRROR_BATCH];
	size_t n = (size_t)(end - start);
	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % m->cap;
		items[k] = (struct batch_item){m->entries[i].block, i};
	}
	qsort(items, n, sizeof *items, by_block);
	for (size_t k = 0; k < n;) {
		bool is_punch = m->entries[items[k].slot].punch;
		size_t run = 1;
		while (k + run < n && items[k + run].block == items[k].block + run &&
		       m->entries[items[k + run].slot].punch == is_punch)
			run++;
		off_t off = (off_t)(items[k].block * BLOCK), len = (off_t)(run * BLOCK);
		for (size_t r = 0; r < run && !is_punch; r++)
			iov[r] = (struct iovec){m->data + items[k + r].slot * BLOCK, BLOCK};
		int rc = is_punch ? punch(ts->fd, off, len) : writev_all(ts->fd, iov, (int)run, off);
		if (rc) {
			int none = 0;
			atomic_compare_exchange_strong(&m->error, &none, rc);
			add(&m->errors, (int64_t)run);
		} else {
			add(&m->written_blocks, (int64_t)run);
		}
		k += run;
	}
}

static void *mirror_main(void *arg)
{
	struct tier_store *ts = arg;
	struct mirror *m = &ts->mirror;
	pthread_mutex_lock(&m->lock);
	for (;;) {
		while (!m->stop && (m->head == m->tail || m->hold)) {
			m->sleeping = true;
			pthread_cond_wait(&m->work, &m->lock);
			m->sleeping = false;
		}
		if (m->head == m->tail)
			break; /* stopped and drained */
		uint64_t start = m->head, end = m->tail - start > MIRROR_BATCH ? start + MIRROR_BATCH : m->tail;
		m->taken = end; /* from now on writers queue new copies of these blocks */
		pthread_mutex_unlock(&m->lock);
		mirror_write(ts, start, end);
		/* Only now may readers take these blocks from the file. */
		for (uint64_t p = start; p < end; p++) {
			uint64_t b = m->entries[p % m->cap].block;
			struct stripe *s = stripe_of(ts, b);
			pthread_mutex_lock(&s->lock);
			word_set(ts, b, word_get(ts, b) - W_PENDING_ONE);
			pthread_mutex_unlock(&s->lock);
		}
		pthread_mutex_lock(&m->lock);
		m->head = end;
		for (uint64_t p = start; p < end; p++)
			sem_post(&m->space);
		pthread_cond_broadcast(&m->drained);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

static int mirror_drain(struct tier_store *ts)
{
	struct mirror *m = &ts->mirror;
	pthread_mutex_lock(&m->lock);
	uint64_t target = m->tail;
	while (m->head < target)
		pthread_cond_wait(&m->drained, &m->lock);
	pthread_mutex_unlock(&m->lock);
	if (ts->sync_on_flush && fdatasync(ts->fd) != 0) {
		int none = 0;
		atomic_compare_exchange_strong(&m->error, &none, errno);
	}
	return atomic_load(&m->error) ? EIO : 0;
}

void tier_store_mirror_hold(struct tier_store *ts, bool hold)
{
	struct mirror *m = &ts->mirror;
	pthread_mutex_lock(&m->lock);
	m->hold = hold;
	pthread_cond_signal(&m->work);
	pthread_mutex_unlock(&m->lock);
}

/* ---- block transitions (all with the block's stripe lock held) ---- */

/* A block of a remote that left ALIVE becomes a DISK block: the mirror has it. */
static uint64_t demote(struct tier_store *ts, uint64_t b, uint64_t w)
{
	struct remote *r = remote_get(ts, w_remote(w));
	add(&r->used, -1);
	tier_release(ts);
	add(&ts->disk_blocks, 1);
	if (atomic_load(&r->state) == TIER_REMOTE_DEAD)
		add(&ts->failover_blocks, 1);
	uint64_t nw = T_DISK | w_pending(w);
	word_set(ts, b, nw);
	return nw;
}

static uint64_t word_now(struct tier_store *ts, uint64_t b)
{
	uint64_t w = word_get(ts, b);
	if (w_tier(w) == T_REMOTE && !remote_alive(remote_get(ts, w_remote(w))))
		w = demote(ts, b, w);
	return w;
}

/* Read n bytes at `at` of block b into out.  *from_tier: served by RAM or a remote. */
static int read_locked(struct tier_store *ts, uint64_t b, uint32_t at, uint32_t n, unsigned char *out, bool *from_tier)
{
	uint64_t w = word_now(ts, b);
	*from_tier = false;
	switch (w_tier(w)) {
	case T_EMPTY:
		memset(out, 0, n);
		return 0;
	case T_RAM:
		*from_tier = true;
		return ram_store_ops.read(ts->ram, out, n, b * BLOCK + at);
	case T_REMOTE:
		if (remote_io(ts, remote_get(ts, w_remote(w)), R_READ, out, w_slot(w), at, n) == 0) {
			*from_tier = true;
			return 0;
		}
		w = demote(ts, b, w); /* failover: the copy is in the queue or the file */
		break;
	}
	if (w_pending(w) && mirror_lookup(ts, b, at, n, out))
		return 0;
	if (atomic_load(&ts->mirror.error))
		return EIO;
	ssize_t got = pread(ts->fd, out, n, (off_t)(b * BLOCK + at));
	if (got == (ssize_t)n)
		return 0;
	return EIO;
}

/* Drop block b from RAM or its remote (the caller has its content elsewhere or wants it gone). */
static void leave_tier(struct tier_store *ts, uint64_t b, uint64_t w)
{
	if (w_tier(w) == T_RAM) {
		ram_store_ops.trim(ts->ram, BLOCK, b * BLOCK);
		add(&ts->ram_blocks, -1);
	} else {
		struct remote *r = remote_get(ts, w_remote(w));
		/* Give the provider its memory back; a remote that fails here is dead
		 * and the slot is not reused. */
		if (!r->can_trim)
			slot_free(r, w_slot(w), false);
		else if (remote_io(ts, r, R_TRIM, NULL, w_slot(w), 0, BLOCK) == 0)
			slot_free(r, w_slot(w), true);
		add(&r->used, -1);
	}
	tier_release(ts);
}

static bool is_zero(const unsigned char *p)
{
	static const unsigned char zero16[16];
	return memcmp(p, zero16, 16) == 0 && memcmp(p, p + 16, BLOCK - 16) == 0;
}

static bool clear_locked(struct tier_store *ts, uint64_t b, bool is_flush);

/* A put of a whole block, with a mirror credit reserved.  put_begin
 * finishes it at once unless the block's content goes to a remote slot:
 * then `r` is set, and the caller writes `data` there (alone, remote_io,
 * or with the other blocks of its request, remote_write_batch), stores the
 * outcome in `rc` and calls put_finish.  All with the block's stripe lock. */
struct put {
	uint64_t b, w; /* the block, and its word when the put began */
	const unsigned char *data;
	struct remote *r; /* NULL: no remote write pending */
	unsigned ri;      /* r's index */
	uint64_t slot;
	bool fresh; /* a new slot of r (else the block's own, rewritten in place) */
	int rc;     /* of the remote write: 0, ENOSPC or EIO */
	bool used;  /* the put used its mirror credit */
};

/* Store the block's new word (loc: its place; 0: a failed put, the disk). */
static void put_settle(struct tier_store *ts, struct put *p, uint64_t loc)
{
	struct stripe *s = stripe_of(ts, p->b);
	int tier = w_tier(p->w);
	p->r = NULL;
	if (loc)
		add(&s->puts_succ, 1);
	else
		loc = T_DISK;
	if (tier == T_DISK && loc != T_DISK)
		add(&ts->disk_blocks, -1);
	else if (tier != T_DISK && loc == T_DISK)
		add(&ts->disk_blocks, 1);
	/* A RAM block has no disk copy (see tier_store.h): its place in the
	 * file is a hole, punched when it comes from the disk or a remote. */
	p->used = false;
	if (loc != T_RAM)
		p->used = mirror_push(ts, p->b, p->w, p->data);
	else if (tier == T_DISK || tier == T_REMOTE)
		p->used = mirror_push(ts, p->b, p->w, NULL);
	word_set(ts, p->b, loc | (w_pending(p->w) + (p->used ? W_PENDING_ONE : 0)));
	/* The remote may have left ALIVE after we chose it, and its sweep passed
	 * this block before we stored the word: demote it ourselves. */
	word_now(ts, p->b);
}

/* A free slot of the first alive remote from index `from` on: sets p->r. */
static bool place_on_remote(struct tier_store *ts, struct put *p, unsigned from)
{
	size_t n = atomic_load_explicit(&ts->nremotes, memory_order_acquire);
	for (unsigned i = from; i < n; i++) {
		struct remote *r = ts->remotes[i];
		if (remote_alive(r) && slot_alloc(r, &p->slot)) {
			*p = (struct put){.b = p->b, .w = p->w, .data = p->data, .r = r, .ri = i, .slot = p->slot,
					  .fresh = true};
			return true;
		}
	}
	return false;
}

/* A new tier block for the put (Algorithm 1): RAM first, then the alive
 * remotes in order.  Returns whether a remote write is pending (p->r);
 * else the put is settled (in RAM, or failed: the disk). */
static bool place_begin(struct tier_store *ts, struct put *p)
{
	if (!tier_reserve(ts)) {
		put_settle(ts, p, 0);
		return false;
	}
	if (ts->ram && ram_store_ops.write(ts->ram, p->data, BLOCK, p->b * BLOCK) == 0) {
		add(&ts->ram_blocks, 1);
		put_settle(ts, p, T_RAM);
		return false;
	}
	if (place_on_remote(ts, p, 0))
		return true;
	tier_release(ts);
	put_settle(ts, p, 0);
	return false;
}

static bool put_begin(struct tier_store *ts, struct put *p)
{
	struct stripe *s = stripe_of(ts, p->b);
	add(&s->puts_total, 1);
	p->r = NULL;
	/* A zero block is stored nowhere (as in the RAM store): a put that
	 * succeeds without taking space. */
	if (is_zero(p->data)) {
		add(&s->puts_succ, 1);
		p->used = clear_locked(ts, p->b, false);
		return false;
	}
	p->w = word_now(ts, p->b);
	/* A block already in the tier is rewritten in place: no new space. */
	if (w_tier(p->w) == T_RAM) {
		if (ram_store_ops.write(ts->ram, p->data, BLOCK, p->b * BLOCK) == 0) {
			put_settle(ts, p, T_RAM);
			return false;
		}
		leave_tier(ts, p->b, p->w); /* a dedup pool may need a new block to rewrite a shared one */
	} else if (w_tier(p->w) == T_REMOTE) {
		p->ri = w_remote(p->w);
		p->r = remote_get(ts, p->ri);
		p->slot = w_slot(p->w);
		p->fresh = false;
		return true;
	}
	return place_begin(ts, p);
}

/* The remote write is done (p->rc): settle the block there, or place it
 * anew, one block at a time (refusals and failures are rare). */
static void put_finish(struct tier_store *ts, struct put *p)
{
	while (p->r) {
		struct remote *r = p->r;
		bool pending;
		if (p->rc == 0 && p->fresh) {
			add(&r->used, 1);
			put_settle(ts, p, w_remote_at(p->ri, p->slot));
			return;
		}
		if (p->rc == 0) {
			put_settle(ts, p, p->w & ~W_PENDING_MASK);
			return;
		}
		if (p->fresh) {
			if (p->rc == ENOSPC)
				slot_free(r, p->slot, false); /* r->full stays: the next puts skip r */
			/* (a dead remote's slot is not reused) */
			pending = place_on_remote(ts, p, p->ri + 1);
			if (!pending) {
				tier_release(ts);
				put_settle(ts, p, 0);
			}
		} else {
			if (p->rc == ENOSPC) {
				leave_tier(ts, p->b, p->w);
			} else { /* dead (or released meanwhile): its slots are gone */
				add(&r->used, -1);
				tier_release(ts);
				if (atomic_load(&r->state) == TIER_REMOTE_DEAD)
					add(&ts->failover_blocks, 1);
			}
			pending = place_begin(ts, p);
		}
		if (pending)
			p->rc = remote_io(ts, p->r, R_WRITE, (void *)p->data, p->slot, 0, BLOCK);
	}
}

/* A put of one whole block on its own.  Returns whether it used the credit. */
static bool put_locked(struct tier_store *ts, uint64_t b, const unsigned char *data)
{
	struct put p = {.b = b, .data = data};
	if (put_begin(ts, &p)) {
		p.rc = remote_io(ts, p.r, R_WRITE, (void *)data, p.slot, 0, BLOCK);
		put_finish(ts, &p);
	}
	return p.used;
}

/* ---- a request's remote writes, all sent before any is waited for ---- */

/* One NBD command of a batch: puts [first, first + n) of the request, on
 * consecutive slots of one remote (consecutive blocks of the request, so
 * their data is contiguous too). */
struct run {
	unsigned first, n;
	struct remote *r;
	struct remote_conn *c;
	int64_t cookie; /* in flight while not -1 */
	int rc;
	char why[96];
};

static bool is_nbd(const struct remote *r)
{
	return r->kind == &remote_kinds[0];
}

/* The puts' pending NBD writes as runs of consecutive slots, RUN_MAX blocks at most. */
static unsigned batch_runs(const struct put *puts, unsigned count, struct run *runs)
{
	unsigned n = 0;
	for (unsigned i = 0; i < count; i++) {
		const struct put *p = &puts[i];
		if (!p->r || !is_nbd(p->r))
			continue;
		struct run *last = n ? &runs[n - 1] : NULL;
		if (last && last->r == p->r && last->first + last->n == i && last->n < RUN_MAX &&
		    puts[last->first].slot + last->n == p->slot)
			last->n++;
		else
			runs[n++] = (struct run){.first = i, .n = 1, .r = p->r, .cookie = -1};
	}
	return n;
}

static int by_slot(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The new slots the batch took on remote r go to its blocks in ascending
 * order: they are not written yet, and slots given back by a trim come off
 * the free list in reverse, so this makes runs of consecutive slots (fewer
 * commands) out of what would be none. */
static void batch_order_fresh_slots(struct put *puts, unsigned count, const struct remote *r)
{
	uint64_t slots[WRITE_BATCH];
	unsigned n = 0;
	for (unsigned i = 0; i < count; i++)
		if (puts[i].r == r && puts[i].fresh)
			slots[n++] = puts[i].slot;
	qsort(slots, n, sizeof *slots, by_slot);
	for (unsigned i = 0, k = 0; i < count; i++)
		if (puts[i].r == r && puts[i].fresh)
			puts[i].slot = slots[k++];
}

static int by_address(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (struct remote_conn *const *)a, y = (uintptr_t) * (struct remote_conn *const *)b;
	return x < y ? -1 : x > y;
}

/* Spread the runs over their remotes' connections and lock those, each
 * once, in address order: the one order of every holder of several. */
static unsigned batch_lock(struct run *runs, unsigned nruns, struct remote_conn **locked)
{
	unsigned n = 0;
	for (unsigned k = 0; k < nruns; k++) {
		runs[k].c = &runs[k].r->conns[k % runs[k].r->nconns];
		bool seen = false;
		for (unsigned i = 0; i < n && !seen; i++)
			seen = locked[i] == runs[k].c;
		if (!seen)
			locked[n++] = runs[k].c;
	}
	qsort(locked, n, sizeof *locked, by_address);
	for (unsigned i = 0; i < n; i++)
		pthread_mutex_lock(&locked[i]->lock);
	return n;
}

static void run_failed(struct run *run, int rc, const char *why)
{
	run->cookie = -1;
	run->rc = rc;
	snprintf(run->why, sizeof run->why, "%s", why ? why : "request failed");
}

/* A command that completed with an error (nbd_failure). */
static void run_error(struct run *run)
{
	const char *why = nbd_get_error();
	run_failed(run, nbd_failure(run->c->h), why);
}

static void batch_send(const struct put *puts, struct run *runs, unsigned nruns)
{
	for (unsigned k = 0; k < nruns; k++) {
		struct run *run = &runs[k];
		/* The remote may have left ALIVE (and lost its handles) meanwhile. */
		if (!run->c->h || !remote_alive(run->r)) {
			run_failed(run, EIO, "disconnected");
			continue;
		}
		const struct put *p = &puts[run->first];
		run->cookie = nbd_aio_pwrite(run->c->h, p->data, (size_t)run->n * BLOCK, p->slot * BLOCK,
					     NBD_NULL_COMPLETION, 0);
		if (run->cookie == -1)
			run_failed(run, EIO, nbd_get_error());
	}
}

/* Fail the runs still in flight on connection c (every connection: NULL). */
static void fail_in_flight(struct run *runs, unsigned nruns, const struct remote_conn *c, const char *why)
{
	for (unsigned k = 0; k < nruns; k++)
		if (runs[k].cookie != -1 && (!c || runs[k].c == c))
			run_failed(&runs[k], EIO, why);
}

/* Collect the completed runs; the connections of those still in flight
 * into fds (with what each waits for).  Returns how many. */
static unsigned batch_collect(struct run *runs, unsigned nruns, struct remote_conn **conns, struct pollfd *fds)
{
	unsigned n = 0;
	for (unsigned k = 0; k < nruns; k++) {
		struct run *run = &runs[k];
		if (run->cookie == -1)
			continue;
		int done = nbd_aio_command_completed(run->c->h, (uint64_t)run->cookie);
		if (done == 1) {
			run->cookie = -1;
			run->rc = 0;
			continue;
		}
		if (done == -1) {
			run_error(run);
			continue;
		}
		bool seen = false;
		for (unsigned i = 0; i < n && !seen; i++)
			seen = conns[i] == run->c;
		if (seen)
			continue;
		unsigned dir = nbd_aio_get_direction(run->c->h);
		conns[n] = run->c;
		fds[n++] = (struct pollfd){.fd = nbd_aio_get_fd(run->c->h),
					   .events = (short)((dir & LIBNBD_AIO_DIRECTION_READ ? POLLIN : 0) |
							     (dir & LIBNBD_AIO_DIRECTION_WRITE ? POLLOUT : 0))};
	}
	return n;
}

/* Wait for every run, polling all their connections at once, under the
 * store's deadline for the whole batch. */
static void batch_wait(struct tier_store *ts, struct run *runs, unsigned nruns)
{
	uint64_t deadline = monotonic_ns() + (uint64_t)ts->timeout_ms * 1000000u;
	struct remote_conn *conns[WRITE_BATCH];
	struct pollfd fds[WRITE_BATCH];
	for (;;) {
		unsigned n = batch_collect(runs, nruns, conns, fds);
		if (n == 0)
			return;
		uint64_t now = monotonic_ns();
		if (now >= deadline) {
			char why[64];
			snprintf(why, sizeof why, "no reply in %u ms", ts->timeout_ms);
			fail_in_flight(runs, nruns, NULL, why);
			return;
		}
		if (poll(fds, n, (int)((deadline - now + 999999) / 1000000)) < 0 && errno != EINTR) {
			fail_in_flight(runs, nruns, NULL, strerror(errno));
			return;
		}
		for (unsigned i = 0; i < n; i++) {
			int rc = 0;
			if (fds[i].fd < 0 || fds[i].revents & POLLNVAL)
				rc = -1;
			else if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
				rc = nbd_aio_notify_read(conns[i]->h);
			else if (fds[i].revents & POLLOUT)
				rc = nbd_aio_notify_write(conns[i]->h);
			if (rc == -1)
				fail_in_flight(runs, nruns, conns[i], nbd_get_error() ? nbd_get_error() : "connection lost");
		}
	}
}

/* The connections of the runs that failed (the remote is dead) or are
 * still in flight past the deadline, closed at once (conn_close_failed). */
static void batch_close_failed(struct run *runs, unsigned nruns)
{
	for (unsigned k = 0; k < nruns; k++)
		if (runs[k].rc == EIO)
			conn_close_failed(runs[k].r, runs[k].c);
}

/* Write the pending remote blocks of a request's puts (p->r set): NBD
 * remotes get every command sent before any reply is waited for, one per
 * run of consecutive slots; fabric writes are one-sided already.  Sets
 * each p->rc, and marks a remote full or dead as remote_io does. */
static void remote_write_batch(struct tier_store *ts, struct put *puts, unsigned count)
{
	struct run runs[WRITE_BATCH];
	struct remote_conn *locked[WRITE_BATCH];
	for (unsigned i = 0; i < count; i++) {
		if (puts[i].r && !is_nbd(puts[i].r))
			puts[i].rc = remote_io(ts, puts[i].r, R_WRITE, (void *)puts[i].data, puts[i].slot, 0, BLOCK);
		else if (puts[i].r && puts[i].fresh && (i == 0 || puts[i - 1].r != puts[i].r))
			batch_order_fresh_slots(puts, count, puts[i].r);
	}
	unsigned nruns = batch_runs(puts, count, runs);
	unsigned nlocked = batch_lock(runs, nruns, locked);
	batch_send(puts, runs, nruns);
	batch_wait(ts, runs, nruns);
	batch_close_failed(runs, nruns);
	for (unsigned i = 0; i < nlocked; i++)
		pthread_mutex_unlock(&locked[i]->lock);
	for (unsigned k = 0; k < nruns; k++) {
		remote_outcome(ts, runs[k].r, runs[k].rc, runs[k].why);
		for (unsigned i = runs[k].first; i < runs[k].first + runs[k].n; i++)
			puts[i].rc = runs[k].rc;
	}
}

/* Make block b EMPTY (zeros, stored nowhere): a trim or zeroing of the whole
 * block (a Tmem flush when it leaves RAM or a remote), or a put of zeros.
 * Returns whether it used the reserved credit (a punch entry). */
static bool clear_locked(struct tier_store *ts, uint64_t b, bool is_flush)
{
	uint64_t w = word_now(ts, b);
	switch (w_tier(w)) {
	case T_EMPTY:
		if (!w_pending(w))
			return false;
		break;
	case T_RAM:
	case T_REMOTE:
		leave_tier(ts, b, w);
		if (is_flush)
			add(&stripe_of(ts, b)->flushes, 1);
		break;
	case T_DISK:
		add(&ts->disk_blocks, -1);
		break;
	}
	/* A RAM block's place in the file is a hole already. */
	bool used = w_tier(w) != T_RAM && mirror_push(ts, b, w, NULL);
	word_set(ts, b, T_EMPTY | (w_pending(w) + (used ? W_PENDING_ONE : 0)));
	return used;
}

/* ---- sweep: blocks of remotes that left ALIVE become DISK blocks ---- */

static void sweep(struct tier_store *ts, bool force)
{
	if (!force && (!atomic_load_explicit(&ts->sweep_needed, RELAXED) || !atomic_exchange(&ts->sweep_needed, false)))
		return;
	for (uint64_t b = 0; b < ts->nblocks; b++) {
		uint64_t w = word_get(ts, b);
		if (w_tier(w) != T_REMOTE || remote_alive(remote_get(ts, w_remote(w))))
			continue;
		struct stripe *s = stripe_of(ts, b);
		pthread_mutex_lock(&s->lock);
		word_now(ts, b);
		pthread_mutex_unlock(&s->lock);
	}
	size_t n = atomic_load_explicit(&ts->nremotes, memory_order_acquire);
	for (size_t i = 0; i < n; i++) {
		struct remote *r = ts->remotes[i];
		if (remote_alive(r))
			continue;
		/* no block is on it any more: nothing needs its connections */
		remote_disconnect(r);
		char reason[sizeof r->reason];
		bool report = false;
		pthread_mutex_lock(&ts->admin_lock);
		if (atomic_load(&r->state) == TIER_REMOTE_DEAD && !r->reported) {
			r->reported = report = true;
			memcpy(reason, r->reason, sizeof reason);
		}
		pthread_mutex_unlock(&ts->admin_lock);
		if (report && ts->on_remote_dead)
			ts->on_remote_dead(ts->callback_ctx, r->uri, reason);
	}
}

/* ---- operations ---- */

static bool in_bounds(const struct tier_store *ts, uint32_t len, uint64_t offset)
{
	return offset <= ts->size && len <= ts->size - offset;
}

static int ts_read(void *self, void *buf, uint32_t len, uint64_t offset)
{
	struct tier_store *ts = self;
	if (!in_bounds(ts, len, offset))
		return EINVAL;
	uint64_t t0 = monotonic_ns();
	unsigned char *out = buf;
	int rc = 0;
	while (len && rc == 0) {
		uint64_t b = offset >> BLOCK_SHIFT;
		uint32_t at = offset & (BLOCK - 1), n = BLOCK - at < len ? BLOCK - at : len;
		struct stripe *s = stripe_of(ts, b);
		bool from_tier = false;
		if (word_get(ts, b) == 0) { /* EMPTY, nothing queued: zeros without the lock */
			memset(out, 0, n);
		} else {
			pthread_mutex_lock(&s->lock);
			rc = read_locked(ts, b, at, n, out, &from_tier);
			pthread_mutex_unlock(&s->lock);
		}
		add(&s->gets, 1);
		if (from_tier)
			add(&s->gets_succ, 1);
		out += n;
		offset += n;
		len -= n;
	}
	sweep(ts, false);
	add(&ts->read_requests, 1);
	add(&ts->read_ns, (int64_t)(monotonic_ns() - t0));
	return rc;
}

/* Write n bytes at `at` in block b (data NULL: zeros). */
static int write_block(struct tier_store *ts, uint64_t b, const unsigned char *data, uint32_t at, uint32_t n)
{
	struct stripe *s = stripe_of(ts, b);
	int rc = 0;
	bool used = false;
	mirror_reserve(ts);
	pthread_mutex_lock(&s->lock);
	if (n == BLOCK && data) {
		used = put_locked(ts, b, data);
	} else {
		unsigned char merged[BLOCK];
		bool from_tier;
		rc = read_locked(ts, b, 0, BLOCK, merged, &from_tier);
		if (rc == 0) {
			if (data)
				memcpy(merged + at, data, n);
			else
				memset(merged + at, 0, n);
			used = put_locked(ts, b, merged);
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (!used)
		mirror_unreserve(ts);
	return rc;
}

/* Lock the stripes of blocks [first, first + count) (count <= STRIPES: each
 * once) in stripe order: the one order of every holder of several. */
static void stripes_lock(struct tier_store *ts, uint64_t first, unsigned count)
{
	unsigned start = (unsigned)(first % STRIPES), wrapped = start + count > STRIPES ? start + count - STRIPES : 0;
	for (unsigned i = 0; i < wrapped; i++)
		pthread_mutex_lock(&ts->stripes[i].lock);
	for (unsigned i = start; i < start + count - wrapped; i++)
		pthread_mutex_lock(&ts->stripes[i].lock);
}

static void stripes_unlock(struct tier_store *ts, uint64_t first, unsigned count)
{
	for (unsigned i = 0; i < count; i++)
		pthread_mutex_unlock(&stripe_of(ts, first + i)->lock);
}

/* Write up to `count` whole blocks from `first` (count <= WRITE_BATCH):
 * every block is placed first, then all the remote ones are written
 * together, so the request waits for one round trip, not one per block.  A
 * block completes as in write_block: on its remote and queued to the disk
 * copy.  Mirror credits: one is waited for before the stripe locks (as
 * write_block does: no one may wait for one holding a stripe); a block that
 * needs another (a remote or disk block, a punch) takes it only if free at
 * once, else the batch ends before that block.  So a batch of RAM-pool
 * blocks, which get no disk copy, waits for the queue once at most, not
 * once per block.  Returns the number of blocks written (at least 1). */
static unsigned write_blocks(struct tier_store *ts, uint64_t first, const unsigned char *data, unsigned count)
{
	struct put puts[WRITE_BATCH];
	bool remote = false;
	unsigned credits = 1, n = 0;
	mirror_reserve(ts);
	stripes_lock(ts, first, count);
	for (; n < count; n++) {
		if (credits == 0 && !mirror_try_reserve(ts))
			break;
		credits += credits == 0;
		puts[n] = (struct put){.b = first + n, .data = data + (size_t)n * BLOCK};
		bool pending = put_begin(ts, &puts[n]);
		/* a pending remote block keeps its credit for put_finish */
		credits -= pending || puts[n].used;
		remote |= pending;
	}
	if (remote)
		remote_write_batch(ts, puts, n);
	for (unsigned i = 0; i < n; i++) {
		if (!puts[i].r)
			continue;
		put_finish(ts, &puts[i]);
		credits += !puts[i].used;
	}
	stripes_unlock(ts, first, count);
	while (credits--)
		mirror_unreserve(ts);
	return n;
}

static int ts_write(void *self, const void *buf, uint32_t len, uint64_t offset)
{
	struct tier_store *ts = self;
	if (!in_bounds(ts, len, offset))
		return EINVAL;
	uint64_t t0 = monotonic_ns();
	const unsigned char *in = buf;
	int rc = 0;
	while (len && rc == 0) {
		uint32_t at = offset & (BLOCK - 1), n = BLOCK - at < len ? BLOCK - at : len;
		if (at == 0 && len >= BLOCK) {
			unsigned whole = len / BLOCK < WRITE_BATCH ? len / BLOCK : WRITE_BATCH;
			n = write_blocks(ts, offset >> BLOCK_SHIFT, in, whole) * BLOCK;
		} else {
			rc = write_block(ts, offset >> BLOCK_SHIFT, in, at, n);
		}
		in += n;
		offset += n;
		len -= n;
	}
	sweep(ts, false);
	add(&ts->write_requests, 1);
	add(&ts->write_ns, (int64_t)(monotonic_ns() - t0));
	return rc;
}

static int ts_flush(void *self)
{
	struct tier_store *ts = self;
	sweep(ts, false);
	return mirror_drain(ts);
}

/* Trim and write-zeroes: whole blocks are flushed, partial ones zeroed (a put). */
static int ts_zero(void *self, uint32_t len, uint64_t offset)
{
	struct tier_store *ts = self;
	if (!in_bounds(ts, len, offset))
		return EINVAL;
	int rc = 0;
	while (len && rc == 0) {
		uint64_t b = offset >> BLOCK_SHIFT;
		uint32_t at = offset & (BLOCK - 1), n = BLOCK - at < len ? BLOCK - at : len;
		if (n < BLOCK) {
			rc = write_block(ts, b, NULL, at, n);
		} else if (word_get(ts, b) != 0) { /* (EMPTY with nothing queued: already zeros) */
			struct stripe *s = stripe_of(ts, b);
			mirror_reserve(ts);
			pthread_mutex_lock(&s->lock);
			bool used = clear_locked(ts, b, true);
			pthread_mutex_unlock(&s->lock);
			if (!used)
				mirror_unreserve(ts);
		}
		offset += n;
		len -= n;
	}
	sweep(ts, false);
	return rc;
}

const struct backend_ops tier_store_ops = {
	.read = ts_read,
	.write = ts_write,
	.flush = ts_flush,
	.trim = ts_zero,
	.write_zeroes = ts_zero,
};

/* ---- life cycle ---- */

static void destroy(struct tier_store *ts)
{
	struct mirror *m = &ts->mirror;
	if (m->started) {
		pthread_mutex_lock(&m->lock);
		m->stop = true;
		pthread_cond_signal(&m->work);
		pthread_mutex_unlock(&m->lock);
		pthread_join(m->thread, NULL);
	}
	for (size_t i = 0; i < atomic_load(&ts->nremotes); i++)
		remote_free(ts->remotes[i]);
	if (ts->ram)
		ram_export_free(ts->ram);
	if (ts->fd >= 0)
		close(ts->fd);
	if (ts->disk_path)
		unlink(ts->disk_path);
	free(ts->disk_path);
	sem_destroy(&m->space);
	pthread_cond_destroy(&m->work);
	pthread_cond_destroy(&m->drained);
	pthread_mutex_destroy(&m->lock);
	free(m->entries);
	free(m->data);
	free(m->newest);
	for (size_t i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&ts->stripes[i].lock);
	pthread_mutex_destroy(&ts->admin_lock);
	free((void *)ts->words);
	free(ts);
}

static int check_config(const struct tier_store_config *cfg, struct ms_err *err)
{
	if (cfg->size == 0 || cfg->size % BLOCK)
		return ms_fail_input(err, "device size %llu is not a positive multiple of %u", (unsigned long long)cfg->size,
				     BLOCK);
	if (!cfg->disk_path || !*cfg->disk_path)
		return ms_fail_input(err, "the tier store needs a disk file");
	if (cfg->remote_count > TIER_MAX_REMOTES || (cfg->remote_count && !cfg->remote_uris))
		return ms_fail_input(err, "at most %d remotes, given as URIs", TIER_MAX_REMOTES);
	if (cfg->mirror_queue_blocks > TIER_MIRROR_QUEUE_MAX)
		return ms_fail_input(err, "mirror queue of %u blocks is above %u", cfg->mirror_queue_blocks,
				     TIER_MIRROR_QUEUE_MAX);
	if (cfg->remote_connections > MAX_CONNECTIONS)
		return ms_fail_input(err, "at most %d connections per remote", MAX_CONNECTIONS);
	return 0;
}

int tier_store_open(const struct tier_store_config *cfg, struct tier_store **out, struct ms_err *err)
{
	if (check_config(cfg, err) < 0)
		return -1;
	struct tier_store *ts = aligned_alloc(CACHELINE, sizeof *ts);
	if (!ts)
		return ms_fail_errno(err, "cannot allocate a tier store");
	memset(ts, 0, sizeof *ts);
	ts->fd = -1;
	ts->size = cfg->size;
	ts->nblocks = cfg->size / BLOCK;
	ts->sync_on_flush = cfg->sync_on_flush;
	ts->nconns_wanted = cfg->remote_connections ? cfg->remote_connections : DEFAULT_CONNECTIONS;
	ts->timeout_ms = cfg->remote_timeout_ms ? cfg->remote_timeout_ms : TIER_REMOTE_TIMEOUT_DEFAULT_MS;
	ts->on_remote_dead = cfg->on_remote_dead;
	ts->callback_ctx = cfg->callback_ctx;
	pthread_mutex_init(&ts->admin_lock, NULL);
	for (size_t i = 0; i < STRIPES; i++)
		pthread_mutex_init(&ts->stripes[i].lock, NULL);
	struct mirror *m = &ts->mirror;
	m->cap = cfg->mirror_queue_blocks ? cfg->mirror_queue_blocks : TIER_MIRROR_QUEUE_DEFAULT;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->work, NULL);
	pthread_cond_init(&m->drained, NULL);
	sem_init(&m->space, 0, m->cap);
	tier_store_set_target(ts, cfg->tier_target_bytes);

	/* calloc of a large table maps zero pages lazily: untouched parts cost nothing */
	ts->words = calloc(ts->nblocks, sizeof *ts->words);
	m->entries = calloc(m->cap, sizeof *m->entries);
	m->newest = calloc(ts->nblocks, sizeof *m->newest);
	m->data = aligned_alloc(BLOCK, (size_t)m->cap * BLOCK);
	if (!ts->words || !m->entries || !m->newest || !m->data) {
		destroy(ts);
		return ms_fail_errno(err, "cannot allocate the block map of a %llu-byte device",
				     (unsigned long long)cfg->size);
	}
	/* The device starts empty: so does the file, sparse, at the device size. */
	ts->fd = open(cfg->disk_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (ts->fd >= 0 && !(ts->disk_path = strdup(cfg->disk_path))) {
		destroy(ts);
		return ms_fail(err, "out of memory");
	}
	if (ts->fd < 0 || ftruncate(ts->fd, 0) != 0 || ftruncate(ts->fd, (off_t)cfg->size) != 0) {
		ms_fail_errno(err, "disk file %s", cfg->disk_path);
		destroy(ts);
		return -1;
	}
	if (cfg->ram_pool && ram_export_new(cfg->ram_pool, cfg->size, &ts->ram, err) < 0) {
		destroy(ts);
		return -1;
	}
	for (size_t i = 0; i < cfg->remote_count; i++) {
		if (tier_store_add_remote(ts, cfg->remote_uris[i], err) < 0) {
			destroy(ts);
			return -1;
		}
	}
	int e = pthread_create(&m->thread, NULL, mirror_main, ts);
	if (e) {
		destroy(ts);
		errno = e;
		return ms_fail_errno(err, "cannot start the disk mirror");
	}
	m->started = true;
	*out = ts;
	return 0;
}

void tier_store_close(struct tier_store *ts)
{
	if (ts)
		destroy(ts); /* the mirror thread drains the queue before it stops */
}

void tier_store_set_target(struct tier_store *ts, uint64_t bytes)
{
	atomic_store_explicit(&ts->target_bytes, bytes, RELAXED);
	atomic_store_explicit(&ts->target_blocks, bytes == UINT64_MAX ? UINT64_MAX : bytes / BLOCK, RELAXED);
}

int tier_store_add_remote(struct tier_store *ts, const char *uri, struct ms_err *err)
{
	if (atomic_load(&ts->nremotes) >= TIER_MAX_REMOTES)
		return ms_fail_input(err, "cannot add %s: already %d remotes", uri, TIER_MAX_REMOTES);
	struct remote *r = NULL;
	if (remote_connect(ts, uri, &r, err) < 0)
		return -1;
	pthread_mutex_lock(&ts->admin_lock);
	size_t n = atomic_load_explicit(&ts->nremotes, RELAXED);
	if (n < TIER_MAX_REMOTES) {
		ts->remotes[n] = r;
		atomic_store_explicit(&ts->nremotes, n + 1, memory_order_release);
	}
	pthread_mutex_unlock(&ts->admin_lock);
	if (n >= TIER_MAX_REMOTES) {
		remote_free(r);
		return ms_fail_input(err, "cannot add %s: already %d remotes", uri, TIER_MAX_REMOTES);
	}
	sweep(ts, false);
	return 0;
}

int tier_store_release_remote(struct tier_store *ts, size_t index, struct ms_err *err)
{
	struct remote *r = remote_get(ts, (unsigned)index);
	if (!r)
		return ms_fail_input(err, "no remote %zu", index);
	if (!remote_alive(r))
		return ms_fail_input(err, "remote %s is not in use any more", r->uri);
	/* From now on the disk copy is the only one of the remote's blocks: it
	 * must hold them all.  Copies queued later are of writes that the mirror
	 * has in the queue too. */
	if (mirror_drain(ts) != 0)
		return ms_fail(err, "the disk copy %s is incomplete (%s): remote %s keeps the device's blocks",
			       ts->disk_path, strerror(atomic_load(&ts->mirror.error)), r->uri);
	remote_set_state(ts, r, TIER_REMOTE_RELEASED, "released");
	/* Every block is off the remote when the sweep returns: the ones it finds,
	 * and the ones placed meanwhile, demoted by their writer (put_locked).
	 * Then the sweep closes its connections. */
	sweep(ts, true);
	return 0;
}

void tier_store_get_stats(struct tier_store *ts, struct tier_stats *out)
{
	sweep(ts, false);
	struct tier_stats st = {.size_bytes = ts->size};
	for (size_t i = 0; i < STRIPES; i++) {
		struct stripe *s = &ts->stripes[i];
		st.puts_total += atomic_load_explicit(&s->puts_total, RELAXED);
		st.puts_succ += atomic_load_explicit(&s->puts_succ, RELAXED);
		st.gets += atomic_load_explicit(&s->gets, RELAXED);
		st.gets_succ += atomic_load_explicit(&s->gets_succ, RELAXED);
		st.flushes += atomic_load_explicit(&s->flushes, RELAXED);
	}
	st.tier_used_bytes = atomic_load_explicit(&ts->tier_used, RELAXED) * BLOCK;
	st.tier_target_bytes = atomic_load_explicit(&ts->target_bytes, RELAXED);
	st.ram_bytes = atomic_load_explicit(&ts->ram_blocks, RELAXED) * BLOCK;
	st.disk_bytes = atomic_load_explicit(&ts->disk_blocks, RELAXED) * BLOCK;
	size_t n = atomic_load_explicit(&ts->nremotes, memory_order_acquire);
	for (size_t i = 0; i < n; i++) {
		struct remote *r = ts->remotes[i];
		st.remote_bytes += atomic_load_explicit(&r->used, RELAXED) * BLOCK;
		switch (atomic_load(&r->state)) {
		case TIER_REMOTE_ALIVE:
			st.remotes_alive++;
			st.remote_capacity_bytes += r->nslots * BLOCK;
			break;
		case TIER_REMOTE_DEAD: st.remotes_dead++; break;
		default: st.remotes_released++; break;
		}
	}
	struct mirror *m = &ts->mirror;
	pthread_mutex_lock(&m->lock);
	st.mirror_pending_bytes = (m->tail - m->head) * BLOCK;
	pthread_mutex_unlock(&m->lock);
	st.mirror_written_bytes = atomic_load_explicit(&m->written_blocks, RELAXED) * BLOCK;
	st.mirror_errors = atomic_load_explicit(&m->errors, RELAXED);
	st.mirror_waits = atomic_load_explicit(&m->waits, RELAXED);
	st.mirror_wait_ns = atomic_load_explicit(&m->wait_ns, RELAXED);
	st.mirror_queued_bytes = atomic_load_explicit(&m->queued_blocks, RELAXED) * BLOCK;
	st.mirror_coalesced_bytes = atomic_load_explicit(&m->coalesced_blocks, RELAXED) * BLOCK;
	st.failovers = atomic_load_explicit(&ts->failovers, RELAXED);
	st.failover_bytes = atomic_load_explicit(&ts->failover_blocks, RELAXED) * BLOCK;
	st.read_requests = atomic_load_explicit(&ts->read_requests, RELAXED);
	st.write_requests = atomic_load_explicit(&ts->write_requests, RELAXED);
	st.read_ns = atomic_load_explicit(&ts->read_ns, RELAXED);
	st.write_ns = atomic_load_explicit(&ts->write_ns, RELAXED);
	*out = st;
}

int tier_store_find_alive_remote(struct tier_store *ts, const char *uri, size_t *index)
{
	size_t n = atomic_load_explicit(&ts->nremotes, memory_order_acquire);
	for (size_t i = 0; i < n; i++)
		if (remote_alive(ts->remotes[i]) && strcmp(ts->remotes[i]->uri, uri) == 0) {
			*index = i;
			return 1;
		}
	return 0;
}

size_t tier_store_get_remotes(struct tier_store *ts, struct tier_remote_info *out, size_t max)
{
	size_t n = atomic_load_explicit(&ts->nremotes, memory_order_acquire);
	for (size_t i = 0; i < n && i < max; i++) {
		struct remote *r = ts->remotes[i];
		out[i] = (struct tier_remote_info){
			.state = atomic_load(&r->state),
			.size_bytes = r->size,
			.used_bytes = atomic_load_explicit(&r->used, RELAXED) * BLOCK,
			.connections = atomic_load(&r->connected),
		};
		snprintf(out[i].uri, sizeof out[i].uri, "%s", r->uri);
	}
	return n;
}
