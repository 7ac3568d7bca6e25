/* Sockets as msgmc uses them: which addresses count as local (no TLS
 * needed), and one request/reply exchange for the command line. */
#ifndef MSGMC_NET_H
#define MSGMC_NET_H

#include <jansson.h>
#include <stdbool.h>

#include "error.h"
#include "sockets.h" /* address_is_loopback */
#include "tls_psk.h"

/* The refusal of a plain-text address outside loopback (TLS-PSK is required there). */
int refuse_without_tls(const char *addr, const char *what, struct ms_err *err);

/* Send request (a message; stolen) to the controller (over TLS when psk)
 * and wait for its reply (timeout_ms), handed over in *reply. */
int gmc_call(const char *gmc, struct tls_psk *psk, json_t *request, int timeout_ms, json_t **reply,
	     struct ms_err *err);

#endif
