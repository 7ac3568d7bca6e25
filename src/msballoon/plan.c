#include "plan.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "control.h"
#include "log.h"
#include "observe.h"
#include "output.h"
#include "policy_share.h"
#include "share_space.h"
#include "stream.h"

/* Apply the balloon targets that change something; fill items[i] per domain. */
static size_t apply_decisions(const struct plan_config *cfg, const struct node_view *node, const struct vm_decision *d,
			      struct apply_item *items, bool *has_item)
{
	size_t n = 0;
	struct apply_item *batch = calloc(node->count ? node->count : 1, sizeof *batch);
	size_t *index = calloc(node->count ? node->count : 1, sizeof *index);
	if (!batch || !index) {
		free(batch);
		free(index);
		return node->count;
	}
	for (size_t i = 0; i < node->count; i++) {
		has_item[i] = false;
		if (d[i].balloon_bytes == NO_TARGET || d[i].balloon_bytes == node->vms[i].alloc_bytes)
			continue;
		batch[n] = (struct apply_item){.domain = node->vms[i].domain, .target_bytes = d[i].balloon_bytes};
		index[n++] = i;
	}
	size_t failed = apply_targets(cfg->drv, batch, n, cfg->wait_ns);
	for (size_t k = 0; k < n; k++) {
		items[index[k]] = batch[k];
		has_item[index[k]] = true;
		if (batch[k].error[0])
			log_warn("%s", batch[k].error);
	}
	free(batch);
	free(index);
	return failed;
}

/* Resize DOMAIN's shared space (msshare's tmpfs) to TARGET bytes, never below
 * what is in use then plus MARGIN (share_space_resize refuses that: tmpfs
 * itself refuses less than use); the sizes before and after are read from the
 * space.  plan --apply and apply both resize through here. */
static void resize_share(const char *domain, int64_t target, int64_t margin, struct apply_item *it)
{
	char dir[PATH_MAX];
	struct ms_err err = {0};
	uint64_t size, used, files;
	*it = (struct apply_item){.domain = domain, .target_bytes = target, .before_bytes = -1, .actual_bytes = -1};
	if (share_space_dir(domain, dir, sizeof dir, &err) == 0 && share_space_usage(dir, &size, &used, &files, &err) == 0)
		it->before_bytes = it->actual_bytes = (int64_t)size;
	if (it->before_bytes < 0 || share_space_resize(dir, (uint64_t)target, (uint64_t)(margin > 0 ? margin : 0), &err) < 0) {
		snprintf(it->error, sizeof it->error, "%s: shared space not resized: %s", domain, err.msg);
		return;
	}
	it->applied = it->reached = true;
	if (share_space_usage(dir, &size, &used, &files, &err) == 0)
		it->actual_bytes = (int64_t)size;
}

/* plan --apply of share targets that change something; fill items[i] of those domains.
 * A refused resize is a warning: the loop goes on.  Returns how many failed. */
static size_t apply_share_targets(const struct node_view *node, const struct vm_decision *d, struct apply_item *items,
				  bool *has_item)
{
	size_t failed = 0;
	for (size_t i = 0; i < node->count; i++) {
		if (d[i].share_bytes == NO_TARGET || d[i].share_bytes == node->vms[i].share.size_bytes)
			continue;
		resize_share(node->vms[i].domain, d[i].share_bytes, decision_share_margin(&node->vms[i], &d[i]), &items[i]);
		has_item[i] = true;
		if (items[i].error[0]) {
			log_warn("%s", items[i].error);
			failed++;
		}
	}
	return failed;
}

/* Without --tier-control there is no tier store to give second-tier quotas to. */
static void note_tier_not_applied(json_t *record)
{
	static bool warned;
	json_object_set_new(record, "tier_applied", json_false());
	if (!warned)
		log_warn("tier targets are not applied: give --tier-control with the msrswap client's control socket");
	warned = true;
}

