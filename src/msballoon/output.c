#include "output.h"

#include "jsonl.h"
#include "policy_share.h"

json_t *target_record(const char *policy, const struct vm_view *vm, const struct vm_decision *d)
{
	json_t *r = record_new("target");
	json_object_set_new(r, "domain", json_string(vm->domain));
	json_object_set_new(r, "policy", json_string(policy));
	json_set_known_i64(r, "balloon_bytes", d->balloon_bytes);
	if (d->balloon_bytes != NO_TARGET)
		json_set_known_i64(r, "prev_balloon_bytes", vm->alloc_bytes);
	json_set_known_i64(r, "tier_bytes", d->tier_bytes);
	if (d->tier_bytes != NO_TARGET)
		json_set_known_i64(r, "prev_tier_bytes", vm->prev_tier_bytes);
	json_set_known_i64(r, "share_bytes", d->share_bytes);
	if (d->share_bytes != NO_TARGET) {
		json_set_known_i64(r, "prev_share_bytes", vm->share.size_bytes);
		json_object_set_new(r, "share_margin_bytes", json_integer(decision_share_margin(vm, d)));
	}
	json_set_known_i64(r, "wss_bytes", vm->wss_bytes);
	json_set_known_i64(r, "max_bytes", vm->max_bytes);
	if (d->remote_need_bytes > 0)
		json_object_set_new(r, "remote_need_bytes", json_integer(d->remote_need_bytes));
	json_object_set_new(r, "reason", json_string(d->reason));
	return r;
}

void add_outcome(json_t *record, const struct apply_item *item)
{
	json_object_set_new(record, "applied", json_boolean(item->applied));
	json_object_set_new(record, "reached", json_boolean(item->applied && item->reached));
	json_set_known_i64(record, "actual_bytes", item->actual_bytes);
	if (item->error[0])
		json_object_set_new(record, "error", json_string(item->error));
}

json_t *reservoir_record(const char *policy, const struct node_view *node, const struct vm_decision *d,
			 const struct node_decision *nd)
{
	int64_t need = 0;
	for (size_t i = 0; i < node->count; i++)
		need = sat_add(need, d[i].remote_need_bytes > 0 ? d[i].remote_need_bytes : 0);
	json_t *r = record_new("reservoir");
	json_object_set_new(r, "policy", json_string(policy));
	json_object_set_new(r, "free_bytes", json_integer(nd->reservoir_bytes));
	json_set_known_i64(r, "host_bytes", node->host_bytes);
	json_object_set_new(r, "remote_need_bytes", json_integer(need));
	json_object_set_new(r, "domains", json_integer((json_int_t)node->count));
	return r;
}

json_t *grant_any_record(const char *policy, int64_t bytes, const char *domain)
{
	json_t *r = record_new("grant_any");
	json_object_set_new(r, "policy", json_string(policy));
	if (domain)
		json_object_set_new(r, "domain", json_string(domain));
	json_object_set_new(r, "bytes", json_integer(bytes));
	json_object_set_new(r, "pages", json_integer(bytes / 4096));
	return r;
}
