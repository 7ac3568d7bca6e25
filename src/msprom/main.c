/* msprom — memshare's JSON Lines records as Prometheus metrics: the last
 * value of every wss, target, tier and sharing field, written as a .prom
 * file (atomically) for node_exporter's textfile collector, or printed. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "record_metrics.h"
#include "files.h"
#include "log.h"
#include "promtext.h"
#include "stream.h"
#include "units.h"

/* An input that never pauses still gets its file rewritten this often. */
#define MAX_WRITE_DELAY_NS (5 * NS_PER_S)

enum { OPT_TEE = CLI_OPT_FIRST_TOOL_OPTION, OPT_SETTLE, OPT_STRICT, OPT_LIST };

struct args {
	struct cli_common common;
	const char *output;
	bool tee, strict, list;
	uint64_t settle_ns;
};

static void usage(void)
{
	printf("Usage: msprom [OPTION]... [-o FILE.prom] < records.jsonl\n"
	       "Turn memshare's JSON Lines records (wss, target, tier, sharing, export_stats, pool_stats, gmc_status,\n"
	       "node, share) into Prometheus metrics: the last value of each field, labelled by host and what the record is\n"
	       "about (domain, scope, export, node; target: also policy).\n"
	       "\n"
	       "  -o, --output FILE    write the metrics to FILE, atomically, whenever the input has been quiet\n"
	       "                       for --settle and at its end (node_exporter's textfile collector reads it);\n"
	       "                       without -o they are printed on standard output at the end of the input\n"
	       "      --tee            with -o: copy every input line to standard output, so that msprom can sit\n"
	       "                       in the middle of a pipeline\n"
	       "      --settle DUR     how long the input must be quiet before FILE is written (default 500ms;\n"
	       "                       an input that never pauses: at least every 5 s)\n"
	       "      --strict         stop at the first bad input line (else: skipped with a warning, exit 2)\n"
	       "      --list-metrics   print every metric, its type and the record field it comes from, and exit\n"
	       "  -v, --verbose        more diagnostics on stderr\n"
	       "  -q, --quiet          fewer diagnostics\n"
	       "  -h, --help           this text\n"
	       "      --version        the version\n"
	       "\n"
	       "Records of other kinds are ignored (and copied by --tee).  Exit status: 0 done, 1 the file could not\n"
	       "be written, 2 bad usage or bad input lines.  See msprom(1) and memshare(7).\n");
}

static void take_option(int opt, const char *arg, void *ctx)
{
	struct args *a = ctx;
	struct ms_err err = {0};
	switch (opt) {
	case 'o': a->output = arg; break;
	case OPT_TEE: a->tee = true; break;
	case OPT_STRICT: a->strict = true; break;
	case OPT_LIST: a->list = true; break;
	case OPT_SETTLE:
		if (parse_duration_ns(arg, "--settle", &a->settle_ns, &err) < 0)
			cli_usage_error("%s", err.msg);
		if (a->settle_ns == 0)
			cli_usage_error("--settle: must be more than 0");
		break;
	default: cli_usage_error("invalid option");
	}
}

static void parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		CLI_COMMON_LONGOPTS,
		{"output", required_argument, NULL, 'o'},
		{"tee", no_argument, NULL, OPT_TEE},
		{"settle", required_argument, NULL, OPT_SETTLE},
		{"strict", no_argument, NULL, OPT_STRICT},
		{"list-metrics", no_argument, NULL, OPT_LIST},
		{NULL, 0, NULL, 0},
	};
	int first = cli_parse_options(argc, argv, CLI_COMMON_SHORTOPTS "o:", longopts, &a->common, take_option, a, usage);
	if (first < argc)
		cli_usage_error("unexpected operand '%s' (msprom reads standard input)", argv[first]);
	if (a->common.uri)
		cli_usage_error("-c/--connect: msprom reads records, it connects to nothing");
	if (a->tee && !a->output)
		cli_usage_error("--tee needs -o FILE: standard output carries the copy of the input");
}

static int write_metrics(const struct metric_store *store, const char *path, struct ms_err *err)
{
	struct prom_buf text = {0};
	metric_store_render(store, &text);
	int rc = text.out_of_memory ? ms_fail(err, "out of memory")
		 : path		    ? write_file_atomic(path, text.text ? text.text : "", text.len, 0644, err)
		 : (fwrite(text.text ? text.text : "", 1, text.len, stdout) == text.len && fflush(stdout) == 0)
			 ? 0
			 : ms_fail_errno(err, "cannot write the metrics");
	prom_buf_free(&text);
	return rc;
}

/* --tee: the line as it came (a record of any kind, or a bad line), so nothing downstream changes. */
static int copy_line(const struct jsonl_reader *r, struct ms_err *err)
{
	if (!r->buf || !r->buf[0])
		return 0;
	size_t n = strlen(r->buf);
	bool ok = fwrite(r->buf, 1, n, stdout) == n && (r->buf[n - 1] == '\n' || putchar('\n') != EOF) &&
		  fflush(stdout) == 0;
	if (ok)
		return 0;
	/* the next tool of the pipeline went away: said the way jsonl_emit says it */
	return errno == EPIPE ? ms_fail(err, "output closed by the reader")
			      : ms_fail_errno(err, "cannot copy the input to standard output");
}

static int run(const struct args *a, struct metric_store *store, struct record_stream *in, struct ms_err *err)
{
	bool dirty = false;
	uint64_t written_ns = monotonic_ns();
	for (;;) {
		json_t *rec = NULL;
		int rc = record_stream_next(in, dirty && a->output, &rec, err);
		if (rc == 2 || (rc == 1 && dirty && a->output && monotonic_ns() - written_ns >= MAX_WRITE_DELAY_NS)) {
			if (write_metrics(store, a->output, err) < 0) {
				json_decref(rec);
				return -1;
			}
			dirty = false;
			written_ns = monotonic_ns();
		}
		if (rc == 0)
			return write_metrics(store, a->output, err);
		if (rc == 2)
			continue;
		if (a->tee && copy_line(&in->reader, err) < 0) {
			json_decref(rec);
			return -1;
		}
		if (rc < 0) {
			if (record_stream_skip_bad(in, err))
				continue;
			return -1;
		}
		dirty |= metric_store_take(store, rec);
		json_decref(rec);
	}
}

int main(int argc, char **argv)
{
	struct args a = {.settle_ns = 500 * NS_PER_MS};
	cli_init(argv[0]);
	parse_args(argc, argv, &a);
	cli_apply_verbosity(&a.common);
	if (a.list) {
		metric_store_list();
		return 0;
	}
	struct metric_store *store = metric_store_new();
	if (!store) {
		fprintf(stderr, "%s: out of memory\n", ms_progname());
		return MS_EXIT_FAIL;
	}
	struct record_stream in;
	record_stream_init(&in, stdin, "<stdin>", a.settle_ns);
	in.strict = a.strict;
	struct ms_err err = {0};
	int rc = run(&a, store, &in, &err);
	unsigned long skipped = in.skipped;
	record_stream_free(&in);
	metric_store_free(store);
	if (rc < 0) /* a reader that went away is not worth a message */
		return strcmp(err.msg, "output closed by the reader") == 0 ? MS_EXIT_FAIL : cli_report(&err);
	if (skipped) {
		fprintf(stderr, "%s: %lu bad input line%s skipped (see the warnings above; --strict stops at the first)\n",
			ms_progname(), skipped, skipped == 1 ? "" : "s");
		return MS_EXIT_USAGE;
	}
	return 0;
}
