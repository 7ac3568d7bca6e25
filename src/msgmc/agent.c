#include "agent.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conn.h"
#include "control.h"
#include "log.h"
#include "metrics_http.h"
#include "proto.h"
#include "sockets.h"
#include "spawn.h"
#include "units.h"

#define MAX_LEASES 1024
#define URI_MAX 4096
#define LEASE_URI_MAX 512 /* a lease's URI as the controller hands it (fabric:// is the longest) */
#define BACKOFF_MIN_NS (100 * NS_PER_MS)

struct served {
	uint64_t lease, bytes;
	pid_t serve_pid; /* the msrswap serve that made the export (0: unknown) */
	char export_name[MSG_NAME_MAX + 1];
	char consumer[MSG_NAME_MAX + 1], domain[MSG_NAME_MAX + 1];
};

struct used {
	uint64_t lease, bytes;
	bool attached; /* the client daemon uses it (else granted, not usable) */
	char domain[MSG_NAME_MAX + 1];
	char uri[LEASE_URI_MAX]; /* the one the client daemon uses: fabric:// or NBD */
};

struct agent {
	const struct agent_config *cfg;
	struct conn conn; /* to the controller; conn.fd -1: none */
	struct line_buffer in;
	uint64_t next_id;
	char address[128];
	struct served served[MAX_LEASES];
	size_t served_count;
	struct used used[MAX_LEASES];
	size_t used_count;
	/* from msballoon, when it feeds stdin */
	int have_reservoir;
	uint64_t balloon_free, remote_need;
	uint64_t alloc_in_flight; /* id of our alloc request, 0: none */
	/* the last Grant-Any not sent yet (an alloc was in flight, or no controller): sent once
	 * that is answered, so that a request for one domain does not drop the next one's */
	char grant_domain[MSG_NAME_MAX + 1];
	uint64_t grant_bytes; /* 0: none */
	uint64_t register_id;     /* id of our register request */
	uint64_t backoff_ns, next_connect_ns;
	uint64_t next_inform_ns;
	int left;
	int invalidate_pending; /* sent once, at the first registration */
	bool export_tls;        /* our msrswap serve requires TLS: our exports are nbds:// */
	char serve_fabric[64];  /* our msrswap serve's fabric provider ("": it has none) */
	bool fabric_lack_said;  /* --fabric without a serve that can: said once */
	int serve_up;           /* msrswap serve answered at the last check: 1, did not: 0, not checked yet: -1 */
	char target[128];          /* the controller tried now (one of cfg->gmc, or the leader a standby named) */
	size_t next_index;         /* the next of cfg->gmc to try */
	uint64_t unanswered_since_ns; /* an inform sent and nothing heard since (0: all answered) */
	char redirect[128];        /* the leader a standby named ("": none yet) */
	bool redirected;           /* a standby answered: after the disconnect, go elsewhere */
	bool controller_down_said; /* the controller's absence was logged: its return will be too */
	uint64_t controller_down_since_ns;
};

/* The next controller to try: the leader a standby named, else the next
 * of the list --gmc gave (after the last, the first again). */
static void next_controller(struct agent *a, const char *leader)
{
	if (leader && *leader) {
		snprintf(a->target, sizeof a->target, "%s", leader);
		return;
	}
	const char *list = a->cfg->gmc;
	size_t count = 1;
	for (const char *p = list; (p = strchr(p, ',')); p++)
		count++;
	const char *p = list;
	for (size_t i = a->next_index % count; i > 0; i--)
		p = strchr(p, ',') + 1;
	snprintf(a->target, sizeof a->target, "%.*s", (int)strcspn(p, ","), p);
	a->next_index = (a->next_index + 1) % count;
}

static void emit(struct agent *a, const char *event, json_t *fields)
{
	json_t *r = record_new("agent");
	json_object_set_new(r, "node", json_string(a->cfg->node));
	json_object_set_new(r, "event", json_string(event));
	if (fields)
		json_object_update(r, fields);
	json_decref(fields);
	struct ms_err err;
	if (a->cfg->out)
		jsonl_emit(a->cfg->out, r, &err);
	else
		json_decref(r);
}

static int send_msg(struct agent *a, json_t *msg)
{
	size_t len;
	char *line = msg_line(msg, &len);
	json_decref(msg);
	if (!line || a->conn.fd < 0) {
		free(line);
		return -1;
	}
	/* a slow controller: wait a little, we have little to say */
	int rc = conn_send_all(&a->conn, line, len, 5000);
	free(line);
	return rc;
}

static json_t *request_new(struct agent *a, enum msg_type type)
{
	return msg_new(type, ++a->next_id);
}

static int send_register(struct agent *a);

/* ---- what the msrswap daemons say ---- */

/* The process that serves msrswap's control socket at path: its pid; 0 when
 * nothing does (no socket, or refused: the serve is gone, and with it every
 * export, which live in its RAM); -1 when that cannot be told (a full
 * backlog of a stopped serve, say). */
static pid_t serve_pid(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sun.sun_path)
		return -1;
	memcpy(sun.sun_path, path, strlen(path));
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	pid_t pid = -1;
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0) {
		struct ucred cred;
		socklen_t len = sizeof cred;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.pid > 0)
			pid = cred.pid;
	} else if (errno == ENOENT || errno == ECONNREFUSED) {
		pid = 0;
	}
	close(fd);
	return pid;
}

