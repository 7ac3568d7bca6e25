/* `msgmc serve`: the controller's sockets (epoll, one thread) around the
 * state machine of gmc.c. */
#ifndef MSGMC_SERVER_H
#define MSGMC_SERVER_H

#include "error.h"
#include "gmc.h"
#include "tls_psk.h"

struct server_config {
	const char *listen;
	struct tls_psk *tls; /* every peer must use TLS with these keys (NULL: plain text) */
	const char *state;     /* --state: a journal file or etcd://...; NULL: memory only */
	const char *advertise; /* the address standbys send clients to when this one leads */
	const char *metrics;   /* --metrics ADDR:PORT: Prometheus metrics there; NULL: none */
	struct gmc_config gmc; /* .state is set by the server */
};

int gmc_server_run(const struct server_config *cfg, volatile int *stop, struct ms_err *err);

#endif
