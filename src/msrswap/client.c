#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "fuse_export.h"
#include "log.h"
#include "serve.h"
#include "store_ram.h"
#include "tier_store.h"

/* A device's name for its failover reports; kept for the daemon's life. */
struct device_ref {
	struct client *client;
	struct device_ref *next;
	char name[];
};

struct client {
	struct server server;
	const struct client_config *cfg;
	struct ram_pool *pool;
	uint64_t ram_bytes;
	struct device_ref *refs;
};

int write_swap_header(const struct backend_ops *ops, void *self, uint64_t size, struct ms_err *err)
{
	/* union swap_header of <linux/swap.h>: version 1, the last usable page, a UUID and a label,
	 * and "SWAPSPACE2" in the last 10 bytes of the first page (native byte order). */
	unsigned char page[4096] = {0};
	uint32_t version = 1, last_page = (uint32_t)(size / 4096 - 1);
	if (size / 4096 < 10)
		return ms_fail_input(err, "a swap area needs at least 10 pages");
	memcpy(page + 1024, &version, 4);
	memcpy(page + 1028, &last_page, 4);
	if (getrandom(page + 1036, 16, 0) != 16)
		return ms_fail_errno(err, "getrandom");
	page[1036 + 6] = (page[1036 + 6] & 0x0f) | 0x40; /* a version-4 UUID */
	page[1036 + 8] = (page[1036 + 8] & 0x3f) | 0x80;
	memcpy(page + 1052, "memshare", 8);
	memcpy(page + 4096 - 10, "SWAPSPACE2", 10);
	int rc = ops->write(self, page, sizeof page, 0);
	return rc ? ms_fail(err, "cannot write the swap header: %s", strerror(rc)) : 0;
}

static void on_remote_dead(void *ctx, const char *uri, const char *reason)
{
	struct device_ref *ref = ctx;
	struct client *c = ref->client;
	log_warn("%s: remote %s failed (%s): its blocks are served from the disk copy", ref->name, uri, reason);
	json_t *r = record_new("failover");
	json_object_set_new(r, "domain", json_string(ref->name));
	json_object_set_new(r, "uri", json_string(uri));
	json_object_set_new(r, "reason", json_string(reason));
	jsonl_emit(c->cfg->out, r, NULL);
}

static void close_store(void *self)
{
	tier_store_close(self);
}

/* Is uri a remote of another device already?  Two devices on one export would overwrite each other. */
static int uri_in_use(void *arg, const struct nbd_export *e)
{
	size_t index;
	return tier_store_find_alive_remote(e->self, arg, &index);
}

static struct device_ref *device_ref(struct client *c, const char *name)
{
	struct device_ref *ref = calloc(1, sizeof *ref + strlen(name) + 1);
	if (!ref)
		return NULL;
	ref->client = c;
	strcpy(ref->name, name);
	ref->next = c->refs;
	c->refs = ref;
	return ref;
}

static void disk_path(const struct client *c, const char *name, char *path, size_t len)
{
	snprintf(path, len, "%s/%s.disk", c->cfg->disk_dir, name);
}

/* What attach needs to know of a new device: where it is served. */
static json_t *device_reply(struct client *c, const char *name, uint64_t size, const char *disk)
{
	json_t *r = record_new("device");
	json_object_set_new(r, "domain", json_string(name));
	json_object_set_new(r, "size_bytes", json_integer((json_int_t)size));
	json_object_set_new(r, "disk_path", json_string(disk));
	/* where QEMU reaches the device: attach hot-plugs a guest's disk there */
	const char *socket = c->cfg->listen;
	json_object_set_new(r, "socket", json_string(strncmp(socket, "unix:", 5) == 0 ? socket + 5 : socket));
	if (c->cfg->fuse_dir) {
		char file[4200];
		snprintf(file, sizeof file, "%s/%s", c->cfg->fuse_dir, name);
		json_object_set_new(r, "file", json_string(file));
	}
	return json_pack("{s:b, s:[o]}", "ok", 1, "records", r);
}

