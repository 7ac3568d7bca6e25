/* Scope-bound cleanup (GCC/Clang `cleanup` attribute): resources are released
 * on every return path, so early error returns cannot leak. */
#ifndef MS_CLEANUP_H
#define MS_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void ms_freep(void *p) { free(*(void **)p); }
static inline void ms_fclosep(FILE **f) { if (*f) fclose(*f); }
static inline void ms_closep(int *fd) { if (*fd >= 0) close(*fd); }

#define _cleanup_free_ __attribute__((cleanup(ms_freep)))
#define _cleanup_fclose_ __attribute__((cleanup(ms_fclosep)))
#define _cleanup_close_ __attribute__((cleanup(ms_closep)))

#endif
