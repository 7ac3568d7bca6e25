#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn.h"
#include "jsonl.h"
#include "log.h"
#include "metrics_http.h"
#include "record_metrics.h"
#include "proto.h"
#include "state.h"
#include "sockets.h"
#include "units.h"

/* A peer that does not read its replies is dropped past this much queued output. */
#define PEER_OUTPUT_MAX (16u << 20)
#define TICK_MS 200
/* A peer that has not finished its TLS handshake by then is dropped. */
#define HANDSHAKE_TIMEOUT_NS (10 * NS_PER_S)

struct gmc_peer {
	struct conn conn;
	uint64_t accepted_ns;
	struct line_buffer in;
	char *out;
	size_t out_len, out_cap, out_sent;
	size_t slot; /* the controller's word (its node) */
	bool dead;
	bool want_out; /* registered for EPOLLOUT */
	bool held;     /* output waits for the journal's group commit */
	struct gmc_peer *next_held;
	struct gmc_peer *next_dead;
	struct gmc_peer *prev, *next; /* every open peer, to close them at the end */
};

struct server {
	int epoll_fd;
	const struct server_config *cfg;
	struct gmc_io io;
	struct state *state; /* NULL: memory only */
	struct gmc *gmc;     /* NULL: standing by (another controller leads) */
	struct gmc_peer *dead; /* closed at the end of the loop iteration */
	struct gmc_peer *peers;
	struct gmc_peer *held; /* peers whose output waits for the commit */
	struct tls_psk *tls;   /* NULL: plain text */
};

static void peer_kill(struct server *s, struct gmc_peer *p, const char *why)
{
	if (p->dead)
		return;
	p->dead = true;
	if (why)
		log_info("peer dropped: %s", why);
	p->next_dead = s->dead;
	s->dead = p;
}

/* Register for the events the peer waits for (output, a handshake's next step). */
static void peer_watch(struct server *s, struct gmc_peer *p)
{
	bool want = conn_events(&p->conn, p->out_len > 0) & POLLOUT;
	if (want != p->want_out) {
		struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = p};
		epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, p->conn.fd, &ev);
		p->want_out = want;
	}
}

static bool peer_handshake(struct server *s, struct gmc_peer *p);

static void peer_flush(struct server *s, struct gmc_peer *p)
{
	if (!p->conn.ready && !peer_handshake(s, p))
		return;
	if (s->gmc && gmc_commit_pending(s->gmc)) { /* what it has waits for the journal (commit_and_flush) */
		if (!p->held) {
			p->held = true;
			p->next_held = s->held;
			s->held = p;
		}
		return;
	}
	while (p->out_sent < p->out_len) {
		ssize_t w = conn_send(&p->conn, p->out + p->out_sent, p->out_len - p->out_sent);
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0) {
			peer_kill(s, p, errno == EPROTO ? p->conn.peer.failure : "write failed");
			return;
		}
		p->out_sent += (size_t)w;
	}
	if (p->out_sent == p->out_len) {
		p->out_sent = p->out_len = 0;
		free(p->out);
		p->out = NULL;
		p->out_cap = 0;
	}
	peer_watch(s, p);
}

static void peer_send(void *ctx, struct gmc_peer *p, json_t *msg)
{
	struct server *s = ctx;
	size_t len;
	char *line = msg_line(msg, &len);
	json_decref(msg);
	if (p->dead || !line) {
		free(line);
		return;
	}
	if (p->out_len + len > PEER_OUTPUT_MAX) {
		free(line);
		peer_kill(s, p, "it does not read its replies");
		return;
	}
	if (p->out_sent && p->out_len + len > p->out_cap) { /* compact before growing */
		memmove(p->out, p->out + p->out_sent, p->out_len - p->out_sent);
		p->out_len -= p->out_sent;
		p->out_sent = 0;
	}
	if (p->out_len + len > p->out_cap) {
		size_t cap = p->out_cap ? p->out_cap : 4096;
		while (cap < p->out_len + len)
			cap *= 2;
		char *b = realloc(p->out, cap);
		if (!b) {
			free(line);
			peer_kill(s, p, "out of memory");
			return;
		}
		p->out = b;
		p->out_cap = cap;
	}
	memcpy(p->out + p->out_len, line, len);
	p->out_len += len;
	free(line);
	peer_flush(s, p);
}

static size_t *peer_slot(void *ctx, struct gmc_peer *p)
{
	(void)ctx;
	return &p->slot;
}

