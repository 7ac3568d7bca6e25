/* promtext (the exposition format) and metrics_http (GET /metrics over a real
 * TCP connection): escaping, histograms, what a scrape gets, 404 and 405. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics_http.h"
#include "promtext.h"
#include "sockets.h"
#include "tap.h"

/* One HTTP/1.0 request to 127.0.0.1:PORT; the whole response in BUF. */
static int http(unsigned port, const char *request, char *buf, size_t len)
{
	char addr[64];
	snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
	struct ms_err err = {0};
	int fd = connect_to_within(addr, 5000, &err);
	if (fd < 0)
		return -1;
	if (write_all_fd(fd, request, strlen(request)) < 0) {
		close(fd);
		return -1;
	}
	size_t used = 0;
	ssize_t n;
	while (used + 1 < len && (n = read(fd, buf + used, len - used - 1)) > 0)
		used += (size_t)n;
	buf[used] = '\0';
	close(fd);
	return 0;
}

static void exposition(void)
{
	struct prom_buf b = {0};
	const char *labels[] = {"domain", "vm \"1\"\\\n", NULL};
	prom_family(&b, "memshare_x_bytes", "gauge", "A help\\text\nwith a newline.");
	prom_sample(&b, "memshare_x_bytes", labels, NULL, NULL, 1073741824);
	prom_sample(&b, "memshare_x_bytes", NULL, NULL, NULL, 0.25);
	double bounds[] = {0.001, 0.01};
	uint64_t counts[] = {3, 5};
	prom_family(&b, "memshare_lat_seconds", "histogram", "Latency.");
	prom_histogram(&b, "memshare_lat_seconds", labels, bounds, counts, 2, 0.0425, 7);
	const char *want = "# HELP memshare_x_bytes A help\\\\text\\nwith a newline.\n"
			   "# TYPE memshare_x_bytes gauge\n"
			   "memshare_x_bytes{domain=\"vm \\\"1\\\"\\\\\\n\"} 1073741824\n"
			   "memshare_x_bytes 0.25\n"
			   "# HELP memshare_lat_seconds Latency.\n"
			   "# TYPE memshare_lat_seconds histogram\n"
			   "memshare_lat_seconds_bucket{domain=\"vm \\\"1\\\"\\\\\\n\",le=\"0.001\"} 3\n"
			   "memshare_lat_seconds_bucket{domain=\"vm \\\"1\\\"\\\\\\n\",le=\"0.01\"} 5\n"
			   "memshare_lat_seconds_bucket{domain=\"vm \\\"1\\\"\\\\\\n\",le=\"+Inf\"} 7\n"
			   "memshare_lat_seconds_sum{domain=\"vm \\\"1\\\"\\\\\\n\"} 0.0425\n"
			   "memshare_lat_seconds_count{domain=\"vm \\\"1\\\"\\\\\\n\"} 7\n";
	ok(b.text && strcmp(b.text, want) == 0, "HELP, TYPE, escaped labels, histogram buckets, sum and count");
	if (b.text && strcmp(b.text, want) != 0)
		printf("# got:\n%s", b.text);
	prom_buf_free(&b);
	ok(prom_valid_name("memshare_a:b_total", false) && !prom_valid_name("a:b", true) &&
		   !prom_valid_name("1abc", false) && !prom_valid_name("", false),
	   "metric and label names are checked");
}

static void server(void)
{
	struct ms_err err = {0};
	struct metrics_server *s = metrics_server_start("127.0.0.1:0", &err);
	if (!ok(s != NULL, "the server starts on a free port (%s)", err.msg))
		return;
	unsigned port = metrics_server_port(s);
	ok(port > 0, "it reports its port (%u)", port);
	struct prom_buf b = {0};
	prom_family(&b, "memshare_up", "gauge", "Up.");
	prom_sample(&b, "memshare_up", NULL, NULL, NULL, 1);
	ok(metrics_server_publish(s, &b, &err) == 0, "publish");
	char resp[8192];
	ok(http(port, "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof resp) == 0 && strstr(resp, " 200 ") &&
		   strstr(resp, "text/plain; version=0.0.4") && strstr(resp, "\r\n\r\n# HELP memshare_up Up.\n"),
	   "GET /metrics: 200, the exposition content type, the text published");
	prom_sample(&b, "memshare_up", (const char *[]){"a", "b", NULL}, NULL, NULL, 2);
	metrics_server_publish(s, &b, &err);
	ok(http(port, "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof resp) == 0 && strstr(resp, "memshare_up{a=\"b\"} 2\n"),
	   "a scrape after a publish gets the new text");
	ok(http(port, "GET / HTTP/1.0\r\n\r\n", resp, sizeof resp) == 0 && strstr(resp, " 404 "), "another path: 404");
	ok(http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", resp, sizeof resp) == 0 &&
		   strstr(resp, " 405 "),
	   "another method: 405");
	ok(http(port, "garbage\r\n\r\n", resp, sizeof resp) == 0, "a malformed request is answered or closed");
	ok(metrics_server_scrapes(s) == 2, "two scrapes counted (%lu)", metrics_server_scrapes(s));
	prom_buf_free(&b);
	metrics_server_stop(s);
	struct metrics_server *u = metrics_server_start("unix:/tmp/x.sock", &err);
	ok(!u && err.usage && strstr(err.msg, "give HOST:PORT"), "a unix socket is refused: %s", err.msg);
	err = (struct ms_err){0};
	u = metrics_server_start("127.0.0.1:notaport", &err);
	ok(!u && strstr(err.msg, "--metrics"), "a bad address is refused: %s", err.msg);
}

int main(void)
{
	exposition();
	server();
	printf("1..%d\n", tap_count);
	return tap_failed != 0;
}
