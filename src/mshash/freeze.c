/* --freeze (freeze.h).  SIGSTOP reaches every thread of the process; the
 * process counts as stopped once its state in /proc/PID/stat is 'T'. */
#include "freeze.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "procfs.h"

static char process_state(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (read_small_file(path, buf, sizeof buf, NULL) < 0)
		return 0;
	const char *p = strrchr(buf, ')'); /* the name may hold spaces and ')' */
	return p && p[1] == ' ' ? p[2] : 0;
}

int freeze_process(struct freeze *fz, pid_t pid, struct ms_err *err)
{
	fz->pid = pid;
	fz->stopped_by_us = false;
	if (pid == getpid())
		return ms_fail_input(err, "--freeze: pid %d is mshash itself", (int)pid);
	if (process_state(pid) == 'T')
		return 0;
	if (kill(pid, SIGSTOP) != 0)
		return ms_fail_errno(err, "cannot stop pid %d (--freeze)", (int)pid);
	fz->stopped_by_us = true;
	for (int i = 0; i < 1000; i++) {
		char st = process_state(pid);
		if (st == 'T' || st == 't' || st == 0)
			return 0;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	return 0; /* stopping takes effect when its threads next leave the kernel */
}

void thaw_process(struct freeze *fz)
{
	if (fz->stopped_by_us)
		kill(fz->pid, SIGCONT);
	fz->stopped_by_us = false;
}
