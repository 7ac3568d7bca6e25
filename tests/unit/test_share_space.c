/* share_space on a real tmpfs, mounted in a private mount namespace so that
 * nothing outlives the test (or shows in the host's mount table). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "share_space.h"
#include "tap.h"

#define MiB (1024ULL * 1024)

static void test_dir(void)
{
	struct ms_err err = {0};
	char dir[256];
	setenv("MEMSHARE_SHARE_DIR", "/srv/spaces/", 1);
	ok(share_space_dir("vm1", dir, sizeof dir, &err) == 0, "dir of a libvirt domain");
	is_str(dir, "/srv/spaces/vm1", "  ... is under $MEMSHARE_SHARE_DIR");
	ok(share_space_dir("/memshare/vm1", dir, sizeof dir, &err) == 0, "dir of a cgroup domain");
	is_str(dir, "/srv/spaces/memshare/vm1", "  ... without a doubled '/'");
	ok(share_space_dir("/memshare/../etc", dir, sizeof dir, &err) == -1 && err.usage, "'..' refused as bad input");
	like(err.msg, "'/memshare/../etc'", "  ... naming the domain");
	ok(share_space_dir("", dir, sizeof dir, &err) == -1 && err.usage, "empty domain refused");
	ok(share_space_dir("/", dir, sizeof dir, &err) == -1 && err.usage, "the root cgroup refused");
	unsetenv("MEMSHARE_SHARE_DIR");
	ok(share_space_dir("vm1", dir, sizeof dir, &err) == 0, "dir without $MEMSHARE_SHARE_DIR");
	is_str(dir, "/run/memshare/share/vm1", "  ... is under the default root");
}

static int write_file(const char *path, size_t bytes)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return -1;
	char block[4096];
	memset(block, 'j', sizeof block);
	for (size_t done = 0; done < bytes; done += sizeof block)
		if (write(fd, block, sizeof block) != (ssize_t)sizeof block) {
			close(fd);
			return -1;
		}
	return close(fd);
}

static void test_space(const char *tmp)
{
	struct ms_err err = {0};
	char dir[512], job[600];
	uint64_t size = 0, used = 0, files = 0;
	snprintf(dir, sizeof dir, "%s/share/vm1", tmp);

	ok(share_space_usage(dir, &size, &used, &files, &err) == -1 && err.usage, "usage of an absent space refused");
	err.msg[0] = '\0';
	if (!ok(share_space_mount(dir, 8 * MiB, &err) == 0, "mount an 8 MiB space"))
		printf("#   %s\n", err.msg);
	ok(share_space_is_mounted(dir, &err) == 1, "  ... it is a tmpfs mount");
	ok(share_space_usage(dir, &size, &used, &files, &err) == 0, "usage of the new space");
	is_int(size, 8 * MiB, "  ... size 8 MiB");
	is_int(used, 0, "  ... nothing used");
	is_int(files, 0, "  ... no files");
	ok(share_space_mount(dir, 8 * MiB, &err) == -1 && err.usage, "a second mount on the same dir refused");

	snprintf(job, sizeof job, "%s/job1", dir);
	ok(write_file(job, 3 * MiB) == 0, "write a 3 MiB job");
	snprintf(job, sizeof job, "%s/job2", dir);
	ok(write_file(job, 1 * MiB) == 0, "write a 1 MiB job");
	share_space_usage(dir, &size, &used, &files, &err);
	is_int(used, 4 * MiB, "  ... 4 MiB used");
	is_int(files, 2, "  ... 2 files");

	ok(share_space_resize(dir, 16 * MiB, 1 * MiB, &err) == 0, "grow to 16 MiB");
	share_space_usage(dir, &size, &used, &files, &err);
	is_int(size, 16 * MiB, "  ... statfs shows 16 MiB");
	struct statvfs sv;
	ok(statvfs(dir, &sv) == 0 && (sv.f_flag & ST_NOSUID) && (sv.f_flag & ST_NODEV), "  ... nosuid,nodev kept");
	ok(share_space_resize(dir, 5 * MiB, 0, &err) == 0, "shrink to 5 MiB (4 in use, no margin)");
	share_space_usage(dir, &size, &used, &files, &err);
	is_int(size, 5 * MiB, "  ... statfs shows 5 MiB");

	ok(share_space_resize(dir, 5 * MiB, 2 * MiB, &err) == -1 && err.usage, "5 MiB with a 2 MiB margin refused");
	like(err.msg, "size 5M is below the 4M in use plus the 2M margin", "  ... naming both figures");
	ok(share_space_resize(dir, 2 * MiB, 0, &err) == -1 && err.usage, "2 MiB with 4 in use refused");
	ok(share_space_resize(dir, 0, 0, &err) == -1 && err.usage, "0 (unlimited for tmpfs) refused");
	share_space_usage(dir, &size, &used, &files, &err);
	is_int(size, 5 * MiB, "  ... the size did not change");

	ok(share_space_resize(tmp, 16 * MiB, 0, &err) == -1 && err.usage, "resizing a dir that is not a tmpfs refused");
	like(err.msg, "not a tmpfs mount", "  ... saying so");
	char sub[600];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	mkdir(sub, 0755);
	ok(share_space_is_mounted(sub, &err) == 0, "a subdirectory of a tmpfs is not a space");

	char bind[600], where[600] = "";
	snprintf(bind, sizeof bind, "%s/bind", tmp);
	mkdir(bind, 0755);
	ok(share_space_mounted_elsewhere(dir, NULL, 0, where, sizeof where, &err) == 0, "not mounted elsewhere");
	ok(mount(dir, bind, NULL, MS_BIND, NULL) == 0, "bind-mount it elsewhere (as into a container)");
	ok(share_space_mounted_elsewhere(dir, NULL, 0, where, sizeof where, &err) == 1, "  ... seen mounted elsewhere");
	is_str(where, bind, "  ... at the bind mount");
	umount2(bind, 0);
	rmdir(bind);

	char root[600], link[600];
	snprintf(root, sizeof root, "%s/root", tmp);
	setenv("MEMSHARE_SHARE_DIR", root, 1);
	ok(share_space_link("/memshare/vm2", dir, &err) == 0, "link a domain to a space made elsewhere (--dir)");
	ok(share_space_dir("/memshare/vm2", link, sizeof link, &err) == 0, "  ... its dir");
	is_str(link, dir, "  ... follows the link");
	share_space_unlink("/memshare/vm2");
	share_space_dir("/memshare/vm2", link, sizeof link, &err);
	snprintf(where, sizeof where, "%s/memshare/vm2", root);
	is_str(link, where, "  ... unlinked, the default path again");
	rmdir(where);
	snprintf(where, sizeof where, "%s/memshare", root);
	rmdir(where);
	rmdir(root);
	unsetenv("MEMSHARE_SHARE_DIR");

	ok(share_space_unmount(dir, false, &err) == 0, "unmount the space");
	ok(access(dir, F_OK) < 0 && errno == ENOENT, "  ... its directory is gone");
	ok(share_space_unmount(dir, false, &err) == -1 && err.usage, "unmounting it again refused");
}

int main(void)
{
	test_dir();
	/* private mount namespace: the test's mounts vanish with it */
	if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		skip("needs root and a private mount namespace to mount tmpfs");
		return done_testing();
	}
	char tmp[] = "/tmp/test_share_space.XXXXXX";
	if (!mkdtemp(tmp)) {
		ok(0, "mkdtemp");
		return done_testing();
	}
	/* the temp dir itself may be on a tmpfs (/tmp): the tests need a dir that is not a mount */
	test_space(tmp);
	char share[600];
	snprintf(share, sizeof share, "%s/share", tmp);
	rmdir(share);
	rmdir(tmp);
	return done_testing();
}
