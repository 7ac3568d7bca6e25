/* Swap for the host itself on a file of the client daemon's FUSE mount
 * (fuse_export.h): a loop device in direct I/O mode over the file, then
 * swapon(2) with a priority.  For hosts whose kernel has no NBD client; the
 * loop device clears itself once swapoff closes it. */
#ifndef MSRSWAP_HOST_SWAP_H
#define MSRSWAP_HOST_SWAP_H

#include <stddef.h>

#include "error.h"

#define HOST_SWAP_PRIORITY_MAX 32767

/* Put a loop device over file (direct I/O, 4 KiB blocks) and swap on it with
 * priority (0..HOST_SWAP_PRIORITY_MAX), discarding freed pages.  The loop
 * device's path goes to dev. */
int host_swap_on(const char *file, int priority, char *dev, size_t dev_len, struct ms_err *err);

/* The loop device over file, if any ("" if none); 1 found, 0 none. */
int host_swap_find(const char *file, char *dev, size_t dev_len);

/* swapoff the loop device over file and free it; its pages come back into
 * RAM first, which fails (ENOMEM) when they do not fit. */
int host_swap_off(const char *file, char *dev, size_t dev_len, struct ms_err *err);

#endif
