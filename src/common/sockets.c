#include "sockets.h"

#include <errno.h>
#include <stdbool.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static int unix_address(const char *path, struct sockaddr_un *sa, struct ms_err *err)
{
	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (!*path || strlen(path) >= sizeof sa->sun_path)
		return ms_fail_input(err, "unix socket path '%s' is empty or longer than %zu bytes", path, sizeof sa->sun_path - 1);
	strcpy(sa->sun_path, path);
	return 0;
}

/* "host:port" → host and port strings; "[v6]:port" and ":port" too. */
static int split_host_port(const char *addr, char *host, size_t hlen, char *port, size_t plen, struct ms_err *err)
{
	const char *colon = strrchr(addr, ':');
	if (!colon || !colon[1])
		return ms_fail_input(err, "address '%s': expected HOST:PORT, [IPV6]:PORT, :PORT or unix:PATH", addr);
	size_t n = (size_t)(colon - addr);
	const char *h = addr;
	if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') {
		h++;
		n -= 2;
	}
	if (n >= hlen || strlen(colon + 1) >= plen)
		return ms_fail_input(err, "address '%s' is too long", addr);
	memcpy(host, h, n);
	host[n] = '\0';
	strcpy(port, colon + 1);
	return 0;
}

/* A numeric port must fit in 16 bits: getaddrinfo would take "99000" and
 * the socket would silently use 99000 mod 65536.  Service names ("nbd") are
 * left to getaddrinfo. */
static int check_port(const char *addr, const char *port, struct ms_err *err)
{
	if (strspn(port, "0123456789") != strlen(port))
		return 0;
	if (strlen(port) > 9 || strtoul(port, NULL, 10) > 65535)
		return ms_fail_input(err, "address '%s': port %s is out of range (0 to 65535)", addr, port);
	return 0;
}

static int resolve(const char *addr, bool passive, struct addrinfo **res, struct ms_err *err)
{
	char host[256], port[32];
	if (split_host_port(addr, host, sizeof host, port, sizeof port, err) < 0 || check_port(addr, port, err) < 0)
		return -1;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
	int rc = getaddrinfo(*host ? host : NULL, port, &hints, res);
	if (rc)
		return ms_fail_input(err, "address '%s': %s", addr, gai_strerror(rc));
	return 0;
}

/* Whether a process listens on the unix socket at sa: taking its path over
 * would cut it off from every later client. */
static bool unix_socket_alive(const struct sockaddr *sa, socklen_t len)
{
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return false;
	int rc = connect(probe, sa, len);
	int e = errno;
	close(probe);
	return rc == 0 || e == EAGAIN; /* EAGAIN: its backlog is full, it is there */
}

/* connect(), giving up after timeout_ms (0: no limit).  SO_SNDTIMEO bounds
 * the wait: a unix listener that is stopped and whose backlog is full would
 * otherwise block connect for ever.  The timeout is cleared afterwards so
 * the caller's writes keep their own pacing. */
static int connect_within(int fd, const struct sockaddr *sa, socklen_t len, uint64_t timeout_ms)
{
	struct timeval tv = {.tv_sec = (time_t)(timeout_ms / 1000), .tv_usec = (suseconds_t)(timeout_ms % 1000) * 1000};
	if (timeout_ms)
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int rc = connect(fd, sa, len);
	int saved = errno;
	if (timeout_ms) {
		struct timeval none = {0};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &none, sizeof none);
	}
	errno = saved;
	return rc;
}

/* A socket of family on sa, bound and listening (passive) or connected; -1 on failure. */
static int open_one(int family, const struct sockaddr *sa, socklen_t len, bool passive, uint64_t timeout_ms,
		    const char *addr, struct ms_err *err)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ms_fail_errno(err, "socket");
	int rc;
	if (passive) {
		int one = 1;
		if (family == AF_UNIX) {
			struct stat sb;
			const char *path = ((const struct sockaddr_un *)sa)->sun_path;
			if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode)) {
				if (unix_socket_alive(sa, len)) {
					close(fd);
					return ms_fail(err, "cannot listen on %s: another process listens there (a second daemon?)",
						       addr);
				}
				unlink(path); /* a socket left by a previous run */
			}
		} else {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		}
		rc = bind(fd, sa, len) < 0 || listen(fd, 64) < 0 ? -1 : 0;
	} else {
		rc = connect_within(fd, sa, len, timeout_ms);
		if (rc < 0 && (errno == EAGAIN || errno == EINPROGRESS)) {
			ms_fail(err, "cannot connect to %s: no answer within %llu ms (is the process stopped or overloaded?)",
				addr, (unsigned long long)timeout_ms);
			close(fd);
			return -1;
		}
	}
	if (rc < 0) {
		ms_fail_errno(err, passive ? "cannot listen on %s" : "cannot connect to %s", addr);
		close(fd);
		return -1;
	}
	return fd;
}

static int open_socket(const char *addr, bool passive, uint64_t timeout_ms, struct ms_err *err)
{
	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un sa;
		if (unix_address(addr + 5, &sa, err) < 0)
			return -1;
		return open_one(AF_UNIX, (struct sockaddr *)&sa, sizeof sa, passive, timeout_ms, addr, err);
	}
	struct addrinfo *res;
	if (resolve(addr, passive, &res, err) < 0)
		return -1;
	int fd = -1;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
		fd = open_one(ai->ai_family, ai->ai_addr, ai->ai_addrlen, passive, timeout_ms, addr, err);
	freeaddrinfo(res);
	return fd;
}

int listen_on(const char *addr, struct ms_err *err)
{
	return open_socket(addr, true, 0, err);
}

int connect_to(const char *addr, struct ms_err *err)
{
	return open_socket(addr, false, 0, err);
}

int connect_to_within(const char *addr, uint64_t timeout_ms, struct ms_err *err)
{
	return open_socket(addr, false, timeout_ms, err);
}

int write_all_fd(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

bool address_is_loopback(const char *addr)
{
	if (strncmp(addr, "unix:", 5) == 0)
		return true;
	const char *colon = strrchr(addr, ':');
	size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
	if (n == 0)
		return false; /* ":PORT" is every address */
	if ((n == 5 && strncmp(addr, "[::1]", 5) == 0) || (n == 9 && strncmp(addr, "localhost", 9) == 0))
		return true;
	return strncmp(addr, "127.", 4) == 0;
}