/* After a restart of the agent: the exports named msgmc-ID on the provider are ours. */
static void learn_exports(struct agent *a)
{
	if (!a->cfg->rswap_control)
		return;
	json_t *records = NULL, *rec, *req = json_pack("{s:s}", "cmd", "list");
	struct ms_err err = {0};
	int rc = control_call(a->cfg->rswap_control, req, &records, &err);
	json_decref(req);
	if (rc < 0)
		return;
	pid_t pid = serve_pid(a->cfg->rswap_control);
	size_t i;
	json_array_foreach(records, i, rec)
	{
		const char *name = json_string_value(json_object_get(rec, "export"));
		unsigned long long id;
		char tail;
		if (!name || sscanf(name, "msgmc-%llu%c", &id, &tail) != 1 || id == 0)
			continue;
		bool known = false;
		for (size_t k = 0; k < a->served_count; k++)
			known |= a->served[k].lease == id;
		if (known || a->served_count == MAX_LEASES)
			continue;
		struct served *s = &a->served[a->served_count++];
		memset(s, 0, sizeof *s);
		s->lease = id;
		s->bytes = (uint64_t)json_integer_value(json_object_get(rec, "size_bytes"));
		s->serve_pid = pid > 0 ? pid : 0;
		snprintf(s->export_name, sizeof s->export_name, "%s", name);
	}
	json_decref(records);
}

/* Why the export of a lease we serve is gone (NULL: it is there, or that
 * cannot be told): pid is the serve's now (serve_pid), records its stats
 * (NULL: it did not answer). */
static const char *export_loss(struct served *s, pid_t pid, json_t *records, char *why, size_t len)
{
	if (pid == 0)
		return "is gone with msrswap serve (its control socket is not served)";
	if (pid > 0 && s->serve_pid > 0 && s->serve_pid != pid) {
		snprintf(why, len, "was lost when msrswap serve restarted (pid %d, now %d)", (int)s->serve_pid, (int)pid);
		return why;
	}
	if (!records)
		return NULL;
	size_t i;
	json_t *rec;
	json_array_foreach(records, i, rec)
	{
		const char *kind = json_string_value(json_object_get(rec, "kind"));
		const char *name = json_string_value(json_object_get(rec, "export"));
		if (!kind || strcmp(kind, "export_stats") != 0 || !name || strcmp(name, s->export_name) != 0)
			continue;
		uint64_t size = (uint64_t)json_integer_value(json_object_get(rec, "size_bytes"));
		if (size != s->bytes) {
			snprintf(why, len, "has %llu bytes, not %llu", (unsigned long long)size, (unsigned long long)s->bytes);
			return why;
		}
		if (pid > 0 && !s->serve_pid)
			s->serve_pid = pid;
		return NULL;
	}
	return "is no longer on msrswap serve";
}

/* Said once when msrswap serve stops answering, and once when it is back. */
static void note_serve_state(struct agent *a, bool up, const char *why)
{
	if (up && a->serve_up == 0)
		log_warn("msrswap serve %s answers again", a->cfg->rswap_control);
	else if (!up && a->serve_up != 0)
		log_warn("msrswap serve %s: %s; this node lends no memory until it is back", a->cfg->rswap_control, why);
	a->serve_up = up;
}

/* The leases we serve compared with what msrswap serve really has (at every
 * inform, so at every interval): a lease whose export is gone, has another
 * size or was made by an earlier serve process (a restarted serve lost its
 * RAM) leaves our table, and the controller hears of it at once by our
 * registering again: it revokes the lease and the consumer fails over to its
 * disk copy.  Also the pool's capacity and reserved bytes (0: no provider). */
static void provider_check(struct agent *a, uint64_t *capacity, uint64_t *reserved)
{
	*capacity = *reserved = 0;
	if (!a->cfg->rswap_control)
		return;
	pid_t pid = serve_pid(a->cfg->rswap_control);
	json_t *records = NULL;
	struct ms_err err = {0};
	if (pid != 0) {
		json_t *req = json_pack("{s:s}", "cmd", "stats");
		if (control_call(a->cfg->rswap_control, req, &records, &err) < 0)
			records = NULL;
		json_decref(req);
	}
	note_serve_state(a, records != NULL, pid == 0 ? "not running (no one serves its control socket)" : err.msg);
	size_t lost = 0;
	for (size_t i = 0; i < a->served_count;) {
		struct served *s = &a->served[i];
		char text[160];
		const char *why = export_loss(s, pid, records, text, sizeof text);
		if (!why) {
			i++;
			continue;
		}
		log_warn("lease %llu: export %s %s: the controller is told", (unsigned long long)s->lease, s->export_name, why);
		emit(a, "export_lost", json_pack("{s:I, s:s, s:I, s:s}", "lease", (json_int_t)s->lease, "export",
						  s->export_name, "size_bytes", (json_int_t)s->bytes, "reason", why));
		a->served[i] = a->served[--a->served_count];
		lost++;
	}
	size_t i;
	json_t *rec;
	json_array_foreach(records, i, rec)
	{
		const char *kind = json_string_value(json_object_get(rec, "kind"));
		if (kind && strcmp(kind, "pool_stats") == 0) {
			*capacity = (uint64_t)json_integer_value(json_object_get(rec, "capacity_bytes"));
			*reserved = (uint64_t)json_integer_value(json_object_get(rec, "reserved_bytes"));
			a->export_tls = json_is_true(json_object_get(rec, "tls"));
			const char *fabric = json_string_value(json_object_get(rec, "fabric"));
			snprintf(a->serve_fabric, sizeof a->serve_fabric, "%s", fabric ? fabric : "");
		}
	}
	json_decref(records);
	/* not connected: the next registration lists the table as it is now */
	if (lost && a->conn.fd >= 0)
		send_register(a);
}

static uint64_t served_bytes(const struct agent *a)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < a->served_count; i++)
		sum += a->served[i].bytes;
	return sum;
}

static uint64_t used_bytes(const struct agent *a)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < a->used_count; i++)
		sum += a->used[i].bytes;
	return sum;
}

