#include "live.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

#define REWARD_K 1.0
#define REWARD_BETA 1.0
#define REACHED_FRACTION 0.01 /* an allocation within 1 % of the target reached it */

int live_open(struct live_loop *l, const char *path, const char *kind, bool hal, struct ms_err *err)
{
	memset(l, 0, sizeof *l);
	l->hal = hal;
	if (agent_load(path, kind, NULL, &l->agent, err) < 0)
		return -1;
	if (strcmp(l->agent.cfg.layout, "carlemm") != 0) {
		ms_fail_input(err, "%s: a model for the %s state; the live loop feeds CARLEMM's: train one with --state carlemm",
			      path, l->agent.cfg.layout);
		agent_free(&l->agent);
		return -1;
	}
	l->agent.ops->episode_start(&l->agent);
	return 0;
}

int live_save(struct live_loop *l, struct ms_err *err)
{
	return agent_save(&l->agent, l->learn_path, err);
}

void live_close(struct live_loop *l)
{
	agent_free(&l->agent);
	for (size_t i = 0; i < l->count; i++)
		free(l->vms[i].domain);
	free(l->vms);
	l->vms = NULL;
	l->count = 0;
}

static struct live_vm *find_vm(const struct live_loop *l, const char *domain)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->vms[i].domain, domain) == 0)
			return &l->vms[i];
	return NULL;
}

const struct live_vm *live_find(const struct live_loop *l, const char *domain)
{
	return find_vm(l, domain);
}

/* The VM's slot (its index is its agent's per-VM slot), added when new. */
static struct live_vm *vm_slot(struct live_loop *l, const char *domain, size_t *index, struct ms_err *err)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->vms[i].domain, domain) == 0) {
			*index = i;
			return &l->vms[i];
		}
	struct live_vm *vms = realloc(l->vms, (l->count + 1) * sizeof *vms);
	if (!vms) {
		ms_fail(err, "out of memory");
		return NULL;
	}
	l->vms = vms;
	struct live_vm *v = &vms[l->count];
	memset(v, 0, sizeof *v);
	v->awaited_bytes = NO_TARGET;
	if (!(v->domain = strdup(domain))) {
		ms_fail(err, "out of memory");
		return NULL;
	}
	*index = l->count++;
	return v;
}

/* The node's part of the state: avgUsrtime over the VMs that report one, totalMemUse. */
static void node_part(const struct node_view *node, double *avg_usrtime, double *total_mem_use)
{
	double sum = 0, total = 0;
	size_t n = 0;
	for (size_t i = 0; i < node->count; i++) {
		const struct vm_view *v = &node->vms[i];
		if (v->usrtime >= 0) {
			sum += v->usrtime > 1 ? 1 : v->usrtime;
			n++;
		}
		if (v->alloc_bytes > 0)
			total += (double)v->alloc_bytes / (double)node->host_bytes;
	}
	*avg_usrtime = n ? sum / (double)n : 0;
	*total_mem_use = total;
}

/* Is the VM still waiting for its last target?  (Counts the interval waited.) */
static bool still_waiting(struct live_vm *lv, const struct vm_view *v)
{
	if (lv->awaited_bytes == NO_TARGET)
		return false;
	double gap = fabs((double)(v->alloc_bytes - lv->awaited_bytes));
	if (gap <= REACHED_FRACTION * (double)lv->awaited_bytes || lv->waited >= LIVE_WAIT_INTERVALS) {
		lv->awaited_bytes = NO_TARGET;
		return false;
	}
	lv->waited++;
	snprintf(lv->note, sizeof lv->note, "waiting for the balloon to reach %lld (%u/%u): no new bid",
		 (long long)lv->awaited_bytes, lv->waited, LIVE_WAIT_INTERVALS);
	return true;
}

/* Why VM v gets no state this interval, or NULL when it does. */
static const char *no_state_reason(const struct live_vm *lv, const struct vm_view *v, int64_t host_bytes)
{
	if (host_bytes <= 0)
		return "the host's memory is unknown: no state";
	if (v->alloc_bytes < 0)
		return "no alloc_bytes: no state";
	if (v->usrtime < 0)
		return "no usrtime in its wss record: no state";
	if (!v->stats_ts[0])
		return "no ts in its wss record: no state";
	if (strcmp(v->stats_ts, lv->fed_ts) == 0)
		return "its stats did not advance (same ts): no new state";
	return NULL;
}

/* --learn: the transition from the state the VM last bid in to this one. */
static void learn_transition(struct live_loop *l, const struct live_vm *lv, size_t slot, const float *state,
			     double reward)
{
	struct agent_transition t = {.vm = slot, .s = lv->state, .s2 = state, .action = lv->action,
				     .reward = (float)reward};
	l->agent.ops->observe(&l->agent, &t);
	l->learned += (unsigned long)l->agent.ops->train(&l->agent) >= 1;
}

