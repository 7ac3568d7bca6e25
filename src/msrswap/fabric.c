#include "fabric.h"

#include <errno.h>

#ifndef HAVE_LIBFABRIC

#define NOT_BUILT "not supported: built without libfabric (install libfabric-dev and rebuild)"

bool fabric_built_in(void) { return false; }
int fabric_server_open(const char *provider, const char *host, bool busy_poll, struct fabric_server **out,
		       struct ms_err *err)
{
	return ms_fail(err, "--fabric: " NOT_BUILT);
}
void fabric_server_close(struct fabric_server *fs) {}
bool fabric_server_pins(const struct fabric_server *fs) { return false; }
const char *fabric_server_provider(const struct fabric_server *fs) { return ""; }
int fabric_register(struct fabric_server *fs, void *base, uint64_t len, struct fabric_region **out,
		    struct ms_err *err)
{
	return ms_fail(err, "fabric: " NOT_BUILT);
}
void fabric_deregister(struct fabric_region *region) {}
const char *fabric_region_descriptor(const struct fabric_region *region) { return ""; }
int fabric_client_open(const char *descriptor, const char *provider, unsigned timeout_ms,
		       struct fabric_client **out, struct ms_err *err)
{
	return ms_fail(err, "fabric:// remotes: " NOT_BUILT);
}
void fabric_client_close(struct fabric_client *fc) {}
uint64_t fabric_client_size(const struct fabric_client *fc) { return 0; }
int fabric_read(struct fabric_client *fc, void *buf, size_t len, uint64_t offset, char *why, size_t why_len) { return EIO; }
int fabric_write(struct fabric_client *fc, const void *buf, size_t len, uint64_t offset, char *why, size_t why_len) { return EIO; }
bool fabric_client_broken(const struct fabric_client *fc) { return true; }
int fabric_client_reconnect(struct fabric_client *fc, struct ms_err *err) { return ms_fail(err, NOT_BUILT); }
int fabric_submit(struct fabric_client *fc, bool write, const void *data, size_t len, uint64_t offset, int *ticket) { return EIO; }
void *fabric_ticket_buffer(struct fabric_client *fc, int ticket) { return NULL; }
int fabric_reap(struct fabric_client *fc, int *ticket, char *why, size_t why_len) { return EIO; }

#else

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#include "units.h"

#define FI_API FI_VERSION(1, 9)
#define SLOTS 64
#define ADDR_MAX 256
#define KEY_TRIES 16
/* the memory-registration modes we can work with: never the legacy
 * FI_MR_BASIC; verbs asks for all four, software providers for none */
#define MR_MODES_WE_HANDLE (FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY)

bool fabric_built_in(void)
{
	return true;
}

/* ---- what both sides share ---- */

struct fabric_ep {
	struct fi_info *info;
	struct fid_fabric *fabric;
	struct fid_domain *domain;
	struct fid_cq *cq;
	struct fid_av *av;
	struct fid_ep *ep;
};

static struct fi_info *hints_for(const char *provider, uint32_t addr_format, const void *dest, size_t dest_len)
{
	struct fi_info *h = fi_allocinfo();
	if (!h)
		return NULL;
	h->caps = FI_RMA | FI_READ | FI_WRITE | FI_REMOTE_READ | FI_REMOTE_WRITE;
	h->mode = FI_CONTEXT | FI_CONTEXT2; /* our operation contexts begin with a struct fi_context2 */
	h->ep_attr->type = FI_EP_RDM;
	h->domain_attr->mr_mode = MR_MODES_WE_HANDLE;
	/* registrations (control threads), the progress thread and I/O threads share the domain */
	h->domain_attr->threading = FI_THREAD_SAFE;
	h->addr_format = addr_format;
	if (provider && !(h->fabric_attr->prov_name = strdup(provider))) {
		fi_freeinfo(h);
		return NULL;
	}
	if (dest && (h->dest_addr = malloc(dest_len))) {
		memcpy(h->dest_addr, dest, dest_len);
		h->dest_addrlen = dest_len;
	}
	return h;
}

