/* One-sided RDMA through libfabric: the provider registers export memory
 * for remote read and write, a client reads and writes it with fi_read /
 * fi_write, and the provider's CPU does no work per request (with software
 * providers one thread of it drives the progress of the transport).
 *
 * Provider side: fabric_server_open binds an endpoint of the chosen provider
 * (default "tcp;ofi_rxm", FI_EP_RDM), fabric_register registers one export's
 * memory (a key per export: a random requested key when the provider takes
 * requested keys, the provider's own otherwise) and describes it in one line
 * of text (fabric_region_descriptor) that the client needs: the provider,
 * the endpoint's address, the key, the remote address and the length.  That
 * line is raw write access to the memory: it travels only over the
 * authenticated control path (serve.c: NBD with TLS-PSK, or a unix socket).
 * fabric_deregister closes the memory registration: the key is dead when it
 * returns, and the memory may be reused.
 *
 * Client side: fabric_client_open connects to a descriptor's endpoint;
 * fabric_read / fabric_write move bytes with a deadline per operation.  A
 * stopped provider gives no error at all, so the deadline is ours: an
 * operation past it returns ETIMEDOUT and the connection is "broken"
 * (every operation then fails with EIO) until fabric_client_reconnect closes
 * it (fi_close, which also drops the late completions) and opens it again.
 *
 * Compiled with libfabric when the Makefile found it (HAVE_LIBFABRIC);
 * otherwise every call fails with "not supported: built without libfabric". */
#ifndef MSRSWAP_FABRIC_H
#define MSRSWAP_FABRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define FABRIC_DEFAULT_PROVIDER "tcp;ofi_rxm"
#define FABRIC_DESCRIPTOR_MAX 1024

struct fabric_server;
struct fabric_region;
struct fabric_client;

/* Is the program built with libfabric? */
bool fabric_built_in(void);

/* `host`: the address to bind (the NBD listener's host; "127.0.0.1" for a
 * unix one).  `busy_poll`: the progress thread polls without sleeping (a CPU
 * for the lowest latency) rather than blocking in fi_cq_sread.  A provider
 * that does not exist or cannot do RMA here fails with the list of what
 * fi_getinfo offers. */
int fabric_server_open(const char *provider, const char *host, bool busy_poll, struct fabric_server **out,
		       struct ms_err *err);
/* Every region must have been deregistered before. */
void fabric_server_close(struct fabric_server *fs);
/* Memory the provider pins (verbs: FI_MR_ALLOCATED/FI_MR_LOCAL family): the
 * owner must not give pages of a registered region back with MADV_DONTNEED. */
bool fabric_server_pins(const struct fabric_server *fs);
const char *fabric_server_provider(const struct fabric_server *fs);

int fabric_register(struct fabric_server *fs, void *base, uint64_t len, struct fabric_region **out,
		    struct ms_err *err);
void fabric_deregister(struct fabric_region *region);
const char *fabric_region_descriptor(const struct fabric_region *region);

/* `provider` NULL: the descriptor's. */
int fabric_client_open(const char *descriptor, const char *provider, unsigned timeout_ms,
		       struct fabric_client **out, struct ms_err *err);
void fabric_client_close(struct fabric_client *fc);
uint64_t fabric_client_size(const struct fabric_client *fc);
/* 0, EINVAL (outside the region), ETIMEDOUT (no completion by the
 * deadline: the connection is broken now) or EIO (an error completion, or a
 * broken connection); why says what happened.  Any length and offset. */
int fabric_read(struct fabric_client *fc, void *buf, size_t len, uint64_t offset, char *why, size_t why_len);
int fabric_write(struct fabric_client *fc, const void *buf, size_t len, uint64_t offset, char *why, size_t why_len);
bool fabric_client_broken(const struct fabric_client *fc);
/* Close the endpoint and open it again; no operation may be running. */
int fabric_client_reconnect(struct fabric_client *fc, struct ms_err *err);

/* Asynchronous operations on the client's bounce buffers (a load generator
 * keeps up to 64 of them in flight from one thread): fabric_submit copies
 * `data` (a write; NULL for a read) into a free buffer, starts an operation
 * of at most FABRIC_IO_MAX bytes and returns its ticket; fabric_reap waits up
 * to the deadline for one to finish and returns its ticket and status, and
 * fabric_ticket_buffer then holds the data read, until the next submit.  Not
 * to be mixed with fabric_read/write from other threads. */
#define FABRIC_IO_MAX (64u * 1024)
int fabric_submit(struct fabric_client *fc, bool write, const void *data, size_t len, uint64_t offset, int *ticket);
void *fabric_ticket_buffer(struct fabric_client *fc, int ticket);
int fabric_reap(struct fabric_client *fc, int *ticket, char *why, size_t why_len);

#endif
