#include "nbd_server.h"

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nbd_proto.h"
#include "units.h"

/* One connection's state. */
struct conn {
	const struct nbd_io *io;
	const struct export_source *src;
	const struct nbd_server_options *opt;
	struct nbd_export *export; /* chosen by NBD_OPT_GO / EXPORT_NAME */
	bool no_zeroes;
	bool tls_begun;            /* STARTTLS acknowledged: the handshake was tried */
	bool tls_active;           /* and it succeeded: options and transmission go through TLS */
	bool tls_refused;          /* an option was answered NBD_REP_ERR_TLS_REQD */
	bool structured;           /* NBD_OPT_STRUCTURED_REPLY acknowledged */
	/* NBD_OPT_SET_META_CONTEXT chose base:allocation for the export named
	 * meta_export; block status is served if GO then picks that export */
	bool meta_set;
	bool meta_active;          /* ... and it did: NBD_CMD_BLOCK_STATUS is served */
	char meta_export[NBD_MAX_NAME + 1];
	uint32_t max_payload;
	void *buf;                 /* request payload, max_payload bytes */
	uint32_t reply_len;        /* bytes of buf a reply carries */
	bool reply_hole;           /* a structured READ answered with one hole chunk */
};

static int read_exact(struct conn *c, void *buf, size_t len, struct ms_err *err)
{
	char *p = buf;
	while (len) {
		ssize_t n = c->io->read(c->io->ctx, p, len);
		if (n == 0)
			return ms_fail(err, "client closed the connection mid-message");
		if (n < 0)
			return ms_fail_errno(err, "read from client");
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_all(struct conn *c, const struct iovec *iov, int count, struct ms_err *err)
{
	if (c->io->writev(c->io->ctx, iov, count) < 0)
		return ms_fail_errno(err, "write to client");
	return 0;
}

/* ---- handshake ---- */

static int send_option_reply(struct conn *c, uint32_t option, uint32_t type, const void *data, uint32_t len,
			     struct ms_err *err)
{
	struct __attribute__((packed)) {
		uint64_t magic;
		uint32_t option, type, length;
	} head = {htobe64(NBD_REP_MAGIC), htobe32(option), htobe32(type), htobe32(len)};
	struct iovec iov[2] = {{&head, sizeof head}, {(void *)data, len}};
	return write_all(c, iov, len ? 2 : 1, err);
}

static int send_error_reply(struct conn *c, uint32_t option, uint32_t type, const char *text, struct ms_err *err)
{
	return send_option_reply(c, option, type, text, (uint32_t)strlen(text), err);
}

static uint16_t transmission_flags(const struct conn *c, const struct nbd_export *e)
{
	uint16_t flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH | NBD_FLAG_SEND_FUA | NBD_FLAG_CAN_MULTI_CONN;
	if (c->structured)
		flags |= NBD_FLAG_SEND_DF; /* a read is always one chunk */
	if (e->read_only)
		flags |= NBD_FLAG_READ_ONLY;
	else
		flags |= NBD_FLAG_SEND_TRIM | NBD_FLAG_SEND_WRITE_ZEROES;
	return flags;
}

static int send_info(struct conn *c, uint32_t option, uint16_t type, const struct nbd_export *e, struct ms_err *err)
{
	unsigned char info[2 + NBD_MAX_NAME + 12];
	uint32_t len = 2;
	uint16_t be_type = htobe16(type);
	memcpy(info, &be_type, 2);
	switch (type) {
	case NBD_INFO_EXPORT: {
		uint64_t size = htobe64(e->size);
		uint16_t flags = htobe16(transmission_flags(c, e));
		memcpy(info + 2, &size, 8);
		memcpy(info + 10, &flags, 2);
		len = 12;
		break;
	}
	case NBD_INFO_NAME:
	case NBD_INFO_DESCRIPTION: {
		const char *text = type == NBD_INFO_NAME ? e->name : e->description;
		size_t n = text ? strlen(text) : 0;
		if (n > NBD_MAX_NAME)
			n = NBD_MAX_NAME;
		memcpy(info + 2, text ? text : "", n);
		len = 2 + (uint32_t)n;
		break;
	}
	case NBD_INFO_BLOCK_SIZE: {
		uint32_t sizes[3] = {htobe32(NBD_MIN_BLOCK), htobe32(NBD_PREFERRED_BLOCK), htobe32(c->max_payload)};
		memcpy(info + 2, sizes, 12);
		len = 14;
		break;
	}
	default:
		return 0; /* unknown requests are ignored, as the protocol says */
	}
	return send_option_reply(c, option, NBD_REP_INFO, info, len, err);
}

/* NBD_OPT_INFO / NBD_OPT_GO.  Returns 1 when GO chose an export (transmission begins). */
static int handle_info_go(struct conn *c, uint32_t option, const unsigned char *data, uint32_t len, struct ms_err *err)
{
	uint32_t name_len;
	uint16_t nreq;
	if (len < 6)
		return send_error_reply(c, option, NBD_REP_ERR_INVALID, "option too short", err);
	memcpy(&name_len, data, 4);
	name_len = be32toh(name_len);
	if (name_len > NBD_MAX_NAME || (uint64_t)name_len + 6 > len)
		return send_error_reply(c, option, NBD_REP_ERR_INVALID, "bad export name length", err);
	memcpy(&nreq, data + 4 + name_len, 2);
	nreq = be16toh(nreq);
	if ((uint64_t)6 + name_len + 2ULL * nreq != len)
		return send_error_reply(c, option, NBD_REP_ERR_INVALID, "bad information request count", err);
	char name[NBD_MAX_NAME + 1];
	memcpy(name, data + 4, name_len);
	name[name_len] = '\0';
	if (memchr(name, '\0', name_len))
		return send_error_reply(c, option, NBD_REP_ERR_INVALID, "export name contains NUL", err);
	struct nbd_export *e = c->src->acquire(c->src->ctx, name);
	if (!e)
		return send_error_reply(c, option, NBD_REP_ERR_UNKNOWN, "no such export", err);
	int rc = 0;
	bool sent_block_size = false;
	for (uint16_t i = 0; i < nreq && rc == 0; i++) {
		uint16_t type;
		memcpy(&type, data + 6 + name_len + 2 * i, 2);
		type = be16toh(type);
		if (type == NBD_INFO_EXPORT)
			continue; /* always sent last, below */
		sent_block_size |= type == NBD_INFO_BLOCK_SIZE;
		rc = send_info(c, option, type, e, err);
	}
	if (rc == 0 && !sent_block_size)
		rc = send_info(c, option, NBD_INFO_BLOCK_SIZE, e, err);
	if (rc == 0)
		rc = send_info(c, option, NBD_INFO_EXPORT, e, err);
	if (rc == 0)
		rc = send_option_reply(c, option, NBD_REP_ACK, NULL, 0, err);
	if (rc == 0 && option == NBD_OPT_GO) {
		c->export = e;
		c->meta_active = c->meta_set && strcmp(c->meta_export, name) == 0;
		return 1;
	}
	c->src->release(c->src->ctx, e);
	return rc;
}

struct list_arg {
	struct conn *c;
	struct ms_err *err;
};

static int list_one(void *arg, const struct nbd_export *e)
{
	struct list_arg *a = arg;
	unsigned char reply[4 + NBD_MAX_NAME];
	uint32_t n = (uint32_t)strnlen(e->name, NBD_MAX_NAME), be = htobe32(n);
	memcpy(reply, &be, 4);
	memcpy(reply + 4, e->name, n);
	return send_option_reply(a->c, NBD_OPT_LIST, NBD_REP_SERVER, reply, 4 + n, a->err) < 0 ? -1 : 0;
}

/* NBD_OPT_EXPORT_NAME: no option reply; the export's size and flags, or the connection is closed. */
static int handle_export_name(struct conn *c, const unsigned char *data, uint32_t len, struct ms_err *err)
{
	char name[NBD_MAX_NAME + 1];
	if (len > NBD_MAX_NAME)
		return ms_fail(err, "export name longer than %u bytes", NBD_MAX_NAME);
	memcpy(name, data, len);
	name[len] = '\0';
	struct nbd_export *e = c->src->acquire(c->src->ctx, name);
	if (!e)
		return ms_fail(err, "client asked for unknown export '%.64s'", name);
	struct __attribute__((packed)) {
		uint64_t size;
		uint16_t flags;
	} reply = {htobe64(e->size), htobe16(transmission_flags(c, e))};
	static const char zeroes[124];
	struct iovec iov[2] = {{&reply, sizeof reply}, {(void *)zeroes, sizeof zeroes}};
	if (write_all(c, iov, c->no_zeroes ? 1 : 2, err) < 0) {
		c->src->release(c->src->ctx, e);
		return -1;
	}
	c->export = e;
	c->meta_active = c->meta_set && strcmp(c->meta_export, name) == 0;
	return 1;
}

/* NBD_OPT_STARTTLS: on a server with TLS, acknowledge and run the handshake. */
static int handle_starttls(struct conn *c, uint32_t len, struct ms_err *err)
{
	if (!c->io->starttls)
		return send_error_reply(c, NBD_OPT_STARTTLS, NBD_REP_ERR_POLICY,
					"TLS is not enabled on this server (msrswap serve --tls-psk)", err);
	if (c->tls_active)
		return send_error_reply(c, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, "TLS is already active", err);
	if (len)
		return send_error_reply(c, NBD_OPT_STARTTLS, NBD_REP_ERR_INVALID, "NBD_OPT_STARTTLS takes no data", err);
	if (send_option_reply(c, NBD_OPT_STARTTLS, NBD_REP_ACK, NULL, 0, err) < 0)
		return -1;
	c->tls_begun = true;
	if (c->io->starttls(c->io->ctx, err) < 0)
		return -1;
	c->tls_active = true;
	/* what was negotiated in the clear is forgotten (the protocol's STARTTLS rules) */
	c->structured = c->meta_set = false;
	return 0;
}

/* With TLS required and not started yet, every option but STARTTLS and ABORT
 * is refused; EXPORT_NAME cannot be, so the connection ends.  1: refused. */
static int refuse_without_tls(struct conn *c, uint32_t option, struct ms_err *err)
{
	if (!c->io->starttls || c->tls_active || option == NBD_OPT_STARTTLS || option == NBD_OPT_ABORT)
		return 0;
	if (option == NBD_OPT_EXPORT_NAME)
		return ms_fail(err, "TLS is required and the client chose an export without starting TLS");
	c->tls_refused = true;
	return send_error_reply(c, option, NBD_REP_ERR_TLS_REQD, "TLS is required: send NBD_OPT_STARTTLS first", err) < 0
		       ? -1
		       : 1;
}

/* ---- structured replies and meta contexts ---- */

static int handle_structured_reply(struct conn *c, uint32_t len, struct ms_err *err)
{
	if (len)
		return send_error_reply(c, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ERR_INVALID,
					"NBD_OPT_STRUCTURED_REPLY takes no data", err);
	c->structured = true;
	return send_option_reply(c, NBD_OPT_STRUCTURED_REPLY, NBD_REP_ACK, NULL, 0, err);
}

/* Does a query name base:allocation?  LIST also takes the namespace "base:". */
static bool query_matches(uint32_t option, const unsigned char *query, uint32_t len)
{
	static const char full[] = NBD_META_BASE_ALLOCATION;
	if (len == sizeof full - 1 && memcmp(query, full, len) == 0)
		return true;
	return option == NBD_OPT_LIST_META_CONTEXT && len == 5 && memcmp(query, "base:", 5) == 0;
}

static int send_meta_context(struct conn *c, uint32_t option, struct ms_err *err)
{
	unsigned char reply[4 + sizeof NBD_META_BASE_ALLOCATION];
	/* LIST may give id 0; SET gives the id block status replies will carry */
	uint32_t id = htobe32(option == NBD_OPT_SET_META_CONTEXT ? NBD_META_ID_BASE_ALLOCATION : 0);
	memcpy(reply, &id, 4);
	memcpy(reply + 4, NBD_META_BASE_ALLOCATION, sizeof NBD_META_BASE_ALLOCATION - 1);
	return send_option_reply(c, option, NBD_REP_META_CONTEXT, reply, sizeof reply - 1, err);
}

/* Does a LIST query ask for the export's fabric descriptor?  Only asked by
 * name, so that a plain LIST of every context never carries a key. */
static bool query_is_fabric(uint32_t option, const unsigned char *query, uint32_t len)
{
	static const char name[] = NBD_META_MSRSWAP_FABRIC;
	return option == NBD_OPT_LIST_META_CONTEXT && len == sizeof name - 1 && memcmp(query, name, len) == 0;
}

/* The export's one-sided RDMA descriptor (serve --fabric), as a context of
 * id 0.  The option phase has passed the TLS check (refuse_without_tls)
 * when the server has TLS: the key never travels unauthenticated. */
static int send_fabric_context(struct conn *c, const struct nbd_export *e, struct ms_err *err)
{
	size_t n = strlen(e->fabric_context);
	unsigned char reply[4 + 2048];
	if (n > sizeof reply - 4)
		return 0;
	memset(reply, 0, 4);
	memcpy(reply + 4, e->fabric_context, n);
	return send_option_reply(c, NBD_OPT_LIST_META_CONTEXT, NBD_REP_META_CONTEXT, reply, (uint32_t)(4 + n), err);
}

static uint32_t get_be32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return be32toh(v);
}

/* NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT: export name, then
 * queries; this server knows one context, base:allocation. */
static int handle_meta_context(struct conn *c, uint32_t option, const unsigned char *data, uint32_t len,
			       struct ms_err *err)
{
	if (option == NBD_OPT_SET_META_CONTEXT) {
		c->meta_set = false; /* each SET replaces the last one, even a failed one */
		if (!c->structured)
			return send_error_reply(c, option, NBD_REP_ERR_INVALID, "negotiate structured replies first", err);
	}
	if (len < 8)
		return send_error_reply(c, option, NBD_REP_ERR_INVALID, "option too short", err);
	uint32_t name_len = get_be32(data);
	if (name_len > NBD_MAX_NAME || (uint64_t)name_len + 8 > len)
		return send_error_reply(c, option, NBD_REP_ERR_INVALID, "bad export name length", err);
	char name[NBD_MAX_NAME + 1];
	memcpy(name, data + 4, name_len);
	name[name_len] = '\0';
	if (memchr(name, '\0', name_len))
		return send_error_reply(c, option, NBD_REP_ERR_INVALID, "export name contains NUL", err);
	uint32_t nqueries = get_be32(data + 4 + name_len), pos = 8 + name_len;
	bool wanted = option == NBD_OPT_LIST_META_CONTEXT && nqueries == 0; /* LIST of nothing: all contexts */
	bool fabric = false;
	for (uint32_t i = 0; i < nqueries; i++) {
		if (len - pos < 4 || get_be32(data + pos) > len - pos - 4)
			return send_error_reply(c, option, NBD_REP_ERR_INVALID, "bad query length", err);
		uint32_t qlen = get_be32(data + pos);
		wanted |= query_matches(option, data + pos + 4, qlen);
		fabric |= query_is_fabric(option, data + pos + 4, qlen);
		pos += 4 + qlen;
	}
	if (pos != len)
		return send_error_reply(c, option, NBD_REP_ERR_INVALID, "bad query count", err);
	struct nbd_export *e = c->src->acquire(c->src->ctx, name);
	if (!e)
		return send_error_reply(c, option, NBD_REP_ERR_UNKNOWN, "no such export", err);
	int rc = 0;
	if (fabric && e->fabric_context && !__atomic_load_n(&e->revoked, __ATOMIC_SEQ_CST))
		rc = send_fabric_context(c, e, err);
	c->src->release(c->src->ctx, e);
	if (rc < 0 || (wanted && send_meta_context(c, option, err) < 0))
		return -1;
	if (wanted && option == NBD_OPT_SET_META_CONTEXT) {
		c->meta_set = true;
		memcpy(c->meta_export, name, name_len + 1);
	}
	return send_option_reply(c, option, NBD_REP_ACK, NULL, 0, err);
}

static int negotiate_options(struct conn *c, struct ms_err *err);

/* Returns 1 when an export was chosen, 0 when the client aborted, -1 on error. */
static int negotiate(struct conn *c, struct ms_err *err)
{
	int rc = negotiate_options(c, err);
	if (rc <= 0 && c->tls_refused && !c->tls_begun) {
		/* a client without TLS (or without credentials): say so rather than how it left */
		if (rc == 0)
			ms_fail(err, "TLS is required and the client did not start TLS (it aborted)");
		else
			ms_fail_prefix(err, "TLS is required and the client did not start TLS");
		return -1;
	}
	return rc;
}

static int negotiate_options(struct conn *c, struct ms_err *err)
{
	struct __attribute__((packed)) {
		uint64_t magic, opt_magic;
		uint16_t flags;
	} hello = {htobe64(NBD_MAGIC), htobe64(NBD_IHAVEOPT), htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)};
	struct iovec iov = {&hello, sizeof hello};
	uint32_t client_flags;
	if (write_all(c, &iov, 1, err) < 0 || read_exact(c, &client_flags, 4, err) < 0)
		return -1;
	client_flags = be32toh(client_flags);
	if (client_flags & ~(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES))
		return ms_fail(err, "client sent unknown handshake flags 0x%x", client_flags);
	c->no_zeroes = client_flags & NBD_FLAG_C_NO_ZEROES;
	unsigned char *data = c->buf;
	for (unsigned round = 0; round < NBD_MAX_OPTIONS; round++) {
		struct __attribute__((packed)) {
			uint64_t magic;
			uint32_t option, length;
		} head;
		if (read_exact(c, &head, sizeof head, err) < 0)
			return -1;
		if (be64toh(head.magic) != NBD_IHAVEOPT)
			return ms_fail(err, "bad option magic from client");
		uint32_t option = be32toh(head.option), len = be32toh(head.length);
		if (len > NBD_MAX_OPTION_LEN || len > c->max_payload) {
			/* a length this large from a client that is still haggling: not worth reading */
			return ms_fail(err, "option %u with %u bytes of data: too long", option, len);
		}
		if (read_exact(c, data, len, err) < 0)
			return -1;
		int rc = refuse_without_tls(c, option, err);
		if (rc < 0)
			return -1;
		if (rc == 1)
			continue;
		switch (option) {
		case NBD_OPT_EXPORT_NAME:
			return handle_export_name(c, data, len, err);
		case NBD_OPT_ABORT:
			send_option_reply(c, option, NBD_REP_ACK, NULL, 0, err);
			return 0;
		case NBD_OPT_LIST:
			if (len) {
				rc = send_error_reply(c, option, NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data", err);
				break;
			}
			{
				struct list_arg arg = {c, err};
				rc = c->src->for_each(c->src->ctx, list_one, &arg);
			}
			if (rc == 0)
				rc = send_option_reply(c, option, NBD_REP_ACK, NULL, 0, err);
			break;
		case NBD_OPT_INFO:
		case NBD_OPT_GO:
			rc = handle_info_go(c, option, data, len, err);
			if (rc == 1)
				return 1;
			break;
		case NBD_OPT_STARTTLS:
			rc = handle_starttls(c, len, err);
			break;
		case NBD_OPT_STRUCTURED_REPLY:
			rc = handle_structured_reply(c, len, err);
			break;
		case NBD_OPT_LIST_META_CONTEXT:
		case NBD_OPT_SET_META_CONTEXT:
			rc = handle_meta_context(c, option, data, len, err);
			break;
		default:
			/* extended headers and the rest: not offered */
			rc = send_error_reply(c, option, NBD_REP_ERR_UNSUP, "option not supported", err);
		}
		if (rc < 0)
			return -1;
	}
	return ms_fail(err, "client sent more than %u options", NBD_MAX_OPTIONS);
}

/* ---- transmission ---- */

struct request {
	uint16_t flags, type;
	uint64_t cookie, offset;
	uint32_t length;
};

static int send_reply(struct conn *c, uint64_t cookie, uint32_t error, const void *data, uint32_t len, struct ms_err *err)
{
	struct __attribute__((packed)) {
		uint32_t magic, error;
		uint64_t cookie;
	} head = {htobe32(NBD_SIMPLE_REPLY_MAGIC), htobe32(error), cookie};
	struct iovec iov[2] = {{&head, sizeof head}, {(void *)data, len}};
	return write_all(c, iov, error || !len ? 1 : 2, err);
}

/* One structured reply chunk, the last of its reply: header, then up to two payload pieces. */
static int send_chunk(struct conn *c, uint64_t cookie, uint16_t type, const void *a, uint32_t alen, const void *b,
		      uint32_t blen, struct ms_err *err)
{
	struct __attribute__((packed)) {
		uint32_t magic;
		uint16_t flags, type;
		uint64_t cookie;
		uint32_t length;
	} head = {htobe32(NBD_STRUCTURED_REPLY_MAGIC), htobe16(NBD_REPLY_FLAG_DONE), htobe16(type), cookie,
		  htobe32(alen + blen)};
	struct iovec iov[3] = {{&head, sizeof head}, {(void *)a, alen}, {(void *)b, blen}};
	return write_all(c, iov, blen ? 3 : alen ? 2 : 1, err);
}

/* The reply to a command: structured for READ and BLOCK_STATUS when
 * structured replies are on (a READ is one chunk: data, or a hole), simple
 * otherwise, as the protocol allows. */
static int send_command_reply(struct conn *c, const struct request *r, uint32_t error, struct ms_err *err)
{
	bool structured = c->structured && (r->type == NBD_CMD_READ || r->type == NBD_CMD_BLOCK_STATUS);
	if (!structured)
		return send_reply(c, r->cookie, error, c->buf, r->type == NBD_CMD_READ ? r->length : 0, err);
	if (error) {
		struct __attribute__((packed)) {
			uint32_t error;
			uint16_t message_len;
		} body = {htobe32(error), 0};
		return send_chunk(c, r->cookie, NBD_REPLY_TYPE_ERROR, &body, sizeof body, NULL, 0, err);
	}
	if (r->type == NBD_CMD_BLOCK_STATUS)
		return send_chunk(c, r->cookie, NBD_REPLY_TYPE_BLOCK_STATUS, c->buf, c->reply_len, NULL, 0, err);
	if (r->length == 0)
		return send_chunk(c, r->cookie, NBD_REPLY_TYPE_NONE, NULL, 0, NULL, 0, err);
	uint64_t offset = htobe64(r->offset);
	if (c->reply_hole) {
		struct __attribute__((packed)) {
			uint64_t offset;
			uint32_t size;
		} hole = {offset, htobe32(r->length)};
		return send_chunk(c, r->cookie, NBD_REPLY_TYPE_OFFSET_HOLE, &hole, sizeof hole, NULL, 0, err);
	}
	return send_chunk(c, r->cookie, NBD_REPLY_TYPE_OFFSET_DATA, &offset, 8, c->buf, r->length, err);
}

static void record_latency(struct export_stats *s, uint64_t ns)
{
	uint64_t us = ns / 1000;
	unsigned bucket = 0;
	while (bucket < 23 && us >= (1ULL << bucket))
		bucket++;
	__atomic_fetch_add(&s->latency_us_log2[bucket], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&s->latency_ns_sum, ns, __ATOMIC_RELAXED);
}

static void wait_until(uint64_t deadline_ns)
{
	struct timespec ts = {(time_t)(deadline_ns / 1000000000ULL), (long)(deadline_ns % 1000000000ULL)};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* The flags each command may carry (the protocol's "Request message flags"):
 * FUA on any command (NBD_FLAG_SEND_FUA is advertised), NO_HOLE on
 * WRITE_ZEROES, DF on READ once structured replies are on, REQ_ONE on
 * BLOCK_STATUS.  FAST_ZERO is not advertised: refused, as nbdkit does. */
static uint16_t allowed_flags(const struct conn *c, uint16_t type)
{
	switch (type) {
	case NBD_CMD_WRITE_ZEROES: return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_NO_HOLE;
	case NBD_CMD_READ: return NBD_CMD_FLAG_FUA | (c->structured ? NBD_CMD_FLAG_DF : 0);
	case NBD_CMD_BLOCK_STATUS: return NBD_CMD_FLAG_FUA | NBD_CMD_FLAG_REQ_ONE;
	default: return NBD_CMD_FLAG_FUA;
	}
}

/* EINVAL for a request the protocol forbids; 0 if it may run. */
static uint32_t validate(const struct conn *c, const struct request *r)
{
	if (r->flags & ~allowed_flags(c, r->type))
		return NBD_EINVAL;
	if (r->type == NBD_CMD_FLUSH && (r->offset || r->length))
		return NBD_EINVAL; /* "the client MUST send offset and length 0" */
	if (r->type == NBD_CMD_BLOCK_STATUS && (!c->meta_active || r->length == 0))
		return NBD_EINVAL; /* no context chosen, or nothing to describe */
	return 0;
}

static uint32_t execute_admitted(struct conn *c, const struct request *r);

/* Run one command against the backend; the NBD error code (0 on success).
 * An export revoked meanwhile (removed while we are connected) answers
 * ESHUTDOWN: its backend is gone. */
static uint32_t execute(struct conn *c, const struct request *r)
{
	struct nbd_export *e = c->export;
	__atomic_add_fetch(&e->in_flight, 1, __ATOMIC_SEQ_CST);
	uint32_t error = __atomic_load_n(&e->revoked, __ATOMIC_SEQ_CST) ? NBD_ESHUTDOWN : execute_admitted(c, r);
	__atomic_sub_fetch(&e->in_flight, 1, __ATOMIC_SEQ_CST);
	return error;
}

/* Is the whole range of a read a hole?  Then a structured reply says so in
 * 12 bytes instead of sending the zeros. */
static bool all_hole(const struct nbd_export *e, const struct request *r)
{
	uint32_t len;
	bool data;
	return e->ops->extent && r->length && e->ops->extent(e->self, r->length, r->offset, &len, &data) == 0 && !data &&
	       len == r->length;
}

/* NBD_CMD_BLOCK_STATUS for base:allocation: the reply's payload (context
 * id, then length and flags per extent) in c->buf.  With REQ_ONE, one
 * extent; without, as many as fit, which may cover less than asked. */
static int describe_extents(struct conn *c, const struct request *r)
{
	const struct nbd_export *e = c->export;
	unsigned char *out = c->buf;
	uint32_t id = htobe32(NBD_META_ID_BASE_ALLOCATION), max = (c->max_payload - 4) / 8, n = 0;
	if (max > NBD_MAX_EXTENTS)
		max = NBD_MAX_EXTENTS;
	if (r->flags & NBD_CMD_FLAG_REQ_ONE)
		max = 1;
	memcpy(out, &id, 4);
	uint64_t offset = r->offset, end = r->offset + r->length;
	while (offset < end && n < max) {
		uint32_t len = (uint32_t)(end - offset);
		bool data = true;
		if (e->ops->extent) {
			int rc = e->ops->extent(e->self, len, offset, &len, &data);
			if (rc)
				return rc;
		}
		uint32_t desc[2] = {htobe32(len), htobe32(data ? 0 : NBD_STATE_HOLE | NBD_STATE_ZERO)};
		memcpy(out + 4 + 8 * n, desc, 8);
		n++;
		offset += len;
	}
	c->reply_len = 4 + 8 * n;
	return 0;
}

static uint32_t execute_admitted(struct conn *c, const struct request *r)
{
	struct nbd_export *e = c->export;
	struct export_stats *s = &e->stats;
	uint32_t invalid = validate(c, r);
	if (invalid)
		return invalid;
	bool writes = r->type == NBD_CMD_WRITE || r->type == NBD_CMD_TRIM || r->type == NBD_CMD_WRITE_ZEROES;
	if (writes && e->read_only)
		return NBD_EPERM;
	if (r->type != NBD_CMD_FLUSH && (r->offset > e->size || r->length > e->size - r->offset))
		return r->type == NBD_CMD_WRITE || r->type == NBD_CMD_WRITE_ZEROES ? NBD_ENOSPC : NBD_EINVAL;
	int rc;
	switch (r->type) {
	case NBD_CMD_READ:
		c->reply_hole = c->structured && all_hole(e, r);
		rc = c->reply_hole ? 0 : e->ops->read(e->self, c->buf, r->length, r->offset);
		c->reply_len = r->length;
		__atomic_fetch_add(&s->reads, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&s->read_bytes, c->reply_hole ? 0 : r->length, __ATOMIC_RELAXED);
		break;
	case NBD_CMD_WRITE:
		rc = e->ops->write(e->self, c->buf, r->length, r->offset);
		if (rc == 0 && (r->flags & NBD_CMD_FLAG_FUA))
			rc = e->ops->flush(e->self);
		__atomic_fetch_add(&s->writes, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&s->write_bytes, r->length, __ATOMIC_RELAXED);
		break;
	case NBD_CMD_FLUSH:
		rc = e->ops->flush(e->self);
		__atomic_fetch_add(&s->flushes, 1, __ATOMIC_RELAXED);
		break;
	case NBD_CMD_TRIM:
		rc = e->ops->trim(e->self, r->length, r->offset);
		__atomic_fetch_add(&s->trims, 1, __ATOMIC_RELAXED);
		break;
	case NBD_CMD_WRITE_ZEROES:
		rc = e->ops->write_zeroes(e->self, r->length, r->offset);
		__atomic_fetch_add(&s->zeroes, 1, __ATOMIC_RELAXED);
		break;
	case NBD_CMD_BLOCK_STATUS:
		rc = describe_extents(c, r);
		__atomic_fetch_add(&s->block_statuses, 1, __ATOMIC_RELAXED);
		break;
	default:
		return NBD_EINVAL;
	}
	if (rc)
		__atomic_fetch_add(&s->errors, 1, __ATOMIC_RELAXED);
	return (uint32_t)rc;
}

/* Read in the transmission phase.  With busy polling, a client that sends
 * within the poll time finds the server awake: neither side pays for a
 * wake-up (measured on a unix socket: p50 at queue depth 1 down by a fifth
 * when a CPU is free, at the price of that CPU time; worse when none is). */
static ssize_t transmit_read(struct conn *c, void *buf, size_t len)
{
	if (c->opt->busy_poll_ns && c->io->read_nowait) {
		uint64_t deadline = monotonic_ns() + c->opt->busy_poll_ns;
		do {
			ssize_t n = c->io->read_nowait(c->io->ctx, buf, len);
			if (n >= 0 || errno != EAGAIN)
				return n;
		} while (monotonic_ns() < deadline);
	}
	return c->io->read(c->io->ctx, buf, len);
}

static int read_request(struct conn *c, struct request *r, bool *eof, struct ms_err *err)
{
	struct __attribute__((packed)) {
		uint32_t magic;
		uint16_t flags, type;
		uint64_t cookie, offset;
		uint32_t length;
	} wire;
	/* one read for the whole header in the common case; a clean end is the
	 * client closing between requests */
	ssize_t n = transmit_read(c, &wire, sizeof wire);
	if (n == 0) {
		*eof = true;
		return 0;
	}
	if (n < 0)
		return ms_fail_errno(err, "read from client");
	if ((size_t)n < sizeof wire && read_exact(c, (char *)&wire + n, sizeof wire - (size_t)n, err) < 0)
		return -1;
	if (be32toh(wire.magic) != NBD_REQUEST_MAGIC)
		return ms_fail(err, "bad request magic 0x%08x", be32toh(wire.magic));
	r->flags = be16toh(wire.flags);
	r->type = be16toh(wire.type);
	r->cookie = wire.cookie; /* opaque: echoed as sent */
	r->offset = be64toh(wire.offset);
	r->length = be32toh(wire.length);
	return 0;
}

static int transmit(struct conn *c, struct ms_err *err)
{
	for (;;) {
		struct request r = {0};
		bool eof = false;
		if (read_request(c, &r, &eof, err) < 0)
			return -1;
		if (eof || r.type == NBD_CMD_DISC)
			return 0;
		uint64_t start = monotonic_ns();
		uint32_t error = 0;
		c->reply_hole = false;
		bool payload_ok = r.length <= c->max_payload;
		if (r.type == NBD_CMD_WRITE) {
			/* the payload follows whatever we decide; one we cannot buffer means the stream is lost */
			if (!payload_ok)
				return ms_fail(err, "write of %u bytes exceeds the %u-byte maximum", r.length, c->max_payload);
			if (read_exact(c, c->buf, r.length, err) < 0)
				return -1;
		}
		if (r.type == NBD_CMD_READ && !payload_ok)
			error = NBD_EINVAL;
		else
			error = execute(c, &r);
		if (c->opt->latency_ns)
			wait_until(start + c->opt->latency_ns);
		record_latency(&c->export->stats, monotonic_ns() - start);
		if (send_command_reply(c, &r, error, err) < 0)
			return -1;
	}
}

int nbd_serve(const struct nbd_io *io, const struct export_source *src, const struct nbd_server_options *opt,
	      struct ms_err *err)
{
	struct conn c = {.io = io, .src = src, .opt = opt, .max_payload = opt->max_payload ? opt->max_payload : NBD_MAX_PAYLOAD};
	if (c.max_payload < NBD_MAX_NAME + 8)
		c.max_payload = NBD_MAX_NAME + 8; /* room for the longest option we accept */
	if (!(c.buf = malloc(c.max_payload)))
		return ms_fail(err, "out of memory");
	if (opt->latency_ns)
		prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* the emulated delay must not gain 50 µs of slack */
	int rc = negotiate(&c, err);
	if (rc == 1 && io->negotiated)
		io->negotiated(io->ctx);
	if (rc == 1)
		rc = transmit(&c, err);
	if (c.export)
		src->release(src->ctx, c.export);
	free(c.buf);
	return rc < 0 ? -1 : 0;
}

ssize_t nbd_fd_read(void *ctx, void *buf, size_t len)
{
	int fd = *(int *)ctx;
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n >= 0 || errno != EINTR)
			return n;
	}
}

ssize_t nbd_fd_read_nowait(void *ctx, void *buf, size_t len)
{
	int fd = *(int *)ctx;
	for (;;) {
		ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
		if (n >= 0 || errno != EINTR)
			return n; /* EAGAIN (or EWOULDBLOCK, the same on Linux): nothing yet */
	}
}

ssize_t nbd_fd_writev(void *ctx, const struct iovec *iov, int count)
{
	int fd = *(int *)ctx;
	struct iovec local[4];
	size_t total = 0;
	if (count > 4)
		return -1;
	memcpy(local, iov, (size_t)count * sizeof *iov);
	struct iovec *p = local;
	for (int i = 0; i < count; i++)
		total += iov[i].iov_len;
	size_t done = 0;
	while (done < total) {
		ssize_t n = writev(fd, p, count);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
		while (count && (size_t)n >= p->iov_len) {
			n -= (ssize_t)p->iov_len;
			p++;
			count--;
		}
		if (count) {
			p->iov_base = (char *)p->iov_base + n;
			p->iov_len -= (size_t)n;
		}
	}
	return (ssize_t)total;
}

const struct nbd_io nbd_fd_io_template = {.read = nbd_fd_read, .read_nowait = nbd_fd_read_nowait, .writev = nbd_fd_writev};
