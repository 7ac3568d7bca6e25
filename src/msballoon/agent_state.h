/* The state, reward and target of the learning agents.
 *
 * CAVMem (thesis Table 3.1, Eq. 3.10–3.11), on the simulated node:
 *   per VM  msr ∈ [-1, 1]  its RAM miss rate, scaled: the fraction f of its
 *                          page touches that missed RAM, as 2f − 1 (−1: no
 *                          miss; the simulator's touches bound the rate);
 *           M ∈ [0, 1]     its memory / the node's memory;
 *   node    avgMsr         the mean msr of the VMs running;
 *           msrTgt         the target (Eq. 3.11) the next reward is judged by;
 *           totalMemUse    Σ M over the VMs running.
 *   reward  r = −k·|msr − msrTgt| (Eq. 3.10, k = 1)
 *   target  msrTgt(t+1) = avgMsr(t)·sqrt(totalMemUse(t)) (Eq. 3.11), on the
 *           unscaled fraction f: scaled values are negative for low miss
 *           rates, where the square-root factor would raise the target
 *           instead of lowering it ("encourages the VMs to use more memory").
 * CARLEMM (Table 4.1, Eq. 4.1–4.2), in the live loop:
 *   per VM usrtime, M, swap_used; node avgUsrtime, usrtimeTgt, totalMemUse
 *   (all in [0, 1]); r = −k·|usrtime − usrtimeTgt| − β·|a| (k = β = 1);
 *   usrtimeTgt(t+1) = avg / (avg + (1 − avg)·totalMemUse). */
#ifndef MSBALLOON_AGENT_STATE_H
#define MSBALLOON_AGENT_STATE_H

#include <stddef.h>
#include <stdint.h>

#define CAVMEM_STATE 5
#define CARLEMM_STATE 6
/* Where M is in both layouts (the static agent reads it). */
#define STATE_M 1

/* The layout's number of variables, 0 when the name is unknown. */
size_t state_layout_size(const char *layout);
/* The range of variable i of the layout (for quantising). */
void state_layout_range(const char *layout, size_t i, double *lo, double *hi);

/* Misses over touches, in [0, 1]; 0 with no touch. */
double miss_fraction(int64_t misses, int64_t touches);
/* [0, 1] → [-1, 1]. */
double scale_signed(double fraction);
double cavmem_target(double avg_fraction, double total_mem_use);
double cavmem_reward(double msr, double msr_target, double k);
void cavmem_state(float *out, double msr, double m, double avg_msr, double msr_target, double total_mem_use);

double carlemm_target(double avg_usrtime, double total_mem_use);
double carlemm_reward(double usrtime, double usrtime_target, double bid, double k, double beta);
/* The CARLEMM layout: usrtime, M, swap_used, avgUsrtime, usrtimeTgt, totalMemUse. */
void carlemm_state(float *out, double usrtime, double m, double swap_used, double avg_usrtime, double usrtime_target,
		   double total_mem_use);
/* usrtime of a simulated VM: the share of the interval its workload runs
 * rather than waits for pages, interval / (interval + stall), in [0, 1]
 * (1 with no stall; the simulator charges each tier and disk page its cost). */
double sim_usrtime(double interval_s, double stall_s);
/* swap_used: the VM's memory out of RAM over all of it, swap / (swap + ram),
 * in [0, 1] (0 when both are unknown or zero). */
double swap_fraction(double swap_bytes, double ram_bytes);

/* HAL (Alg. 6): the mean of the last HAL_WINDOW rewards below
 * −usrtimeTgt/2 overrides the actor's bid with ±HAL_BID. */
#define HAL_WINDOW 10
#define HAL_BID 0.04
struct hal {
	double rewards[HAL_WINDOW];
	size_t count, next; /* rewards kept (≤ HAL_WINDOW), where the next goes */
};
void hal_add_reward(struct hal *h, double reward);
/* The bid HAL imposes (+HAL_BID: usrtime below target, a request; −HAL_BID
 * above), or NAN when the actor's bid stands (fewer than HAL_WINDOW rewards
 * kept, or their mean not below −usrtimeTgt/2, or usrtime on target). */
double hal_override(const struct hal *h, double usrtime, double usrtime_target);

#endif
