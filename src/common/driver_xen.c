/* Xen backend (xen:///): libxenctrl for the hypervisor's view of each domain,
 * libxenstore for names and balloon targets, as `xl` does.
 *
 * UNTESTED ON A XEN HOST: the development and CI machines do not run under Xen
 * (no /dev/xen/privcmd), so this file is only compiled against libxen-dev and
 * its open() is checked to fail cleanly.  Before relying on it, run the tools
 * in a dom0 and compare with `xl list -l` and `xenstore-ls /local/domain`.
 *
 * Where each fact comes from:
 *   alloc_bytes   xenstore /local/domain/<id>/memory/target (KiB): the balloon
 *                 target the guest driver follows; else tot_pages
 *   max_bytes     xenstore memory/static-max (KiB), else max_pages
 *   rss_bytes     tot_pages: the pages the hypervisor gave the domain
 *   vcpus         nr_online_vcpus
 *   cpu_total_ns, cpu_user_ns   cpu_time: Xen accounts only vCPU time, which is
 *                 the guest's own time, so both carry it
 * Xen domains have no host process holding their memory. */
#include "driver.h"

#include <string.h>

static bool xen_handles(const char *uri)
{
	return strncmp(uri, "xen://", 6) == 0;
}

#ifndef HAVE_XEN

const struct driver_ops driver_xen_ops = {
	.name = "xen",
	.handles = xen_handles,
	.missing_dependency = "libxenctrl and libxenstore (libxen-dev)",
};

#else

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenstore.h>

#include "cleanup.h"
#include "units.h"

#define PRIVCMD "/dev/xen/privcmd"

struct xen_state {
	xc_interface *xc;
	struct xs_handle *xs;
	char *uri;
};

/* libxenctrl logs to stderr unless given a logger; errors reach the caller
 * through errno and our messages instead. */
static void xen_quiet_vmessage(struct xentoollog_logger *logger, xentoollog_level level, int errnoval,
			       const char *context, const char *format, va_list al)
{
}

static void xen_quiet_destroy(struct xentoollog_logger *logger) {}

static xentoollog_logger xen_quiet_logger = {
	.vmessage = xen_quiet_vmessage,
	.progress = NULL,
	.destroy = xen_quiet_destroy,
};

static void xen_close(void *state)
{
	struct xen_state *st = state;
	if (!st)
		return;
	if (st->xs)
		xs_close(st->xs);
	if (st->xc)
		xc_interface_close(st->xc);
	free(st->uri);
	free(st);
}

static int xen_open(const char *uri, void **state, struct ms_err *err)
{
	if (access(PRIVCMD, F_OK) < 0)
		return ms_fail(err, "%s: " PRIVCMD " is absent: this host is not running under Xen (dom0)", uri);
	struct xen_state *st = calloc(1, sizeof *st);
	if (!st || !(st->uri = strdup(uri))) {
		free(st);
		return ms_fail(err, "out of memory");
	}
	st->xc = xc_interface_open(&xen_quiet_logger, &xen_quiet_logger, 0);
	if (!st->xc) {
		ms_fail_errno(err, "%s: cannot open the Xen control interface (libxenctrl; are you root in dom0?)", uri);
		xen_close(st);
		return -1;
	}
	st->xs = xs_open(0);
	if (!st->xs) {
		ms_fail_errno(err, "%s: cannot connect to xenstore (is xenstored running?)", uri);
		xen_close(st);
		return -1;
	}
	*state = st;
	return 0;
}

/* A xenstore value under /local/domain/<id>/, NUL-terminated and malloc'd, or NULL. */
static char *xs_domain_read(struct xen_state *st, uint32_t domid, const char *key)
{
	char path[128];
	unsigned int len;
	snprintf(path, sizeof path, "/local/domain/%u/%s", domid, key);
	return xs_read(st->xs, XBT_NULL, path, &len);
}

static int64_t xs_domain_kib_as_bytes(struct xen_state *st, uint32_t domid, const char *key)
{
	_cleanup_free_ char *text = xs_domain_read(st, domid, key);
	if (!text)
		return MS_UNKNOWN;
	char *end;
	errno = 0;
	unsigned long long kib = strtoull(text, &end, 10);
	return errno || end == text ? MS_UNKNOWN : (int64_t)kib * 1024;
}

/* Every live domain (not dying, not shut down), in one call. */
static int xen_domains(struct xen_state *st, xc_domaininfo_t **out, int *count, struct ms_err *err)
{
	enum { MAX_DOMAINS = 1024 };
	xc_domaininfo_t *info = calloc(MAX_DOMAINS, sizeof *info);
	if (!info)
		return ms_fail(err, "out of memory");
	int n = xc_domain_getinfolist(st->xc, 0, MAX_DOMAINS, info);
	if (n < 0) {
		free(info);
		return ms_fail_errno(err, "%s: cannot list domains", st->uri);
	}
	int live = 0;
	for (int i = 0; i < n; i++)
		if (!(info[i].flags & (XEN_DOMINF_dying | XEN_DOMINF_shutdown)))
			info[live++] = info[i];
	*out = info;
	*count = live;
	return 0;
}

