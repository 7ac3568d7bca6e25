/* `msgmc agent`: the per-host side (LMC, vMCA's slave MM).  Registers with
 * the controller, informs it of the host's reservoir (from msballoon's
 * records on stdin and msrswap's pool), and executes its orders on the local
 * msrswap daemons through their control sockets. */
#ifndef MSGMC_AGENT_H
#define MSGMC_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "jsonl.h"
#include "tls_psk.h"

struct agent_config {
	const char *gmc;            /* ADDR:PORT[,ADDR:PORT...]: the controllers, tried in turn */
	struct tls_psk *tls;        /* the controller is reached over TLS with this key (NULL: plain text) */
	const char *tls_psk_file;   /* its file (an absolute path): nbds:// leases are opened with it too */
	const char *node;
	const char *location;       /* NULL: unknown */
	const char *rswap_control;  /* msrswap serve's control socket: this host provides (NULL: it does not) */
	const char *client_control; /* msrswap client's control socket: this host consumes (NULL: no attach) */
	const char *address;        /* the NBD address consumers use for our exports (NULL: ours toward the GMC, port 10809) */
	const char *domain;         /* the domain of shortfalls, and of grant_any records naming none (NULL: the node name) */
	uint64_t attach_size;       /* a lease for a domain without a device makes one this large (0: it fails) */
	const char *hypervisor;     /* the domains' URI for msrswap attach (NULL or cgroup:///: host swap) */
	uint64_t interval_ns;       /* inform period */
	uint64_t backoff_max_ns;
	int read_stdin;
	int invalidate; /* the host restarted uncleanly: ask the controller to drop its pages everywhere */
	bool fabric;    /* --fabric: offer (provider) and use (consumer) fabric:// URIs beside the NBD one */
	struct jsonl_writer *out;
	const char *metrics;        /* --metrics ADDR:PORT: Prometheus metrics there; NULL: none */
};

int agent_run(const struct agent_config *cfg, volatile int *stop, struct ms_err *err);

#endif