/* ---- --metrics ---- */

static void agent_gauge(struct prom_buf *t, const char *const *labels, const char *name, const char *help, double v)
{
	prom_family(t, name, "gauge", help);
	prom_sample(t, name, labels, NULL, NULL, v);
}

/* What the agent holds, handed to the HTTP thread as a copy. */
static int publish_metrics(const struct agent *a, struct metrics_server *m, struct ms_err *err)
{
	struct prom_buf t = {0};
	const char *labels[] = {"host", local_hostname(), "node", a->cfg->node, NULL};
	uint64_t served = 0;
	for (size_t i = 0; i < a->served_count; i++)
		served += a->served[i].bytes;
	agent_gauge(&t, labels, "memshare_agent_controller_connected", "1 while connected to a controller.",
		    a->conn.fd >= 0);
	agent_gauge(&t, labels, "memshare_agent_leases_served", "Leases this node serves to others.",
		    (double)a->served_count);
	agent_gauge(&t, labels, "memshare_agent_served_bytes", "Memory this node lends.", (double)served);
	agent_gauge(&t, labels, "memshare_agent_leases_used", "Leases this node uses.", (double)a->used_count);
	agent_gauge(&t, labels, "memshare_agent_used_bytes", "Memory this node borrows.", (double)used_bytes(a));
	agent_gauge(&t, labels, "memshare_agent_remote_need_bytes", "Memory msballoon says the node lacks.",
		    (double)a->remote_need);
	int rc = metrics_server_publish(m, &t, err);
	prom_buf_free(&t);
	return rc;
}

/* ---- to the controller ---- */

/* The registration (vMCA Register) lists every lease the node serves and
 * uses, so the controller can reconcile after a restart. */
static json_t *register_msg(struct agent *a, uint64_t id)
{
	json_t *m = msg_new(MSG_REGISTER, id);
	json_object_set_new(m, "node", json_string(a->cfg->node));
	if (a->cfg->location)
		json_object_set_new(m, "location", json_string(a->cfg->location));
	if (a->cfg->rswap_control) {
		json_object_set_new(m, "address", json_string(a->address));
		json_t *served = json_array();
		for (size_t i = 0; i < a->served_count; i++) {
			struct served *s = &a->served[i];
			json_t *e = json_pack("{s:I, s:s, s:I}", "lease", (json_int_t)s->lease, "export", s->export_name,
					      "size_bytes", (json_int_t)s->bytes);
			if (s->consumer[0])
				json_object_set_new(e, "consumer", json_string(s->consumer));
			if (s->domain[0])
				json_object_set_new(e, "domain", json_string(s->domain));
			json_array_append_new(served, e);
		}
		json_object_set_new(m, "served", served);
	}
	json_t *used = json_array();
	for (size_t i = 0; i < a->used_count; i++)
		if (a->used[i].attached)
			json_array_append_new(used, json_pack("{s:I, s:s, s:s}", "lease", (json_int_t)a->used[i].lease, "domain",
						      a->used[i].domain, "uri", a->used[i].uri));
	json_object_set_new(m, "used", used);
	return m;
}

static int send_register(struct agent *a)
{
	a->register_id = ++a->next_id;
	return send_msg(a, register_msg(a, a->register_id));
}

/* Room for one more lease in the registration: it is one protocol line
 * (MSG_MAX_LINE), and a node that could not register again would lose
 * every lease at the controller's next restart. */
static bool register_has_room(struct agent *a)
{
	json_t *m = register_msg(a, UINT32_MAX);
	size_t len = 0;
	char *line = msg_line(m, &len);
	json_decref(m);
	bool room = line && len + 1024 <= MSG_MAX_LINE; /* one entry, names and URI at their longest */
	free(line);
	return room;
}

/* GMC_inform + Statistics.  The reservoir offered to the cluster is the
 * provider's capacity, bounded (when msballoon feeds us) by what the host
 * can spare: msballoon's free memory plus what our exports hold already. */
static int send_inform(struct agent *a)
{
	uint64_t capacity, reserved;
	provider_check(a, &capacity, &reserved);
	uint64_t reservoir = capacity;
	if (a->have_reservoir) {
		uint64_t spare = a->balloon_free + served_bytes(a);
		if (!a->cfg->rswap_control || spare < reservoir)
			reservoir = a->cfg->rswap_control ? spare : 0;
	}
	json_t *m = request_new(a, MSG_INFORM);
	json_object_set_new(m, "reservoir_bytes", json_integer((json_int_t)reservoir));
	json_object_set_new(m, "local_need_bytes", json_integer((json_int_t)a->remote_need));
	if (a->cfg->rswap_control) {
		json_object_set_new(m, "capacity_bytes", json_integer((json_int_t)capacity));
		json_object_set_new(m, "reserved_bytes", json_integer((json_int_t)reserved));
	}
	a->next_inform_ns = monotonic_ns() + a->cfg->interval_ns;
	if (!a->unanswered_since_ns)
		a->unanswered_since_ns = monotonic_ns();
	return send_msg(a, m);
}

/* A controller that answers nothing for this long is stuck or cut off
 * (a leader paused past its etcd lease has been replaced): go elsewhere. */
static uint64_t silence_limit_ns(const struct agent *a)
{
	uint64_t limit = 3 * a->cfg->interval_ns;
	return limit > 3 * NS_PER_S ? limit : 3 * NS_PER_S;
}

/* The domain a request is for when the record names none: --domain, else the node. */
static const char *own_domain(const struct agent *a)
{
	return a->cfg->domain ? a->cfg->domain : a->cfg->node;
}

