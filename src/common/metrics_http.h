/* --metrics ADDR:PORT of the daemons: GET /metrics answers the Prometheus
 * text the daemon last published (libmicrohttpd, on its own thread).  The
 * daemon renders its metrics in its own loop and publishes a copy, so the
 * HTTP thread never reads the daemon's state. */
#ifndef MS_METRICS_HTTP_H
#define MS_METRICS_HTTP_H

#include "error.h"
#include "promtext.h"

struct metrics_server;

/* Listen on ADDR ("127.0.0.1:9310", "[::1]:9310", ":9310": every address). */
struct metrics_server *metrics_server_start(const char *addr, struct ms_err *err);
/* The text the next scrapes get (copied). */
int metrics_server_publish(struct metrics_server *s, const struct prom_buf *text, struct ms_err *err);
/* The TCP port it listens on (useful with port 0). */
unsigned metrics_server_port(const struct metrics_server *s);
/* Scrapes answered so far. */
unsigned long metrics_server_scrapes(struct metrics_server *s);
void metrics_server_stop(struct metrics_server *s);

#endif
