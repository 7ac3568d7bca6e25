#define FUSE_USE_VERSION 35
#include "fuse_export.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct fuse_export {
	struct fuse *fuse;
	const struct export_source *source;
	char *dir;
	dev_t dev;          /* of the mount: its minor number names the FUSE connection */
	pthread_t thread;
	unsigned open_files; /* atomic */
	time_t mounted_at;
};

static struct fuse_export *current(void)
{
	return fuse_get_context()->private_data;
}

/* "/NAME" → the export NAME, kept alive until release_export; NULL if none. */
static struct nbd_export *acquire_export(struct fuse_export *fx, const char *path)
{
	if (path[0] != '/' || !path[1] || strchr(path + 1, '/'))
		return NULL;
	return fx->source->acquire(fx->source->ctx, path + 1);
}

static void release_export(struct fuse_export *fx, struct nbd_export *e)
{
	fx->source->release(fx->source->ctx, e);
}

static void *fs_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->direct_io = 1;   /* no page cache: every read and write reaches the device */
	cfg->kernel_cache = 0;
	cfg->attr_timeout = 1;
	cfg->entry_timeout = 1;
	cfg->negative_timeout = 0; /* a device added a moment ago must show at once */
	return fuse_get_context()->private_data;
}

static void fill_file_stat(const struct fuse_export *fx, const struct nbd_export *e, struct stat *st)
{
	st->st_mode = S_IFREG | (e->read_only ? 0400 : 0600);
	st->st_nlink = 1;
	st->st_size = (off_t)e->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)(e->size / 512);
	st->st_mtime = st->st_ctime = st->st_atime = fx->mounted_at;
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fuse_export *fx = current();
	memset(st, 0, sizeof *st);
	if (fi && fi->fh) {
		fill_file_stat(fx, (struct nbd_export *)(uintptr_t)fi->fh, st);
		return 0;
	}
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		st->st_mtime = st->st_ctime = st->st_atime = fx->mounted_at;
		return 0;
	}
	struct nbd_export *e = acquire_export(fx, path);
	if (!e)
		return -ENOENT;
	fill_file_stat(fx, e, st);
	release_export(fx, e);
	return 0;
}

struct readdir_ctx {
	void *buf;
	fuse_fill_dir_t fill;
};

static int add_dir_entry(void *arg, const struct nbd_export *e)
{
	struct readdir_ctx *rc = arg;
	return rc->fill(rc->buf, e->name, NULL, 0, 0) ? 1 : 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	(void)offset;
	(void)fi;
	(void)flags;
	struct fuse_export *fx = current();
	if (strcmp(path, "/") != 0)
		return -ENOTDIR;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	struct readdir_ctx rc = {buf, fill};
	fx->source->for_each(fx->source->ctx, add_dir_entry, &rc);
	return 0;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	struct fuse_export *fx = current();
	struct nbd_export *e = acquire_export(fx, path);
	if (!e)
		return -ENOENT;
	if (e->read_only && (fi->flags & O_ACCMODE) != O_RDONLY) {
		release_export(fx, e);
		return -EROFS;
	}
	fi->fh = (uint64_t)(uintptr_t)e;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	__atomic_fetch_add(&fx->open_files, 1, __ATOMIC_RELAXED);
	return 0;
}

static int fs_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	struct fuse_export *fx = current();
	release_export(fx, (struct nbd_export *)(uintptr_t)fi->fh);
	__atomic_fetch_sub(&fx->open_files, 1, __ATOMIC_RELAXED);
	return 0;
}

static struct nbd_export *file_export(struct fuse_file_info *fi)
{
	return (struct nbd_export *)(uintptr_t)fi->fh;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	struct nbd_export *e = file_export(fi);
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= e->size)
		return 0;
	if (size > e->size - (uint64_t)off)
		size = (size_t)(e->size - (uint64_t)off);
	if (size > INT_MAX)
		size = INT_MAX & ~4095;
	int rc = e->ops->read(e->self, buf, (uint32_t)size, (uint64_t)off);
	__atomic_fetch_add(&e->stats.reads, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&e->stats.read_bytes, size, __ATOMIC_RELAXED);
	if (rc) {
		__atomic_fetch_add(&e->stats.errors, 1, __ATOMIC_RELAXED);
		return -rc;
	}
	return (int)size;
}

static int fs_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)path;
	struct nbd_export *e = file_export(fi);
	if (off < 0)
		return -EINVAL;
	if (size > INT_MAX || (uint64_t)off > e->size || size > e->size - (uint64_t)off)
		return -ENOSPC; /* the device does not grow */
	int rc = e->ops->write(e->self, buf, (uint32_t)size, (uint64_t)off);
	__atomic_fetch_add(&e->stats.writes, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&e->stats.write_bytes, size, __ATOMIC_RELAXED);
	if (rc) {
		__atomic_fetch_add(&e->stats.errors, 1, __ATOMIC_RELAXED);
		return -rc;
	}
	return (int)size;
}

static int fs_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	struct nbd_export *e = file_export(fi);
	__atomic_fetch_add(&e->stats.flushes, 1, __ATOMIC_RELAXED);
	return -e->ops->flush(e->self);
}

/* Hole punching is a discard (a loop device turns the swap's discards into
 * it): the blocks leave their tier, a Tmem flush.  Zeroing a range is
 * write_zeroes; allocating is a no-op within the device. */
