/* msballoon policies: pure functions from one interval's observations of a
 * node to per-domain targets.  `plan` (live, from mswss/msrswap records) and
 * `sim` (a simulated node) run the very same functions.  Each policy is one
 * file, policy_<name>.c, registered in policy.c.
 *
 * Two kinds of target:
 *   balloon_bytes — the domain's memory (balloon size, cgroup limit);
 *   tier_bytes    — its quota in the second tier (SmarTmem's Tmem target:
 *                   the RAM pool of the msrswap tier store).
 *   share_bytes   — the size of its shared RAM space with the host (MemNet:
 *                   msshare(1)'s tmpfs; the memnet policy).
 * A policy sets the kinds it decides and leaves the others at -1 ("no target").
 * The safety invariants on balloon targets (floor, maximum, host capacity,
 * deadband, step) are enforced afterwards in one place, safety.c, for every
 * policy alike. */
#ifndef MSBALLOON_POLICY_H
#define MSBALLOON_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "memnet.h"

#define NO_TARGET (-1)
#define POLICY_REASON_MAX 320 /* a learned bid's note, then the Bid Analyzer's arithmetic */

/* What is known of one domain in this interval; -1 means unknown. */
struct vm_view {
	const char *domain;

	/* memory, from "wss" records */
	int64_t alloc_bytes;    /* its memory now */
	int64_t max_bytes;      /* the most it can have */
	int64_t initial_bytes;  /* its allocation when first seen: guaranteed back if its WSS grows (SEEDS §1) */
	int64_t wss_bytes;
	int64_t prev_wss_bytes; /* the previous interval's WSS (-1: none) */
	bool short_of_memory;   /* mswss state "more" */
	double usrtime;         /* fraction of the interval in user space (CARLEMM), < 0 unknown */
	int64_t swap_bytes;     /* its memory in swap (CARLEMM's swap_used), -1 unknown */
	char stats_ts[40];      /* the "ts" of its last "wss" record ("" none): CARLEMM feeds a state only when it advances */

	/* second tier, from "tier" records (msrswap) */
	int64_t puts_total;          /* cumulative */
	int64_t puts_succ;           /* cumulative */
	int64_t failed_puts;         /* during this interval: Δputs_total − Δputs_succ */
	int64_t tier_used_bytes;
	int64_t remote_tier_bytes;   /* the room of its device's remotes (leases granted to it), -1 unknown */
	bool ever_failed_put;        /* at least one failed put since it was first seen */

	/* CARLEMM bid in [-1, 1] (bid policy), from "bid" records */
	bool has_bid;
	double bid;

	/* shared RAM space, from "share" records (msshare) */
	bool has_share;
	struct memnet_obs share;
	struct memnet_state memnet;  /* the memnet controller's state after the previous interval */

	/* this policy's previous decision for the domain (-1: none yet) */
	int64_t prev_balloon_bytes;
	int64_t prev_tier_bytes;
};

struct node_view {
	int64_t host_bytes;      /* memory the host can give to domains (total minus --host-reserve) */
	int64_t tier_total_bytes; /* the second-tier pool (for tlp: local plus remote grants), -1 unknown */
	size_t count;
	struct vm_view *vms;
};

/* Tunables; each policy reads the ones it documents. */
struct policy_params {
	double headroom;          /* wss: target = WSS × (1 + headroom) */
	double step_fraction;     /* smart-alloc/tlp: P (0.0075 for 0.75 %) */
	int64_t threshold_bytes;  /* smart-alloc/tlp: shrink only when target − used exceeds it */
	int64_t min_bytes;        /* per-domain floor (also the Bid Analyzer's minimum allocation) */
	int64_t remote_cap_bytes; /* wss: most remote memory one domain may ask for (-1: no cap) */
	double slo;               /* memnet: the share of time a new job may not fit in the space (0.01) */
	int64_t share_total_bytes; /* memnet: all shared spaces together (-1: the host's memory) */
};

struct vm_decision {
	int64_t balloon_bytes;    /* NO_TARGET or bytes */
	int64_t tier_bytes;       /* NO_TARGET or bytes */
	int64_t remote_need_bytes; /* wss: memory the host cannot give locally (0 none) */
	int64_t share_bytes;      /* NO_TARGET or bytes: the size of the shared space */
	int64_t share_floor_bytes; /* memnet: never below this (used + one mean job), -1 none */
	struct memnet_state memnet; /* memnet: the controller's state for the next interval (started: kept) */
	char reason[POLICY_REASON_MAX];
};

struct node_decision {
	int64_t reservoir_bytes;  /* wss: host memory left free after the targets (-1: not computed) */
	int64_t grant_any_bytes;  /* tlp: tier the node lacks, to request from the cluster (0 none) */
	const char *grant_any_domain; /* tlp: the domain whose device the lease is for (node->vms[i].domain; NULL none) */
};

struct balloon_policy {
	const char *name;
	const char *summary; /* one line for --help and `--policy unknown` */
	/* Fill out[i] for node->vms[i] (out[] comes preset to NO_TARGET) and *node_out. */
	int (*decide)(const struct policy_params *params, const struct node_view *node,
		      struct vm_decision *out, struct node_decision *node_out, struct ms_err *err);
};

extern const struct balloon_policy policy_wss, policy_greedy, policy_static, policy_reconf_static,
	policy_smart_alloc, policy_tlp, policy_bid, policy_memnet;

/* NULL-terminated list, for --help and the "unknown policy" message. */
extern const struct balloon_policy *const balloon_policies[];
const struct balloon_policy *balloon_policy_find(const char *name);
/* "wss, greedy, static, ..." into buf. */
const char *balloon_policy_names(char *buf, size_t len);

void vm_view_init(struct vm_view *vm, const char *domain);     /* every number unknown */
void vm_decision_init(struct vm_decision *d);                  /* no targets */
void node_decision_init(struct node_decision *d);
/* The room a share target keeps above what was in use when it was decided
 * (memnet: one mean job): share_floor_bytes − used; 0 without a floor. */
int64_t decision_share_margin(const struct vm_view *vm, const struct vm_decision *d);
/* printf into d->reason (keeps it one line). */
void decision_reason(struct vm_decision *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
