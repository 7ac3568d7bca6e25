/* `msrswap client`: the consumer's per-host daemon.  Each protected domain
 * gets a device (a tier store: host RAM, remote exports, local disk with an
 * asynchronous copy of everything) served over NBD on one unix socket, the
 * export named after the domain.  Tier targets and remotes change at run
 * time through the control socket; "tier" statistics records feed msballoon. */
#ifndef MSRSWAP_CLIENT_H
#define MSRSWAP_CLIENT_H

#include <stdint.h>

#include "error.h"
#include "jsonl.h"

struct client_config {
	const char *listen;         /* unix:PATH that QEMU connects to */
	const char *control;
	uint64_t ram_bytes;         /* host-local RAM tier shared by all devices */
	const char *disk_dir;       /* where the devices' disk tiers live */
	const char *fuse_dir;       /* NULL, or where the devices appear as files (FUSE) */
	uint64_t stats_interval_ns;
	const char *metrics_addr;   /* --metrics ADDR:PORT; NULL: none */
	struct jsonl_writer *out;
};

int client_run(const struct client_config *cfg, volatile int *stop, struct ms_err *err);

/* Write a Linux swap signature (label "memshare") at the start of a backend. */
struct backend_ops;
int write_swap_header(const struct backend_ops *ops, void *self, uint64_t size, struct ms_err *err);

#endif
