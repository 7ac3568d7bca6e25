#define _GNU_SOURCE
#include "loadgen.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(const struct load_options *o, bool with_provider)
{
	fprintf(stderr, "Usage: %s --uri URI --rw read|write|fill%s [--bs BYTES] [--qd N] [--warmup SEC] [--time SEC] [--seed N]\n",
		o->tool, with_provider ? " [--provider P]" : "");
	exit(2);
}

void load_parse_options(int argc, char **argv, const char *tool, bool with_provider, unsigned max_qd,
			uint64_t max_bs, struct load_options *o)
{
	static const struct option opts[] = {
		{"uri", required_argument, NULL, 'u'},    {"rw", required_argument, NULL, 'r'},
		{"bs", required_argument, NULL, 'b'},     {"qd", required_argument, NULL, 'q'},
		{"warmup", required_argument, NULL, 'w'}, {"time", required_argument, NULL, 't'},
		{"seed", required_argument, NULL, 's'},   {"provider", required_argument, NULL, 'p'},
		{NULL, 0, NULL, 0},
	};
	*o = (struct load_options){.tool = tool, .bs = 4096, .seed = 0x9E3779B97F4A7C15ULL, .qd = 1, .warmup = 1, .seconds = 5};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': o->uri = optarg; break;
		case 'r': o->rw_name = optarg; break;
		case 'b': o->bs = strtoull(optarg, NULL, 0); break;
		case 'q': o->qd = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'w': o->warmup = strtod(optarg, NULL); break;
		case 't': o->seconds = strtod(optarg, NULL); break;
		case 's': o->seed = strtoull(optarg, NULL, 0) | 1; break;
		case 'p':
			if (!with_provider)
				usage(o, with_provider);
			o->provider = optarg;
			break;
		default: usage(o, with_provider);
		}
	}
	if (optind < argc || !o->uri || !o->rw_name || o->qd < 1 || o->qd > max_qd || o->bs < 512 || o->bs > max_bs ||
	    o->seconds <= 0 || o->warmup < 0)
		usage(o, with_provider);
	if (strcmp(o->rw_name, "read") == 0)
		o->rw = LOAD_READ;
	else if (strcmp(o->rw_name, "write") == 0)
		o->rw = LOAD_WRITE;
	else if (strcmp(o->rw_name, "fill") == 0)
		o->rw = LOAD_FILL;
	else
		usage(o, with_provider);
}

uint64_t load_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t load_random(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

void load_pattern(void *buf, uint64_t len, uint64_t *state)
{
	for (uint64_t *p = buf, *end = p + len / 8; p < end; p++)
		*p = load_random(state) | 1;
}

bool load_next_offset(const struct load_options *o, uint64_t size, uint64_t *fill_next, uint64_t *rng,
		      uint64_t *offset)
{
	if (o->rw == LOAD_FILL) {
		if (*fill_next >= size)
			return false;
		*offset = *fill_next;
		*fill_next += o->bs;
		return true;
	}
	*offset = load_random(rng) % (size / o->bs) * o->bs;
	return true;
}

void load_window(const struct load_options *o, uint64_t start_ns, struct load_latencies *l)
{
	l->from_ns = o->rw == LOAD_FILL ? UINT64_MAX : start_ns + (uint64_t)(o->warmup * 1e9);
	l->to_ns = o->rw == LOAD_FILL ? 0 : l->from_ns + (uint64_t)(o->seconds * 1e9);
}

void load_record(struct load_latencies *l, uint64_t issued_ns, uint64_t done_ns)
{
	if (issued_ns < l->from_ns || done_ns > l->to_ns)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1 << 20;
		if (!(l->ns = realloc(l->ns, l->cap * sizeof *l->ns))) {
			fprintf(stderr, "loadgen: out of memory\n");
			exit(1);
		}
	}
	uint64_t ns = done_ns - issued_ns;
	l->ns[l->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int compare_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static double percentile_us(const uint32_t *sorted, size_t n, double p)
{
	return n ? sorted[(size_t)(p / 100.0 * (double)(n - 1) + 0.5)] / 1000.0 : 0; /* nearest rank */
}

void load_report(const struct load_options *o, struct load_latencies *l, uint64_t size, double fill_seconds,
		 uint64_t errors)
{
	if (o->rw == LOAD_FILL) {
		printf("{\"rw\":\"fill\",\"bytes\":%" PRIu64 ",\"seconds\":%.3f,\"errors\":%" PRIu64 "}\n", size,
		       fill_seconds, errors);
		return;
	}
	/* IOPS over the measured window: the requests issued and completed in it
	 * (QD fewer than completed in it: negligible over seconds) */
	qsort(l->ns, l->n, sizeof *l->ns, compare_u32);
	double mean = 0;
	for (size_t i = 0; i < l->n; i++)
		mean += l->ns[i];
	mean = l->n ? mean / (double)l->n / 1000.0 : 0;
	printf("{\"rw\":\"%s\",\"qd\":%u,\"bs\":%" PRIu64 ",\"ios\":%zu,\"seconds\":%.3f,\"iops\":%.0f,"
	       "\"mean_us\":%.2f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"errors\":%" PRIu64 "}\n",
	       o->rw_name, o->qd, o->bs, l->n, o->seconds, l->n / o->seconds, mean, percentile_us(l->ns, l->n, 50),
	       percentile_us(l->ns, l->n, 99), errors);
}
