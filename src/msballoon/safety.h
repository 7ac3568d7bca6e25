/* The safety invariants on balloon targets, enforced here once for every
 * policy.  `plan` applies all of them; `apply` and `set`, which carry out
 * targets decided elsewhere, check the floor and the maximum (clamp_target);
 * `sim` applies them without deadband and step limit:
 *   - never below the floor (--min), never above the domain's maximum (MS_SIZE_MAX
 *     when unknown, so that no target means "unlimited");
 *   - at most --max-step of change per interval;
 *   - changes smaller than --deadband are not sent (the target stays the allocation);
 *   - never more in total than the host can give (host memory minus --host-reserve):
 *     increases are scaled down until the sum fits, but not below the floor.
 * They hold on the final numbers: the step limit and the deadband never keep a
 * domain outside [floor, maximum], and every sum saturates or is 128-bit. 
 * The order in which targets are applied — decreases first, then increases —
 * is apply.c's job. */
#ifndef MSBALLOON_SAFETY_H
#define MSBALLOON_SAFETY_H

#include <stdint.h>

#include "policy.h"

struct safety_limits {
	int64_t min_bytes;      /* floor per domain */
	int64_t host_bytes;     /* what the host can give to all domains together; < 0: no limit */
	int64_t deadband_bytes; /* smaller changes are not sent */
	int64_t max_step_bytes; /* largest change per interval; < 0: no limit */
};

/* Enforce the invariants on every balloon target of d[] (one per node->vms[i]),
 * appending to each reason what was changed and why. */
void enforce_invariants(const struct safety_limits *limits, const struct node_view *node, struct vm_decision *d);

/* The floor and maximum alone, for a single target set by hand. */
int64_t clamp_target(const struct safety_limits *limits, int64_t target, int64_t max_bytes);

#endif
