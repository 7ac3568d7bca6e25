#include "registry.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jsonl.h"
#include "nbd_proto.h"
#include "procfs.h"
#include "store_slab.h"

int registry_init(struct registry *r, struct ram_pool *pool, uint64_t capacity, struct ms_err *err)
{
	memset(r, 0, sizeof *r);
	r->pool = pool;
	r->capacity = capacity;
	if (pthread_mutex_init(&r->lock, NULL))
		return ms_fail(err, "cannot create a mutex");
	return 0;
}

static void entry_free(struct registry_entry *e)
{
	if (e->free_self)
		e->free_self(e->export.self);
	free(e->export.name);
	free(e->export.description);
	free(e->export.fabric_context);
	free(e);
}

/* Drop a reference (with r->lock held); the last one frees the export and its reservation. */
static void entry_put(struct registry *r, struct registry_entry *e)
{
	if (--e->refs)
		return;
	r->reserved -= e->reserved;
	entry_free(e);
}

void registry_destroy(struct registry *r)
{
	for (size_t i = 0; i < r->count; i++)
		entry_put(r, r->entries[i]);
	free(r->entries);
	pthread_mutex_destroy(&r->lock);
}

static struct registry_entry *find_locked(struct registry *r, const char *name)
{
	for (size_t i = 0; i < r->count; i++)
		if (strcmp(r->entries[i]->export.name, name) == 0)
			return r->entries[i];
	return NULL;
}

static bool valid_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 255)
		return false;
	for (const char *p = name; *p; p++)
		if (*p <= ' ' || *p == '/' || *p == '"' || *p == '\\' || (unsigned char)*p >= 0x7f)
			return false;
	return true;
}

static void free_ram_export(void *self)
{
	ram_export_free(self);
}

static int fail_insert(bool exists, const char *name, uint64_t reserved, uint64_t free_bytes, uint64_t capacity,
		       struct ms_err *err)
{
	return exists ? ms_fail_input(err, "export '%s' exists already", name)
		      : ms_fail_input(err, "export '%s' (%llu bytes) does not fit: %llu of the reservoir's %llu bytes are free",
				      name, (unsigned long long)reserved, (unsigned long long)free_bytes,
				      (unsigned long long)capacity);
}

/* Would an export of this name and reservation be inserted now?  Checked
 * before its store is made too, so that a locked pool does not lock memory
 * for an export refused anyway (insert checks again). */
static int check_insert(struct registry *r, const char *name, uint64_t reserved, struct ms_err *err)
{
	pthread_mutex_lock(&r->lock);
	bool exists = find_locked(r, name) != NULL;
	uint64_t free_bytes = r->capacity - r->reserved;
	pthread_mutex_unlock(&r->lock);
	return exists || reserved > free_bytes ? fail_insert(exists, name, reserved, free_bytes, r->capacity, err) : 0;
}

/* Insert e unless its name is taken or its reservation does not fit. */
static int insert(struct registry *r, struct registry_entry *e, struct ms_err *err)
{
	const char *name = e->export.name;
	pthread_mutex_lock(&r->lock);
	bool exists = find_locked(r, name) != NULL;
	uint64_t free_bytes = r->capacity - r->reserved;
	bool fits = e->reserved <= free_bytes;
	struct registry_entry **grown = exists || !fits ? NULL : realloc(r->entries, (r->count + 1) * sizeof *grown);
	if (grown) {
		r->entries = grown;
		r->entries[r->count++] = e;
		r->reserved += e->reserved;
	}
	pthread_mutex_unlock(&r->lock);
	if (grown)
		return 0;
	int rc = exists || !fits ? fail_insert(exists, name, e->reserved, free_bytes, r->capacity, err)
				 : ms_fail(err, "out of memory");
	entry_free(e);
	return rc;
}

static struct registry_entry *entry_new(const char *name, uint64_t size, const struct backend_ops *ops, void *self,
					void (*free_self)(void *), struct ms_err *err)
{
	struct registry_entry *e = calloc(1, sizeof *e);
	if (!e || !(e->export.name = strdup(name)) || asprintf(&e->export.description, "memshare '%s'", name) < 0) {
		if (e)
			free(e->export.name);
		free(e);
		free_self(self);
		ms_fail(err, "out of memory");
		return NULL;
	}
	e->export.size = size;
	e->export.ops = ops;
	e->export.self = self;
	e->free_self = free_self;
	e->refs = 1;
	return e;
}

