/* The etcd backend (--state etcd://HOST:PORT[,HOST:PORT...]/PREFIX): several
 * controllers share one state; the one whose record holds PREFIX/leader
 * leads.  That key lives on an etcd lease the leader keeps alive: when the
 * leader dies, the key goes with its lease and a standby's campaign (a txn:
 * create the key if nobody has) wins.  Every write of the leader is a txn
 * guarded by the create revision of its leader key, so a deposed leader
 * (paused, cut off) cannot write: its txn fails and it steps down.
 * Keys: PREFIX/leader (the leader's address), PREFIX/lease/ID (a lease's
 * journal record), PREFIX/issued (the highest lease id ever issued). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd.h"
#include "log.h"
#include "state.h"
#include "units.h"

/* The leader key's lease.  A dead leader is replaced after at most this
 * long (plus a tick); etcd grants no less than 1.5 election timeouts. */
#define LEADER_TTL_S 2
/* Kept alive this many times per TTL: one slow answer does not lose it. */
#define KEEPALIVES_PER_TTL 4
/* etcd refuses a txn of more operations than --max-txn-ops (128). */
#define TXN_OPS_MAX 120
/* A starting controller says within this long that no etcd answers. */
#define OPEN_TIMEOUT_NS (3 * NS_PER_S)

struct state_etcd {
	struct state base;
	struct etcd etcd;
	char *hosts, *prefix, *advertise;
	int64_t lease_id;           /* 0: none */
	int64_t lease_ttl_s;        /* as etcd granted it */
	uint64_t lease_deadline_ns; /* the lease lives at least until then */
	uint64_t next_keepalive_ns;
	int64_t leader_rev;         /* our leader key's create revision; 0: not leading */
	char leader[256];           /* the leader's address ("" unknown) */
	json_t *writes;             /* key -> value (a string) or null (delete), since the last sync */
	uint64_t issued, issued_synced;
};

static char *key_of(const struct state_etcd *s, const char *name)
{
	char *k;
	return asprintf(&k, "%s/%s", s->prefix, name) < 0 ? NULL : k;
}

static char *lease_key(const struct state_etcd *s, uint64_t id)
{
	char *k;
	return asprintf(&k, "%s/lease/%020" PRIu64, s->prefix, id) < 0 ? NULL : k;
}

/* etcd://HOSTS/PREFIX split; PREFIX without trailing slashes, never empty. */
static int parse_uri(struct state_etcd *s, const char *where, struct ms_err *err)
{
	const char *hosts = where + strlen("etcd://");
	const char *slash = strchr(hosts, '/');
	if (!slash || slash == hosts)
		return ms_fail_input(err, "%s: use etcd://HOST:PORT[,HOST:PORT...]/PREFIX", where);
	size_t plen = strlen(slash);
	while (plen > 1 && slash[plen - 1] == '/')
		plen--;
	if (plen <= 1)
		return ms_fail_input(err, "%s: the PREFIX is missing (etcd://HOST:PORT/PREFIX)", where);
	s->hosts = strndup(hosts, (size_t)(slash - hosts));
	s->prefix = strndup(slash, plen);
	return s->hosts && s->prefix ? 0 : ms_fail(err, "out of memory");
}

static int grant_lease(struct state_etcd *s, uint64_t deadline_ns, struct ms_err *err)
{
	uint64_t sent = monotonic_ns();
	char ttl[16];
	snprintf(ttl, sizeof ttl, "%d", LEADER_TTL_S);
	json_t *answer;
	if (etcd_post(&s->etcd, "lease/grant", json_pack("{s:s}", "TTL", ttl), deadline_ns, &answer, err) < 0)
		return -1;
	s->lease_id = etcd_int(answer, "ID");
	s->lease_ttl_s = etcd_int(answer, "TTL");
	json_decref(answer);
	if (s->lease_id == 0 || s->lease_ttl_s <= 0) {
		s->lease_id = 0;
		return ms_fail(err, "etcd granted no lease");
	}
	s->lease_deadline_ns = sent + (uint64_t)s->lease_ttl_s * NS_PER_S;
	s->next_keepalive_ns = sent + (uint64_t)s->lease_ttl_s * NS_PER_S / KEEPALIVES_PER_TTL;
	return 0;
}

