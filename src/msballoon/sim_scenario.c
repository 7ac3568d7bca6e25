#include "sim_scenario.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim_trace.h"
#include "units.h"

/* Where we are in the file, for messages: "usemem.json: vms[2].demand". */
struct where {
	const char *file;
	char path[96];
};

static void where_set(struct where *child, const struct where *parent, const char *part)
{
	child->file = parent->file;
	snprintf(child->path, sizeof child->path, "%s%s%s", parent->path, parent->path[0] && part[0] != '[' ? "." : "",
		 part);
}

/* parent.key */
static void where_key(struct where *child, const struct where *parent, const char *key)
{
	where_set(child, parent, key);
}

/* parent[index], or name[index] at the top */
static void where_index(struct where *child, const struct where *parent, const char *name, size_t index)
{
	char part[64];
	snprintf(part, sizeof part, "%s[%zu]", name, index);
	where_set(child, parent, part);
}

static int bad(const struct where *w, const char *key, struct ms_err *err, const char *what)
{
	if (!w->path[0] && !key)
		return ms_fail_input(err, "%s: %s", w->file, what);
	return ms_fail_input(err, "%s: %s%s%s: %s", w->file, w->path, w->path[0] && key ? "." : "", key ? key : "",
			     what);
}

/* A size: integer bytes or a string such as "512M".  Missing: `dflt`, or an error when required (dflt < -1). */
static int value_size(const struct where *w, const char *key, json_t *v, int64_t *out, struct ms_err *err)
{
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return bad(w, key, err, "must not be negative");
		if ((uint64_t)json_integer_value(v) > MS_SIZE_MAX)
			return bad(w, key, err, "is more than the largest size, 4E (2^62 bytes)");
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_string(v)) {
		char what[192];
		uint64_t bytes;
		snprintf(what, sizeof what, "%s: %s%s%s", w->file, w->path, w->path[0] && key ? "." : "", key ? key : "");
		if (parse_size(json_string_value(v), 0, what, &bytes, err) < 0)
			return -1;
		if (bytes > INT64_MAX / 2)
			return bad(w, key, err, "too large");
		*out = (int64_t)bytes;
		return 0;
	}
	return bad(w, key, err, "expected a size (bytes as an integer, or a string such as \"512M\")");
}

#define REQUIRED (-2)

static int field_size(const struct where *w, json_t *obj, const char *key, int64_t dflt, int64_t *out,
		      struct ms_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v) {
		if (dflt == REQUIRED)
			return bad(w, key, err, "missing (a size is required)");
		*out = dflt;
		return 0;
	}
	return value_size(w, key, v, out, err);
}

/* A non-negative number of seconds (or microseconds); dflt < 0 means required. */
static int field_number(const struct where *w, json_t *obj, const char *key, double dflt, double *out,
			struct ms_err *err)
{
	json_t *v = json_object_get(obj, key);
	if (!v) {
		if (dflt < 0)
			return bad(w, key, err, "missing (a number is required)");
		*out = dflt;
		return 0;
	}
	if (!json_is_number(v))
		return bad(w, key, err, "expected a number");
	*out = json_number_value(v);
	if (!(*out >= 0) || !isfinite(*out))
		return bad(w, key, err, "must be a non-negative number");
	return 0;
}

