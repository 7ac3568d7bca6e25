#include "tap.h"
#include "units.h"

static void size_ok(const char *text, uint64_t of, uint64_t want)
{
	struct ms_err err = {0};
	uint64_t got = 0;
	int rc = parse_size(text, of, "--size", &got, &err);
	char name[96];
	snprintf(name, sizeof name, "size '%s' = %llu", text, (unsigned long long)want);
	ok(rc == 0 && got == want, "%s", name);
	if (rc || got != want)
		printf("#   rc %d got %llu (%s)\n", rc, (unsigned long long)got, err.msg);
}

static void size_bad(const char *text, uint64_t of, const char *msg_part)
{
	struct ms_err err = {0};
	uint64_t got;
	int rc = parse_size(text, of, "--size", &got, &err);
	char name[96];
	snprintf(name, sizeof name, "size '%s' rejected as bad input", text);
	ok(rc == -1 && err.usage == 1, "%s", name);
	like(err.msg, msg_part, "  ... with a message naming the problem");
}

static void duration_ok(const char *text, uint64_t want_ns)
{
	struct ms_err err = {0};
	uint64_t got = 0;
	int rc = parse_duration_ns(text, "--interval", &got, &err);
	char name[96];
	snprintf(name, sizeof name, "duration '%s' = %llu ns", text, (unsigned long long)want_ns);
	ok(rc == 0 && got == want_ns, "%s", name);
}

static void duration_bad(const char *text)
{
	struct ms_err err = {0};
	uint64_t got;
	char name[96];
	snprintf(name, sizeof name, "duration '%s' rejected", text);
	ok(parse_duration_ns(text, "--interval", &got, &err) == -1 && err.usage == 1 && strstr(err.msg, "--interval"), "%s", name);
}

int main(void)
{
	size_ok("4096", 0, 4096);
	size_ok("512K", 0, 512 * 1024);
	size_ok("1.5G", 0, 1536ULL * 1024 * 1024);
	size_ok("2MiB", 0, 2 * 1024 * 1024);
	size_ok("1m", 0, 1024 * 1024);
	size_ok("30%", 1000, 300);
	size_ok("100%", 4096, 4096);
	size_ok("0", 0, 0);
	size_bad("", 0, "not a size");
	size_bad("abc", 0, "not a size");
	size_bad("-5", 0, "a size cannot be negative");
	size_bad("-5M", 0, "--size: '-5M': a size cannot be negative");
	size_bad("1e9", 0, "not a size");
	size_bad("inf", 0, "not a size");
	size_bad("12Q", 0, "unknown unit");
	size_bad("12KX", 0, "trailing");
	size_bad("30%", 0, "percentage is not accepted");
	size_bad("101%", 1000, "more than 100%");
	size_bad("99999999E", 0, "too large");
	/* every size is bounded where it enters: 2^62 bytes (4E), so sums of two fit in an int64_t */
	size_ok("4E", 0, 1ULL << 62);
	size_ok("4611686018427387904", 0, 1ULL << 62);
	size_bad("8E", 0, "--size: '8E' is too large (the largest size is 4E, 4611686018427387904 bytes)");
	size_bad("4611686018427391000", 0, "too large");
	size_bad("16E", 0, "too large");

	duration_ok("500ms", 500 * NS_PER_MS);
	duration_ok("5s", 5 * NS_PER_S);
	duration_ok("5", 5 * NS_PER_S);
	duration_ok("2m", 120 * NS_PER_S);
	duration_ok("1.5s", 1500 * NS_PER_MS);
	duration_ok("1h", 3600 * NS_PER_S);
	duration_bad("0");
	duration_bad("0s");
	duration_bad("5x");
	duration_bad("-1s");
	duration_bad("");
	duration_bad("nan");
	duration_ok("250us", 250000);
	duration_ok("40ns", 40);
	duration_ok("3min", 180 * NS_PER_S);
	{
		struct ms_err e = {0};
		uint64_t ns = 1;
		ok(parse_duration_or_zero_ns("0", "--wait", &ns, &e) == 0 && ns == 0, "a wait of 0 is accepted where it may be 0");
		ok(parse_duration_or_zero_ns("0ms", "--wait", &ns, &e) == 0 && ns == 0, "  ... with a unit too");
		ok(parse_duration_or_zero_ns("5x", "--wait", &ns, &e) == -1 && strstr(e.msg, "--wait"), "  ... still refusing junk");
		ok(parse_duration_or_zero_ns("0.0000001ns", "--wait", &ns, &e) == -1, "  ... and a duration that rounds to 0 but is not 0");
	}

	struct ms_err err = {0};
	double frac;
	ok(parse_percent("30%", "--p", &frac, &err) == 0 && frac > 0.2999 && frac < 0.3001, "percent 30%% = 0.3");
	ok(parse_percent("0.1", "--p", &frac, &err) == 0 && frac > 0.000999 && frac < 0.001001, "percent 0.1 = 0.001");
	ok(parse_percent("150%", "--p", &frac, &err) == -1, "percent over 100 rejected");
	uint64_t n;
	ok(parse_count("42", 100, "--count", &n, &err) == 0 && n == 42, "count 42");
	ok(parse_count("420", 100, "--count", &n, &err) == -1 && strstr(err.msg, "more than 100"), "count above max rejected");
	ok(parse_count("4x", 100, "--count", &n, &err) == -1, "count with junk rejected");
	ok(parse_count("-1", 100, "--count", &n, &err) == -1, "negative count rejected");

	char buf[32];
	is_str(format_size(512, buf, sizeof buf), "512", "format 512");
	is_str(format_size(1536ULL << 20, buf, sizeof buf), "1.5G", "format 1.5G");
	is_str(format_size(64ULL << 20, buf, sizeof buf), "64M", "format 64M");
	return done_testing();
}
