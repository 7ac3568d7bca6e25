/* Files that readers must never see half-written: model files, metrics for
 * node_exporter's textfile collector. */
#ifndef MS_FILES_H
#define MS_FILES_H

#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Write DATA to a temporary file beside PATH ("PATH.tmp.XXXXXX", so that a
 * collector matching "*.prom" never reads it), with MODE, fsync'd, then
 * rename it over PATH.  On failure PATH is untouched and nothing is left. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, struct ms_err *err);

#endif