/* "tcp;ofi_rxm, net, ...": the providers fi_getinfo offers here for RMA on RDM endpoints. */
static void offered_providers(char *out, size_t len)
{
	struct fi_info *hints = hints_for(NULL, 0, NULL, 0), *list = NULL;
	size_t used = 0;
	out[0] = '\0';
	if (hints && fi_getinfo(FI_API, NULL, NULL, 0, hints, &list) == 0) {
		for (struct fi_info *i = list; i; i = i->next) {
			const char *name = i->fabric_attr->prov_name;
			bool seen = false;
			for (struct fi_info *j = list; j != i && !seen; j = j->next)
				seen = strcmp(j->fabric_attr->prov_name, name) == 0;
			if (!seen && used + strlen(name) + 3 < len)
				used += (size_t)snprintf(out + used, len - used, "%s%s", used ? ", " : "", name);
		}
	}
	if (!used)
		snprintf(out, len, "none");
	fi_freeinfo(list);
	fi_freeinfo(hints);
}

static int fail_fi(struct ms_err *err, const char *what, int rc)
{
	return ms_fail(err, "%s: %s", what, fi_strerror(rc < 0 ? -rc : rc));
}

static void ep_close(struct fabric_ep *e)
{
	if (e->ep)
		fi_close(&e->ep->fid);
	if (e->av)
		fi_close(&e->av->fid);
	if (e->cq)
		fi_close(&e->cq->fid);
	if (e->domain)
		fi_close(&e->domain->fid);
	if (e->fabric)
		fi_close(&e->fabric->fid);
	fi_freeinfo(e->info);
	memset(e, 0, sizeof *e);
}

/* Open an RDM endpoint of provider: bound to node (server, FI_SOURCE) or able to reach dest (client). */
static int ep_open(struct fabric_ep *e, const char *provider, const char *node, uint32_t addr_format, const void *dest,
		   size_t dest_len, enum fi_wait_obj wait, struct ms_err *err)
{
	memset(e, 0, sizeof *e);
	struct fi_info *hints = hints_for(provider, addr_format, dest, dest_len);
	if (!hints)
		return ms_fail(err, "out of memory");
	int rc = fi_getinfo(FI_API, node, node ? "0" : NULL, node ? FI_SOURCE : 0, hints, &e->info);
	fi_freeinfo(hints);
	if (rc) {
		char offered[512];
		offered_providers(offered, sizeof offered);
		e->info = NULL;
		return ms_fail(err, "fabric provider '%s'%s%s: %s, or it cannot do one-sided RMA on reliable datagram "
			       "endpoints here; fi_getinfo offers: %s",
			       provider, node ? " on " : "", node ? node : "", fi_strerror(-rc), offered);
	}
	struct fi_cq_attr cq_attr = {.format = FI_CQ_FORMAT_CONTEXT, .wait_obj = wait};
	struct fi_av_attr av_attr = {.type = FI_AV_UNSPEC};
	const char *step = "fi_fabric";
	if (!(rc = fi_fabric(e->info->fabric_attr, &e->fabric, NULL)) &&
	    !(rc = (step = "fi_domain", fi_domain(e->fabric, e->info, &e->domain, NULL))) &&
	    !(rc = (step = "fi_cq_open", fi_cq_open(e->domain, &cq_attr, &e->cq, NULL))) &&
	    !(rc = (step = "fi_av_open", fi_av_open(e->domain, &av_attr, &e->av, NULL))) &&
	    !(rc = (step = "fi_endpoint", fi_endpoint(e->domain, e->info, &e->ep, NULL))) &&
	    !(rc = (step = "fi_ep_bind", fi_ep_bind(e->ep, &e->cq->fid, FI_TRANSMIT | FI_RECV))) &&
	    !(rc = fi_ep_bind(e->ep, &e->av->fid, 0)))
		rc = (step = "fi_enable", fi_enable(e->ep));
	if (rc) {
		fail_fi(err, step, rc);
		ep_close(e);
		return ms_fail_prefix(err, "fabric provider '%s'", provider);
	}
	return 0;
}

