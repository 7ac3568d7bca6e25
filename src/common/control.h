/* The control sockets of memshare's daemons (msrswap serve and client):
 * one JSON request line, one JSON reply line {"ok":true,"records":[...]} or
 * {"ok":false,"error":"..."}. */
#ifndef MS_CONTROL_H
#define MS_CONTROL_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"
#include "jsonl.h"

/* How long a call waits for the daemon (connect, send, reply) unless a tool
 * sets it (--timeout): a stopped daemon must not hang its callers. */
#define CONTROL_DEFAULT_TIMEOUT_NS (10ULL * 1000000000ULL)

/* Set the deadline of every later call (0: the default). */
void control_set_timeout(uint64_t timeout_ns);

/* Send request to the daemon's control socket (a path); write the reply's
 * records to out (NULL: discard).  A refusal is an input error with the
 * daemon's message.  A daemon that does not answer within the timeout is a
 * failure naming its socket. */
int control_request(const char *control, json_t *request, struct jsonl_writer *out, struct ms_err *err);
/* The same, handing the reply's records (an array, a new reference) to the
 * caller instead; records may be NULL. */
int control_call(const char *control, json_t *request, json_t **records, struct ms_err *err);

#endif
