"""What the bench/workloads proxies share: one-line usage errors (exit 2,
the house convention), checks of counts, and progress lines on stderr with
the elapsed time and the peak RSS."""

import argparse
import resource
import sys
import time


class Parser(argparse.ArgumentParser):
    """Usage errors on one line naming the argument, exit status 2 (the house convention)."""

    def error(self, message):
        print(f"{self.prog}: {message}; see --help", file=sys.stderr)
        sys.exit(2)


def require_positive(parser, args, names):
    """A usage error for the first of the attributes `names` of args below 1."""
    for name in names:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)}: must be at least 1")


def log(prog, phase, t0):
    """One progress line: the phase, the seconds since t0, the peak RSS."""
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{prog}: {phase} at {time.monotonic() - t0:.1f} s, peak RSS {rss_mib:.0f} MiB",
          file=sys.stderr, flush=True)
