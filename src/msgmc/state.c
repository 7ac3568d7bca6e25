#include "state.h"

#include <string.h>

#include "jsonl.h"
#include "log.h"
#include "units.h"

/* A commit slower than this is said at -v: replies waited that long. */
#define SLOW_COMMIT_NS (200 * NS_PER_MS)

/* The backends; adding one is one file and one line here. */
static const struct state_ops *const backends[] = {&state_etcd_ops, &state_journal_ops};

int state_open(const char *where, const char *advertise, struct state **out, struct ms_err *err)
{
	const struct state_ops *ops = &state_journal_ops;
	for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
		if (backends[i]->scheme && strncmp(where, backends[i]->scheme, strlen(backends[i]->scheme)) == 0)
			ops = backends[i];
	if (ops->open(where, advertise, out, err) < 0)
		return -1;
	(*out)->ops = ops;
	return 0;
}

int state_lead(struct state *s, uint64_t now_ns, struct ms_err *err)
{
	bool was = s->leading_since[0] != '\0';
	int rc = s->ops->lead(s, now_ns, err);
	if (rc == 1 && !was)
		format_timestamp(s->leading_since, sizeof s->leading_since);
	if (rc != 1)
		s->leading_since[0] = '\0';
	return rc;
}

const char *state_leader(const struct state *s)
{
	return s->ops->leader(s);
}

bool state_leading(const struct state *s)
{
	return !s || s->ops->leading(s);
}

int state_load(struct state *s, state_apply_fn apply, state_records_fn live_at_start, state_records_fn snapshot,
	       void *ctx, struct ms_err *err)
{
	return s->ops->load(s, apply, live_at_start, snapshot, ctx, err);
}

int state_append(struct state *s, json_t *rec, struct ms_err *err)
{
	return s->ops->append(s, rec, err);
}

int state_sync(struct state *s, struct ms_err *err)
{
	if (!s->ops->pending(s))
		return 0;
	uint64_t t0 = monotonic_ns();
	int rc = s->ops->sync(s, err);
	s->last_commit_ns = monotonic_ns() - t0;
	s->commits++;
	if (s->last_commit_ns > SLOW_COMMIT_NS)
		log_info("a commit took %.0f ms (%s)", (double)s->last_commit_ns / 1e6, rc < 0 ? err->msg : "done");
	return rc;
}

bool state_pending(const struct state *s)
{
	return s->ops->pending(s);
}

void state_describe(const struct state *s, json_t *record)
{
	json_object_set_new(record, "state_backend", json_string(s->ops->name));
	if (s->leading_since[0])
		json_object_set_new(record, "leading_since", json_string(s->leading_since));
	if (s->commits)
		json_object_set_new(record, "last_commit_ms", json_real((double)s->last_commit_ns / 1e6));
	json_object_set_new(record, "commits", json_integer((json_int_t)s->commits));
	s->ops->describe(s, record);
}

void state_close(struct state *s)
{
	if (s)
		s->ops->close(s);
}