/* GMC_alloc of bytes for domain (the device the lease will be attached to). */
static int send_alloc(struct agent *a, const char *domain, uint64_t bytes, const char *why)
{
	if (a->alloc_in_flight || a->conn.fd < 0)
		return 0;
	bytes = (bytes + 4095) / 4096 * 4096;
	json_t *m = request_new(a, MSG_ALLOC);
	json_object_set_new(m, "node", json_string(a->cfg->node));
	json_object_set_new(m, "domain", json_string(domain));
	json_object_set_new(m, "size_bytes", json_integer((json_int_t)bytes));
	a->alloc_in_flight = a->next_id;
	log_info("asking for %llu bytes of remote memory for %s (%s)", (unsigned long long)bytes, domain, why);
	return send_msg(a, m);
}

/* The pending Grant-Any, when nothing is in flight. */
static int send_pending_grant(struct agent *a)
{
	if (!a->grant_bytes || a->alloc_in_flight || a->conn.fd < 0)
		return 0;
	uint64_t bytes = a->grant_bytes;
	a->grant_bytes = 0;
	return send_alloc(a, a->grant_domain, bytes, "grant_any");
}

/* ---- orders from the controller ---- */

/* s percent-encoded (RFC 3986: all but unreserved characters and '/') at
 * out, which has room for 3 * strlen(s) + 1 bytes. */
static char *percent_encode(const char *s, char *out)
{
	char *o = out;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (isalnum(ch) || strchr("-._~/", ch))
			*o++ = (char)ch;
		else
			o += sprintf(o, "%%%02X", ch);
	}
	*o = '\0';
	return out;
}

/* --fabric on a provider: the export's fabric:// URI beside the NBD one, when
 * our msrswap serve registers its exports (serve --fabric) and hands their
 * keys only over TLS (a consumer reaches the export by TCP).  "": none. */
static void fabric_uri(struct agent *a, const char *export_name, char *out, size_t len)
{
	out[0] = '\0';
	if (!a->cfg->fabric)
		return;
	if (!a->serve_fabric[0] || !a->export_tls) {
		if (!a->fabric_lack_said)
			log_warn("--fabric: msrswap serve %s %s: leases are offered by NBD only", a->cfg->rswap_control,
				 !a->serve_fabric[0] ? "does not run --fabric" : "has no --tls-psk (the keys would travel in clear)");
		a->fabric_lack_said = true;
		return;
	}
	char provider[3 * sizeof a->serve_fabric];
	int n = snprintf(out, len, "fabric://%s/%s?provider=%s", a->address, export_name,
			 percent_encode(a->serve_fabric, provider));
	if (n < 0 || (size_t)n >= len)
		out[0] = '\0';
}

static json_t *do_lmc_alloc(struct agent *a, const struct msg *m)
{
	if (!a->cfg->rswap_control)
		return msg_reply_error(m->id, "node %s is not a provider (no --rswap-control)", a->cfg->node);
	if (a->served_count == MAX_LEASES || !register_has_room(a))
		return msg_reply_error(m->id, "node %s serves %zu leases already, as many as its registration can list",
				       a->cfg->node, a->served_count);
	const char *export_name = msg_str(m, "export");
	uint64_t bytes = msg_u64(m, "size_bytes");
	json_t *req = json_pack("{s:s, s:s, s:I}", "cmd", "add", "name", export_name, "size", (json_int_t)bytes);
	struct ms_err err = {0};
	int rc = control_call(a->cfg->rswap_control, req, NULL, &err);
	json_decref(req);
	if (rc < 0)
		return msg_reply_error(m->id, "%s", err.msg);
	struct served *s = &a->served[a->served_count++];
	memset(s, 0, sizeof *s);
	s->lease = msg_u64(m, "lease");
	s->bytes = bytes;
	pid_t pid = serve_pid(a->cfg->rswap_control);
	s->serve_pid = pid > 0 ? pid : 0;
	snprintf(s->export_name, sizeof s->export_name, "%s", export_name);
	if (msg_has(m, "consumer") && json_is_string(json_object_get(m->obj, "consumer")) && msg_name_valid(msg_str(m, "consumer")))
		snprintf(s->consumer, sizeof s->consumer, "%s", msg_str(m, "consumer"));
	if (msg_has(m, "domain") && json_is_string(json_object_get(m->obj, "domain")) && msg_name_valid(msg_str(m, "domain")))
		snprintf(s->domain, sizeof s->domain, "%s", msg_str(m, "domain"));
	char uri[LEASE_URI_MAX], fabric[LEASE_URI_MAX];
	snprintf(uri, sizeof uri, "%s://%s/%s", a->export_tls ? "nbds" : "nbd", a->address, export_name);
	fabric_uri(a, export_name, fabric, sizeof fabric);
	json_t *fields = json_pack("{s:I, s:s, s:I, s:s}", "lease", (json_int_t)s->lease, "export", export_name,
				   "size_bytes", (json_int_t)bytes, "uri", uri);
	if (fabric[0])
		json_object_set_new(fields, "fabric_uri", json_string(fabric));
	emit(a, "export_added", fields);
	json_t *reply = msg_reply_ok(m->id);
	json_object_set_new(reply, "address", json_string(a->address));
	json_object_set_new(reply, "uri", json_string(uri));
	if (fabric[0])
		json_object_set_new(reply, "fabric_uri", json_string(fabric));
	return reply;
}