static int check_name_size(const char *name, uint64_t size, struct ms_err *err)
{
	if (!valid_name(name))
		return ms_fail_input(err, "export name '%.64s': use 1 to 255 printable characters, no spaces, '/', quotes or backslashes", name);
	if (size == 0 || size % 4096)
		return ms_fail_input(err, "export '%s': size %llu is not a positive multiple of 4096", name, (unsigned long long)size);
	return 0;
}

uint64_t host_backable_bytes(void)
{
	char buf[8192];
	if (read_small_file("/proc/meminfo", buf, sizeof buf, NULL) < 0)
		return 0;
	int64_t available = text_lookup_i64(buf, "MemAvailable"), swap = text_lookup_i64(buf, "SwapFree");
	if (available < 0)
		return 0;
	return ((uint64_t)available + (uint64_t)(swap > 0 ? swap : 0)) * 1024;
}

/* Memory the exports' blocks hold: the RAM pool's, and the slabs' pages in
 * RAM (serve --fabric).  Called with r->lock held. */
static uint64_t used_bytes_locked(struct registry *r)
{
	struct ram_pool_stats ps;
	ram_pool_get_stats(r->pool, &ps);
	uint64_t used = ps.used_bytes;
	for (size_t i = 0; i < r->count; i++)
		if (r->entries[i]->export.ops == &slab_store_ops)
			used += slab_resident_bytes(r->entries[i]->export.self);
	return used;
}

/* Can the host back a new export of size bytes, on top of what the others
 * were promised and have not used yet?  (Skipped with --overcommit.) */
static int check_host_backs(struct registry *r, const char *name, uint64_t size, struct ms_err *err)
{
	uint64_t backable = host_backable_bytes();
	if (r->overcommit || !backable)
		return 0;
	pthread_mutex_lock(&r->lock);
	uint64_t used = used_bytes_locked(r);
	uint64_t promised = r->reserved > used ? r->reserved - used : 0;
	pthread_mutex_unlock(&r->lock);
	if (size <= backable && promised <= backable - size)
		return 0;
	return ms_fail_input(err, "export '%s' (%llu bytes) is more than this host can back: %llu bytes "
			     "(MemAvailable + SwapFree), %llu of them promised to the other exports (serve --overcommit allows it)",
			     name, (unsigned long long)size, (unsigned long long)backable, (unsigned long long)promised);
}

/* The key dies (fi_close of the registration) before the memory is unmapped. */
static void free_fabric_export(void *self)
{
	struct slab *slab = self;
	fabric_deregister(slab->region);
	slab_free(slab);
}

/* A slab registered for one-sided RDMA; its descriptor is what an
 * authenticated NBD client gets for the meta context query "msrswap:fabric". */
static int add_fabric_export(struct registry *r, const char *name, uint64_t size, struct ms_err *err)
{
	struct slab *slab;
	if (slab_new(size, r->mlock, &slab, err) < 0)
		return ms_fail_prefix(err, "export '%s' (%llu bytes)", name, (unsigned long long)size);
	slab->pinned = fabric_server_pins(r->fabric);
	if (fabric_register(r->fabric, slab->mem, size, &slab->region, err) < 0) {
		slab_free(slab);
		return ms_fail_prefix(err, "export '%s'", name);
	}
	struct registry_entry *e = entry_new(name, size, &slab_store_ops, slab, free_fabric_export, err);
	if (!e)
		return -1;
	free(e->export.description);
	if (asprintf(&e->export.description, "memshare reservoir slab '%s' (fabric %s)", name,
		     fabric_server_provider(r->fabric)) < 0)
		e->export.description = NULL;
	if (asprintf(&e->export.fabric_context, "%s%s", NBD_META_MSRSWAP_FABRIC "=",
		     fabric_region_descriptor(slab->region)) < 0)
		e->export.fabric_context = NULL;
	e->reserved = size;
	return insert(r, e, err);
}

