#include "plot.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spawn.h"

#define PLOT_COLUMNS 5
#define PLOT_MAX_SERIES 64     /* lines beyond that would be unreadable anyway */
#define GNUPLOT_TIMEOUT_S 120

/* One line group of the picture: the training run, or one domain of a simulation. */
struct series {
	char name[128];
	double (*rows)[PLOT_COLUMNS];
	size_t n, cap;
};

enum plot_kind { PLOT_NONE, PLOT_TRAIN, PLOT_SIM };

struct plot {
	char *svg_path;
	enum plot_kind kind;
	char title[512];
	const char *deviation; /* train: msr_deviation or usrtime_deviation */
	struct series series[PLOT_MAX_SERIES];
	size_t nseries;
	bool dropped_series; /* more domains than PLOT_MAX_SERIES */
	bool has_tier;  /* sim: some domain used the second tier: a panel of its own */
	bool out_of_memory;
};

static double number(const json_t *r, const char *key)
{
	const json_t *v = json_object_get(r, key);
	return json_is_number(v) ? json_number_value(v) : 0;
}

static const char *text(const json_t *r, const char *key)
{
	const char *s = json_string_value(json_object_get(r, key));
	return s ? s : "?";
}

static struct series *series_named(struct plot *p, const char *name)
{
	for (size_t i = 0; i < p->nseries; i++)
		if (strcmp(p->series[i].name, name) == 0)
			return &p->series[i];
	if (p->nseries == PLOT_MAX_SERIES) {
		p->dropped_series = true;
		return NULL;
	}
	struct series *s = &p->series[p->nseries++];
	snprintf(s->name, sizeof s->name, "%s", name);
	return s;
}

static void add_row(struct plot *p, struct series *s, const double row[PLOT_COLUMNS])
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		void *grown = realloc(s->rows, cap * sizeof *s->rows);
		if (!grown) {
			p->out_of_memory = true;
			return;
		}
		s->rows = grown;
		s->cap = cap;
	}
	memcpy(s->rows[s->n++], row, sizeof s->rows[0]);
}

static void tap_train(struct plot *p, const json_t *r)
{
	if (p->kind == PLOT_NONE) {
		p->kind = PLOT_TRAIN;
		p->deviation = json_object_get(r, "usrtime_deviation") ? "usrtime_deviation" : "msr_deviation";
		snprintf(p->title, sizeof p->title, "msballoon train: %s on %s", text(r, "agent"), text(r, "scenario"));
	}
	struct series *s = series_named(p, "train");
	double row[PLOT_COLUMNS] = {number(r, "episode"), number(r, "reward"), number(r, "miss_rate_per_s"),
				    number(r, p->deviation), number(r, "epsilon")};
	if (s)
		add_row(p, s, row);
}

static void tap_sim(struct plot *p, const json_t *r)
{
	if (p->kind == PLOT_NONE) {
		p->kind = PLOT_SIM;
		snprintf(p->title, sizeof p->title, "msballoon sim: %s on %s", text(r, "policy"), text(r, "scenario"));
	}
	struct series *s = series_named(p, text(r, "domain"));
	double mib = 1024.0 * 1024.0;
	double row[PLOT_COLUMNS] = {number(r, "t_s"), number(r, "ram_bytes") / mib, number(r, "demand_bytes") / mib,
				    number(r, "miss_rate_per_s"), number(r, "tier_used_bytes") / mib};
	if (row[4] > 0)
		p->has_tier = true;
	if (s)
		add_row(p, s, row);
}

/* The writer's tap: every record the command writes passes here. */
static void tap(void *ctx, const json_t *record)
{
	struct plot *p = ctx;
	const char *kind = json_string_value(json_object_get(record, "kind"));
	if (!kind)
		return;
	if (strcmp(kind, "train") == 0 && p->kind != PLOT_SIM)
		tap_train(p, record);
	else if (strcmp(kind, "sim") == 0 && p->kind != PLOT_TRAIN)
		tap_sim(p, record);
}

