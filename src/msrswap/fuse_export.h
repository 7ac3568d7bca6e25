/* The client daemon's devices as regular files in a FUSE mount, for hosts
 * whose kernel has no NBD client: DIR/NAME is the device NAME, of its size;
 * reads, writes, fsync and hole punching (what a loop device sends for a
 * discard) go straight to the device's backend.  Every file is opened in
 * direct I/O mode, so the kernel keeps no page cache copy of it and a loop
 * device with direct I/O on top (host_swap.h) reaches the daemon with every
 * request.  The root directory lists the devices. */
#ifndef MSRSWAP_FUSE_EXPORT_H
#define MSRSWAP_FUSE_EXPORT_H

#include "error.h"
#include "nbd_server.h"

struct fuse_export;

/* Mount at dir (created if missing) and serve from a thread of its own.
 * The source must outlive the mount. */
int fuse_export_start(const char *dir, const struct export_source *source, struct fuse_export **out,
		      struct ms_err *err);
/* Number of device files open now (a loop device holds its file open). */
unsigned fuse_export_open_files(struct fuse_export *fx);
/* Unmount (lazily when a file is still open) and stop serving. */
void fuse_export_stop(struct fuse_export *fx);

#endif
