/* The libvirt driver against test:///default, libvirt's built-in fake
 * hypervisor (one running domain "test", 8 GiB maximum; its state lives in the
 * connection, so every check goes through one driver). */
#include <stdlib.h>
#include <string.h>

#include "driver.h"
#include "tap.h"

#define TEST_URI "test:///default"

static bool list_has(const struct domain_list *list, const char *name)
{
	for (size_t i = 0; i < list->count; i++)
		if (strcmp(list->names[i], name) == 0)
			return true;
	return false;
}

static void check_bad_uris(void)
{
	struct driver *drv = NULL;
	struct ms_err err = {0};

	/* A scheme that names no libvirt hypervisor driver is refused before
	 * libvirt is asked, daemon or not. */
	ok(driver_open("nosuch:///", &drv, &err) < 0, "an unknown scheme is refused");
	like(err.msg, "connection URI 'nosuch:///' is not served by any driver", "the message names the URI");
	is_int(err.usage, 1, "an unknown scheme is an input error");
	memset(&err, 0, sizeof err);
	ok(driver_open("nosuch+ssh://host/system", &drv, &err) < 0, "with a transport too");
	is_int(err.usage, 1, "an input error too");

	memset(&err, 0, sizeof err);
	ok(driver_open("qemu:///nosuch", &drv, &err) < 0, "a qemu URI with an unknown path is refused");
	like(err.msg, "qemu:///nosuch: cannot connect: ", "the message names the URI");

	memset(&err, 0, sizeof err);
	ok(driver_open("qemu", &drv, &err) < 0, "a URI without a scheme is refused before any driver");
	like(err.msg, "has no scheme", "the message says what is missing");
}

static void check_facts(struct driver *drv)
{
	struct domain_facts f;
	struct ms_err err = {0};
	int rc = driver_read_facts(drv, "test", &f, &err);
	if (!ok(rc == 0, "read_facts of 'test'"))
		printf("#   %s\n", err.msg);
	ok(f.alloc_bytes > 0, "alloc_bytes is known (%lld)", (long long)f.alloc_bytes);
	ok(f.max_bytes > 0, "max_bytes is known (%lld)", (long long)f.max_bytes);
	ok(f.alloc_bytes <= f.max_bytes, "alloc_bytes <= max_bytes");
	ok(f.vcpus >= 1, "vcpus is known (%lld)", (long long)f.vcpus);
	ok(f.cpu_total_ns >= 0, "cpu_total_ns is known");
	is_int(f.swap_bytes, MS_UNKNOWN, "no host process, so no host swap figure");
	is_int(f.refault_pages, MS_UNKNOWN, "refault_pages stays unknown");
}

static void check_set_alloc(struct driver *drv)
{
	struct domain_facts f;
	struct ms_err err = {0};
	if (driver_read_facts(drv, "test", &f, &err) < 0 || f.max_bytes <= 0) {
		skip("no maximum to size the balloon against");
		return;
	}
	uint64_t half = (uint64_t)f.max_bytes / 2;
	int rc = driver_set_alloc(drv, "test", half, &err);
	if (!ok(rc == 0, "set_alloc to half the maximum"))
		printf("#   %s\n", err.msg);
	driver_read_facts(drv, "test", &f, &err);
	is_int(f.alloc_bytes, half, "read_facts reads the new allocation back");

	rc = driver_set_alloc(drv, "test", (uint64_t)f.max_bytes, &err);
	ok(rc == 0, "set_alloc to exactly the maximum is accepted");
	driver_read_facts(drv, "test", &f, &err);
	is_int(f.alloc_bytes, f.max_bytes, "allocation back at the maximum");

	memset(&err, 0, sizeof err);
	rc = driver_set_alloc(drv, "test", (uint64_t)f.max_bytes + 1024 * 1024, &err);
	ok(rc < 0, "set_alloc above the maximum fails");
	like(err.msg, "is above its maximum memory", "the message says why");
	is_int(err.usage, 1, "above the maximum is an input error");
}

static void check_unknown_domain(struct driver *drv)
{
	struct domain_facts f;
	struct pid_list pids;
	struct ms_err err = {0};

	ok(driver_read_facts(drv, "nosuch", &f, &err) < 0, "read_facts of an unknown domain fails");
	is_str(err.msg, "unknown domain 'nosuch' at " TEST_URI, "read_facts names the domain and the URI");
	is_int(err.usage, 1, "an unknown domain is an input error");

	memset(&err, 0, sizeof err);
	ok(driver_set_alloc(drv, "nosuch", 1 << 30, &err) < 0, "set_alloc of an unknown domain fails");
	is_str(err.msg, "unknown domain 'nosuch' at " TEST_URI, "set_alloc names the domain and the URI");

	memset(&err, 0, sizeof err);
	ok(driver_ram_pids(drv, "nosuch", &pids, &err) < 0, "ram_pids of an unknown domain fails");
	is_str(err.msg, "unknown domain 'nosuch' at " TEST_URI, "ram_pids names the domain and the URI");
}

static void check_ram_pids(struct driver *drv)
{
	struct pid_list pids;
	struct ms_err err = {0};
	ok(driver_ram_pids(drv, "test", &pids, &err) < 0, "the test driver has no host process");
	is_str(err.msg, TEST_URI ": domain 'test' has no host process holding its memory", "ram_pids says why");
	is_int(pids.count, 0, "no pid returned");
}

int main(void)
{
	struct driver *drv = NULL;
	struct ms_err err = {0};

	if (driver_libvirt_ops.missing_dependency) {
		ok(driver_open(TEST_URI, &drv, &err) < 0, TEST_URI " fails in a build without libvirt");
		like(err.msg, "this build of memshare has no libvirt driver", "the message names the missing driver");
		return done_testing();
	}
	check_bad_uris();

	if (!ok(driver_open(TEST_URI, &drv, &err) == 0, "open " TEST_URI)) {
		printf("#   %s\n", err.msg);
		return done_testing();
	}
	is_str(drv->ops->name, "libvirt", TEST_URI " is served by the libvirt driver");

	struct domain_list list;
	ok(driver_list_domains(drv, &list, &err) == 0, "list_domains");
	ok(list_has(&list, "test"), "the list has the domain 'test' (%zu domains)", list.count);
	domain_list_free(&list);

	check_facts(drv);
	check_set_alloc(drv);
	check_unknown_domain(drv);
	check_ram_pids(drv);

	driver_close(drv);
	return done_testing();
}
