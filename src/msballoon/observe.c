#include "observe.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <math.h>

#include "policy_share.h"
#include "units.h"

void observer_init(struct observer *o)
{
	memset(o, 0, sizeof *o);
	o->pool_bytes = -1;
}

void observer_free(struct observer *o)
{
	for (size_t i = 0; i < o->count; i++)
		free(o->domains[i].name);
	free(o->domains);
	memset(o, 0, sizeof *o);
}

static unsigned kind_bit(json_t *record)
{
	const char *kind = json_string_value(json_object_get(record, "kind"));
	if (!kind)
		return 0;
	if (strcmp(kind, "wss") == 0)
		return SEEN_WSS;
	if (strcmp(kind, "tier") == 0)
		return SEEN_TIER;
	if (strcmp(kind, "bid") == 0)
		return SEEN_BID;
	if (strcmp(kind, "share") == 0)
		return SEEN_SHARE;
	return 0;
}

static struct observed_domain *find(const struct observer *o, const char *name)
{
	for (size_t i = 0; i < o->count; i++)
		if (strcmp(o->domains[i].name, name) == 0)
			return &o->domains[i];
	return NULL;
}

static struct observed_domain *find_or_add(struct observer *o, const char *name, struct ms_err *err)
{
	struct observed_domain *d = find(o, name);
	if (d)
		return d;
	struct observed_domain *grown = realloc(o->domains, (o->count + 1) * sizeof *grown);
	if (!grown)
		return ms_fail(err, "out of memory"), NULL;
	o->domains = grown;
	d = &o->domains[o->count];
	memset(d, 0, sizeof *d);
	if (!(d->name = strdup(name)))
		return ms_fail(err, "out of memory"), NULL;
	d->initial_bytes = d->prev_balloon_bytes = d->prev_tier_bytes = d->prev_wss_bytes = -1;
	d->last_puts_total = d->last_puts_succ = -1;
	vm_view_init(&d->view, d->name);
	o->count++;
	return d;
}

bool observer_starts_new_interval(const struct observer *o, const struct observation *ob)
{
	if (!ob->kind)
		return false;
	const struct observed_domain *d = find(o, ob->domain);
	return d && (d->seen & ob->kind);
}

int record_size(const struct jsonl_reader *r, json_t *rec, const char *key, bool required, int64_t *out,
		struct ms_err *err)
{
	*out = -1;
	if (!required && !json_object_get(rec, key))
		return 0;
	uint64_t v;
	if (jsonl_get_u64(r, rec, key, &v, err) < 0)
		return -1;
	if (v > MS_SIZE_MAX)
		return ms_fail_input(err, "%s:%lu: field \"%s\" is more than the largest size, 4E (%llu bytes)", r->name,
				     r->line, key, (unsigned long long)MS_SIZE_MAX);
	*out = (int64_t)v;
	return 0;
}

static int parse_wss(const struct jsonl_reader *r, json_t *rec, struct observation *ob, struct ms_err *err)
{
	if (record_size(r, rec, "wss_bytes", true, &ob->wss_bytes, err) < 0 ||
	    record_size(r, rec, "alloc_bytes", false, &ob->alloc_bytes, err) < 0 ||
	    record_size(r, rec, "max_bytes", false, &ob->max_bytes, err) < 0 ||
	    record_size(r, rec, "swap_bytes", false, &ob->swap_bytes, err) < 0)
		return -1;
	const char *ts = json_string_value(json_object_get(rec, "ts"));
	ob->ts = ts ? ts : "";
	const char *state = json_string_value(json_object_get(rec, "state"));
	ob->short_of_memory = state && strcmp(state, "more") == 0;
	json_t *usr = json_object_get(rec, "usrtime");
	ob->usrtime = json_is_number(usr) ? json_number_value(usr) : -1;
	return 0;
}

static int parse_tier(const struct jsonl_reader *r, json_t *rec, struct observation *ob, struct ms_err *err)
{
	uint64_t total, succ;
	if (jsonl_get_u64(r, rec, "puts_total", &total, err) < 0 || jsonl_get_u64(r, rec, "puts_succ", &succ, err) < 0 ||
	    record_size(r, rec, "tier_used_bytes", false, &ob->tier_used_bytes, err) < 0 ||
	    record_size(r, rec, "tier_target_bytes", false, &ob->tier_target_bytes, err) < 0 ||
	    record_size(r, rec, "pool_bytes", false, &ob->pool_bytes, err) < 0 ||
	    record_size(r, rec, "remote_capacity_bytes", false, &ob->remote_capacity_bytes, err) < 0)
		return -1;
	if (succ > total)
		return ms_fail_input(err, "%s:%lu: puts_succ (%llu) is larger than puts_total (%llu)", r->name, r->line,
				     (unsigned long long)succ, (unsigned long long)total);
	ob->puts_total = (int64_t)total; /* jansson integers are at most INT64_MAX */
	ob->puts_succ = (int64_t)succ;
	return 0;
}

