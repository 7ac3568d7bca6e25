#include "host_swap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/swap.h>
#include <unistd.h>

#include "log.h"

/* Configure loop device fd over file_fd: direct I/O, 4 KiB logical blocks,
 * cleared when its last user (swap) closes it. */
static int configure_loop(int loop_fd, int file_fd, const char *file)
{
	struct loop_config cfg = {.fd = (__u32)file_fd, .block_size = 4096};
	cfg.info.lo_flags = LO_FLAGS_DIRECT_IO | LO_FLAGS_AUTOCLEAR;
	snprintf((char *)cfg.info.lo_file_name, sizeof cfg.info.lo_file_name, "%s", file);
	if (ioctl(loop_fd, LOOP_CONFIGURE, &cfg) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOTTY)
		return -1;
	/* kernels before 5.8: the same in three steps */
	if (ioctl(loop_fd, LOOP_SET_FD, file_fd) < 0)
		return -1;
	if (ioctl(loop_fd, LOOP_SET_STATUS64, &cfg.info) < 0 || ioctl(loop_fd, LOOP_SET_BLOCK_SIZE, 4096UL) < 0 ||
	    ioctl(loop_fd, LOOP_SET_DIRECT_IO, 1UL) < 0) {
		int saved = errno;
		ioctl(loop_fd, LOOP_CLR_FD, 0);
		errno = saved;
		return -1;
	}
	return 0;
}

/* A free loop device, opened, configured over file_fd; -1 with errno. */
static int attach_loop(int file_fd, const char *file, char *dev, size_t dev_len)
{
	int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -1;
	/* another process may take the free device between the two calls: retry */
	for (int attempt = 0; attempt < 8; attempt++) {
		int n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			break;
		snprintf(dev, dev_len, "/dev/loop%d", n);
		int fd = open(dev, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			break;
		if (configure_loop(fd, file_fd, file) == 0) {
			close(ctl);
			return fd;
		}
		int saved = errno;
		close(fd);
		errno = saved;
		if (errno != EBUSY)
			break;
	}
	int saved = errno;
	close(ctl);
	errno = saved;
	return -1;
}

static int direct_io_active(const char *dev)
{
	char path[128], value[8] = "";
	snprintf(path, sizeof path, "/sys/block/%s/loop/dio", strrchr(dev, '/') + 1);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int ok = fgets(value, sizeof value, f) != NULL;
	fclose(f);
	return ok ? value[0] == '1' : -1;
}

int host_swap_on(const char *file, int priority, char *dev, size_t dev_len, struct ms_err *err)
{
	if (priority < 0 || priority > HOST_SWAP_PRIORITY_MAX)
		return ms_fail_input(err, "swap priority %d is outside 0..%d", priority, HOST_SWAP_PRIORITY_MAX);
	int file_fd = open(file, O_RDWR | O_DIRECT | O_CLOEXEC);
	if (file_fd < 0)
		return ms_fail_errno(err, "cannot open the device file %s", file);
	int loop_fd = attach_loop(file_fd, file, dev, dev_len);
	int saved = errno;
	close(file_fd); /* the loop device holds its own reference */
	if (loop_fd < 0) {
		errno = saved;
		return ms_fail_errno(err, "cannot set up a loop device over %s", file);
	}
	if (direct_io_active(dev) == 0)
		log_warn("%s: direct I/O is off: swap pages also pass through the page cache", dev);
	int flags = SWAP_FLAG_PREFER | ((priority << SWAP_FLAG_PRIO_SHIFT) & SWAP_FLAG_PRIO_MASK) | SWAP_FLAG_DISCARD;
	int rc = swapon(dev, flags);
	saved = errno;
	close(loop_fd); /* swap holds the device now; without it, autoclear frees it */
	if (rc < 0) {
		errno = saved;
		return ms_fail_errno(err, "swapon %s (over %s)%s", dev, file,
				     saved == EINVAL ? ": no swap signature? (the device is formatted by attach)" : "");
	}
	return 0;
}

int host_swap_find(const char *file, char *dev, size_t dev_len)
{
	dev[0] = '\0';
	DIR *d = opendir("/sys/block");
	if (!d)
		return 0;
	struct dirent *de;
	int found = 0;
	while (!found && (de = readdir(d))) {
		if (strncmp(de->d_name, "loop", 4) != 0)
			continue;
		char path[300], backing[4200] = "";
		snprintf(path, sizeof path, "/sys/block/%s/loop/backing_file", de->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(backing, sizeof backing, f)) {
			backing[strcspn(backing, "\n")] = '\0';
			if (strcmp(backing, file) == 0) {
				snprintf(dev, dev_len, "/dev/%s", de->d_name);
				found = 1;
			}
		}
		fclose(f);
	}
	closedir(d);
	return found;
}

int host_swap_off(const char *file, char *dev, size_t dev_len, struct ms_err *err)
{
	if (!host_swap_find(file, dev, dev_len))
		return ms_fail_input(err, "no loop device is set up over %s: is that device attached to the host?", file);
	if (swapoff(dev) < 0 && errno != EINVAL) /* EINVAL: not a swap area (any more) */
		return ms_fail_errno(err, "swapoff %s%s", dev,
				     errno == ENOMEM ? ": the pages on it fit neither in RAM nor in their cgroups' memory limits now" : "");
	/* autoclear frees it once unused; clear it ourselves in case swap was never on */
	int fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		if (ioctl(fd, LOOP_CLR_FD, 0) < 0 && errno != ENXIO)
			log_debug("%s: LOOP_CLR_FD: %s", dev, strerror(errno));
		close(fd);
	}
	return 0;
}
