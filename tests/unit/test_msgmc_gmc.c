/* The controller's state machine driven by fake peers: placement, the
 * lease procedures, garbage peers, the journal and restart reconciliation. */
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gmc.h"
#include "proto.h"
#include "tap.h"

#define MiB (1024ULL * 1024)

struct gmc_peer {
	const char *name;
	json_t *inbox; /* what the controller sent it */
};

static void fake_send(void *ctx, struct gmc_peer *p, json_t *msg)
{
	(void)ctx;
	json_array_append_new(p->inbox, msg);
}

static struct gmc_io io = {.send = fake_send};
static uint64_t now = 1000;

static int say(struct gmc *g, struct gmc_peer *p, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(struct gmc *g, struct gmc_peer *p, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	struct ms_err err = {0};
	int rc = gmc_receive(g, p, line, strlen(line), now, &err);
	if (rc < 0)
		printf("# %s: %s\n", p->name, err.msg);
	return rc;
}

/* The last message the peer got (borrowed), and clear the inbox except it. */
static json_t *last(struct gmc_peer *p)
{
	size_t n = json_array_size(p->inbox);
	return n ? json_array_get(p->inbox, n - 1) : NULL;
}

static const char *type_of(json_t *m)
{
	return m ? json_string_value(json_object_get(m, "type")) : "(none)";
}

static long long id_of(json_t *m)
{
	return m ? json_integer_value(json_object_get(m, "id")) : -1;
}

static void answer_ok(struct gmc *g, struct gmc_peer *p, json_t *m, const char *extra)
{
	say(g, p, "{\"v\":1,\"type\":\"reply\",\"id\":%lld,\"ok\":true%s}", id_of(m), extra ? extra : "");
}

static void peer_init(struct gmc_peer *p, const char *name)
{
	p->name = name;
	p->inbox = json_array();
}

static void join(struct gmc *g, struct gmc_peer *p, const char *node, bool provider, uint64_t reservoir, const char *served)
{
	if (provider)
		say(g, p,
		    "{\"v\":1,\"type\":\"register\",\"id\":1,\"node\":\"%s\",\"address\":\"127.0.0.1:%d\",\"served\":%s}",
		    node, 10000 + (int)node[1], served ? served : "[]");
	else
		say(g, p, "{\"v\":1,\"type\":\"register\",\"id\":1,\"node\":\"%s\",\"used\":[]}", node);
	say(g, p, "{\"v\":1,\"type\":\"inform\",\"id\":2,\"reservoir_bytes\":%llu}", (unsigned long long)reservoir);
}

/* The journal backend on path (each gmc_new reads it again, as a restart would). */
static struct state *journal_state(const char *path)
{
	struct state *st = NULL;
	struct ms_err err = {0};
	if (state_open(path, "", &st, &err) < 0)
		abort();
	return st;
}

/* A controller with a fresh journal (state: a mkstemp template, made and
 * removed) and a provider p1 (64M) and a consumer c1 registered. */
static struct gmc *with_journal(char *state, struct gmc_config *cfg, const struct gmc_io *gio, struct gmc_peer *p1,
				struct gmc_peer *c1, struct gmc_peer *cli, const char *what)
{
	close(mkstemp(state));
	unlink(state);
	*cfg = (struct gmc_config){.policy = gmc_policy_find("slm"), .state = journal_state(state),
				   .node_timeout_ns = 5000, .reply_timeout_ns = 100000};
	struct gmc *g = NULL;
	struct ms_err err = {0};
	peer_init(p1, "p1");
	peer_init(c1, "c1");
	peer_init(cli, "cli");
	ok(gmc_new(cfg, gio, &g, &err) == 0, "%s: a controller with a journal", what);
	join(g, p1, "p1", true, 64 * MiB, NULL);
	join(g, c1, "c1", false, 0, NULL);
	return g;
}

static void free_peers(struct gmc_peer *p1, struct gmc_peer *c1, struct gmc_peer *cli)
{
	json_decref(p1->inbox);
	json_decref(c1->inbox);
	json_decref(cli->inbox);
}

/* Without group commit every send finds the journal synced; with it the
 * records wait (gmc_commit_pending) until the io calls gmc_commit. */
static void test_group_commit(void)
{
	for (int group = 0; group <= 1; group++) {
		char state[] = "/tmp/test_msgmc_gmcXXXXXX";
		struct gmc_config cfg;
		struct gmc_io gio = {.send = fake_send, .group_commit = group};
		struct gmc_peer p1, c1, cli;
		struct gmc *g = with_journal(state, &cfg, &gio, &p1, &c1, &cli, group ? "group commit" : "no group commit");
		say(g, &cli, "{\"v\":1,\"type\":\"alloc\",\"id\":5,\"node\":\"c1\",\"domain\":\"vm1\",\"size_bytes\":%llu}", MiB);
		ok(strcmp(type_of(last(&p1)), "lmc_alloc") == 0, "group commit %d: the order is given to the io", group);
		ok(gmc_commit_pending(g) == group, "group commit %d: %s", group,
		   group ? "it waits for the commit: the lease record is not yet synced"
			 : "the lease record was synced before the order was sent");
		struct ms_err err = {0};
		ok(gmc_commit(g, &err) == 0, "group commit %d: the commit succeeds", group);
		ok(!gmc_commit_pending(g), "group commit %d: nothing pending after gmc_commit", group);
		gmc_free(g);
		state_close(cfg.state);
		unlink(state);
		free_peers(&p1, &c1, &cli);
	}
}

/* A consumer's attach has its own, longer deadline: a late answer within
 * it still attaches; past it the lease is reported unattached. */
static void test_attach_timeout(void)
{
	struct gmc_config cfg = {.policy = gmc_policy_find("slm"), .node_timeout_ns = 10000000,
				 .reply_timeout_ns = 100000, .attach_timeout_ns = 500000};
	struct gmc *g;
	struct ms_err err = {0};
	struct gmc_peer p1, c1, cli;
	peer_init(&p1, "p1");
	peer_init(&c1, "c1");
	peer_init(&cli, "cli");
	ok(gmc_new(&cfg, &io, &g, &err) == 0, "attach timeout: a controller");
	join(g, &p1, "p1", true, 64 * MiB, NULL);
	join(g, &c1, "c1", false, 0, NULL);
	for (int late = 0; late <= 1; late++) {
		say(g, &cli, "{\"v\":1,\"type\":\"alloc\",\"id\":%d,\"node\":\"c1\",\"domain\":\"vm1\",\"size_bytes\":4096}", 10 + late);
		answer_ok(g, &p1, last(&p1), NULL);
		json_t *attach = json_incref(last(&c1));
		size_t replies = json_array_size(cli.inbox);
		now += 200000; /* past the reply timeout, within the attach timeout */
		gmc_tick(g, now);
		is_int(json_array_size(cli.inbox), replies, late ? "late attach: still waited for" : "slow attach: still waited for");
		if (late) {
			now += 400000; /* past the attach timeout */
			gmc_tick(g, now);
		} else {
			answer_ok(g, &c1, attach, NULL);
		}
		json_t *lease = json_array_get(json_object_get(last(&cli), "records"), 0);
		ok(json_is_boolean(json_object_get(lease, "attached")) && json_is_true(json_object_get(lease, "attached")) == !late,
		   late ? "an attach that never answers: the lease is reported unattached" : "an attach answered after 200 µs of a 100 µs reply timeout counts");
		json_decref(attach);
	}
	gmc_free(g);
	free_peers(&p1, &c1, &cli);
}

/* One lease granted and attached (alloc, provider's and consumer's replies): its id. */
static long long grant(struct gmc *g, struct gmc_peer *p1, struct gmc_peer *c1, struct gmc_peer *cli, int id)
{
	say(g, cli, "{\"v\":1,\"type\":\"alloc\",\"id\":%d,\"node\":\"c1\",\"domain\":\"vm1\",\"size_bytes\":4096}", id);
	answer_ok(g, p1, last(p1), NULL);
	answer_ok(g, c1, last(c1), NULL);
	json_t *lease = json_array_get(json_object_get(last(cli), "records"), 0);
	return json_integer_value(json_object_get(lease, "lease"));
}

static long long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* A controller that runs long: leases come and go, the journal is compacted
 * while it runs and keeps exactly the live ones. */
static void test_compaction(void)
{
	/* in memory where there is a tmpfs: 8,000 fdatasyncs on a disk take seconds */
	char state[64];
	snprintf(state, sizeof state, "%s/test_msgmc_gmcXXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	struct gmc_config cfg;
	struct ms_err err = {0};
	struct gmc_peer p1, c1, cli;
	struct gmc *g = with_journal(state, &cfg, &io, &p1, &c1, &cli, "compaction");
	long long keep = grant(g, &p1, &c1, &cli, 1);
	long long biggest = 0;
	int cycles = 4000;
	for (int i = 0; i < cycles; i++) {
		long long id = grant(g, &p1, &c1, &cli, 2 * i + 2);
		say(g, &cli, "{\"v\":1,\"type\":\"release\",\"id\":%d,\"lease\":%lld}", 2 * i + 3, id);
		answer_ok(g, &c1, last(&c1), NULL);
		answer_ok(g, &p1, last(&p1), NULL);
		long long size = file_size(state);
		biggest = size > biggest ? size : biggest;
		/* the inboxes would hold every message of the run */
		json_array_clear(p1.inbox);
		json_array_clear(c1.inbox);
		json_array_clear(cli.inbox);
	}
	is_int(gmc_lease_count(g), 1, "compaction: one lease lives after the churn");
	printf("# %d leases granted and released: the journal peaked at %lld bytes\n", cycles, biggest);
	ok(biggest > 0 && biggest < 2 * 1024 * 1024, "compaction: the journal stays under 2 MiB (it would pass 3 MiB uncompacted)");
	gmc_free(g);
	struct gmc *g2;
	ok(gmc_new(&cfg, &io, &g2, &err) == 0, "compaction: a restarted controller reads the compacted journal");
	json_t *leases = gmc_lease_records(g2);
	ok(json_array_size(leases) == 1 &&
		   json_integer_value(json_object_get(json_array_get(leases, 0), "lease")) == keep,
	   "compaction: and has exactly the lease that lived");
	json_decref(leases);
	say(g2, &cli, "{\"v\":1,\"type\":\"status\",\"id\":1}");
	gmc_free(g2);
	state_close(cfg.state);
	unlink(state);
	free_peers(&p1, &c1, &cli);
}

/* Every provider refuses: the request tries the policy's next choice after
 * each refusal, but not for ever (GMC_ALLOC_REFUSALS_MAX), and then fails. */
static void test_refusals_bounded(void)
{
	enum { N = GMC_ALLOC_REFUSALS_MAX + 4 };
	struct gmc_config cfg = {.policy = gmc_policy_find("slm"), .node_timeout_ns = 5000, .reply_timeout_ns = 100000};
	struct gmc *g = NULL;
	struct ms_err err = {0};
	ok(gmc_new(&cfg, &io, &g, &err) == 0, "refusals: a controller");
	static struct gmc_peer providers[N];
	static char names[N][8];
	struct gmc_peer c1, cli;
	peer_init(&c1, "c1");
	peer_init(&cli, "cli");
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof names[i], "r%02d", i);
		peer_init(&providers[i], names[i]);
		join(g, &providers[i], names[i], true, (uint64_t)(100 + i) * MiB, NULL);
	}
	join(g, &c1, "c1", false, 0, NULL);
	say(g, &cli, "{\"v\":1,\"type\":\"alloc\",\"id\":9,\"node\":\"c1\",\"domain\":\"vm1\",\"size_bytes\":%llu}", 8 * MiB);
	int orders = 0;
	for (bool more = true; more;) {
		more = false;
		for (int i = 0; i < N; i++) {
			json_t *m = last(&providers[i]);
			if (strcmp(type_of(m), "lmc_alloc") != 0)
				continue;
			orders++;
			more = true;
			say(g, &providers[i], "{\"v\":1,\"type\":\"reply\",\"id\":%lld,\"ok\":false,\"error\":\"no room\"}", id_of(m));
			json_array_append_new(providers[i].inbox, json_pack("{s:s}", "type", "seen"));
		}
	}
	is_int(orders, 1 + GMC_ALLOC_REFUSALS_MAX, "refusals: the first choice and GMC_ALLOC_REFUSALS_MAX more, no further");
	json_t *reply = last(&cli);
	ok(json_is_false(json_object_get(reply, "ok")), "refusals: then the alloc fails");
	like(json_string_value(json_object_get(reply, "error")), "no room", "refusals: with the provider's reason");
	is_int(gmc_lease_count(g), 0, "refusals: no lease left behind");
	gmc_free(g);
	for (int i = 0; i < N; i++)
		json_decref(providers[i].inbox);
	json_decref(c1.inbox);
	json_decref(cli.inbox);
}

