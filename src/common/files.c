#include "files.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sockets.h"

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, struct ms_err *err)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
		return ms_fail_input(err, "%s: path too long", path);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return ms_fail_errno(err, "cannot create %s", tmp);
	int rc = 0;
	if (write_all_fd(fd, data, len) < 0 || fchmod(fd, mode) != 0 || fsync(fd) != 0)
		rc = ms_fail_errno(err, "writing %s", tmp);
	if (close(fd) != 0 && rc == 0)
		rc = ms_fail_errno(err, "writing %s", tmp);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = ms_fail_errno(err, "cannot rename %s to %s", tmp, path);
	if (rc < 0)
		unlink(tmp);
	return rc;
}
