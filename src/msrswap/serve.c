#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sockets.h"
#include "log.h"
#include "metrics_http.h"
#include "record_metrics.h"
#include "nbd_server.h"
#include "registry.h"
#include "fabric.h"
#include "units.h"

#define HANDSHAKE_TIMEOUT_S 10  /* a client that does not finish the handshake in time is dropped */
#define CONTROL_TIMEOUT_S 2
/* a connection holds one descriptor; these are left for the listeners, the
 * control client, the reserve, stdio, logs and the libraries */
#define SPARE_DESCRIPTORS 16
#define MAX_CONNECTIONS_CAP 65536ul

struct connection {
	struct server *server;
	struct tls_stream stream; /* the socket, plain or (after STARTTLS) TLS */
	/* the handshake must end by this time (from accept, however the client
	 * trickles its bytes); 0 once it has */
	uint64_t handshake_deadline_ns;
	bool handshake_expired;
	ssize_t (*read)(void *ctx, void *buf, size_t len);       /* the stream's own */
	int (*starttls)(void *ctx, struct ms_err *err);          /* the stream's own */
};

static void set_timeout_ms(int fd, int which, uint64_t ms)
{
	struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, which, &tv, sizeof tv);
}

static void set_receive_timeout_ms(int fd, uint64_t ms)
{
	set_timeout_ms(fd, SO_RCVTIMEO, ms);
}

static struct connection *connection_of(void *stream)
{
	return (struct connection *)((char *)stream - offsetof(struct connection, stream));
}

/* Milliseconds left of the handshake (at least 1), 0 when it is over. */
static uint64_t handshake_left_ms(struct connection *c)
{
	uint64_t now = monotonic_ns();
	if (now >= c->handshake_deadline_ns) {
		c->handshake_expired = true;
		return 0;
	}
	return (c->handshake_deadline_ns - now + 999999) / 1000000;
}

/* A read during the handshake: it waits no longer than the deadline left. */
static ssize_t handshake_read(void *ctx, void *buf, size_t len)
{
	struct connection *c = connection_of(ctx);
	if (c->handshake_deadline_ns) {
		uint64_t left = handshake_left_ms(c);
		if (!left) {
			errno = ETIMEDOUT;
			return -1;
		}
		set_receive_timeout_ms(c->stream.fd, left);
	}
	ssize_t n = c->read(ctx, buf, len);
	if (n < 0 && c->handshake_deadline_ns && (errno == EAGAIN || errno == ETIMEDOUT) && !handshake_left_ms(c))
		errno = ETIMEDOUT;
	return n;
}

/* The TLS handshake gets what is left of the NBD handshake's time. */
static int handshake_starttls(void *ctx, struct ms_err *err)
{
	struct connection *c = connection_of(ctx);
	uint64_t left = handshake_left_ms(c);
	if (!left) {
		errno = ETIMEDOUT;
		return ms_fail_errno(err, "TLS handshake");
	}
	set_receive_timeout_ms(c->stream.fd, left);
	c->stream.handshake_timeout_ms = (unsigned)left;
	int rc = c->starttls(ctx, err);
	if (rc < 0)
		handshake_left_ms(c); /* a TLS handshake cut short by the deadline is a timeout */
	return rc;
}

static void end_handshake(void *ctx)
{
	struct connection *c = connection_of(ctx);
	c->handshake_deadline_ns = 0;
	set_receive_timeout_ms(c->stream.fd, 0);
	set_timeout_ms(c->stream.fd, SO_SNDTIMEO, 0);
}

static void *connection_thread(void *arg)
{
	struct connection *c = arg;
	struct nbd_io io = nbd_fd_io_template; /* plain sockets skip the TLS layer */
	if (c->server->tls) {
		io.read = tls_stream_read;
		io.read_nowait = tls_stream_read_nowait;
		io.writev = tls_stream_writev;
		io.starttls = handshake_starttls;
		c->starttls = tls_stream_starttls;
	}
	c->read = io.read;
	io.read = handshake_read;
	io.ctx = &c->stream; /* its first member is the fd, as nbd_fd_io_template wants */
	io.negotiated = end_handshake;
	struct ms_err err = {0};
	if (nbd_serve(&io, &c->server->source, &c->server->options, &err) < 0) {
		if (*c->stream.peer.failure && !strstr(err.msg, c->stream.peer.failure))
			ms_fail(&err, "%.300s (TLS: %.160s)", err.msg, c->stream.peer.failure);
		/* a client that failed to authenticate (in time or not) is worth a
		 * warning; one that broke off later, or never finished, a note */
		if (c->server->tls && !c->stream.up)
			log_warn("client refused: %s", err.msg);
		else if (c->handshake_expired)
			log_info("client dropped: no handshake within %d s of connecting", HANDSHAKE_TIMEOUT_S);
		else
			log_info("client dropped: %s", err.msg);
	}
	tls_stream_end(&c->stream);
	close(c->stream.fd);
	__atomic_fetch_sub(&c->server->connections, 1, __ATOMIC_RELAXED);
	free(c);
	return NULL;
}

