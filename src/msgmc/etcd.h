/* A small client of etcd v3's JSON gateway (/v3/, etcd 3.4) on libcurl: one
 * handle whose connections are kept alive, a short timeout per request and
 * the next endpoint after a failure.  Keys and values travel in base64 and
 * int64 fields come back as JSON strings (etcd_int reads both).
 * A request that timed out may have been applied: callers only send
 * requests that are safe to repeat (guarded txns, puts of whole values). */
#ifndef MSGMC_ETCD_H
#define MSGMC_ETCD_H

#include <jansson.h>
#include <stdint.h>

#include "error.h"

/* One try on one endpoint gives up after this long (etcd without a
 * leader lets a request hang: the next member may have one). */
#define ETCD_REQUEST_TIMEOUT_MS 700

struct etcd {
	void *curl; /* CURL * */
	void *headers;
	char **endpoints; /* "http://HOST:PORT" */
	size_t endpoint_count, current;
	char *body;
	size_t body_len, body_cap;
};

/* hosts: "HOST:PORT[,HOST:PORT...]". */
int etcd_open(struct etcd *e, const char *hosts, struct ms_err *err);
void etcd_close(struct etcd *e);
/* POST request (stolen) to /v3/PATH; tries the endpoints in turn until
 * deadline_ns (monotonic).  The parsed answer in *answer.  etcd's refusals
 * that another member would repeat (invalid argument, not found, failed
 * precondition) are not tried again: -1, err says which. */
int etcd_post(struct etcd *e, const char *path, json_t *request, uint64_t deadline_ns, json_t **answer,
	      struct ms_err *err);
/* The endpoint the last request went to. */
const char *etcd_endpoint(const struct etcd *e);

/* base64 of n bytes of s, as a JSON string (NULL: out of memory). */
json_t *etcd_b64(const char *s, size_t n);
json_t *etcd_b64_str(const char *s);
/* A base64 field decoded (malloc'd, NUL-terminated), NULL when absent or not base64. */
char *etcd_unb64(json_t *v);
/* An int64 field: a JSON string of digits or an integer; absent: 0. */
int64_t etcd_int(json_t *obj, const char *key);
/* The key just past every key that starts with prefix (a range_end). */
json_t *etcd_prefix_end(const char *prefix);

#endif
