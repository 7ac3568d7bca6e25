#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sockets.h"

/* The journal is compacted when it is COMPACT_RATIO times the size of its
 * live records and over COMPACT_MIN bytes: appends stay cheap, the file small. */
#define COMPACT_RATIO 4
#define COMPACT_MIN (1u << 20)

/* One record as a line; *size grows by its length. */
static int write_record(int fd, json_t *rec, size_t *size)
{
	char *text = json_dumps(rec, JSON_COMPACT);
	if (!text)
		return -1;
	size_t n = strlen(text);
	int rc = write_all_fd(fd, text, n) < 0 || write_all_fd(fd, "\n", 1) < 0 ? -1 : 0;
	free(text);
	*size += n + 1;
	return rc;
}

static void replay(FILE *f, const char *path, void (*apply)(void *, json_t *), void *ctx)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long lineno = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		lineno++;
		json_error_t jerr;
		json_t *rec = json_loadb(line, (size_t)n, 0, &jerr);
		if (!json_is_object(rec)) {
			/* a torn last line (crash during append) is expected; anything else is worth a warning */
			log_warn("%s:%lu: skipped: not a JSON object", path, lineno);
			json_decref(rec);
			continue;
		}
		apply(ctx, rec);
		json_decref(rec);
	}
	free(line);
}

/* The journal written anew with records only (a temporary file renamed
 * over it, the rename made durable too); j->fd is the new file then. */
static int rewrite(struct journal *j, json_t *records, struct ms_err *err)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", j->path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return ms_fail_errno(err, "%s", tmp);
	json_t *rec;
	size_t i, size = 0;
	int rc = 0;
	json_array_foreach(records, i, rec) if (rc == 0) rc = write_record(fd, rec, &size);
	if (rc < 0 || fsync(fd) < 0 || rename(tmp, j->path) < 0) {
		close(fd);
		unlink(tmp);
		return ms_fail_errno(err, "cannot write %s", j->path);
	}
	if (j->fd >= 0)
		close(j->fd);
	j->fd = fd; /* the renamed file, open for appending at its end */
	j->size = j->live_size = size;
	j->unsynced = false;
	char dir[4200];
	snprintf(dir, sizeof dir, "%s", j->path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	else
		strcpy(dir, ".");
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

int journal_open(struct journal *j, const char *path, void (*apply)(void *ctx, json_t *rec), void *ctx,
		 json_t *(*live_at_start)(void *ctx), json_t *(*snapshot)(void *ctx), struct ms_err *err)
{
	j->fd = -1;
	j->unsynced = false;
	j->snapshot = snapshot;
	j->ctx = ctx;
	j->path = strdup(path);
	if (!j->path)
		return ms_fail(err, "out of memory");
	FILE *f = fopen(path, "r");
	if (f) {
		replay(f, path, apply, ctx);
		fclose(f);
	} else if (errno != ENOENT) {
		return ms_fail_errno(err, "%s", path);
	}
	json_t *records = live_at_start(ctx);
	int rc = rewrite(j, records, err);
	json_decref(records);
	return rc;
}

int journal_append(struct journal *j, json_t *rec, struct ms_err *err)
{
	if (j->fd < 0)
		return 0;
	j->unsynced = true;
	if (write_record(j->fd, rec, &j->size) < 0)
		return ms_fail_errno(err, "cannot append to %s", j->path);
	return 0;
}

int journal_sync(struct journal *j, struct ms_err *err)
{
	if (j->fd < 0 || !j->unsynced)
		return 0;
	/* mostly ended leases: write the live ones anew (durable as well) */
	if (j->size > COMPACT_MIN && j->size > COMPACT_RATIO * j->live_size) {
		json_t *records = j->snapshot(j->ctx);
		int rc = rewrite(j, records, err);
		json_decref(records);
		if (rc == 0)
			return 0;
		log_warn("%s (the journal goes on growing)", err->msg);
	}
	j->unsynced = false;
	if (fdatasync(j->fd) < 0)
		return ms_fail_errno(err, "cannot sync %s", j->path);
	return 0;
}

void journal_close(struct journal *j)
{
	struct ms_err err;
	if (journal_sync(j, &err) < 0)
		log_error("%s", err.msg);
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	free(j->path);
	j->path = NULL;
}