static int parse_bid(const struct jsonl_reader *r, json_t *rec, struct observation *ob, struct ms_err *err)
{
	if (jsonl_get_double(r, rec, "bid", &ob->bid, err) < 0)
		return -1;
	if (!(ob->bid >= -1 && ob->bid <= 1))
		return ms_fail_input(err, "%s:%lu: bid %g is outside [-1, 1]", r->name, r->line, ob->bid);
	return record_size(r, rec, "alloc_bytes", false, &ob->alloc_bytes, err);
}

/* A number of seconds or a rate: finite and >= 0, else an error naming the field and the line. */
static int check_non_negative(const struct jsonl_reader *r, const char *key, double v, struct ms_err *err)
{
	if (!isfinite(v) || v < 0)
		return ms_fail_input(err, "%s:%lu: field \"%s\" must be a number >= 0 (got %g)", r->name, r->line, key, v);
	return 0;
}

/* An optional number field v (json_object_get of key; -1 when absent). */
static int optional_number(const struct jsonl_reader *r, json_t *v, const char *key, double *out, struct ms_err *err)
{
	*out = -1;
	if (!v)
		return 0;
	if (!json_is_number(v))
		return ms_fail_input(err, "%s:%lu: field \"%s\" must be a number", r->name, r->line, key);
	*out = json_number_value(v);
	return check_non_negative(r, key, *out, err);
}

static int parse_share(const struct jsonl_reader *r, json_t *rec, struct observation *ob, struct ms_err *err)
{
	struct memnet_obs *s = &ob->share;
	int64_t job;
	if (record_size(r, rec, "size_bytes", true, &s->size_bytes, err) < 0 ||
	    record_size(r, rec, "used_bytes", true, &s->used_bytes, err) < 0 ||
	    record_size(r, rec, "mean_job_bytes", false, &job, err) < 0 ||
	    jsonl_get_double(r, rec, "window_s", &s->window_s, err) < 0 ||
	    jsonl_get_double(r, rec, "arrivals_per_s", &s->arrivals_per_s, err) < 0 ||
	    jsonl_get_double(r, rec, "departures_per_s", &s->departures_per_s, err) < 0 ||
	    jsonl_get_double(r, rec, "full_s", &s->full_s, err) < 0 ||
	    optional_number(r, json_object_get(rec, "service_per_s"), "service_per_s", &s->service_per_s, err) < 0 ||
	    optional_number(r, json_object_get(rec, "busy_s"), "busy_s", &s->busy_s, err) < 0 ||
	    check_non_negative(r, "arrivals_per_s", s->arrivals_per_s, err) < 0 ||
	    check_non_negative(r, "departures_per_s", s->departures_per_s, err) < 0 ||
	    check_non_negative(r, "full_s", s->full_s, err) < 0)
		return -1;
	if (!(s->window_s > 0) || !isfinite(s->window_s))
		return ms_fail_input(err, "%s:%lu: field \"window_s\" must be more than 0 (got %g)", r->name, r->line,
				     s->window_s);
	/* a full or busy time longer than the window (beyond rounding) is a broken record */
	if (s->full_s > s->window_s * 1.01 || s->busy_s > s->window_s * 1.01)
		return ms_fail_input(err, "%s:%lu: full_s %g or busy_s %g is longer than window_s %g", r->name, r->line,
				     s->full_s, s->busy_s, s->window_s);
	s->full_s = fmin(s->full_s, s->window_s);
	s->busy_s = s->busy_s < 0 ? -1 : fmin(s->busy_s, s->window_s);
	if (s->service_per_s < 0)
		s->service_per_s = 0; /* absent: the queue was never busy */
	s->mean_job_bytes = job < 0 ? 0 : job;
	return 0;
}

int observation_parse(const struct jsonl_reader *r, json_t *record, struct observation *ob, struct ms_err *err)
{
	memset(ob, 0, sizeof *ob);
	ob->wss_bytes = ob->alloc_bytes = ob->max_bytes = -1;
	ob->puts_total = ob->puts_succ = ob->tier_used_bytes = ob->tier_target_bytes = ob->pool_bytes = -1;
	ob->remote_capacity_bytes = -1;
	ob->usrtime = -1;
	ob->swap_bytes = -1;
	ob->ts = "";
	ob->kind = kind_bit(record);
	if (!ob->kind)
		return 0;
	if (jsonl_get_string(r, record, "domain", &ob->domain, err) < 0)
		return -1;
	if (!*ob->domain)
		return ms_fail_input(err, "%s:%lu: field \"domain\" is empty", r->name, r->line);
	switch (ob->kind) {
	case SEEN_WSS: return parse_wss(r, record, ob, err);
	case SEEN_TIER: return parse_tier(r, record, ob, err);
	case SEEN_SHARE: return parse_share(r, record, ob, err);
	default: return parse_bid(r, record, ob, err);
	}
}