static int fs_fallocate(const char *path, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	(void)path;
	struct nbd_export *e = file_export(fi);
	if (off < 0 || len <= 0 || (uint64_t)off > e->size || (uint64_t)len > e->size - (uint64_t)off)
		return (mode & FALLOC_FL_KEEP_SIZE) || mode == 0 ? -ENOSPC : -EINVAL;
	int (*op)(void *, uint32_t, uint64_t);
	uint64_t *counter;
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
		op = e->ops->trim;
		counter = &e->stats.trims;
	} else if (mode == FALLOC_FL_ZERO_RANGE || mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE)) {
		op = e->ops->write_zeroes;
		counter = &e->stats.zeroes;
	} else if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
		return 0;
	} else {
		return -EOPNOTSUPP;
	}
	for (uint64_t done = 0; done < (uint64_t)len;) {
		uint32_t n = (uint64_t)len - done > (1u << 30) ? 1u << 30 : (uint32_t)((uint64_t)len - done);
		int rc = op(e->self, n, (uint64_t)off + done);
		__atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
		if (rc)
			return -rc;
		done += n;
	}
	return 0;
}

static int fs_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fuse_export *fx = current();
	struct nbd_export *e = fi && fi->fh ? file_export(fi) : acquire_export(fx, path);
	if (!e)
		return -ENOENT;
	int rc = (uint64_t)size == e->size ? 0 : -EPERM; /* a device keeps its size */
	if (!(fi && fi->fh))
		release_export(fx, e);
	return rc;
}

static const struct fuse_operations fuse_export_ops = {
	.init = fs_init,
	.getattr = fs_getattr,
	.readdir = fs_readdir,
	.open = fs_open,
	.release = fs_release,
	.read = fs_read,
	.write = fs_write,
	.fsync = fs_fsync,
	.fallocate = fs_fallocate,
	.truncate = fs_truncate,
};

static void *serve_thread(void *arg)
{
	struct fuse_export *fx = arg;
	struct fuse_loop_config config = {.clone_fd = 0, .max_idle_threads = 8};
	int rc = fuse_loop_mt(fx->fuse, &config);
	if (rc != 0)
		log_debug("FUSE loop on %s ended (%d)", fx->dir, rc);
	return NULL;
}

int fuse_export_start(const char *dir, const struct export_source *source, struct fuse_export **out,
		      struct ms_err *err)
{
	if (access("/dev/fuse", R_OK | W_OK) != 0)
		return ms_fail(err, "--fuse: /dev/fuse is not usable here (%s): the kernel lacks FUSE or this user may not use it",
			       strerror(errno));
	struct stat st;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return ms_fail_errno(err, "cannot create the FUSE mount point %s", dir);
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return ms_fail(err, "--fuse %s: not a directory", dir);
	struct fuse_export *fx = calloc(1, sizeof *fx);
	if (!fx || !(fx->dir = strdup(dir))) {
		free(fx);
		return ms_fail(err, "out of memory");
	}
	fx->source = source;
	fx->mounted_at = time(NULL);
	/* fsname/subtype name the mount in /proc/mounts; the library prints its
	 * own errors on stderr, which is where ours go too. */
	char *argv[] = {"msrswap", "-o", "fsname=msrswap,subtype=msrswap,default_permissions", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	fx->fuse = fuse_new(&args, &fuse_export_ops, sizeof fuse_export_ops, fx);
	fuse_opt_free_args(&args); /* the library may have added to them */
	if (!fx->fuse) {
		free(fx->dir);
		free(fx);
		return ms_fail(err, "cannot set up the FUSE file system for %s", dir);
	}
	if (fuse_mount(fx->fuse, dir) != 0) {
		fuse_destroy(fx->fuse);
		free(fx->dir);
		free(fx);
		return ms_fail(err, "cannot mount the FUSE file system on %s (is something mounted there already?)", dir);
	}
	int rc = pthread_create(&fx->thread, NULL, serve_thread, fx);
	if (rc) {
		fuse_unmount(fx->fuse);
		fuse_destroy(fx->fuse);
		free(fx->dir);
		free(fx);
		return ms_fail(err, "cannot start the FUSE thread: %s", strerror(rc));
	}
	/* only now: the mount's root is served by that thread */
	if (stat(dir, &st) == 0)
		fx->dev = st.st_dev;
	log_info("devices are files under %s (FUSE, direct I/O)", dir);
	*out = fx;
	return 0;
}

unsigned fuse_export_open_files(struct fuse_export *fx)
{
	return __atomic_load_n(&fx->open_files, __ATOMIC_RELAXED);
}

/* Ending the connection ends the loop's blocking reads of /dev/fuse, also
 * when a lazy unmount leaves the mount alive for an open file. */
static void abort_connection(struct fuse_export *fx)
{
	char path[64];
	snprintf(path, sizeof path, "/sys/fs/fuse/connections/%u/abort", minor(fx->dev));
	/* the control file system is mounted at boot by systemd, not by busybox-style inits */
	if (access(path, F_OK) != 0 && mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) < 0)
		log_debug("cannot mount fusectl: %s", strerror(errno));
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "1", 1) < 0)
			log_debug("%s: %s", path, strerror(errno));
		close(fd);
	}
}

void fuse_export_stop(struct fuse_export *fx)
{
	if (!fx)
		return;
	unsigned open_files = fuse_export_open_files(fx);
	if (open_files)
		log_warn("%s: %u device file(s) still open (a loop device or swap on them?): their users now get I/O errors",
			 fx->dir, open_files);
	fuse_exit(fx->fuse);
	fuse_unmount(fx->fuse);
	if (open_files)
		abort_connection(fx);
	pthread_join(fx->thread, NULL);
	fuse_destroy(fx->fuse);
	free(fx->dir);
	free(fx);
}
