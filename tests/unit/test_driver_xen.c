/* The xen driver can only run in a Xen dom0; elsewhere it must fail cleanly
 * with a message that says why. */
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "tap.h"

int main(void)
{
	struct driver *drv = NULL;
	struct ms_err err = {0};

	is_str(driver_xen_ops.name, "xen", "the driver is called xen");
	ok(driver_xen_ops.handles("xen:///"), "it serves xen:///");
	ok(driver_xen_ops.handles("xen://host/"), "it serves xen://host/");
	ok(!driver_xen_ops.handles("qemu:///system"), "it leaves qemu:///system to libvirt");
	ok(!driver_xen_ops.handles("cgroup:///"), "it leaves cgroup:/// alone");

	if (driver_xen_ops.missing_dependency) {
		ok(driver_open("xen:///", &drv, &err) < 0, "xen:/// fails in a build without libxen");
		like(err.msg, "xen:///: this build of memshare has no xen driver", "the message names the missing driver");
		return done_testing();
	}
	if (access("/dev/xen/privcmd", F_OK) == 0) {
		skip("/dev/xen/privcmd exists: this host runs under Xen");
		return done_testing();
	}
	ok(driver_open("xen:///", &drv, &err) < 0, "xen:/// fails outside Xen");
	is_str(err.msg, "xen:///: /dev/xen/privcmd is absent: this host is not running under Xen (dom0)",
	       "the message says why");
	is_int(err.usage, 0, "it is a failed operation, not a usage error");
	ok(drv == NULL, "no driver is returned");
	return done_testing();
}
