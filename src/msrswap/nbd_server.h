/* The NBD server engine: the fixed-newstyle handshake and the transmission
 * phase with simple replies for one client connection, over any byte stream
 * (a socket, or a memory buffer for the fuzzer).  It knows nothing of where
 * exports come from (export_source) or what backs them (backend.h). */
#ifndef MSRSWAP_NBD_SERVER_H
#define MSRSWAP_NBD_SERVER_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "backend.h"
#include "error.h"

struct nbd_io {
	/* read up to len bytes: >0 count, 0 end of stream, <0 error */
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	/* NULL, or read without waiting: as read, but -1 with errno EAGAIN when nothing has arrived */
	ssize_t (*read_nowait)(void *ctx, void *buf, size_t len);
	/* write all of iov or fail (<0) */
	ssize_t (*writev)(void *ctx, const struct iovec *iov, int count);
	/* called once the handshake is over (NULL: nothing to do); a socket lifts its handshake timeout */
	void (*negotiated)(void *ctx);
	/* NULL: the server has no TLS, and NBD_OPT_STARTTLS is refused.  Otherwise
	 * TLS is required (the protocol's FORCEDTLS mode): every option but
	 * STARTTLS and ABORT is refused with NBD_REP_ERR_TLS_REQD until the client
	 * sends STARTTLS; after the NBD_REP_ACK this runs the TLS handshake, and
	 * from then on read and writev go through the TLS session.  <0 with err
	 * when the handshake fails. */
	int (*starttls)(void *ctx, struct ms_err *err);
	void *ctx;
};

struct export_source {
	/* The export called name ("" is the default export), kept alive until release; NULL if none. */
	struct nbd_export *(*acquire)(void *ctx, const char *name);
	void (*release)(void *ctx, struct nbd_export *export);
	/* Call fn for every export (NBD_OPT_LIST); stops when fn returns non-zero. */
	int (*for_each)(void *ctx, int (*fn)(void *arg, const struct nbd_export *export), void *arg);
	void *ctx;
};

struct nbd_server_options {
	uint64_t latency_ns;  /* added to every request (emulated far memory); 0 none */
	/* between requests, poll (read_nowait) this long before sleeping in read; 0 never */
	uint64_t busy_poll_ns;
	uint32_t max_payload; /* largest READ/WRITE accepted; 0: NBD_MAX_PAYLOAD (32 MiB) */
};

/* Serve one client until it disconnects.  Returns 0 after a clean end (DISC,
 * ABORT, or the client closing between requests), -1 with err when the client
 * broke the protocol or the stream failed: the caller just closes it. */
int nbd_serve(const struct nbd_io *io, const struct export_source *src, const struct nbd_server_options *opt,
	      struct ms_err *err);

/* An nbd_io on a connected socket (ctx: pointer to the int fd). */
extern const struct nbd_io nbd_fd_io_template;
ssize_t nbd_fd_read(void *ctx, void *buf, size_t len);
ssize_t nbd_fd_read_nowait(void *ctx, void *buf, size_t len);
ssize_t nbd_fd_writev(void *ctx, const struct iovec *iov, int count);

#endif