/* A [[t, value], ...] list with non-decreasing times; sizes when `sizes`, else numbers in [-1, 1]. */
static int parse_points(const struct where *w, json_t *list, bool sizes, struct trace_point **out, size_t *n,
			struct ms_err *err)
{
	size_t count = json_array_size(list);
	if (count == 0)
		return bad(w, NULL, err, "expected a non-empty list of [seconds, value] pairs");
	*out = calloc(count, sizeof **out);
	if (!*out)
		return ms_fail(err, "out of memory");
	*n = count;
	for (size_t i = 0; i < count; i++) {
		json_t *pair = json_array_get(list, i), *t = json_array_get(pair, 0), *v = json_array_get(pair, 1);
		struct where at;
		where_index(&at, w, "", i);
		if (!json_is_array(pair) || json_array_size(pair) != 2 || !json_is_number(t))
			return bad(&at, NULL, err, "expected a [seconds, value] pair");
		(*out)[i].t_s = json_number_value(t);
		if (!((*out)[i].t_s >= 0) || (i && (*out)[i].t_s < (*out)[i - 1].t_s))
			return bad(&at, NULL, err, "times must be non-negative and in order");
		if (sizes) {
			int64_t bytes;
			if (value_size(&at, NULL, v, &bytes, err) < 0)
				return -1;
			(*out)[i].value = (double)bytes;
		} else {
			if (!json_is_number(v) || !(json_number_value(v) >= -1 && json_number_value(v) <= 1))
				return bad(&at, NULL, err, "a bid must be a number between -1 and 1");
			(*out)[i].value = json_number_value(v);
		}
	}
	return 0;
}

static int field_choice(const struct where *w, json_t *obj, const char *key, const char *const *names, int dflt,
			int *out, struct ms_err *err)
{
	json_t *v = json_object_get(obj, key);
	*out = dflt;
	if (!v)
		return 0;
	for (int i = 0; json_is_string(v) && names[i]; i++)
		if (strcmp(json_string_value(v), names[i]) == 0) {
			*out = i;
			return 0;
		}
	char what[96] = "expected";
	for (int i = 0; names[i]; i++)
		snprintf(what + strlen(what), sizeof what - strlen(what), "%s \"%s\"", i == 0 ? "" : names[i + 1] ? "," : " or",
			 names[i]);
	return bad(w, key, err, what);
}

/* A factor (scale, time_scale) already read: more than 0 and at most 10^6. */
static int check_factor(const struct where *w, const char *key, double factor, struct ms_err *err)
{
	if (factor <= 0 || factor > 1e6)
		return bad(w, key, err, "must be more than 0 and at most 1000000");
	return 0;
}

/* The trace file's path: as given when absolute, else relative to the scenario file's directory. */
static char *trace_path(const char *scenario_path, const char *trace)
{
	const char *slash = strrchr(scenario_path, '/');
	if (trace[0] == '/' || !slash)
		return strdup(trace);
	int dir_len = (int)(slash - scenario_path);
	size_t len = (size_t)dir_len + 1 + strlen(trace) + 1;
	char *path = malloc(len);
	if (path)
		snprintf(path, len, "%.*s/%s", dir_len, scenario_path, trace);
	return path;
}

/* The byte count of a record that a trace's demand is: the working set
 * touched in each window (default), or what the domain holds resident, for a
 * workload that keeps far more than it touches in a window (a cached data set
 * swept slower than the window: the sim's demand is what must stay in memory). */
static const char *const trace_bytes_names[] = { "wss_bytes", "rss_bytes", NULL };

/* {"trace": FILE, "domain": NAME, "bytes": FIELD, "scale": X, "time_scale": X, "repeat": N}: an mswss recording. */
static int parse_trace_demand(const struct where *w, json_t *v, struct demand_spec *d, struct ms_err *err)
{
	struct trace_options opt = { .repeat = 1 };
	int bytes_field;
	json_t *trace = json_object_get(v, "trace"), *domain = json_object_get(v, "domain"),
	       *repeat = json_object_get(v, "repeat");
	if (!json_is_string(trace) || !json_string_value(trace)[0])
		return bad(w, "trace", err, "expected the path of a file of mswss records (a string)");
	if (domain && (!json_is_string(domain) || !json_string_value(domain)[0]))
		return bad(w, "domain", err, "expected a domain name (a string)");
	opt.domain = domain ? json_string_value(domain) : NULL;
	if (field_choice(w, v, "bytes", trace_bytes_names, 0, &bytes_field, err) < 0)
		return -1;
	opt.bytes_field = trace_bytes_names[bytes_field];
	if (field_number(w, v, "scale", 1, &opt.scale, err) < 0 || check_factor(w, "scale", opt.scale, err) < 0 ||
	    field_number(w, v, "time_scale", 1, &opt.time_scale, err) < 0 ||
	    check_factor(w, "time_scale", opt.time_scale, err) < 0)
		return -1;
	if (repeat && (!json_is_integer(repeat) || json_integer_value(repeat) < 1 ||
		       json_integer_value(repeat) > TRACE_MAX_REPEAT))
		return bad(w, "repeat", err, "must be a whole number from 1 to 10000");
	if (repeat)
		opt.repeat = (unsigned)json_integer_value(repeat);
	char *path = trace_path(w->file, json_string_value(trace));
	if (!path)
		return ms_fail(err, "out of memory");
	int rc = trace_load(path, &opt, &d->points, &d->npoints, err);
	free(path);
	if (rc < 0)
		return ms_fail_prefix(err, "%s: %s.trace", w->file, w->path);
	return 0;
}

