#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "nbd_server.h"

/* What QEMU and libnbd offer for PSK: TLS 1.3 and 1.2 with (EC)DHE-PSK or plain PSK. */
#define TLS_PRIORITY "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"
#define KEY_MAX 512            /* bytes of one key (psktool makes 32) */
#define KEY_FILE_MAX (1 << 20) /* a larger "key file" is a mistake */
#define CORK_MAX 65536         /* replies up to this size leave in one TLS record run */

struct tls_psk {
	char *path;
	gnutls_psk_server_credentials_t cred;
	gnutls_priority_t priority;
};

/* ---- the key file ---- */

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* "username:hexkey" (trailing blanks ignored): the key's length in bytes, -1 if malformed. */
static int parse_key_line(const char *line, size_t len, size_t *name_len, unsigned char key[KEY_MAX])
{
	const char *colon = memchr(line, ':', len);
	if (!colon || colon == line)
		return -1;
	*name_len = (size_t)(colon - line);
	const char *hex = colon + 1;
	size_t hex_len = len - *name_len - 1;
	while (hex_len && isspace((unsigned char)hex[hex_len - 1]))
		hex_len--;
	if (hex_len == 0 || hex_len % 2 || hex_len / 2 > KEY_MAX)
		return -1;
	for (size_t i = 0; i < hex_len / 2; i++) {
		int hi = hex_digit((unsigned char)hex[2 * i]), lo = hex_digit((unsigned char)hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		key[i] = (unsigned char)(hi << 4 | lo);
	}
	return (int)(hex_len / 2);
}

static char *read_small_file(const char *path, size_t *len, struct ms_err *err)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		ms_fail_errno(err, "%s", path);
		return NULL;
	}
	char *text = malloc(KEY_FILE_MAX + 1);
	size_t n = text ? fread(text, 1, KEY_FILE_MAX + 1, f) : 0;
	bool bad = ferror(f);
	fclose(f);
	if (!text || bad || n > KEY_FILE_MAX) {
		free(text);
		ms_fail(err, "%s: %s", path, !text ? "out of memory" : bad ? "cannot read it" : "too large for a key file");
		return NULL;
	}
	text[n] = '\0';
	*len = n;
	return text;
}

/* Go through the key file: count its keys (*count), and when user is given
 * copy that user's key (*key_len: its length, 0 when there is none). */
static int read_keys(const char *path, const char *user, unsigned char key[KEY_MAX], int *key_len, size_t *count,
		     struct ms_err *err)
{
	size_t size, keys = 0;
	char *text = read_small_file(path, &size, err);
	if (!text)
		return -1;
	int rc = 0, found = 0;
	unsigned lineno = 0;
	unsigned char k[KEY_MAX];
	for (char *line = text; line < text + size && rc == 0; lineno++) {
		char *end = memchr(line, '\n', (size_t)(text + size - line));
		size_t len = end ? (size_t)(end - line) : (size_t)(text + size - line);
		char *next = line + len + 1;
		while (len && isspace((unsigned char)line[len - 1]))
			len--;
		if (len && line[0] != '#') {
			size_t name_len;
			int n = parse_key_line(line, len, &name_len, k);
			if (n < 0)
				rc = ms_fail(err, "%s line %u: expected username:hexkey (as psktool writes)", path, lineno + 1);
			keys++;
			if (n > 0 && user && !found && strlen(user) == name_len && memcmp(user, line, name_len) == 0) {
				memcpy(key, k, (size_t)n);
				found = n;
			}
		}
		line = next;
	}
	explicit_bzero(k, sizeof k);
	explicit_bzero(text, size);
	free(text);
	if (key_len)
		*key_len = found;
	if (count)
		*count = keys;
	return rc;
}

/* A client's username in a log line: printable characters only. */
static void printable_copy(char *dst, size_t dst_len, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < dst_len; i++)
		dst[i] = isprint((unsigned char)src[i]) ? src[i] : '?';
	dst[i] = '\0';
}

/* GnuTLS asks for the key of the username the client presented. */
static int lookup_key(gnutls_session_t session, const char *username, gnutls_datum_t *key)
{
	struct tls_stream *s = gnutls_session_get_ptr(session);
	unsigned char k[KEY_MAX];
	int n = 0;
	struct ms_err err;
	printable_copy(s->username, sizeof s->username, username);
	if (read_keys(s->psk->path, username, k, &n, NULL, &err) < 0) {
		snprintf(s->failure, sizeof s->failure, "%s", err.msg);
		return -1;
	}
	if (n == 0) {
		snprintf(s->failure, sizeof s->failure, "unknown PSK username '%.64s'", s->username);
		return -1;
	}
	if (!(key->data = gnutls_malloc((size_t)n)))
		return -1;
	memcpy(key->data, k, (size_t)n);
	key->size = (unsigned)n;
	explicit_bzero(k, sizeof k);
	return 0;
}