/* 0 kept alive, -1 the lease is gone (expired) or etcd did not answer in time. */
static int keep_alive(struct state_etcd *s, struct ms_err *err)
{
	uint64_t sent = monotonic_ns();
	char id[32];
	snprintf(id, sizeof id, "%" PRId64, s->lease_id);
	json_t *answer;
	if (etcd_post(&s->etcd, "lease/keepalive", json_pack("{s:s}", "ID", id), s->lease_deadline_ns, &answer, err) < 0)
		return -1;
	int64_t ttl = etcd_int(json_object_get(answer, "result"), "TTL");
	json_decref(answer);
	if (ttl <= 0)
		return ms_fail(err, "the leader lease expired");
	s->lease_deadline_ns = sent + (uint64_t)ttl * NS_PER_S;
	s->next_keepalive_ns = sent + (uint64_t)ttl * NS_PER_S / KEEPALIVES_PER_TTL;
	return 0;
}

static json_t *leader_compare(const struct state_etcd *s, const char *key, int64_t revision)
{
	char rev[32];
	snprintf(rev, sizeof rev, "%" PRId64, revision);
	return json_pack("{s:s, s:s, s:o, s:s}", "target", "CREATE", "result", "EQUAL", "key", etcd_b64_str(key),
			 "create_revision", rev);
}

/* Create the leader key on our lease if nobody holds it; else learn who does. */
static int campaign(struct state_etcd *s, struct ms_err *err)
{
	char *key = key_of(s, "leader"), id[32];
	snprintf(id, sizeof id, "%" PRId64, s->lease_id);
	json_t *txn = json_pack("{s:[o], s:[{s:{s:o, s:o, s:s}}], s:[{s:{s:o}}]}", "compare", leader_compare(s, key, 0),
				"success", "request_put", "key", etcd_b64_str(key), "value", etcd_b64_str(s->advertise),
				"lease", id, "failure", "request_range", "key", etcd_b64_str(key));
	free(key);
	json_t *answer;
	if (etcd_post(&s->etcd, "kv/txn", txn, s->lease_deadline_ns, &answer, err) < 0)
		return -1;
	if (json_is_true(json_object_get(answer, "succeeded"))) {
		s->leader_rev = etcd_int(json_object_get(answer, "header"), "revision");
	} else {
		json_t *kv = json_array_get(
			json_object_get(json_object_get(json_array_get(json_object_get(answer, "responses"), 0), "response_range"),
					"kvs"),
			0);
		char *holder = etcd_unb64(json_object_get(kv, "value"));
		snprintf(s->leader, sizeof s->leader, "%s", holder ? holder : "");
		free(holder);
		/* our own key (a campaign whose answer was lost): we lead */
		if (kv && etcd_int(kv, "lease") == s->lease_id)
			s->leader_rev = etcd_int(kv, "create_revision");
	}
	json_decref(answer);
	if (s->leader_rev)
		snprintf(s->leader, sizeof s->leader, "%s", s->advertise);
	return 0;
}

static void step_down(struct state_etcd *s)
{
	s->leader_rev = 0;
	s->lease_id = 0; /* left to expire: a new one is granted to campaign again */
	s->leader[0] = '\0';
	json_object_clear(s->writes);
	s->issued = s->issued_synced;
}

static int se_lead(struct state *base, uint64_t now_ns, struct ms_err *err)
{
	struct state_etcd *s = (struct state_etcd *)base;
	if (s->leader_rev) {
		if (now_ns >= s->next_keepalive_ns && keep_alive(s, err) < 0 && monotonic_ns() >= s->lease_deadline_ns) {
			step_down(s);
			return -1;
		}
		if (monotonic_ns() >= s->lease_deadline_ns) {
			step_down(s);
			return ms_fail(err, "etcd not reached for the leader lease's %" PRId64 " s", s->lease_ttl_s);
		}
		return 1;
	}
	struct ms_err quiet;
	if (!s->lease_id || now_ns >= s->lease_deadline_ns) {
		if (grant_lease(s, now_ns + NS_PER_S, &quiet) < 0) {
			log_debug("%s", quiet.msg);
			return 0;
		}
	} else if (now_ns >= s->next_keepalive_ns && keep_alive(s, &quiet) < 0) {
		s->lease_id = 0;
		return 0;
	}
	if (campaign(s, &quiet) < 0)
		log_debug("campaign: %s", quiet.msg);
	return s->leader_rev ? 1 : 0;
}

static bool se_leading(const struct state *base)
{
	return ((const struct state_etcd *)base)->leader_rev != 0;
}

static const char *se_leader(const struct state *base)
{
	return ((const struct state_etcd *)base)->leader;
}