static void accept_peers(struct server *s, int listen_fd)
{
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct gmc_peer *p = calloc(1, sizeof *p);
		struct ms_err err = {0};
		if (!p || conn_open(&p->conn, fd, s->tls, &err) < 0) {
			if (p)
				log_warn("peer refused: %s", err.msg);
			close(fd);
			free(p);
			continue;
		}
		p->accepted_ns = monotonic_ns();
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = p};
		if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			conn_close(&p->conn);
			free(p);
			continue;
		}
		p->next = s->peers;
		if (s->peers)
			s->peers->prev = p;
		s->peers = p;
	}
}

/* The next step of a TLS peer's handshake; true once it is done. */
static bool peer_handshake(struct server *s, struct gmc_peer *p)
{
	struct ms_err err = {0};
	int rc = conn_handshake(&p->conn, &err);
	if (rc < 0) {
		log_warn("peer refused: %s", err.msg);
		peer_kill(s, p, NULL);
		return false;
	}
	if (rc == 1)
		log_debug("peer authenticated as PSK username '%s'", p->conn.peer.username);
	peer_watch(s, p);
	return rc == 1;
}

/* Handshakes that did not finish in time (a plain-text client, a silent one). */
static void drop_slow_handshakes(struct server *s, uint64_t now)
{
	for (struct gmc_peer *p = s->peers; p; p = p->next)
		if (!p->conn.ready && !p->dead && now - p->accepted_ns > HANDSHAKE_TIMEOUT_NS) {
			log_warn("peer refused: TLS handshake failed: the peer did not complete it in time");
			peer_kill(s, p, NULL);
		}
}

/* A standby answers every request "not the leader, it is X" (with X in
 * "leader"): agents and commands go there. */
static void answer_standby(struct server *s, struct gmc_peer *p, const char *line, size_t len)
{
	struct msg m;
	struct ms_err err = {0};
	if (msg_parse(line, len, &m, &err) < 0) {
		peer_send(s, p, msg_reply_error(0, "bad message: %s", err.msg));
		peer_kill(s, p, NULL);
		return;
	}
	if (m.type != MSG_REPLY) {
		const char *leader = s->state ? state_leader(s->state) : "";
		json_t *reply = *leader ? msg_reply_error(m.id, "not the leader, it is %s", leader)
					: msg_reply_error(m.id, "not the leader, and no controller leads yet");
		if (*leader)
			json_object_set_new(reply, "leader", json_string(leader));
		peer_send(s, p, reply);
	}
	msg_free(&m);
}

static void peer_read(struct server *s, struct gmc_peer *p)
{
	char buf[65536];
	if (!p->conn.ready && !peer_handshake(s, p))
		return;
	/* data TLS has decrypted already is read now: epoll will not report it */
	for (int rounds = 0; (rounds < 16 || conn_pending(&p->conn)) && !p->dead; rounds++) {
		ssize_t r = conn_recv(&p->conn, buf, sizeof buf);
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			peer_kill(s, p, r < 0 && errno == EPROTO ? p->conn.peer.failure : NULL);
			return;
		}
		struct ms_err err = {0};
		if (line_buffer_append(&p->in, buf, (size_t)r, &err) < 0) {
			peer_kill(s, p, err.msg);
			return;
		}
		const char *line;
		size_t len;
		int got = 0;
		while (!p->dead && (got = line_buffer_next(&p->in, &line, &len, &err)) == 1) {
			if (len == 0)
				continue;
			if (!s->gmc) {
				answer_standby(s, p, line, len);
				continue;
			}
			if (gmc_receive(s->gmc, p, line, len, monotonic_ns(), &err) < 0) {
				log_warn("peer sent a bad message, dropped: %s", err.msg);
				/* said to it too (best effort, id 0: the message's own may be
				 * unreadable), so a command names the refusal, not the transport */
				peer_send(s, p, msg_reply_error(0, "bad message: %s", err.msg));
				peer_flush(s, p);
				peer_kill(s, p, NULL);
			}
		}
		if (got < 0) {
			log_warn("peer dropped: %s", err.msg);
			peer_kill(s, p, NULL);
		}
		/* an idle peer holds no buffer: 10,000 agents cost kilobytes, not 80 MB */
		if (p->in.start == p->in.len)
			line_buffer_free(&p->in);
	}
}

/* Group commit: one journal sync for everything this round of the loop
 * decided, then the replies and orders that follow from it leave. */
static void step_down(struct server *s, const char *why);

