#include "model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "agent_state.h"
#include "files.h"
#include "sockets.h"

/* The fixed part before the blobs: magic, version, total, config, blob count. */
#define CONFIG_BYTES (2 * AGENT_NAME_MAX + 5 * 4 + 5 * 4 + 3 * 4 + 2 * 8)
#define HEAD_BYTES (8 + 4 + 8 + CONFIG_BYTES + 4)
#define CHECKSUM_BYTES 8

/* ---- writing ---- */

struct out_buf {
	unsigned char *p;
	size_t len, cap;
};

static int put(struct out_buf *b, const void *bytes, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n)
			cap *= 2;
		unsigned char *p = realloc(b->p, cap);
		if (!p)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, bytes, n);
	b->len += n;
	return 0;
}

static int put_u32(struct out_buf *b, uint32_t v)
{
	unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
	return put(b, x, 4);
}

static int put_u64(struct out_buf *b, uint64_t v)
{
	return put_u32(b, (uint32_t)v) | put_u32(b, (uint32_t)(v >> 32));
}

static int put_f32(struct out_buf *b, float f)
{
	uint32_t v;
	memcpy(&v, &f, 4);
	return put_u32(b, v);
}

static int put_config(struct out_buf *b, const struct agent_config *c)
{
	int rc = put(b, c->kind, AGENT_NAME_MAX) | put(b, c->layout, AGENT_NAME_MAX);
	rc |= put_u32(b, c->state_size) | put_u32(b, c->action_size) | put_u32(b, c->hidden[0]) |
	      put_u32(b, c->hidden[1]) | put_u32(b, c->levels);
	rc |= put_f32(b, c->bid_step) | put_f32(b, c->gamma) | put_f32(b, c->lr) | put_f32(b, c->actor_lr) |
	      put_f32(b, c->tau);
	rc |= put_u32(b, c->replay) | put_u32(b, c->batch) | put_u32(b, c->explore_episodes);
	return rc | put_u64(b, c->seed) | put_u64(b, c->episodes);
}

int model_add_blob(struct model *m, const float *data, size_t count, struct ms_err *err)
{
	if (m->nblobs >= MODEL_MAX_BLOBS)
		return ms_fail(err, "model: more than %d parameter arrays", MODEL_MAX_BLOBS);
	m->blobs[m->nblobs++] = (struct model_blob){.count = count, .data = (float *)data};
	return 0;
}

static int encode(const struct model *m, struct out_buf *b)
{
	uint64_t total = HEAD_BYTES + CHECKSUM_BYTES;
	for (size_t i = 0; i < m->nblobs; i++)
		total += 8 + 4 * (uint64_t)m->blobs[i].count;
	int rc = put(b, MODEL_MAGIC, 8) | put_u32(b, MODEL_VERSION) | put_u64(b, total) | put_config(b, &m->cfg);
	rc |= put_u32(b, (uint32_t)m->nblobs);
	for (size_t i = 0; i < m->nblobs && rc == 0; i++) {
		rc |= put_u64(b, m->blobs[i].count);
		for (size_t k = 0; k < m->blobs[i].count && rc == 0; k++)
			rc |= put_f32(b, m->blobs[i].data[k]);
	}
	return rc | put_u64(b, XXH3_64bits(b->p, b->len));
}

int model_save(const struct model *m, const char *path, struct ms_err *err)
{
	struct out_buf b = {0};
	int rc = encode(m, &b) < 0 ? ms_fail(err, "%s: out of memory", path) : write_file_atomic(path, b.p, b.len, 0644, err);
	free(b.p);
	return rc;
}

/* ---- reading ---- */

struct in_buf {
	const unsigned char *p;
	size_t len, at;
};

