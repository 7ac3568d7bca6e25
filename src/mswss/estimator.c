#include "estimator.h"

#include <string.h>

const struct wss_estimator *const wss_estimators[] = {
	&est_auto, &est_refbit, &est_sample, &est_refault, &est_balloon, NULL,
};

const struct wss_estimator *wss_estimator_find(const char *name)
{
	for (size_t i = 0; wss_estimators[i]; i++)
		if (strcmp(wss_estimators[i]->name, name) == 0)
			return wss_estimators[i];
	return NULL;
}

void wss_estimate_init(struct wss_estimate *e)
{
	memset(e, 0, sizeof *e);
	e->wss_bytes = e->low_bytes = e->high_bytes = -1;
	e->scanned_bytes = e->sample_pages = e->sample_touched = -1;
}