/* {"op":..., "lease":ID, ...} from a lease key's value. */
static void apply_kvs(json_t *kvs, json_t *loaded, state_apply_fn apply, void *ctx)
{
	size_t i;
	json_t *kv;
	json_array_foreach(kvs, i, kv)
	{
		char *key = etcd_unb64(json_object_get(kv, "key")), *value = etcd_unb64(json_object_get(kv, "value"));
		json_t *rec = value ? json_loads(value, 0, NULL) : NULL;
		if (json_is_object(rec)) {
			apply(ctx, rec);
			json_object_set_new(loaded, key, json_null());
		} else {
			log_warn("etcd key %s: not a lease record, skipped", key ? key : "?");
		}
		json_decref(rec);
		free(key);
		free(value);
	}
}

static int range(struct state_etcd *s, const char *key, bool prefix, json_t **kvs, struct ms_err *err)
{
	json_t *req = json_pack("{s:o}", "key", etcd_b64_str(key)), *answer;
	if (prefix)
		json_object_set_new(req, "range_end", etcd_prefix_end(key));
	if (etcd_post(&s->etcd, "kv/range", req, s->lease_deadline_ns, &answer, err) < 0)
		return -1;
	*kvs = json_incref(json_object_get(answer, "kvs"));
	json_decref(answer);
	if (!*kvs)
		*kvs = json_array();
	return 0;
}

/* Lease keys loaded that the live records no longer name are deleted. */
static void forget_dead(struct state_etcd *s, json_t *loaded, json_t *live)
{
	size_t i;
	json_t *rec;
	json_array_foreach(live, i, rec)
	{
		json_t *id = json_object_get(rec, "lease");
		if (strcmp(json_string_value(json_object_get(rec, "op")) ?: "", "issued") == 0 || !json_is_integer(id))
			continue;
		char *key = lease_key(s, (uint64_t)json_integer_value(id));
		json_object_del(loaded, key);
		free(key);
	}
	const char *key;
	json_t *v;
	json_object_foreach(loaded, key, v) json_object_set_new(s->writes, key, json_null());
}

static int se_load(struct state *base, state_apply_fn apply, state_records_fn live_at_start, state_records_fn snapshot,
		   void *ctx, struct ms_err *err)
{
	(void)snapshot; /* etcd compacts itself */
	struct state_etcd *s = (struct state_etcd *)base;
	char *leases = key_of(s, "lease/"), *issued = key_of(s, "issued");
	json_t *lease_kvs = NULL, *issued_kvs = NULL, *loaded = json_object();
	int rc = range(s, leases, true, &lease_kvs, err) < 0 || range(s, issued, false, &issued_kvs, err) < 0 ? -1 : 0;
	if (rc == 0) {
		char *n = etcd_unb64(json_object_get(json_array_get(issued_kvs, 0), "value"));
		s->issued = s->issued_synced = n ? strtoull(n, NULL, 10) : 0;
		free(n);
		json_t *rec = json_pack("{s:s, s:I}", "op", "issued", "lease", (json_int_t)s->issued);
		apply(ctx, rec);
		json_decref(rec);
		apply_kvs(lease_kvs, loaded, apply, ctx);
		json_t *live = live_at_start(ctx);
		forget_dead(s, loaded, live);
		json_decref(live);
		rc = state_sync(base, err);
	}
	json_decref(lease_kvs);
	json_decref(issued_kvs);
	json_decref(loaded);
	free(leases);
	free(issued);
	return rc;
}

static int se_append(struct state *base, json_t *rec, struct ms_err *err)
{
	struct state_etcd *s = (struct state_etcd *)base;
	const char *op = json_string_value(json_object_get(rec, "op"));
	json_int_t id = json_integer_value(json_object_get(rec, "lease"));
	if (!op || id <= 0)
		return ms_fail(err, "not a lease record");
	if ((uint64_t)id > s->issued && strcmp(op, "end") != 0)
		s->issued = (uint64_t)id;
	if (strcmp(op, "issued") == 0)
		return 0;
	char *key = lease_key(s, (uint64_t)id);
	char *text = strcmp(op, "end") == 0 ? NULL : json_dumps(rec, JSON_COMPACT | JSON_SORT_KEYS);
	json_object_set_new(s->writes, key, text ? json_string(text) : json_null());
	free(text);
	free(key);
	return 0;
}

static json_t *write_op(const char *key, json_t *value)
{
	if (json_is_null(value))
		return json_pack("{s:{s:o}}", "request_delete_range", "key", etcd_b64_str(key));
	return json_pack("{s:{s:o, s:o}}", "request_put", "key", etcd_b64_str(key), "value",
			 etcd_b64_str(json_string_value(value)));
}

