#include "space.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "share_space.h"
#include "units.h"

/* The driver knows the domain (else its own "unknown domain" error, bad input). */
static int check_domain(struct driver *drv, const char *domain, struct ms_err *err)
{
	struct domain_facts f;
	return driver_read_facts(drv, domain, &f, err);
}

int space_locate(struct driver *drv, const char *domain, char *dir, size_t len, struct ms_err *err)
{
	if (share_space_dir(domain, dir, len, err) < 0)
		return -1;
	int mounted = share_space_is_mounted(dir, err);
	if (mounted < 0)
		return -1;
	if (mounted)
		return 0;
	if (check_domain(drv, domain, err) < 0)
		return -1;
	return ms_fail_input(err, "domain '%s' has no share space (%s is not a tmpfs mount; see msshare create)", domain,
			     dir);
}

json_t *space_record(const char *domain, const char *dir, struct ms_err *err)
{
	uint64_t size, used, files;
	if (share_space_usage(dir, &size, &used, &files, err) < 0)
		return NULL;
	json_t *rec = record_new("share_space");
	json_object_set_new(rec, "domain", json_string(domain));
	json_object_set_new(rec, "dir", json_string(dir));
	json_object_set_new(rec, "size_bytes", json_integer((json_int_t)size));
	json_object_set_new(rec, "used_bytes", json_integer((json_int_t)used));
	json_object_set_new(rec, "files", json_integer((json_int_t)files));
	return rec;
}

static int mount_space(const char *domain, uint64_t size, const struct space_options *o, char *dir, size_t len,
		       struct ms_err *err)
{
	if (share_space_dir(domain, dir, len, err) < 0)
		return -1;
	if (share_space_is_mounted(dir, err) == 1)
		return ms_fail_input(err, "domain '%s' already has a share space at %s", domain, dir);
	if (!o->dir)
		return share_space_mount(dir, size, err);
	if (o->dir[0] != '/')
		return ms_fail_input(err, "--dir %s: give an absolute path", o->dir);
	struct stat sb; /* the link goes where the space would be: nothing may be there */
	if (lstat(dir, &sb) == 0)
		return ms_fail_input(err, "--dir: domain '%s': %s already exists; remove it first", domain, dir);
	if (share_space_mount(o->dir, size, err) < 0)
		return -1;
	if (share_space_link(domain, o->dir, err) < 0) {
		share_space_unmount(o->dir, false, NULL);
		return -1;
	}
	snprintf(dir, len, "%s", o->dir);
	return 0;
}

/* Undo a create whose attach failed: the space goes again. */
static void unmount_space(const char *domain, const char *dir)
{
	share_space_unmount(dir, false, NULL);
	share_space_unlink(domain);
}

int space_create(struct driver *drv, const char *domain, uint64_t size, const struct space_options *o, json_t **rec,
		 struct ms_err *err)
{
	bool shares = driver_shares_fs(drv);
	bool ninep = o->transport && strcmp(o->transport, "9p") == 0;
	if (o->accessmode && !ninep && strcmp(o->accessmode, "passthrough") != 0)
		return ms_fail_input(err, "--accessmode %s: virtiofs shares only in passthrough mode; mapped and squash "
					  "are for --transport 9p",
				     o->accessmode);
	if (!shares && (o->tag || o->transport || o->accessmode))
		return ms_fail_input(err, "--tag, --transport and --accessmode are for libvirt domains; the %s driver's domains get "
					  "their space by a bind mount",
				     drv->ops->name);
	char dir[PATH_MAX];
	if (check_domain(drv, domain, err) < 0 || mount_space(domain, size, o, dir, sizeof dir, err) < 0)
		return -1;
	struct fs_spec fs = {.dir = dir, .tag = o->tag ? o->tag : "memshare", .ninep = ninep,
			     .accessmode = o->accessmode ? o->accessmode : ninep ? "mapped" : "passthrough"};
	if (shares && driver_attach_fs(drv, domain, &fs, err) < 0) {
		unmount_space(domain, dir);
		return -1;
	}
	if (!(*rec = space_record(domain, dir, err)))
		return -1;
	if (shares) {
		json_object_set_new(*rec, "tag", json_string(fs.tag));
		json_object_set_new(*rec, "transport", json_string(fs.ninep ? "9p" : "virtiofs"));
		json_object_set_new(*rec, "accessmode", json_string(fs.accessmode));
	}
	return 0;
}

int space_resize(struct driver *drv, const char *domain, uint64_t size, json_t **rec, struct ms_err *err)
{
	char dir[PATH_MAX];
	if (space_locate(drv, domain, dir, sizeof dir, err) < 0 || share_space_resize(dir, size, 0, err) < 0)
		return -1;
	*rec = space_record(domain, dir, err);
	return *rec ? 0 : -1;
}

/* A container that bind-mounted the space still uses it: its processes' mounts show it. */
static int check_not_in_use(struct driver *drv, const char *domain, const char *dir, struct ms_err *err)
{
	struct pid_list pids = {0};
	struct ms_err perr = {0};
	driver_ram_pids(drv, domain, &pids, &perr); /* no processes: only the host's own mounts count */
	char where[PATH_MAX + 64];
	int rc = share_space_mounted_elsewhere(dir, pids.pids, pids.count, where, sizeof where, err);
	pid_list_free(&pids);
	if (rc < 0)
		return -1;
	if (rc == 0 && driver_shares_fs(drv))
		rc = driver_fs_mounted(drv, domain, dir, where, sizeof where, err);
	if (rc < 0) {
		char why[MS_ERR_MAX];
		snprintf(why, sizeof why, "%s", err->msg);
		return ms_fail(err, "%s; --force removes the space all the same", why);
	}
	if (rc > 0)
		return ms_fail(err, "domain '%s': its share space %s is still mounted at %s; unmount it there or use --force",
			       domain, dir, where);
	return 0;
}

int space_remove(struct driver *drv, const char *domain, const struct space_options *o, struct ms_err *err)
{
	char dir[PATH_MAX];
	if (space_locate(drv, domain, dir, sizeof dir, err) < 0)
		return -1;
	if (!o->force && check_not_in_use(drv, domain, dir, err) < 0)
		return -1;
	if (driver_shares_fs(drv) && driver_detach_fs(drv, domain, dir, err) < 0)
		return -1;
	if (share_space_unmount(dir, o->force, err) < 0)
		return -1;
	share_space_unlink(domain);
	return 0;
}

int space_list(struct driver *drv, struct jsonl_writer *out, struct ms_err *err)
{
	struct domain_list list = {0};
	if (driver_list_domains(drv, &list, err) < 0)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < list.count && rc == 0; i++) {
		char dir[PATH_MAX];
		if (share_space_dir(list.names[i], dir, sizeof dir, NULL) < 0 || share_space_is_mounted(dir, NULL) != 1)
			continue;
		json_t *rec = space_record(list.names[i], dir, err);
		rc = rec ? jsonl_emit(out, rec, err) : -1;
	}
	domain_list_free(&list);
	return rc;
}