static json_t *device_add(struct client *c, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	json_t *size = json_object_get(req, "size"), *target = json_object_get(req, "target");
	json_t *remotes = json_object_get(req, "remotes");
	if (!name || !json_is_integer(size) || json_integer_value(size) <= 0)
		return control_reply_error("device-add needs \"name\" and a positive integer \"size\"");
	if (strchr(name, '/') || name[0] == '.')
		return control_reply_error("a device name cannot contain '/' or start with '.'");
	/* before anything touches its disk file: a second device-add must not wipe the first */
	if (registry_backend(&c->server.registry, name))
		return control_reply_error("a device of that name exists already");
	size_t n = json_array_size(remotes);
	const char **uris = calloc(n ? n : 1, sizeof *uris);
	for (size_t i = 0; uris && i < n; i++) {
		if (!(uris[i] = json_string_value(json_array_get(remotes, i)))) {
			free(uris);
			return control_reply_error("\"remotes\" must be a list of NBD URIs");
		}
		if (c->server.source.for_each(c->server.source.ctx, uri_in_use, (void *)uris[i])) {
			free(uris);
			return control_reply_error("that remote export is in use by another device");
		}
	}
	struct device_ref *ref = device_ref(c, name);
	if (!ref) {
		free(uris);
		return control_reply_error("out of memory");
	}
	char path[4096];
	disk_path(c, name, path, sizeof path);
	struct tier_store_config tc = {
		.size = (uint64_t)json_integer_value(size),
		.disk_path = path,
		.ram_pool = c->pool,
		.tier_target_bytes = json_is_integer(target) ? (uint64_t)json_integer_value(target) : UINT64_MAX,
		.remote_uris = uris,
		.remote_count = n,
		.on_remote_dead = on_remote_dead,
		.callback_ctx = ref,
	};
	struct tier_store *ts;
	struct ms_err err = {0};
	int rc = tier_store_open(&tc, &ts, &err);
	free(uris);
	if (rc < 0)
		return control_reply_error(err.msg);
	if (json_is_true(json_object_get(req, "mkswap")) && write_swap_header(&tier_store_ops, ts, tc.size, &err) < 0) {
		tier_store_close(ts);
		return control_reply_error(err.msg);
	}
	if (registry_add_backend(&c->server.registry, name, tc.size, &tier_store_ops, ts, close_store, &err) < 0)
		return control_reply_error(err.msg);
	log_info("device '%s': %lld bytes, disk tier %s, %zu remote(s)", name, (long long)tc.size, path, n);
	return device_reply(c, name, tc.size, path);
}

/* The provider wants its memory back (GMC reclaim): the device stops using
 * the remote, whose blocks are served from the disk copy from then on.  Once
 * the reply is sent, the provider may drop the export. */
static json_t *remote_release(struct tier_store *ts, const char *uri)
{
	if (!uri)
		return control_reply_error("remote-release needs \"uri\"");
	size_t index;
	if (!tier_store_find_alive_remote(ts, uri, &index))
		return control_reply_error("the device has no alive remote of that URI");
	struct ms_err err = {0};
	if (tier_store_release_remote(ts, index, &err) < 0)
		return control_reply_error(err.msg);
	log_info("remote %s released: its blocks are served from the disk copy", uri);
	return control_reply_ok();
}

static json_t *client_control(struct server *s, const char *cmd, json_t *req)
{
	struct client *c = s->ctx;
	const char *name = json_string_value(json_object_get(req, "name"));
	struct ms_err err = {0};
	if (strcmp(cmd, "device-add") == 0)
		return device_add(c, req);
	if (!name)
		return control_reply_error("the command needs \"name\"");
	if (strcmp(cmd, "device-rm") == 0) {
		if (registry_remove(&s->registry, name, &err) < 0)
			return control_reply_error(err.msg);
		return control_reply_ok();
	}
	struct tier_store *ts = registry_backend(&s->registry, name);
	if (!ts && (strcmp(cmd, "target") == 0 || strcmp(cmd, "remote-add") == 0 || strcmp(cmd, "remote-release") == 0 ||
		    strcmp(cmd, "device") == 0))
	{
		char msg[300];
		snprintf(msg, sizeof msg, "no such device '%s'", name);
		return control_reply_error(msg);
	}
	if (strcmp(cmd, "device") == 0) {
		struct tier_stats t;
		tier_store_get_stats(ts, &t);
		char path[4096];
		disk_path(c, name, path, sizeof path);
		return device_reply(c, name, t.size_bytes, path);
	}
	if (strcmp(cmd, "target") == 0) {
		json_t *bytes = json_object_get(req, "bytes");
		if (!json_is_integer(bytes) || json_integer_value(bytes) < 0)
			return control_reply_error("target needs a non-negative integer \"bytes\"");
		tier_store_set_target(ts, (uint64_t)json_integer_value(bytes));
		return control_reply_ok();
	}
	if (strcmp(cmd, "remote-release") == 0)
		return remote_release(ts, json_string_value(json_object_get(req, "uri")));
	if (strcmp(cmd, "remote-add") == 0) {
		const char *uri = json_string_value(json_object_get(req, "uri"));
		if (!uri)
			return control_reply_error("remote-add needs \"uri\"");
		if (s->source.for_each(s->source.ctx, uri_in_use, (void *)uri))
			return control_reply_error("that remote export is in use by another device");
		if (tier_store_add_remote(ts, uri, &err) < 0)
			return control_reply_error(err.msg);
		return control_reply_ok();
	}
	return NULL;
}