/* One guarded txn of ops: 0 applied, -1 failed (deposed: err says so). */
static int guarded_txn(struct state_etcd *s, json_t *ops, struct ms_err *err)
{
	char *leader = key_of(s, "leader");
	json_t *txn = json_pack("{s:[o], s:o}", "compare", leader_compare(s, leader, s->leader_rev), "success", ops);
	free(leader);
	json_t *answer;
	if (etcd_post(&s->etcd, "kv/txn", txn, s->lease_deadline_ns, &answer, err) < 0)
		return -1;
	bool applied = json_is_true(json_object_get(answer, "succeeded"));
	json_decref(answer);
	return applied ? 0 : ms_fail(err, "deposed: another controller holds the leader key");
}

static int se_sync(struct state *base, struct ms_err *err)
{
	struct state_etcd *s = (struct state_etcd *)base;
	if (!s->leader_rev)
		return ms_fail(err, "not the leader");
	json_t *ops = json_array();
	if (s->issued > s->issued_synced) {
		char *key = key_of(s, "issued"), n[32];
		snprintf(n, sizeof n, "%" PRIu64, s->issued);
		json_t *v = json_string(n);
		json_array_append_new(ops, write_op(key, v));
		json_decref(v);
		free(key);
	}
	const char *key;
	json_t *v;
	int rc = 0;
	json_object_foreach(s->writes, key, v)
	{
		json_array_append_new(ops, write_op(key, v));
		if (json_array_size(ops) >= TXN_OPS_MAX) {
			rc = guarded_txn(s, ops, err);
			ops = json_array();
			if (rc < 0)
				break;
		}
	}
	if (rc == 0 && json_array_size(ops))
		rc = guarded_txn(s, ops, err);
	else
		json_decref(ops);
	if (rc < 0) {
		step_down(s);
		return -1;
	}
	json_object_clear(s->writes);
	s->issued_synced = s->issued;
	return 0;
}

static bool se_pending(const struct state *base)
{
	const struct state_etcd *s = (const struct state_etcd *)base;
	return json_object_size(s->writes) > 0 || s->issued > s->issued_synced;
}

static void se_describe(const struct state *base, json_t *record)
{
	const struct state_etcd *s = (const struct state_etcd *)base;
	json_object_set_new(record, "etcd_endpoint", json_string(etcd_endpoint(&s->etcd)));
	json_object_set_new(record, "etcd_prefix", json_string(s->prefix));
	json_object_set_new(record, "leader", json_string(s->leader));
}

static void se_close(struct state *base)
{
	struct state_etcd *s = (struct state_etcd *)base;
	if (s->lease_id) { /* resign: the key goes now, a standby need not wait for the TTL */
		char id[32];
		snprintf(id, sizeof id, "%" PRId64, s->lease_id);
		json_t *answer = NULL;
		struct ms_err err;
		if (etcd_post(&s->etcd, "lease/revoke", json_pack("{s:s}", "ID", id), monotonic_ns() + NS_PER_S, &answer,
			      &err) < 0)
			log_debug("%s", err.msg);
		json_decref(answer);
	}
	etcd_close(&s->etcd);
	json_decref(s->writes);
	free(s->hosts);
	free(s->prefix);
	free(s->advertise);
	free(s);
}

static int se_open(const char *where, const char *advertise, struct state **out, struct ms_err *err)
{
	struct state_etcd *s = calloc(1, sizeof *s);
	if (!s)
		return ms_fail(err, "out of memory");
	s->writes = json_object();
	s->advertise = strdup(advertise);
	if (parse_uri(s, where, err) < 0 || etcd_open(&s->etcd, s->hosts, err) < 0) {
		se_close(&s->base);
		return -1;
	}
	/* a lease now: an etcd that does not answer is said at start */
	if (grant_lease(s, monotonic_ns() + OPEN_TIMEOUT_NS, err) < 0) {
		ms_fail_prefix(err, "no etcd member of %s answered", s->hosts);
		se_close(&s->base);
		return -1;
	}
	*out = &s->base;
	return 0;
}

const struct state_ops state_etcd_ops = {
	.name = "etcd",
	.scheme = "etcd://",
	.open = se_open,
	.lead = se_lead,
	.leading = se_leading,
	.leader = se_leader,
	.load = se_load,
	.append = se_append,
	.sync = se_sync,
	.pending = se_pending,
	.describe = se_describe,
	.close = se_close,
};