static void hex_encode(const unsigned char *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
	out[2 * n] = '\0';
}

static size_t hex_decode(const char *s, unsigned char *out, size_t max)
{
	size_t n = 0;
	unsigned v;
	while (n < max && sscanf(s + 2 * n, "%2x", &v) == 1 && s[2 * n + 1])
		out[n++] = (unsigned char)v;
	return s[2 * n] ? 0 : n;
}

/* ---- the provider side ---- */

struct fabric_server {
	struct fabric_ep e;
	char provider[64];
	char addr_hex[2 * ADDR_MAX + 1];
	uint64_t mr_mode;
	bool busy_poll;
	atomic_bool stop;
	pthread_t progress;
};

struct fabric_region {
	struct fabric_server *fs;
	struct fid_mr *mr;
	char descriptor[FABRIC_DESCRIPTOR_MAX];
};

/* Software providers move RMA data in the target's process: someone there
 * must drive the transport, or a client's operation never completes. */
static void *progress_main(void *arg)
{
	struct fabric_server *fs = arg;
	struct fi_cq_entry entries[16];
	while (!atomic_load_explicit(&fs->stop, memory_order_relaxed)) {
		ssize_t n = fs->busy_poll ? fi_cq_read(fs->e.cq, entries, 16) : fi_cq_sread(fs->e.cq, entries, 16, NULL, 100);
		if (n == -FI_EAVAIL) {
			struct fi_cq_err_entry ee = {0};
			fi_cq_readerr(fs->e.cq, &ee, 0); /* a peer that went away: nothing of ours failed */
		}
	}
	return NULL;
}

int fabric_server_open(const char *provider, const char *host, bool busy_poll, struct fabric_server **out,
		       struct ms_err *err)
{
	struct fabric_server *fs = calloc(1, sizeof *fs);
	if (!fs)
		return ms_fail_errno(err, "fabric");
	snprintf(fs->provider, sizeof fs->provider, "%s", provider);
	fs->busy_poll = busy_poll;
	if (ep_open(&fs->e, provider, host, 0, NULL, 0, busy_poll ? FI_WAIT_NONE : FI_WAIT_UNSPEC, err) < 0) {
		free(fs);
		return -1;
	}
	fs->mr_mode = fs->e.info->domain_attr->mr_mode;
	unsigned char addr[ADDR_MAX];
	size_t len = sizeof addr;
	int rc = fi_getname(&fs->e.ep->fid, addr, &len);
	if (rc == 0)
		rc = pthread_create(&fs->progress, NULL, progress_main, fs) ? -FI_ENOMEM : 0;
	if (rc) {
		fail_fi(err, "fabric endpoint address", rc);
		ep_close(&fs->e);
		free(fs);
		return -1;
	}
	hex_encode(addr, len, fs->addr_hex);
	*out = fs;
	return 0;
}

void fabric_server_close(struct fabric_server *fs)
{
	if (!fs)
		return;
	atomic_store(&fs->stop, true);
	pthread_join(fs->progress, NULL);
	ep_close(&fs->e);
	free(fs);
}

bool fabric_server_pins(const struct fabric_server *fs)
{
	return fs->mr_mode & (FI_MR_ALLOCATED | FI_MR_LOCAL);
}

const char *fabric_server_provider(const struct fabric_server *fs)
{
	return fs->provider;
}

/* A random key within the provider's key size: a peer cannot guess another export's key. */
static uint64_t random_key(size_t key_size)
{
	uint64_t key = 0;
	if (getrandom(&key, sizeof key, 0) != sizeof key)
		key = monotonic_ns() * 0x9e3779b97f4a7c15ull;
	return key_size && key_size < 8 ? key & ((1ull << (8 * key_size)) - 1) : key;
}

