#include "share_space.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "units.h"

const char *share_space_root(void)
{
	const char *root = getenv("MEMSHARE_SHARE_DIR");
	return root && *root ? root : SHARE_SPACE_DEFAULT_ROOT;
}

/* A domain name becomes a path below the root: it must not climb out of it. */
static int check_domain_path(const char *domain, struct ms_err *err)
{
	if (!domain || !*domain)
		return ms_fail_input(err, "empty domain name");
	const char *p = domain;
	while (*p) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return ms_fail_input(err, "domain '%s': '.' and '..' are not allowed in a share space name", domain);
		p += n;
	}
	while (*domain == '/')
		domain++;
	if (!*domain)
		return ms_fail_input(err, "domain '/': the root cgroup has no share space");
	return 0;
}

int share_space_dir(const char *domain, char *out, size_t outlen, struct ms_err *err)
{
	if (check_domain_path(domain, err) < 0)
		return -1;
	while (*domain == '/')
		domain++;
	const char *root = share_space_root();
	size_t rl = strlen(root);
	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	int n = snprintf(out, outlen, "%.*s/%s", (int)rl, root, domain);
	if (n < 0 || (size_t)n >= outlen)
		return ms_fail_input(err, "domain '%.40s...': share space path too long", domain);
	/* a space created elsewhere (msshare create --dir) is found through a symbolic link */
	char target[4096];
	ssize_t len = readlink(out, target, sizeof target - 1);
	if (len > 0 && target[0] == '/' && (size_t)len < outlen) {
		memcpy(out, target, (size_t)len);
		out[len] = '\0';
	}
	return 0;
}

/* The path under the root, before any link is followed. */
static int link_path(const char *domain, char *out, size_t outlen, struct ms_err *err)
{
	if (check_domain_path(domain, err) < 0)
		return -1;
	while (*domain == '/')
		domain++;
	if (snprintf(out, outlen, "%s/%s", share_space_root(), domain) >= (int)outlen)
		return ms_fail_input(err, "domain '%.40s...': share space path too long", domain);
	return 0;
}

static int make_dirs(const char *dir, struct ms_err *err);

int share_space_link(const char *domain, const char *dir, struct ms_err *err)
{
	char link[4096];
	if (link_path(domain, link, sizeof link, err) < 0)
		return -1;
	char *slash = strrchr(link, '/');
	*slash = '\0';
	int rc = make_dirs(link, err);
	*slash = '/';
	if (rc < 0)
		return -1;
	if (symlink(dir, link) < 0)
		return ms_fail_errno(err, "symlink %s -> %s", link, dir);
	return 0;
}

void share_space_unlink(const char *domain)
{
	char link[4096];
	struct stat sb;
	if (link_path(domain, link, sizeof link, NULL) == 0 && lstat(link, &sb) == 0 && S_ISLNK(sb.st_mode))
		unlink(link);
}

/* Does one mountinfo file show the tmpfs of device DEV at a mount point other than DIR? */
static int other_mount_in(const char *mountinfo, dev_t dev, const char *dir, char *where, size_t len)
{
	FILE *f = fopen(mountinfo, "re");
	if (!f)
		return 0; /* the process ended */
	char line[8192];
	int found = 0;
	while (!found && fgets(line, sizeof line, f)) {
		unsigned maj, min;
		char point[4096];
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, point) != 3)
			continue;
		if (maj == major(dev) && min == minor(dev) && strcmp(point, dir) != 0) {
			snprintf(where, len, "%s", point);
			found = 1;
		}
	}
	fclose(f);
	return found;
}

int share_space_mounted_elsewhere(const char *dir, const pid_t *pids, size_t npids, char *where, size_t len,
				  struct ms_err *err)
{
	struct stat sb;
	if (stat(dir, &sb) < 0)
		return ms_fail_errno(err, "%s", dir);
	if (other_mount_in("/proc/self/mountinfo", sb.st_dev, dir, where, len))
		return 1;
	for (size_t i = 0; i < npids; i++) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/mountinfo", (int)pids[i]);
		if (other_mount_in(path, sb.st_dev, dir, where, len)) {
			size_t n = strlen(where);
			snprintf(where + n, len - n, " (seen by pid %d)", (int)pids[i]);
			return 1;
		}
	}
	return 0;
}

