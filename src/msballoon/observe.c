#include "observe.h"

#include <stdlib.h>
#include <string.h>

void observer_init(struct observer *o)
{
	memset(o, 0, sizeof *o);
	o->tier_total_bytes = -1;
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

bool observer_starts_new_interval(const struct observer *o, json_t *record)
{
	unsigned bit = kind_bit(record);
	const char *name = json_string_value(json_object_get(record, "domain"));
	if (!bit || !name)
		return false;
	const struct observed_domain *d = find(o, name);
	return d && (d->seen & bit);
}

/* An optional non-negative integer field: -1 when absent. */
static int optional_size(const struct jsonl_reader *r, json_t *rec, const char *key, int64_t *out, struct ms_err *err)
{
	*out = -1;
	if (!json_object_get(rec, key))
		return 0;
	uint64_t v;
	if (jsonl_get_u64(r, rec, key, &v, err) < 0)
		return -1;
	*out = v > INT64_MAX ? INT64_MAX : (int64_t)v;
	return 0;
}

static int take_wss(const struct jsonl_reader *r, json_t *rec, struct observed_domain *d, struct ms_err *err)
{
	uint64_t wss;
	struct vm_view *v = &d->view;
	if (jsonl_get_u64(r, rec, "wss_bytes", &wss, err) < 0 || optional_size(r, rec, "alloc_bytes", &v->alloc_bytes, err) < 0 ||
	    optional_size(r, rec, "max_bytes", &v->max_bytes, err) < 0)
		return -1;
	v->wss_bytes = (int64_t)wss;
	const char *state = json_string_value(json_object_get(rec, "state"));
	v->short_of_memory = state && strcmp(state, "more") == 0;
	json_t *usr = json_object_get(rec, "usrtime");
	v->usrtime = json_is_number(usr) ? json_number_value(usr) : -1;
	if (d->initial_bytes < 0)
		d->initial_bytes = v->alloc_bytes;
	return 0;
}

static int take_tier(struct observer *o, const struct jsonl_reader *r, json_t *rec, struct observed_domain *d, struct ms_err *err)
{
	uint64_t total, succ;
	struct vm_view *v = &d->view;
	int64_t target, pool;
	if (jsonl_get_u64(r, rec, "puts_total", &total, err) < 0 || jsonl_get_u64(r, rec, "puts_succ", &succ, err) < 0 ||
	    optional_size(r, rec, "tier_used_bytes", &v->tier_used_bytes, err) < 0 ||
	    optional_size(r, rec, "tier_target_bytes", &target, err) < 0 || optional_size(r, rec, "pool_bytes", &pool, err) < 0)
		return -1;
	if (succ > total)
		return ms_fail_input(err, "%s:%lu: puts_succ (%llu) is larger than puts_total (%llu)", r->name, r->line,
				     (unsigned long long)succ, (unsigned long long)total);
	v->puts_total = (int64_t)total;
	v->puts_succ = (int64_t)succ;
	/* Failed puts during this interval; a counter that went backwards (restart) counts from zero. */
	int64_t failed_now = (int64_t)(total - succ);
	int64_t failed_before = d->last_puts_total >= 0 ? d->last_puts_total - d->last_puts_succ : 0;
	v->failed_puts = failed_now >= failed_before ? failed_now - failed_before : failed_now;
	d->last_puts_total = (int64_t)total;
	d->last_puts_succ = (int64_t)succ;
	d->ever_failed_put = d->ever_failed_put || failed_now > 0;
	if (target >= 0 && d->prev_tier_bytes < 0)
		d->prev_tier_bytes = target;
	if (pool >= 0)
		o->tier_total_bytes = pool;
	return 0;
}

static int take_bid(const struct jsonl_reader *r, json_t *rec, struct observed_domain *d, struct ms_err *err)
{
	double bid;
	if (jsonl_get_double(r, rec, "bid", &bid, err) < 0)
		return -1;
	if (!(bid >= -1 && bid <= 1))
		return ms_fail_input(err, "%s:%lu: bid %g is outside [-1, 1]", r->name, r->line, bid);
	d->view.has_bid = true;
	d->view.bid = bid;
	if (d->view.alloc_bytes < 0)
		return optional_size(r, rec, "alloc_bytes", &d->view.alloc_bytes, err);
	return 0;
}

int observer_add(struct observer *o, const struct jsonl_reader *r, json_t *record, struct ms_err *err)
{
	unsigned bit = kind_bit(record);
	if (!bit)
		return 0;
	const char *name;
	if (jsonl_get_string(r, record, "domain", &name, err) < 0)
		return -1;
	if (!*name)
		return ms_fail_input(err, "%s:%lu: field \"domain\" is empty", r->name, r->line);
	struct observed_domain *d = find_or_add(o, name, err);
	if (!d)
		return -1;
	int rc = bit == SEEN_WSS ? take_wss(r, record, d, err) : bit == SEEN_TIER ? take_tier(o, r, record, d, err)
										    : take_bid(r, record, d, err);
	if (rc < 0)
		return -1;
	d->seen |= bit;
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
	}
	node->vms = *vms_storage;
	node->count = n;
	node->tier_total_bytes = o->tier_total_bytes;
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
	}
	for (size_t i = 0; i < o->count; i++) {
		struct observed_domain *d = &o->domains[i];
		d->seen = 0;
		vm_view_init(&d->view, d->name);
	}
	o->interval_records = 0;
}
