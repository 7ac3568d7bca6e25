/* TLS with pre-shared keys (GnuTLS), as msrswap's NBD server and msgmc's
 * protocol use it: the key file, the credentials of either side, and one
 * connection's session.
 *
 * The key file is the one other tools read (nbdkit --tls-psk, QEMU's
 * tls-creds-psk keys.psk, made by psktool): one "username:hexkey" line per
 * identity.  A server checks it at start and reads it again at every
 * handshake, so keys can be added or revoked without a restart; a client
 * takes one identity from it (the one named, else the first line). */
#ifndef MEMSHARE_TLS_PSK_H
#define MEMSHARE_TLS_PSK_H

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

struct tls_psk;

/* The server side: check the key file (readable, at least one well-formed
 * line) and set up the credentials.  A file others may read is reported by
 * *warning (a static string, NULL if none). */
int tls_psk_server_open(const char *path, struct tls_psk **out, const char **warning, struct ms_err *err);
/* The client side: username's key from the file (NULL: the first line's). */
int tls_psk_client_open(const char *path, const char *username, struct tls_psk **out, const char **warning,
			struct ms_err *err);
void tls_psk_close(struct tls_psk *psk);
/* The client's identity (NULL on a server). */
const char *tls_psk_username(const struct tls_psk *psk);

#define TLS_USERNAME_MAX 256

/* What one handshake learnt, for the log: the peer's PSK identity and, when
 * it failed, why.  A session's user pointer points at it. */
struct tls_psk_peer {
	struct tls_psk *psk;
	char username[TLS_USERNAME_MAX + 1]; /* printable characters only; "" until known */
	char failure[160];                   /* "" unless the handshake failed */
};

/* A session on fd for psk's side (server or client), with peer as its user
 * pointer.  flags are added to gnutls_init's (GNUTLS_NONBLOCK, say). */
int tls_psk_session_new(struct tls_psk *psk, int fd, unsigned flags, struct tls_psk_peer *peer,
			gnutls_session_t *out, struct ms_err *err);
/* A failed handshake (rc from gnutls_handshake on session, which may be
 * NULL): peer->failure filled in if it was not, and err = "TLS handshake
 * failed: <why>". */
int tls_psk_handshake_failed(struct tls_psk_peer *peer, gnutls_session_t session, int rc, struct ms_err *err);
/* gnutls_record_recv as read(2) does it: bytes, 0 at the end (with or
 * without close_notify), -1 with errno EAGAIN (nothing yet, or a blocking
 * socket's receive timeout) or EPROTO (peer->failure says why). */
ssize_t tls_psk_recv(gnutls_session_t session, struct tls_psk_peer *peer, void *buf, size_t len);
/* Whether bytes a plain-text reader got are a TLS record (the other side
 * speaks TLS): its error can then say so. */
bool tls_psk_looks_like_tls(const void *data, size_t len);

#endif
