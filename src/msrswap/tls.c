#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "nbd_server.h"

#define CORK_MAX 65536 /* replies up to this size leave in one TLS record run */

/* ---- one connection ---- */

void tls_stream_init(struct tls_stream *s, int fd, struct tls_psk *psk, unsigned handshake_timeout_ms)
{
	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->psk = psk;
	s->handshake_timeout_ms = handshake_timeout_ms;
}

int tls_stream_starttls(void *ctx, struct ms_err *err)
{
	struct tls_stream *s = ctx;
	if (tls_psk_session_new(s->psk, s->fd, 0, &s->peer, &s->session, err) < 0) {
		s->session = NULL;
		return -1;
	}
	gnutls_handshake_set_timeout(s->session, s->handshake_timeout_ms);
	int rc;
	do
		rc = gnutls_handshake(s->session);
	while (rc == GNUTLS_E_INTERRUPTED);
	/* GNUTLS_E_AGAIN on a blocking socket: its receive timeout expired */
	if (rc < 0) {
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_TIMEDOUT)
			gnutls_alert_send_appropriate(s->session, rc); /* tell the client why, as a TLS alert */
		return tls_psk_handshake_failed(&s->peer, s->session, rc, err);
	}
	s->up = true;
	return 0;
}

ssize_t tls_stream_read(void *ctx, void *buf, size_t len)
{
	struct tls_stream *s = ctx;
	if (!s->up)
		return nbd_fd_read(&s->fd, buf, len);
	ssize_t n = tls_psk_recv(s->session, &s->peer, buf, len);
	if (n < 0 && errno == EAGAIN)
		errno = ETIMEDOUT; /* the socket's receive timeout */
	return n;
}

ssize_t tls_stream_read_nowait(void *ctx, void *buf, size_t len)
{
	struct tls_stream *s = ctx;
	if (!s->up)
		return nbd_fd_read_nowait(&s->fd, buf, len);
	char byte;
	/* a record begun on the socket is read whole, however long that takes */
	if (gnutls_record_check_pending(s->session) == 0 && recv(s->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0)
		return -1; /* EAGAIN: nothing yet */
	return tls_stream_read(ctx, buf, len);
}

static int send_all(struct tls_stream *s, const char *p, size_t len)
{
	while (len) {
		ssize_t n = gnutls_record_send(s->session, p, len);
		if (n == GNUTLS_E_INTERRUPTED || n == GNUTLS_E_AGAIN)
			continue;
		if (n < 0) {
			snprintf(s->peer.failure, sizeof s->peer.failure, "%s", gnutls_strerror((int)n));
			errno = EPROTO;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

ssize_t tls_stream_writev(void *ctx, const struct iovec *iov, int count)
{
	struct tls_stream *s = ctx;
	if (!s->up)
		return nbd_fd_writev(&s->fd, iov, count);
	size_t total = 0;
	for (int i = 0; i < count; i++)
		total += iov[i].iov_len;
	/* a small reply in as few records as possible; a large one streams */
	bool cork = total <= CORK_MAX;
	if (cork)
		gnutls_record_cork(s->session);
	int rc = 0;
	for (int i = 0; i < count && rc == 0; i++)
		rc = send_all(s, iov[i].iov_base, iov[i].iov_len);
	if (cork) {
		int n = gnutls_record_uncork(s->session, GNUTLS_RECORD_WAIT);
		if (rc == 0 && n < 0) {
			snprintf(s->peer.failure, sizeof s->peer.failure, "%s", gnutls_strerror(n));
			errno = EPROTO;
			rc = -1;
		}
	}
	return rc < 0 ? -1 : (ssize_t)total;
}

void tls_stream_end(struct tls_stream *s)
{
	if (!s->session)
		return;
	if (s->up)
		gnutls_bye(s->session, GNUTLS_SHUT_WR); /* a client that went away is its own problem */
	gnutls_deinit(s->session);
	s->session = NULL;
	s->up = false;
}
