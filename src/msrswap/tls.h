/* TLS with pre-shared keys for the NBD server: one connection's byte
 * stream, which is the plain socket until NBD_OPT_STARTTLS upgrades it to a
 * TLS session (the keys and sessions: tls_psk.h). */
#ifndef MSRSWAP_TLS_H
#define MSRSWAP_TLS_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "error.h"
#include "tls_psk.h"

/* One connection: fd, plain or TLS. */
struct tls_stream {
	int fd;
	struct tls_psk *psk;         /* NULL: the server has no TLS */
	gnutls_session_t session;    /* NULL until STARTTLS */
	bool up;                     /* the handshake succeeded: I/O goes through session */
	unsigned handshake_timeout_ms;
	struct tls_psk_peer peer;    /* the client's PSK identity, once known; why TLS failed ("" if it did not) */
};

void tls_stream_init(struct tls_stream *s, int fd, struct tls_psk *psk, unsigned handshake_timeout_ms);
/* The nbd_io operations (ctx: the stream).  starttls runs the server side of
 * the TLS handshake; afterwards read and writev go through the session.  It
 * returns -1 with err (and s->peer.failure) when the handshake fails. */
int tls_stream_starttls(void *ctx, struct ms_err *err);
ssize_t tls_stream_read(void *ctx, void *buf, size_t len);
ssize_t tls_stream_read_nowait(void *ctx, void *buf, size_t len);
ssize_t tls_stream_writev(void *ctx, const struct iovec *iov, int count);
/* End the TLS session if there is one (close_notify), free it; the fd stays open. */
void tls_stream_end(struct tls_stream *s);

#endif