static void take_wss(const struct observation *ob, struct observed_domain *d)
{
	struct vm_view *v = &d->view;
	v->wss_bytes = ob->wss_bytes;
	v->alloc_bytes = ob->alloc_bytes;
	v->max_bytes = ob->max_bytes;
	v->short_of_memory = ob->short_of_memory;
	v->usrtime = ob->usrtime;
	v->swap_bytes = ob->swap_bytes;
	snprintf(v->stats_ts, sizeof v->stats_ts, "%s", ob->ts);
	if (d->initial_bytes < 0)
		d->initial_bytes = v->alloc_bytes;
}

static void take_tier(struct observer *o, const struct observation *ob, struct observed_domain *d)
{
	struct vm_view *v = &d->view;
	v->puts_total = ob->puts_total;
	v->puts_succ = ob->puts_succ;
	v->tier_used_bytes = ob->tier_used_bytes;
	/* Failed puts during this interval; a counter that went backwards (restart) counts from zero. */
	int64_t failed_now = ob->puts_total - ob->puts_succ;
	int64_t failed_before = d->last_puts_total >= 0 ? d->last_puts_total - d->last_puts_succ : 0;
	v->failed_puts = failed_now >= failed_before ? failed_now - failed_before : failed_now;
	d->last_puts_total = ob->puts_total;
	d->last_puts_succ = ob->puts_succ;
	d->ever_failed_put = d->ever_failed_put || failed_now > 0;
	if (ob->tier_target_bytes >= 0 && d->prev_tier_bytes < 0)
		d->prev_tier_bytes = ob->tier_target_bytes;
	if (ob->pool_bytes >= 0)
		o->pool_bytes = ob->pool_bytes;
	d->remote_capacity_bytes = ob->remote_capacity_bytes > 0 ? ob->remote_capacity_bytes : 0;
}

/* The tier the policies share: the RAM pool and the room of every domain's
 * remotes (granted by other nodes), since a tier target bounds a device's
 * blocks in RAM and remote memory together; -1 while the pool is unknown. */
static int64_t tier_total(const struct observer *o)
{
	if (o->pool_bytes < 0)
		return -1;
	int64_t total = o->pool_bytes;
	for (size_t i = 0; i < o->count; i++)
		total = sat_add(total, o->domains[i].remote_capacity_bytes);
	return total;
}

static void take_bid(const struct observation *ob, struct observed_domain *d)
{
	d->view.has_bid = true;
	d->view.bid = ob->bid;
	if (d->view.alloc_bytes < 0)
		d->view.alloc_bytes = ob->alloc_bytes;
}

int observer_add(struct observer *o, const struct observation *ob, struct ms_err *err)
{
	if (!ob->kind)
		return 0;
	struct observed_domain *d = find_or_add(o, ob->domain, err);
	if (!d)
		return -1;
	if (ob->kind == SEEN_WSS) {
		take_wss(ob, d);
	} else if (ob->kind == SEEN_TIER) {
		take_tier(o, ob, d);
	} else if (ob->kind == SEEN_SHARE) {
		d->view.has_share = true;
		d->view.share = ob->share;
	} else {
		take_bid(ob, d);
	}
	d->seen |= ob->kind;
	o->interval_records++;
	return 0;
}

size_t observer_view(struct observer *o, struct node_view *node, struct vm_view **vms_storage)
{
	size_t n = 0;
	free(*vms_storage);
	*vms_storage = calloc(o->count ? o->count : 1, sizeof **vms_storage);
	for (size_t i = 0; *vms_storage && i < o->count; i++) {
		struct observed_domain *d = &o->domains[i];
		if (!d->seen)
			continue;
		struct vm_view *v = &(*vms_storage)[n++];
		*v = d->view;
		v->domain = d->name;
		v->initial_bytes = d->initial_bytes;
		v->ever_failed_put = d->ever_failed_put;
		v->prev_balloon_bytes = d->prev_balloon_bytes;
		v->prev_tier_bytes = d->prev_tier_bytes;
		v->prev_wss_bytes = d->prev_wss_bytes;
		v->remote_tier_bytes = d->remote_capacity_bytes; /* as tier_total counts it */
		v->memnet = d->memnet;
	}
	node->vms = *vms_storage;
	node->count = n;
	node->tier_total_bytes = tier_total(o);
	return n;
}

void observer_next_interval(struct observer *o, const struct node_view *node, const struct vm_decision *dec)
{
	for (size_t i = 0; i < node->count; i++) {
		struct observed_domain *d = find(o, node->vms[i].domain);
		if (!d)
			continue;
		if (dec[i].balloon_bytes != NO_TARGET)
			d->prev_balloon_bytes = dec[i].balloon_bytes;
		if (dec[i].tier_bytes != NO_TARGET)
			d->prev_tier_bytes = dec[i].tier_bytes;
		d->prev_wss_bytes = node->vms[i].wss_bytes;
		if (dec[i].memnet.started)
			d->memnet = dec[i].memnet;
	}
	for (size_t i = 0; i < o->count; i++) {
		struct observed_domain *d = &o->domains[i];
		d->seen = 0;
		vm_view_init(&d->view, d->name);
	}
	o->interval_records = 0;
}
