/* The provider's exports, by name: created at start (--export) or at run
 * time through the control socket, removed through it (a reservoir
 * export's memory is freed at once, whoever is still connected).  It is the export_source the NBD server looks exports up in. */
#ifndef MSRSWAP_REGISTRY_H
#define MSRSWAP_REGISTRY_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "backend.h"
#include "error.h"
#include "nbd_server.h"
#include "fabric.h"
#include "store_ram.h"

struct registry_entry {
	struct nbd_export export;
	void (*free_self)(void *self); /* releases the backend */
	uint64_t reserved;              /* reservoir bytes held for it (RAM exports) */
	unsigned refs;  /* connections using it, plus one while it is listed */
	bool removed;   /* unlisted: the entry is freed when the last connection leaves */
};

struct registry {
	pthread_mutex_t lock;
	struct registry_entry **entries;
	size_t count;
	struct ram_pool *pool;
	uint64_t capacity;  /* the reservoir */
	uint64_t reserved;  /* sum of the export sizes: never above capacity, so no write can fail for space */
	bool tls_required;  /* clients must use TLS (reported in pool_stats) */
	bool overcommit;    /* RAM exports may promise more than the host can back */
	/* serve --fabric: exports are slabs (store_slab.h) registered for
	 * one-sided RDMA, deregistered before their memory is freed */
	struct fabric_server *fabric;
	bool mlock;         /* lock the slabs' memory */
};

/* What this host can back now: MemAvailable + SwapFree, in bytes (0: unknown). */
uint64_t host_backable_bytes(void);

int registry_init(struct registry *r, struct ram_pool *pool, uint64_t capacity, struct ms_err *err);
void registry_destroy(struct registry *r);
/* A new RAM export; names are unique, sizes a positive multiple of 4096.
 * Unless r->overcommit, refused when the host cannot back it besides what
 * the other exports were promised and have not used yet. */
int registry_add(struct registry *r, const char *name, uint64_t size, struct ms_err *err);
/* An export backed by any backend (a consumer's tier store); on failure the
 * backend is freed with free_self. */
int registry_add_backend(struct registry *r, const char *name, uint64_t size, const struct backend_ops *ops,
			 void *self, void (*free_self)(void *self), struct ms_err *err);
/* The backend of an export, for operations other than I/O (NULL: none); not kept alive. */
void *registry_backend(struct registry *r, const char *name);
/* Unlist an export.  A reservoir export's memory and reservation are freed
 * at once, connections still using it get ESHUTDOWN; any other backend is
 * freed when its last connection leaves. */
int registry_remove(struct registry *r, const char *name, struct ms_err *err);
/* {"kind":"export_stats", ...} records, one per export, plus the pool. */
json_t *registry_stats(struct registry *r);
/* An export's service times as records carry them (export_stats, and the
 * client's tier): "latency_us", log2 buckets ({"lt_N": count, ...}), and
 * "latency_sum_us", their sum. */
json_t *export_latency_histogram(const struct export_stats *s);
double export_latency_sum_us(const struct export_stats *s);
/* The export_source view for the NBD server. */
void registry_source(struct registry *r, struct export_source *src);

#endif