struct plot *plot_open(const char *svg_path, struct jsonl_writer *w, struct ms_err *err)
{
	if (!tool_in_path("gnuplot")) {
		ms_fail(err, "--plot %s: gnuplot is not installed (Debian: apt install gnuplot-nox)", svg_path);
		return NULL;
	}
	char *copy = strdup(svg_path);
	const char *dir = copy ? dirname(copy) : ".";
	if (access(dir, W_OK) != 0) {
		ms_fail_errno(err, "--plot %s: cannot write in %s", svg_path, dir);
		free(copy);
		return NULL;
	}
	free(copy);
	struct plot *p = calloc(1, sizeof *p);
	if (!p || !(p->svg_path = strdup(svg_path))) {
		free(p);
		ms_fail(err, "out of memory");
		return NULL;
	}
	w->tap = tap;
	w->tap_ctx = p;
	return p;
}

void plot_free(struct plot *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nseries; i++)
		free(p->series[i].rows);
	free(p->svg_path);
	free(p);
}

/* A gnuplot single-quoted string: only ' needs escaping, by doubling it. */
static void put_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		if (*s != '\n')
			fputc(*s, f);
	}
	fputc('\'', f);
}

/* Every series a gnuplot data block ("index i"), blocks separated by two blank lines. */
static int write_data(const struct plot *p, const char *path, struct ms_err *err)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return ms_fail_errno(err, "cannot create %s", path);
	for (size_t i = 0; i < p->nseries; i++) {
		const struct series *s = &p->series[i];
		for (size_t k = 0; k < s->n; k++)
			fprintf(f, "%.9g\t%.9g\t%.9g\t%.9g\t%.9g\n", s->rows[k][0], s->rows[k][1], s->rows[k][2],
				s->rows[k][3], s->rows[k][4]);
		fputs("\n\n", f);
	}
	if (fclose(f) != 0)
		return ms_fail_errno(err, "writing %s", path);
	return 0;
}

static void script_head(const struct plot *p, FILE *f, const char *svg_tmp, int panels)
{
	fprintf(f, "set terminal svg size 960,%d dynamic noenhanced font 'sans,11' background '#ffffff'\n",
		260 * panels + 60);
	fputs("set output ", f);
	put_quoted(f, svg_tmp);
	/* fixed margins: the panels line up whatever their keys and second axes */
	fputs("\nset datafile separator '\\t'\nset grid\nset key outside right top\n"
	      "set lmargin at screen 0.09\nset rmargin at screen 0.76\nset multiplot layout ", f);
	fprintf(f, "%d,1 title ", panels);
	put_quoted(f, p->title);
	fputc('\n', f);
}

static void script_train(const struct plot *p, FILE *f, const char *data)
{
	fputs("set xlabel 'episode'\nset ylabel 'reward (mean per interval)'\nset y2label 'epsilon'\n"
	      "set y2range [0:1]\nset y2tics\nplot ", f);
	put_quoted(f, data);
	fputs(" using 1:2 with lines lw 1.5 title 'reward', '' using 1:5 axes x1y2 with lines dt 2 title 'epsilon'\n"
	      "unset y2tics\nunset y2label\nset ylabel 'pages/s'\nplot ''", f);
	fputs(" using 1:3 with lines lw 1.5 title 'mean RAM miss rate'\n", f);
	fprintf(f, "set ylabel 'deviation from target'\nplot '' using 1:4 with lines lw 1.5 title '%s'\n",
		strcmp(p->deviation, "usrtime_deviation") == 0 ? "|usrtime - usrtimeTgt|" : "|msr - msrTgt|");
}

