/* The control sockets of memshare's daemons (msrswap serve and client):
 * one JSON request line, one JSON reply line {"ok":true,"records":[...]} or
 * {"ok":false,"error":"..."}. */
#ifndef MS_CONTROL_H
#define MS_CONTROL_H

#include <jansson.h>

#include "error.h"
#include "jsonl.h"

/* Send request to the daemon's control socket (a path); write the reply's
 * records to out (NULL: discard).  A refusal is an input error with the
 * daemon's message. */
int control_request(const char *control, json_t *request, struct jsonl_writer *out, struct ms_err *err);
/* The same, handing the reply's records (an array, a new reference) to the
 * caller instead; records may be NULL. */
int control_call(const char *control, json_t *request, json_t **records, struct ms_err *err);

#endif