static int parse_demand(const struct where *vmw, json_t *vm, struct demand_spec *d, struct ms_err *err)
{
	struct where w;
	json_t *v = json_object_get(vm, "demand");
	where_key(&w, vmw, "demand");
	if (!v)
		return bad(vmw, "demand", err,
			   "missing (steps {\"step_bytes\",\"every_s\",\"max_bytes\"}, [[s, size], ...] or {\"trace\": FILE})");
	if (json_is_array(v))
		return parse_points(&w, v, true, &d->points, &d->npoints, err);
	if (!json_is_object(v))
		return bad(vmw, "demand", err,
			   "expected an object (usemem-like steps or {\"trace\": FILE}) or a list of [seconds, size] points");
	if (json_object_get(v, "trace"))
		return parse_trace_demand(&w, v, d, err);
	d->usemem = true;
	if (field_size(&w, v, "step_bytes", REQUIRED, &d->step_bytes, err) < 0 ||
	    field_size(&w, v, "max_bytes", REQUIRED, &d->max_bytes, err) < 0 ||
	    field_size(&w, v, "first_bytes", d->step_bytes, &d->first_bytes, err) < 0 ||
	    field_number(&w, v, "every_s", -1, &d->every_s, err) < 0)
		return -1;
	if (d->every_s <= 0)
		return bad(&w, "every_s", err, "must be more than 0");
	return 0;
}

static int parse_trigger(const struct where *w, json_t *vm, const char *key, bool required, struct trigger *t,
			 json_t *all_vms, struct ms_err *err)
{
	json_t *v = json_object_get(vm, key);
	if (!v) {
		if (required)
			return bad(w, key, err, "missing (seconds, or {\"vm\": NAME, \"demand_bytes\": SIZE})");
		t->kind = TRIGGER_NONE;
		return 0;
	}
	if (json_is_number(v)) {
		t->kind = TRIGGER_TIME;
		return field_number(w, vm, key, -1, &t->t_s, err);
	}
	if (!json_is_object(v))
		return bad(w, key, err, "expected seconds, or {\"vm\": NAME, \"demand_bytes\": SIZE}");
	struct where tw;
	where_key(&tw, w, key);
	const char *name = json_string_value(json_object_get(v, "vm"));
	if (!name)
		return bad(&tw, "vm", err, "missing (the name of the VM to watch)");
	t->kind = TRIGGER_DEMAND;
	for (size_t i = 0; i < json_array_size(all_vms); i++) {
		const char *other = json_string_value(json_object_get(json_array_get(all_vms, i), "name"));
		if (other && strcmp(other, name) == 0) {
			t->vm = i;
			return field_size(&tw, v, "demand_bytes", REQUIRED, &t->demand_bytes, err);
		}
	}
	return bad(&tw, "vm", err, "names no VM of this scenario");
}

/* A field that names one of `names` (NULL-terminated): its index into *out, `dflt` when missing. */
static const char *const access_names[] = { "uniform", "cyclic", NULL };

