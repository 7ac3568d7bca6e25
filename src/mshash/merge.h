/* A k-way merge of the sorted runs of many indexes: the distinct hashes of
 * the whole set in order, each with the inputs that hold it.  Memory is one
 * read buffer per input, whatever the indexes' sizes, so a fleet's indexes
 * can be merged on one machine (or one hash range per machine). */
#ifndef MSH_MERGE_H
#define MSH_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "msh_format.h"

struct merge_input {
	struct msh_file mf;
	struct msh_run_cursor cur;
};

struct merge {
	size_t n;
	struct merge_input *in;
	size_t *heap; /* inputs with a current run, smallest hash first */
	size_t heap_len;
	uint32_t block_size;
};

/* One distinct hash of the set. */
struct merge_item {
	struct msh_hash hash;
	uint64_t copies;   /* blocks holding it, over all inputs */
	size_t holders;    /* inputs holding it: which[0..holders) */
	size_t *which;
	uint64_t *count;   /* count[i]: copies in input which[i] */
};

/* Open every index (they must share a block size) on hash range I of N (0/1: all). */
int merge_open(struct merge *m, char **paths, size_t n, uint32_t part_index, uint32_t part_count, struct ms_err *err);
/* 1 with *item filled (its arrays live until the next call), 0 at the end, -1 on error. */
int merge_next(struct merge *m, struct merge_item *item, struct ms_err *err);
void merge_close(struct merge *m);
/* Copies of one hash in one index, by binary search of its runs. */
int msh_find_run(struct msh_file *mf, struct msh_hash h, uint64_t *count, struct ms_err *err);

#endif
