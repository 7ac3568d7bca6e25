/* msballoon sim: a deterministic simulated node (VMs with memory demand
 * traces, a second-tier pool, a disk) on which any policy runs, the same code
 * as `plan`.  Reports per-VM miss rate, run time, tier share and fairness. */
#ifndef MSBALLOON_SIM_H
#define MSBALLOON_SIM_H

#include <stdbool.h>

#include "error.h"
#include "jsonl.h"
#include "policy.h"

/* Run the scenario file with the policy; write per-interval and summary
 * records to out, or with `table` a human table to out instead.
 * Bad scenario files: ms_fail_input naming the file and what is wrong. */
int sim_run(const char *scenario_path, const struct balloon_policy *policy, const struct policy_params *params,
	    struct jsonl_writer *out, bool table, struct ms_err *err);

#endif
