/* The host side of a MemNet shared space (issue 13): one tmpfs per domain,
 * under $MEMSHARE_SHARE_DIR (default /run/memshare/share).  A libvirt guest
 * sees it through virtiofs or 9p, a container through a bind mount; the host
 * resizes it live with a tmpfs remount.  msshare creates and watches spaces,
 * msballoon's memnet policy resizes them: both go through this file. */
#ifndef MS_SHARE_SPACE_H
#define MS_SHARE_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <stdint.h>

#include "error.h"

#define SHARE_SPACE_DEFAULT_ROOT "/run/memshare/share"

/* The root every space lives under: $MEMSHARE_SHARE_DIR, else the default. */
const char *share_space_root(void);
/* The directory of DOMAIN's space: $MEMSHARE_SHARE_DIR/DOMAIN, default /run/memshare/share/DOMAIN.
 * A cgroup domain's leading '/' is not doubled; '.' and '..' components are refused (bad input). */
int share_space_dir(const char *domain, char *out, size_t outlen, struct ms_err *err);
/* size and used bytes and file count of the tmpfs at DIR (statfs); refuses a DIR that is not a tmpfs mount. */
int share_space_usage(const char *dir, uint64_t *size_bytes, uint64_t *used_bytes, uint64_t *files, struct ms_err *err);
/* mount -o remount,size=SIZE; refuses (ms_fail_input) a size below used + margin_bytes, naming both figures. */
int share_space_resize(const char *dir, uint64_t size_bytes, uint64_t margin_bytes, struct ms_err *err);
/* Is DIR the root of a tmpfs mount?  1 yes, 0 no (absent, another file system, a subdirectory), -1 error. */
int share_space_is_mounted(const char *dir, struct ms_err *err);
/* Make DIR (and its parents) and mount a fresh tmpfs of SIZE there (mode 0777 so that any
 * guest or container user may leave jobs in it).  Refuses a DIR that already holds a mount. */
int share_space_mount(const char *dir, uint64_t size_bytes, struct ms_err *err);
/* Unmount the tmpfs at DIR (its contents are lost) and remove the empty directory.
 * EBUSY (a process still has a file open there) is retried for a moment, then reported;
 * `detach` unmounts lazily instead (MNT_DETACH: the tmpfs lives on until its last user goes). */
int share_space_unmount(const char *dir, bool detach, struct ms_err *err);
/* A space mounted away from the root (msshare create --dir DIR): a symbolic link
 * $MEMSHARE_SHARE_DIR/DOMAIN -> DIR, which share_space_dir follows. */
int share_space_link(const char *domain, const char *dir, struct ms_err *err);
/* Remove that link, if there is one. */
void share_space_unlink(const char *domain);
/* Is the tmpfs at DIR also mounted somewhere else (a bind mount into a container), as this
 * process or one of PIDS sees its mounts?  1 with the other mount point in WHERE, 0 no, -1 error. */
int share_space_mounted_elsewhere(const char *dir, const pid_t *pids, size_t npids, char *where, size_t len,
				  struct ms_err *err);

#endif