/* One "tier" record per device: the inputs of msballoon's tier policies. */
static json_t *tier_record(const char *name, const struct tier_stats *t, const struct export_stats *served,
			   uint64_t pool_bytes)
{
	json_t *r = record_new("tier");
	json_object_set_new(r, "domain", json_string(name));
#define FIELD(key, value) json_object_set_new(r, key, json_integer((json_int_t)(value)))
	FIELD("puts_total", t->puts_total);
	FIELD("puts_succ", t->puts_succ);
	FIELD("gets", t->gets);
	FIELD("gets_succ", t->gets_succ);
	FIELD("flushes", t->flushes);
	FIELD("tier_used_bytes", t->tier_used_bytes);
	if (t->tier_target_bytes != UINT64_MAX)
		FIELD("tier_target_bytes", t->tier_target_bytes);
	FIELD("pool_bytes", pool_bytes);
	FIELD("size_bytes", t->size_bytes);
	FIELD("ram_bytes", t->ram_bytes);
	FIELD("remote_bytes", t->remote_bytes);
	/* the room its live remotes give it: with pool_bytes, the node's tier
	 * that msballoon's tier policies share (vMCA: local plus granted) */
	FIELD("remote_capacity_bytes", t->remote_capacity_bytes);
	FIELD("disk_bytes", t->disk_bytes);
	FIELD("mirror_pending_bytes", t->mirror_pending_bytes);
	FIELD("remotes_alive", t->remotes_alive);
	FIELD("remotes_dead", t->remotes_dead);
	FIELD("failovers", t->failovers);
	FIELD("remotes_released", t->remotes_released);
	FIELD("mirror_errors", t->mirror_errors);
	FIELD("mirror_waits", t->mirror_waits);
	FIELD("mirror_wait_us", t->mirror_wait_ns / 1000);
	FIELD("mirror_queued_bytes", t->mirror_queued_bytes);
	FIELD("mirror_coalesced_bytes", t->mirror_coalesced_bytes);
	FIELD("read_requests", t->read_requests);
	FIELD("write_requests", t->write_requests);
#undef FIELD
	if (t->read_requests)
		json_object_set_new(r, "read_latency_us", json_real((double)t->read_ns / (double)t->read_requests / 1000));
	if (t->write_requests)
		json_object_set_new(r, "write_latency_us", json_real((double)t->write_ns / (double)t->write_requests / 1000));
	/* every request as the device served it (QEMU's or the kernel's), as a histogram */
	json_object_set_new(r, "latency_us", export_latency_histogram(served));
	json_object_set_new(r, "latency_sum_us", json_real(export_latency_sum_us(served)));
	return r;
}

static int add_tier_record(void *arg, const struct nbd_export *e)
{
	void **a = arg;
	struct tier_stats t;
	tier_store_get_stats(e->self, &t);
	json_array_append_new(a[0], tier_record(e->name, &t, &e->stats, *(uint64_t *)a[1]));
	return 0;
}

static json_t *client_stats(struct server *s)
{
	struct client *c = s->ctx;
	json_t *list = json_array();
	void *arg[2] = {list, &c->ram_bytes};
	s->source.for_each(s->source.ctx, add_tier_record, arg);
	return list;
}

int client_run(const struct client_config *cfg, volatile int *stop, struct ms_err *err)
{
	static struct client c; /* connection threads may outlive a return */
	c.cfg = cfg;
	c.ram_bytes = cfg->ram_bytes;
	if (mkdir(cfg->disk_dir, 0700) < 0 && errno != EEXIST)
		return ms_fail_errno(err, "cannot create the disk directory %s", cfg->disk_dir);
	if (ram_pool_new(cfg->ram_bytes, false, false, &c.pool, err) < 0)
		return -1;
	/* devices are not reserved against the RAM pool: their tier targets bound it */
	if (server_init(&c.server, c.pool, UINT64_MAX, err) < 0)
		return -1;
	c.server.control = client_control;
	c.server.stats = client_stats;
	c.server.ctx = &c;
	c.server.metrics_addr = cfg->metrics_addr;
	struct fuse_export *fx = NULL;
	if (cfg->fuse_dir) {
		/* The daemon may be the host's swap: none of its pages may ever
		 * have to be swapped out to reach it. */
		if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) < 0)
			return ms_fail_errno(err, "--fuse: cannot lock the daemon's memory (mlockall)");
		if (fuse_export_start(cfg->fuse_dir, &c.server.source, &fx, err) < 0)
			return -1;
	}
	int rc = server_run(&c.server, cfg->listen, cfg->control, cfg->stats_interval_ns, cfg->out, stop, err);
	fuse_export_stop(fx);
	return rc;
}