static int parse_vm(const struct where *top, json_t *list, size_t index, const struct scenario *sc,
		    struct scenario_vm *vm, struct ms_err *err)
{
	struct where w;
	json_t *obj = json_array_get(list, index);
	where_index(&w, top, "vms", index);
	if (!json_is_object(obj))
		return bad(&w, NULL, err, "expected an object");
	const char *name = json_string_value(json_object_get(obj, "name"));
	if (!name || !name[0])
		return bad(&w, "name", err, "missing (a non-empty string)");
	for (size_t i = 0; i < index; i++)
		if (strcmp(sc->vms[i].name, name) == 0)
			return bad(&w, "name", err, "two VMs have this name");
	if (!(vm->name = strdup(name)))
		return ms_fail(err, "out of memory");
	int64_t default_max = sc->host_bytes;
	if (field_size(&w, obj, "ram_bytes", REQUIRED, &vm->ram_bytes, err) < 0 ||
	    field_size(&w, obj, "base_bytes", 0, &vm->base_bytes, err) < 0 ||
	    field_size(&w, obj, "access_bytes_per_s", REQUIRED, &vm->access_bytes_per_s, err) < 0 ||
	    field_size(&w, obj, "max_bytes", default_max >= 0 ? default_max : vm->ram_bytes, &vm->max_bytes, err) < 0)
		return -1;
	if (vm->ram_bytes < sc->page_bytes)
		return bad(&w, "ram_bytes", err, "must be at least one page");
	int access;
	if (field_choice(&w, obj, "access", access_names, (int)sc->access, &access, err) < 0)
		return -1;
	vm->access = (enum access_pattern)access;
	if (parse_trigger(&w, obj, "start", true, &vm->start, list, err) < 0 ||
	    parse_trigger(&w, obj, "stop", false, &vm->stop, list, err) < 0 || parse_demand(&w, obj, &vm->demand, err) < 0)
		return -1;
	json_t *bids = json_object_get(obj, "bids");
	if (bids) {
		struct where bw;
		where_key(&bw, &w, "bids");
		if (!json_is_array(bids))
			return bad(&w, "bids", err, "expected a list of [seconds, bid] pairs");
		if (parse_points(&bw, bids, false, &vm->bids, &vm->nbids, err) < 0)
			return -1;
	}
	return 0;
}

static int parse_node(const struct where *w, json_t *root, struct scenario *sc, struct ms_err *err)
{
	double page;
	if (field_number(w, root, "interval_s", -1, &sc->interval_s, err) < 0 ||
	    field_number(w, root, "duration_s", -1, &sc->duration_s, err) < 0 ||
	    field_size(w, root, "tier_total_bytes", REQUIRED, &sc->tier_total_bytes, err) < 0 ||
	    field_size(w, root, "remote_tier_bytes", 0, &sc->remote_tier_bytes, err) < 0 ||
	    field_size(w, root, "host_bytes", -1, &sc->host_bytes, err) < 0 ||
	    field_number(w, root, "page_bytes", 4096, &page, err) < 0 ||
	    field_number(w, root, "disk_page_cost_us", -1, &sc->disk_page_cost_us, err) < 0 ||
	    field_number(w, root, "tier_page_cost_us", -1, &sc->tier_page_cost_us, err) < 0 ||
	    field_number(w, root, "remote_page_cost_us", sc->tier_page_cost_us + 50, &sc->remote_page_cost_us, err) < 0)
		return -1;
	if (sc->interval_s <= 0)
		return bad(w, "interval_s", err, "must be more than 0");
	if (sc->duration_s < sc->interval_s || sc->duration_s / sc->interval_s > SCENARIO_MAX_INTERVALS)
		return bad(w, "duration_s", err, "must hold between 1 and 1000000 intervals");
	if (page < 512 || page > (1 << 30) || page != floor(page))
		return bad(w, "page_bytes", err, "must be a whole number of bytes between 512 and 1G");
	sc->page_bytes = (int64_t)page;
	return 0;
}

