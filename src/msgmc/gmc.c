#include "gmc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"
#include "log.h"
#include "proto.h"
#include "state.h"
#include "units.h"

#define NAME_LEN (MSG_NAME_MAX + 1)

struct gmc_node {
	char name[NAME_LEN];
	char location[128];
	char address[128]; /* its NBD server as consumers reach it; "" : not a provider */
	enum gmc_node_state state;
	struct gmc_peer *peer; /* NULL: not connected */
	uint64_t away_since_ns;
	uint64_t reservoir_bytes, local_need_bytes, capacity_bytes, reserved_bytes;
	uint64_t leased_out_bytes, leased_in_bytes;
	uint64_t informs;
	char last_seen[40];
};

enum lease_state { LEASE_ALLOCATING, LEASE_ACTIVE, LEASE_RELEASING };

struct gmc_lease {
	uint64_t id;
	char provider[NAME_LEN], consumer[NAME_LEN], domain[NAME_LEN];
	char export_name[NAME_LEN];
	char address[128];
	char uri[300];
	char fabric_uri[512]; /* the provider's agent offers one-sided RDMA too ("": NBD only) */
	char since[40];
	uint64_t bytes;
	enum lease_state state;
	bool attached;
};

/* A request from a peer (or the controller's own procedure) that waits for
 * agents' replies before it completes. */
struct op {
	struct op *next;
	enum msg_type kind; /* ALLOC, RELEASE, RECLAIM, LEAVE, INVALIDATE */
	struct gmc_peer *requester;
	uint64_t request_id;
	int outstanding;
	json_t *records;
	char error[256];
	char node[NAME_LEN]; /* LEAVE/INVALIDATE: the node whose procedure it is */
	/* ALLOC: a part a provider could not create is placed again, on the
	 * policy's next choice without the providers that refused (bounded) */
	char consumer[NAME_LEN], domain[NAME_LEN];
	char refused[GMC_ALLOC_REFUSALS_MAX][NAME_LEN];
	size_t refused_count;
};

enum step { STEP_ALLOC, STEP_ATTACH, STEP_DETACH, STEP_RELEASE, STEP_ORPHAN };

struct pending {
	uint64_t msg_id;
	struct gmc_peer *peer;
	uint64_t lease_id;
	enum step step;
	struct op *op;
	uint64_t deadline_ns;
};

struct gmc {
	struct gmc_config cfg;
	struct gmc_io io;
	struct state *state; /* NULL: leases live in memory only */
	struct gmc_node *nodes;
	size_t node_count, node_cap;
	size_t *node_index; /* open addressing by name hash: node position + 1, 0 empty */
	size_t index_cap;
	struct gmc_lease *leases;
	size_t lease_count, lease_cap;
	struct pending *pending;
	size_t pending_count, pending_cap;
	struct op *ops;
	uint64_t max_lease_id; /* the highest id ever issued (journalled) */
	uint64_t next_msg_id;
	uint64_t started_ns;
	uint64_t messages, decisions, decision_ns;
};

const char *gmc_node_state_name(enum gmc_node_state s)
{
	static const char *const names[] = {"inactive", "active", "leaving", "recovery"};
	return names[s];
}

static const char *lease_state_name(enum lease_state s)
{
	static const char *const names[] = {"allocating", "active", "releasing"};
	return names[s];
}

/* ---- tables ---- */

static void *grow(void *array, size_t *cap, size_t count, size_t size)
{
	if (count < *cap)
		return array;
	size_t n = *cap ? *cap * 2 : 16;
	void *p = realloc(array, n * size);
	if (!p) {
		log_error("out of memory");
		abort();
	}
	*cap = n;
	return p;
}