/* The hypervisor's record of the domain called `name`. */
static int find_domain(struct xen_state *st, const char *name, xc_domaininfo_t *out, struct ms_err *err)
{
	_cleanup_free_ xc_domaininfo_t *info = NULL;
	int n;
	if (xen_domains(st, &info, &n, err) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *dom_name = xs_domain_read(st, info[i].domain, "name");
		if (dom_name && strcmp(dom_name, name) == 0) {
			*out = info[i];
			return 0;
		}
	}
	return ms_fail_input(err, "unknown domain '%s' at %s", name, st->uri);
}

static int xen_list_domains(void *state, struct domain_list *out, struct ms_err *err)
{
	struct xen_state *st = state;
	_cleanup_free_ xc_domaininfo_t *info = NULL;
	int n;
	if (xen_domains(st, &info, &n, err) < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		_cleanup_free_ char *name = xs_domain_read(st, info[i].domain, "name");
		if (!name)
			continue; /* being built or torn down: xenstore has no entry yet or any more */
		if (domain_list_add(out, name, err) < 0) {
			domain_list_free(out);
			return -1;
		}
	}
	return 0;
}

static int64_t pages_as_bytes(uint64_t pages)
{
	/* Xen reports "no limit" as a huge page count. */
	return pages > (uint64_t)INT64_MAX / XC_PAGE_SIZE ? MS_UNKNOWN : (int64_t)(pages * XC_PAGE_SIZE);
}

static int xen_read_facts(void *state, const char *domain, struct domain_facts *out, struct ms_err *err)
{
	struct xen_state *st = state;
	xc_domaininfo_t info;
	if (find_domain(st, domain, &info, err) < 0)
		return -1;
	out->rss_bytes = pages_as_bytes(info.tot_pages);
	out->alloc_bytes = xs_domain_kib_as_bytes(st, info.domain, "memory/target");
	if (out->alloc_bytes == MS_UNKNOWN)
		out->alloc_bytes = out->rss_bytes;
	out->max_bytes = xs_domain_kib_as_bytes(st, info.domain, "memory/static-max");
	if (out->max_bytes == MS_UNKNOWN)
		out->max_bytes = pages_as_bytes(info.max_pages);
	out->vcpus = info.nr_online_vcpus;
	out->cpu_total_ns = (int64_t)info.cpu_time;
	out->cpu_user_ns = (int64_t)info.cpu_time;
	return 0;
}

static int xen_ram_pids(void *state, const char *domain, struct pid_list *out, struct ms_err *err)
{
	struct xen_state *st = state;
	xc_domaininfo_t info;
	if (find_domain(st, domain, &info, err) < 0)
		return -1;
	return ms_fail(err, "%s: domain '%s': xen domains have no host process holding their memory", st->uri, domain);
}

static int xen_set_alloc(void *state, const char *domain, uint64_t bytes, struct ms_err *err)
{
	struct xen_state *st = state;
	xc_domaininfo_t info;
	if (find_domain(st, domain, &info, err) < 0)
		return -1;
	int64_t max = xs_domain_kib_as_bytes(st, info.domain, "memory/static-max");
	if (max == MS_UNKNOWN)
		max = pages_as_bytes(info.max_pages);
	char want[16], limit[16];
	if (max != MS_UNKNOWN && bytes > (uint64_t)max)
		return ms_fail_input(err, "%s: domain '%s': %s is above its maximum memory %s", st->uri, domain,
				     format_size(bytes, want, sizeof want), format_size((uint64_t)max, limit, sizeof limit));
	if (bytes < 1024)
		return ms_fail_input(err, "%s: domain '%s': a memory size of %llu bytes is below 1 KiB", st->uri,
				     domain, (unsigned long long)bytes);
	char path[128], value[32];
	snprintf(path, sizeof path, "/local/domain/%u/memory/target", info.domain);
	int len = snprintf(value, sizeof value, "%llu", (unsigned long long)(bytes / 1024));
	if (!xs_write(st->xs, XBT_NULL, path, value, (unsigned int)len))
		return ms_fail_errno(err, "%s: domain '%s': cannot write %s", st->uri, domain, path);
	return 0;
}

static int xen_host_memory(void *state, uint64_t *total_bytes, struct ms_err *err)
{
	struct xen_state *st = state;
	xc_physinfo_t info = {0};
	if (xc_physinfo(st->xc, &info) < 0)
		return ms_fail_errno(err, "xen:///: xc_physinfo");
	*total_bytes = (uint64_t)info.total_pages * XC_PAGE_SIZE;
	return 0;
}

const struct driver_ops driver_xen_ops = {
	.name = "xen",
	.handles = xen_handles,
	.open = xen_open,
	.close = xen_close,
	.list_domains = xen_list_domains,
	.read_facts = xen_read_facts,
	.ram_pids = xen_ram_pids,
	.set_alloc = xen_set_alloc,
	.host_memory = xen_host_memory,
};

#endif