/* Send a tier target to the msrswap client daemon; record the outcome. */
static void apply_tier_target(const char *control, const char *domain, int64_t bytes, json_t *record)
{
	struct ms_err err = {0};
	json_t *req = json_pack("{s:s, s:s, s:I}", "cmd", "target", "name", domain, "bytes", (json_int_t)bytes);
	int rc = control_request(control, req, NULL, &err);
	json_decref(req);
	json_object_set_new(record, "tier_applied", json_boolean(rc == 0));
	if (rc < 0) {
		json_object_set_new(record, "tier_error", json_string(err.msg));
		log_warn("%s: tier target not applied: %s", domain, err.msg);
	}
}

/* The learned bid and HAL's part in a target record. */
static void add_live_fields(const struct live_loop *l, const struct vm_view *v, json_t *r)
{
	const struct live_vm *lv = live_find(l, v->domain);
	if (v->has_bid)
		json_object_set_new(r, "bid", json_real(v->bid));
	if (v->has_bid && lv) {
		json_object_set_new(r, "usrtime", json_real(lv->usrtime));
		json_object_set_new(r, "usrtime_target", json_real(lv->usrtime_target));
	}
	if (l->hal && lv) {
		json_object_set_new(r, "hal_override", json_boolean(lv->overridden));
		json_object_set_new(r, "hal_overrides", json_integer((json_int_t)lv->overrides));
	}
}

/* The agent's note before the Bid Analyzer's reason. */
static void prefix_live_notes(const struct live_loop *l, const struct node_view *node, struct vm_decision *d)
{
	for (size_t i = 0; i < node->count; i++) {
		const struct live_vm *lv = live_find(l, node->vms[i].domain);
		char ba[POLICY_REASON_MAX];
		snprintf(ba, sizeof ba, "%s", d[i].reason);
		snprintf(d[i].reason, sizeof d[i].reason, "%s; Bid Analyzer: %s", lv ? lv->note : "", ba);
	}
}

static int emit_interval(const struct plan_config *cfg, const struct node_view *node, const struct vm_decision *d,
			 const struct node_decision *nd, const struct apply_item *items, const bool *has_item,
			 struct ms_err *err)
{
	for (size_t i = 0; i < node->count; i++) {
		json_t *r = target_record(cfg->live ? cfg->live->agent.cfg.kind : cfg->policy->name, &node->vms[i], &d[i]);
		if (cfg->live)
			add_live_fields(cfg->live, &node->vms[i], r);
		if (has_item && has_item[i])
			add_outcome(r, &items[i]);
		if (d[i].tier_bytes != NO_TARGET && cfg->tier_control)
			apply_tier_target(cfg->tier_control, node->vms[i].domain, d[i].tier_bytes, r);
		else if (d[i].tier_bytes != NO_TARGET && cfg->drv)
			note_tier_not_applied(r);
		if (jsonl_emit(cfg->out, r, err) < 0)
			return -1;
	}
	if (nd->reservoir_bytes >= 0 && jsonl_emit(cfg->out, reservoir_record(cfg->policy->name, node, d, nd), err) < 0)
		return -1;
	if (nd->grant_any_bytes > 0 &&
	    jsonl_emit(cfg->out, grant_any_record(cfg->policy->name, nd->grant_any_bytes, nd->grant_any_domain), err) < 0)
		return -1;
	return 0;
}

static int64_t reservoir_after(const struct node_view *node, const struct vm_decision *d)
{
	int64_t used = 0;
	for (size_t i = 0; i < node->count; i++) {
		int64_t t = d[i].balloon_bytes != NO_TARGET ? d[i].balloon_bytes : node->vms[i].alloc_bytes;
		used = sat_add(used, t > 0 ? t : 0);
	}
	return node->host_bytes > used ? node->host_bytes - used : 0;
}