static json_t *do_lmc_release(struct agent *a, const struct msg *m)
{
	const char *export_name = msg_str(m, "export");
	if (!a->cfg->rswap_control)
		return msg_reply_error(m->id, "node %s is not a provider", a->cfg->node);
	json_t *req = json_pack("{s:s, s:s}", "cmd", "rm", "name", export_name);
	struct ms_err err = {0};
	int rc = control_call(a->cfg->rswap_control, req, NULL, &err);
	json_decref(req);
	/* gone already: removed, or lost with the serve that held it */
	bool absent = rc < 0 && (strstr(err.msg, "no export") || serve_pid(a->cfg->rswap_control) == 0);
	for (size_t i = 0; i < a->served_count; i++)
		if (strcmp(a->served[i].export_name, export_name) == 0) {
			if (rc == 0 || absent)
				a->served[i--] = a->served[--a->served_count];
		}
	if (rc < 0 && !absent)
		return msg_reply_error(m->id, "%s", err.msg);
	emit(a, "export_removed", json_pack("{s:I, s:s, s:b}", "lease", (json_int_t)msg_u64(m, "lease"), "export",
					     export_name, "absent", absent));
	return msg_reply_ok(m->id);
}

/* A lease's URI as the client daemon opens it: an nbds:// export gets our
 * PSK identity and key file (the same psktool file msgmc uses), and so does
 * a fabric:// one (its keys come over an NBD exchange the provider only
 * answers in TLS: fabric_uri offers none otherwise). */
static const char *uri_for_client(const struct agent *a, const char *uri, char out[URI_MAX])
{
	size_t scheme = strncmp(uri, "nbds://", 7) == 0 ? 7 : strncmp(uri, "fabric://", 9) == 0 ? 9 : 0;
	if (!scheme || !a->cfg->tls || !a->cfg->tls_psk_file)
		return uri;
	char user[3 * TLS_USERNAME_MAX + 1], *path = malloc(3 * strlen(a->cfg->tls_psk_file) + 1);
	if (!path)
		return uri;
	int n = snprintf(out, URI_MAX, "%.*s%s@%s%stls-psk-file=%s", (int)scheme, uri,
			 percent_encode(tls_psk_username(a->cfg->tls), user), uri + scheme, strchr(uri, '?') ? "&" : "?",
			 percent_encode(a->cfg->tls_psk_file, path));
	free(path);
	return n < URI_MAX ? out : uri;
}

/* The URI this node attached a lease with (NULL: it uses no such lease). */
static const char *used_uri(const struct agent *a, uint64_t lease)
{
	for (size_t i = 0; i < a->used_count; i++)
		if (a->used[i].lease == lease && a->used[i].uri[0])
			return a->used[i].uri;
	return NULL;
}

/* The consumer stops using a remote export: the client daemon serves its
 * blocks from the disk copy from then on. */
static json_t *do_lmc_reclaim(struct agent *a, const struct msg *m)
{
	uint64_t lease = msg_u64(m, "lease");
	const char *domain = msg_str(m, "domain"), *uri = used_uri(a, lease);
	if (!uri)
		uri = msg_str(m, "uri");
	bool detached = false;
	char why[400] = "";
	if (a->cfg->client_control) {
		char client_uri[URI_MAX];
		json_t *req = json_pack("{s:s, s:s, s:s}", "cmd", "remote-release", "name", domain, "uri",
					uri_for_client(a, uri, client_uri));
		struct ms_err err = {0};
		int rc = control_call(a->cfg->client_control, req, NULL, &err);
		json_decref(req);
		/* a remote that failed is no longer used already: that is detached too */
		detached = rc == 0 || strstr(err.msg, "no alive remote") != NULL;
		if (rc < 0)
			snprintf(why, sizeof why, "%s", err.msg);
	} else {
		snprintf(why, sizeof why, "no --client-control");
	}
	if (!detached)
		log_warn("lease %llu: %s keeps using %s until it fails over (%s)", (unsigned long long)lease, domain, uri, why);
	for (size_t i = 0; i < a->used_count; i++)
		if (a->used[i].lease == lease)
			a->used[i--] = a->used[--a->used_count];
	json_t *fields = json_pack("{s:I, s:s, s:s, s:b}", "lease", (json_int_t)lease, "domain", domain, "uri", uri,
				   "detached", detached);
	if (why[0])
		json_object_set_new(fields, "reason", json_string(why));
	emit(a, "reclaimed", fields);
	json_t *reply = msg_reply_ok(m->id);
	json_object_set_new(reply, "detached", json_boolean(detached));
	return reply;
}

/* msrswap next to this program (an installed or built tree), else on PATH. */
static void msrswap_path(char *out, size_t len)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n > 0) {
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			snprintf(out, len, "%s/msrswap", self);
			if (access(out, X_OK) == 0)
				return;
		}
	}
	snprintf(out, len, "msrswap");
}

/* The first lease for a domain that has no device yet: msrswap attach makes
 * one of --attach-size, with this lease as its remote tier, and gives it to
 * the domain (libvirt hot-plug, or host swap for cgroup:///). */
static int attach_new_device(struct agent *a, const char *domain, const char *uri, struct ms_err *err)
{
	char tool[4200], size[32];
	msrswap_path(tool, sizeof tool);
	snprintf(size, sizeof size, "%llu", (unsigned long long)a->cfg->attach_size);
	bool host = !a->cfg->hypervisor || strncmp(a->cfg->hypervisor, "cgroup:", 7) == 0;
	char *host_argv[] = {tool, "attach", "--host", (char *)domain, "--size", size, "--remote", (char *)uri,
			     "--control", (char *)a->cfg->client_control, "-q", NULL};
	char *guest_argv[] = {tool, "attach", "-c", (char *)a->cfg->hypervisor, (char *)domain, "--size", size,
			      "--remote", (char *)uri, "--mkswap", "--control", (char *)a->cfg->client_control, "-q", NULL};
	log_info("domain %s has no device yet: %s attach %s%s --size %s", domain, tool, host ? "--host " : "", domain, size);
	/* a guest's hot-plug under software emulation can take a while */
	return run_tool(host ? host_argv : guest_argv, 120, err);
}

