#include "policy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const struct balloon_policy *const balloon_policies[] = {
	&policy_wss, &policy_greedy, &policy_static, &policy_reconf_static, &policy_smart_alloc,
	&policy_tlp, &policy_bid, &policy_memnet, NULL,
};

const struct balloon_policy *balloon_policy_find(const char *name)
{
	for (size_t i = 0; balloon_policies[i]; i++)
		if (strcmp(balloon_policies[i]->name, name) == 0)
			return balloon_policies[i];
	return NULL;
}

const char *balloon_policy_names(char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; balloon_policies[i] && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", balloon_policies[i]->name);
	return buf;
}

void vm_view_init(struct vm_view *vm, const char *domain)
{
	memset(vm, 0, sizeof *vm);
	vm->domain = domain;
	vm->alloc_bytes = vm->max_bytes = vm->initial_bytes = vm->wss_bytes = vm->prev_wss_bytes = -1;
	vm->puts_total = vm->puts_succ = vm->failed_puts = vm->tier_used_bytes = vm->remote_tier_bytes = -1;
	vm->prev_balloon_bytes = vm->prev_tier_bytes = -1;
	vm->usrtime = -1;
	vm->swap_bytes = -1;
	vm->share.size_bytes = vm->share.used_bytes = -1;
	vm->share.busy_s = -1;
}

void vm_decision_init(struct vm_decision *d)
{
	memset(d, 0, sizeof *d);
	d->balloon_bytes = d->tier_bytes = d->share_bytes = NO_TARGET;
	d->share_floor_bytes = -1;
}

int64_t decision_share_margin(const struct vm_view *vm, const struct vm_decision *d)
{
	int64_t used = vm->share.used_bytes > 0 ? vm->share.used_bytes : 0;
	return d->share_floor_bytes > used ? d->share_floor_bytes - used : 0;
}

void node_decision_init(struct node_decision *d)
{
	d->reservoir_bytes = -1;
	d->grant_any_bytes = 0;
	d->grant_any_domain = NULL;
}

void decision_reason(struct vm_decision *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof d->reason, fmt, ap);
	va_end(ap);
	for (char *p = d->reason; *p; p++)
		if (*p == '\n')
			*p = ' ';
}
