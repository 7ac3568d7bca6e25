/* The driver layer: one table of operations per backend (libvirt, xen,
 * cgroup), chosen by the connection URI as in virsh.  A "domain" is whatever
 * the backend runs a workload in: a libvirt domain, a Xen domain, a cgroup or
 * a process.  Every tool talks to domains only through this interface. */
#ifndef MS_DRIVER_H
#define MS_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* A fact the driver cannot know is MS_UNKNOWN; consumers omit it from records. */
#define MS_UNKNOWN (-1)

/* Facts about one domain at one instant.  Counters are cumulative since an
 * arbitrary origin; callers difference two readings to get rates. */
struct domain_facts {
	int64_t alloc_bytes; /* memory the domain has now: balloon size, memory limit */
	int64_t max_bytes;   /* the most it can be given (maximum memory, hard limit) */
	int64_t rss_bytes;   /* host memory resident for the domain */
	int64_t swap_bytes;  /* domain memory now in swap (host side, or the guest's swap use) */
	int64_t vcpus;       /* CPUs the domain runs on, to normalise CPU time */

	/* cumulative counters */
	int64_t swap_in_bytes;  /* host side: the host swapped the domain's memory back in */
	int64_t swap_out_bytes;
	int64_t major_faults;
	int64_t refault_pages;  /* memcg workingset_refault_anon + _file: evicted pages loaded again */
	int64_t cpu_user_ns;    /* CPU time in user space (the guest's vCPUs for a VM) */
	int64_t cpu_total_ns;

	/* the guest's own view (libvirt balloon statistics, xenstore) */
	int64_t guest_swap_in_bytes;  /* cumulative: the guest read from its own swap */
	int64_t guest_swap_out_bytes;
	int64_t guest_usable_bytes;
	int64_t guest_unused_bytes;
	int64_t guest_available_bytes;
	int64_t guest_disk_caches_bytes;
	int64_t guest_stats_updated; /* guest clock (s) of its last statistics, to act only on fresh ones */

	double psi_some_avg10; /* memory pressure (% of time stalled, 10 s average); < 0 when unknown */
};

struct domain_list {
	char **names;
	size_t count;
};

struct pid_list {
	pid_t *pids;
	size_t count;
};

/* A disk to hot-plug into a domain: an NBD export on a unix socket. */
struct disk_spec {
	const char *nbd_socket;  /* path of the NBD server's unix socket */
	const char *export_name;
	const char *serial;      /* how the guest finds it: /sys/block/X/serial */
};

/* A host directory to share with a domain as a file system (msshare). */
struct fs_spec {
	const char *dir; /* the host directory */
	const char *tag; /* the name the guest mounts it by */
	bool ninep;      /* 9p in the persistent definition (next boot) instead of virtiofs attached live */
	const char *accessmode; /* 9p: passthrough, mapped or squash (how guest owners and modes are stored) */
};

struct driver_ops {
	const char *name;                /* "libvirt", "xen", "cgroup" */
	bool (*handles)(const char *uri); /* does this backend serve that URI? */
	/* what the backend needs that this build lacks, or NULL: "libxenctrl (libxen-dev)" */
	const char *missing_dependency;

	int (*open)(const char *uri, void **state, struct ms_err *err);
	void (*close)(void *state);
	/* Running domains, by name. */
	int (*list_domains)(void *state, struct domain_list *out, struct ms_err *err);
	/* Unknown domain: ms_fail_input naming it. */
	int (*read_facts)(void *state, const char *domain, struct domain_facts *out, struct ms_err *err);
	/* Host processes holding the domain's memory (a QEMU pid, a cgroup's processes). */
	int (*ram_pids)(void *state, const char *domain, struct pid_list *out, struct ms_err *err);
	/* Change the domain's allocation (balloon target, memory limit). */
	int (*set_alloc)(void *state, const char *domain, uint64_t bytes, struct ms_err *err);
	/* Physical memory of the host the domains run on. */
	int (*host_memory)(void *state, uint64_t *total_bytes, struct ms_err *err);
	/* Hot-plug / unplug a disk (NULL: the backend cannot); attach names the guest's target in `target`. */
	int (*attach_disk)(void *state, const char *domain, const struct disk_spec *disk, char *target, size_t len,
			   struct ms_err *err);
	int (*detach_disk)(void *state, const char *domain, const char *serial, struct ms_err *err);
	/* Share / stop sharing a host directory with a domain (NULL: the backend cannot;
	 * a container is given it by a bind mount).  A domain whose memory virtiofs cannot
	 * reach is bad input, naming the definition it needs. */
	int (*attach_fs)(void *state, const char *domain, const struct fs_spec *fs, struct ms_err *err);
	int (*detach_fs)(void *state, const char *domain, const char *dir, struct ms_err *err);
	/* Has the guest mounted the file system shared from `dir`?  1 yes (its mount point in `where`),
	 * 0 no, -1 cannot tell (no guest agent answers: err says so). */
	int (*fs_mounted)(void *state, const char *domain, const char *dir, char *where, size_t len, struct ms_err *err);
};

struct driver {
	const struct driver_ops *ops;
	void *state;
	char *uri;
};

/* NULL or "" uri: $MEMSHARE_URI, then "cgroup:///". */
const char *driver_default_uri(void);
int driver_open(const char *uri, struct driver **out, struct ms_err *err);
void driver_close(struct driver *drv);

int driver_list_domains(struct driver *drv, struct domain_list *out, struct ms_err *err);
int driver_read_facts(struct driver *drv, const char *domain, struct domain_facts *out, struct ms_err *err);
int driver_ram_pids(struct driver *drv, const char *domain, struct pid_list *out, struct ms_err *err);
int driver_set_alloc(struct driver *drv, const char *domain, uint64_t bytes, struct ms_err *err);
int driver_host_memory(struct driver *drv, uint64_t *total_bytes, struct ms_err *err);
int driver_attach_disk(struct driver *drv, const char *domain, const struct disk_spec *disk, char *target, size_t len,
		       struct ms_err *err);
int driver_detach_disk(struct driver *drv, const char *domain, const char *serial, struct ms_err *err);

/* Can the driver share a directory with its domains (attach_fs)? */
bool driver_shares_fs(const struct driver *drv);
int driver_attach_fs(struct driver *drv, const char *domain, const struct fs_spec *fs, struct ms_err *err);
int driver_detach_fs(struct driver *drv, const char *domain, const char *dir, struct ms_err *err);
int driver_fs_mounted(struct driver *drv, const char *domain, const char *dir, char *where, size_t len,
		      struct ms_err *err);

void domain_facts_init(struct domain_facts *f); /* every field MS_UNKNOWN */
int domain_list_add(struct domain_list *list, const char *name, struct ms_err *err);
void domain_list_free(struct domain_list *list);
int pid_list_add(struct pid_list *list, pid_t pid, struct ms_err *err);
void pid_list_free(struct pid_list *list);

/* The backends, one file each (driver_<name>.c). */
extern const struct driver_ops driver_cgroup_ops;
extern const struct driver_ops driver_libvirt_ops;
extern const struct driver_ops driver_xen_ops;

#endif