static uint32_t get_u32(struct in_buf *b)
{
	const unsigned char *x = b->p + b->at;
	b->at += 4;
	return (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24;
}

static uint64_t get_u64(struct in_buf *b)
{
	uint64_t lo = get_u32(b);
	return lo | (uint64_t)get_u32(b) << 32;
}

static float get_f32(struct in_buf *b)
{
	uint32_t v = get_u32(b);
	float f;
	memcpy(&f, &v, 4);
	return f;
}

static int get_name(struct in_buf *b, char *out, const char *name, const char *what, struct ms_err *err)
{
	memcpy(out, b->p + b->at, AGENT_NAME_MAX);
	b->at += AGENT_NAME_MAX;
	if (!memchr(out, '\0', AGENT_NAME_MAX))
		return ms_fail_input(err, "%s: the %s name is not terminated", name, what);
	return 0;
}

static int check_config(const struct agent_config *c, const char *name, struct ms_err *err)
{
	if (!agent_find(c->kind))
		return ms_fail_input(err, "%s: unknown agent kind '%s'", name, c->kind);
	size_t size = state_layout_size(c->layout);
	if (!size)
		return ms_fail_input(err, "%s: unknown state layout '%s'", name, c->layout);
	if (c->state_size != size)
		return ms_fail_input(err, "%s: state layout %s has %zu variables, the file says %u", name, c->layout, size,
				     c->state_size);
	if (c->action_size < 1 || c->action_size > 16 || c->hidden[0] > 1024 || c->hidden[1] > 1024 || c->levels > 100 ||
	    c->replay > 1000000 || c->batch > 4096)
		return ms_fail_input(err, "%s: sizes out of range (actions %u, hidden %u×%u, levels %u, replay %u, batch %u)",
				     name, c->action_size, c->hidden[0], c->hidden[1], c->levels, c->replay, c->batch);
	return 0;
}

static int get_config(struct in_buf *b, struct agent_config *c, const char *name, struct ms_err *err)
{
	if (get_name(b, c->kind, name, "agent", err) < 0 || get_name(b, c->layout, name, "state layout", err) < 0)
		return -1;
	c->state_size = get_u32(b);
	c->action_size = get_u32(b);
	c->hidden[0] = get_u32(b);
	c->hidden[1] = get_u32(b);
	c->levels = get_u32(b);
	c->bid_step = get_f32(b);
	c->gamma = get_f32(b);
	c->lr = get_f32(b);
	c->actor_lr = get_f32(b);
	c->tau = get_f32(b);
	c->replay = get_u32(b);
	c->batch = get_u32(b);
	c->explore_episodes = get_u32(b);
	c->seed = get_u64(b);
	c->episodes = get_u64(b);
	return check_config(c, name, err);
}

/* The whole file is there and intact: magic, version, length, checksum. */
static int check_envelope(const unsigned char *buf, size_t len, const char *name, struct ms_err *err)
{
	struct in_buf b = {.p = buf, .len = len};
	if (len < 12 || memcmp(buf, MODEL_MAGIC, 8) != 0)
		return ms_fail_input(err, "%s: not a msballoon model file (no %s magic)", name, MODEL_MAGIC);
	b.at = 8;
	uint32_t version = get_u32(&b);
	if (version != MODEL_VERSION)
		return ms_fail_input(err, "%s: model format version %u, this msballoon reads version %d", name, version,
				     MODEL_VERSION);
	if (len < HEAD_BYTES + CHECKSUM_BYTES)
		return ms_fail_input(err, "%s: truncated: %zu bytes, a model has at least %d", name, len,
				     HEAD_BYTES + CHECKSUM_BYTES);
	uint64_t total = get_u64(&b);
	if (total > len)
		return ms_fail_input(err, "%s: truncated: %zu of its %llu bytes", name, len, (unsigned long long)total);
	if (total < len)
		return ms_fail_input(err, "%s: %zu bytes after the end of the model (%llu bytes)", name,
				     len - (size_t)total, (unsigned long long)total);
	b.at = len - CHECKSUM_BYTES;
	uint64_t stored = get_u64(&b), computed = XXH3_64bits(buf, len - CHECKSUM_BYTES);
	if (stored != computed)
		return ms_fail_input(err, "%s: bad checksum (stored %016llx, computed %016llx): the file is corrupt", name,
				     (unsigned long long)stored, (unsigned long long)computed);
	return 0;
}

static int get_blobs(struct in_buf *b, struct model *m, const char *name, struct ms_err *err)
{
	uint32_t n = get_u32(b);
	if (n > MODEL_MAX_BLOBS)
		return ms_fail_input(err, "%s: %u parameter arrays, at most %d", name, n, MODEL_MAX_BLOBS);
	size_t end = b->len - CHECKSUM_BYTES;
	for (uint32_t i = 0; i < n; i++) {
		if (end - b->at < 8)
			return ms_fail_input(err, "%s: parameter array %u: its size is cut off", name, i);
		uint64_t count = get_u64(b);
		if (count > MODEL_MAX_FLOATS || count * 4 > end - b->at)
			return ms_fail_input(err, "%s: parameter array %u: %llu values do not fit in the file", name, i,
					     (unsigned long long)count);
		float *data = malloc(count ? count * sizeof *data : 1);
		if (!data)
			return ms_fail(err, "%s: out of memory", name);
		for (uint64_t k = 0; k < count; k++)
			data[k] = get_f32(b);
		m->blobs[m->nblobs++] = (struct model_blob){.count = (size_t)count, .data = data};
	}
	if (b->at != end)
		return ms_fail_input(err, "%s: %zu bytes after its parameter arrays", name, end - b->at);
	return 0;
}

int model_parse(const unsigned char *buf, size_t len, const char *name, struct model *m, struct ms_err *err)
{
	memset(m, 0, sizeof *m);
	m->owned = 1;
	if (check_envelope(buf, len, name, err) < 0)
		return -1;
	struct in_buf b = {.p = buf, .len = len, .at = 8 + 4 + 8};
	if (get_config(&b, &m->cfg, name, err) < 0 || get_blobs(&b, m, name, err) < 0) {
		model_free(m);
		return -1;
	}
	return 0;
}

int model_load(const char *path, struct model *m, struct ms_err *err)
{
	memset(m, 0, sizeof *m);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return errno == ENOENT ? ms_fail_input(err, "%s: no such model file", path)
				       : ms_fail_errno(err, "cannot open %s", path);
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ms_fail_input(err, "%s: not a regular file", path);
	}
	size_t len = (size_t)st.st_size, done = 0;
	unsigned char *buf = malloc(len ? len : 1);
	if (!buf) {
		close(fd);
		return ms_fail(err, "%s: out of memory (%zu bytes)", path, len);
	}
	while (done < len) {
		ssize_t n = read(fd, buf + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	int rc = close(fd) != 0 && done < len ? ms_fail_errno(err, "reading %s", path) : 0;
	if (rc == 0)
		rc = model_parse(buf, done, path, m, err);
	free(buf);
	return rc;
}

void model_free(struct model *m)
{
	if (m->owned)
		for (size_t i = 0; i < m->nblobs; i++)
			free(m->blobs[i].data);
	m->nblobs = 0;
}
