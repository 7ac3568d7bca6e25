#include "etcd.h"

#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "units.h"

#define CONNECT_TIMEOUT_MS 300
/* An answer larger than this is not etcd's (a range of every lease of a big cluster fits). */
#define ANSWER_MAX (512u << 20)

static size_t take_body(char *data, size_t size, size_t n, void *ctx)
{
	struct etcd *e = ctx;
	size_t len = size * n;
	if (e->body_len + len + 1 > ANSWER_MAX)
		return 0;
	if (e->body_len + len + 1 > e->body_cap) {
		size_t cap = e->body_cap ? e->body_cap : 16384;
		while (cap < e->body_len + len + 1)
			cap *= 2;
		char *b = realloc(e->body, cap);
		if (!b)
			return 0;
		e->body = b;
		e->body_cap = cap;
	}
	memcpy(e->body + e->body_len, data, len);
	e->body_len += len;
	e->body[e->body_len] = '\0';
	return len;
}

static int add_endpoint(struct etcd *e, const char *host, size_t len, struct ms_err *err)
{
	if (len == 0 || !memchr(host, ':', len))
		return ms_fail_input(err, "'%.*s' is not HOST:PORT", (int)len, host);
	char **list = realloc(e->endpoints, (e->endpoint_count + 1) * sizeof *list);
	if (!list)
		return ms_fail(err, "out of memory");
	e->endpoints = list;
	if (asprintf(&list[e->endpoint_count], "http://%.*s", (int)len, host) < 0)
		return ms_fail(err, "out of memory");
	e->endpoint_count++;
	return 0;
}

int etcd_open(struct etcd *e, const char *hosts, struct ms_err *err)
{
	memset(e, 0, sizeof *e);
	for (const char *p = hosts; *p;) {
		size_t len = strcspn(p, ",");
		if (add_endpoint(e, p, len, err) < 0) {
			etcd_close(e);
			return -1;
		}
		p += len + (p[len] == ',');
	}
	if (!e->endpoint_count)
		return ms_fail_input(err, "no etcd endpoint");
	curl_global_init(CURL_GLOBAL_DEFAULT);
	e->curl = curl_easy_init();
	e->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (!e->curl || !e->headers) {
		etcd_close(e);
		return ms_fail(err, "cannot start libcurl");
	}
	CURL *c = e->curl;
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, e);
	curl_easy_setopt(c, CURLOPT_PROXY, ""); /* an http_proxy variable must not carry the cluster's state */
	return 0;
}

void etcd_close(struct etcd *e)
{
	if (e->curl)
		curl_easy_cleanup(e->curl);
	curl_slist_free_all(e->headers);
	for (size_t i = 0; i < e->endpoint_count; i++)
		free(e->endpoints[i]);
	free(e->endpoints);
	free(e->body);
	memset(e, 0, sizeof *e);
}

const char *etcd_endpoint(const struct etcd *e)
{
	return e->endpoint_count ? e->endpoints[e->current] + strlen("http://") : "";
}

/* gRPC codes another member would answer the same: no point in trying it. */
static bool refusal_is_final(int64_t code)
{
	return code == 3 /* InvalidArgument */ || code == 5 /* NotFound */ || code == 7 /* PermissionDenied */ ||
	       code == 9 /* FailedPrecondition */ || code == 11 /* OutOfRange */;
}

/* One try on the current endpoint: 0 answered, 1 worth trying elsewhere, -1 final. */
static int post_once(struct etcd *e, const char *path, const char *text, long timeout_ms, json_t **answer,
		     struct ms_err *err)
{
	char url[512];
	snprintf(url, sizeof url, "%s/v3/%s", e->endpoints[e->current], path);
	CURL *c = e->curl;
	e->body_len = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		ms_fail(err, "etcd %s: %s", etcd_endpoint(e), curl_easy_strerror(rc));
		return 1;
	}
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	json_error_t jerr;
	json_t *j = json_loadb(e->body ? e->body : "", e->body_len, JSON_DISABLE_EOF_CHECK, &jerr);
	if (!json_is_object(j)) {
		json_decref(j);
		ms_fail(err, "etcd %s: HTTP %ld, not a JSON answer (is it etcd 3.4 or later?)", etcd_endpoint(e), status);
		return status >= 500 ? 1 : -1;
	}
	const char *why = json_string_value(json_object_get(j, "error"));
	if (status != 200 || why) {
		int64_t code = etcd_int(j, "code");
		ms_fail(err, "etcd %s: %s", etcd_endpoint(e), why ? why : "refused");
		json_decref(j);
		return refusal_is_final(code) ? -1 : 1;
	}
	*answer = j;
	return 0;
}

int etcd_post(struct etcd *e, const char *path, json_t *request, uint64_t deadline_ns, json_t **answer,
	      struct ms_err *err)
{
	*answer = NULL;
	char *text = json_dumps(request, JSON_COMPACT);
	json_decref(request);
	if (!text)
		return ms_fail(err, "out of memory");
	int rc = 1;
	/* every endpoint gets at least one try, even past the deadline */
	for (size_t tries = 0; rc == 1; tries++) {
		uint64_t now = monotonic_ns();
		if (now >= deadline_ns && tries >= e->endpoint_count)
			break;
		long left = now < deadline_ns ? (long)((deadline_ns - now) / NS_PER_MS) : 0;
		long timeout = left > ETCD_REQUEST_TIMEOUT_MS ? ETCD_REQUEST_TIMEOUT_MS : left < 100 ? 100 : left;
		rc = post_once(e, path, text, timeout, answer, err);
		if (rc != 1)
			break;
		e->current = (e->current + 1) % e->endpoint_count;
		if (e->current == 0) /* every member refused at once (none runs): no busy loop */
			nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
	}
	free(text);
	return rc == 0 ? 0 : -1;
}

json_t *etcd_b64(const char *s, size_t n)
{
	gnutls_datum_t in = {(unsigned char *)s, (unsigned)n}, out = {NULL, 0};
	if (n == 0)
		return json_string("");
	if (gnutls_base64_encode2(&in, &out) < 0)
		return NULL;
	json_t *j = json_stringn((const char *)out.data, out.size);
	gnutls_free(out.data);
	return j;
}

json_t *etcd_b64_str(const char *s)
{
	return etcd_b64(s, strlen(s));
}

char *etcd_unb64(json_t *v)
{
	const char *s = json_string_value(v);
	if (!s)
		return NULL;
	if (!*s)
		return strdup("");
	gnutls_datum_t in = {(unsigned char *)s, (unsigned)strlen(s)}, out = {NULL, 0};
	if (gnutls_base64_decode2(&in, &out) < 0)
		return NULL;
	char *text = malloc(out.size + 1);
	if (text) {
		memcpy(text, out.data, out.size);
		text[out.size] = '\0';
	}
	gnutls_free(out.data);
	return text;
}

int64_t etcd_int(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	if (json_is_integer(v))
		return json_integer_value(v);
	const char *s = json_string_value(v);
	return s ? strtoll(s, NULL, 10) : 0;
}

json_t *etcd_prefix_end(const char *prefix)
{
	size_t n = strlen(prefix);
	char *end = strdup(prefix);
	if (!end)
		return NULL;
	while (n > 0 && (unsigned char)end[n - 1] == 0xff)
		n--;
	json_t *j;
	if (n == 0) {
		j = etcd_b64("\0", 1); /* every key */
	} else {
		end[n - 1]++;
		j = etcd_b64(end, n);
	}
	free(end);
	return j;
}
