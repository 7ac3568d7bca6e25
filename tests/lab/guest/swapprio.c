/* swapprio — swapon(2) with a priority, for the memshare test lab guest:
 * busybox swapon has no -p, and remote-swap tests need to order devices.
 *
 *   swapprio [-d] DEVICE [PRIORITY]
 *
 * -d asks for discard.  Without PRIORITY the kernel picks one (negative).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/swap.h>

static int usage(void)
{
	fprintf(stderr, "usage: swapprio [-d] DEVICE [PRIORITY 0..32767]\n");
	return 2;
}

int main(int argc, char **argv)
{
	int flags = 0, a = 1;

	if (a < argc && strcmp(argv[a], "-d") == 0) {
		flags |= SWAP_FLAG_DISCARD;
		a++;
	}
	if (a >= argc || argc - a > 2)
		return usage();
	const char *dev = argv[a];
	if (argc - a == 2) {
		char *end;
		long prio = strtol(argv[a + 1], &end, 10);
		if (*end || prio < 0 || prio > SWAP_FLAG_PRIO_MASK)
			return usage();
		flags |= SWAP_FLAG_PREFER | ((prio << SWAP_FLAG_PRIO_SHIFT) & SWAP_FLAG_PRIO_MASK);
	}
	if (swapon(dev, flags) != 0) {
		fprintf(stderr, "swapprio: swapon %s: %s\n", dev, strerror(errno));
		return 1;
	}
	return 0;
}
