#include "metrics_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sockets.h"

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define MAX_CONNECTIONS 32
#define CONNECTION_TIMEOUT_S 10 /* a client that stops reading is dropped */

struct metrics_server {
	struct MHD_Daemon *daemon;
	int fd;
	unsigned port;
	pthread_mutex_t lock;
	char *text; /* the last published text */
	size_t len;
	unsigned long scrapes;
};

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, const char *body, size_t len,
			      enum MHD_ResponseMemoryMode mode, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result serve_metrics(struct metrics_server *s, struct MHD_Connection *c)
{
	pthread_mutex_lock(&s->lock);
	size_t len = s->len;
	char *copy = malloc(len ? len : 1);
	if (copy && len)
		memcpy(copy, s->text, len);
	s->scrapes += copy != NULL;
	pthread_mutex_unlock(&s->lock);
	if (!copy)
		return answer(c, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n", 14, MHD_RESPMEM_PERSISTENT, "text/plain");
	return answer(c, MHD_HTTP_OK, copy, len, MHD_RESPMEM_MUST_FREE, CONTENT_TYPE);
}

static enum MHD_Result on_request(void *ctx, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload, size_t *upload_size, void **state)
{
	(void)version;
	(void)upload;
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		static const char msg[] = "only GET /metrics\n";
		return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, msg, sizeof msg - 1, MHD_RESPMEM_PERSISTENT, "text/plain");
	}
	if (*upload_size) /* a GET with a body: ignore it */
		*upload_size = 0;
	(void)state;
	if (strcmp(url, "/metrics") == 0)
		return serve_metrics(ctx, c);
	static const char msg[] = "memshare: the metrics are at /metrics\n";
	return answer(c, MHD_HTTP_NOT_FOUND, msg, sizeof msg - 1, MHD_RESPMEM_PERSISTENT, "text/plain");
}

static unsigned bound_port(int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof sa;
	if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
		return 0;
	if (sa.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&sa)->sin_port);
	if (sa.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
	return 0;
}

struct metrics_server *metrics_server_start(const char *addr, struct ms_err *err)
{
	if (strncmp(addr, "unix:", 5) == 0) {
		ms_fail_input(err, "--metrics %s: Prometheus scrapes over TCP: give HOST:PORT", addr);
		return NULL;
	}
	struct metrics_server *s = calloc(1, sizeof *s);
	if (!s) {
		ms_fail(err, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->lock, NULL);
	if ((s->fd = listen_on(addr, err)) < 0) {
		ms_fail_prefix(err, "--metrics");
		free(s);
		return NULL;
	}
	s->port = bound_port(s->fd);
	s->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, on_request, s,
				     MHD_OPTION_LISTEN_SOCKET, s->fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
				     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S, MHD_OPTION_END);
	if (!s->daemon) {
		ms_fail(err, "--metrics %s: the HTTP server (libmicrohttpd) did not start", addr);
		close(s->fd);
		free(s);
		return NULL;
	}
	return s;
}

int metrics_server_publish(struct metrics_server *s, const struct prom_buf *text, struct ms_err *err)
{
	if (text->out_of_memory)
		return ms_fail(err, "out of memory rendering the metrics");
	char *copy = malloc(text->len ? text->len : 1);
	if (!copy)
		return ms_fail(err, "out of memory");
	if (text->len)
		memcpy(copy, text->text, text->len);
	pthread_mutex_lock(&s->lock);
	char *old = s->text;
	s->text = copy;
	s->len = text->len;
	pthread_mutex_unlock(&s->lock);
	free(old);
	return 0;
}

unsigned metrics_server_port(const struct metrics_server *s) { return s->port; }

unsigned long metrics_server_scrapes(struct metrics_server *s)
{
	pthread_mutex_lock(&s->lock);
	unsigned long n = s->scrapes;
	pthread_mutex_unlock(&s->lock);
	return n;
}

void metrics_server_stop(struct metrics_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->daemon);
	close(s->fd);
	pthread_mutex_destroy(&s->lock);
	free(s->text);
	free(s);
}
