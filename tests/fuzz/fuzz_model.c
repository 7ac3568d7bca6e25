/* libFuzzer target: the model file loader of `msballoon sim --model` (and
 * of the live loop) reads files from anywhere.  Each input is parsed as it
 * is, then again with its length field and checksum made right, so that the
 * checks behind them (names, sizes, parameter arrays, each agent's own
 * checks when it takes its parameters) are reached too.  `make fuzz`. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "agent.h"
#include "model.h"

static void parse_and_build(const uint8_t *data, size_t size)
{
	struct model m;
	struct ms_err err;
	if (model_parse(data, size, "fuzz", &m, &err) < 0)
		return;
	struct agent a;
	if (agent_from_model(&m, "fuzz", NULL, NULL, &a, &err) == 0)
		agent_free(&a);
	model_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	parse_and_build(data, size);
	if (size < 28)
		return 0;
	unsigned char *copy = malloc(size);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	memcpy(copy, MODEL_MAGIC, 8);
	copy[8] = MODEL_VERSION, copy[9] = copy[10] = copy[11] = 0;
	for (int i = 0; i < 8; i++) /* total_bytes: the input's size */
		copy[12 + i] = (unsigned char)((uint64_t)size >> (8 * i));
	uint64_t sum = XXH3_64bits(copy, size - 8);
	for (int i = 0; i < 8; i++)
		copy[size - 8 + i] = (unsigned char)(sum >> (8 * i));
	parse_and_build(copy, size);
	free(copy);
	return 0;
}
