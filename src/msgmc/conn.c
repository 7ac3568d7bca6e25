#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockets.h"
#include "units.h"

/* One TLS record's payload: what a send offers GnuTLS at a time. */
#define RECORD_MAX 16384

int conn_open(struct conn *c, int fd, struct tls_psk *psk, struct ms_err *err)
{
	memset(c, 0, sizeof *c);
	c->fd = fd;
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return ms_fail_errno(err, "socket");
	if (!psk) {
		c->ready = true;
		return 0;
	}
	if (tls_psk_session_new(psk, fd, GNUTLS_NONBLOCK, &c->peer, &c->tls, err) < 0) {
		c->tls = NULL;
		return -1;
	}
	return 0;
}

int conn_handshake(struct conn *c, struct ms_err *err)
{
	if (c->ready)
		return 1;
	int rc;
	do
		rc = gnutls_handshake(c->tls);
	while (rc == GNUTLS_E_INTERRUPTED);
	if (rc == GNUTLS_E_AGAIN)
		return 0;
	if (rc < 0) {
		if (rc != GNUTLS_E_TIMEDOUT)
			gnutls_alert_send_appropriate(c->tls, rc); /* tell the peer why, as a TLS alert */
		return tls_psk_handshake_failed(&c->peer, c->tls, rc, err);
	}
	c->ready = true;
	return 1;
}

short conn_events(const struct conn *c, bool have_output)
{
	if (!c->ready)
		return gnutls_record_get_direction(c->tls) ? POLLOUT : POLLIN;
	return (short)(POLLIN | (have_output || c->send_retry ? POLLOUT : 0));
}

ssize_t conn_recv(struct conn *c, void *buf, size_t len)
{
	if (!c->tls)
		for (;;) {
			ssize_t r = recv(c->fd, buf, len, 0);
			if (r >= 0 || errno != EINTR)
				return r;
		}
	if (!c->ready) {
		errno = EAGAIN;
		return -1;
	}
	return tls_psk_recv(c->tls, &c->peer, buf, len);
}

ssize_t conn_send(struct conn *c, const void *buf, size_t len)
{
	if (!c->tls)
		for (;;) {
			ssize_t w = send(c->fd, buf, len, MSG_NOSIGNAL);
			if (w >= 0 || errno != EINTR)
				return w;
		}
	if (!c->ready) {
		errno = EAGAIN;
		return -1;
	}
	/* GnuTLS wants a send it could not finish repeated with the same bytes */
	size_t n = c->send_retry ? c->send_retry : len < RECORD_MAX ? len : RECORD_MAX;
	for (;;) {
		ssize_t w = gnutls_record_send(c->tls, buf, n);
		if (w == GNUTLS_E_INTERRUPTED)
			continue;
		if (w == GNUTLS_E_AGAIN) {
			c->send_retry = n;
			errno = EAGAIN;
			return -1;
		}
		c->send_retry = 0;
		if (w >= 0)
			return w;
		snprintf(c->peer.failure, sizeof c->peer.failure, "%s", gnutls_strerror((int)w));
		errno = EPROTO;
		return -1;
	}
}

bool conn_pending(const struct conn *c)
{
	return c->tls && c->ready && gnutls_record_check_pending(c->tls) > 0;
}

void conn_close(struct conn *c)
{
	if (c->tls) {
		if (c->ready)
			gnutls_bye(c->tls, GNUTLS_SHUT_WR); /* non-blocking: a peer that does not read misses it */
		gnutls_deinit(c->tls);
		c->tls = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->ready = false;
}

/* Milliseconds left until deadline (ns), 0 when it passed. */
static int ms_left(uint64_t deadline)
{
	uint64_t now = monotonic_ns();
	return now >= deadline ? 0 : (int)((deadline - now + NS_PER_MS - 1) / NS_PER_MS);
}

static int wait_for(struct conn *c, short events, uint64_t deadline)
{
	struct pollfd p = {c->fd, events, 0};
	int left;
	while ((left = ms_left(deadline)) > 0) {
		int n = poll(&p, 1, left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

int conn_connect(struct conn *c, const char *addr, struct tls_psk *psk, int timeout_ms, struct ms_err *err)
{
	c->fd = -1;
	int fd = connect_to(addr, err);
	if (fd < 0)
		return -1;
	if (conn_open(c, fd, psk, err) < 0) {
		conn_close(c);
		return -1;
	}
	uint64_t deadline = monotonic_ns() + (uint64_t)timeout_ms * NS_PER_MS;
	int rc;
	while ((rc = conn_handshake(c, err)) == 0) {
		if (wait_for(c, conn_events(c, false), deadline) <= 0) {
			rc = ms_fail(err, "TLS handshake failed: no answer within %d ms", timeout_ms);
			break;
		}
	}
	if (rc < 0) {
		conn_close(c);
		return -1;
	}
	return 0;
}

int conn_send_all(struct conn *c, const void *buf, size_t len, int timeout_ms)
{
	const char *p = buf;
	uint64_t deadline = monotonic_ns() + (uint64_t)timeout_ms * NS_PER_MS;
	while (len) {
		ssize_t w = conn_send(c, p, len);
		if (w < 0 && errno == EAGAIN) {
			if (wait_for(c, POLLOUT, deadline) <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			continue;
		}
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int conn_wait_readable(struct conn *c, uint64_t deadline_ns)
{
	return conn_pending(c) || wait_for(c, POLLIN, deadline_ns) > 0;
}
