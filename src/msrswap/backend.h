/* What an NBD export is backed by: a table of block operations.  The provider
 * (`msrswap serve`) backs exports with reservoir RAM (store_ram.c); the
 * consumer's tier store will back its device with RAM, remote exports and a
 * disk file.  Operations return 0 or a positive errno value that the NBD
 * server sends to the client (EIO, ENOSPC, EINVAL, EPERM, ENOMEM, EOVERFLOW).
 * Every operation may be called from several connection threads at once:
 * each backend does its own locking. */
#ifndef MSRSWAP_BACKEND_H
#define MSRSWAP_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

struct backend_ops {
	int (*read)(void *self, void *buf, uint32_t len, uint64_t offset);
	int (*write)(void *self, const void *buf, uint32_t len, uint64_t offset);
	int (*flush)(void *self);
	/* Forget the range: it reads back as zeros (RAM is freed: a Tmem flush). */
	int (*trim)(void *self, uint32_t len, uint64_t offset);
	int (*write_zeroes)(void *self, uint32_t len, uint64_t offset);
	/* NULL, or the extent at offset (for NBD block status): how many of
	 * the len bytes from there are alike, *extent_len (> 0), and whether
	 * they hold data (false: a hole, which reads as zeros). */
	int (*extent)(void *self, uint32_t len, uint64_t offset, uint32_t *extent_len, bool *data);
};

/* Per-export counters, updated by the NBD server (atomics). */
struct export_stats {
	uint64_t reads, writes, flushes, trims, zeroes, block_statuses;
	uint64_t read_bytes, write_bytes; /* read_bytes: of data; a read answered with a hole counts none */
	uint64_t errors;
	/* request service time histogram: bucket i counts requests that took < 2^i µs (last: the rest) */
	uint64_t latency_us_log2[24];
	uint64_t latency_ns_sum; /* their service times added up (a Prometheus histogram's _sum) */
};

struct nbd_export {
	char *name;
	char *description;
	uint64_t size;               /* bytes, a multiple of 4096 */
	bool read_only;
	const struct backend_ops *ops;
	void *self;
	struct export_stats stats;
	/* Revocation: a reservoir export removed while clients still use it
	 * gives its memory back at once.  The NBD server counts each operation
	 * in in_flight and refuses it (ESHUTDOWN) once revoked is set; the
	 * remover sets revoked, waits for in_flight to drain, then frees the
	 * backend.  Both atomic. */
	bool revoked;
	unsigned in_flight;
	/* serve --fabric: "msrswap:fabric=DESCRIPTOR" (fabric.h), the export's
	 * one-sided RDMA access, answered to an authenticated client's
	 * NBD_OPT_LIST_META_CONTEXT query "msrswap:fabric"; NULL: none */
	char *fabric_context;
};

#endif