/* Feed one VM's new state: judge its last bid (HAL's window), bid anew. */
static void feed_state(struct live_loop *l, struct live_vm *lv, size_t slot, struct vm_view *v, int64_t host_bytes,
		       double avg_usrtime, double total_mem_use)
{
	double usrtime = v->usrtime > 1 ? 1 : v->usrtime;
	float state[AGENT_STATE_MAX];
	double m = (double)v->alloc_bytes / (double)host_bytes;
	carlemm_state(state, usrtime, m, swap_fraction((double)v->swap_bytes, (double)v->alloc_bytes), avg_usrtime,
		      l->usrtime_target, total_mem_use);
	if (lv->has_bid) {
		double reward = carlemm_reward(usrtime, lv->usrtime_target, lv->bid, REWARD_K, REWARD_BETA);
		hal_add_reward(&lv->hal, reward);
		if (l->learn_path)
			learn_transition(l, lv, slot, state, reward);
	}
	struct agent_node an = {.vms = 0};
	float action;
	double actor = l->agent.ops->act(&l->agent, slot, state, &an, 0.0, &action);
	memcpy(lv->state, state, sizeof lv->state);
	lv->action = action;
	double hal = l->hal ? hal_override(&lv->hal, usrtime, l->usrtime_target) : NAN;
	lv->overridden = !isnan(hal);
	lv->bid = lv->overridden ? hal : actor;
	if (lv->overridden) /* learn what was done: HAL's bid, or its direction among discrete actions */
		lv->action = l->agent.cfg.action_size == 1 ? (float)hal : hal > 0 ? AGENT_REQUEST : AGENT_RELEASE;
	if (lv->overridden) {
		lv->overrides++;
		l->overrides++;
		snprintf(lv->note, sizeof lv->note, "%s bid %+.3f, HAL override %+.2f (usrtime %.3f, target %.3f)",
			 l->agent.cfg.kind, actor, hal, usrtime, l->usrtime_target);
	} else {
		snprintf(lv->note, sizeof lv->note, "%s bid %+.3f (usrtime %.3f, target %.3f)", l->agent.cfg.kind, actor,
			 usrtime, l->usrtime_target);
	}
	lv->has_bid = true;
	lv->usrtime = usrtime;
	lv->usrtime_target = l->usrtime_target;
	snprintf(lv->fed_ts, sizeof lv->fed_ts, "%s", v->stats_ts);
	v->has_bid = true;
	v->bid = lv->bid;
}

int live_bid(struct live_loop *l, struct node_view *node, struct ms_err *err)
{
	double avg_usrtime = 0, total_mem_use = 0;
	if (node->host_bytes > 0)
		node_part(node, &avg_usrtime, &total_mem_use);
	if (!l->has_target && node->host_bytes > 0) {
		l->usrtime_target = carlemm_target(avg_usrtime, total_mem_use); /* the first interval judges itself */
		l->has_target = true;
	}
	for (size_t i = 0; i < node->count; i++) {
		struct vm_view *v = &node->vms[i];
		size_t slot;
		struct live_vm *lv = vm_slot(l, v->domain, &slot, err);
		if (!lv)
			return -1;
		v->has_bid = false; /* the agent bids, not a "bid" record */
		lv->overridden = false;
		const char *why = no_state_reason(lv, v, node->host_bytes);
		if (why) {
			snprintf(lv->note, sizeof lv->note, "%s", why);
			continue;
		}
		if (still_waiting(lv, v))
			continue;
		feed_state(l, lv, slot, v, node->host_bytes, avg_usrtime, total_mem_use);
	}
	if (node->host_bytes > 0)
		l->usrtime_target = carlemm_target(avg_usrtime, total_mem_use); /* Eq. 4.2: the next interval's */
	if (l->learn_path && monotonic_ns() - l->saved_ns >= l->save_every_ns) {
		if (live_save(l, err) < 0)
			return -1;
		l->saved_ns = monotonic_ns();
	}
	return 0;
}

void live_after(struct live_loop *l, const struct node_view *node, const struct vm_decision *d)
{
	for (size_t i = 0; i < node->count; i++) {
		struct live_vm *lv = find_vm(l, node->vms[i].domain);
		if (!lv || d[i].balloon_bytes == NO_TARGET || d[i].balloon_bytes == node->vms[i].alloc_bytes)
			continue;
		lv->awaited_bytes = d[i].balloon_bytes;
		lv->waited = 0;
	}
}
