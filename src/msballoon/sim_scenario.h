/* Scenario files of `msballoon sim`: a node (second-tier pool, host memory,
 * per-page costs) and VMs with memory-demand traces.  JSON, read with
 * jansson; every error names the file and the field ("s.json: vms[2].demand.
 * step_bytes: ...").  Sizes are integers (bytes) or strings ("512M", "1.5G");
 * times are seconds.  Unknown fields are ignored.
 *
 * {
 *   "name": "usemem",                 optional, default: the file name
 *   "interval_s": 1,                  policy interval (SmarTmem samples every 1 s)
 *   "duration_s": 600,                the run stops earlier when every VM has stopped
 *   "tier_total_bytes": "384M",       the second-tier pool (Tmem)
 *   "remote_tier_bytes": "1G",        optional: what the cluster can grant (tlp's Grant-Any), default 0
 *   "host_bytes": "2G",               optional: memory for all VMs together (balloon policies), default unknown
 *   "page_bytes": 4096,               optional
 *   "disk_page_cost_us": 100,         cost of one page read from / written to disk
 *   "tier_page_cost_us": 2,           cost of one put or get in the pool
 *   "remote_page_cost_us": 52,        optional, default tier cost + 50 µs (vMCA's emulated latency)
 *   "costs": "measured by ...",       optional: where the per-page costs come from (sim --table
 *                                     prints it with the cost model); default: not given
 *   "tier_gets": "flush",             optional: what a get does to the page's tier slot:
 *                                     "flush" (Tmem's frontswap: the slot is freed, the page's next
 *                                     put competes for the pool again; the default) or "keep" (swap
 *                                     on a block device, as msrswap's tier store sees it: the guest
 *                                     keeps the swap slot of a page it read back and rewrites that
 *                                     block in place, in the tier whatever its target)
 *   "timeline": "wall",               optional: what moves a workload along its demand trace:
 *                                     "wall" (the clock: the trace is where the workload is at
 *                                     that second, paging or not; the default, so that scenario
 *                                     files written before keep their results) or "progress" (the
 *                                     work it has done: an interval of paging stalls advances it
 *                                     by less than an interval, as a real VM is slowed)
 *   "access": "uniform",              optional: how workloads touch their memory, for every VM
 *                                     that does not say: "uniform" (a touch misses RAM with
 *                                     probability spilled / demand; the default) or "cyclic" (a
 *                                     linear scan, as usemem: once the demand exceeds RAM, LRU
 *                                     evicts every page before the scan comes back to it, so
 *                                     every touch misses)
 *   "vms": [{
 *     "name": "vm1",
 *     "ram_bytes": "512M",            its memory at boot (the balloon policies may change it)
 *     "max_bytes": "1G",              optional, default host_bytes, else ram_bytes
 *     "base_bytes": "64M",            optional: the guest's own footprint, present from boot
 *     "access_bytes_per_s": "200M",   pages touched per second while the workload runs
 *     "access": "cyclic",             optional: this VM's access pattern (default the scenario's)
 *     "start": 0 | {"vm": "vm1", "demand_bytes": "640M"},
 *     "stop":  90 | {"vm": "vm3", "demand_bytes": "768M"},     optional
 *     "demand": {"first_bytes": "128M", "step_bytes": "128M", "every_s": 20, "max_bytes": "1G"}
 *             | [[0, "200M"], [30, "1.2G"], [90, "1.2G"]],  (seconds since start, linear in
 *               between; the workload ends at the last point and frees its memory)
 *             | {"trace": "traces/xz.jsonl",   mswss wss records, read into points (sim_trace.h):
 *                                              the path is relative to this file's directory
 *                "domain": "/memshare/trace-xz",   optional: the domain whose records to take
 *                "bytes": "wss_bytes",         optional: the records' field that is the demand:
 *                                              "wss_bytes" (default) or "rss_bytes"
 *                "scale": 1,                   optional: factor on those bytes
 *                "time_scale": 1,              optional: factor on seconds (5: 2 min last 10)
 *                "repeat": 1},                 optional: play it N times in a row
 *     "bids": [[0, 0.2], [60, -0.1]]  optional: bid-policy input from that time (s since t=0)
 *   }]
 * }
 * "start"/"stop" conditions are met at the first interval in which that VM's
 * workload demand is at least demand_bytes. */
#ifndef MSBALLOON_SIM_SCENARIO_H
#define MSBALLOON_SIM_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define SCENARIO_MAX_VMS 256
#define SCENARIO_MAX_INTERVALS 1000000

struct trace_point {
	double t_s;
	double value;
};

enum trigger_kind { TRIGGER_NONE, TRIGGER_TIME, TRIGGER_DEMAND };

struct trigger {
	enum trigger_kind kind;
	double t_s;           /* TRIGGER_TIME */
	size_t vm;            /* TRIGGER_DEMAND: index of the VM watched */
	int64_t demand_bytes; /* ... and the workload demand it must reach */
};

struct demand_spec {
	bool usemem;                       /* steps, or else points */
	int64_t first_bytes, step_bytes, max_bytes;
	double every_s;
	struct trace_point *points;        /* value in bytes */
	size_t npoints;
};

enum access_pattern { ACCESS_UNIFORM, ACCESS_CYCLIC };

struct scenario_vm {
	char *name;
	int64_t ram_bytes, max_bytes, base_bytes, access_bytes_per_s;
	enum access_pattern access;
	struct trigger start, stop;
	struct demand_spec demand;
	struct trace_point *bids;
	size_t nbids;
};

struct scenario {
	char *name;
	double interval_s, duration_s;
	int64_t page_bytes, tier_total_bytes, remote_tier_bytes, host_bytes;
	double disk_page_cost_us, tier_page_cost_us, remote_page_cost_us;
	char *costs_source; /* NULL: the scenario does not say where its costs come from */
	bool gets_keep_slot; /* "tier_gets": "keep" */
	bool progress_timeline; /* "timeline": "progress" */
	enum access_pattern access; /* the VMs' default */
	size_t count;
	struct scenario_vm *vms;
};

/* Read and check a scenario file.  Errors: ms_fail_input naming the file and the field. */
int scenario_load(const char *path, struct scenario *sc, struct ms_err *err);
void scenario_free(struct scenario *sc);

/* The workload's memory demand `since_start_s` seconds after it started (0 before). */
int64_t workload_demand(const struct demand_spec *d, double since_start_s);
/* Has a points workload reached its last point (usemem never ends by itself)? */
bool workload_finished(const struct demand_spec *d, double since_start_s);
/* The VM's bid at time t, or false when it has none yet. */
bool bid_at(const struct scenario_vm *vm, double t_s, double *bid);

#endif