static size_t name_hash(const char *s)
{
	size_t h = 14695981039346656037ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void index_insert(size_t *index, size_t cap, const char *name, size_t position)
{
	size_t i = name_hash(name) & (cap - 1);
	while (index[i])
		i = (i + 1) & (cap - 1);
	index[i] = position + 1;
}

/* Nodes are never removed, so the index only grows (kept under half full). */
static void index_add(struct gmc *g, size_t position)
{
	if ((g->node_count + 1) * 2 > g->index_cap) {
		size_t cap = g->index_cap ? g->index_cap * 2 : 64;
		size_t *index = calloc(cap, sizeof *index);
		if (!index)
			abort();
		for (size_t k = 0; k < g->node_count; k++)
			if (k != position)
				index_insert(index, cap, g->nodes[k].name, k);
		free(g->node_index);
		g->node_index = index;
		g->index_cap = cap;
	}
	index_insert(g->node_index, g->index_cap, g->nodes[position].name, position);
}

static struct gmc_node *node_find(struct gmc *g, const char *name)
{
	if (!g->index_cap)
		return NULL;
	for (size_t i = name_hash(name) & (g->index_cap - 1); g->node_index[i]; i = (i + 1) & (g->index_cap - 1))
		if (strcmp(g->nodes[g->node_index[i] - 1].name, name) == 0)
			return &g->nodes[g->node_index[i] - 1];
	return NULL;
}

static struct gmc_node *node_get(struct gmc *g, const char *name, uint64_t now_ns)
{
	struct gmc_node *n = node_find(g, name);
	if (n)
		return n;
	g->nodes = grow(g->nodes, &g->node_cap, g->node_count, sizeof *g->nodes);
	n = &g->nodes[g->node_count++];
	memset(n, 0, sizeof *n);
	snprintf(n->name, sizeof n->name, "%s", name);
	n->state = NODE_INACTIVE;
	n->away_since_ns = now_ns;
	index_add(g, g->node_count - 1);
	return n;
}

static struct gmc_node *node_of_peer(struct gmc *g, struct gmc_peer *peer)
{
	size_t *slot = g->io.slot ? g->io.slot(g->io.ctx, peer) : NULL;
	if (slot)
		return *slot && *slot <= g->node_count && g->nodes[*slot - 1].peer == peer ? &g->nodes[*slot - 1] : NULL;
	for (size_t i = 0; i < g->node_count; i++)
		if (g->nodes[i].peer == peer)
			return &g->nodes[i];
	return NULL;
}

static struct gmc_lease *lease_find(struct gmc *g, uint64_t id)
{
	for (size_t i = 0; i < g->lease_count; i++)
		if (g->leases[i].id == id)
			return &g->leases[i];
	return NULL;
}

static void lease_account(struct gmc *g, const struct gmc_lease *l, int sign)
{
	struct gmc_node *p = node_find(g, l->provider), *c = node_find(g, l->consumer);
	if (p)
		p->leased_out_bytes += sign > 0 ? l->bytes : -l->bytes;
	if (c)
		c->leased_in_bytes += sign > 0 ? l->bytes : -l->bytes;
}

static struct gmc_lease *lease_add(struct gmc *g, uint64_t id, uint64_t now_ns)
{
	g->leases = grow(g->leases, &g->lease_cap, g->lease_count, sizeof *g->leases);
	struct gmc_lease *l = &g->leases[g->lease_count++];
	memset(l, 0, sizeof *l);
	l->id = id;
	format_timestamp(l->since, sizeof l->since);
	if (id > g->max_lease_id)
		g->max_lease_id = id;
	(void)now_ns;
	return l;
}

static void lease_remove(struct gmc *g, struct gmc_lease *l)
{
	lease_account(g, l, -1);
	*l = g->leases[--g->lease_count];
}

static json_t *lease_record(const struct gmc_lease *l)
{
	json_t *r = record_new("lease");
	json_object_set_new(r, "lease", json_integer((json_int_t)l->id));
	json_object_set_new(r, "state", json_string(lease_state_name(l->state)));
	json_object_set_new(r, "provider", json_string(l->provider));
	json_object_set_new(r, "consumer", json_string(l->consumer));
	json_object_set_new(r, "domain", json_string(l->domain));
	json_object_set_new(r, "size_bytes", json_integer((json_int_t)l->bytes));
	json_object_set_new(r, "export", json_string(l->export_name));
	json_object_set_new(r, "address", json_string(l->address));
	json_object_set_new(r, "uri", json_string(l->uri));
	if (l->fabric_uri[0])
		json_object_set_new(r, "fabric_uri", json_string(l->fabric_uri));
	json_object_set_new(r, "since", json_string(l->since));
	json_object_set_new(r, "attached", json_boolean(l->attached));
	return r;
}

/* ---- journal ---- */

static json_t *journal_lease(const struct gmc_lease *l, const char *op)
{
	json_t *rec = json_pack("{s:s, s:I, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "op", op, "lease", (json_int_t)l->id,
				"provider", l->provider, "consumer", l->consumer, "domain", l->domain, "size_bytes",
				(json_int_t)l->bytes, "export", l->export_name, "address", l->address, "uri", l->uri,
				"since", l->since);
	if (rec && l->fabric_uri[0])
		json_object_set_new(rec, "fabric_uri", json_string(l->fabric_uri));
	return rec;
}

static void journal_write(struct gmc *g, json_t *rec)
{
	struct ms_err err = {0};
	if (g->state && state_append(g->state, rec, &err) < 0)
		log_error("%s (leases may be lost on a restart)", err.msg);
	json_decref(rec);
}

static void journal_end(struct gmc *g, uint64_t id)
{
	journal_write(g, json_pack("{s:s, s:I}", "op", "end", "lease", (json_int_t)id));
}

static void copy_field(char *dst, size_t len, json_t *rec, const char *key)
{
	const char *s = json_string_value(json_object_get(rec, key));
	snprintf(dst, len, "%s", s ? s : "");
}

/* Replay one journal record. */
static void journal_apply(void *ctx, json_t *rec)
{
	struct gmc *g = ctx;
	const char *op = json_string_value(json_object_get(rec, "op"));
	json_t *idv = json_object_get(rec, "lease");
	if (!op || !json_is_integer(idv) || json_integer_value(idv) <= 0)
		return;
	uint64_t id = (uint64_t)json_integer_value(idv);
	if (id > g->max_lease_id)
		g->max_lease_id = id;
	struct gmc_lease *l = lease_find(g, id);
	if (strcmp(op, "end") == 0) {
		if (l)
			*l = g->leases[--g->lease_count]; /* accounting is done after the replay */
		return;
	}
	if (strcmp(op, "alloc") != 0 && strcmp(op, "active") != 0)
		return; /* "issued" only moves max_lease_id */
	if (!l)
		l = lease_add(g, id, 0);
	copy_field(l->provider, sizeof l->provider, rec, "provider");
	copy_field(l->consumer, sizeof l->consumer, rec, "consumer");
	copy_field(l->domain, sizeof l->domain, rec, "domain");
	copy_field(l->export_name, sizeof l->export_name, rec, "export");
	copy_field(l->address, sizeof l->address, rec, "address");
	copy_field(l->uri, sizeof l->uri, rec, "uri");
	copy_field(l->fabric_uri, sizeof l->fabric_uri, rec, "fabric_uri");
	copy_field(l->since, sizeof l->since, rec, "since");
	json_t *b = json_object_get(rec, "size_bytes");
	l->bytes = json_is_integer(b) ? (uint64_t)json_integer_value(b) : 0;
	l->state = strcmp(op, "active") == 0 ? LEASE_ACTIVE : LEASE_ALLOCATING;
}

/* The journal written anew while running: the id counter and every lease
 * as its last record says (a releasing lease has no "end" yet: active). */
static json_t *journal_snapshot(void *ctx)
{
	struct gmc *g = ctx;
	json_t *a = json_array();
	json_array_append_new(a, json_pack("{s:s, s:I}", "op", "issued", "lease", (json_int_t)g->max_lease_id));
	for (size_t i = 0; i < g->lease_count; i++)
		json_array_append_new(a, journal_lease(&g->leases[i], g->leases[i].state == LEASE_ALLOCATING ? "alloc" : "active"));
	return a;
}

/* After the replay at start: the active leases and the id counter.  A
 * lease still allocating when the controller died is forgotten: its export,
 * if the provider made it, is an orphan removed when the provider registers. */
static json_t *journal_live_at_start(void *ctx)
{
	struct gmc *g = ctx;
	for (size_t i = 0; i < g->lease_count;) {
		if (g->leases[i].state != LEASE_ACTIVE)
			g->leases[i] = g->leases[--g->lease_count];
		else
			i++;
	}
	return journal_snapshot(g);
}

/* ---- sending ---- */

int gmc_commit(struct gmc *g, struct ms_err *err)
{
	return g->state ? state_sync(g->state, err) : 0;
}

bool gmc_commit_pending(const struct gmc *g)
{
	return g->state && state_pending(g->state);
}

/* Nothing leaves before the journal records it follows from are durable:
 * synced here, or (group commit) by the io before it sends. */
static void send_msg(struct gmc *g, struct gmc_peer *peer, json_t *msg)
{
	if (!peer) {
		json_decref(msg);
		return;
	}
	struct ms_err err = {0};
	if (!g->io.group_commit && gmc_commit(g, &err) < 0)
		log_error("%s (leases may be lost on a restart)", err.msg);
	g->io.send(g->io.ctx, peer, msg);
}

static struct op *op_new(struct gmc *g, enum msg_type kind, struct gmc_peer *requester, uint64_t request_id)
{
	struct op *op = calloc(1, sizeof *op);
	if (!op)
		abort();
	op->kind = kind;
	op->requester = requester;
	op->request_id = request_id;
	op->records = json_array();
	op->outstanding = 1; /* held by the code that starts it, dropped by op_release */
	op->next = g->ops;
	g->ops = op;
	return op;
}

static void op_fail(struct op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void op_fail(struct op *op, const char *fmt, ...)
{
	if (op->error[0])
		return; /* the first error is the one reported */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(op->error, sizeof op->error, fmt, ap);
	va_end(ap);
}

static void op_complete(struct gmc *g, struct op *op);

static void op_release(struct gmc *g, struct op *op)
{
	if (op && --op->outstanding == 0)
		op_complete(g, op);
}

static void request(struct gmc *g, struct gmc_peer *peer, json_t *msg, uint64_t lease_id, enum step step,
		    struct op *op, uint64_t now_ns)
{
	uint64_t id = ++g->next_msg_id;
	json_object_set_new(msg, "id", json_integer((json_int_t)id));
	g->pending = grow(g->pending, &g->pending_cap, g->pending_count, sizeof *g->pending);
	/* an attach may hot-plug a disk into a guest first (agent --attach-size) */
	uint64_t timeout = step == STEP_ATTACH && g->cfg.attach_timeout_ns > g->cfg.reply_timeout_ns
				   ? g->cfg.attach_timeout_ns
				   : g->cfg.reply_timeout_ns;
	g->pending[g->pending_count++] = (struct pending){id, peer, lease_id, step, op, now_ns + timeout};
	if (op)
		op->outstanding++;
	send_msg(g, peer, msg);
}

/* ---- lease procedures ---- */

static void lease_finish(struct gmc *g, struct gmc_lease *l, struct op *op, const char *event)
{
	journal_end(g, l->id);
	if (op) {
		json_t *r = lease_record(l);
		json_object_set_new(r, "event", json_string(event));
		json_object_del(r, "state");
		json_array_append_new(op->records, r);
	}
	log_info("lease %llu %s (%s -> %s/%s, %llu bytes)", (unsigned long long)l->id, event, l->provider, l->consumer,
		 l->domain, (unsigned long long)l->bytes);
	lease_remove(g, l);
}

static void provider_release(struct gmc *g, struct gmc_lease *l, struct op *op, uint64_t now_ns)
{
	struct gmc_node *p = node_find(g, l->provider);
	if (!p || !p->peer) {
		/* unreachable: its export (if any) is removed when it registers again */
		lease_finish(g, l, op, "revoked");
		return;
	}
	json_t *m = msg_new(MSG_LMC_RELEASE, 0);
	json_object_set_new(m, "lease", json_integer((json_int_t)l->id));
	json_object_set_new(m, "export", json_string(l->export_name));
	request(g, p->peer, m, l->id, STEP_RELEASE, op, now_ns);
}

/* Release, reclaim, leave and failure all end a lease this way: the consumer
 * stops using the export (its disk copy has the data), then the provider
 * drops it.  skip_consumer: the consumer is the one that failed or left. */
static void lease_teardown(struct gmc *g, struct gmc_lease *l, struct op *op, bool skip_consumer, uint64_t now_ns)
{
	if (l->state == LEASE_RELEASING)
		return;
	l->state = LEASE_RELEASING;
	struct gmc_node *c = node_find(g, l->consumer);
	if (!skip_consumer && c && c->peer) {
		json_t *m = msg_new(MSG_LMC_RECLAIM, 0);
		json_object_set_new(m, "lease", json_integer((json_int_t)l->id));
		json_object_set_new(m, "domain", json_string(l->domain));
		json_object_set_new(m, "uri", json_string(l->uri));
		if (l->fabric_uri[0])
			json_object_set_new(m, "fabric_uri", json_string(l->fabric_uri));
		request(g, c->peer, m, l->id, STEP_DETACH, op, now_ns);
		return;
	}
	provider_release(g, l, op, now_ns);
}

static void reply_to(struct gmc *g, struct gmc_peer *peer, json_t *reply)
{
	send_msg(g, peer, reply);
}

static void op_complete(struct gmc *g, struct op *op)
{
	struct op **pp = &g->ops;
	while (*pp != op)
		pp = &(*pp)->next;
	*pp = op->next;
	struct gmc_node *n = op->node[0] ? node_find(g, op->node) : NULL;
	if (n && (op->kind == MSG_LEAVE || op->kind == MSG_INVALIDATE)) {
		bool leaving = op->kind == MSG_LEAVE;
		/* Leave-Notify / Invalidate-Notify: nobody holds anything of this node now */
		n->state = !leaving && n->peer ? NODE_ACTIVE : NODE_INACTIVE;
		json_t *m = msg_new(leaving ? MSG_LEAVE_NOTIFY : MSG_INVALIDATE_NOTIFY, 0);
		json_object_set_new(m, "node", json_string(n->name));
		send_msg(g, n->peer, m);
		log_info("node %s is %s (%s)", n->name, gmc_node_state_name(n->state), leaving ? "left" : "recovered");
	}
	if (op->requester) {
		json_t *reply = op->error[0] && json_array_size(op->records) == 0 ? msg_reply_error(op->request_id, "%s", op->error)
										     : msg_reply_ok(op->request_id);
		if (op->error[0] && json_array_size(op->records))
			json_object_set_new(reply, "warning", json_string(op->error));
		json_object_set(reply, "records", op->records);
		reply_to(g, op->requester, reply);
	}
	json_decref(op->records);
	free(op);
}

/* ---- handlers ---- */

static uint64_t node_free(const struct gmc_node *n)
{
	return n->reservoir_bytes > n->leased_out_bytes ? n->reservoir_bytes - n->leased_out_bytes : 0;
}

static json_t *node_record(const struct gmc_node *n)
{
	json_t *r = record_new("node");
	json_object_set_new(r, "node", json_string(n->name));
	json_object_set_new(r, "state", json_string(gmc_node_state_name(n->state)));
	json_object_set_new(r, "connected", json_boolean(n->peer != NULL));
	json_object_set_new(r, "location", json_string(n->location));
	json_object_set_new(r, "provider", json_boolean(n->address[0] != '\0'));
	if (n->address[0])
		json_object_set_new(r, "address", json_string(n->address));
	json_object_set_new(r, "reservoir_bytes", json_integer((json_int_t)n->reservoir_bytes));
	json_object_set_new(r, "free_bytes", json_integer((json_int_t)node_free(n)));
	json_object_set_new(r, "leased_out_bytes", json_integer((json_int_t)n->leased_out_bytes));
	json_object_set_new(r, "leased_in_bytes", json_integer((json_int_t)n->leased_in_bytes));
	json_object_set_new(r, "local_need_bytes", json_integer((json_int_t)n->local_need_bytes));
	if (n->capacity_bytes)
		json_object_set_new(r, "capacity_bytes", json_integer((json_int_t)n->capacity_bytes));
	if (n->last_seen[0])
		json_object_set_new(r, "last_seen", json_string(n->last_seen));
	return r;
}

static bool op_refused_by(const struct op *op, const char *provider)
{
	for (size_t i = 0; op && i < op->refused_count; i++)
		if (strcmp(op->refused[i], provider) == 0)
			return true;
	return false;
}

/* The policy's split of bytes for op's consumer and domain over the active
 * providers, leaving out the consumer itself and those that refused op. */
static int alloc_decide(struct gmc *g, const struct op *op, uint64_t bytes, struct gmc_split **splits, size_t *count,
			struct ms_err *err)
{
	struct gmc_node *c = node_find(g, op->consumer);
	struct gmc_donor *donors = calloc(g->node_count ? g->node_count : 1, sizeof *donors);
	*splits = calloc(g->node_count ? g->node_count : 1, sizeof **splits);
	if (!donors || !*splits)
		abort();
	for (size_t i = 0; i < g->node_count; i++) {
		struct gmc_node *n = &g->nodes[i];
		donors[i] = (struct gmc_donor){n->name, n->location, node_free(n), n->local_need_bytes,
					       n->state == NODE_ACTIVE && n->peer && n->address[0] && n != c &&
						       !op_refused_by(op, n->name)};
	}
	struct gmc_request req = {op->consumer, c ? c->location : "", bytes, 0};
	for (size_t i = 0; i < g->lease_count; i++)
		if (strcmp(g->leases[i].consumer, op->consumer) == 0 && strcmp(g->leases[i].domain, op->domain) == 0)
			req.domain_leased_bytes += g->leases[i].bytes;
	uint64_t t0 = monotonic_ns();
	int rc = g->cfg.policy->decide(donors, g->node_count, &req, &g->cfg.params, *splits, count, err);
	g->decisions++;
	g->decision_ns += monotonic_ns() - t0;
	free(donors);
	return rc;
}

/* One lease per part of the split, journalled, and its provider asked to
 * create the export. */
static void alloc_start(struct gmc *g, struct op *op, const struct gmc_split *splits, size_t count, uint64_t now_ns)
{
	for (size_t k = 0; k < count; k++) {
		struct gmc_node *p = &g->nodes[splits[k].donor];
		struct gmc_lease *l = lease_add(g, g->max_lease_id + 1, now_ns);
		snprintf(l->provider, sizeof l->provider, "%s", p->name);
		snprintf(l->consumer, sizeof l->consumer, "%s", op->consumer);
		snprintf(l->domain, sizeof l->domain, "%s", op->domain);
		snprintf(l->export_name, sizeof l->export_name, "msgmc-%llu", (unsigned long long)l->id);
		snprintf(l->address, sizeof l->address, "%s", p->address);
		snprintf(l->uri, sizeof l->uri, "nbd://%s/%s", p->address, l->export_name);
		l->bytes = splits[k].bytes;
		l->state = LEASE_ALLOCATING;
		lease_account(g, l, +1);
		/* journalled before the provider acts: after a crash the id is known to be ours */
		journal_write(g, journal_lease(l, "alloc"));
		json_t *msg = msg_new(MSG_LMC_ALLOC, 0);
		json_object_set_new(msg, "lease", json_integer((json_int_t)l->id));
		json_object_set_new(msg, "export", json_string(l->export_name));
		json_object_set_new(msg, "size_bytes", json_integer((json_int_t)l->bytes));
		json_object_set_new(msg, "consumer", json_string(l->consumer));
		json_object_set_new(msg, "domain", json_string(l->domain));
		request(g, p->peer, msg, l->id, STEP_ALLOC, op, now_ns);
	}
}

/* A provider could not create its part (its msrswap serve is down, its
 * agent is at its lease limit...): the part goes to the policy's next
 * choice.  false when the request has no retry left or nobody else can. */
static bool alloc_retry(struct gmc *g, struct op *op, const char *provider, uint64_t bytes, uint64_t now_ns)
{
	if (!op || op->kind != MSG_ALLOC || op->refused_count == GMC_ALLOC_REFUSALS_MAX)
		return false;
	snprintf(op->refused[op->refused_count++], NAME_LEN, "%s", provider);
	struct gmc_split *splits;
	size_t count = 0;
	struct ms_err err = {0};
	int rc = alloc_decide(g, op, bytes, &splits, &count, &err);
	if (rc == 0 && count > 0) {
		log_info("%llu bytes refused by %s are placed again (%zu part%s)", (unsigned long long)bytes, provider, count,
			 count == 1 ? "" : "s");
		alloc_start(g, op, splits, count, now_ns);
	}
	free(splits);
	return rc == 0 && count > 0;
}

static void handle_alloc(struct gmc *g, struct gmc_peer *from, const struct msg *m, uint64_t now_ns)
{
	const char *consumer = msg_str(m, "node"), *domain = msg_str(m, "domain");
	uint64_t bytes = msg_u64(m, "size_bytes");
	struct gmc_node *c = node_find(g, consumer);
	if (!c || c->state != NODE_ACTIVE) {
		reply_to(g, from, msg_reply_error(m->id, "node '%s' is not active (%s)", consumer,
						  c ? gmc_node_state_name(c->state) : "never registered"));
		return;
	}
	struct op *op = op_new(g, MSG_ALLOC, from, m->id);
	snprintf(op->consumer, sizeof op->consumer, "%s", consumer);
	snprintf(op->domain, sizeof op->domain, "%s", domain);
	struct gmc_split *splits;
	size_t count = 0;
	struct ms_err err = {0};
	int rc = alloc_decide(g, op, bytes, &splits, &count, &err);
	if (rc < 0)
		op_fail(op, "%s", err.msg);
	else if (count == 0)
		op_fail(op, "no node can serve %llu bytes (policy %s, reserve %llu bytes)", (unsigned long long)bytes,
			g->cfg.policy->name, (unsigned long long)g->cfg.params.reserve);
	else
		alloc_start(g, op, splits, count, now_ns);
	free(splits);
	op_release(g, op);
}

static void handle_release(struct gmc *g, struct gmc_peer *from, const struct msg *m, uint64_t now_ns)
{
	struct gmc_lease *l = lease_find(g, msg_u64(m, "lease"));
	if (!l || l->state != LEASE_ACTIVE) {
		reply_to(g, from, msg_reply_error(m->id, "no active lease %llu", (unsigned long long)msg_u64(m, "lease")));
		return;
	}
	struct op *op = op_new(g, MSG_RELEASE, from, m->id);
	lease_teardown(g, l, op, false, now_ns);
	op_release(g, op);
}

/* Leases newest first, so a reclaim takes back the most recent grants. */
static int compare_lease_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

static void handle_reclaim(struct gmc *g, struct gmc_peer *from, const struct msg *m, uint64_t now_ns)
{
	const char *node = msg_str(m, "node");
	uint64_t want = msg_u64(m, "size_bytes"), got = 0;
	uint64_t *ids = calloc(g->lease_count + 1, sizeof *ids);
	size_t n = 0;
	for (size_t i = 0; i < g->lease_count; i++)
		if (strcmp(g->leases[i].provider, node) == 0 && g->leases[i].state == LEASE_ACTIVE)
			ids[n++] = g->leases[i].id;
	if (n == 0) {
		free(ids);
		reply_to(g, from, msg_reply_error(m->id, "node '%s' serves no active lease", node));
		return;
	}
	qsort(ids, n, sizeof *ids, compare_lease_desc);
	struct op *op = op_new(g, MSG_RECLAIM, from, m->id);
	for (size_t k = 0; k < n && got < want; k++) {
		struct gmc_lease *l = lease_find(g, ids[k]);
		if (!l)
			continue;
		got += l->bytes;
		lease_teardown(g, l, op, false, now_ns);
	}
	free(ids);
	op_release(g, op);
}

/* Leave-Req (from the node or the operator) and failure share this: every
 * lease the node serves or uses ends; when none is left the node is
 * Inactive and told so (Leave-Notify / Invalidate-Notify). */
static void start_drain(struct gmc *g, struct gmc_node *n, enum msg_type kind, struct gmc_peer *requester,
			uint64_t request_id, uint64_t now_ns)
{
	n->state = kind == MSG_LEAVE ? NODE_LEAVING : NODE_RECOVERY;
	log_info("node %s is %s", n->name, gmc_node_state_name(n->state));
	struct op *op = op_new(g, kind, requester, request_id);
	snprintf(op->node, sizeof op->node, "%s", n->name);
	uint64_t *ids = calloc(g->lease_count + 1, sizeof *ids);
	size_t count = 0;
	for (size_t i = 0; i < g->lease_count; i++)
		if (strcmp(g->leases[i].provider, n->name) == 0 || strcmp(g->leases[i].consumer, n->name) == 0)
			ids[count++] = g->leases[i].id;
	for (size_t k = 0; k < count; k++) {
		struct gmc_lease *l = lease_find(g, ids[k]);
		if (!l)
			continue;
		/* a failed consumer cannot detach; a leaving one does it itself */
		bool skip_consumer = kind == MSG_INVALIDATE && strcmp(l->consumer, n->name) == 0;
		lease_teardown(g, l, op, skip_consumer, now_ns);
	}
	free(ids);
	op_release(g, op);
}

static void handle_leave(struct gmc *g, struct gmc_peer *from, const struct msg *m, uint64_t now_ns)
{
	struct gmc_node *n = node_find(g, msg_str(m, "node"));
	if (!n || n->state == NODE_INACTIVE) {
		reply_to(g, from, msg_reply_error(m->id, "node '%s' is not active", msg_str(m, "node")));
		return;
	}
	if (n->state != NODE_ACTIVE) {
		reply_to(g, from, msg_reply_error(m->id, "node '%s' is %s already", n->name, gmc_node_state_name(n->state)));
		return;
	}
	start_drain(g, n, MSG_LEAVE, from, m->id, now_ns);
}

static void orphan_release(struct gmc *g, struct gmc_node *n, const char *export_name, uint64_t id, uint64_t now_ns)
{
	log_info("node %s: export %s (lease %llu) has no live lease: removing it", n->name, export_name,
		 (unsigned long long)id);
	json_t *m = msg_new(MSG_LMC_RELEASE, 0);
	json_object_set_new(m, "lease", json_integer((json_int_t)id));
	json_object_set_new(m, "export", json_string(export_name));
	request(g, n->peer, m, id, STEP_ORPHAN, NULL, now_ns);
}

/* vMCA MM-M restart and unclean restarts, both ways: what the provider
 * really serves is compared with the leases.  An export of a lease the
 * controller ended (or never confirmed) is removed; one it never heard of
 * (it lost its state) is adopted; a lease whose export is gone is revoked. */
static void reconcile_served(struct gmc *g, struct gmc_node *n, json_t *served, uint64_t now_ns)
{
	size_t i;
	json_t *e;
	json_array_foreach(served, i, e)
	{
		uint64_t id = (uint64_t)json_integer_value(json_object_get(e, "lease"));
		const char *export_name = json_string_value(json_object_get(e, "export"));
		struct gmc_lease *l = lease_find(g, id);
		if (l && strcmp(l->provider, n->name) == 0 && strcmp(l->export_name, export_name) == 0)
			continue;
		if (l || id <= g->max_lease_id) { /* ended, never confirmed, or another node's number */
			orphan_release(g, n, export_name, id, now_ns);
			continue;
		}
		/* adopt: the controller restarted without this lease */
		const char *consumer = json_string_value(json_object_get(e, "consumer"));
		const char *domain = json_string_value(json_object_get(e, "domain"));
		if (!consumer || !domain) {
			orphan_release(g, n, export_name, id, now_ns);
			continue;
		}
		l = lease_add(g, id, now_ns);
		snprintf(l->provider, sizeof l->provider, "%s", n->name);
		snprintf(l->consumer, sizeof l->consumer, "%s", consumer);
		snprintf(l->domain, sizeof l->domain, "%s", domain);
		snprintf(l->export_name, sizeof l->export_name, "%s", export_name);
		snprintf(l->address, sizeof l->address, "%s", n->address);
		snprintf(l->uri, sizeof l->uri, "nbd://%s/%s", n->address, export_name);
		l->bytes = (uint64_t)json_integer_value(json_object_get(e, "size_bytes"));
		l->state = LEASE_ACTIVE;
		l->attached = true;
		node_get(g, consumer, now_ns); /* may move the nodes: find n again */
		n = node_find(g, l->provider);
		lease_account(g, l, +1);
		journal_write(g, journal_lease(l, "active"));
		log_info("lease %llu adopted from %s's report", (unsigned long long)id, n->name);
	}
	/* leases this provider should serve but does not: lost (it restarted) */
	uint64_t *lost = calloc(g->lease_count + 1, sizeof *lost);
	size_t count = 0;
	for (size_t k = 0; k < g->lease_count; k++) {
		struct gmc_lease *l = &g->leases[k];
		if (strcmp(l->provider, n->name) != 0 || l->state != LEASE_ACTIVE)
			continue;
		bool found = false;
		json_array_foreach(served, i, e) if ((uint64_t)json_integer_value(json_object_get(e, "lease")) == l->id) found = true;
		if (!found)
			lost[count++] = l->id;
	}
	for (size_t k = 0; k < count; k++) {
		struct gmc_lease *l = lease_find(g, lost[k]);
		if (!l)
			continue;
		log_warn("lease %llu: %s no longer has export %s: the consumer fails over to its disk copy",
			 (unsigned long long)l->id, n->name, l->export_name);
		lease_teardown(g, l, NULL, false, now_ns);
	}
	free(lost);
}

/* A consumer that still uses a lease the controller ended is told to stop. */
static void reconcile_used(struct gmc *g, struct gmc_node *n, json_t *used, uint64_t now_ns)
{
	size_t i;
	json_t *e;
	json_array_foreach(used, i, e)
	{
		uint64_t id = (uint64_t)json_integer_value(json_object_get(e, "lease"));
		struct gmc_lease *l = lease_find(g, id);
		if (l && strcmp(l->consumer, n->name) == 0) {
			l->attached = true;
			continue;
		}
		if (id > g->max_lease_id)
			continue; /* perhaps a provider will report it: adopted then */
		json_t *m = msg_new(MSG_LMC_RECLAIM, 0);
		json_object_set_new(m, "lease", json_integer((json_int_t)id));
		json_object_set(m, "domain", json_object_get(e, "domain"));
		json_object_set(m, "uri", json_object_get(e, "uri"));
		request(g, n->peer, m, id, STEP_ORPHAN, NULL, now_ns);
	}
}

static void handle_register(struct gmc *g, struct gmc_peer *from, const struct msg *m, uint64_t now_ns)
{
	const char *name = msg_str(m, "node");
	struct gmc_node *bound = node_of_peer(g, from);
	if (bound && strcmp(bound->name, name) != 0) {
		reply_to(g, from, msg_reply_error(m->id, "this connection is node '%s' already", bound->name));
		return;
	}
	struct gmc_node *n = node_get(g, name, now_ns);
	if (n->peer && n->peer != from) {
		reply_to(g, from, msg_reply_error(m->id, "node '%s' is registered on another connection", name));
		return;
	}
	n->peer = from;
	size_t *slot = g->io.slot ? g->io.slot(g->io.ctx, from) : NULL;
	if (slot)
		*slot = (size_t)(n - g->nodes) + 1;
	if (msg_has(m, "location"))
		snprintf(n->location, sizeof n->location, "%s", msg_str(m, "location"));
	snprintf(n->address, sizeof n->address, "%s", msg_has(m, "address") ? msg_str(m, "address") : "");
	format_timestamp(n->last_seen, sizeof n->last_seen);
	if (n->state == NODE_INACTIVE)
		n->state = NODE_ACTIVE;
	log_info("node %s registered (%s)", name, gmc_node_state_name(n->state));
	json_t *reply = msg_reply_ok(m->id);
	json_object_set_new(reply, "state", json_string(gmc_node_state_name(n->state)));
	reply_to(g, from, reply);
	if (msg_has(m, "served"))
		reconcile_served(g, n, json_object_get(m->obj, "served"), now_ns);
	if (msg_has(m, "used"))
		reconcile_used(g, n, json_object_get(m->obj, "used"), now_ns);
}

static void handle_inform(struct gmc *g, struct gmc_peer *from, const struct msg *m)
{
	struct gmc_node *n = node_of_peer(g, from);
	if (!n) {
		reply_to(g, from, msg_reply_error(m->id, "inform before register"));
		return;
	}
	n->reservoir_bytes = msg_u64(m, "reservoir_bytes");
	n->local_need_bytes = msg_u64(m, "local_need_bytes");
	if (msg_has(m, "capacity_bytes"))
		n->capacity_bytes = msg_u64(m, "capacity_bytes");
	if (msg_has(m, "reserved_bytes"))
		n->reserved_bytes = msg_u64(m, "reserved_bytes");
	n->informs++;
	format_timestamp(n->last_seen, sizeof n->last_seen);
	reply_to(g, from, msg_reply_ok(m->id));
}

static void handle_invalidate(struct gmc *g, struct gmc_peer *from, const struct msg *m, uint64_t now_ns)
{
	struct gmc_node *n = node_of_peer(g, from);
	if (!n) {
		reply_to(g, from, msg_reply_error(m->id, "invalidate before register"));
		return;
	}
	start_drain(g, n, MSG_INVALIDATE, from, m->id, now_ns);
}

static void handle_query(struct gmc *g, struct gmc_peer *from, const struct msg *m)
{
	json_t *reply = msg_reply_ok(m->id);
	json_t *records = m->type == MSG_NODES ? gmc_node_records(g) : m->type == MSG_LEASES ? gmc_lease_records(g) : NULL;
	if (!records) {
		records = json_array();
		json_array_append_new(records, gmc_status_record(g));
	}
	json_object_set_new(reply, "records", records);
	reply_to(g, from, reply);
}

/* ---- replies from agents ---- */

static void step_done(struct gmc *g, struct pending p, const struct msg *reply, const char *failure, uint64_t now_ns)
{
	bool ok = reply && json_is_true(json_object_get(reply->obj, "ok"));
	const char *why = failure ? failure : reply ? msg_str(reply, "error") : "no reply";
	if (!why)
		why = "refused";
	struct gmc_lease *l = lease_find(g, p.lease_id);
	switch (p.step) {
	case STEP_ALLOC:
		if (!l)
			break;
		if (!ok) {
			log_warn("lease %llu: %s could not create export %s: %s", (unsigned long long)l->id, l->provider,
				 l->export_name, why);
			char provider[NAME_LEN], export_name[NAME_LEN];
			snprintf(provider, sizeof provider, "%s", l->provider);
			snprintf(export_name, sizeof export_name, "%s", l->export_name);
			uint64_t bytes = l->bytes;
			journal_end(g, l->id);
			lease_remove(g, l);
			if (!alloc_retry(g, p.op, provider, bytes, now_ns) && p.op)
				op_fail(p.op, "%s could not create export %s: %s", provider, export_name, why);
			break;
		}
		if (msg_has(reply, "uri") && json_is_string(json_object_get(reply->obj, "uri")))
			snprintf(l->uri, sizeof l->uri, "%s", msg_str(reply, "uri"));
		if (msg_has(reply, "fabric_uri") && json_is_string(json_object_get(reply->obj, "fabric_uri")))
			snprintf(l->fabric_uri, sizeof l->fabric_uri, "%s", msg_str(reply, "fabric_uri"));
		if (msg_has(reply, "address") && json_is_string(json_object_get(reply->obj, "address")))
			snprintf(l->address, sizeof l->address, "%s", msg_str(reply, "address"));
		l->state = LEASE_ACTIVE;
		journal_write(g, journal_lease(l, "active"));
		log_info("lease %llu active: %s serves %llu bytes to %s/%s", (unsigned long long)l->id, l->provider,
			 (unsigned long long)l->bytes, l->consumer, l->domain);
		struct gmc_node *c = node_find(g, l->consumer);
		if (c && c->peer) {
			json_t *m = msg_new(MSG_ATTACH, 0);
			json_object_set_new(m, "lease", json_integer((json_int_t)l->id));
			json_object_set_new(m, "domain", json_string(l->domain));
			json_object_set_new(m, "uri", json_string(l->uri));
			if (l->fabric_uri[0])
				json_object_set_new(m, "fabric_uri", json_string(l->fabric_uri));
			json_object_set_new(m, "size_bytes", json_integer((json_int_t)l->bytes));
			request(g, c->peer, m, l->id, STEP_ATTACH, p.op, now_ns);
		} else if (p.op) {
			json_array_append_new(p.op->records, lease_record(l));
		}
		break;
	case STEP_ATTACH:
		if (!l)
			break;
		l->attached = ok;
		if (!ok)
			log_warn("lease %llu: %s could not attach it: %s", (unsigned long long)l->id, l->consumer, why);
		if (p.op) {
			json_t *r = lease_record(l);
			if (!ok)
				json_object_set_new(r, "attach_error", json_string(why));
			json_array_append_new(p.op->records, r);
		}
		break;
	case STEP_DETACH:
		if (!l)
			break;
		if (!ok)
			log_warn("lease %llu: %s did not detach: %s", (unsigned long long)l->id, l->consumer, why);
		provider_release(g, l, p.op, now_ns);
		break;
	case STEP_RELEASE:
		if (!l)
			break;
		if (!ok)
			log_warn("lease %llu: %s did not remove export %s: %s", (unsigned long long)l->id, l->provider,
				 l->export_name, why);
		lease_finish(g, l, p.op, "released");
		break;
	case STEP_ORPHAN:
		if (!ok)
			log_warn("lease %llu: orphan clean-up failed: %s", (unsigned long long)p.lease_id, why);
		break;
	}
	op_release(g, p.op);
}

static int take_pending(struct gmc *g, uint64_t msg_id, struct gmc_peer *peer, struct pending *out)
{
	for (size_t i = 0; i < g->pending_count; i++)
		if (g->pending[i].msg_id == msg_id && g->pending[i].peer == peer) {
			*out = g->pending[i];
			g->pending[i] = g->pending[--g->pending_count];
			return 0;
		}
	return -1;
}

/* ---- entry points ---- */

int gmc_receive(struct gmc *g, struct gmc_peer *from, const char *line, size_t len, uint64_t now_ns, struct ms_err *err)
{
	struct msg m;
	if (msg_parse(line, len, &m, err) < 0)
		return -1;
	g->messages++;
	switch (m.type) {
	case MSG_REPLY: {
		struct pending p;
		if (take_pending(g, m.id, from, &p) == 0)
			step_done(g, p, &m, NULL, now_ns);
		else
			log_debug("reply %llu answers nothing", (unsigned long long)m.id);
		break;
	}
	case MSG_REGISTER:
		handle_register(g, from, &m, now_ns);
		break;
	case MSG_INFORM:
		handle_inform(g, from, &m);
		break;
	case MSG_INVALIDATE:
		handle_invalidate(g, from, &m, now_ns);
		break;
	case MSG_ALLOC:
		handle_alloc(g, from, &m, now_ns);
		break;
	case MSG_RELEASE:
		handle_release(g, from, &m, now_ns);
		break;
	case MSG_RECLAIM:
		handle_reclaim(g, from, &m, now_ns);
		break;
	case MSG_LEAVE:
		handle_leave(g, from, &m, now_ns);
		break;
	case MSG_STATUS:
	case MSG_NODES:
	case MSG_LEASES:
		handle_query(g, from, &m);
		break;
	default:
		msg_free(&m);
		return ms_fail_input(err, "%s is sent by the controller, not to it", msg_type_name(m.type));
	}
	msg_free(&m);
	return 0;
}

void gmc_peer_gone(struct gmc *g, struct gmc_peer *peer, uint64_t now_ns)
{
	struct gmc_node *n = node_of_peer(g, peer);
	if (n) {
		n->peer = NULL;
		n->away_since_ns = now_ns;
		log_info("node %s disconnected", n->name);
	}
	for (struct op *op = g->ops; op; op = op->next)
		if (op->requester == peer)
			op->requester = NULL;
	/* requests in flight to it fail (step_done may add pendings: restart the scan) */
	for (size_t i = 0; i < g->pending_count;) {
		if (g->pending[i].peer != peer) {
			i++;
			continue;
		}
		struct pending p = g->pending[i];
		g->pending[i] = g->pending[--g->pending_count];
		step_done(g, p, NULL, "the node disconnected", now_ns);
		i = 0;
	}
}

void gmc_tick(struct gmc *g, uint64_t now_ns)
{
	for (size_t i = 0; i < g->pending_count;) {
		if (g->pending[i].deadline_ns > now_ns) {
			i++;
			continue;
		}
		struct pending p = g->pending[i];
		g->pending[i] = g->pending[--g->pending_count];
		step_done(g, p, NULL, "no reply in time", now_ns);
		i = 0;
	}
	for (size_t i = 0; i < g->node_count; i++) {
		struct gmc_node *n = &g->nodes[i];
		if (n->peer || n->state == NODE_RECOVERY || n->state == NODE_LEAVING ||
		    now_ns - n->away_since_ns < g->cfg.node_timeout_ns)
			continue;
		bool has_leases = false;
		for (size_t k = 0; k < g->lease_count && !has_leases; k++)
			has_leases = strcmp(g->leases[k].provider, n->name) == 0 || strcmp(g->leases[k].consumer, n->name) == 0;
		if (!has_leases) {
			n->state = NODE_INACTIVE;
			continue;
		}
		log_warn("node %s away for %llu s: failed, its leases are revoked", n->name,
			 (unsigned long long)((now_ns - n->away_since_ns) / NS_PER_S));
		start_drain(g, n, MSG_INVALIDATE, NULL, 0, now_ns);
		n = &g->nodes[i];
	}
}

int gmc_new(const struct gmc_config *cfg, const struct gmc_io *io, struct gmc **out, struct ms_err *err)
{
	struct gmc *g = calloc(1, sizeof *g);
	if (!g)
		return ms_fail(err, "out of memory");
	g->cfg = *cfg;
	g->io = *io;
	g->started_ns = monotonic_ns();
	g->state = cfg->state;
	if (cfg->state) {
		if (state_load(cfg->state, journal_apply, journal_live_at_start, journal_snapshot, g, err) < 0) {
			free(g);
			return ms_fail_prefix(err, "--state");
		}
		/* nodes named by the leases are known, not yet connected: they have
		 * node_timeout to register again before their leases are revoked */
		uint64_t now = monotonic_ns();
		for (size_t i = 0; i < g->lease_count; i++) {
			node_get(g, g->leases[i].provider, now);
			node_get(g, g->leases[i].consumer, now);
			lease_account(g, &g->leases[i], +1);
		}
		if (g->lease_count)
			log_info("%zu leases reloaded (%s)", g->lease_count, cfg->state->ops->name);
	}
	*out = g;
	return 0;
}

void gmc_free(struct gmc *g)
{
	if (!g)
		return;
	while (g->ops) {
		struct op *op = g->ops;
		g->ops = op->next;
		json_decref(op->records);
		free(op);
	}
	free(g->node_index);
	free(g->nodes);
	free(g->leases);
	free(g->pending);
	free(g);
}

size_t gmc_lease_count(const struct gmc *g)
{
	return g->lease_count;
}

size_t gmc_node_count(const struct gmc *g)
{
	return g->node_count;
}

json_t *gmc_status_record(const struct gmc *g)
{
	json_t *r = record_new("gmc_status");
	size_t active = 0, connected = 0;
	uint64_t free_bytes = 0, leased = 0;
	for (size_t i = 0; i < g->node_count; i++) {
		active += g->nodes[i].state == NODE_ACTIVE;
		connected += g->nodes[i].peer != NULL;
		if (g->nodes[i].state == NODE_ACTIVE)
			free_bytes += node_free(&g->nodes[i]);
	}
	for (size_t i = 0; i < g->lease_count; i++)
		leased += g->leases[i].bytes;
	json_object_set_new(r, "policy", json_string(g->cfg.policy->name));
	json_object_set_new(r, "reserve_bytes", json_integer((json_int_t)g->cfg.params.reserve));
	if (g->cfg.params.vm_cap)
		json_object_set_new(r, "vm_cap_bytes", json_integer((json_int_t)g->cfg.params.vm_cap));
	json_object_set_new(r, "nodes", json_integer((json_int_t)g->node_count));
	json_object_set_new(r, "active_nodes", json_integer((json_int_t)active));
	json_object_set_new(r, "connected_nodes", json_integer((json_int_t)connected));
	json_object_set_new(r, "leases", json_integer((json_int_t)g->lease_count));
	json_object_set_new(r, "leased_bytes", json_integer((json_int_t)leased));
	json_object_set_new(r, "free_bytes", json_integer((json_int_t)free_bytes));
	json_object_set_new(r, "requests_in_flight", json_integer((json_int_t)g->pending_count));
	json_object_set_new(r, "messages", json_integer((json_int_t)g->messages));
	json_object_set_new(r, "decisions", json_integer((json_int_t)g->decisions));
	if (g->decisions)
		json_object_set_new(r, "decision_us_avg", json_real((double)g->decision_ns / (double)g->decisions / 1e3));
	json_object_set_new(r, "uptime_s", json_real((double)(monotonic_ns() - g->started_ns) / 1e9));
	json_object_set_new(r, "journal", json_boolean(g->state && g->state->ops == &state_journal_ops));
	if (g->state)
		state_describe(g->state, r);
	else
		json_object_set_new(r, "state_backend", json_string("memory"));
	return r;
}

json_t *gmc_node_records(const struct gmc *g)
{
	json_t *a = json_array();
	for (size_t i = 0; i < g->node_count; i++)
		json_array_append_new(a, node_record(&g->nodes[i]));
	return a;
}

json_t *gmc_lease_records(const struct gmc *g)
{
	json_t *a = json_array();
	for (size_t i = 0; i < g->lease_count; i++)
		json_array_append_new(a, lease_record(&g->leases[i]));
	return a;
}
