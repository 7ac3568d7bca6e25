/* msballoon sim: trace-file demand ("demand": {"trace": FILE}): the mswss
 * records read as a curve, its options, and every kind of bad trace file,
 * whose error must name the scenario, the field, the trace and its line. */
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sim_scenario.h"
#include "sim_trace.h"
#include "tap.h"

#define MiB (1024LL * 1024)

static char dir[64];

/* Write `text` to dir/name. */
static void write_file(const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		perror(path);
}

/* A scenario in dir with one VM whose demand object is `demand`; its path into path[]. */
static void write_scenario(char *path, size_t len, const char *name, const char *demand)
{
	char text[1024];
	snprintf(text, sizeof text,
		 "{\"interval_s\":1,\"duration_s\":60,\"tier_total_bytes\":\"64M\",\"disk_page_cost_us\":100,"
		 "\"tier_page_cost_us\":2,\"vms\":[{\"name\":\"a\",\"ram_bytes\":\"256M\",\"access_bytes_per_s\":\"10M\","
		 "\"start\":0,\"demand\":%s}]}\n",
		 demand);
	write_file(name, text);
	snprintf(path, len, "%s/%s", dir, name);
}

static const char three_records[] =
	"{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:01.000Z\",\"host\":\"h\",\"domain\":\"/memshare/x\",\"wss_bytes\":104857600}\n"
	"{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:02.000Z\",\"host\":\"h\",\"domain\":\"/memshare/x\",\"wss_bytes\":209715200}\n"
	"\n"
	"{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:04.000Z\",\"host\":\"h\",\"domain\":\"/memshare/x\",\"wss_bytes\":52428800}\n";

