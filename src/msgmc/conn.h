/* One msgmc connection: a non-blocking socket that carries the protocol in
 * plain text or, with pre-shared keys, in TLS (tls_psk.h).  The TLS session
 * starts on connect: there is no plain-text phase to downgrade. */
#ifndef MSGMC_CONN_H
#define MSGMC_CONN_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "tls_psk.h"

struct conn {
	int fd;                /* -1: none */
	gnutls_session_t tls;  /* NULL: plain text */
	bool ready;            /* plain, or the TLS handshake is done */
	size_t send_retry;     /* TLS: a send GnuTLS must be given again, this long */
	struct tls_psk_peer peer;
};

/* fd (made non-blocking) becomes c's; psk NULL: plain text. */
int conn_open(struct conn *c, int fd, struct tls_psk *psk, struct ms_err *err);
/* Go on with the TLS handshake: 1 done, 0 not yet (wait for conn_events),
 * -1 failed (err says why; c->peer.failure too). */
int conn_handshake(struct conn *c, struct ms_err *err);
/* The poll events c waits for: POLLIN, with POLLOUT while a handshake or
 * output (have_output) waits to be written. */
short conn_events(const struct conn *c, bool have_output);
/* Bytes read (> 0), 0 at the end of the stream, -1 with errno (EAGAIN:
 * nothing yet; EPROTO: a TLS error, c->peer.failure says which). */
ssize_t conn_recv(struct conn *c, void *buf, size_t len);
/* Bytes written, or -1 with errno as conn_recv.  After EAGAIN the next call
 * must offer at least as many bytes, starting at the same one. */
ssize_t conn_send(struct conn *c, const void *buf, size_t len);
/* Bytes TLS has decrypted that conn_recv has not returned yet: poll does not see them. */
bool conn_pending(const struct conn *c);
/* Tell a TLS peer goodbye (if it listens), close the socket. */
void conn_close(struct conn *c);

/* A client's connection: connect to addr, with TLS when psk, and finish the
 * handshake within timeout_ms. */
int conn_connect(struct conn *c, const char *addr, struct tls_psk *psk, int timeout_ms, struct ms_err *err);
/* Write all of buf, waiting up to timeout_ms for room. */
int conn_send_all(struct conn *c, const void *buf, size_t len, int timeout_ms);
/* Wait until deadline_ns (monotonic_ns) for something to read: 1 yes, 0 no. */
int conn_wait_readable(struct conn *c, uint64_t deadline_ns);

#endif