int registry_add(struct registry *r, const char *name, uint64_t size, struct ms_err *err)
{
	struct ram_export *store;
	if (check_name_size(name, size, err) < 0 || check_insert(r, name, size, err) < 0 ||
	    check_host_backs(r, name, size, err) < 0)
		return -1;
	if (r->fabric)
		return add_fabric_export(r, name, size, err);
	if (ram_export_new(r->pool, size, &store, err) < 0)
		return ms_fail_prefix(err, "export '%s' (%llu bytes)", name, (unsigned long long)size);
	struct registry_entry *e = entry_new(name, size, &ram_store_ops, store, free_ram_export, err);
	if (!e)
		return -1;
	free(e->export.description);
	if (asprintf(&e->export.description, "memshare reservoir slab '%s'", name) < 0)
		e->export.description = NULL;
	e->reserved = size;
	return insert(r, e, err);
}

int registry_add_backend(struct registry *r, const char *name, uint64_t size, const struct backend_ops *ops,
			 void *self, void (*free_self)(void *self), struct ms_err *err)
{
	if (check_name_size(name, size, err) < 0) {
		free_self(self);
		return -1;
	}
	struct registry_entry *e = entry_new(name, size, ops, self, free_self, err);
	return e ? insert(r, e, err) : -1;
}

void *registry_backend(struct registry *r, const char *name)
{
	pthread_mutex_lock(&r->lock);
	struct registry_entry *e = find_locked(r, name);
	pthread_mutex_unlock(&r->lock);
	return e ? e->export.self : NULL;
}

/* Free a reservoir export's memory now, though connections may still hold
 * the entry: they get ESHUTDOWN from then on (backend.h, revocation).  The
 * controller that removed the export counts its memory as free again at
 * once, and so must we. */
static void revoke(struct registry *r, struct registry_entry *e)
{
	__atomic_store_n(&e->export.revoked, true, __ATOMIC_SEQ_CST);
	const struct timespec pause = {0, 100000};
	while (__atomic_load_n(&e->export.in_flight, __ATOMIC_SEQ_CST))
		nanosleep(&pause, NULL); /* an operation on RAM: microseconds */
	e->free_self(e->export.self);
	e->free_self = NULL;
	pthread_mutex_lock(&r->lock);
	r->reserved -= e->reserved;
	e->reserved = 0;
	pthread_mutex_unlock(&r->lock);
}

int registry_remove(struct registry *r, const char *name, struct ms_err *err)
{
	pthread_mutex_lock(&r->lock);
	struct registry_entry *e = find_locked(r, name);
	if (e) {
		for (size_t i = 0; i < r->count; i++)
			if (r->entries[i] == e)
				r->entries[i] = r->entries[--r->count];
		e->removed = true;
	}
	pthread_mutex_unlock(&r->lock);
	if (!e)
		return ms_fail_input(err, "no export '%s'", name);
	/* A reservoir export is revoked; any other backend (a consumer's device)
	 * lives on until its last connection leaves. */
	if (e->reserved)
		revoke(r, e);
	pthread_mutex_lock(&r->lock);
	entry_put(r, e); /* the list's reference, held until here */
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static struct nbd_export *registry_acquire(void *ctx, const char *name)
{
	struct registry *r = ctx;
	pthread_mutex_lock(&r->lock);
	/* "" is the default export: the first one */
	struct registry_entry *e = *name ? find_locked(r, name) : (r->count ? r->entries[0] : NULL);
	if (e)
		e->refs++;
	pthread_mutex_unlock(&r->lock);
	return e ? &e->export : NULL;
}

static void registry_release(void *ctx, struct nbd_export *export)
{
	struct registry *r = ctx;
	pthread_mutex_lock(&r->lock);
	entry_put(r, (struct registry_entry *)((char *)export - offsetof(struct registry_entry, export)));
	pthread_mutex_unlock(&r->lock);
}

static int registry_for_each(void *ctx, int (*fn)(void *arg, const struct nbd_export *e), void *arg)
{
	struct registry *r = ctx;
	/* take references, so the callback (which writes to a slow client) runs unlocked */
	pthread_mutex_lock(&r->lock);
	size_t n = r->count;
	struct registry_entry **copy = calloc(n ? n : 1, sizeof *copy);
	for (size_t i = 0; copy && i < n; i++) {
		copy[i] = r->entries[i];
		copy[i]->refs++;
	}
	pthread_mutex_unlock(&r->lock);
	if (!copy)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = fn(arg, &copy[i]->export);
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < n; i++)
		entry_put(r, copy[i]);
	pthread_mutex_unlock(&r->lock);
	free(copy);
	return rc;
}

