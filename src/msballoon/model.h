/* Model files of the learning agents: versioned, self-describing, checked.
 *
 * Little-endian throughout:
 *   "MSBMODEL"              8 bytes of magic
 *   u32 version             MODEL_VERSION
 *   u64 total_bytes         the whole file, checksum included (truncation is named as such)
 *   config                  struct agent_config, field by field: kind[16],
 *                           layout[16] (NUL-padded), u32 state_size,
 *                           action_size, hidden[2], levels, f32 bid_step,
 *                           gamma, lr, actor_lr, tau, u32 replay, batch,
 *                           explore_episodes, u64 seed, episodes
 *   u32 blobs               at most MODEL_MAX_BLOBS, then each:
 *     u64 count, count × f32  an agent's parameters (a Q table, a network)
 *   u64 checksum            XXH3-64 of every byte before it
 * A file is written to a temporary file in the same directory and renamed
 * over the path, so a reader sees the old model or the new one, whole. */
#ifndef MSBALLOON_MODEL_H
#define MSBALLOON_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "error.h"

#define MODEL_MAGIC "MSBMODEL"
#define MODEL_VERSION 1
#define MODEL_MAX_BLOBS 8
#define MODEL_MAX_FLOATS (1u << 28) /* 1 GiB of parameters: far beyond any agent here */

struct model_blob {
	size_t count;
	float *data;   /* owned when the model was parsed, borrowed when built for saving */
};

struct model {
	struct agent_config cfg;
	size_t nblobs;
	struct model_blob blobs[MODEL_MAX_BLOBS];
	int owned;
};

/* Add a parameter array (borrowed: it must live until model_save). */
int model_add_blob(struct model *m, const float *data, size_t count, struct ms_err *err);
int model_save(const struct model *m, const char *path, struct ms_err *err);
/* Parse a model image; `name` names it in errors (input errors, exit 2). */
int model_parse(const unsigned char *buf, size_t len, const char *name, struct model *m, struct ms_err *err);
int model_load(const char *path, struct model *m, struct ms_err *err);
void model_free(struct model *m);

#endif
