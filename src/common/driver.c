#include "driver.h"

#include <stdlib.h>
#include <string.h>

/* Order matters: the first backend that handles a URI wins; libvirt takes
 * every URI the others do not claim, as virsh would. */
static const struct driver_ops *const drivers[] = {
	&driver_cgroup_ops,
	&driver_xen_ops,
	&driver_libvirt_ops,
};

const char *driver_default_uri(void)
{
	const char *env = getenv("MEMSHARE_URI");
	return env && *env ? env : "cgroup:///";
}

int driver_open(const char *uri, struct driver **out, struct ms_err *err)
{
	if (!uri || !*uri)
		uri = driver_default_uri();
	if (!strstr(uri, ":"))
		return ms_fail_input(err, "connection URI '%s' has no scheme (examples: qemu:///system, cgroup:///, xen:///)", uri);
	for (size_t i = 0; i < sizeof drivers / sizeof drivers[0]; i++) {
		const struct driver_ops *ops = drivers[i];
		if (!ops->handles(uri))
			continue;
		if (ops->missing_dependency)
			return ms_fail(err, "%s: this build of memshare has no %s driver: it was built without %s",
				       uri, ops->name, ops->missing_dependency);
		struct driver *drv = calloc(1, sizeof *drv);
		if (!drv || !(drv->uri = strdup(uri))) {
			free(drv);
			return ms_fail(err, "out of memory");
		}
		drv->ops = ops;
		if (ops->open(uri, &drv->state, err) < 0) {
			free(drv->uri);
			free(drv);
			return -1;
		}
		*out = drv;
		return 0;
	}
	return ms_fail_input(err, "connection URI '%s' is not served by any driver (cgroup:///, xen:///, or libvirt's: qemu:///system, lxc:///, test:///default, ...)", uri);
}

void driver_close(struct driver *drv)
{
	if (!drv)
		return;
	drv->ops->close(drv->state);
	free(drv->uri);
	free(drv);
}

int driver_list_domains(struct driver *drv, struct domain_list *out, struct ms_err *err)
{
	memset(out, 0, sizeof *out);
	return drv->ops->list_domains(drv->state, out, err);
}

int driver_read_facts(struct driver *drv, const char *domain, struct domain_facts *out, struct ms_err *err)
{
	domain_facts_init(out);
	return drv->ops->read_facts(drv->state, domain, out, err);
}

int driver_ram_pids(struct driver *drv, const char *domain, struct pid_list *out, struct ms_err *err)
{
	memset(out, 0, sizeof *out);
	return drv->ops->ram_pids(drv->state, domain, out, err);
}

int driver_set_alloc(struct driver *drv, const char *domain, uint64_t bytes, struct ms_err *err)
{
	return drv->ops->set_alloc(drv->state, domain, bytes, err);
}

int driver_host_memory(struct driver *drv, uint64_t *total_bytes, struct ms_err *err)
{
	return drv->ops->host_memory(drv->state, total_bytes, err);
}

int driver_attach_disk(struct driver *drv, const char *domain, const struct disk_spec *disk, char *target, size_t len,
		       struct ms_err *err)
{
	if (!drv->ops->attach_disk)
		return ms_fail(err, "%s: the %s driver cannot hot-plug a disk into '%s'", drv->uri, drv->ops->name, domain);
	return drv->ops->attach_disk(drv->state, domain, disk, target, len, err);
}

int driver_detach_disk(struct driver *drv, const char *domain, const char *serial, struct ms_err *err)
{
	if (!drv->ops->detach_disk)
		return ms_fail(err, "%s: the %s driver cannot unplug a disk from '%s'", drv->uri, drv->ops->name, domain);
	return drv->ops->detach_disk(drv->state, domain, serial, err);
}

bool driver_shares_fs(const struct driver *drv)
{
	return drv->ops->attach_fs != NULL;
}

int driver_attach_fs(struct driver *drv, const char *domain, const struct fs_spec *fs, struct ms_err *err)
{
	if (!drv->ops->attach_fs)
		return ms_fail(err, "%s: the %s driver cannot share a directory with '%s'", drv->uri, drv->ops->name, domain);
	return drv->ops->attach_fs(drv->state, domain, fs, err);
}

int driver_detach_fs(struct driver *drv, const char *domain, const char *dir, struct ms_err *err)
{
	if (!drv->ops->detach_fs)
		return ms_fail(err, "%s: the %s driver cannot share a directory with '%s'", drv->uri, drv->ops->name, domain);
	return drv->ops->detach_fs(drv->state, domain, dir, err);
}

int driver_fs_mounted(struct driver *drv, const char *domain, const char *dir, char *where, size_t len,
		      struct ms_err *err)
{
	if (!drv->ops->fs_mounted)
		return ms_fail(err, "%s: the %s driver cannot see a domain's mounts", drv->uri, drv->ops->name);
	return drv->ops->fs_mounted(drv->state, domain, dir, where, len, err);
}

void domain_facts_init(struct domain_facts *f)
{
	int64_t *fields[] = {
		&f->alloc_bytes, &f->max_bytes, &f->rss_bytes, &f->swap_bytes, &f->vcpus,
		&f->swap_in_bytes, &f->swap_out_bytes, &f->major_faults, &f->refault_pages,
		&f->cpu_user_ns, &f->cpu_total_ns, &f->guest_swap_in_bytes, &f->guest_swap_out_bytes, &f->guest_usable_bytes, &f->guest_unused_bytes,
		&f->guest_available_bytes, &f->guest_disk_caches_bytes, &f->guest_stats_updated,
	};
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
		*fields[i] = MS_UNKNOWN;
	f->psi_some_avg10 = -1;
}

int domain_list_add(struct domain_list *list, const char *name, struct ms_err *err)
{
	char **grown = realloc(list->names, (list->count + 1) * sizeof *grown);
	if (!grown)
		return ms_fail(err, "out of memory");
	list->names = grown;
	if (!(list->names[list->count] = strdup(name)))
		return ms_fail(err, "out of memory");
	list->count++;
	return 0;
}

void domain_list_free(struct domain_list *list)
{
	for (size_t i = 0; i < list->count; i++)
		free(list->names[i]);
	free(list->names);
	list->names = NULL;
	list->count = 0;
}

int pid_list_add(struct pid_list *list, pid_t pid, struct ms_err *err)
{
	pid_t *grown = realloc(list->pids, (list->count + 1) * sizeof *grown);
	if (!grown)
		return ms_fail(err, "out of memory");
	list->pids = grown;
	list->pids[list->count++] = pid;
	return 0;
}

void pid_list_free(struct pid_list *list)
{
	free(list->pids);
	list->pids = NULL;
	list->count = 0;
}