static int parse_scenario(const char *path, json_t *root, struct scenario *sc, struct ms_err *err)
{
	struct where w = { .file = path };
	if (!json_is_object(root))
		return bad(&w, NULL, err, "expected a JSON object");
	json_t *name = json_object_get(root, "name");
	if (name && !json_is_string(name))
		return bad(&w, "name", err, "expected a string");
	const char *base = strrchr(path, '/');
	if (!(sc->name = strdup(name ? json_string_value(name) : base ? base + 1 : path)))
		return ms_fail(err, "out of memory");
	if (parse_node(&w, root, sc, err) < 0)
		return -1;
	json_t *costs = json_object_get(root, "costs");
	if (costs && !json_is_string(costs))
		return bad(&w, "costs", err, "expected a string (where the per-page costs come from)");
	if (costs && !(sc->costs_source = strdup(json_string_value(costs))))
		return ms_fail(err, "out of memory");
	static const char *const gets_names[] = { "flush", "keep", NULL }, *const timeline_names[] = { "wall", "progress", NULL };
	int keep, progress, access;
	if (field_choice(&w, root, "tier_gets", gets_names, 0, &keep, err) < 0 ||
	    field_choice(&w, root, "timeline", timeline_names, 0, &progress, err) < 0 ||
	    field_choice(&w, root, "access", access_names, ACCESS_UNIFORM, &access, err) < 0)
		return -1;
	sc->gets_keep_slot = keep == 1;
	sc->progress_timeline = progress == 1;
	sc->access = (enum access_pattern)access;
	json_t *vms = json_object_get(root, "vms");
	if (!json_is_array(vms) || json_array_size(vms) == 0 || json_array_size(vms) > SCENARIO_MAX_VMS)
		return bad(&w, "vms", err, vms ? "expected a list of 1 to 256 VMs" : "missing (a list of VMs)");
	sc->count = json_array_size(vms);
	if (!(sc->vms = calloc(sc->count, sizeof *sc->vms)))
		return ms_fail(err, "out of memory");
	for (size_t i = 0; i < sc->count; i++)
		if (parse_vm(&w, vms, i, sc, &sc->vms[i], err) < 0)
			return -1;
	return 0;
}

int scenario_load(const char *path, struct scenario *sc, struct ms_err *err)
{
	json_error_t jerr;
	memset(sc, 0, sizeof *sc);
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		if (jerr.line > 0)
			return ms_fail_input(err, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return ms_fail_input(err, "%s: %s", path, jerr.text);
	}
	int rc = parse_scenario(path, root, sc, err);
	json_decref(root);
	if (rc < 0)
		scenario_free(sc);
	return rc;
}

void scenario_free(struct scenario *sc)
{
	for (size_t i = 0; sc->vms && i < sc->count; i++) {
		free(sc->vms[i].name);
		free(sc->vms[i].demand.points);
		free(sc->vms[i].bids);
	}
	free(sc->vms);
	free(sc->name);
	free(sc->costs_source);
	memset(sc, 0, sizeof *sc);
}

int64_t workload_demand(const struct demand_spec *d, double since)
{
	if (since < 0)
		return 0;
	if (d->usemem) {
		double steps = floor(since / d->every_s + 1e-9);
		double bytes = (double)d->first_bytes + steps * (double)d->step_bytes;
		return bytes > (double)d->max_bytes ? d->max_bytes : (int64_t)bytes;
	}
	if (workload_finished(d, since) || since < d->points[0].t_s)
		return 0;
	/* The last point at or before `since` (a trace has thousands: train calls this every step). */
	size_t lo = 0, hi = d->npoints - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;
		if (d->points[mid].t_s <= since)
			lo = mid;
		else
			hi = mid - 1;
	}
	size_t i = lo;
	const struct trace_point *a = &d->points[i], *b = &d->points[i + 1 < d->npoints ? i + 1 : i];
	if (b->t_s <= a->t_s)
		return (int64_t)a->value;
	return (int64_t)(a->value + (b->value - a->value) * (since - a->t_s) / (b->t_s - a->t_s));
}

bool workload_finished(const struct demand_spec *d, double since)
{
	return !d->usemem && d->npoints && since >= d->points[d->npoints - 1].t_s;
}

bool bid_at(const struct scenario_vm *vm, double t_s, double *bid)
{
	bool have = false;
	for (size_t i = 0; i < vm->nbids && vm->bids[i].t_s <= t_s + 1e-9; i++) {
		*bid = vm->bids[i].value;
		have = true;
	}
	return have;
}
