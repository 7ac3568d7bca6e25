#include "agent_state.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

size_t state_layout_size(const char *layout)
{
	if (strcmp(layout, "cavmem") == 0)
		return CAVMEM_STATE;
	if (strcmp(layout, "carlemm") == 0)
		return CARLEMM_STATE;
	return 0;
}

void state_layout_range(const char *layout, size_t i, double *lo, double *hi)
{
	/* CAVMem: msr, avgMsr and msrTgt are scaled to [-1, 1]; M and totalMemUse are fractions. */
	bool is_signed = strcmp(layout, "cavmem") == 0 && (i == 0 || i == 2 || i == 3);
	*lo = is_signed ? -1 : 0;
	*hi = 1;
}

double miss_fraction(int64_t misses, int64_t touches)
{
	if (touches <= 0 || misses <= 0)
		return 0;
	return misses >= touches ? 1 : (double)misses / (double)touches;
}

double scale_signed(double fraction)
{
	return 2 * fraction - 1;
}

double cavmem_target(double avg_fraction, double total_mem_use)
{
	return avg_fraction * sqrt(total_mem_use > 0 ? total_mem_use : 0);
}

double cavmem_reward(double msr, double msr_target, double k)
{
	return -k * fabs(msr - msr_target);
}

void cavmem_state(float *out, double msr, double m, double avg_msr, double msr_target, double total_mem_use)
{
	out[0] = (float)msr;
	out[STATE_M] = (float)m;
	out[2] = (float)avg_msr;
	out[3] = (float)msr_target;
	out[4] = (float)total_mem_use;
}

double carlemm_target(double avg_usrtime, double total_mem_use)
{
	double den = avg_usrtime + (1 - avg_usrtime) * total_mem_use;
	return den > 0 ? avg_usrtime / den : 0;
}

double carlemm_reward(double usrtime, double usrtime_target, double bid, double k, double beta)
{
	return -k * fabs(usrtime - usrtime_target) - beta * fabs(bid);
}

void carlemm_state(float *out, double usrtime, double m, double swap_used, double avg_usrtime, double usrtime_target,
		   double total_mem_use)
{
	out[0] = (float)usrtime;
	out[STATE_M] = (float)m;
	out[2] = (float)swap_used;
	out[3] = (float)avg_usrtime;
	out[4] = (float)usrtime_target;
	out[5] = (float)total_mem_use;
}

double sim_usrtime(double interval_s, double stall_s)
{
	if (stall_s <= 0)
		return 1;
	return interval_s > 0 ? interval_s / (interval_s + stall_s) : 0;
}

double swap_fraction(double swap_bytes, double ram_bytes)
{
	swap_bytes = swap_bytes > 0 ? swap_bytes : 0;
	ram_bytes = ram_bytes > 0 ? ram_bytes : 0;
	return swap_bytes + ram_bytes > 0 ? swap_bytes / (swap_bytes + ram_bytes) : 0;
}

void hal_add_reward(struct hal *h, double reward)
{
	h->rewards[h->next] = reward;
	h->next = (h->next + 1) % HAL_WINDOW;
	if (h->count < HAL_WINDOW)
		h->count++;
}

double hal_override(const struct hal *h, double usrtime, double usrtime_target)
{
	if (h->count < HAL_WINDOW)
		return NAN;
	double sum = 0;
	for (size_t i = 0; i < HAL_WINDOW; i++)
		sum += h->rewards[i];
	if (sum / HAL_WINDOW >= -usrtime_target / 2)
		return NAN;
	if (usrtime < usrtime_target)
		return HAL_BID;
	if (usrtime > usrtime_target)
		return -HAL_BID;
	return NAN;
}
