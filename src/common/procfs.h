/* Reading the small text files of /proc and cgroupfs. */
#ifndef MS_PROCFS_H
#define MS_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* Read a whole small file into buf (NUL-terminated). Returns its length or -1. */
long read_small_file(const char *path, char *buf, size_t len, struct ms_err *err);
/* A file holding one unsigned number ("max" reads as UINT64_MAX). */
int read_u64_file(const char *path, uint64_t *out, struct ms_err *err);
int write_text_file(const char *path, const char *text, struct ms_err *err);

/* Value of `key` in "key value" or "Key:  value kB" lines (memory.stat,
 * /proc/meminfo, smaps_rollup): the first number after the key.
 * Returns MS_UNKNOWN (-1) when the key is absent. */
int64_t text_lookup_i64(const char *text, const char *key);

/* MemTotal of this host in bytes (0 if unreadable). */
uint64_t host_mem_total_bytes(void);
/* Is pid alive (and visible to us)? */
int pid_alive(pid_t pid);
uint64_t page_size_bytes(void);
/* Nanoseconds per clock tick (USER_HZ) of /proc/PID/stat and cpuacct.stat. */
int64_t ns_per_clock_tick(void);

#endif