static void test_rfc3339(void)
{
	double t = -1;
	ok(parse_rfc3339("1970-01-01T00:00:00Z", &t) == 0 && t == 0, "the epoch is 0");
	ok(parse_rfc3339("2026-11-22T10:00:05.123Z", &t) == 0 && fabs(t - 1795341605.123) < 1e-6,
	   "2026-11-22T10:00:05.123Z is 1795341605.123 (date -d) (got %.3f)", t);
	ok(parse_rfc3339("2000-02-29T12:00:00+01:30", &t) == 0 && t == 951825600 - 5400,
	   "a leap day with an offset east of UTC (got %.0f)", t);
	ok(parse_rfc3339("1999-12-31t23:59:59.5-00:30", &t) == 0 && t == 946684799.5 + 1800,
	   "lower-case t and an offset west of UTC (got %.1f)", t);
	const char *bad[] = { "", "2026-11-22", "2026-13-01T00:00:00Z", "2026-11-22T24:00:00Z", "2026-11-22T10:00:05",
			      "2026-11-22T10:00:05.Z", "2026-11-22T10:00:05Zjunk", "26-11-22T10:00:05Z",
			      "2026-11-22T10:00:05+0100" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ok(parse_rfc3339(bad[i], &t) < 0, "'%s' is refused", bad[i]);
}

static void test_load_points(void)
{
	struct trace_point *p = NULL;
	size_t n = 0;
	struct ms_err err = { 0 };
	char path[256];
	write_file("three.jsonl", three_records);
	snprintf(path, sizeof path, "%s/three.jsonl", dir);
	struct trace_options opt = { .scale = 1, .time_scale = 1, .repeat = 1 };
	if (!ok(trace_load(path, &opt, &p, &n, &err) == 0, "three records load"))
		printf("#   %s\n", err.msg);
	ok(n == 3 && p[0].t_s == 0 && p[1].t_s == 1 && p[2].t_s == 3, "time 0 is the first record; seconds after it");
	ok(n == 3 && p[0].value == 100 * MiB && p[1].value == 200 * MiB && p[2].value == 50 * MiB,
	   "values are wss_bytes");
	free(p);

	opt = (struct trace_options){ .scale = 0.5, .time_scale = 10, .repeat = 3 };
	ok(trace_load(path, &opt, &p, &n, &err) == 0 && n == 9, "repeat 3: nine points");
	/* period = last + mean interval = 30 + 30/2 = 45 s */
	ok(n == 9 && p[2].t_s == 30 && p[3].t_s == 45 && p[4].t_s == 55 && p[8].t_s == 120,
	   "time_scale multiplies seconds; each run starts one mean interval after the last record");
	ok(n == 9 && p[1].value == 100 * MiB && p[7].value == 100 * MiB, "scale multiplies bytes");
	free(p);
}

static void test_domains_and_kinds(void)
{
	struct trace_point *p = NULL;
	size_t n = 0;
	struct ms_err err = { 0 };
	char path[256];
	write_file("two.jsonl",
		   "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:01Z\",\"domain\":\"vm1\",\"wss_bytes\":1000}\n"
		   "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:01Z\",\"domain\":\"vm2\",\"wss_bytes\":2000}\n"
		   "{\"kind\":\"target\",\"ts\":\"2026-12-03T00:00:01Z\",\"domain\":\"vm2\"}\n"
		   "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:02Z\",\"domain\":\"vm1\",\"wss_bytes\":3000}\n"
		   "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:03Z\",\"domain\":\"vm2\",\"wss_bytes\":4000}\n");
	snprintf(path, sizeof path, "%s/two.jsonl", dir);
	struct trace_options opt = { .scale = 1, .time_scale = 1, .repeat = 1 };
	ok(trace_load(path, &opt, &p, &n, &err) < 0 && err.usage, "two domains without \"domain\": an input error");
	like(err.msg, "two.jsonl:2: a second domain 'vm2' (the first was 'vm1')", "naming the line and both domains");
	opt.domain = "vm2";
	ok(trace_load(path, &opt, &p, &n, &err) == 0 && n == 2 && p[0].value == 2000 && p[1].t_s == 2 &&
		   p[1].value == 4000,
	   "\"domain\" picks one domain's records; other kinds are skipped");
	free(p);
	opt.domain = "vm9";
	ok(trace_load(path, &opt, &p, &n, &err) < 0, "a domain the file does not hold");
	like(err.msg, "two.jsonl: no wss record of domain 'vm9'", "is named");
}

/* Load scenario `name` whose VM demand is `demand`; expect an input error containing each of `parts`. */
static void expect_bad(const char *name, const char *demand, const char *const parts[], const char *what)
{
	char path[256];
	struct scenario sc;
	struct ms_err err = { 0 };
	write_scenario(path, sizeof path, name, demand);
	int rc = scenario_load(path, &sc, &err);
	ok(rc < 0 && err.usage == 1 && !strchr(err.msg, '\n'), "%s: one-line input error", what);
	for (size_t i = 0; parts[i]; i++)
		like(err.msg, parts[i], what);
	if (rc == 0)
		scenario_free(&sc);
}

static void test_bad_traces(void)
{
	char long_line[64];
	write_file("malformed.jsonl", "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:01Z\",\"domain\":\"x\",\"wss_bytes\":1}\n"
				      "{\"kind\":\"wss\", nope\n");
	write_file("nowss.jsonl", "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:01Z\",\"domain\":\"x\",\"wss_bytes\":1}\n"
				  "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:02Z\",\"domain\":\"x\"}\n");
	write_file("negative.jsonl", "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:01Z\",\"domain\":\"x\",\"wss_bytes\":-5}\n");
	write_file("backwards.jsonl",
		   "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:01Z\",\"domain\":\"x\",\"wss_bytes\":1}\n"
		   "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:05Z\",\"domain\":\"x\",\"wss_bytes\":1}\n"
		   "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:04.999Z\",\"domain\":\"x\",\"wss_bytes\":1}\n");
	write_file("badts.jsonl", "{\"kind\":\"wss\",\"ts\":\"yesterday\",\"domain\":\"x\",\"wss_bytes\":1}\n");
	write_file("empty.jsonl", "");
	write_file("blank.jsonl", "\n\n{\"kind\":\"tier\",\"ts\":\"2026-12-03T00:00:01Z\"}\n");
	write_file("one.jsonl", "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:01Z\",\"domain\":\"x\",\"wss_bytes\":1}\n");
	write_file("array.jsonl", "[1, 2]\n");
	write_file("instant.jsonl", "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:01Z\",\"domain\":\"x\",\"wss_bytes\":1}\n"
				    "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:01Z\",\"domain\":\"x\",\"wss_bytes\":2}\n");
	char sub[128];
	snprintf(sub, sizeof sub, "%s/adir.jsonl", dir);
	mkdir(sub, 0700);
	snprintf(long_line, sizeof long_line, "vms[0].demand.trace: %s/", dir);

#define BAD(file, demand, what, ...) expect_bad(file, demand, (const char *const[]){ __VA_ARGS__, NULL }, what)
	BAD("s1.json", "{\"trace\":\"malformed.jsonl\"}", "malformed JSON", "s1.json: ", long_line, "malformed.jsonl:2:");
	BAD("s2.json", "{\"trace\":\"nowss.jsonl\"}", "no wss_bytes", "s2.json: ", "nowss.jsonl:2: missing field \"wss_bytes\"");
	BAD("s3.json", "{\"trace\":\"negative.jsonl\"}", "negative wss_bytes", "negative.jsonl:1: field \"wss_bytes\"");
	BAD("s4.json", "{\"trace\":\"backwards.jsonl\"}", "time going backwards", "s4.json: ",
	    "backwards.jsonl:3: field \"ts\": 2026-12-03T00:00:04.999Z is earlier");
	BAD("s5.json", "{\"trace\":\"badts.jsonl\"}", "ts not a time", "badts.jsonl:1: field \"ts\": 'yesterday'");
	BAD("s6.json", "{\"trace\":\"empty.jsonl\"}", "empty file", "s6.json: ", "empty.jsonl: no wss record");
	BAD("s7.json", "{\"trace\":\"blank.jsonl\"}", "no wss record among others", "blank.jsonl: no wss record");
	BAD("s8.json", "{\"trace\":\"one.jsonl\"}", "a single record", "one.jsonl: only one wss record");
	BAD("s9.json", "{\"trace\":\"nosuch.jsonl\"}", "missing file", "s9.json: ", long_line,
	    "nosuch.jsonl: No such file or directory");
	BAD("s10.json", "{\"trace\":\"adir.jsonl\"}", "a directory", "adir.jsonl: is a directory");
	BAD("s11.json", "{\"trace\":\"array.jsonl\"}", "not an object", "array.jsonl:1: expected a JSON object");
	BAD("s18.json", "{\"trace\":\"instant.jsonl\"}", "no time spanned", "instant.jsonl: every wss record has the same ts");
	BAD("s12.json", "{\"trace\":5}", "trace not a string", "s12.json: vms[0].demand.trace: expected the path");
	BAD("s13.json", "{\"trace\":\"three.jsonl\",\"scale\":0}", "scale 0", "vms[0].demand.scale: must be more than 0");
	BAD("s14.json", "{\"trace\":\"three.jsonl\",\"time_scale\":\"x\"}", "time_scale not a number",
	    "vms[0].demand.time_scale: expected a number");
	BAD("s15.json", "{\"trace\":\"three.jsonl\",\"repeat\":0}", "repeat 0", "vms[0].demand.repeat: must be a whole");
	BAD("s16.json", "{\"trace\":\"three.jsonl\",\"repeat\":1.5}", "repeat not whole", "vms[0].demand.repeat");
	BAD("s17.json", "{\"trace\":\"three.jsonl\",\"domain\":7}", "domain not a string", "vms[0].demand.domain");
#undef BAD
	rmdir(sub);
}

/* The scenario form: path relative to the scenario's directory; the curve workload_demand() follows. */
static void test_scenario_curve(void)
{
	char path[256];
	struct scenario sc;
	struct ms_err err = { 0 };
	write_scenario(path, sizeof path, "curve.json", "{\"trace\":\"three.jsonl\",\"time_scale\":2}");
	char *cwd = getcwd(NULL, 0);
	if (chdir("/") != 0)
		perror("chdir");
	int rc = scenario_load(path, &sc, &err);
	if (!ok(rc == 0, "a trace named relative to the scenario's directory loads from any working directory"))
		printf("#   %s\n", err.msg);
	if (cwd && chdir(cwd) != 0)
		perror("chdir");
	free(cwd);
	if (rc < 0)
		return;
	const struct demand_spec *d = &sc.vms[0].demand;
	is_int(workload_demand(d, 0), 100 * MiB, "t=0: the first record");
	is_int(workload_demand(d, 1), 150 * MiB, "t=1: halfway to the second (linear, time_scale 2)");
	is_int(workload_demand(d, 2), 200 * MiB, "t=2: the second record");
	is_int(workload_demand(d, 4), 125 * MiB, "t=4: halfway from the second to the third");
	ok(!workload_finished(d, 5.9) && workload_finished(d, 6), "the workload ends at the last record");
	is_int(workload_demand(d, 6), 0, "and frees its memory");
	scenario_free(&sc);
}

/* "bytes": "rss_bytes" replays what the domain held, not what it touched in each
 * window: a cached data set swept slower than the window has a 1-s working set
 * far under its footprint (the ALS proxy of scenario1: 20-150 MiB of 450-510). */
static void test_rss_bytes(void)
{
	char path[256];
	struct scenario sc;
	struct ms_err err = { 0 };
	write_file("held.jsonl",
		   "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:01Z\",\"domain\":\"x\",\"wss_bytes\":1048576,\"rss_bytes\":314572800}\n"
		   "{\"kind\":\"wss\",\"ts\":\"2026-12-03T00:00:03Z\",\"domain\":\"x\",\"wss_bytes\":2097152,\"rss_bytes\":419430400}\n");
	write_scenario(path, sizeof path, "held.json", "{\"trace\":\"held.jsonl\",\"bytes\":\"rss_bytes\",\"scale\":2}");
	int rc = scenario_load(path, &sc, &err);
	if (!ok(rc == 0, "a trace with \"bytes\": \"rss_bytes\" loads"))
		printf("#   %s\n", err.msg);
	if (rc == 0) {
		is_int(workload_demand(&sc.vms[0].demand, 0), 600 * MiB, "t=0: the first record's rss_bytes, scaled");
		is_int(workload_demand(&sc.vms[0].demand, 1), 700 * MiB, "t=1: halfway to the second's");
		scenario_free(&sc);
	}
	write_scenario(path, sizeof path, "touched.json", "{\"trace\":\"held.jsonl\",\"bytes\":\"wss_bytes\"}");
	rc = scenario_load(path, &sc, &err);
	ok(rc == 0 && workload_demand(&sc.vms[0].demand, 0) == 1 * MiB, "\"wss_bytes\" is the default's field");
	if (rc == 0)
		scenario_free(&sc);
	expect_bad("pss.json", "{\"trace\":\"held.jsonl\",\"bytes\":\"pss_bytes\"}",
		   (const char *const[]){ "pss.json: vms[0].demand.bytes: expected \"wss_bytes\" or \"rss_bytes\"", NULL },
		   "bytes not a known field");
	expect_bad("norss.json", "{\"trace\":\"three.jsonl\",\"bytes\":\"rss_bytes\"}",
		   (const char *const[]){ "three.jsonl:1: ", "rss_bytes", NULL }, "a record without rss_bytes");
}

/* Equal times make a step; the binary search must pick the later point, as the points form always did. */
static void test_steps(void)
{
	struct trace_point pts[] = { { 0, 10 }, { 5, 10 }, { 5, 0 }, { 7, 0 }, { 7, 40 }, { 9, 60 }, { 10, 0 } };
	struct demand_spec d = { .points = pts, .npoints = sizeof pts / sizeof *pts };
	is_int(workload_demand(&d, 4.9), 10, "before a step");
	is_int(workload_demand(&d, 5), 0, "at a step down: the later point");
	is_int(workload_demand(&d, 7), 40, "at a step up: the later point");
	is_int(workload_demand(&d, 8), 50, "linear after it");
	is_int(workload_demand(&d, -1), 0, "before the start");
}

int main(void)
{
	snprintf(dir, sizeof dir, "/tmp/test_sim_trace_XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_rfc3339();
	test_load_points();
	test_domains_and_kinds();
	test_bad_traces();
	test_scenario_curve();
	test_rss_bytes();
	test_steps();
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		perror(cmd);
	return done_testing();
}