/* The lease's export as a remote of the domain's device in the client
 * daemon; a domain without a device gets one when --attach-size says so. */
static int add_remote(struct agent *a, const char *domain, const char *uri, bool *created, struct ms_err *err)
{
	char client_uri_text[URI_MAX];
	const char *client_uri = uri_for_client(a, uri, client_uri_text);
	json_t *req = json_pack("{s:s, s:s, s:s}", "cmd", "remote-add", "name", domain, "uri", client_uri);
	int rc = control_call(a->cfg->client_control, req, NULL, err);
	json_decref(req);
	if (rc < 0 && a->cfg->attach_size && strstr(err->msg, "no such device")) {
		*err = (struct ms_err){0};
		rc = attach_new_device(a, domain, client_uri, err);
		*created = rc == 0;
	}
	return rc;
}

static json_t *do_attach(struct agent *a, const struct msg *m)
{
	uint64_t lease = msg_u64(m, "lease");
	const char *domain = msg_str(m, "domain"), *uri = msg_str(m, "uri");
	json_t *fields = json_pack("{s:I, s:s, s:s, s:I}", "lease", (json_int_t)lease, "domain", domain, "uri", uri,
				   "size_bytes", (json_int_t)msg_u64(m, "size_bytes"));
	if (!a->cfg->client_control) {
		if (a->used_count < MAX_LEASES)
			a->used[a->used_count++] = (struct used){.lease = lease, .bytes = msg_u64(m, "size_bytes")};
		json_object_set_new(fields, "attached", json_false());
		emit(a, "granted", fields);
		return msg_reply_error(m->id, "node %s has no --client-control: lease %llu is not attached", a->cfg->node,
				       (unsigned long long)lease);
	}
	if (a->used_count == MAX_LEASES || !register_has_room(a)) {
		json_object_set_new(fields, "attached", json_false());
		emit(a, "granted", fields);
		return msg_reply_error(m->id, "node %s uses %zu leases already, as many as its registration can list",
				       a->cfg->node, a->used_count);
	}
	const char *fabric = a->cfg->fabric && msg_has(m, "fabric_uri") ? msg_str(m, "fabric_uri") : NULL;
	bool created = false;
	struct ms_err err = {0};
	int rc = fabric ? add_remote(a, domain, fabric, &created, &err) : -1;
	if (rc == 0) {
		uri = fabric;
		json_object_set_new(fields, "fabric_uri", json_string(fabric));
	} else {
		if (fabric)
			log_warn("lease %llu: %s by one-sided RDMA: %s; using %s", (unsigned long long)lease, fabric, err.msg, uri);
		err = (struct ms_err){0};
		rc = add_remote(a, domain, uri, &created, &err);
	}
	json_object_set_new(fields, "attached", json_boolean(rc == 0));
	if (created)
		json_object_set_new(fields, "device_created", json_true());
	/* counted against shortfalls, reported when attached (room checked above) */
	struct used *u = &a->used[a->used_count++];
	u->attached = rc == 0;
	u->lease = lease;
	u->bytes = msg_u64(m, "size_bytes");
	snprintf(u->domain, sizeof u->domain, "%s", domain);
	snprintf(u->uri, sizeof u->uri, "%s", uri);
	if (rc < 0)
		json_object_set_new(fields, "error", json_string(err.msg));
	emit(a, "granted", fields);
	return rc == 0 ? msg_reply_ok(m->id) : msg_reply_error(m->id, "%s", err.msg);
}

static int handle_message(struct agent *a, const struct msg *m)
{
	json_t *reply = NULL;
	switch (m->type) {
	case MSG_REPLY:
		if (m->id == a->alloc_in_flight) {
			a->alloc_in_flight = 0;
			if (!json_is_true(json_object_get(m->obj, "ok")))
				log_warn("alloc refused: %s", msg_str(m, "error") ? msg_str(m, "error") : "?");
			send_pending_grant(a);
		} else if (m->id == a->register_id && !json_is_true(json_object_get(m->obj, "ok"))) {
			const char *leader = json_string_value(json_object_get(m->obj, "leader"));
			if (json_is_string(json_object_get(m->obj, "leader")) || strstr(msg_str(m, "error") ?: "", "not the leader")) {
				/* a standby: go to the leader it names (or, none yet, the next controller) */
				log_info("controller %s: %s", a->target, msg_str(m, "error") ?: "not the leader");
				snprintf(a->redirect, sizeof a->redirect, "%s", leader ? leader : "");
				a->redirected = true;
				if (leader)
					a->backoff_ns = BACKOFF_MIN_NS;
				return -1;
			}
			/* e.g. our previous connection is not closed yet on the controller's side */
			log_warn("registration refused: %s", msg_str(m, "error") ? msg_str(m, "error") : "?");
			return -1;
		} else if (!json_is_true(json_object_get(m->obj, "ok"))) {
			log_warn("controller: %s", msg_str(m, "error") ? msg_str(m, "error") : "refused");
		} else if (json_object_get(m->obj, "state")) {
			a->backoff_ns = BACKOFF_MIN_NS; /* registered: the next loss starts the backoff again */
			emit(a, "registered", json_pack("{s:s}", "state", msg_str(m, "state") ? msg_str(m, "state") : "?"));
			send_pending_grant(a);
		}
		return 0;
	case MSG_LMC_ALLOC:
		reply = do_lmc_alloc(a, m);
		break;
	case MSG_LMC_RELEASE:
		reply = do_lmc_release(a, m);
		break;
	case MSG_LMC_RECLAIM:
		reply = do_lmc_reclaim(a, m);
		break;
	case MSG_ATTACH:
		reply = do_attach(a, m);
		break;
	case MSG_LEAVE_NOTIFY:
		emit(a, "left", NULL);
		a->left = 1;
		return 0;
	case MSG_INVALIDATE_NOTIFY:
		/* every lease of ours ended: what we still list is stale */
		a->served_count = 0;
		a->used_count = 0;
		emit(a, "invalidated", NULL);
		return 0;
	default:
		log_warn("the controller sent %s, which agents do not take", msg_type_name(m->type));
		return -1;
	}
	return send_msg(a, reply);
}

