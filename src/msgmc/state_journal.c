/* The journal backend: a local file (journal.c); one controller, always the leader. */
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "state.h"

struct state_journal {
	struct state base;
	char *path;
	struct journal journal;
};

static int sj_open(const char *where, const char *advertise, struct state **out, struct ms_err *err)
{
	(void)advertise;
	struct state_journal *s = calloc(1, sizeof *s);
	if (!s || !(s->path = strdup(where))) {
		free(s);
		return ms_fail(err, "out of memory");
	}
	s->journal.fd = -1;
	*out = &s->base;
	return 0;
}

static int sj_lead(struct state *base, uint64_t now_ns, struct ms_err *err)
{
	(void)base, (void)now_ns, (void)err;
	return 1;
}

static bool sj_leading(const struct state *base)
{
	(void)base;
	return true;
}

static const char *sj_leader(const struct state *base)
{
	(void)base;
	return "";
}

static int sj_load(struct state *base, state_apply_fn apply, state_records_fn live_at_start, state_records_fn snapshot,
		   void *ctx, struct ms_err *err)
{
	struct state_journal *s = (struct state_journal *)base;
	journal_close(&s->journal); /* read again: the controller restarted */
	return journal_open(&s->journal, s->path, apply, ctx, live_at_start, snapshot, err);
}

static int sj_append(struct state *base, json_t *rec, struct ms_err *err)
{
	return journal_append(&((struct state_journal *)base)->journal, rec, err);
}

static int sj_sync(struct state *base, struct ms_err *err)
{
	return journal_sync(&((struct state_journal *)base)->journal, err);
}

static bool sj_pending(const struct state *base)
{
	return ((const struct state_journal *)base)->journal.unsynced;
}

static void sj_describe(const struct state *base, json_t *record)
{
	json_object_set_new(record, "state_file", json_string(((const struct state_journal *)base)->path));
}

static void sj_close(struct state *base)
{
	struct state_journal *s = (struct state_journal *)base;
	journal_close(&s->journal);
	free(s->path);
	free(s);
}

const struct state_ops state_journal_ops = {
	.name = "journal",
	.scheme = NULL,
	.open = sj_open,
	.lead = sj_lead,
	.leading = sj_leading,
	.leader = sj_leader,
	.load = sj_load,
	.append = sj_append,
	.sync = sj_sync,
	.pending = sj_pending,
	.describe = sj_describe,
	.close = sj_close,
};