/* Accept one client and start its thread.  Returns 0, or the errno of a
 * failed accept (EMFILE: out of descriptors). */
static int accept_client(struct server *s, int listen_fd)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return errno;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on unix sockets */
	/* a client that reads no replies must not hold the handshake past its time either */
	set_timeout_ms(fd, SO_SNDTIMEO, HANDSHAKE_TIMEOUT_S * 1000);
	struct connection *c = calloc(1, sizeof *c);
	pthread_t thread;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (!c) {
		close(fd);
		pthread_attr_destroy(&attr);
		return 0;
	}
	c->server = s;
	c->handshake_deadline_ns = monotonic_ns() + HANDSHAKE_TIMEOUT_S * 1000000000ULL;
	tls_stream_init(&c->stream, fd, s->tls, HANDSHAKE_TIMEOUT_S * 1000);
	__atomic_fetch_add(&s->connections, 1, __ATOMIC_RELAXED);
	if (pthread_create(&thread, &attr, connection_thread, c)) {
		__atomic_fetch_sub(&s->connections, 1, __ATOMIC_RELAXED);
		close(fd);
		free(c);
	}
	pthread_attr_destroy(&attr);
	return 0;
}

/* ---- the listener when descriptors or connection slots run out ---- */

#define LISTEN_PAUSE_NS 1000000000ULL   /* after EMFILE, retry accept at most this often */
#define LIMIT_LOG_INTERVAL_NS 60000000000ULL

struct listener_state {
	uint64_t paused_until;       /* don't poll the listener before (monotonic ns) */
	unsigned long paused_at;     /* ... or until fewer connections than this remain */
	uint64_t next_log;           /* rate limit of the warnings below */
	int reserve_fd;              /* a spare descriptor, given up to answer the control socket */
};

/* Log a limit at most once a minute: a full server must not flood its log. */
static void warn_limited(struct listener_state *l, const char *fmt, unsigned long value)
{
	uint64_t now = monotonic_ns();
	if (now < l->next_log)
		return;
	l->next_log = now + LIMIT_LOG_INTERVAL_NS;
	log_warn(fmt, value);
}

/* Should the listener be polled now?  Not while at --max-connections, nor
 * for a while after accept ran out of descriptors (it would report the
 * listener readable for ever: a spinning loop serving nobody). */
static bool listener_open(struct server *s, struct listener_state *l)
{
	unsigned long live = __atomic_load_n(&s->connections, __ATOMIC_RELAXED);
	if (live >= s->max_connections) {
		warn_limited(l, "%lu connections, the --max-connections limit: new clients wait until one leaves", live);
		return false;
	}
	if (l->paused_until && live >= l->paused_at && monotonic_ns() < l->paused_until)
		return false;
	l->paused_until = 0;
	return true;
}

static void accept_failed(struct server *s, struct listener_state *l, int error)
{
	if (error != EMFILE && error != ENFILE && error != ENOBUFS && error != ENOMEM)
		return; /* the client left before we took it (ECONNABORTED), a signal: nothing to wait for */
	l->paused_until = monotonic_ns() + LISTEN_PAUSE_NS;
	l->paused_at = __atomic_load_n(&s->connections, __ATOMIC_RELAXED);
	char msg[200];
	snprintf(msg, sizeof msg, "accept: %s (%%lu connections): new clients wait; lower --max-connections or raise ulimit -n",
		 strerror(error));
	warn_limited(l, msg, l->paused_at);
}

/* ---- control socket: one JSON request line, JSON reply lines ---- */

/* How fresh a scrape is: the loop wakes at least every 200 ms. */
#define METRICS_REFRESH_NS (1 * NS_PER_S)