/* ---- msballoon's records on stdin ---- */

/* A grant_any record: msballoon tlp's Grant-Any, for the domain it names
 * (the device the lease is to be attached to); a record without "domain"
 * (msballoon before it named one) is for --domain.  One that comes while
 * an alloc is in flight waits for its answer; a later one replaces it. */
static int take_grant_any(struct agent *a, const struct jsonl_reader *r, json_t *rec, struct ms_err *err)
{
	json_t *b = json_object_get(rec, "bytes"), *d = json_object_get(rec, "domain");
	if (d && (!json_is_string(d) || !msg_name_valid(json_string_value(d))))
		return ms_fail_input(err, "%s:%lu: grant_any: \"domain\" is not a domain name (1-%d of A-Z a-z 0-9 . _ : @ -)",
				     r->name, r->line, MSG_NAME_MAX);
	if (!json_is_integer(b) || json_integer_value(b) <= 0)
		return 0;
	snprintf(a->grant_domain, sizeof a->grant_domain, "%s", d ? json_string_value(d) : own_domain(a));
	a->grant_bytes = (uint64_t)json_integer_value(b);
	send_pending_grant(a);
	return 0;
}

/* One of msballoon's records; an error names the record's line (the caller
 * skips it and keeps serving). */
static int take_record(struct agent *a, const struct jsonl_reader *r, json_t *rec, struct ms_err *err)
{
	const char *kind = json_string_value(json_object_get(rec, "kind"));
	if (!kind)
		return 0;
	if (strcmp(kind, "reservoir") == 0) {
		json_t *f = json_object_get(rec, "free_bytes"), *need = json_object_get(rec, "remote_need_bytes");
		if (!json_is_integer(f))
			return 0;
		uint64_t free_bytes = (uint64_t)json_integer_value(f);
		uint64_t remote_need = json_is_integer(need) && json_integer_value(need) > 0 ? (uint64_t)json_integer_value(need) : 0;
		bool changed = !a->have_reservoir || free_bytes != a->balloon_free || remote_need != a->remote_need;
		a->have_reservoir = 1;
		a->balloon_free = free_bytes;
		a->remote_need = remote_need;
		if (changed && a->conn.fd >= 0)
			send_inform(a); /* GMC_inform: on every change */
		uint64_t have = used_bytes(a);
		if (remote_need > have)
			send_alloc(a, own_domain(a), remote_need - have, "reservoir shortfall");
	} else if (strcmp(kind, "grant_any") == 0) {
		return take_grant_any(a, r, rec, err);
	}
	return 0;
}

/* ---- the loop ---- */

static void choose_address(struct agent *a)
{
	if (a->cfg->address) {
		snprintf(a->address, sizeof a->address, "%s", a->cfg->address);
		return;
	}
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	char host[INET6_ADDRSTRLEN] = "127.0.0.1";
	if (getsockname(a->conn.fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
		else if (ss.ss_family == AF_INET6) {
			char h6[INET6_ADDRSTRLEN];
			if (inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, h6, sizeof h6))
				snprintf(host, sizeof host, "[%.40s]", h6);
		}
	}
	snprintf(a->address, sizeof a->address, "%s:10809", host);
}

static void disconnect(struct agent *a, const char *why)
{
	if (a->conn.fd >= 0) {
		if (a->redirected) /* a standby: said at -v already, not a loss */
			log_debug("controller %s: %s; going to %s", a->target, why, a->redirect[0] ? a->redirect : "the next");
		else
			log_warn("controller %s: %s; reconnecting", a->target, why);
		conn_close(&a->conn);
		if (!a->redirected) {
			a->controller_down_said = true;
			a->controller_down_since_ns = monotonic_ns();
		}
	}
	if (a->redirected)
		next_controller(a, a->redirect);
	a->redirected = false;
	a->alloc_in_flight = 0;
	a->unanswered_since_ns = 0;
	line_buffer_free(&a->in);
	a->next_connect_ns = monotonic_ns() + a->backoff_ns;
	a->backoff_ns = a->backoff_ns * 2 > a->cfg->backoff_max_ns ? a->cfg->backoff_max_ns : a->backoff_ns * 2;
}

static int read_controller(struct agent *a)
{
	char buf[65536];
	ssize_t r = conn_recv(&a->conn, buf, sizeof buf);
	if (r < 0 && errno == EAGAIN)
		return 0;
	if (r <= 0) {
		disconnect(a, r == 0 ? "connection closed" : errno == EPROTO ? a->conn.peer.failure : strerror(errno));
		return 0;
	}
	struct ms_err err = {0};
	if (line_buffer_append(&a->in, buf, (size_t)r, &err) < 0) {
		disconnect(a, err.msg);
		return 0;
	}
	const char *line;
	size_t len;
	int got = 0;
	while (a->conn.fd >= 0 && (got = line_buffer_next(&a->in, &line, &len, &err)) == 1) {
		struct msg m;
		if (len == 0)
			continue;
		a->unanswered_since_ns = 0;
		if (msg_parse(line, len, &m, &err) < 0) {
			disconnect(a, !a->cfg->tls && tls_psk_looks_like_tls(line, len)
					      ? "it answered in TLS: it requires --tls-psk FILE"
					      : err.msg);
			return 0;
		}
		if (handle_message(a, &m) < 0)
			disconnect(a, "cannot go on with this connection");
		msg_free(&m);
	}
	if (got < 0)
		disconnect(a, err.msg);
	return 0;
}

