/* Listening addresses as users write them: "unix:/run/x.sock",
 * "127.0.0.1:10809", "[::1]:10809", ":10809" (all addresses). */
#ifndef MS_SOCKETS_H
#define MS_SOCKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* A listening socket for addr; for unix sockets a stale socket file is replaced. */
int listen_on(const char *addr, struct ms_err *err);
/* unix:PATH, 127.0.0.0/8, [::1] and localhost: traffic that never leaves the host. */
bool address_is_loopback(const char *addr);
/* A connected socket to addr (same syntax). */
int connect_to(const char *addr, struct ms_err *err);
/* The same, failing when the connection is not made within timeout_ms
 * (0: no limit). */
int connect_to_within(const char *addr, uint64_t timeout_ms, struct ms_err *err);
/* Write all n bytes to fd (a socket, a pipe, a file), retrying after EINTR
 * and short writes: 0, or -1 with errno. */
int write_all_fd(int fd, const void *buf, size_t n);

#endif
