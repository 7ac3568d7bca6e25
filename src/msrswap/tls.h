/* TLS with pre-shared keys for the NBD server (GnuTLS): the keys of a PSK
 * file, and one connection's byte stream, which is the plain socket until
 * NBD_OPT_STARTTLS upgrades it to a TLS session.
 *
 * The key file is the one other NBD tools read (nbdkit --tls-psk, QEMU's
 * tls-creds-psk keys.psk, made by psktool): one "username:hexkey" line per
 * client.  It is checked at start and read again at every handshake, so
 * keys can be added or revoked without a restart. */
#ifndef MSRSWAP_TLS_H
#define MSRSWAP_TLS_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "error.h"

struct tls_psk;

/* Check the key file (readable, at least one well-formed line) and set up
 * the server credentials.  A file others may read is reported by *warning
 * (a static string, NULL if none). */
int tls_psk_open(const char *path, struct tls_psk **out, const char **warning, struct ms_err *err);
void tls_psk_close(struct tls_psk *psk);

#define TLS_USERNAME_MAX 256

/* One connection: fd, plain or TLS. */
struct tls_stream {
	int fd;
	struct tls_psk *psk;         /* NULL: the server has no TLS */
	gnutls_session_t session;    /* NULL until STARTTLS */
	bool up;                     /* the handshake succeeded: I/O goes through session */
	unsigned handshake_timeout_ms;
	char username[TLS_USERNAME_MAX + 1]; /* the client's PSK identity, once known */
	char failure[160];           /* why TLS failed, for the log ("" if it did not) */
};

void tls_stream_init(struct tls_stream *s, int fd, struct tls_psk *psk, unsigned handshake_timeout_ms);
/* The nbd_io operations (ctx: the stream).  starttls runs the server side of
 * the TLS handshake; afterwards read and writev go through the session.  It
 * returns -1 with err (and s->failure) when the handshake fails. */
int tls_stream_starttls(void *ctx, struct ms_err *err);
ssize_t tls_stream_read(void *ctx, void *buf, size_t len);
ssize_t tls_stream_read_nowait(void *ctx, void *buf, size_t len);
ssize_t tls_stream_writev(void *ctx, const struct iovec *iov, int count);
/* End the TLS session if there is one (close_notify), free it; the fd stays open. */
void tls_stream_end(struct tls_stream *s);

#endif
