/* The msgmc wire protocol: one JSON object per line over TCP (msgmc(1),
 * PROTOCOL).  Every message has "v" (the version, 1), "type" and "id" (the
 * sender's request number, echoed by the reply).  The parser is strict: an
 * unknown type, a missing or mistyped field, a bad name or an overlong line
 * is an error, and the peer that sent it is dropped. */
#ifndef MSGMC_PROTO_H
#define MSGMC_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "units.h"

#define MSG_VERSION 1
/* Longest accepted message line (without its newline). */
#define MSG_MAX_LINE 65536
/* The longest reply a command accepts from the controller: the nodes or
 * leases of a large cluster in one message (the controller is no hostile
 * peer to its own commands, but a bound keeps a broken one from eating memory). */
#define MSG_MAX_REPLY (256u << 20)
/* The largest size (any *_bytes field) in a message, and that msgmc takes
 * from its command line: beyond any machine, and room to add two. */
#define MSG_BYTES_MAX MS_SIZE_MAX
/* Longest node, domain or export name. */
#define MSG_NAME_MAX 63

enum msg_type {
	MSG_REPLY,
	/* agent (LMC) -> controller */
	MSG_REGISTER,   /* vMCA Register, with what the agent serves and uses (MM-M restart) */
	MSG_INFORM,     /* GMC_inform + Statistics: reservoir and node statistics */
	MSG_INVALIDATE, /* vMCA Invalidate: I lost my exports (unclean restart) */
	/* agent or command line -> controller */
	MSG_ALLOC,   /* GMC_alloc / Grant-Any */
	MSG_RELEASE, /* GMC_release */
	MSG_RECLAIM, /* GMC_reclaim */
	MSG_LEAVE,   /* Leave-Req */
	MSG_STATUS,
	MSG_NODES,
	MSG_LEASES,
	/* controller -> agent */
	MSG_LMC_ALLOC,   /* create an export, return its address */
	MSG_LMC_RELEASE, /* drop an export */
	MSG_LMC_RECLAIM, /* consumer: stop using a remote export (fail over to the disk copy) */
	MSG_ATTACH,      /* consumer: a lease was granted, use it */
	MSG_LEAVE_NOTIFY,
	MSG_INVALIDATE_NOTIFY,
	MSG_TYPE_COUNT
};

struct msg {
	enum msg_type type;
	uint64_t id;
	json_t *obj; /* the whole message (a new reference): fields are read from it */
};

const char *msg_type_name(enum msg_type t);

/* Parse and validate one line (no newline needed) of at most MSG_MAX_LINE
 * bytes (msg_parse_max: max bytes). On success *out holds a reference the
 * caller drops with msg_free. */
int msg_parse(const char *line, size_t len, struct msg *out, struct ms_err *err);
int msg_parse_max(const char *line, size_t len, size_t max, struct msg *out, struct ms_err *err);
void msg_free(struct msg *m);

/* Field accessors for a validated message (the parser checked their presence
 * and type where they are required). */
const char *msg_str(const struct msg *m, const char *key);
uint64_t msg_u64(const struct msg *m, const char *key);
bool msg_has(const struct msg *m, const char *key);

/* A name as the protocol accepts it: 1..63 of [A-Za-z0-9._:@-]. */
bool msg_name_valid(const char *s);

/* A new message {"v":1,"type":...,"id":id}. */
json_t *msg_new(enum msg_type type, uint64_t id);
/* A reply to request id: {"v":1,"type":"reply","id":id,"ok":true}, or with "error". */
json_t *msg_reply_ok(uint64_t id);
json_t *msg_reply_error(uint64_t id, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The message as one line with its newline (malloc'd), or NULL. */
char *msg_line(json_t *msg, size_t *len);

/* Splits a byte stream into lines, refusing lines longer than max. */
struct line_buffer {
	char *buf;
	size_t len, cap;
	size_t start; /* where the lines not yet handed out begin */
	size_t scan;  /* bytes before this offset hold no newline */
	size_t max;   /* the longest line (0: MSG_MAX_LINE) */
};
void line_buffer_free(struct line_buffer *b);
/* Append received bytes. -1 when the buffer would exceed the line limit. */
int line_buffer_append(struct line_buffer *b, const char *data, size_t n, struct ms_err *err);
/* The next complete line (without its newline) in *line and *len, valid until the
 * next append; 1 when there is one, 0 when more bytes are needed, -1 when the
 * pending partial line is already too long. */
int line_buffer_next(struct line_buffer *b, const char **line, size_t *len, struct ms_err *err);

#endif