int tls_psk_open(const char *path, struct tls_psk **out, const char **warning, struct ms_err *err)
{
	size_t count;
	struct stat st;
	*warning = NULL;
	if (read_keys(path, NULL, NULL, NULL, &count, err) < 0)
		return -1;
	if (count == 0)
		return ms_fail(err, "%s: no keys in it (expected username:hexkey lines, as psktool writes)", path);
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		*warning = "others than its owner may read it (chmod 600)";
	struct tls_psk *psk = calloc(1, sizeof *psk);
	if (!psk || !(psk->path = strdup(path))) {
		free(psk);
		return ms_fail(err, "out of memory");
	}
	int rc = gnutls_psk_allocate_server_credentials(&psk->cred);
	if (rc == 0)
		rc = gnutls_psk_set_server_known_dh_params(psk->cred, GNUTLS_SEC_PARAM_MEDIUM); /* for DHE-PSK */
	if (rc == 0)
		rc = gnutls_priority_init(&psk->priority, TLS_PRIORITY, NULL);
	if (rc < 0) {
		ms_fail(err, "GnuTLS: %s", gnutls_strerror(rc));
		tls_psk_close(psk);
		return -1;
	}
	gnutls_psk_set_server_credentials_function(psk->cred, lookup_key);
	*out = psk;
	return 0;
}

void tls_psk_close(struct tls_psk *psk)
{
	if (!psk)
		return;
	if (psk->cred)
		gnutls_psk_free_server_credentials(psk->cred);
	if (psk->priority)
		gnutls_priority_deinit(psk->priority);
	free(psk->path);
	free(psk);
}

/* ---- one connection ---- */

void tls_stream_init(struct tls_stream *s, int fd, struct tls_psk *psk, unsigned handshake_timeout_ms)
{
	memset(s, 0, sizeof *s);
	s->fd = fd;
	s->psk = psk;
	s->handshake_timeout_ms = handshake_timeout_ms;
}

static int handshake_failed(struct tls_stream *s, int rc, struct ms_err *err)
{
	if (!*s->failure) {
		/* GnuTLS says "decryption has failed" or "MAC verification failed" when the keys differ */
		bool key_mismatch = rc == GNUTLS_E_DECRYPTION_FAILED || rc == GNUTLS_E_KEY_USAGE_VIOLATION ||
				    rc == GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER || rc == GNUTLS_E_INSUFFICIENT_CREDENTIALS;
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_TIMEDOUT)
			snprintf(s->failure, sizeof s->failure, "the client did not complete it in time");
		else if (key_mismatch && *s->username)
			snprintf(s->failure, sizeof s->failure, "%s (wrong key for PSK username '%.64s'?)", gnutls_strerror(rc),
				 s->username);
		else
			snprintf(s->failure, sizeof s->failure, "%s", gnutls_strerror(rc));
	}
	return ms_fail(err, "TLS handshake failed: %s", s->failure);
}

int tls_stream_starttls(void *ctx, struct ms_err *err)
{
	struct tls_stream *s = ctx;
	int rc = gnutls_init(&s->session, GNUTLS_SERVER | GNUTLS_NO_SIGNAL);
	if (rc < 0) {
		s->session = NULL;
		return handshake_failed(s, rc, err);
	}
	gnutls_session_set_ptr(s->session, s);
	if ((rc = gnutls_priority_set(s->session, s->psk->priority)) < 0 ||
	    (rc = gnutls_credentials_set(s->session, GNUTLS_CRD_PSK, s->psk->cred)) < 0)
		return handshake_failed(s, rc, err);
	gnutls_transport_set_int(s->session, s->fd);
	gnutls_handshake_set_timeout(s->session, s->handshake_timeout_ms);
	do
		rc = gnutls_handshake(s->session);
	while (rc == GNUTLS_E_INTERRUPTED);
	/* GNUTLS_E_AGAIN on a blocking socket: its receive timeout expired */
	if (rc < 0) {
		if (rc != GNUTLS_E_AGAIN && rc != GNUTLS_E_TIMEDOUT)
			gnutls_alert_send_appropriate(s->session, rc); /* tell the client why, as a TLS alert */
		return handshake_failed(s, rc, err);
	}
	s->up = true;
	return 0;
}

ssize_t tls_stream_read(void *ctx, void *buf, size_t len)
{
	struct tls_stream *s = ctx;
	if (!s->up)
		return nbd_fd_read(&s->fd, buf, len);
	for (;;) {
		ssize_t n = gnutls_record_recv(s->session, buf, len);
		if (n >= 0)
			return n;
		if (n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n == GNUTLS_E_PREMATURE_TERMINATION)
			return 0; /* closed without close_notify: as a plain socket closes */
		if (n == GNUTLS_E_AGAIN) {
			errno = ETIMEDOUT; /* the socket's receive timeout */
			return -1;
		}
		snprintf(s->failure, sizeof s->failure, "%s", gnutls_strerror((int)n));
		errno = EPROTO;
		return -1;
	}
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
			snprintf(s->failure, sizeof s->failure, "%s", gnutls_strerror((int)n));
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
			snprintf(s->failure, sizeof s->failure, "%s", gnutls_strerror(n));
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
