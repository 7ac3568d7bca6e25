/* --freeze: stop a process with SIGSTOP for a consistent snapshot, and let
 * it go on with SIGCONT.  A process found already stopped is left stopped. */
#ifndef MSH_FREEZE_H
#define MSH_FREEZE_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

struct freeze {
	pid_t pid;
	bool stopped_by_us;
};

int freeze_process(struct freeze *fz, pid_t pid, struct ms_err *err);
void thaw_process(struct freeze *fz);

#endif