int main(void)
{
	char state[] = "/tmp/test_msgmc_gmcXXXXXX";
	int fd = mkstemp(state);
	close(fd);
	unlink(state);
	struct gmc_config cfg = {.policy = gmc_policy_find("slm"), .state = journal_state(state),
				 .node_timeout_ns = 5000, .reply_timeout_ns = 100000};
	struct gmc *g;
	struct ms_err err = {0};
	ok(gmc_new(&cfg, &io, &g, &err) == 0, "controller with a fresh journal");
	struct gmc_peer p1, p2, c1, cli, bad;
	peer_init(&p1, "p1");
	peer_init(&p2, "p2");
	peer_init(&c1, "c1");
	peer_init(&cli, "cli");
	peer_init(&bad, "bad");
	join(g, &p1, "p1", true, 64 * MiB, NULL);
	join(g, &p2, "p2", true, 128 * MiB, NULL);
	join(g, &c1, "c1", false, 0, NULL);
	is_int(gmc_node_count(g), 3, "three nodes registered");
	ok(json_is_true(json_object_get(last(&p1), "ok")), "inform acknowledged");

	/* garbage from one peer: refused, nothing else changes */
	ok(say(g, &bad, "{\"v\":1,\"type\":\"alloc\",\"id\":1,\"node\":\"c1\"}") < 0, "garbage: gmc_receive asks to drop the peer");
	ok(say(g, &bad, "\x01\x02 not json") < 0, "binary garbage too");
	is_int(json_array_size(bad.inbox), 0, "and the garbage peer got nothing");
	is_int(gmc_lease_count(g), 0, "no lease from garbage");

	/* alloc: the provider with the most free memory */
	say(g, &cli, "{\"v\":1,\"type\":\"alloc\",\"id\":5,\"node\":\"c1\",\"domain\":\"vm1\",\"size_bytes\":%llu}", 32 * MiB);
	json_t *order = last(&p2);
	is_str(type_of(order), "lmc_alloc", "p2 (128M free) is told to create the export");
	is_int(json_array_size(p1.inbox), 2, "p1 (64M) is not");
	is_str(json_string_value(json_object_get(order, "export")), "msgmc-1", "export named after the lease");
	is_int(json_array_size(cli.inbox), 0, "the command waits for the provider");
	answer_ok(g, &p2, order, ",\"uri\":\"nbd://127.0.0.1:10050/msgmc-1\"");
	json_t *attach = last(&c1);
	is_str(type_of(attach), "attach", "then the consumer is told to attach");
	is_str(json_string_value(json_object_get(attach, "uri")), "nbd://127.0.0.1:10050/msgmc-1", "the provider's URI");
	answer_ok(g, &c1, attach, NULL);
	json_t *reply = last(&cli);
	ok(json_is_true(json_object_get(reply, "ok")), "the command gets its reply");
	is_int(id_of(reply), 5, "with its id");
	json_t *lease = json_array_get(json_object_get(reply, "records"), 0);
	is_str(json_string_value(json_object_get(lease, "provider")), "p2", "the lease record names p2");
	is_int(json_integer_value(json_object_get(lease, "size_bytes")), 32 * MiB, "32M");
	ok(json_is_true(json_object_get(lease, "attached")), "attached");
	is_int(gmc_lease_count(g), 1, "one lease");

	/* a second alloc: p2 has 96M free now, still more than p1 */
	say(g, &cli, "{\"v\":1,\"type\":\"alloc\",\"id\":6,\"node\":\"c1\",\"domain\":\"vm1\",\"size_bytes\":%llu}", 80 * MiB);
	order = last(&p2);
	is_str(type_of(order), "lmc_alloc", "80M more goes to p2 (96M free)");
	size_t replies = json_array_size(cli.inbox);
	say(g, &p2, "{\"v\":1,\"type\":\"reply\",\"id\":%lld,\"ok\":false,\"error\":\"does not fit\"}", id_of(order));
	json_t *retry = last(&p1);
	is_str(type_of(retry), "lmc_alloc", "a provider's refusal: the part goes to the policy's next choice, p1");
	is_int(json_integer_value(json_object_get(retry, "size_bytes")), 64 * MiB, "as much as p1 has");
	is_int(json_array_size(cli.inbox), replies, "the command still waits");
	say(g, &p1, "{\"v\":1,\"type\":\"reply\",\"id\":%lld,\"ok\":false,\"error\":\"serve down\"}", id_of(retry));
	reply = last(&cli);
	ok(json_is_false(json_object_get(reply, "ok")), "every provider refused: the alloc fails");
	like(json_string_value(json_object_get(reply, "error")), "serve down", "with the last reason");
	is_int(gmc_lease_count(g), 1, "and leaves no lease behind");

	say(g, &cli, "{\"v\":1,\"type\":\"alloc\",\"id\":7,\"node\":\"c1\",\"domain\":\"vm1\",\"size_bytes\":%llu}", 1024 * MiB);
	reply = last(&cli);
	is_int(json_array_size(p1.inbox) + json_array_size(p2.inbox), 3 + 6, "1G: split between p2 and p1 (one lmc_alloc each)");
	answer_ok(g, &p2, last(&p2), NULL);
	answer_ok(g, &p1, last(&p1), NULL);
	answer_ok(g, &c1, json_array_get(c1.inbox, json_array_size(c1.inbox) - 2), NULL);
	answer_ok(g, &c1, last(&c1), NULL);
	reply = last(&cli);
	is_int(id_of(reply), 7, "partial grant answered");
	is_int(json_array_size(json_object_get(reply, "records")), 2, "with two leases (96M + 64M)");
	is_int(gmc_lease_count(g), 3, "three leases now");

	/* the journal: a restarted controller has them all */
	struct gmc *g2;
	ok(gmc_new(&cfg, &io, &g2, &err) == 0, "a second controller reads the journal");
	is_int(gmc_lease_count(g2), 3, "every lease survives a restart");
	is_int(gmc_node_count(g2), 3, "and the nodes they name are known (not yet connected)");
	/* p2 re-registers, but has only lease 1's export: the other one is lost */
	struct gmc_peer p2b, c1b;
	peer_init(&p2b, "p2b");
	peer_init(&c1b, "c1b");
	join(g2, &c1b, "c1", false, 0, NULL);
	join(g2, &p2b, "p2", true, 128 * MiB,
	     "[{\"lease\":1,\"export\":\"msgmc-1\",\"size_bytes\":33554432},"
	     "{\"lease\":2,\"export\":\"msgmc-2\",\"size_bytes\":4096},"
	     "{\"lease\":99,\"export\":\"msgmc-99\",\"size_bytes\":4096,\"consumer\":\"c1\",\"domain\":\"vm9\"}]");
	int releases = 0, reclaims = 0;
	size_t i;
	json_t *m;
	json_array_foreach(p2b.inbox, i, m)
	{
		if (strcmp(type_of(m), "lmc_release") == 0) {
			releases++;
			is_str(json_string_value(json_object_get(m, "export")), "msgmc-2",
			       "the export of a lease that ended (its alloc failed) is removed: no double allocation");
		}
	}
	is_int(releases, 1, "exactly one orphan removed");
	json_array_foreach(c1b.inbox, i, m) reclaims += strcmp(type_of(m), "lmc_reclaim") == 0;
	is_int(reclaims, 1, "the lease p2 lost (its export is gone) is reclaimed from the consumer");
	json_t *leases = gmc_lease_records(g2);
	bool adopted = false;
	json_array_foreach(leases, i, m) adopted |= json_integer_value(json_object_get(m, "lease")) == 99;
	json_decref(leases);
	ok(adopted, "a lease the controller never issued (id above its journal) is adopted from the provider");
	gmc_free(g2);

	/* release on the first controller: consumer detaches, then provider drops */
	say(g, &cli, "{\"v\":1,\"type\":\"release\",\"id\":8,\"lease\":1}");
	is_str(type_of(last(&c1)), "lmc_reclaim", "release: the consumer detaches first");
	answer_ok(g, &c1, last(&c1), NULL);
	is_str(type_of(last(&p2)), "lmc_release", "then the provider drops the export");
	answer_ok(g, &p2, last(&p2), NULL);
	reply = last(&cli);
	is_int(id_of(reply), 8, "release answered");
	is_str(json_string_value(json_object_get(json_array_get(json_object_get(reply, "records"), 0), "event")), "released",
	       "the lease is released");
	is_int(gmc_lease_count(g), 2, "two leases left");
	say(g, &cli, "{\"v\":1,\"type\":\"release\",\"id\":9,\"lease\":1}");
	ok(json_is_false(json_object_get(last(&cli), "ok")), "releasing it twice is refused");

	/* provider failure: p1 goes away; after the timeout its lease is revoked */
	gmc_peer_gone(g, &p1, now);
	now += 10000;
	gmc_tick(g, now);
	is_str(type_of(last(&c1)), "lmc_reclaim", "a failed provider's lease: the consumer fails over");
	answer_ok(g, &c1, last(&c1), NULL);
	is_int(gmc_lease_count(g), 1, "its lease is gone");

	/* leave drains p2 */
	say(g, &cli, "{\"v\":1,\"type\":\"leave\",\"id\":10,\"node\":\"p2\"}");
	answer_ok(g, &c1, last(&c1), NULL);
	answer_ok(g, &p2, last(&p2), NULL);
	is_str(type_of(last(&p2)), "leave_notify", "leave ends with Leave-Notify");
	ok(json_is_true(json_object_get(last(&cli), "ok")), "leave answered");
	is_int(gmc_lease_count(g), 0, "no lease left");
	json_t *nodes = gmc_node_records(g);
	json_array_foreach(nodes, i, m) if (strcmp(json_string_value(json_object_get(m, "node")), "p2") == 0)
		is_str(json_string_value(json_object_get(m, "state")), "inactive", "p2 is inactive");
	json_decref(nodes);
	say(g, &cli, "{\"v\":1,\"type\":\"alloc\",\"id\":11,\"node\":\"c1\",\"domain\":\"vm1\",\"size_bytes\":4096}");
	ok(json_is_false(json_object_get(last(&cli), "ok")), "with every provider gone, alloc is refused");
	like(json_string_value(json_object_get(last(&cli), "error")), "no node can serve", "and says why");
	ok(say(g, &cli, "{\"v\":1,\"type\":\"lmc_alloc\",\"id\":1,\"lease\":1,\"export\":\"x\",\"size_bytes\":1}") < 0,
	   "controller-to-agent messages sent to the controller drop the peer");
	gmc_free(g);
	state_close(cfg.state);
	unlink(state);
	json_decref(p1.inbox);
	json_decref(p2.inbox);
	json_decref(c1.inbox);
	json_decref(cli.inbox);
	json_decref(bad.inbox);
	json_decref(p2b.inbox);
	json_decref(c1b.inbox);
	test_group_commit();
	test_refusals_bounded();
	test_compaction();
	test_attach_timeout();
	return done_testing();
}
