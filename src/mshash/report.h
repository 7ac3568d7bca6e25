/* The subcommands that read indexes: stats, diff and query.  Each writes
 * its records to `w` and returns -1 with err set on failure. */
#ifndef MSH_REPORT_H
#define MSH_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "jsonl.h"
#include "records.h"

/* Per-snapshot and whole-set counts over hash range I of N (0/1: all). */
int sharing_compute(char **paths, size_t n, uint32_t part_index, uint32_t part_count, struct sharing *snap,
		    struct sharing *set, struct ms_err *err);
int stats_run(char **paths, size_t n, uint32_t part_index, uint32_t part_count, struct jsonl_writer *w,
	      struct ms_err *err);
int diff_compute(const char *old_path, const char *new_path, struct diff_result *d, struct ms_err *err);
/* Compare the positions of two indexes held in memory (equal block sizes):
 * fills the block counts of d; the hashes of changed and added blocks go to
 * written (b's block_count entries) when it is not NULL. */
void diff_positions(const struct msh_index *a, const struct msh_index *b, struct diff_result *d, struct msh_hash *written,
		    size_t *nw);
int diff_run(const char *old_path, const char *new_path, struct jsonl_writer *w, struct ms_err *err);

enum query_kind { QUERY_COPIES, QUERY_WHERE, QUERY_SHARED, QUERY_DEGREE };
struct query {
	enum query_kind kind;
	struct msh_hash hash;  /* copies, where */
	uint64_t k;            /* shared */
	const char *mode;      /* degree: intra, inter or both */
};
int query_run(const struct query *q, char **paths, size_t n, struct jsonl_writer *w, struct ms_err *err);

#endif
