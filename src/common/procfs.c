#include "procfs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "driver.h"

long read_small_file(const char *path, char *buf, size_t len, struct ms_err *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ms_fail_errno(err, "cannot open %s", path);
	size_t used = 0;
	while (used + 1 < len) {
		ssize_t n = read(fd, buf + used, len - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ms_fail_errno(err, "cannot read %s", path);
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	return (long)used;
}

int read_u64_file(const char *path, uint64_t *out, struct ms_err *err)
{
	char buf[64];
	if (read_small_file(path, buf, sizeof buf, err) < 0)
		return -1;
	if (strncmp(buf, "max", 3) == 0) {
		*out = UINT64_MAX;
		return 0;
	}
	char *end;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return ms_fail(err, "%s: expected a number, read '%.20s'", path, buf);
	*out = v;
	return 0;
}

int write_text_file(const char *path, const char *text, struct ms_err *err)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return ms_fail_errno(err, "cannot open %s", path);
	size_t len = strlen(text);
	ssize_t n = write(fd, text, len);
	if (n < 0)
		return ms_fail_errno(err, "cannot write '%s' to %s", text, path);
	if ((size_t)n != len)
		return ms_fail(err, "short write to %s", path);
	return 0;
}

int64_t text_lookup_i64(const char *text, const char *key)
{
	size_t klen = strlen(key);
	for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (strncmp(line, key, klen) != 0)
			continue;
		const char *p = line + klen;
		if (*p != ' ' && *p != ':' && *p != '\t' && *p != '=')
			continue; /* "rss" must not match "rss_huge" */
		while (*p == ' ' || *p == ':' || *p == '\t' || *p == '=')
			p++;
		if (!isdigit((unsigned char)*p))
			return MS_UNKNOWN;
		return (int64_t)strtoll(p, NULL, 10);
	}
	return MS_UNKNOWN;
}

uint64_t host_mem_total_bytes(void)
{
	char buf[4096];
	if (read_small_file("/proc/meminfo", buf, sizeof buf, NULL) < 0)
		return 0;
	int64_t kib = text_lookup_i64(buf, "MemTotal");
	return kib > 0 ? (uint64_t)kib * 1024 : 0;
}

int pid_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

uint64_t page_size_bytes(void)
{
	static uint64_t size;
	if (!size)
		size = (uint64_t)sysconf(_SC_PAGESIZE);
	return size;
}

int64_t ns_per_clock_tick(void)
{
	long hz = sysconf(_SC_CLK_TCK);
	return hz > 0 ? 1000000000LL / hz : 10000000LL;
}
