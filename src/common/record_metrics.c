#include "record_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One record field exported as one metric.  Rates stay gauges (the records
 * carry rates, not the counters behind them); totals since a daemon started
 * are counters (a restart resets them, which Prometheus's rate() handles). */
struct metric_def {
	const char *kind, *field, *metric, *type;
	double scale; /* to base units: microseconds and milliseconds to seconds */
	const char *help;
};

static const struct metric_def METRICS[] = {
	{"wss", "wss_bytes", "memshare_wss_bytes", "gauge", 1, "Working-set size estimate of the domain (mswss)."},
	{"wss", "wss_low_bytes", "memshare_wss_low_bytes", "gauge", 1, "Lower bound of the working-set estimate."},
	{"wss", "wss_high_bytes", "memshare_wss_high_bytes", "gauge", 1, "Upper bound of the working-set estimate."},
	{"wss", "alloc_bytes", "memshare_domain_alloc_bytes", "gauge", 1, "Memory the domain has now (balloon or limit)."},
	{"wss", "max_bytes", "memshare_domain_max_bytes", "gauge", 1, "Most memory the domain may have."},
	{"wss", "rss_bytes", "memshare_domain_rss_bytes", "gauge", 1, "Host memory resident for the domain."},
	{"wss", "swap_bytes", "memshare_domain_swap_bytes", "gauge", 1, "The domain's memory in swap."},
	{"wss", "swap_in_bytes_per_s", "memshare_domain_swap_in_bytes_per_second", "gauge", 1,
	 "Bytes the domain read back from swap per second over the last interval."},
	{"wss", "major_faults_per_s", "memshare_domain_major_faults_per_second", "gauge", 1,
	 "Major page faults per second over the last interval."},
	{"wss", "refault_bytes_per_s", "memshare_domain_refault_bytes_per_second", "gauge", 1,
	 "Evicted memory loaded again per second over the last interval."},
	{"wss", "usrtime", "memshare_domain_usrtime_ratio", "gauge", 1,
	 "Share of the interval the domain's CPUs spent in user space (CARLEMM's usrtime)."},
	{"wss", "scan_cpu_ms", "memshare_wss_scan_cpu_seconds", "gauge", 1e-3,
	 "CPU time the last estimate cost mswss."},
	{"target", "balloon_bytes", "memshare_target_balloon_bytes", "gauge", 1,
	 "The policy's balloon target for the domain (msballoon)."},
	{"target", "tier_bytes", "memshare_target_tier_bytes", "gauge", 1, "The policy's second-tier target."},
	{"target", "remote_need_bytes", "memshare_target_remote_need_bytes", "gauge", 1,
	 "Memory the domain needs from other hosts."},
	{"target", "bid", "memshare_target_bid", "gauge", 1, "The learning agent's bid, from -1 to 1."},
	{"target", "usrtime_target", "memshare_target_usrtime_target_ratio", "gauge", 1,
	 "CARLEMM's usrtime target the last bid is judged by."},
	{"target", "hal_overrides", "memshare_target_hal_overrides_total", "counter", 1,
	 "HAL overrides of the agent's bid for the domain."},
	{"tier", "puts_total", "memshare_tier_puts_total", "counter", 1, "Pages written to the device."},
	{"tier", "puts_succ", "memshare_tier_puts_succeeded_total", "counter", 1,
	 "Pages the device's tier (RAM or remote) took."},
	{"tier", "gets", "memshare_tier_gets_total", "counter", 1, "Pages read from the device."},
	{"tier", "gets_succ", "memshare_tier_gets_succeeded_total", "counter", 1, "Pages read from its tier."},
	{"tier", "flushes", "memshare_tier_flushes_total", "counter", 1, "Flush requests."},
	{"tier", "tier_used_bytes", "memshare_tier_used_bytes", "gauge", 1, "The device's pages in RAM or remote."},
	{"tier", "tier_target_bytes", "memshare_tier_target_bytes", "gauge", 1, "The device's tier target."},
	{"tier", "pool_bytes", "memshare_tier_pool_bytes", "gauge", 1, "The client's tier pool."},
	{"tier", "size_bytes", "memshare_tier_device_size_bytes", "gauge", 1, "The swap device's size."},
	{"tier", "ram_bytes", "memshare_tier_ram_bytes", "gauge", 1, "The device's pages in host RAM."},
	{"tier", "remote_bytes", "memshare_tier_remote_bytes", "gauge", 1, "The device's pages on remote providers."},
	{"tier", "disk_bytes", "memshare_tier_disk_bytes", "gauge", 1, "The device's pages on local disk."},
	{"tier", "mirror_pending_bytes", "memshare_tier_mirror_pending_bytes", "gauge", 1,
	 "Remote pages not yet copied to disk."},
	{"tier", "remotes_alive", "memshare_tier_remotes_alive", "gauge", 1, "Remote providers answering."},
	{"tier", "remotes_dead", "memshare_tier_remotes_dead", "gauge", 1, "Remote providers given up on."},
	{"tier", "failovers", "memshare_tier_failovers_total", "counter", 1, "Remotes failed over to the disk copy."},
	{"tier", "remotes_released", "memshare_tier_remotes_released_total", "counter", 1, "Remotes released."},
	{"tier", "mirror_errors", "memshare_tier_mirror_errors_total", "counter", 1, "Failed copies to disk."},
	{"tier", "read_latency_us", "memshare_tier_read_latency_mean_seconds", "gauge", 1e-6,
	 "Mean time the device took to serve a read, over its life."},
	{"tier", "write_latency_us", "memshare_tier_write_latency_mean_seconds", "gauge", 1e-6,
	 "Mean time the device took to serve a write, over its life."},
	{"sharing", "total_bytes", "memshare_sharing_scanned_bytes", "gauge", 1, "Memory hashed (mshash)."},
	{"sharing", "intra_reducible_bytes", "memshare_sharing_intra_reducible_bytes", "gauge", 1,
	 "Memory that sharing within each snapshot would save."},
	{"sharing", "inter_reducible_bytes", "memshare_sharing_inter_reducible_bytes", "gauge", 1,
	 "Memory that sharing across the snapshots would save."},
	{"sharing", "intra_ratio", "memshare_sharing_intra_ratio", "gauge", 1, "Share of blocks duplicated within a snapshot."},
	{"sharing", "inter_ratio", "memshare_sharing_inter_ratio", "gauge", 1, "Share of blocks duplicated across snapshots."},
	{"sharing", "zero_blocks", "memshare_sharing_zero_blocks", "gauge", 1, "Blocks that are all zeros."},
	{"sharing", "total_blocks", "memshare_sharing_blocks", "gauge", 1, "Blocks hashed."},
	{"export_stats", "size_bytes", "memshare_export_size_bytes", "gauge", 1, "The export's size (msrswap serve)."},
	{"export_stats", "used_bytes", "memshare_export_used_bytes", "gauge", 1, "Reservoir memory charged to the export."},
	{"export_stats", "logical_bytes", "memshare_export_logical_bytes", "gauge", 1, "The export's blocks that hold data."},
	{"export_stats", "reads", "memshare_export_reads_total", "counter", 1, "NBD reads served."},
	{"export_stats", "writes", "memshare_export_writes_total", "counter", 1, "NBD writes served."},
	{"export_stats", "read_bytes", "memshare_export_read_bytes_total", "counter", 1, "Bytes of data read."},
	{"export_stats", "write_bytes", "memshare_export_written_bytes_total", "counter", 1, "Bytes written."},
	{"export_stats", "flushes", "memshare_export_flushes_total", "counter", 1, "NBD flushes served."},
	{"export_stats", "trims", "memshare_export_trims_total", "counter", 1, "NBD trims served."},
	{"export_stats", "zeroes", "memshare_export_zeroes_total", "counter", 1, "NBD write-zeroes served."},
	{"export_stats", "errors", "memshare_export_errors_total", "counter", 1, "NBD commands answered with an error."},
	{"pool_stats", "capacity_bytes", "memshare_pool_capacity_bytes", "gauge", 1, "The reservoir's capacity."},
	{"pool_stats", "reserved_bytes", "memshare_pool_reserved_bytes", "gauge", 1, "The exports' sizes added up."},
	{"pool_stats", "used_bytes", "memshare_pool_used_bytes", "gauge", 1, "Reservoir memory holding data."},
	{"pool_stats", "logical_bytes", "memshare_pool_logical_bytes", "gauge", 1, "Data the exports hold."},
	{"pool_stats", "dedup_saved_bytes", "memshare_pool_dedup_saved_bytes", "gauge", 1, "Memory --dedup saves."},
	{"gmc_status", "nodes", "memshare_gmc_nodes", "gauge", 1, "Nodes the controller knows (msgmc)."},
	{"gmc_status", "active_nodes", "memshare_gmc_active_nodes", "gauge", 1, "Active nodes."},
	{"gmc_status", "connected_nodes", "memshare_gmc_connected_nodes", "gauge", 1, "Nodes with a connected agent."},
	{"gmc_status", "leases", "memshare_gmc_leases", "gauge", 1, "Leases granted and not released."},
	{"gmc_status", "leased_bytes", "memshare_gmc_leased_bytes", "gauge", 1, "The leases' sizes added up."},
	{"gmc_status", "free_bytes", "memshare_gmc_free_bytes", "gauge", 1, "The active nodes' free memory added up."},
	{"gmc_status", "requests_in_flight", "memshare_gmc_requests_in_flight", "gauge", 1, "Orders not answered yet."},
	{"gmc_status", "messages", "memshare_gmc_messages_total", "counter", 1, "Messages received."},
	{"gmc_status", "decisions", "memshare_gmc_decisions_total", "counter", 1, "Placement decisions made."},
	{"gmc_status", "decision_us_avg", "memshare_gmc_decision_mean_seconds", "gauge", 1e-6,
	 "The policy's mean time per decision."},
	{"gmc_status", "commits", "memshare_gmc_commits_total", "counter", 1, "State commits (journal or etcd)."},
	{"gmc_status", "last_commit_ms", "memshare_gmc_last_commit_seconds", "gauge", 1e-3,
	 "How long the last state commit took."},
	{"gmc_status", "uptime_s", "memshare_gmc_uptime_seconds", "gauge", 1, "Seconds since the controller started."},
	{"node", "reservoir_bytes", "memshare_node_reservoir_bytes", "gauge", 1, "The node's reservoir (msgmc)."},
	{"node", "free_bytes", "memshare_node_free_bytes", "gauge", 1, "The node's free memory it offers."},
	{"node", "leased_out_bytes", "memshare_node_leased_out_bytes", "gauge", 1, "Memory the node lends."},
	{"node", "leased_in_bytes", "memshare_node_leased_in_bytes", "gauge", 1, "Memory the node borrows."},
	{"node", "local_need_bytes", "memshare_node_local_need_bytes", "gauge", 1, "Memory the node's domains lack."},
	{"share", "size_bytes", "memshare_share_size_bytes", "gauge", 1, "The domain's shared space (msshare)."},
	{"share", "used_bytes", "memshare_share_used_bytes", "gauge", 1, "What its jobs hold in it."},
	{"share", "files", "memshare_share_files", "gauge", 1, "Files (jobs) in the space."},
	{"share", "arrivals_per_s", "memshare_share_arrivals_per_second", "gauge", 1, "Jobs written per second."},
	{"share", "departures_per_s", "memshare_share_departures_per_second", "gauge", 1, "Jobs taken away per second."},
	{"share", "service_per_s", "memshare_share_service_per_second", "gauge", 1,
	 "Departure rate while jobs were waiting."},
	{"share", "mean_job_bytes", "memshare_share_mean_job_bytes", "gauge", 1, "The mean job's size."},
	{"share", "full_s", "memshare_share_full_seconds", "gauge", 1,
	 "Seconds of the interval the space could not take one more mean job."},
	{"target", "share_bytes", "memshare_target_share_bytes", "gauge", 1, "The policy's shared-space target."},
};
#define NMETRICS (sizeof METRICS / sizeof METRICS[0])

/* The record kinds taken, and the fields that name what each record is about
 * (its labels, beside host). */
struct kind_def {
	const char *kind;
	const char *label_fields[2];
};

static const struct kind_def KINDS[] = {
	{"wss", {"domain"}},	     {"target", {"domain", "policy"}}, {"tier", {"domain"}},
	{"sharing", {"scope"}},	     {"export_stats", {"export"}},     {"pool_stats", {NULL}},
	{"gmc_status", {NULL}},	     {"node", {"node"}},	       {"share", {"domain"}},
};

/* Histograms the records carry as {"lt_N": count, ..., "ge_4194304": count}
 * (log2 buckets in microseconds, empty ones left out) with their sum beside. */
struct histogram_def {
	const char *kind, *field, *sum_field, *metric, *help;
};

static const struct histogram_def HISTOGRAMS[] = {
	{"export_stats", "latency_us", "latency_sum_us", "memshare_export_request_duration_seconds",
	 "NBD commands' service times, from arrival to reply (msrswap serve)."},
	{"tier", "latency_us", "latency_sum_us", "memshare_tier_request_duration_seconds",
	 "The swap device's requests' service times, from arrival to reply (msrswap client)."},
};
#define NHISTOGRAMS (sizeof HISTOGRAMS / sizeof HISTOGRAMS[0])
#define LOG2_BUCKETS 23 /* lt_1 .. lt_4194304; the rest is +Inf */

#define TIMESTAMP_METRIC NMETRICS /* one more family: when each source last reported */
#define MAX_LABELS 4

struct series {
	char *labels[2 * MAX_LABELS + 1]; /* name, value pairs, NULL-terminated */
	double value;
};

struct family {
	struct series *series;
	size_t n, cap;
};

struct hist_series {
	char *labels[2 * MAX_LABELS + 1];
	uint64_t cumulative[LOG2_BUCKETS];
	uint64_t count;
	double sum_s;
};

struct hist_family {
	struct hist_series *series;
	size_t n, cap;
};

struct metric_store {
	struct family families[NMETRICS + 1];
	struct hist_family histograms[NHISTOGRAMS];
};

struct metric_store *metric_store_new(void) { return calloc(1, sizeof(struct metric_store)); }

static void free_labels(char **labels)
{
	for (size_t i = 0; labels[i]; i++)
		free(labels[i]);
}

void metric_store_free(struct metric_store *s)
{
	if (!s)
		return;
	for (size_t f = 0; f <= NMETRICS; f++) {
		for (size_t i = 0; i < s->families[f].n; i++)
			free_labels(s->families[f].series[i].labels);
		free(s->families[f].series);
	}
	for (size_t h = 0; h < NHISTOGRAMS; h++) {
		for (size_t i = 0; i < s->histograms[h].n; i++)
			free_labels(s->histograms[h].series[i].labels);
		free(s->histograms[h].series);
	}
	free(s);
}

static bool same_labels(char *const *a, const char *const *b)
{
	size_t i = 0;
	for (; a[i] && b[i]; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return !a[i] && !b[i];
}

/* DST (zeroed, 2 * MAX_LABELS + 1 slots) gets copies of LABELS; false (nothing kept) out of memory. */
static bool copy_labels(char **dst, const char *const *labels)
{
	for (size_t i = 0; labels[i] && i < 2 * MAX_LABELS; i++)
		if (!(dst[i] = strdup(labels[i]))) {
			free_labels(dst);
			memset(dst, 0, (2 * MAX_LABELS + 1) * sizeof *dst);
			return false;
		}
	return true;
}

/* Set the value of the series with these labels, adding it the first time. */
static void set_value(struct family *f, const char *const *labels, double value)
{
	for (size_t i = 0; i < f->n; i++)
		if (same_labels(f->series[i].labels, labels)) {
			f->series[i].value = value;
			return;
		}
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		struct series *grown = realloc(f->series, cap * sizeof *grown);
		if (!grown)
			return; /* out of memory: this series is left out, the others stay right */
		f->series = grown;
		f->cap = cap;
	}
	struct series *s = &f->series[f->n];
	memset(s, 0, sizeof *s);
	if (!copy_labels(s->labels, labels))
		return;
	s->value = value;
	f->n++;
}

/* The series of these labels in F (added the first time), or NULL out of memory. */
static struct hist_series *hist_series_of(struct hist_family *f, const char *const *labels)
{
	for (size_t i = 0; i < f->n; i++)
		if (same_labels(f->series[i].labels, labels))
			return &f->series[i];
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 8;
		struct hist_series *grown = realloc(f->series, cap * sizeof *grown);
		if (!grown)
			return NULL;
		f->series = grown;
		f->cap = cap;
	}
	struct hist_series *h = &f->series[f->n];
	memset(h, 0, sizeof *h);
	if (!copy_labels(h->labels, labels))
		return NULL;
	f->n++;
	return h;
}

