/* The "wss" record (memshare(7) is the reference for its fields). */
#ifndef MSWSS_RECORD_H
#define MSWSS_RECORD_H

#include <jansson.h>

#include "estimator.h"

json_t *wss_record(const struct wss_window *w, const char *method, const struct wss_estimate *e, double scan_cpu_ms);

#endif