int fabric_register(struct fabric_server *fs, void *base, uint64_t len, struct fabric_region **out,
		    struct ms_err *err)
{
	struct fabric_region *r = calloc(1, sizeof *r);
	if (!r)
		return ms_fail_errno(err, "fabric registration");
	r->fs = fs;
	bool provider_keys = fs->mr_mode & FI_MR_PROV_KEY;
	int rc = -FI_ENOKEY;
	for (int tries = 0; rc == -FI_ENOKEY && tries < KEY_TRIES; tries++) {
		uint64_t requested = provider_keys ? 0 : random_key(fs->e.info->domain_attr->mr_key_size);
		rc = fi_mr_reg(fs->e.domain, base, len, FI_REMOTE_READ | FI_REMOTE_WRITE, 0, requested, 0, &r->mr, NULL);
	}
	if (rc) {
		free(r);
		return fail_fi(err, "fabric memory registration (fi_mr_reg)", rc);
	}
	uint64_t raddr = fs->mr_mode & FI_MR_VIRT_ADDR ? (uint64_t)(uintptr_t)base : 0;
	snprintf(r->descriptor, sizeof r->descriptor, "%s %u %s %llx %llx %llx", fs->provider,
		 (unsigned)fs->e.info->addr_format, fs->addr_hex, (unsigned long long)fi_mr_key(r->mr),
		 (unsigned long long)raddr, (unsigned long long)len);
	*out = r;
	return 0;
}

void fabric_deregister(struct fabric_region *r)
{
	if (!r)
		return;
	fi_close(&r->mr->fid); /* the key is dead from here: the memory may be reused */
	free(r);
}

const char *fabric_region_descriptor(const struct fabric_region *r)
{
	return r->descriptor;
}

/* ---- the client side ---- */

enum { SLOT_FREE, SLOT_BUSY, SLOT_DONE };

struct slot {
	struct fi_context2 ctx; /* first: the completion's op_context is the slot */
	_Atomic int state;
	int status;
	bool async;
	unsigned char *buf; /* FABRIC_IO_MAX bytes of the registered bounce area */
};

struct fabric_client {
	char provider[64];
	uint32_t addr_format;
	unsigned char addr[ADDR_MAX];
	size_t addr_len;
	uint64_t key, raddr, size;
	unsigned timeout_ms;

	struct fabric_ep e;
	fi_addr_t peer;
	struct fid_mr *bounce_mr; /* FI_MR_LOCAL providers only */
	void *desc;
	unsigned char *bounce;

	pthread_mutex_t slot_lock, cq_lock;
	struct slot slots[SLOTS];
	atomic_bool broken;
	char broken_why[160];
};

static int parse_descriptor(struct fabric_client *fc, const char *d, const char *provider, struct ms_err *err)
{
	char prov[64], addr_hex[2 * ADDR_MAX + 1];
	unsigned long long key, raddr, size;
	unsigned format;
	if (sscanf(d, "%63s %u %512s %llx %llx %llx", prov, &format, addr_hex, &key, &raddr, &size) != 6 ||
	    !(fc->addr_len = hex_decode(addr_hex, fc->addr, sizeof fc->addr)) || !size)
		return ms_fail(err, "the provider's fabric descriptor is malformed: '%.100s'", d);
	if (provider && *provider && strcmp(provider, prov) != 0)
		return ms_fail(err, "fabric provider '%s' wanted, the export is registered with '%s'", provider, prov);
	snprintf(fc->provider, sizeof fc->provider, "%s", prov);
	fc->addr_format = format;
	fc->key = key;
	fc->raddr = raddr;
	fc->size = size;
	return 0;
}

static void slots_reset(struct fabric_client *fc)
{
	for (int i = 0; i < SLOTS; i++) {
		fc->slots[i].state = SLOT_FREE;
		fc->slots[i].async = false;
		fc->slots[i].buf = fc->bounce + (size_t)i * FABRIC_IO_MAX;
	}
	atomic_store(&fc->broken, false);
}