/* A record's log2 histogram object and its sum; a record without both is left out. */
static void take_histogram(struct hist_family *f, const struct histogram_def *d, const json_t *record,
			   const char *const *labels)
{
	const json_t *obj = json_object_get(record, d->field), *sum = json_object_get(record, d->sum_field);
	if (!json_is_object(obj) || !json_is_number(sum))
		return;
	uint64_t per_bucket[LOG2_BUCKETS + 1] = {0};
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)obj, key, v) {
		unsigned long long bound;
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			continue;
		if (sscanf(key, "lt_%llu", &bound) == 1 && bound && !(bound & (bound - 1)) && bound <= (1ULL << 22))
			per_bucket[__builtin_ctzll(bound)] += (uint64_t)json_integer_value(v);
		else if (strncmp(key, "ge_", 3) == 0)
			per_bucket[LOG2_BUCKETS] += (uint64_t)json_integer_value(v);
	}
	struct hist_series *h = hist_series_of(f, labels);
	if (!h)
		return;
	uint64_t running = 0;
	for (size_t b = 0; b < LOG2_BUCKETS; b++)
		h->cumulative[b] = running += per_bucket[b];
	h->count = running + per_bucket[LOG2_BUCKETS];
	h->sum_s = json_number_value(sum) * 1e-6;
}

