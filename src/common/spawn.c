#include "spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "units.h"

/* Run argv (stdout discarded) within timeout_s; its last line on stderr is the error when it fails. */
int run_tool(char *const argv[], int timeout_s, struct ms_err *err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return ms_fail_errno(err, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return ms_fail_errno(err, "fork");
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(pipefd[1], 2);
		execvp(argv[0], argv);
		dprintf(2, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pipefd[1]);
	char text[4096];
	size_t used = 0;
	uint64_t deadline = monotonic_ns() + (uint64_t)timeout_s * NS_PER_S;
	bool timed_out = false;
	for (;;) {
		uint64_t now = monotonic_ns();
		struct pollfd p = {pipefd[0], POLLIN, 0};
		if (now >= deadline || poll(&p, 1, (int)((deadline - now) / NS_PER_MS) + 1) == 0) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		char buf[1024];
		ssize_t r = read(pipefd[0], buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++) { /* keep the tail: the last line matters */
			if (used == sizeof text - 1) {
				memmove(text, text + sizeof text / 2, used - sizeof text / 2);
				used -= sizeof text / 2;
			}
			text[used++] = buf[i];
		}
	}
	close(pipefd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	while (used && (text[used - 1] == '\n' || text[used - 1] == ' '))
		used--;
	text[used] = '\0';
	char *last = strrchr(text, '\n');
	last = last ? last + 1 : text;
	if (timed_out)
		return ms_fail(err, "%s %s: no result within %d s", argv[0], argv[1], timeout_s);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return ms_fail(err, "%s", *last ? last : "the command failed");
	return 0;
}

bool tool_in_path(const char *name)
{
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		char file[PATH_MAX];
		if (len > 0 && snprintf(file, sizeof file, "%.*s/%s", (int)len, path, name) < (int)sizeof file &&
		    access(file, X_OK) == 0)
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}