/* One clause per domain and column: "'data' index i using 1:COL with lines lc i+1 title 'NAME SUFFIX'". */
static void plot_domains(const struct plot *p, FILE *f, const char *data, int column, const char *style,
			 const char *suffix)
{
	for (size_t i = 0; i < p->nseries; i++) {
		fputs(i ? ", " : "", f);
		put_quoted(f, data);
		fprintf(f, " index %zu using 1:%d with lines %s lc %zu title ", i, column, style, i + 1);
		char title[160];
		snprintf(title, sizeof title, "%s%s", p->series[i].name, suffix);
		put_quoted(f, title);
	}
}

static void script_sim(const struct plot *p, FILE *f, const char *data)
{
	fputs("set xlabel 'time (s)'\nset ylabel 'MiB'\nplot ", f);
	plot_domains(p, f, data, 2, "lw 2", " RAM");
	fputs(", ", f);
	plot_domains(p, f, data, 3, "dt 2", " demand");
	if (p->has_tier) {
		fputs("\nset ylabel 'second tier used (MiB)'\nplot ", f);
		plot_domains(p, f, data, 5, "lw 2", "");
	}
	fputs("\nset ylabel 'RAM misses (pages/s)'\nplot ", f);
	plot_domains(p, f, data, 4, "lw 1.5", "");
	fputc('\n', f);
}

static int write_script(const struct plot *p, const char *path, const char *data, const char *svg_tmp,
			struct ms_err *err)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return ms_fail_errno(err, "cannot create %s", path);
	script_head(p, f, svg_tmp, p->kind == PLOT_TRAIN ? 3 : p->has_tier ? 3 : 2);
	if (p->kind == PLOT_TRAIN)
		script_train(p, f, data);
	else
		script_sim(p, f, data);
	fputs("unset multiplot\n", f);
	if (fclose(f) != 0)
		return ms_fail_errno(err, "writing %s", path);
	return 0;
}

/* gnuplot draws into a temporary file beside the SVG, renamed over it when complete. */
static int draw(const struct plot *p, const char *dir, struct ms_err *err)
{
	char data[4200], script[4200], svg_tmp[4200];
	snprintf(data, sizeof data, "%s/data.tsv", dir);
	snprintf(script, sizeof script, "%s/plot.gp", dir);
	if (snprintf(svg_tmp, sizeof svg_tmp, "%s.tmp.XXXXXX", p->svg_path) >= (int)sizeof svg_tmp)
		return ms_fail_input(err, "--plot %s: path too long", p->svg_path);
	int fd = mkstemp(svg_tmp);
	if (fd < 0)
		return ms_fail_errno(err, "--plot: cannot create %s", svg_tmp);
	fchmod(fd, 0644); /* a picture to share, not a secret: mkstemp made it 0600 */
	close(fd);
	char *argv[] = {"gnuplot", script, NULL};
	int rc = write_data(p, data, err) < 0 || write_script(p, script, data, svg_tmp, err) < 0 ||
			 run_tool(argv, GNUPLOT_TIMEOUT_S, err) < 0
		     ? -1
		     : 0;
	if (rc == 0 && rename(svg_tmp, p->svg_path) != 0)
		rc = ms_fail_errno(err, "cannot rename %s to %s", svg_tmp, p->svg_path);
	if (rc < 0)
		unlink(svg_tmp);
	unlink(data);
	unlink(script);
	return rc;
}

int plot_render(struct plot *p, struct ms_err *err)
{
	if (p->out_of_memory)
		return ms_fail(err, "--plot %s: out of memory while collecting the records", p->svg_path);
	if (p->kind == PLOT_NONE)
		return ms_fail(err, "--plot %s: no train or sim records to draw", p->svg_path);
	if (p->dropped_series)
		fprintf(stderr, "%s: --plot: only the first %d domains are drawn\n", ms_progname(), PLOT_MAX_SERIES);
	const char *tmpdir = getenv("TMPDIR");
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/msballoon-plot.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(dir))
		return ms_fail_errno(err, "--plot: cannot create a directory %s", dir);
	int rc = draw(p, dir, err);
	rmdir(dir);
	if (rc < 0)
		return ms_fail_prefix(err, "--plot %s", p->svg_path);
	return 0;
}
