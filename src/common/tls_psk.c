#include "tls_psk.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* What QEMU and libnbd offer for PSK: TLS 1.3 and 1.2 with (EC)DHE-PSK or plain PSK. */
#define TLS_PRIORITY "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK"
#define KEY_MAX 512            /* bytes of one key (psktool makes 32) */
#define KEY_FILE_MAX (1 << 20) /* a larger "key file" is a mistake */

struct tls_psk {
	char *path;
	bool server;
	gnutls_psk_server_credentials_t server_cred;
	gnutls_psk_client_credentials_t client_cred;
	char username[TLS_USERNAME_MAX + 1]; /* the client's identity */
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
	if (!colon || colon == line || (size_t)(colon - line) > TLS_USERNAME_MAX)
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

/* What one pass over the key file looks for and finds. */
struct key_search {
	const char *user;                    /* this identity's key; NULL: the first line's */
	char name[TLS_USERNAME_MAX + 1];     /* the identity found */
	unsigned char key[KEY_MAX];
	int key_len;                         /* 0: not found */
	size_t count;                        /* keys in the file */
};

/* Go through the key file: count its keys and copy the one searched for. */
static int read_keys(const char *path, struct key_search *ks, struct ms_err *err)
{
	size_t size;
	char *text = read_small_file(path, &size, err);
	if (!text)
		return -1;
	int rc = 0;
	unsigned lineno = 0;
	unsigned char k[KEY_MAX];
	ks->key_len = 0;
	ks->count = 0;
	for (char *line = text; line < text + size && rc == 0; lineno++) {
		char *end = memchr(line, '\n', (size_t)(text + size - line));
		size_t len = end ? (size_t)(end - line) : (size_t)(text + size - line);
		char *next = line + len + 1;
		while (len && isspace((unsigned char)line[len - 1]))
			len--;
		if (len && line[0] != '#') {
			size_t name_len = 0;
			int n = parse_key_line(line, len, &name_len, k);
			if (n < 0)
				rc = ms_fail(err, "%s line %u: expected username:hexkey (as psktool writes)", path, lineno + 1);
			ks->count++;
			bool wanted = n > 0 && (!ks->user || (strlen(ks->user) == name_len && memcmp(ks->user, line, name_len) == 0));
			if (wanted && !ks->key_len) {
				memcpy(ks->key, k, (size_t)n);
				memcpy(ks->name, line, name_len);
				ks->name[name_len] = '\0';
				ks->key_len = n;
			}
		}
		line = next;
	}
	explicit_bzero(k, sizeof k);
	explicit_bzero(text, size);
	free(text);
	return rc;
}

/* A username in a log line: printable characters only. */
static void printable_copy(char *dst, size_t dst_len, const char *src)
{
	size_t i = 0;
	for (; src[i] && i + 1 < dst_len; i++)
		dst[i] = isprint((unsigned char)src[i]) ? src[i] : '?';
	dst[i] = '\0';
}

/* GnuTLS asks a server for the key of the username the client presented. */
static int lookup_key(gnutls_session_t session, const char *username, gnutls_datum_t *key)
{
	struct tls_psk_peer *peer = gnutls_session_get_ptr(session);
	struct key_search ks = {.user = username};
	struct ms_err err;
	int rc = -1;
	printable_copy(peer->username, sizeof peer->username, username);
	if (read_keys(peer->psk->path, &ks, &err) < 0)
		snprintf(peer->failure, sizeof peer->failure, "%s", err.msg);
	else if (ks.key_len == 0)
		snprintf(peer->failure, sizeof peer->failure, "unknown PSK username '%.64s'", peer->username);
	else if ((key->data = gnutls_malloc((size_t)ks.key_len))) {
		memcpy(key->data, ks.key, (size_t)ks.key_len);
		key->size = (unsigned)ks.key_len;
		rc = 0;
	}
	explicit_bzero(ks.key, sizeof ks.key);
	return rc;
}

/* The checks and parts both sides share; ks holds what the file gave. */
static int psk_new(const char *path, bool server, struct key_search *ks, struct tls_psk **out, const char **warning,
		   struct ms_err *err)
{
	struct stat st;
	*warning = NULL;
	if (read_keys(path, ks, err) < 0)
		return -1;
	if (ks->count == 0)
		return ms_fail(err, "%s: no keys in it (expected username:hexkey lines, as psktool writes)", path);
	if (stat(path, &st) == 0 && (st.st_mode & 077))
		*warning = "others than its owner may read it (chmod 600)";
	struct tls_psk *psk = calloc(1, sizeof *psk);
	if (!psk || !(psk->path = strdup(path))) {
		free(psk);
		return ms_fail(err, "out of memory");
	}
	psk->server = server;
	int rc = gnutls_priority_init(&psk->priority, TLS_PRIORITY, NULL);
	if (rc < 0) {
		tls_psk_close(psk);
		return ms_fail(err, "GnuTLS: %s", gnutls_strerror(rc));
	}
	*out = psk;
	return 0;
}

int tls_psk_server_open(const char *path, struct tls_psk **out, const char **warning, struct ms_err *err)
{
	struct key_search ks = {0};
	struct tls_psk *psk;
	int rc = psk_new(path, true, &ks, &psk, warning, err);
	explicit_bzero(ks.key, sizeof ks.key);
	if (rc < 0)
		return -1;
	rc = gnutls_psk_allocate_server_credentials(&psk->server_cred);
	if (rc == 0)
		rc = gnutls_psk_set_server_known_dh_params(psk->server_cred, GNUTLS_SEC_PARAM_MEDIUM); /* for DHE-PSK */
	if (rc < 0) {
		tls_psk_close(psk);
		return ms_fail(err, "GnuTLS: %s", gnutls_strerror(rc));
	}
	gnutls_psk_set_server_credentials_function(psk->server_cred, lookup_key);
	*out = psk;
	return 0;
}

int tls_psk_client_open(const char *path, const char *username, struct tls_psk **out, const char **warning,
			struct ms_err *err)
{
	struct key_search ks = {.user = username};
	struct tls_psk *psk;
	int rc = psk_new(path, false, &ks, &psk, warning, err);
	if (rc == 0 && ks.key_len == 0) {
		tls_psk_close(psk);
		rc = ms_fail(err, "%s: no key for PSK username '%s'", path, username);
	}
	if (rc < 0) {
		explicit_bzero(ks.key, sizeof ks.key);
		return -1;
	}
	snprintf(psk->username, sizeof psk->username, "%s", ks.name);
	gnutls_datum_t key = {ks.key, (unsigned)ks.key_len};
	rc = gnutls_psk_allocate_client_credentials(&psk->client_cred);
	if (rc == 0)
		rc = gnutls_psk_set_client_credentials(psk->client_cred, psk->username, &key, GNUTLS_PSK_KEY_RAW);
	explicit_bzero(ks.key, sizeof ks.key);
	if (rc < 0) {
		tls_psk_close(psk);
		return ms_fail(err, "GnuTLS: %s", gnutls_strerror(rc));
	}
	*out = psk;
	return 0;
}

void tls_psk_close(struct tls_psk *psk)
{
	if (!psk)
		return;
	if (psk->server_cred)
		gnutls_psk_free_server_credentials(psk->server_cred);
	if (psk->client_cred)
		gnutls_psk_free_client_credentials(psk->client_cred);
	if (psk->priority)
		gnutls_priority_deinit(psk->priority);
	free(psk->path);
	free(psk);
}

const char *tls_psk_username(const struct tls_psk *psk)
{
	return psk->server ? NULL : psk->username;
}

/* ---- one connection ---- */

int tls_psk_session_new(struct tls_psk *psk, int fd, unsigned flags, struct tls_psk_peer *peer,
			gnutls_session_t *out, struct ms_err *err)
{
	gnutls_session_t session;
	memset(peer, 0, sizeof *peer);
	peer->psk = psk;
	int rc = gnutls_init(&session, (psk->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_SIGNAL | flags);
	if (rc < 0)
		return tls_psk_handshake_failed(peer, NULL, rc, err);
	gnutls_session_set_ptr(session, peer);
	if ((rc = gnutls_priority_set(session, psk->priority)) < 0 ||
	    (rc = psk->server ? gnutls_credentials_set(session, GNUTLS_CRD_PSK, psk->server_cred)
			      : gnutls_credentials_set(session, GNUTLS_CRD_PSK, psk->client_cred)) < 0) {
		gnutls_deinit(session);
		return tls_psk_handshake_failed(peer, NULL, rc, err);
	}
	if (!psk->server)
		printable_copy(peer->username, sizeof peer->username, psk->username);
	gnutls_transport_set_int(session, fd);
	*out = session;
	return 0;
}

int tls_psk_handshake_failed(struct tls_psk_peer *peer, gnutls_session_t session, int rc, struct ms_err *err)
{
	if (!*peer->failure && rc == GNUTLS_E_FATAL_ALERT_RECEIVED && session) {
		/* the other side refused: its alert says why (a wrong key shows as a bad record MAC or so) */
		const char *alert = gnutls_alert_get_name(gnutls_alert_get(session));
		snprintf(peer->failure, sizeof peer->failure, "the peer refused it (%s)%s%.64s%s", alert ? alert : "alert",
			 *peer->username ? "; is the key of PSK username '" : "", peer->username,
			 *peer->username ? "' the one the peer has?" : "");
	}
	if (!*peer->failure) {
		/* GnuTLS says "decryption has failed" or "MAC verification failed" when the keys differ */
		bool key_mismatch = rc == GNUTLS_E_DECRYPTION_FAILED || rc == GNUTLS_E_KEY_USAGE_VIOLATION ||
				    rc == GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER || rc == GNUTLS_E_INSUFFICIENT_CREDENTIALS;
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_TIMEDOUT)
			snprintf(peer->failure, sizeof peer->failure, "the peer did not complete it in time");
		else if (key_mismatch && *peer->username)
			snprintf(peer->failure, sizeof peer->failure, "%s (wrong key for PSK username '%.64s'?)",
				 gnutls_strerror(rc), peer->username);
		else
			snprintf(peer->failure, sizeof peer->failure, "%s", gnutls_strerror(rc));
	}
	return ms_fail(err, "TLS handshake failed: %s", peer->failure);
}

ssize_t tls_psk_recv(gnutls_session_t session, struct tls_psk_peer *peer, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = gnutls_record_recv(session, buf, len);
		if (n >= 0)
			return n;
		if (n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n == GNUTLS_E_PREMATURE_TERMINATION)
			return 0; /* closed without close_notify: as a plain socket closes */
		if (n == GNUTLS_E_AGAIN) {
			errno = EAGAIN;
			return -1;
		}
		snprintf(peer->failure, sizeof peer->failure, "%s", gnutls_strerror((int)n));
		errno = EPROTO;
		return -1;
	}
}

bool tls_psk_looks_like_tls(const void *data, size_t len)
{
	const unsigned char *b = data;
	/* a TLS record: content type alert (21) or handshake (22), version 3.x */
	return len >= 2 && (b[0] == 21 || b[0] == 22) && b[1] == 3;
}
