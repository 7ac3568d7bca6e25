/* `msballoon plan` (and `apply` of what it plans): observations in, one
 * decision per interval out. */
#ifndef MSBALLOON_PLAN_H
#define MSBALLOON_PLAN_H

#include <stdbool.h>
#include <stdio.h>

#include "driver.h"
#include "live.h"
#include "jsonl.h"
#include "policy.h"
#include "safety.h"

struct plan_config {
	const struct balloon_policy *policy;
	struct policy_params params;
	struct safety_limits limits;
	int64_t tier_total_bytes; /* --tier-total; -1: from "tier" records */
	struct driver *drv;       /* to apply with; NULL: plan only */
	const char *tier_control; /* msrswap client's control socket, to apply tier targets; NULL: not applied */
	uint64_t wait_ns;         /* how long to wait for balloons */
	uint64_t settle_ns;
	bool once;                /* one decision on everything read (cron) */
	bool strict;              /* a bad record ends the run instead of being skipped */
	struct live_loop *live;   /* --policy ddpg|dql|ql --model: the agent bids (policy is bid); NULL: none */
	struct jsonl_writer *out;
};

/* Returns 0, 1 when some targets could not be applied or reached, -1 on error.
 * *skipped: the bad records skipped (not strict). */
int plan_run(const struct plan_config *cfg, FILE *in, const char *name, unsigned long *skipped, struct ms_err *err);

struct apply_config {
	struct driver *drv;
	const struct safety_limits *limits;
	uint64_t wait_ns, settle_ns;
	bool strict;
	struct jsonl_writer *out;
};

/* `msballoon apply`: apply the "target" records of a plan; echo each with its outcome. */
int apply_run(const struct apply_config *cfg, FILE *in, const char *name, unsigned long *skipped, struct ms_err *err);

#endif