static int client_connect(struct fabric_client *fc, struct ms_err *err)
{
	if (ep_open(&fc->e, fc->provider, NULL, fc->addr_format, fc->addr, fc->addr_len, FI_WAIT_NONE, err) < 0)
		return -1;
	int rc = fi_av_insert(fc->e.av, fc->addr, 1, &fc->peer, 0, NULL);
	if (rc != 1) {
		ep_close(&fc->e);
		return ms_fail(err, "fabric: the provider's address is not usable (fi_av_insert)");
	}
	fc->desc = NULL;
	if (fc->e.info->domain_attr->mr_mode & FI_MR_LOCAL) {
		rc = fi_mr_reg(fc->e.domain, fc->bounce, (size_t)SLOTS * FABRIC_IO_MAX, FI_READ | FI_WRITE, 0, 0, 0,
			       &fc->bounce_mr, NULL);
		if (rc) {
			ep_close(&fc->e);
			return fail_fi(err, "fabric: registering the local buffers", rc);
		}
		fc->desc = fi_mr_desc(fc->bounce_mr);
	}
	slots_reset(fc);
	return 0;
}

static void client_disconnect(struct fabric_client *fc)
{
	/* the endpoint first: it may still reference the bounce buffers */
	if (fc->e.ep) {
		fi_close(&fc->e.ep->fid);
		fc->e.ep = NULL;
	}
	if (fc->bounce_mr) {
		fi_close(&fc->bounce_mr->fid);
		fc->bounce_mr = NULL;
	}
	ep_close(&fc->e);
}