static json_t *reply_ok(void)
{
	return json_pack("{s:b}", "ok", 1);
}

static json_t *reply_error(const char *msg)
{
	return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

/* A failed command: "failed" tells the caller the request was good and the
 * operation failed (exit status 1), not that the request was refused (2). */
static json_t *reply_failure(const struct ms_err *err)
{
	json_t *reply = reply_error(err->msg);
	if (!err->usage)
		json_object_set_new(reply, "failed", json_true());
	return reply;
}

json_t *control_reply_ok(void)
{
	return reply_ok();
}

json_t *control_reply_error(const char *msg)
{
	return reply_error(msg);
}

/* The provider's commands: add and rm exports. */
static json_t *provider_control(struct server *s, const char *cmd, json_t *req)
{
	const char *name = json_string_value(json_object_get(req, "name"));
	struct ms_err err = {0};
	if (strcmp(cmd, "add") == 0) {
		json_t *size = json_object_get(req, "size");
		if (!name || !json_is_integer(size) || json_integer_value(size) <= 0)
			return reply_error("add needs \"name\" and a positive integer \"size\"");
		if (registry_add(&s->registry, name, (uint64_t)json_integer_value(size), &err) < 0)
			return reply_failure(&err);
		log_info("export '%s' added (%lld bytes)", name, (long long)json_integer_value(size));
		return reply_ok();
	}
	if (strcmp(cmd, "rm") == 0) {
		if (!name)
			return reply_error("rm needs \"name\"");
		if (registry_remove(&s->registry, name, &err) < 0)
			return reply_error(err.msg);
		log_info("export '%s' removed", name);
		return reply_ok();
	}
	return NULL;
}

static json_t *control_execute(struct server *s, json_t *req)
{
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	if (!cmd)
		return reply_error("request has no \"cmd\"");
	if (strcmp(cmd, "list") == 0 || strcmp(cmd, "stats") == 0) {
		json_t *r = reply_ok();
		json_object_set_new(r, "records", s->stats(s));
		json_object_set_new(r, "connections", json_integer((json_int_t)__atomic_load_n(&s->connections, __ATOMIC_RELAXED)));
		return r;
	}
	json_t *reply = s->control(s, cmd, req);
	return reply ? reply : reply_error("unknown \"cmd\"");
}

/* Accept on the control socket; out of descriptors, the reserve one is given
 * up for it (and taken back afterwards), so the operator always gets an answer. */
static int accept_control(int control_fd, int *reserve_fd)
{
	int fd = accept4(control_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0 || (errno != EMFILE && errno != ENFILE) || *reserve_fd < 0)
		return fd;
	close(*reserve_fd);
	fd = accept4(control_fd, NULL, NULL, SOCK_CLOEXEC);
	return fd;
}

static void serve_control_client(struct server *s, int control_fd, int *reserve_fd)
{
	int fd = accept_control(control_fd, reserve_fd);
	if (fd < 0)
		return;
	set_receive_timeout_ms(fd, CONTROL_TIMEOUT_S * 1000);
	char line[4096];
	size_t used = 0;
	while (used < sizeof line - 1) {
		ssize_t n = read(fd, line + used, sizeof line - 1 - used);
		if (n <= 0)
			break;
		used += (size_t)n;
		if (memchr(line, '\n', used))
			break;
	}
	line[used] = '\0';
	json_error_t jerr;
	json_t *req = json_loads(line, JSON_DISABLE_EOF_CHECK, &jerr);
	json_t *reply = req ? control_execute(s, req) : reply_error("the request is not JSON");
	char *text = json_dumps(reply, JSON_COMPACT);
	if (text) {
		/* a client that went away is its own problem */
		if (write(fd, text, strlen(text)) >= 0 && write(fd, "\n", 1) >= 0)
			log_debug("control: %s", line);
		free(text);
	}
	json_decref(reply);
	json_decref(req);
	close(fd);
	if (*reserve_fd < 0 || fcntl(*reserve_fd, F_GETFD) < 0)
		*reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static int emit_stats(struct server *s, struct jsonl_writer *out, struct ms_err *err)
{
	json_t *records = s->stats(s);
	size_t i;
	json_t *rec;
	int rc = 0;
	json_array_foreach(records, i, rec)
	{
		if (rc == 0)
			rc = jsonl_emit(out, json_incref(rec), err);
	}
	json_decref(records);
	return rc;
}

/* --metrics: the same records as --stats, rendered as Prometheus text and
 * handed to the HTTP thread (record_metrics names them as msprom does). */
static int publish_metrics(struct server *s, struct metrics_server *m, struct ms_err *err)
{
	json_t *records = s->stats(s);
	struct prom_buf text = {0};
	metric_records_render(records, &text);
	json_decref(records);
	int rc = metrics_server_publish(m, &text, err);
	prom_buf_free(&text);
	return rc;
}

static json_t *provider_stats(struct server *s)
{
	return registry_stats(&s->registry);
}

int server_init(struct server *s, struct ram_pool *pool, uint64_t capacity, struct ms_err *err)
{
	memset(s, 0, sizeof *s);
	if (registry_init(&s->registry, pool, capacity, err) < 0)
		return -1;
	registry_source(&s->registry, &s->source);
	s->max_connections = default_max_connections();
	return 0;
}

int server_run(struct server *s, const char *listen, const char *control, uint64_t stats_interval_ns,
	       struct jsonl_writer *out, volatile int *stop, struct ms_err *err)
{
	int listen_fd = listen_on(listen, err);
	if (listen_fd < 0)
		return -1;
	char control_addr[4200];
	snprintf(control_addr, sizeof control_addr, "unix:%s", control);
	mode_t old = umask(077); /* only the owner may change exports */
	int control_fd = listen_on(control_addr, err);
	umask(old);
	if (control_fd < 0) {
		close(listen_fd);
		return ms_fail_prefix(err, "control socket");
	}
	struct metrics_server *metrics = NULL;
	if (s->metrics_addr && !(metrics = metrics_server_start(s->metrics_addr, err))) {
		close(listen_fd);
		close(control_fd);
		return -1;
	}
	if (metrics)
		log_info("Prometheus metrics on http://%s/metrics", s->metrics_addr);
	uint64_t next_metrics = 0;
	log_info("serving NBD on %s, control on %s", listen, control);
	log_info("at most %lu NBD connections at once", s->max_connections);
	uint64_t next_stats = stats_interval_ns ? monotonic_ns() + stats_interval_ns : 0;
	struct listener_state listener = {.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)};
	int rc = 0;
	while (!*stop && rc == 0) {
		/* the control socket first: it answers even when the listener is paused */
		struct pollfd fds[2] = {{control_fd, POLLIN, 0}, {listen_fd, POLLIN, 0}};
		nfds_t count = listener_open(s, &listener) ? 2 : 1;
		if (poll(fds, count, 200) > 0) {
			if (fds[0].revents & POLLIN)
				serve_control_client(s, control_fd, &listener.reserve_fd);
			int error = count == 2 && (fds[1].revents & POLLIN) ? accept_client(s, listen_fd) : 0;
			if (error)
				accept_failed(s, &listener, error);
		}
		if (next_stats && monotonic_ns() >= next_stats) {
			rc = emit_stats(s, out, err);
			next_stats += stats_interval_ns;
		}
		if (metrics && rc == 0 && monotonic_ns() >= next_metrics) {
			rc = publish_metrics(s, metrics, err);
			next_metrics = monotonic_ns() + METRICS_REFRESH_NS;
		}
	}
	metrics_server_stop(metrics);
	close(listen_fd);
	close(control_fd);
	if (listener.reserve_fd >= 0)
		close(listener.reserve_fd);
	unlink(control);
	if (strncmp(listen, "unix:", 5) == 0)
		unlink(listen + 5);
	return rc;
}

/* A reservoir the host cannot back would fail its clients' writes later, in
 * a swapping guest: refuse it now, unless the operator says otherwise. */
static int check_capacity(const struct serve_config *cfg, struct ms_err *err)
{
	uint64_t backable = host_backable_bytes();
	if (cfg->overcommit || !backable || cfg->capacity <= backable)
		return 0;
	return ms_fail_input(err, "--capacity %llu bytes: more than this host can back, %llu bytes (MemAvailable + SwapFree); "
			     "--overcommit allows it",
			     (unsigned long long)cfg->capacity, (unsigned long long)backable);
}

/* The fabric endpoint binds to the NBD listener's host (loopback for a unix one). */
static void fabric_host(const char *listen, char *host, size_t len)
{
	if (strncmp(listen, "unix:", 5) == 0) {
		snprintf(host, len, "127.0.0.1");
		return;
	}
	const char *colon = strrchr(listen, ':');
	size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
	if (n >= 2 && listen[0] == '[' && listen[n - 1] == ']') {
		listen++;
		n -= 2;
	}
	snprintf(host, len, "%.*s", (int)n, listen);
}

/* serve --fabric: the keys go to NBD clients only over an authenticated
 * channel (TLS-PSK, or a unix socket whose permissions say who connects);
 * the slabs cannot be deduplicated. */
static int open_fabric(const struct serve_config *cfg, struct registry *r, struct ms_err *err)
{
	if (!fabric_built_in())
		return ms_fail(err, "--fabric: not supported: built without libfabric");
	if (cfg->dedup)
		return ms_fail_input(err, "--fabric and --dedup: registered slabs cannot share blocks");
	if (!cfg->tls_psk_file && strncmp(cfg->listen, "unix:", 5) != 0)
		return ms_fail_input(err, "--fabric with --listen %s needs --tls-psk: the memory keys are raw write access "
				     "to this host's RAM and travel only over an authenticated channel (TLS, or a unix socket)",
				     cfg->listen);
	char host[256];
	fabric_host(cfg->listen, host, sizeof host);
	if (fabric_server_open(cfg->fabric_provider, *host ? host : NULL, cfg->busy_poll_ns > 0, &r->fabric, err) < 0)
		return ms_fail_prefix(err, "--fabric");
	r->mlock = cfg->mlock;
	log_info("exports are registered for one-sided RDMA with fabric provider '%s' (%s)", cfg->fabric_provider,
		 cfg->busy_poll_ns ? "progress thread busy-polls" : "progress thread sleeps in fi_cq_sread");
	return 0;
}

unsigned long default_max_connections(void)
{
	struct rlimit lim;
	if (getrlimit(RLIMIT_NOFILE, &lim) < 0 || lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > MAX_CONNECTIONS_CAP)
		return MAX_CONNECTIONS_CAP;
	return lim.rlim_cur > SPARE_DESCRIPTORS ? (unsigned long)(lim.rlim_cur - SPARE_DESCRIPTORS) : 1;
}

int serve_run(const struct serve_config *cfg, volatile int *stop, struct ms_err *err)
{
	static struct server s; /* connection threads may outlive a return: keep it static */
	struct ram_pool *pool;
	struct tls_psk *tls = NULL;
	if (cfg->tls_psk_file) {
		const char *warning;
		if (tls_psk_server_open(cfg->tls_psk_file, &tls, &warning, err) < 0)
			return ms_fail_prefix(err, "--tls-psk");
		if (warning)
			log_warn("--tls-psk %s: %s", cfg->tls_psk_file, warning);
	}
	if (check_capacity(cfg, err) < 0 || ram_pool_new(cfg->capacity, cfg->dedup, cfg->mlock, &pool, err) < 0 ||
	    server_init(&s, pool, cfg->capacity, err) < 0) {
		tls_psk_close(tls);
		return -1;
	}
	s.registry.overcommit = cfg->overcommit;
	if (cfg->fabric_provider && open_fabric(cfg, &s.registry, err) < 0) {
		tls_psk_close(tls);
		return -1;
	}
	for (size_t i = 0; i < cfg->export_count; i++)
		if (registry_add(&s.registry, cfg->exports[i].name, cfg->exports[i].size, err) < 0) {
			tls_psk_close(tls);
			return -1;
		}
	s.tls = tls;
	s.registry.tls_required = tls != NULL; /* msgmc's agent hands out nbds:// URIs then */
	s.options.latency_ns = cfg->latency_ns;
	s.options.busy_poll_ns = cfg->busy_poll_ns;
	if (cfg->max_connections)
		s.max_connections = cfg->max_connections;
	s.control = provider_control;
	s.stats = provider_stats;
	s.metrics_addr = cfg->metrics_addr;
	log_info("reservoir of %llu bytes", (unsigned long long)cfg->capacity);
	if (tls)
		log_info("TLS with pre-shared keys (%s) is required of every NBD client", cfg->tls_psk_file);
	return server_run(&s, cfg->listen, cfg->control, cfg->stats_interval_ns, cfg->out, stop, err);
}