/* Decide (and apply) one interval. Returns the number of failed applications, or -1. */
static int decide_interval(const struct plan_config *cfg, struct observer *obs, struct ms_err *err)
{
	struct vm_view *vms = NULL;
	struct node_view node = {0};
	if (observer_view(obs, &node, &vms) == 0) {
		free(vms);
		observer_next_interval(obs, &node, NULL);
		return 0;
	}
	node.host_bytes = cfg->limits.host_bytes;
	if (cfg->tier_total_bytes >= 0)
		node.tier_total_bytes = cfg->tier_total_bytes;
	struct vm_decision *d = calloc(node.count, sizeof *d);
	struct apply_item *items = calloc(node.count, sizeof *items);
	bool *has_item = calloc(node.count, sizeof *has_item);
	struct node_decision nd;
	int rc = -1;
	if (!d || !items || !has_item) {
		ms_fail(err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < node.count; i++)
		vm_decision_init(&d[i]);
	node_decision_init(&nd);
	if (cfg->live && live_bid(cfg->live, &node, err) < 0)
		goto out;
	if (cfg->policy->decide(&cfg->params, &node, d, &nd, err) < 0)
		goto out;
	if (cfg->live)
		prefix_live_notes(cfg->live, &node, d);
	enforce_invariants(&cfg->limits, &node, d);
	if (cfg->live)
		live_after(cfg->live, &node, d);
	if (nd.reservoir_bytes >= 0)
		nd.reservoir_bytes = reservoir_after(&node, d); /* what the enforced targets leave free */
	size_t failed = cfg->drv ? apply_decisions(cfg, &node, d, items, has_item) : 0;
	if (cfg->drv) /* memnet's targets: shared spaces */
		failed += apply_share_targets(&node, d, items, has_item);
	if (emit_interval(cfg, &node, d, &nd, items, cfg->drv ? has_item : NULL, err) < 0)
		goto out;
	observer_next_interval(obs, &node, d);
	rc = (int)failed;
out:
	free(vms);
	free(d);
	free(items);
	free(has_item);
	return rc;
}

int plan_run(const struct plan_config *cfg, FILE *in, const char *name, unsigned long *skipped, struct ms_err *err)
{
	struct observer obs;
	struct record_stream stream;
	observer_init(&obs);
	record_stream_init(&stream, in, name, cfg->settle_ns);
	stream.strict = cfg->strict;
	int rc = 0, failures = 0;
	for (;;) {
		json_t *rec = NULL;
		struct observation ob = {0};
		int got = record_stream_next(&stream, !cfg->once && obs.interval_records > 0, &rec, err);
		if (got == 1 && observation_parse(&stream.reader, rec, &ob, err) < 0) {
			json_decref(rec);
			got = -1;
		}
		if (got < 0) {
			if (record_stream_skip_bad(&stream, err))
				continue;
			rc = -1;
			break;
		}
		bool boundary = got == 2 || (got == 1 && !cfg->once && observer_starts_new_interval(&obs, &ob));
		if ((boundary || got == 0) && obs.interval_records > 0) {
			int failed = decide_interval(cfg, &obs, err);
			if (failed < 0) {
				json_decref(rec);
				rc = -1;
				break;
			}
			failures += failed;
		}
		if (got == 0)
			break;
		if (got == 1) {
			int added = observer_add(&obs, &ob, err); /* before the decref: ob points into rec */
			json_decref(rec);
			if (added < 0) {
				rc = -1;
				break;
			}
		}
	}
	*skipped = stream.skipped;
	record_stream_free(&stream);
	observer_free(&obs);
	return rc < 0 ? -1 : failures > 0;
}

/* One batch of "target" records to apply. */
struct target_batch {
	json_t **records;
	struct apply_item *items;
	size_t count;
};

static void batch_clear(struct target_batch *b)
{
	for (size_t i = 0; i < b->count; i++)
		json_decref(b->records[i]);
	b->count = 0;
}

static bool batch_has_domain(const struct target_batch *b, const char *domain)
{
	for (size_t i = 0; i < b->count; i++)
		if (strcmp(b->items[i].domain, domain) == 0)
			return true;
	return false;
}

/* Check a target against the floor and the domain's maximum before it is sent. */
static int check_target(struct driver *drv, const struct safety_limits *limits, struct apply_item *it, struct ms_err *err)
{
	struct domain_facts f;
	if (driver_read_facts(drv, it->domain, &f, err) < 0)
		return -1;
	int64_t clamped = clamp_target(limits, it->target_bytes, f.max_bytes);
	if (clamped != it->target_bytes)
		snprintf(it->error, sizeof it->error, "target %lld is outside [floor, maximum]: sent %lld instead",
			 (long long)it->target_bytes, (long long)clamped);
	it->target_bytes = clamped;
	return 0;
}

static int apply_batch(struct driver *drv, const struct safety_limits *limits, uint64_t wait_ns, struct target_batch *b,
		       struct jsonl_writer *out, size_t *failures, struct ms_err *err)
{
	for (size_t i = 0; i < b->count; i++) {
		struct ms_err derr = {0};
		if (check_target(drv, limits, &b->items[i], &derr) < 0) {
			snprintf(b->items[i].error, sizeof b->items[i].error, "%s", derr.msg);
			b->items[i].target_bytes = -1;
		}
	}
	/* items that could not be checked are not applied */
	size_t kept = 0;
	struct apply_item *ok = calloc(b->count ? b->count : 1, sizeof *ok);
	if (!ok)
		return ms_fail(err, "out of memory");
	for (size_t i = 0; i < b->count; i++)
		if (b->items[i].target_bytes >= 0)
			ok[kept++] = b->items[i];
	*failures += apply_targets(drv, ok, kept, wait_ns);
	for (size_t i = 0, k = 0; i < b->count; i++) {
		if (b->items[i].target_bytes >= 0) {
			char note[MS_ERR_MAX];
			snprintf(note, sizeof note, "%s", b->items[i].error);
			b->items[i] = ok[k++];
			if (note[0] && !b->items[i].error[0])
				snprintf(b->items[i].error, sizeof b->items[i].error, "%s", note);
		} else {
			(*failures)++;
		}
		if (b->items[i].error[0])
			log_warn("%s", b->items[i].error);
		add_outcome(b->records[i], &b->items[i]);
		if (json_object_get(b->records[i], "tier_bytes"))
			note_tier_not_applied(b->records[i]);
		json_incref(b->records[i]);
		if (jsonl_emit(out, b->records[i], err) < 0) {
			free(ok);
			return -1;
		}
	}
	free(ok);
	batch_clear(b);
	return 0;
}

static int batch_add(struct target_batch *b, const struct jsonl_reader *r, json_t *rec, struct ms_err *err)
{
	const char *domain;
	int64_t bytes;
	if (jsonl_get_string(r, rec, "domain", &domain, err) < 0 || record_size(r, rec, "balloon_bytes", true, &bytes, err) < 0)
		return -1;
	json_t **records = realloc(b->records, (b->count + 1) * sizeof *records);
	if (records)
		b->records = records;
	struct apply_item *items = realloc(b->items, (b->count + 1) * sizeof *items);
	if (items)
		b->items = items;
	if (!records || !items)
		return ms_fail(err, "out of memory");
	b->records[b->count] = rec;
	json_incref(rec);
	b->items[b->count] = (struct apply_item){.domain = json_string_value(json_object_get(rec, "domain")),
						 .target_bytes = bytes,
						 .before_bytes = -1, .actual_bytes = -1};
	b->count++;
	return 0;
}

static bool is_balloon_target(json_t *rec)
{
	const char *kind = json_string_value(json_object_get(rec, "kind"));
	return kind && strcmp(kind, "target") == 0 && json_object_get(rec, "balloon_bytes");
}

/* A share target (memnet): the size of a shared space, with no balloon target beside it. */
static bool is_share_target(json_t *rec)
{
	const char *kind = json_string_value(json_object_get(rec, "kind"));
	return kind && strcmp(kind, "target") == 0 && !json_object_get(rec, "balloon_bytes") &&
	       json_object_get(rec, "share_bytes");
}

/* The fields of a share target that apply needs; a bad one is bad input. */
static int read_share_target(const struct jsonl_reader *r, json_t *rec, const char **domain, int64_t *bytes,
			     int64_t *margin, struct ms_err *err)
{
	if (jsonl_get_string(r, rec, "domain", domain, err) < 0 || record_size(r, rec, "share_bytes", true, bytes, err) < 0 ||
	    record_size(r, rec, "share_margin_bytes", false, margin, err) < 0)
		return -1;
	if (*margin < 0)
		*margin = 0;
	return 0;
}

/* Resize the space now (a tmpfs remount takes effect at once: nothing to
 * batch or wait for) and echo the record with its outcome. */
static int apply_share_record(json_t *rec, const char *domain, int64_t bytes, int64_t margin, struct jsonl_writer *out,
			      size_t *failures, struct ms_err *err)
{
	struct apply_item it;
	resize_share(domain, bytes, margin, &it);
	if (it.error[0]) {
		log_warn("%s", it.error);
		(*failures)++;
	}
	add_outcome(rec, &it);
	json_incref(rec);
	return jsonl_emit(out, rec, err);
}

int apply_run(const struct apply_config *cfg, FILE *in, const char *name, unsigned long *skipped, struct ms_err *err)
{
	struct record_stream stream;
	struct target_batch batch = {0};
	size_t failures = 0;
	int rc = 0;
	struct driver *drv = cfg->drv;
	const struct safety_limits *limits = cfg->limits;
	uint64_t wait_ns = cfg->wait_ns;
	struct jsonl_writer *out = cfg->out;
	record_stream_init(&stream, in, name, cfg->settle_ns);
	stream.strict = cfg->strict;
	for (;;) {
		json_t *rec = NULL;
		int got = record_stream_next(&stream, batch.count > 0, &rec, err);
		if (got < 0) {
			if (record_stream_skip_bad(&stream, err))
				continue;
			rc = -1;
			break;
		}
		const char *domain = got == 1 ? json_string_value(json_object_get(rec, "domain")) : NULL;
		bool boundary = got != 1 || (domain && is_balloon_target(rec) && batch_has_domain(&batch, domain));
		if (boundary && batch.count && apply_batch(drv, limits, wait_ns, &batch, out, &failures, err) < 0) {
			json_decref(rec);
			rc = -1;
			break;
		}
		if (got == 0)
			break;
		if (got == 1 && is_balloon_target(rec) && batch_add(&batch, &stream.reader, rec, err) < 0) {
			json_decref(rec);
			if (record_stream_skip_bad(&stream, err))
				continue;
			rc = -1;
			break;
		}
		bool share = got == 1 && is_share_target(rec);
		const char *share_domain;
		int64_t share_bytes, share_margin;
		if (share && read_share_target(&stream.reader, rec, &share_domain, &share_bytes, &share_margin, err) < 0) {
			json_decref(rec);
			if (record_stream_skip_bad(&stream, err))
				continue;
			rc = -1;
			break;
		}
		if (share && apply_share_record(rec, share_domain, share_bytes, share_margin, out, &failures, err) < 0) {
			json_decref(rec);
			rc = -1;
			break;
		}
		if (got == 1 && !is_balloon_target(rec) && !share && json_object_get(rec, "tier_bytes")) {
			/* a tier-only target: echoed with the reason it was not applied */
			note_tier_not_applied(rec);
			json_incref(rec);
			if (jsonl_emit(out, rec, err) < 0) {
				json_decref(rec);
				rc = -1;
				break;
			}
		}
		json_decref(rec);
	}
	batch_clear(&batch);
	free(batch.records);
	free(batch.items);
	*skipped = stream.skipped;
	record_stream_free(&stream);
	return rc < 0 ? -1 : failures > 0;
}