int share_space_is_mounted(const char *dir, struct ms_err *err)
{
	struct statx stx;
	if (statx(AT_FDCWD, dir, AT_SYMLINK_NOFOLLOW, STATX_TYPE, &stx) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return ms_fail_errno(err, "%s", dir);
	}
	if (!(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT))
		return ms_fail(err, "%s: the kernel does not say which directories are mount points (statx)", dir);
	if (!(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		return 0;
	struct statfs sfs;
	if (statfs(dir, &sfs) < 0)
		return ms_fail_errno(err, "%s", dir);
	return sfs.f_type == TMPFS_MAGIC;
}

int share_space_usage(const char *dir, uint64_t *size_bytes, uint64_t *used_bytes, uint64_t *files, struct ms_err *err)
{
	int mounted = share_space_is_mounted(dir, err);
	if (mounted < 0)
		return -1;
	if (!mounted)
		return ms_fail_input(err, "%s: not a tmpfs mount (no share space there)", dir);
	struct statfs sfs;
	if (statfs(dir, &sfs) < 0)
		return ms_fail_errno(err, "%s", dir);
	uint64_t bsize = (uint64_t)sfs.f_bsize;
	*size_bytes = (uint64_t)sfs.f_blocks * bsize;
	*used_bytes = (uint64_t)(sfs.f_blocks - sfs.f_bfree) * bsize;
	/* the root directory holds one inode of every tmpfs; it is not a job */
	uint64_t inodes = sfs.f_files >= sfs.f_ffree ? (uint64_t)(sfs.f_files - sfs.f_ffree) : 0;
	*files = inodes > 0 ? inodes - 1 : 0;
	return 0;
}

/* The per-mount flags a remount must repeat, or mount(2) clears them. */
static unsigned long mount_flags_of(const struct statvfs *sv)
{
	static const struct {
		unsigned long st, ms;
	} map[] = {{ST_RDONLY, MS_RDONLY}, {ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV}, {ST_NOEXEC, MS_NOEXEC},
		   {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME}};
	unsigned long flags = 0;
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (sv->f_flag & map[i].st)
			flags |= map[i].ms;
	return flags;
}

int share_space_resize(const char *dir, uint64_t size_bytes, uint64_t margin_bytes, struct ms_err *err)
{
	uint64_t size, used, files;
	char a[32], b[32], c[32];
	if (share_space_usage(dir, &size, &used, &files, err) < 0)
		return -1;
	/* size=0 would make the tmpfs unlimited, the opposite of what was asked */
	if (size_bytes == 0)
		return ms_fail_input(err, "%s: a share space cannot be resized to 0 bytes", dir);
	if (size_bytes < used + margin_bytes && margin_bytes == 0)
		return ms_fail_input(err, "%s: size %s is below the %s in use", dir, format_size(size_bytes, a, sizeof a),
				     format_size(used, b, sizeof b));
	if (size_bytes < used + margin_bytes)
		return ms_fail_input(err, "%s: size %s is below the %s in use plus the %s margin", dir,
				     format_size(size_bytes, a, sizeof a), format_size(used, b, sizeof b),
				     format_size(margin_bytes, c, sizeof c));
	struct statvfs sv;
	if (statvfs(dir, &sv) < 0)
		return ms_fail_errno(err, "%s", dir);
	char opts[64];
	snprintf(opts, sizeof opts, "size=%llu", (unsigned long long)size_bytes);
	if (mount(NULL, dir, NULL, MS_REMOUNT | mount_flags_of(&sv), opts) < 0) {
		/* the guest wrote more between our statfs and the remount */
		if (errno == EINVAL)
			return ms_fail(err, "%s: the kernel refused size %s: too small for what is in use now", dir,
				       format_size(size_bytes, a, sizeof a));
		return ms_fail_errno(err, "%s: remount with size %s", dir, format_size(size_bytes, a, sizeof a));
	}
	return 0;
}

/* mkdir -p, mode 0755 for the parents. */
static int make_dirs(const char *dir, struct ms_err *err)
{
	char path[4096];
	if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
		return ms_fail_input(err, "%.40s...: path too long", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return ms_fail_errno(err, "mkdir %s", path);
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return ms_fail_errno(err, "mkdir %s", path);
	return 0;
}

int share_space_mount(const char *dir, uint64_t size_bytes, struct ms_err *err)
{
	char a[32];
	if (size_bytes == 0)
		return ms_fail_input(err, "%s: a share space needs a size above 0", dir);
	struct statx stx;
	if (statx(AT_FDCWD, dir, AT_SYMLINK_NOFOLLOW, 0, &stx) == 0 && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		return ms_fail_input(err, "%s: a file system is already mounted there", dir);
	if (make_dirs(dir, err) < 0)
		return -1;
	char opts[64];
	snprintf(opts, sizeof opts, "size=%llu,mode=0777", (unsigned long long)size_bytes);
	if (mount("memshare-share", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0)
		return ms_fail_errno(err, "%s: mount tmpfs of %s", dir, format_size(size_bytes, a, sizeof a));
	return 0;
}

int share_space_unmount(const char *dir, bool detach, struct ms_err *err)
{
	int mounted = share_space_is_mounted(dir, err);
	if (mounted < 0)
		return -1;
	if (!mounted)
		return ms_fail_input(err, "%s: not a tmpfs mount (no share space there)", dir);
	/* a reader that just closed its last file may still hold the mount for a moment */
	for (int attempt = 0; umount2(dir, detach ? MNT_DETACH : 0) < 0; attempt++) {
		if (errno == EBUSY && attempt >= 40)
			return ms_fail(err, "%s: still in use (a process has a file open there); --force detaches it", dir);
		if (errno != EBUSY)
			return ms_fail_errno(err, "umount %s", dir);
		nanosleep(&(struct timespec){.tv_nsec = 50 * 1000 * 1000}, NULL);
	}
	if (rmdir(dir) < 0 && errno != ENOENT)
		return ms_fail_errno(err, "rmdir %s", dir);
	return 0;
}