static void commit_and_flush(struct server *s)
{
	struct ms_err err = {0};
	if (s->gmc && gmc_commit(s->gmc, &err) < 0) {
		if (!state_leading(s->state)) {
			step_down(s, err.msg); /* what waited for this commit never leaves */
			return;
		}
		log_error("%s (leases may be lost on a restart)", err.msg);
	}
	while (s->held) {
		struct gmc_peer *p = s->held;
		s->held = p->next_held;
		p->held = false;
		if (!p->dead)
			peer_flush(s, p);
	}
}

static void close_dead(struct server *s)
{
	while (s->dead) {
		struct gmc_peer *p = s->dead;
		s->dead = p->next_dead;
		/* what was queued for it (an error reply, say) gets one last try */
		if (p->out_len > p->out_sent && p->conn.ready)
			(void)conn_send(&p->conn, p->out + p->out_sent, p->out_len - p->out_sent);
		epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, p->conn.fd, NULL);
		conn_close(&p->conn);
		if (s->gmc)
			gmc_peer_gone(s->gmc, p, monotonic_ns());
		if (p->prev)
			p->prev->next = p->next;
		else
			s->peers = p->next;
		if (p->next)
			p->next->prev = p->prev;
		line_buffer_free(&p->in);
		free(p->out);
		free(p);
	}
}

/* The end of a round: commit and send, close the peers that died (which
 * may decide more: commit and send that too). */
static void settle(struct server *s)
{
	do {
		commit_and_flush(s);
		close_dead(s);
	} while (s->held || s->dead);
}

/* This controller leads no more: every peer is dropped (agents and commands
 * come back and are sent to the new leader), and what was held for a commit
 * that did not happen is thrown away, never sent. */
static void step_down(struct server *s, const char *why)
{
	log_warn("no longer the leader: %s", why);
	for (struct gmc_peer *p = s->peers; p; p = p->next) {
		p->out_len = p->out_sent = 0;
		p->held = false;
		peer_kill(s, p, NULL);
	}
	s->held = NULL;
	struct gmc *g = s->gmc;
	s->gmc = NULL;
	close_dead(s);
	gmc_free(g);
}

/* Take the lead: load the state; agents' registrations reconcile it then,
 * as after a restart. */
static int take_lead(struct server *s, struct ms_err *err)
{
	struct gmc_config gcfg = s->cfg->gmc;
	gcfg.state = s->state;
	if (gmc_new(&gcfg, &s->io, &s->gmc, err) < 0)
		return -1;
	if (s->state && s->state->ops != &state_journal_ops)
		log_info("leading (%s): state loaded, %zu leases", s->state->ops->name, gmc_lease_count(s->gmc));
	return 0;
}

/* At every tick: a standby that won the campaign leads; a leader whose lease
 * could not be kept alive steps down. */
static void follow_leadership(struct server *s, uint64_t now)
{
	if (!s->state)
		return;
	struct ms_err err = {0};
	int rc = state_lead(s->state, now, &err);
	if (rc == 1 && !s->gmc) {
		/* peers that came to the standby are told to come again */
		for (struct gmc_peer *p = s->peers; p; p = p->next)
			peer_kill(s, p, NULL);
		close_dead(s);
		if (take_lead(s, &err) < 0)
			log_warn("cannot take the lead yet: %s", err.msg);
	} else if (rc != 1 && s->gmc) {
		step_down(s, rc < 0 ? err.msg : "another controller leads");
	}
}

/* --metrics: the controller's status and nodes (the names msprom gives those
 * records), its leases by state, and whether it leads; a copy is handed to
 * the HTTP thread every second. */
/* memshare_gmc_leases_by_state: the leases' "state" fields counted. */
static void render_leases_by_state(const json_t *leases, struct prom_buf *text)
{
	json_t *by_state = json_object();
	size_t i;
	const json_t *rec;
	json_array_foreach(leases, i, rec) {
		const char *state = json_string_value(json_object_get(rec, "state"));
		json_t *n = json_object_get(by_state, state ? state : "unknown");
		json_object_set_new(by_state, state ? state : "unknown", json_integer(n ? json_integer_value(n) + 1 : 1));
	}
	prom_family(text, "memshare_gmc_leases_by_state", "gauge", "Leases the controller holds, by state.");
	const char *state;
	json_t *n;
	json_object_foreach(by_state, state, n) {
		const char *labels[] = {"host", local_hostname(), "state", state, NULL};
		prom_sample(text, "memshare_gmc_leases_by_state", labels, NULL, NULL, (double)json_integer_value(n));
	}
	json_decref(by_state);
}