int fabric_client_open(const char *descriptor, const char *provider, unsigned timeout_ms,
		       struct fabric_client **out, struct ms_err *err)
{
	struct fabric_client *fc = calloc(1, sizeof *fc);
	if (!fc)
		return ms_fail_errno(err, "fabric client");
	fc->timeout_ms = timeout_ms;
	pthread_mutex_init(&fc->slot_lock, NULL);
	pthread_mutex_init(&fc->cq_lock, NULL);
	fc->bounce = mmap(NULL, (size_t)SLOTS * FABRIC_IO_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (fc->bounce == MAP_FAILED) {
		fc->bounce = NULL;
		ms_fail_errno(err, "fabric client buffers");
	} else if (parse_descriptor(fc, descriptor, provider, err) == 0 && client_connect(fc, err) == 0) {
		*out = fc;
		return 0;
	}
	fabric_client_close(fc);
	return -1;
}

void fabric_client_close(struct fabric_client *fc)
{
	if (!fc)
		return;
	client_disconnect(fc);
	if (fc->bounce)
		munmap(fc->bounce, (size_t)SLOTS * FABRIC_IO_MAX);
	pthread_mutex_destroy(&fc->slot_lock);
	pthread_mutex_destroy(&fc->cq_lock);
	free(fc);
}

uint64_t fabric_client_size(const struct fabric_client *fc)
{
	return fc->size;
}

bool fabric_client_broken(const struct fabric_client *fc)
{
	return atomic_load(&fc->broken);
}

int fabric_client_reconnect(struct fabric_client *fc, struct ms_err *err)
{
	client_disconnect(fc);
	return client_connect(fc, err);
}

static void set_broken(struct fabric_client *fc, const char *why)
{
	pthread_mutex_lock(&fc->slot_lock);
	if (!atomic_load(&fc->broken))
		snprintf(fc->broken_why, sizeof fc->broken_why, "%s", why);
	atomic_store(&fc->broken, true);
	pthread_mutex_unlock(&fc->slot_lock);
}

/* Read what has completed (and drive the provider's progress). */
static void progress(struct fabric_client *fc)
{
	struct fi_cq_entry entries[16];
	pthread_mutex_lock(&fc->cq_lock);
	ssize_t n = fi_cq_read(fc->e.cq, entries, 16);
	for (ssize_t i = 0; i < n; i++) {
		struct slot *s = entries[i].op_context;
		s->status = 0;
		atomic_store_explicit(&s->state, SLOT_DONE, memory_order_release);
	}
	if (n == -FI_EAVAIL) {
		struct fi_cq_err_entry ee = {0};
		if (fi_cq_readerr(fc->e.cq, &ee, 0) > 0 && ee.op_context) {
			struct slot *s = ee.op_context;
			s->status = EIO;
			char why[160];
			snprintf(why, sizeof why, "fabric: %s", fi_strerror(ee.err));
			set_broken(fc, why); /* the peer went away, or revoked the key */
			atomic_store_explicit(&s->state, SLOT_DONE, memory_order_release);
		}
	}
	pthread_mutex_unlock(&fc->cq_lock);
}

static struct slot *slot_get(struct fabric_client *fc, uint64_t deadline)
{
	for (;;) {
		pthread_mutex_lock(&fc->slot_lock);
		for (int i = 0; i < SLOTS; i++)
			if (fc->slots[i].state == SLOT_FREE) {
				fc->slots[i].state = SLOT_BUSY;
				pthread_mutex_unlock(&fc->slot_lock);
				return &fc->slots[i];
			}
		pthread_mutex_unlock(&fc->slot_lock);
		if (monotonic_ns() >= deadline || atomic_load(&fc->broken))
			return NULL;
		progress(fc);
		sched_yield();
	}
}

static void slot_put(struct fabric_client *fc, struct slot *s)
{
	pthread_mutex_lock(&fc->slot_lock);
	s->async = false;
	s->state = SLOT_FREE;
	pthread_mutex_unlock(&fc->slot_lock);
}

static void why_set(char *why, size_t why_len, const char *fmt, const char *arg)
{
	if (why && why_len)
		snprintf(why, why_len, fmt, arg);
}

/* Post one operation of a slot; the provider may ask us to retry (its queue is full). */
static int post(struct fabric_client *fc, struct slot *s, bool write, size_t len, uint64_t offset, uint64_t deadline)
{
	struct iovec iov = {.iov_base = s->buf, .iov_len = len};
	void *desc = fc->desc;
	struct fi_rma_iov rma = {.addr = fc->raddr + offset, .len = len, .key = fc->key};
	struct fi_msg_rma msg = {.msg_iov = &iov, .desc = &desc, .iov_count = 1, .addr = fc->peer,
				 .rma_iov = &rma, .rma_iov_count = 1, .context = &s->ctx};
	for (;;) {
		/* a write completes once it is in the provider's memory, not just sent */
		ssize_t rc = write ? fi_writemsg(fc->e.ep, &msg, FI_COMPLETION | FI_DELIVERY_COMPLETE)
				   : fi_readmsg(fc->e.ep, &msg, FI_COMPLETION);
		if (rc != -FI_EAGAIN)
			return rc ? EIO : 0;
		if (monotonic_ns() >= deadline)
			return ETIMEDOUT;
		progress(fc);
	}
}

#define SPIN_NS 200000 /* poll without pause this long: a live provider answers within it */
#define NAP_NS 50000   /* then between polls: a hung provider must not cost a CPU per waiting thread */

/* Wait for a slot's completion until the deadline. */
static int wait_done(struct fabric_client *fc, struct slot *s, uint64_t deadline)
{
	uint64_t spin_until = 0;
	for (unsigned spins = 0; atomic_load_explicit(&s->state, memory_order_acquire) != SLOT_DONE; spins++) {
		progress(fc);
		if ((spins & 63) != 0)
			continue;
		uint64_t now = monotonic_ns();
		if (now >= deadline)
			return ETIMEDOUT;
		if (!spin_until)
			spin_until = now + SPIN_NS;
		else if (now >= spin_until)
			nanosleep(&(struct timespec){0, NAP_NS}, NULL);
	}
	return s->status;
}

static int run_chunk(struct fabric_client *fc, bool write, unsigned char *buf, size_t len, uint64_t offset,
		     uint64_t deadline, char *why, size_t why_len)
{
	struct slot *s = slot_get(fc, deadline);
	if (!s) {
		why_set(why, why_len, "%s", atomic_load(&fc->broken) ? fc->broken_why : "fabric: no free request slot in time");
		return atomic_load(&fc->broken) ? EIO : ETIMEDOUT;
	}
	if (write)
		memcpy(s->buf, buf, len);
	int rc = post(fc, s, write, len, offset, deadline);
	if (rc == 0)
		rc = wait_done(fc, s, deadline);
	if (rc == ETIMEDOUT) {
		/* The operation may still complete into this slot: it stays busy until
		 * the endpoint is closed (reconnect), and so does the connection. */
		char msg[160];
		snprintf(msg, sizeof msg, "fabric: no completion in %u ms", fc->timeout_ms);
		set_broken(fc, msg);
		why_set(why, why_len, "%s", msg);
		return ETIMEDOUT;
	}
	if (rc == 0 && !write)
		memcpy(buf, s->buf, len);
	if (rc)
		why_set(why, why_len, "%s", fc->broken_why[0] ? fc->broken_why : "fabric: the operation failed");
	slot_put(fc, s);
	return rc;
}

static int run_op(struct fabric_client *fc, bool write, unsigned char *buf, size_t len, uint64_t offset, char *why,
		  size_t why_len)
{
	if (offset > fc->size || len > fc->size - offset) {
		why_set(why, why_len, "%s", "fabric: outside the region");
		return EINVAL;
	}
	if (atomic_load(&fc->broken)) {
		why_set(why, why_len, "%s", fc->broken_why);
		return EIO;
	}
	uint64_t deadline = monotonic_ns() + (uint64_t)fc->timeout_ms * 1000000u;
	for (size_t done = 0; done < len;) {
		size_t n = len - done < FABRIC_IO_MAX ? len - done : FABRIC_IO_MAX;
		int rc = run_chunk(fc, write, buf + done, n, offset + done, deadline, why, why_len);
		if (rc)
			return rc;
		done += n;
	}
	return 0;
}

int fabric_read(struct fabric_client *fc, void *buf, size_t len, uint64_t offset, char *why, size_t why_len)
{
	return run_op(fc, false, buf, len, offset, why, why_len);
}

int fabric_write(struct fabric_client *fc, const void *buf, size_t len, uint64_t offset, char *why, size_t why_len)
{
	return run_op(fc, true, (unsigned char *)buf, len, offset, why, why_len);
}

int fabric_submit(struct fabric_client *fc, bool write, const void *data, size_t len, uint64_t offset, int *ticket)
{
	if (len > FABRIC_IO_MAX || offset > fc->size || len > fc->size - offset)
		return EINVAL;
	if (atomic_load(&fc->broken))
		return EIO;
	uint64_t deadline = monotonic_ns() + (uint64_t)fc->timeout_ms * 1000000u;
	struct slot *s = slot_get(fc, deadline);
	if (!s)
		return atomic_load(&fc->broken) ? EIO : ETIMEDOUT;
	s->async = true;
	if (write && data)
		memcpy(s->buf, data, len);
	int rc = post(fc, s, write, len, offset, deadline);
	if (rc) {
		set_broken(fc, "fabric: cannot post an operation");
		return rc;
	}
	*ticket = (int)(s - fc->slots);
	return 0;
}

void *fabric_ticket_buffer(struct fabric_client *fc, int ticket)
{
	return ticket >= 0 && ticket < SLOTS ? fc->slots[ticket].buf : NULL;
}

int fabric_reap(struct fabric_client *fc, int *ticket, char *why, size_t why_len)
{
	uint64_t deadline = monotonic_ns() + (uint64_t)fc->timeout_ms * 1000000u;
	for (unsigned spins = 0;; spins++) {
		for (int i = 0; i < SLOTS; i++) {
			struct slot *s = &fc->slots[i];
			if (s->async && atomic_load_explicit(&s->state, memory_order_acquire) == SLOT_DONE) {
				int status = s->status;
				if (status)
					why_set(why, why_len, "%s", fc->broken_why);
				*ticket = i;
				slot_put(fc, s);
				return status;
			}
		}
		progress(fc);
		if ((spins & 63) == 0 && monotonic_ns() >= deadline) {
			set_broken(fc, "fabric: no completion in time");
			why_set(why, why_len, "%s", fc->broken_why);
			return ETIMEDOUT;
		}
	}
}

#endif
