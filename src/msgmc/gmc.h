/* The global memory controller (GMC, vMCA's MM-M) without its sockets:
 * nodes and their states, reservoirs, leases and the operations in flight.
 * The server feeds it lines from peers and sends what it asks through
 * struct gmc_io, so the unit tests drive it with fake peers. */
#ifndef MSGMC_GMC_H
#define MSGMC_GMC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "gmc_policy.h"
#include "state.h"

struct gmc_peer; /* a connection, owned by the server */

/* An alloc whose provider cannot create the export (msrswap serve down, the
 * agent at its lease limit) is placed again on the policy's next choice,
 * leaving out at most this many providers that refused it (msgmc(1)). */
#define GMC_ALLOC_REFUSALS_MAX 8

struct gmc_io {
	void *ctx;
	/* Queue msg (stolen) for the peer; never fails visibly: a peer that cannot
	 * take it is dropped later by the server. */
	void (*send)(void *ctx, struct gmc_peer *peer, json_t *msg);
	/* Optional: a word stored with the peer for the controller's use (it
	 * keeps the peer's node there, so that a message finds its node in
	 * constant time); NULL: the controller searches. */
	size_t *(*slot)(void *ctx, struct gmc_peer *peer);
	/* true: the io holds back every message it was given until gmc_commit
	 * has returned (group commit: one journal sync per round of the event
	 * loop); false: the journal is synced before each send. */
	bool group_commit;
};

struct gmc_config {
	const struct gmc_policy *policy;
	struct gmc_params params;
	struct state *state;      /* the backend, loaded by gmc_new (not owned); NULL: leases live in memory only */
	uint64_t node_timeout_ns; /* a node with leases away this long is failed (Recovery) */
	uint64_t reply_timeout_ns;
	uint64_t attach_timeout_ns; /* a consumer's attach (longer: it may make and hot-plug a device) */
};

enum gmc_node_state { NODE_INACTIVE, NODE_ACTIVE, NODE_LEAVING, NODE_RECOVERY };
const char *gmc_node_state_name(enum gmc_node_state s);

struct gmc;

int gmc_new(const struct gmc_config *cfg, const struct gmc_io *io, struct gmc **out, struct ms_err *err);
void gmc_free(struct gmc *g);
/* One line from a peer. -1 (with err) when the peer must be dropped: the
 * message was garbage; the controller's state is untouched then. */
int gmc_receive(struct gmc *g, struct gmc_peer *from, const char *line, size_t len, uint64_t now_ns, struct ms_err *err);
/* The peer's connection closed: its node becomes unreachable, requests in
 * flight to it fail. */
void gmc_peer_gone(struct gmc *g, struct gmc_peer *peer, uint64_t now_ns);
/* Timers: replies that never came, nodes away too long. */
void gmc_tick(struct gmc *g, uint64_t now_ns);
/* Make the records written so far durable (with io.group_commit, before
 * the messages queued since leave).  -1: they are not, and the messages
 * held for them must never leave (etcd: this controller was deposed). */
int gmc_commit(struct gmc *g, struct ms_err *err);
/* Records written and not yet made durable: messages must wait. */
bool gmc_commit_pending(const struct gmc *g);

/* For tests and the benchmark. */
size_t gmc_lease_count(const struct gmc *g);
size_t gmc_node_count(const struct gmc *g);
json_t *gmc_status_record(const struct gmc *g);
json_t *gmc_node_records(const struct gmc *g);
json_t *gmc_lease_records(const struct gmc *g);

#endif