static int publish_metrics(const struct server *s, struct metrics_server *m, struct ms_err *err)
{
	struct prom_buf text = {0};
	const char *host[] = {"host", local_hostname(), NULL};
	prom_family(&text, "memshare_gmc_leader", "gauge", "1 when this controller leads, 0 when it stands by.");
	prom_sample(&text, "memshare_gmc_leader", host, NULL, NULL, s->gmc ? 1 : 0);
	if (s->gmc) {
		json_t *records = gmc_node_records(s->gmc), *leases = gmc_lease_records(s->gmc);
		json_array_append_new(records, gmc_status_record(s->gmc));
		metric_records_render(records, &text);
		render_leases_by_state(leases, &text);
		json_decref(records);
		json_decref(leases);
	}
	int rc = metrics_server_publish(m, &text, err);
	prom_buf_free(&text);
	return rc;
}

int gmc_server_run(const struct server_config *cfg, volatile int *stop, struct ms_err *err)
{
	struct server s = {.tls = cfg->tls, .cfg = cfg};
	s.io = (struct gmc_io){.ctx = &s, .send = peer_send, .slot = peer_slot, .group_commit = true};
	if (cfg->state && state_open(cfg->state, cfg->advertise ? cfg->advertise : cfg->listen, &s.state, err) < 0)
		return ms_fail_prefix(err, "--state %s", cfg->state);
	/* the journal (or memory) leads at once, and a bad journal is said now */
	if (!s.state || state_lead(s.state, monotonic_ns(), err) == 1) {
		if (take_lead(&s, err) < 0) {
			state_close(s.state);
			return -1;
		}
	}
	struct metrics_server *metrics = NULL;
	if (cfg->metrics && !(metrics = metrics_server_start(cfg->metrics, err))) {
		gmc_free(s.gmc);
		state_close(s.state);
		return -1;
	}
	int listen_fd = listen_on(cfg->listen, err);
	if (listen_fd < 0) {
		metrics_server_stop(metrics);
		gmc_free(s.gmc);
		state_close(s.state);
		return -1;
	}
	fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
	listen(listen_fd, SOMAXCONN); /* a whole cluster reconnects at once after a restart */
	s.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	if (s.epoll_fd < 0 || epoll_ctl(s.epoll_fd, EPOLL_CTL_ADD, listen_fd, &lev) < 0) {
		metrics_server_stop(metrics);
		close(listen_fd);
		gmc_free(s.gmc);
		state_close(s.state);
		return ms_fail_errno(err, "epoll");
	}
	log_info("controller listening on %s (policy %s%s, state %s%s)", cfg->listen, cfg->gmc.policy->name,
		 s.tls ? ", TLS with pre-shared keys required" : "", s.state ? s.state->ops->name : "in memory",
		 s.gmc ? "" : ", standing by");
	struct epoll_event events[256];
	uint64_t next_tick = monotonic_ns(), next_metrics = 0;
	while (!*stop) {
		int n = epoll_wait(s.epoll_fd, events, 256, TICK_MS);
		for (int i = 0; i < n; i++) {
			struct gmc_peer *p = events[i].data.ptr;
			if (!p) {
				accept_peers(&s, listen_fd);
				continue;
			}
			if (p->dead)
				continue;
			if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				peer_read(&s, p);
			if (!p->dead && (events[i].events & EPOLLOUT))
				peer_flush(&s, p);
		}
		settle(&s);
		uint64_t now = monotonic_ns();
		if (now >= next_tick) {
			follow_leadership(&s, now);
			now = monotonic_ns(); /* taking the lead may have taken a while */
			if (s.gmc)
				gmc_tick(s.gmc, now);
			if (s.tls)
				drop_slow_handshakes(&s, now);
			settle(&s);
			next_tick = now + TICK_MS * NS_PER_MS;
		}
		if (metrics && now >= next_metrics) {
			if (publish_metrics(&s, metrics, err) < 0)
				log_warn("--metrics: %s", err->msg);
			next_metrics = now + NS_PER_S;
		}
	}
	metrics_server_stop(metrics);
	close(listen_fd);
	close(s.epoll_fd);
	if (strncmp(cfg->listen, "unix:", 5) == 0)
		unlink(cfg->listen + 5);
	settle(&s);
	for (struct gmc_peer *p = s.peers; p; p = p->next)
		peer_kill(&s, p, NULL);
	close_dead(&s);
	if (s.gmc && gmc_commit(s.gmc, err) < 0)
		log_error("%s (leases may be lost on a restart)", err->msg);
	gmc_free(s.gmc);
	state_close(s.state);
	return 0;
}
