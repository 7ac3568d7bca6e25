/* `msrswap serve`: the provider.  Accepts NBD clients (a thread each),
 * answers the control socket (export add/rm/list, stats), and prints
 * statistics every --stats interval. */
#ifndef MSRSWAP_SERVE_H
#define MSRSWAP_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "control.h"
#include "error.h"
#include "jsonl.h"
#include "nbd_server.h"
#include "registry.h"
#include "tls.h"

struct export_spec {
	const char *name;
	uint64_t size;
};

struct serve_config {
	const char *listen;           /* HOST:PORT or unix:PATH */
	const char *control;          /* unix socket path for msrswap export/status */
	uint64_t capacity;            /* reservoir bytes, never over-committed */
	bool dedup, mlock;
	bool overcommit;              /* allow a capacity and exports beyond MemAvailable + SwapFree */
	struct export_spec *exports;  /* created at start */
	size_t export_count;
	uint64_t latency_ns;          /* added to every request */
	uint64_t busy_poll_ns;        /* poll this long for a client's next request before sleeping; 0 never */
	uint64_t stats_interval_ns;   /* 0: no periodic statistics */
	const char *metrics_addr;     /* --metrics ADDR:PORT; NULL: none */
	const char *tls_psk_file;     /* NULL: no TLS; else a PSK file (username:hexkey lines) */
	unsigned long max_connections; /* NBD clients at once; 0: default_max_connections() */
	const char *fabric_provider;  /* NULL: no one-sided RDMA; else exports are registered with this libfabric provider */
	struct jsonl_writer *out;
};

/* RLIMIT_NOFILE less the descriptors the server needs besides its clients. */
unsigned long default_max_connections(void);

int serve_run(const struct serve_config *cfg, volatile int *stop, struct ms_err *err);

/* The machinery both roles share: NBD clients (a thread each) on one
 * socket, JSON requests on a control socket, statistics every interval. */
struct server {
	struct registry registry;
	struct export_source source;
	struct nbd_server_options options;
	struct tls_psk *tls;       /* NULL: no TLS; else TLS with these keys is required */
	unsigned long connections; /* live, atomic */
	unsigned long max_connections; /* beyond it the listener is not polled: clients wait in its backlog */
	/* the role's own control commands ("list" and "stats" are common); NULL: unknown command */
	json_t *(*control)(struct server *s, const char *cmd, json_t *request);
	json_t *(*stats)(struct server *s); /* an array of records */
	void *ctx;
	const char *metrics_addr;  /* --metrics: serve those records as Prometheus metrics here; NULL: no */
};

int server_init(struct server *s, struct ram_pool *pool, uint64_t capacity, struct ms_err *err);
int server_run(struct server *s, const char *listen, const char *control, uint64_t stats_interval_ns,
	       struct jsonl_writer *out, volatile int *stop, struct ms_err *err);
json_t *control_reply_ok(void);
json_t *control_reply_error(const char *msg);


#endif