int agent_run(const struct agent_config *cfg, volatile int *stop, struct ms_err *err)
{
	static struct agent a; /* large tables: not on the stack */
	memset(&a, 0, sizeof a);
	a.cfg = cfg;
	a.conn.fd = -1;
	a.invalidate_pending = cfg->invalidate;
	a.serve_up = -1;
	learn_exports(&a);
	if (cfg->rswap_control && serve_pid(cfg->rswap_control) == 0) /* said now, not at the first inform */
		note_serve_state(&a, false, "not running (no one serves its control socket)");
	struct jsonl_reader reader;
	jsonl_reader_init(&reader, stdin, "<stdin>");
	/* unbuffered: poll on the descriptor then sees every line that arrived */
	if (cfg->read_stdin)
		setvbuf(stdin, NULL, _IONBF, 0);
	int stdin_open = cfg->read_stdin;
	a.backoff_ns = BACKOFF_MIN_NS;
	next_controller(&a, NULL);
	struct metrics_server *metrics = NULL;
	if (cfg->metrics && !(metrics = metrics_server_start(cfg->metrics, err))) {
		jsonl_reader_free(&reader);
		return -1;
	}
	uint64_t next_metrics = 0;
	while (!*stop && !a.left) {
		if (metrics && monotonic_ns() >= next_metrics) {
			struct ms_err merr = {0};
			if (publish_metrics(&a, metrics, &merr) < 0)
				log_warn("--metrics: %s", merr.msg);
			next_metrics = monotonic_ns() + NS_PER_S;
		}
		uint64_t now = monotonic_ns();
		if (a.conn.fd < 0 && now >= a.next_connect_ns) {
			struct ms_err cerr = {0};
			if (conn_connect(&a.conn, a.target, cfg->tls, 5000, &cerr) < 0) {
				/* a refused key is worth saying every time; a controller still down once */
				if (strstr(cerr.msg, "TLS") || !a.controller_down_said)
					log_warn("controller %s: %s (trying again every %llu ms at most)", a.target, cerr.msg,
						 (unsigned long long)(cfg->backoff_max_ns / NS_PER_MS));
				if (!a.controller_down_said)
					a.controller_down_since_ns = now;
				a.controller_down_said = true;
				log_debug("controller %s: %s (next try in %llu ms)", a.target, cerr.msg,
					  (unsigned long long)(a.backoff_ns / NS_PER_MS));
				next_controller(&a, NULL); /* another of --gmc's list, if it has several */
				a.next_connect_ns = now + a.backoff_ns;
				a.backoff_ns = a.backoff_ns * 2 > cfg->backoff_max_ns ? cfg->backoff_max_ns : a.backoff_ns * 2;
			} else {
				choose_address(&a);
				if (a.controller_down_said)
					log_warn("controller %s reached again after %.1f s", a.target,
						 (double)(monotonic_ns() - a.controller_down_since_ns) / 1e9);
				a.controller_down_said = false;
				log_info("connected to the controller %s as node %s", a.target, cfg->node);
				if (send_register(&a) < 0 || send_inform(&a) < 0 ||
				    (a.invalidate_pending && send_msg(&a, request_new(&a, MSG_INVALIDATE)) < 0))
					disconnect(&a, "cannot send");
				else
					a.invalidate_pending = 0;
			}
		}
		if (a.conn.fd >= 0 && a.unanswered_since_ns && monotonic_ns() - a.unanswered_since_ns > silence_limit_ns(&a)) {
			log_warn("controller %s: no answer for %.1f s (stuck, or no longer the leader): trying the next", a.target,
				 (double)(monotonic_ns() - a.unanswered_since_ns) / 1e9);
			a.redirected = true; /* not this one again at once: the next of the list */
			a.redirect[0] = '\0';
			disconnect(&a, "no answer in time (stuck, or no longer the leader)");
		}
		if (a.conn.fd >= 0 && monotonic_ns() >= a.next_inform_ns) {
			if (send_inform(&a) < 0)
				disconnect(&a, "cannot send");
			/* a shortfall is asked for again every interval until it is covered */
			else if (a.have_reservoir && a.remote_need > used_bytes(&a))
				send_alloc(&a, own_domain(&a), a.remote_need - used_bytes(&a), "reservoir shortfall");
		}
		/* what TLS decrypted already is read before waiting: poll does not see it */
		while (conn_pending(&a.conn))
			read_controller(&a);
		struct pollfd fds[2] = {{a.conn.fd, POLLIN, 0}, {stdin_open ? 0 : -1, POLLIN, 0}};
		if (poll(fds, 2, 200) <= 0)
			continue;
		if (a.conn.fd >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)))
			read_controller(&a);
		if (stdin_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			json_t *rec;
			struct ms_err rerr = {0};
			int rc = jsonl_read(&reader, &rec, &rerr);
			if (rc == 1) {
				if (take_record(&a, &reader, rec, &rerr) < 0)
					rc = -1;
				json_decref(rec);
			}
			if (rc == 0)
				stdin_open = 0;
			else if (rc < 0)
				log_warn("%s", rerr.msg); /* a bad record is skipped: the agent keeps serving */
		}
	}
	metrics_server_stop(metrics);
	jsonl_reader_free(&reader);
	if (a.conn.fd >= 0)
		conn_close(&a.conn);
	line_buffer_free(&a.in);
	(void)err;
	return 0;
}