static const char *string_field(const json_t *r, const char *key)
{
	const char *s = json_string_value(json_object_get(r, key));
	return s ? s : "";
}

static const struct kind_def *kind_of(const char *kind)
{
	for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
		if (strcmp(KINDS[i].kind, kind) == 0)
			return &KINDS[i];
	return NULL;
}

/* The labels of a record: host, then the kind's label fields it has. */
static void record_labels(const json_t *r, const struct kind_def *k, const char **labels)
{
	size_t n = 0;
	labels[n++] = "host";
	labels[n++] = string_field(r, "host");
	for (size_t i = 0; i < 2 && k->label_fields[i]; i++)
		if (json_is_string(json_object_get(r, k->label_fields[i]))) {
			labels[n++] = k->label_fields[i];
			labels[n++] = string_field(r, k->label_fields[i]);
		}
	labels[n] = NULL;
}

/* "2026-12-03T10:00:00.123Z" to seconds since the epoch; -1 when it is not one. */
static double rfc3339_seconds(const char *ts)
{
	struct tm tm = {0};
	const char *rest = strptime(ts, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return -1;
	double frac = 0;
	if (*rest == '.') {
		char *end;
		frac = strtod(rest, &end);
		rest = end;
	}
	if (strcmp(rest, "Z") != 0)
		return -1;
	return (double)timegm(&tm) + frac;
}

bool metric_store_take(struct metric_store *s, const json_t *record)
{
	const char *kind = json_string_value(json_object_get(record, "kind"));
	const struct kind_def *k = kind ? kind_of(kind) : NULL;
	if (!k)
		return false;
	const char *labels[2 * MAX_LABELS + 1];
	record_labels(record, k, labels);
	for (size_t i = 0; i < NMETRICS; i++) {
		const json_t *v = json_object_get(record, METRICS[i].field);
		if (strcmp(METRICS[i].kind, kind) == 0 && json_is_number(v))
			set_value(&s->families[i], labels, json_number_value(v) * METRICS[i].scale);
	}
	for (size_t h = 0; h < NHISTOGRAMS; h++)
		if (strcmp(HISTOGRAMS[h].kind, kind) == 0)
			take_histogram(&s->histograms[h], &HISTOGRAMS[h], record, labels);
	double ts = rfc3339_seconds(string_field(record, "ts"));
	if (ts >= 0) {
		const char *with_kind[2 * MAX_LABELS + 3] = {"kind", kind};
		memcpy(with_kind + 2, labels, sizeof labels);
		set_value(&s->families[TIMESTAMP_METRIC], with_kind, ts);
	}
	return true;
}

static void render_family(const struct family *f, const char *name, const char *type, const char *help,
			  struct prom_buf *out)
{
	if (f->n == 0)
		return;
	prom_family(out, name, type, help);
	for (size_t i = 0; i < f->n; i++)
		prom_sample(out, name, (const char *const *)f->series[i].labels, NULL, NULL, f->series[i].value);
}

void metric_store_render(const struct metric_store *s, struct prom_buf *out)
{
	for (size_t i = 0; i < NMETRICS; i++)
		render_family(&s->families[i], METRICS[i].metric, METRICS[i].type, METRICS[i].help, out);
	double bounds[LOG2_BUCKETS];
	for (size_t b = 0; b < LOG2_BUCKETS; b++)
		bounds[b] = (double)(1ULL << b) * 1e-6;
	for (size_t h = 0; h < NHISTOGRAMS; h++) {
		const struct hist_family *f = &s->histograms[h];
		if (f->n)
			prom_family(out, HISTOGRAMS[h].metric, "histogram", HISTOGRAMS[h].help);
		for (size_t i = 0; i < f->n; i++)
			prom_histogram(out, HISTOGRAMS[h].metric, (const char *const *)f->series[i].labels, bounds,
				       f->series[i].cumulative, LOG2_BUCKETS, f->series[i].sum_s, f->series[i].count);
	}
	render_family(&s->families[TIMESTAMP_METRIC], "memshare_record_timestamp_seconds", "gauge",
		      "When the source last reported (the record's ts), by record kind.", out);
}

void metric_records_render(const json_t *records, struct prom_buf *out)
{
	struct metric_store *store = metric_store_new();
	if (!store) {
		out->out_of_memory = true;
		return;
	}
	size_t i;
	const json_t *rec;
	json_array_foreach(records, i, rec)
		metric_store_take(store, rec);
	metric_store_render(store, out);
	metric_store_free(store);
}

void metric_store_list(void)
{
	for (size_t i = 0; i < NMETRICS; i++)
		printf("%-40s %-8s %s.%s%s\n", METRICS[i].metric, METRICS[i].type, METRICS[i].kind, METRICS[i].field,
		       METRICS[i].scale == 1 ? "" : METRICS[i].scale == 1e-3 ? " (ms to s)" : " (us to s)");
	for (size_t h = 0; h < NHISTOGRAMS; h++)
		printf("%-40s %-8s %s.%s, %s.%s (us to s)\n", HISTOGRAMS[h].metric, "histogram", HISTOGRAMS[h].kind,
		       HISTOGRAMS[h].field, HISTOGRAMS[h].kind, HISTOGRAMS[h].sum_field);
	printf("%-40s %-8s %s\n", "memshare_record_timestamp_seconds", "gauge", "ts of every kind above");
}