void registry_source(struct registry *r, struct export_source *src)
{
	*src = (struct export_source){.acquire = registry_acquire, .release = registry_release,
				      .for_each = registry_for_each, .ctx = r};
}

double export_latency_sum_us(const struct export_stats *s)
{
	return (double)__atomic_load_n(&s->latency_ns_sum, __ATOMIC_RELAXED) / 1e3;
}

json_t *export_latency_histogram(const struct export_stats *s)
{
	json_t *h = json_object();
	for (unsigned i = 0; i < 24; i++) {
		uint64_t n = __atomic_load_n(&s->latency_us_log2[i], __ATOMIC_RELAXED);
		if (!n)
			continue;
		char key[32];
		if (i == 23)
			snprintf(key, sizeof key, "ge_%llu", 1ULL << 22);
		else
			snprintf(key, sizeof key, "lt_%llu", 1ULL << i);
		json_object_set_new(h, key, json_integer((json_int_t)n));
	}
	return h;
}

json_t *registry_stats(struct registry *r)
{
	json_t *list = json_array();
	uint64_t slabs_resident = 0; /* counted once here for both records: mincore walks every slab */
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->count; i++) {
		const struct nbd_export *e = &r->entries[i]->export;
		const struct export_stats *s = &e->stats;
		json_t *rec = record_new("export_stats");
		json_object_set_new(rec, "export", json_string(e->name));
		json_object_set_new(rec, "size_bytes", json_integer((json_int_t)e->size));
		if (r->entries[i]->free_self == free_ram_export) {
			struct ram_export_stats es;
			ram_export_get_stats(e->self, &es);
			json_object_set_new(rec, "used_bytes", json_integer((json_int_t)es.used_bytes));
			json_object_set_new(rec, "logical_bytes", json_integer((json_int_t)es.logical_bytes));
		} else if (e->ops == &slab_store_ops) {
			uint64_t resident = slab_resident_bytes(e->self);
			slabs_resident += resident;
			json_object_set_new(rec, "used_bytes", json_integer((json_int_t)resident));
		}
#define COUNTER(field) json_object_set_new(rec, #field, json_integer((json_int_t)__atomic_load_n(&s->field, __ATOMIC_RELAXED)))
		COUNTER(reads);
		COUNTER(writes);
		COUNTER(read_bytes);
		COUNTER(write_bytes);
		COUNTER(flushes);
		COUNTER(trims);
		COUNTER(zeroes);
		COUNTER(block_statuses);
		COUNTER(errors);
#undef COUNTER
		json_object_set_new(rec, "latency_us", export_latency_histogram(s));
		json_object_set_new(rec, "latency_sum_us", json_real(export_latency_sum_us(s)));
		json_array_append_new(list, rec);
	}
	pthread_mutex_unlock(&r->lock);
	struct ram_pool_stats ps;
	ram_pool_get_stats(r->pool, &ps);
	uint64_t used = ps.used_bytes + slabs_resident;
	json_t *pool = record_new("pool_stats");
	json_object_set_new(pool, "capacity_bytes", json_integer((json_int_t)ps.capacity_bytes));
	json_object_set_new(pool, "reserved_bytes", json_integer((json_int_t)r->reserved));
	json_object_set_new(pool, "used_bytes", json_integer((json_int_t)used));
	json_object_set_new(pool, "logical_bytes", json_integer((json_int_t)ps.logical_bytes));
	json_object_set_new(pool, "dedup_saved_bytes", json_integer((json_int_t)ps.dedup_saved_bytes));
	json_object_set_new(pool, "locked", json_boolean(ps.locked));
	json_object_set_new(pool, "tls", json_boolean(r->tls_required));
	/* msgmc's agent --fabric offers fabric:// leases only from a serve that has it */
	json_object_set_new(pool, "fabric", r->fabric ? json_string(fabric_server_provider(r->fabric)) : json_null());
	json_array_append_new(list, pool);
	return list;
}
