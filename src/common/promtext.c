#include "promtext.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void append(struct prom_buf *b, const char *s, size_t n)
{
	if (b->out_of_memory)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (b->len + n + 1 > cap)
			cap *= 2;
		char *grown = realloc(b->text, cap);
		if (!grown) {
			b->out_of_memory = true;
			return;
		}
		b->text = grown;
		b->cap = cap;
	}
	memcpy(b->text + b->len, s, n);
	b->len += n;
	b->text[b->len] = '\0';
}

static void puts_buf(struct prom_buf *b, const char *s) { append(b, s, strlen(s)); }

static void printf_buf(struct prom_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void printf_buf(struct prom_buf *b, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof small, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof small) {
		append(b, small, (size_t)n);
		return;
	}
	char *big = malloc((size_t)n + 1);
	if (!big) {
		b->out_of_memory = true;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(big, (size_t)n + 1, fmt, ap);
	va_end(ap);
	append(b, big, (size_t)n);
	free(big);
}

/* HELP text escapes \ and newline; label values also escape ". */
static void escaped(struct prom_buf *b, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_buf(b, "\\\\");
		else if (*s == '\n')
			puts_buf(b, "\\n");
		else if (*s == '"' && quote)
			puts_buf(b, "\\\"");
		else
			append(b, s, 1);
	}
}

void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help)
{
	printf_buf(b, "# HELP %s ", name);
	escaped(b, help, false);
	printf_buf(b, "\n# TYPE %s %s\n", name, type);
}

static void value(struct prom_buf *b, double v)
{
	if (isnan(v))
		puts_buf(b, "NaN");
	else if (isinf(v))
		puts_buf(b, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 1e15)
		printf_buf(b, "%.0f", v);
	else
		printf_buf(b, "%.15g", v);
}

void prom_sample(struct prom_buf *b, const char *name, const char *const *labels, const char *extra_name,
		 const char *extra_value, double v)
{
	puts_buf(b, name);
	bool any = (labels && labels[0]) || extra_name;
	if (any) {
		const char *sep = "{";
		for (size_t i = 0; labels && labels[i]; i += 2) {
			printf_buf(b, "%s%s=\"", sep, labels[i]);
			escaped(b, labels[i + 1], true);
			puts_buf(b, "\"");
			sep = ",";
		}
		if (extra_name) {
			printf_buf(b, "%s%s=\"", sep, extra_name);
			escaped(b, extra_value, true);
			puts_buf(b, "\"");
		}
		puts_buf(b, "}");
	}
	puts_buf(b, " ");
	value(b, v);
	puts_buf(b, "\n");
}

void prom_histogram(struct prom_buf *b, const char *name, const char *const *labels, const double *bounds,
		    const uint64_t *cumulative_counts, size_t nbounds, double sum, uint64_t count)
{
	char bucket[256], le[64];
	snprintf(bucket, sizeof bucket, "%s_bucket", name);
	for (size_t i = 0; i < nbounds; i++) {
		snprintf(le, sizeof le, "%.15g", bounds[i]);
		prom_sample(b, bucket, labels, "le", le, (double)cumulative_counts[i]);
	}
	prom_sample(b, bucket, labels, "le", "+Inf", (double)count);
	snprintf(bucket, sizeof bucket, "%s_sum", name);
	prom_sample(b, bucket, labels, NULL, NULL, sum);
	snprintf(bucket, sizeof bucket, "%s_count", name);
	prom_sample(b, bucket, labels, NULL, NULL, (double)count);
}

void prom_buf_free(struct prom_buf *b)
{
	free(b->text);
	*b = (struct prom_buf){0};
}

bool prom_valid_name(const char *name, bool label)
{
	if (!name || !*name)
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c == ':' && !label) ||
			  (p != name && c >= '0' && c <= '9');
		if (!ok)
			return false;
	}
	return true;
}
