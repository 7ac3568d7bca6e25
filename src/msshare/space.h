/* msshare's operations on one domain's space: create (mount, and attach to a
 * libvirt guest), resize, rm, list.  The tmpfs itself is share_space.c's. */
#ifndef MSSHARE_SPACE_H
#define MSSHARE_SPACE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "driver.h"
#include "jsonl.h"

struct space_options {
	const char *dir;       /* mount here instead of under the root (linked from there) */
	const char *tag;       /* the guest's mount tag (libvirt) */
	const char *transport; /* "virtiofs" or "9p" (libvirt) */
	const char *accessmode; /* 9p: "passthrough", "mapped" (default) or "squash" */
	bool force;            /* rm: even while the space is mounted elsewhere or in use */
};

/* The directory of DOMAIN's space; bad input when the domain is unknown or has no space. */
int space_locate(struct driver *drv, const char *domain, char *dir, size_t len, struct ms_err *err);
/* A "share_space" record describing the space at DIR. */
json_t *space_record(const char *domain, const char *dir, struct ms_err *err);
int space_create(struct driver *drv, const char *domain, uint64_t size, const struct space_options *o, json_t **rec,
		 struct ms_err *err);
int space_resize(struct driver *drv, const char *domain, uint64_t size, json_t **rec, struct ms_err *err);
int space_remove(struct driver *drv, const char *domain, const struct space_options *o, struct ms_err *err);
/* One "share_space" record per domain of the driver that has a space. */
int space_list(struct driver *drv, struct jsonl_writer *out, struct ms_err *err);

#endif
