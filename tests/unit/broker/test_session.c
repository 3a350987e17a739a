/*
 * Unit tests for broker/session.c: the registry (ids of any bytes, growth
 * past its first 1024 buckets), the subscription list, delivery (QoS 0
 * straight out or dropped, QoS 1 and 2 through the queue and the in-flight
 * window), packet identifiers, acknowledgements in each state, queue
 * limits, message expiry, resending after a reconnect, the incoming QoS 2
 * id set, and the hand-over of shared-group messages when a session ends.
 *
 * session.c is isolated from the network by link seams: this file defines
 * conn_send() and conn_send_publish() (recording every call), shard_now()
 * (a clock the tests move) and shard_sub_remove() (straight to the tree),
 * and includes msg.c and subtree.c for real messages and a real
 * subscription tree.  The registry is the one shard's.  Nothing here needs libev.
 * session.c's malloc, calloc and realloc are wrapped to fail on demand.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/level_table.c"
#include "broker/subtree.c"
#include "broker/msg.c"

/* Allocations session.c may still make; negative: no limit. */
static long alloc_budget = -1;

static bool alloc_ok(void)
{
	if (alloc_budget < 0)
		return true;
	if (alloc_budget == 0)
		return false;
	alloc_budget--;
	return true;
}

static void *test_malloc(size_t size)
{
	return alloc_ok() ? malloc(size) : NULL;
}

static void *test_calloc(size_t n, size_t size)
{
	return alloc_ok() ? calloc(n, size) : NULL;
}

static void *test_realloc(void *p, size_t size)
{
	return alloc_ok() ? realloc(p, size) : NULL;
}

#define malloc test_malloc
#define calloc test_calloc
#define realloc test_realloc
#include "broker/objcache.c" /* deliveries: session.c's allocations */
#include "broker/session.c"
#undef malloc
#undef calloc
#undef realloc

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- seams */

/* shard_now_ms() reads the shard's clock through shard_now(): ours. */
static double fake_now = 1000000.0;

/* Wills the session sent (parked ones, at session end or when due). */
static unsigned wills_sent;

void route_will(struct shard *sh, struct msg *will, uint32_t expiry_interval)
{
	(void)sh;
	(void)expiry_interval;
	wills_sent++;
	msg_unref(will);
}

double shard_now(struct shard *sh)
{
	(void)sh;
	return fake_now;
}

/* What the session asked persistence to record. */
static struct {
	unsigned session, session_end, sub, unsub, will_drop;
	unsigned delivery_new, delivery_state, delivery_done, qos2_add,
		qos2_del;
	uint8_t last_state;
} persisted;

void persist_session(struct session *s)
{
	(void)s;
	persisted.session++;
}

void persist_session_end(struct session *s)
{
	(void)s;
	persisted.session_end++;
}

void persist_will_drop(struct session *s)
{
	(void)s;
	persisted.will_drop++;
}

void persist_sub(struct session *s, const struct session_sub *sub)
{
	(void)s;
	(void)sub;
	persisted.sub++;
}

void persist_unsub(struct session *s, const char *filter, size_t len)
{
	(void)s;
	(void)filter;
	(void)len;
	persisted.unsub++;
}

void persist_delivery_new(struct session *s, struct delivery *d)
{
	(void)s;
	(void)d;
	persisted.delivery_new++;
}

void persist_delivery_state(struct session *s, const struct delivery *d)
{
	(void)s;
	persisted.last_state = d->state;
	persisted.delivery_state++;
}

void persist_delivery_done(struct session *s, struct delivery *d)
{
	(void)s;
	(void)d;
	persisted.delivery_done++;
}

void persist_qos2_in(struct session *s, uint16_t packet_id, bool add)
{
	(void)s;
	(void)packet_id;
	if (add)
		persisted.qos2_add++;
	else
		persisted.qos2_del++;
}

/* session_add_sub() with plain options of a QoS. */
static int add_sub(struct session *s, const char *filter, size_t len,
		   uint8_t qos)
{
	struct sub_opts opts = { .qos = qos };

	return session_add_sub(s, filter, len, &opts);
}

static uint64_t now_ms(void)
{
	return (uint64_t)(fake_now * 1000.0);
}

/* One packet the session asked a connection to send. */
struct sent {
	const struct conn *conn;
	int type; /* MQTT_PUBLISH or what conn_send() got */
	const struct msg *msg;
	char topic[32];
	uint16_t packet_id;
	uint8_t qos;
	bool retain;
	bool dup;
	uint8_t sub_id_count;
	uint32_t sub_ids[8];
};

#define MAX_SENT 256
static struct sent sent[MAX_SENT];
static size_t nsent; /* calls recorded (more than MAX_SENT fails) */
static size_t publish_refuse; /* next PUBLISHes refused as too large */

static struct sent *record(const struct conn *c, int type)
{
	struct sent *e;

	ck_assert_uint_lt(nsent, MAX_SENT);
	e = &sent[nsent++];
	memset(e, 0, sizeof(*e));
	e->conn = c;
	e->type = type;
	return e;
}

int conn_send(struct conn *c, const struct mqtt_packet *pkt)
{
	struct sent *e = record(c, pkt->type);

	e->packet_id = pkt->u.ack.packet_id;
	return 0;
}

bool conn_send_publish(struct conn *c, struct msg *msg, uint8_t qos,
		       bool retain, bool dup, uint16_t packet_id,
		       const uint32_t *sub_ids, uint8_t sub_id_count)
{
	struct sent *e = record(c, MQTT_PUBLISH);

	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(c->state, CONN_ACTIVE);
	e->msg = msg;
	snprintf(e->topic, sizeof(e->topic), "%s", msg->topic);
	e->packet_id = packet_id;
	e->qos = qos;
	e->retain = retain;
	e->dup = dup;
	ck_assert_uint_le(sub_id_count, NELEM(e->sub_ids));
	e->sub_id_count = sub_id_count;
	if (sub_id_count)
		memcpy(e->sub_ids, sub_ids, sub_id_count * sizeof(*sub_ids));
	if (publish_refuse) {
		publish_refuse--;
		return false;
	}
	return true;
}

/* -------------------------------------------------------------- fixture */

static struct broker broker;
static struct shard shard;
static struct conn conns[2];

/*
 * session_destroy unsubscribes through the shard, which also keeps its
 * interest count and the $share registry (tested in test_shard.c and
 * test_share.c); here the tree is all there is.
 */
static unsigned sub_removes;

int shard_sub_remove(struct shard *sh, const char *filter, size_t len,
		     struct session *s)
{
	ck_assert_ptr_eq(sh, &shard);
	ck_assert_ptr_eq(s->shard, sh);
	sub_removes++;
	return subtree_remove(sh->subs, filter, len, s);
}

/*
 * A group with no other member on this shard: the messages go to the
 * shard layer, which finds a member elsewhere (tested in 11-shards).
 */
static unsigned shared_posts;
static const char *shared_post_group;

void shard_post_shared(struct shard *sh, const char *shared_group,
		       struct msg *msg, bool retain)
{
	ck_assert_ptr_eq(sh, &shard);
	ck_assert_ptr_nonnull(msg);
	ck_assert(!retain);
	shared_post_group = shared_group;
	shared_posts++;
}

static void setup(void)
{
	shared_posts = 0;
	shared_post_group = NULL;
	memset(&broker, 0, sizeof(broker));
	memset(&shard, 0, sizeof(shard));
	memset(conns, 0, sizeof(conns));
	broker.shards = &shard;
	broker.shard_count = 1;
	shard.broker = &broker;
	shard.subs = subtree_new();
	ck_assert_ptr_nonnull(shard.subs);
	session_delivery_cache_init(&shard.deliveries);
	for (size_t i = 0; i < NELEM(conns); i++) {
		conns[i].shard = &shard;
		conns[i].state = CONN_ACTIVE;
		conns[i].wheel_slot = -1;
	}
	fake_now = 1000000.0;
	memset(&persisted, 0, sizeof(persisted));
	nsent = 0;
	publish_refuse = 0;
	alloc_budget = -1;
	sub_removes = 0;
}

static void teardown(void)
{
	session_destroy_all(&shard);
	ck_assert_uint_eq(shard.session_count, 0);
	ck_assert_uint_eq(subtree_count(shard.subs), 0);
	subtree_free(shard.subs);
	objcache_fini(&shard.deliveries);
}

/* ------------------------------------------------------------- helpers */

static const uint8_t payload_bytes[256];

/* A message with the caller's reference. */
static struct msg *mk(const char *topic, size_t payload_len, uint8_t qos)
{
	struct msg *m;

	ck_assert_uint_le(payload_len, sizeof(payload_bytes));
	m = msg_new(topic, strlen(topic), payload_bytes, payload_len, NULL, 0,
		    qos, false);
	ck_assert_ptr_nonnull(m);
	return m;
}

static struct session *new_session(const char *id)
{
	struct session *s = session_new(&shard, id, strlen(id));

	ck_assert_ptr_nonnull(s);
	return s;
}

static struct session *online(const char *id, struct conn *c)
{
	struct session *s = new_session(id);

	s->conn = c;
	c->session = s;
	return s;
}

/* Deliver a fresh message and drop the test's reference to it. */
static void deliver(struct session *s, const char *topic, size_t payload_len,
		    uint8_t qos)
{
	struct msg *m = mk(topic, payload_len, qos);

	session_deliver(s, m, qos, false, NULL, 0, NULL);
	msg_unref(m);
}

static void assert_publish(size_t i, const struct conn *c, const char *topic,
			   uint8_t qos, uint16_t packet_id, bool dup)
{
	ck_assert_uint_lt(i, nsent);
	ck_assert_ptr_eq(sent[i].conn, c);
	ck_assert_int_eq(sent[i].type, MQTT_PUBLISH);
	ck_assert_str_eq(sent[i].topic, topic);
	ck_assert_uint_eq(sent[i].qos, qos);
	ck_assert_uint_eq(sent[i].packet_id, packet_id);
	ck_assert(sent[i].dup == dup);
}

static void assert_pubrel(size_t i, const struct conn *c, uint16_t packet_id)
{
	ck_assert_uint_lt(i, nsent);
	ck_assert_ptr_eq(sent[i].conn, c);
	ck_assert_int_eq(sent[i].type, MQTT_PUBREL);
	ck_assert_uint_eq(sent[i].packet_id, packet_id);
}

/* The in-flight list holds exactly these ids, in order, tail and count. */
static void assert_inflight(const struct session *s, const uint16_t *ids,
			    size_t n)
{
	const struct delivery *d = s->inflight, *last = NULL;
	size_t i = 0;

	for (; d; d = d->next, i++) {
		ck_assert_uint_lt(i, n);
		ck_assert_uint_eq(d->packet_id, ids[i]);
		ck_assert_uint_ne(d->state, DLV_QUEUED);
		last = d;
	}
	ck_assert_uint_eq(i, n);
	ck_assert_ptr_eq(s->inflight_tail, last);
	ck_assert_uint_eq(s->inflight_count, n);
}

/* The queue holds these topics in order; count and bytes agree. */
static void assert_queue(const struct session *s, const char *const *topics,
			 size_t n)
{
	const struct delivery *d = s->queue, *last = NULL;
	uint64_t bytes = 0;
	size_t i = 0;

	for (; d; d = d->next, i++) {
		ck_assert_uint_lt(i, n);
		ck_assert_str_eq(d->msg->topic, topics[i]);
		ck_assert_uint_eq(d->state, DLV_QUEUED);
		ck_assert_uint_eq(d->packet_id, 0);
		bytes += d->msg->payload_len;
		last = d;
	}
	ck_assert_uint_eq(i, n);
	ck_assert_ptr_eq(s->queue_tail, last);
	ck_assert_uint_eq(s->queued_count, n);
	ck_assert_uint_eq(s->queued_bytes, bytes);
}

/* ------------------------------------------------------------ registry */

START_TEST(test_find_in_empty_registry)
{
	ck_assert_ptr_null(shard.sessions);
	ck_assert_ptr_null(session_find(&shard, "a", 1));
	ck_assert_ptr_null(session_find(&shard, "", 0));
	session_destroy_all(&shard); /* nothing to do */
	ck_assert_uint_eq(shard.session_buckets, 0);
}
END_TEST

/* Ids are bytes: prefixes of one another, high bytes, empty, long. */
struct id_row {
	const char *id;
	size_t len;
};

static char long_id[65535];

static const struct id_row id_rows[] = {
	{ "", 0 },
	{ "a", 1 },
	{ "ab", 2 },
	{ "abc", 3 },
	{ "b", 1 },
	{ "\xff", 1 },
	{ "\xff\xff", 2 },
	{ "\x01\x02\x03\x80\xfe", 5 },
	{ "client id with spaces", 21 },
	{ "A", 1 }, /* case matters */
	{ long_id, sizeof(long_id) },
};

START_TEST(test_registry_ids)
{
	struct session *s[NELEM(id_rows)];
	size_t i, j;

	memset(long_id, 'x', sizeof(long_id));
	for (i = 0; i < NELEM(id_rows); i++) {
		s[i] = session_new(&shard, id_rows[i].id, id_rows[i].len);
		ck_assert_ptr_nonnull(s[i]);
		ck_assert_ptr_eq(s[i]->shard, &shard);
		ck_assert_ptr_null(s[i]->conn);
		ck_assert_uint_eq(s[i]->client_id_len, id_rows[i].len);
		ck_assert_mem_eq(s[i]->client_id, id_rows[i].id,
				 id_rows[i].len);
		ck_assert_int_eq(s[i]->client_id[id_rows[i].len], '\0');
		ck_assert_ptr_ne(s[i]->client_id, id_rows[i].id); /* a copy */
		ck_assert_uint_eq(s[i]->inflight_max, UINT16_MAX);
		ck_assert_uint_eq(s[i]->sub_count, 0);
		ck_assert_uint_eq(s[i]->inflight_count, 0);
		ck_assert_uint_eq(s[i]->queued_count, 0);
	}
	ck_assert_uint_eq(shard.session_count, NELEM(id_rows));
	ck_assert_uint_eq(shard.session_buckets, 1024);
	for (i = 0; i < NELEM(id_rows); i++)
		ck_assert_ptr_eq(session_find(&shard, id_rows[i].id,
					      id_rows[i].len), s[i]);
	/* Not there: one byte more, one byte changed. */
	ck_assert_ptr_null(session_find(&shard, "abcd", 4));
	ck_assert_ptr_null(session_find(&shard, "\xff\xff\xff", 3));
	ck_assert_ptr_null(session_find(&shard, "\xfe", 1));
	ck_assert_ptr_null(session_find(&shard, long_id,
					sizeof(long_id) - 1));

	/* Destroy in another order; the others stay found. */
	for (i = 0; i < NELEM(id_rows); i += 2)
		session_destroy(s[i]);
	for (i = 0; i < NELEM(id_rows); i++) {
		struct session *f = session_find(&shard, id_rows[i].id,
						 id_rows[i].len);

		ck_assert_ptr_eq(f, i % 2 ? s[i] : NULL);
	}
	for (i = 1; i < NELEM(id_rows); i += 2)
		session_destroy(s[i]);
	ck_assert_uint_eq(shard.session_count, 0);
	for (j = 0; j < NELEM(id_rows); j++)
		ck_assert_ptr_null(session_find(&shard, id_rows[j].id,
						id_rows[j].len));
}
END_TEST

static size_t expected_buckets(size_t count)
{
	size_t n = 1024;

	while (2 * n < count)
		n *= 2;
	return n;
}

/* Past 2048 sessions the table doubles; every session stays found. */
START_TEST(test_registry_growth)
{
	enum { N = 5000 };
	static struct session *s[N];
	char id[32];
	size_t i;

	for (i = 0; i < N; i++) {
		int n = snprintf(id, sizeof(id), "dev\x01%zu", i);

		s[i] = session_new(&shard, id, (size_t)n);
		ck_assert_ptr_nonnull(s[i]);
		ck_assert_uint_eq(shard.session_count, i + 1);
		ck_assert_uint_eq(shard.session_buckets,
				  expected_buckets(i + 1));
	}
	ck_assert_uint_eq(shard.session_buckets, 4096);
	for (i = 0; i < N; i++) {
		int n = snprintf(id, sizeof(id), "dev\x01%zu", i);

		ck_assert_ptr_eq(session_find(&shard, id, (size_t)n), s[i]);
	}
	/* Every 3rd goes: chains lose heads, middles and tails. */
	for (i = 0; i < N; i += 3)
		session_destroy(s[i]);
	ck_assert_uint_eq(shard.session_count, N - (N + 2) / 3);
	for (i = 0; i < N; i++) {
		int n = snprintf(id, sizeof(id), "dev\x01%zu", i);

		ck_assert_ptr_eq(session_find(&shard, id, (size_t)n),
				 i % 3 ? s[i] : NULL);
	}
	session_destroy_all(&shard);
	ck_assert_ptr_null(shard.sessions);
	ck_assert_uint_eq(shard.session_buckets, 0);
	ck_assert_uint_eq(shard.session_count, 0);
	/* A registry can start again after destroy_all. */
	ck_assert_ptr_nonnull(session_new(&shard, "again", 5));
	ck_assert_uint_eq(shard.session_buckets, 1024);
}
END_TEST

/* -------------------------------------------------------- subscriptions */

static const struct session_sub *sub_of(const struct session *s,
					const char *filter)
{
	for (const struct session_sub *p = s->subs; p; p = p->next)
		if (p->len == strlen(filter) &&
		    memcmp(p->filter, filter, p->len) == 0)
			return p;
	return NULL;
}

START_TEST(test_subs_add_update_remove)
{
	struct session *s = new_session("c");
	static const char *const filters[] = { "a/b", "a/b/c", "$share/g/a",
					       "#", "a/+" };
	const struct session_sub *p;
	size_t i;

	for (i = 0; i < NELEM(filters); i++) {
		ck_assert_int_eq(add_sub(s, filters[i],
						 strlen(filters[i]),
						 (uint8_t)(i % 3)), 0);
		ck_assert_uint_eq(s->sub_count, i + 1);
	}
	for (i = 0; i < NELEM(filters); i++) {
		p = sub_of(s, filters[i]);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(p->qos, i % 3);
		ck_assert_str_eq(p->filter, filters[i]); /* NUL-terminated */
	}
	/* Same filter again: its QoS changes, nothing is added. */
	ck_assert_int_eq(add_sub(s, "a/b", 3, 2), 0);
	ck_assert_uint_eq(s->sub_count, NELEM(filters));
	ck_assert_uint_eq(sub_of(s, "a/b")->qos, 2);
	ck_assert_uint_eq(sub_of(s, "a/b/c")->qos, 1);

	/* Only the exact filter goes. */
	ck_assert(!session_remove_sub(s, "a", 1));
	ck_assert(!session_remove_sub(s, "a/b/", 4));
	ck_assert(!session_remove_sub(s, "a/b/c/d", 7));
	ck_assert(!session_remove_sub(s, "$share/g/b", 10));
	ck_assert_uint_eq(s->sub_count, NELEM(filters));
	ck_assert(session_remove_sub(s, "a/b/c", 5));
	ck_assert_uint_eq(s->sub_count, NELEM(filters) - 1);
	ck_assert_ptr_null(sub_of(s, "a/b/c"));
	ck_assert_ptr_nonnull(sub_of(s, "a/b"));
	ck_assert(!session_remove_sub(s, "a/b/c", 5));
	/* Head and tail of the list. */
	ck_assert(session_remove_sub(s, "a/+", 3));
	ck_assert(session_remove_sub(s, "a/b", 3));
	ck_assert_uint_eq(s->sub_count, 2);
	ck_assert_ptr_nonnull(sub_of(s, "#"));
	ck_assert_ptr_nonnull(sub_of(s, "$share/g/a"));
	/* A length, not a NUL, ends the filter. */
	ck_assert_int_eq(add_sub(s, "x/yz", 3, 1), 0);
	ck_assert_ptr_nonnull(sub_of(s, "x/y"));
	ck_assert_ptr_null(sub_of(s, "x/yz"));
}
END_TEST

/* session_destroy takes every subscription out of the shard's tree. */
START_TEST(test_destroy_unsubscribes)
{
	struct session *s = new_session("c"), *other = new_session("o");
	static const char *const filters[] = { "a/b", "a/#", "$share/g/a" };
	struct sub_opts opts = { .qos = 1 };

	for (size_t i = 0; i < NELEM(filters); i++) {
		size_t len = strlen(filters[i]);

		ck_assert_int_eq(subtree_add(shard.subs, filters[i], len, s,
					     &opts, NULL), 0);
		ck_assert_int_eq(add_sub(s, filters[i], len, 1), 0);
	}
	ck_assert_int_eq(subtree_add(shard.subs, "a/b", 3, other, &opts,
				     NULL), 0);
	ck_assert_int_eq(add_sub(other, "a/b", 3, 1), 0);
	ck_assert_uint_eq(subtree_count(shard.subs), 4);
	session_destroy(s);
	ck_assert_uint_eq(sub_removes, NELEM(filters)); /* via the shard */
	ck_assert_uint_eq(subtree_count(shard.subs), 1);
	ck_assert_ptr_null(session_find(&shard, "c", 1));
	ck_assert_ptr_eq(session_find(&shard, "o", 1), other);
}
END_TEST

/* A session's deliveries hold references; destroying it lets them go. */
START_TEST(test_destroy_drops_messages)
{
	struct session *a = online("a", &conns[0]), *b = new_session("b");
	struct msg *m = mk("t", 8, 2);

	a->inflight_max = 1;
	session_deliver(a, m, 2, false, NULL, 0, NULL); /* in flight */
	session_deliver(a, m, 1, false, NULL, 0, NULL); /* queued */
	session_deliver(b, m, 2, false, NULL, 0, NULL); /* queued offline */
	ck_assert_uint_eq(m->refs, 4);
	session_destroy(a);
	ck_assert_uint_eq(m->refs, 2);
	ck_assert_uint_eq(nsent, 1);
	session_destroy(b);
	ck_assert_uint_eq(m->refs, 1);
	ck_assert_uint_eq(shard.session_count, 0);
	msg_unref(m);
}
END_TEST

/* ------------------------------------------------------------ QoS 0 */

START_TEST(test_qos0_online_goes_out)
{
	struct session *s = online("c", &conns[0]);
	struct msg *m = mk("t/0", 3, 1);
	uint32_t ids[] = { 5, 268435455 };

	session_deliver(s, m, 0, true, ids, 2, NULL);
	ck_assert_uint_eq(nsent, 1);
	assert_publish(0, &conns[0], "t/0", 0, 0, false);
	ck_assert_ptr_eq(sent[0].msg, m);
	ck_assert(sent[0].retain);
	ck_assert_uint_eq(sent[0].sub_id_count, 2);
	ck_assert_uint_eq(sent[0].sub_ids[0], 5);
	ck_assert_uint_eq(sent[0].sub_ids[1], 268435455);
	/* Nothing kept: only the test's reference is left. */
	ck_assert_uint_eq(m->refs, 1);
	assert_queue(s, NULL, 0);
	assert_inflight(s, NULL, 0);
	ck_assert_uint_eq(s->last_packet_id, 0);
	msg_unref(m);
}
END_TEST

/* Over the connection's soft output limit, QoS 0 is dropped and counted. */
struct pending_row {
	size_t pending;
	bool sent;
};

static const struct pending_row pending_rows[] = {
	{ 0, true },
	{ QOS0_OUT_SOFT_LIMIT - 1, true },
	{ QOS0_OUT_SOFT_LIMIT, true },
	{ QOS0_OUT_SOFT_LIMIT + 1, false },
	{ 64u * 1024u * 1024u, false },
};

START_TEST(test_qos0_soft_limit)
{
	const struct pending_row *r = &pending_rows[_i];
	struct session *s = online("c", &conns[0]);

	conns[0].out_off = 100;
	conns[0].out_len = (uint32_t)(100 + r->pending);
	deliver(s, "t", 1, 0);
	ck_assert_uint_eq(nsent, r->sent ? 1 : 0);
	ck_assert_uint_eq(shard.stats.publish_dropped, r->sent ? 0 : 1);
	assert_queue(s, NULL, 0);
}
END_TEST

struct offline_qos0_row {
	bool queue_qos0;
	uint8_t conn_state; /* enum conn_state, or 0xff: no connection */
	size_t queued;
};

static const struct offline_qos0_row offline_qos0_rows[] = {
	{ false, 0xff, 0 },
	{ true, 0xff, 1 },
	{ false, CONN_NEW, 0 }, /* not yet CONNACKed: not online */
	{ true, CONN_NEW, 1 },
	{ false, CONN_CLOSING, 0 },
	{ true, CONN_CLOSING, 1 },
};

START_TEST(test_qos0_offline)
{
	const struct offline_qos0_row *r = &offline_qos0_rows[_i];
	static const char *const topics[] = { "t" };
	struct session *s = new_session("c");

	broker.limits.queue_qos0_messages = r->queue_qos0;
	if (r->conn_state != 0xff) {
		conns[0].state = r->conn_state;
		s->conn = &conns[0];
	}
	deliver(s, "t", 7, 0);
	ck_assert_uint_eq(nsent, 0);
	ck_assert_uint_eq(shard.stats.publish_dropped, 0);
	assert_queue(s, topics, r->queued);
	assert_inflight(s, NULL, 0);

	/* Coming online sends it as QoS 0, without a packet id. */
	conns[0].state = CONN_ACTIVE;
	s->conn = &conns[0];
	session_pump(s);
	ck_assert_uint_eq(nsent, r->queued);
	if (r->queued)
		assert_publish(0, &conns[0], "t", 0, 0, false);
	assert_queue(s, NULL, 0);
	assert_inflight(s, NULL, 0);
	ck_assert_uint_eq(s->last_packet_id, 0);
}
END_TEST

/*
 * QoS 0 needs no room in the window, but does not overtake what is
 * queued before it.
 */
START_TEST(test_qos0_keeps_order_behind_queue)
{
	struct session *s = online("c", &conns[0]);
	static const char *const queued[] = { "b", "c" };
	static const uint16_t one[] = { 1 }, two[] = { 2 };

	s->inflight_max = 1;
	deliver(s, "a", 1, 1);
	deliver(s, "z", 1, 0); /* window full, nothing queued: goes out */
	ck_assert_uint_eq(nsent, 2);
	assert_publish(0, &conns[0], "a", 1, 1, false);
	assert_publish(1, &conns[0], "z", 0, 0, false);
	deliver(s, "b", 1, 1);
	deliver(s, "c", 1, 0); /* behind b */
	ck_assert_uint_eq(nsent, 2);
	assert_inflight(s, one, 1);
	assert_queue(s, queued, 2);

	/* b fills the window again; c waits for its turn behind it. */
	ck_assert(session_ack(s, 1, MQTT_PUBACK));
	ck_assert_uint_eq(nsent, 3);
	assert_publish(2, &conns[0], "b", 1, 2, false);
	assert_inflight(s, two, 1);
	assert_queue(s, queued + 1, 1);

	ck_assert(session_ack(s, 2, MQTT_PUBACK));
	ck_assert_uint_eq(nsent, 4);
	assert_publish(3, &conns[0], "c", 0, 0, false);
	assert_inflight(s, NULL, 0);
	assert_queue(s, NULL, 0);
}
END_TEST

/* --------------------------------------------------------- QoS 1 and 2 */

struct window_row {
	uint16_t inflight_max;
	uint8_t qos;
	size_t n;
};

static const struct window_row window_rows[] = {
	{ 1, 1, 5 },
	{ 1, 2, 5 },
	{ 3, 2, 5 },
	{ 5, 1, 5 },
	{ 5, 2, 3 },
	{ UINT16_MAX, 1, 40 },
};

START_TEST(test_window)
{
	const struct window_row *r = &window_rows[_i];
	struct session *s = online("c", &conns[0]);
	size_t k = r->n < r->inflight_max ? r->n : r->inflight_max;
	uint16_t ids[64];
	char topic[32];
	size_t i;

	s->inflight_max = r->inflight_max;
	for (i = 0; i < r->n; i++) {
		snprintf(topic, sizeof(topic), "t/%zu", i);
		deliver(s, topic, 10, r->qos);
	}
	ck_assert_uint_eq(nsent, k);
	for (i = 0; i < k; i++) {
		snprintf(topic, sizeof(topic), "t/%zu", i);
		assert_publish(i, &conns[0], topic, r->qos, (uint16_t)(i + 1),
			       false);
		ck_assert(!sent[i].retain);
		ck_assert_uint_eq(sent[i].sub_id_count, 0);
		ids[i] = (uint16_t)(i + 1);
	}
	assert_inflight(s, ids, k);
	ck_assert_uint_eq(s->queued_count, r->n - k);
	ck_assert_uint_eq(s->queued_bytes, (r->n - k) * 10);
	for (const struct delivery *d = s->inflight; d; d = d->next) {
		ck_assert_uint_eq(d->state, DLV_SENT);
		ck_assert_uint_eq(d->qos, r->qos);
	}
}
END_TEST

/* Queued while offline, sent in order once online. */
START_TEST(test_offline_then_pump)
{
	struct session *s = new_session("c");
	static const char *const topics[] = { "a", "b", "c", "d" };
	static const uint8_t qos[] = { 1, 2, 0, 2 };
	static const uint16_t ids[] = { 1, 2, 3 };
	struct msg *m;
	uint32_t sub_id = 42;

	broker.limits.queue_qos0_messages = true;
	for (size_t i = 0; i < NELEM(topics); i++) {
		m = mk(topics[i], 2, qos[i]);
		session_deliver(s, m, qos[i], i == 1, &sub_id, 1, NULL);
		msg_unref(m);
	}
	ck_assert_uint_eq(nsent, 0);
	assert_queue(s, topics, 4);
	session_pump(s); /* still offline: nothing */
	ck_assert_uint_eq(nsent, 0);

	s->conn = &conns[0];
	session_pump(s);
	ck_assert_uint_eq(nsent, 4);
	assert_publish(0, &conns[0], "a", 1, 1, false);
	assert_publish(1, &conns[0], "b", 2, 2, false);
	assert_publish(2, &conns[0], "c", 0, 0, false);
	assert_publish(3, &conns[0], "d", 2, 3, false);
	for (size_t i = 0; i < 4; i++) {
		ck_assert(sent[i].retain == (i == 1));
		ck_assert_uint_eq(sent[i].sub_id_count, 1);
		ck_assert_uint_eq(sent[i].sub_ids[0], 42);
	}
	assert_inflight(s, ids, 3);
	assert_queue(s, NULL, 0);
}
END_TEST

/* A PUBLISH the connection refuses (too large) is done with. */
START_TEST(test_refused_publish_dropped)
{
	struct session *s = online("c", &conns[0]);
	static const uint16_t ids[] = { 2 };
	struct msg *m = mk("big", 100, 1);

	publish_refuse = 1;
	session_deliver(s, m, 1, false, NULL, 0, NULL);
	ck_assert_uint_eq(nsent, 1);
	assert_inflight(s, NULL, 0);
	assert_queue(s, NULL, 0);
	ck_assert_uint_eq(m->refs, 1); /* the delivery let go */
	deliver(s, "small", 1, 1);
	ck_assert_uint_eq(nsent, 2);
	assert_publish(1, &conns[0], "small", 1, 2, false);
	assert_inflight(s, ids, 1);
	msg_unref(m);
}
END_TEST

/* ---------------------------------------------------------- packet ids */

struct pid_row {
	uint16_t last; /* last_packet_id to start from */
	uint16_t busy[4]; /* ids put in flight first (0 ends) */
	uint16_t expect[4]; /* ids of the next deliveries */
};

static const struct pid_row pid_rows[] = {
	{ 0, { 0 }, { 1, 2, 3, 4 } },
	{ 65533, { 0 }, { 65534, 65535, 1, 2 } },
	{ 65535, { 0 }, { 1, 2, 3, 4 } },
	{ 65535, { 1, 0 }, { 2, 3, 4, 5 } },
	{ 65534, { 65535, 1, 3, 0 }, { 2, 4, 5, 6 } },
	{ 10, { 11, 12, 14, 0 }, { 13, 15, 16, 17 } },
};

START_TEST(test_packet_ids)
{
	const struct pid_row *r = &pid_rows[_i];
	struct session *s = online("c", &conns[0]);
	size_t nbusy = 0, i;

	/* Put the busy ids in flight by aiming last_packet_id at each. */
	for (; nbusy < NELEM(r->busy) && r->busy[nbusy]; nbusy++) {
		s->last_packet_id = (uint16_t)(r->busy[nbusy] - 1);
		deliver(s, "busy", 1, 1);
		ck_assert_uint_eq(sent[nsent - 1].packet_id, r->busy[nbusy]);
	}
	s->last_packet_id = r->last;
	for (i = 0; i < NELEM(r->expect); i++) {
		deliver(s, "t", 1, 2);
		ck_assert_uint_eq(sent[nsent - 1].packet_id, r->expect[i]);
		ck_assert_uint_ne(sent[nsent - 1].packet_id, 0);
	}
	ck_assert_uint_eq(s->inflight_count, nbusy + NELEM(r->expect));
}
END_TEST

/*
 * A window of 200 over 140,000 QoS 1 messages, acknowledged mostly in
 * order and sometimes not, wrapping the 16-bit ids twice: no id is
 * ever given to two messages in flight at once, whichever way
 * next_packet_id() decides (the sequence check or the scan).
 */
START_TEST(test_packet_ids_window_wraps)
{
	static bool busy[65536];
	static uint16_t live[200];
	struct session *s = online("c", &conns[0]);
	size_t nlive = 0;
	unsigned seed = 12345;

	memset(busy, 0, sizeof(busy));
	s->inflight_max = 200;
	for (unsigned step = 0; step < 140000; step++) {
		uint16_t id;
		size_t k;

		if (nlive < 200) {
			nsent = 0;
			deliver(s, "w", 1, 1);
			ck_assert_uint_eq(nsent, 1);
			id = sent[0].packet_id;
			ck_assert_uint_ne(id, 0);
			ck_assert_msg(!busy[id], "id %u given twice", id);
			busy[id] = true;
			live[nlive++] = id;
			continue;
		}
		/* Oldest first four times in five, else any. */
		seed = seed * 1103515245u + 12345u;
		k = (seed >> 16) % 5 ? 0 : (seed >> 8) % nlive;
		id = live[k];
		memmove(&live[k], &live[k + 1], (nlive - k - 1) * sizeof(*live));
		nlive--;
		ck_assert(session_ack(s, id, MQTT_PUBACK));
		busy[id] = false;
	}
	ck_assert_uint_eq(s->inflight_count, nlive);
	nsent = 0;
}
END_TEST

/* ---------------------------------------------------------------- acks */

struct ack_step {
	int type;
	uint16_t id;
	bool ok; /* session_ack's answer */
	bool pubrel; /* a PUBREL for id went out */
};

struct ack_row {
	const char *name;
	uint8_t qos; /* of the one delivery, packet id 1 */
	struct ack_step step[3];
	size_t steps;
	bool done; /* the delivery left the in-flight list */
	uint8_t state; /* else its state */
};

static const struct ack_row ack_rows[] = {
	{ "qos1 puback", 1, { { MQTT_PUBACK, 1, true, false } }, 1, true, 0 },
	{ "qos1 puback twice", 1,
	  { { MQTT_PUBACK, 1, true, false }, { MQTT_PUBACK, 1, false, false } },
	  2, true, 0 },
	{ "qos1 puback other id", 1, { { MQTT_PUBACK, 2, false, false } }, 1,
	  false, DLV_SENT },
	{ "qos1 pubrec", 1, { { MQTT_PUBREC, 1, false, false } }, 1, false,
	  DLV_SENT },
	{ "qos1 pubcomp", 1, { { MQTT_PUBCOMP, 1, false, false } }, 1, false,
	  DLV_SENT },
	{ "qos2 puback", 2, { { MQTT_PUBACK, 1, false, false } }, 1, false,
	  DLV_SENT },
	{ "qos2 pubrec", 2, { { MQTT_PUBREC, 1, true, true } }, 1, false,
	  DLV_RELEASED },
	{ "qos2 pubrec other id", 2, { { MQTT_PUBREC, 9, false, false } }, 1,
	  false, DLV_SENT },
	{ "qos2 pubrec pubcomp", 2,
	  { { MQTT_PUBREC, 1, true, true }, { MQTT_PUBCOMP, 1, true, false } },
	  2, true, 0 },
	{ "qos2 pubrec puback", 2,
	  { { MQTT_PUBREC, 1, true, true }, { MQTT_PUBACK, 1, false, false } },
	  2, false, DLV_RELEASED },
	/* A repeated PUBREC gets its PUBREL again. */
	{ "qos2 pubrec twice", 2,
	  { { MQTT_PUBREC, 1, true, true }, { MQTT_PUBREC, 1, true, true } },
	  2, false, DLV_RELEASED },
	{ "qos2 pubcomp twice", 2,
	  { { MQTT_PUBREC, 1, true, true }, { MQTT_PUBCOMP, 1, true, false },
	    { MQTT_PUBCOMP, 1, false, false } },
	  3, true, 0 },
	/*
	 * [MQTT-4.3.3-3]: the PUBLISH stays unacknowledged until its PUBREC;
	 * a PUBCOMP before it answers no PUBREL of ours.  session.c takes it
	 * as completing the exchange (handle_ack passes MQTT_PUBCOMP for a
	 * refusing PUBREC too, so the two cannot be told apart).
	 */
	{ "qos2 pubcomp before pubrec", 2,
	  { { MQTT_PUBCOMP, 1, false, false } }, 1, false, DLV_SENT },
};

START_TEST(test_ack)
{
	const struct ack_row *r = &ack_rows[_i];
	struct session *s = online("c", &conns[0]);
	static const uint16_t one[] = { 1 };
	size_t before;

	deliver(s, r->name, 1, r->qos);
	ck_assert_uint_eq(nsent, 1);
	for (size_t i = 0; i < r->steps; i++) {
		const struct ack_step *st = &r->step[i];
		bool ok;

		before = nsent;
		ok = session_ack(s, st->id, st->type);
		ck_assert_msg(ok == st->ok, "%s: step %zu: session_ack %d",
			      r->name, i, ok);
		ck_assert_uint_eq(nsent, before + (st->pubrel ? 1 : 0));
		if (st->pubrel)
			assert_pubrel(before, &conns[0], st->id);
	}
	if (r->done) {
		assert_inflight(s, NULL, 0);
	} else {
		assert_inflight(s, one, 1);
		ck_assert_uint_eq(s->inflight->state, r->state);
	}
}
END_TEST

/*
 * Storage hears of every step of a delivery, each before the packet it
 * allows goes out, so a restart never forgets what a client was told.
 */
START_TEST(test_persist_follows_delivery)
{
	struct session *s = online("c", &conns[0]);

	deliver(s, "t", 1, 2);
	ck_assert_uint_eq(persisted.delivery_new, 1);
	ck_assert_uint_eq(persisted.delivery_state, 1);
	ck_assert_uint_eq(persisted.last_state, DLV_SENT);
	ck_assert_uint_eq(nsent, 1);
	ck_assert(session_ack(s, 1, MQTT_PUBREC));
	ck_assert_uint_eq(persisted.delivery_state, 2);
	ck_assert_uint_eq(persisted.last_state, DLV_RELEASED);
	ck_assert_uint_eq(persisted.delivery_done, 0);
	ck_assert(session_ack(s, 1, MQTT_PUBCOMP));
	ck_assert_uint_eq(persisted.delivery_done, 1);

	/* Incoming QoS 2 ids, and subscriptions, are recorded too. */
	ck_assert_int_eq(session_qos2_add(s, 9), 0);
	ck_assert(session_qos2_remove(s, 9));
	ck_assert(!session_qos2_remove(s, 9));
	ck_assert_uint_eq(persisted.qos2_add, 1);
	ck_assert_uint_eq(persisted.qos2_del, 1);
	ck_assert_int_eq(add_sub(s, "a", 1, 1), 0);
	ck_assert_int_eq(add_sub(s, "a", 1, 2), 0);
	ck_assert(session_remove_sub(s, "a", 1));
	ck_assert(!session_remove_sub(s, "a", 1));
	ck_assert_uint_eq(persisted.sub, 2);
	ck_assert_uint_eq(persisted.unsub, 1);

	/* What the session still holds at its end is forgotten with it. */
	s->conn = NULL;
	deliver(s, "t", 1, 1);
	ck_assert_uint_eq(persisted.delivery_new, 2);
	session_destroy(s);
	ck_assert_uint_eq(persisted.session_end, 1);
	ck_assert_uint_eq(persisted.delivery_done, 2);
}
END_TEST

/* A restored delivery lands where its state says, and the ids go on. */
START_TEST(test_restore_delivery)
{
	struct session *s = new_session("c");
	struct msg *m = mk("t", 1, 2);

	ck_assert_int_eq(session_restore_delivery(s, m, 7, 2, DLV_RELEASED,
						  40, false, NULL, 0), 0);
	ck_assert_int_eq(session_restore_delivery(s, m, 8, 1, DLV_QUEUED, 0,
						  true, NULL, 0), 0);
	msg_unref(m);
	ck_assert_uint_eq(s->inflight_count, 1);
	ck_assert_uint_eq(s->queued_count, 1);
	ck_assert_uint_eq(s->inflight->store_id, 7);
	ck_assert_uint_eq(s->last_packet_id, 40);
	s->conn = &conns[0];
	conns[0].session = s;
	session_resend_inflight(s);
	assert_pubrel(0, &conns[0], 40);
	session_pump(s);
	assert_publish(1, &conns[0], "t", 1, 41, false);
}
END_TEST

/* Acks in any order keep the list and its tail right and pump the queue. */
START_TEST(test_ack_pumps_next)
{
	struct session *s = online("c", &conns[0]);
	static const uint16_t a[] = { 1, 2 }, b[] = { 1, 3 }, c[] = { 3, 4 },
			      d[] = { 3 }, e[] = { 3, 5 };
	static const char *const q34[] = { "t3", "t4" }, *const q4[] = { "t4" };

	s->inflight_max = 2;
	deliver(s, "t1", 1, 1);
	deliver(s, "t2", 1, 2);
	deliver(s, "t3", 1, 1);
	deliver(s, "t4", 1, 2);
	assert_inflight(s, a, 2);
	assert_queue(s, q34, 2);
	ck_assert_uint_eq(nsent, 2);

	/* PUBREC keeps it in flight: the window stays full. */
	ck_assert(session_ack(s, 2, MQTT_PUBREC));
	ck_assert_uint_eq(nsent, 3);
	assert_pubrel(2, &conns[0], 2);
	assert_queue(s, q34, 2);

	/* The tail completes: t3 follows. */
	ck_assert(session_ack(s, 2, MQTT_PUBCOMP));
	ck_assert_uint_eq(nsent, 4);
	assert_publish(3, &conns[0], "t3", 1, 3, false);
	assert_inflight(s, b, 2);
	assert_queue(s, q4, 1);

	/* The head: t4 follows. */
	ck_assert(session_ack(s, 1, MQTT_PUBACK));
	ck_assert_uint_eq(nsent, 5);
	assert_publish(4, &conns[0], "t4", 2, 4, false);
	assert_inflight(s, c, 2);
	assert_queue(s, NULL, 0);

	/* The tail again, queue empty: nothing sent, tail moves back. */
	ck_assert(session_ack(s, 4, MQTT_PUBREC));
	ck_assert(session_ack(s, 4, MQTT_PUBCOMP));
	ck_assert_uint_eq(nsent, 6);
	assert_inflight(s, d, 1);
	deliver(s, "t5", 1, 1);
	assert_publish(6, &conns[0], "t5", 1, 5, false);
	assert_inflight(s, e, 2);
}
END_TEST

/* --------------------------------------------------------- queue limits */

struct limit_row {
	uint32_t max_msgs;
	uint64_t max_bytes;
	size_t payload;
	size_t n;
	size_t queued;
};

static const struct limit_row limit_rows[] = {
	{ 0, 0, 100, 50, 50 }, /* unlimited */
	{ 2, 0, 4, 5, 2 },
	{ 1, 0, 0, 3, 1 },
	{ 0, 10, 4, 5, 2 }, /* 12 > 10 */
	{ 0, 10, 5, 3, 2 }, /* exactly 10 fits */
	{ 0, 10, 11, 2, 0 }, /* one message over the limit alone */
	{ 0, 10, 0, 7, 7 }, /* empty payloads take no bytes */
	{ 3, 1000, 100, 20, 3 },
	{ 20, 250, 100, 20, 2 },
};

START_TEST(test_queue_limits)
{
	const struct limit_row *r = &limit_rows[_i];
	struct session *s = new_session("c");

	broker.limits.max_queued_messages = r->max_msgs;
	broker.limits.max_queued_bytes = r->max_bytes;
	for (size_t i = 0; i < r->n; i++)
		deliver(s, "t", r->payload, (uint8_t)(1 + i % 2));
	ck_assert_uint_eq(s->queued_count, r->queued);
	ck_assert_uint_eq(s->queued_bytes, r->queued * r->payload);
	ck_assert_uint_eq(shard.stats.publish_dropped, r->n - r->queued);
	ck_assert_uint_eq(nsent, 0);
}
END_TEST

/* The limits count what waits in the queue, not what is in flight. */
START_TEST(test_queue_limits_online)
{
	struct session *s = online("c", &conns[0]);
	static const uint16_t one[] = { 1 };
	static const char *const q[] = { "b" };

	broker.limits.max_queued_messages = 1;
	s->inflight_max = 1;
	deliver(s, "a", 1, 1);
	deliver(s, "b", 1, 1);
	deliver(s, "c", 1, 1);
	deliver(s, "d", 1, 0); /* QoS 0 behind a queue is queued: full too */
	assert_inflight(s, one, 1);
	assert_queue(s, q, 1);
	ck_assert_uint_eq(shard.stats.publish_dropped, 2);
	/* Room again after the ack. */
	ck_assert(session_ack(s, 1, MQTT_PUBACK));
	deliver(s, "e", 1, 1);
	ck_assert_uint_eq(s->queued_count, 1);
	ck_assert_uint_eq(shard.stats.publish_dropped, 2);
}
END_TEST

/* ------------------------------------------------------------- expiry */

struct expiry_row {
	bool expires;
	int64_t delta_ms; /* expiry_at - now, when it expires */
	uint8_t qos;
	bool online;
	bool delivered;
};

static const struct expiry_row expiry_rows[] = {
	{ false, 0, 0, true, true },
	{ false, 0, 1, false, true },
	{ true, -1, 0, true, false },
	{ true, -1, 1, true, false },
	{ true, -1, 2, false, false },
	{ true, -3600000, 1, true, false },
	{ true, 0, 1, true, false }, /* at expiry_at it has expired */
	{ true, 0, 2, false, false },
	{ true, 1, 0, true, true },
	{ true, 1, 1, true, true },
	{ true, 1, 2, false, true },
};

START_TEST(test_expired_not_delivered)
{
	const struct expiry_row *r = &expiry_rows[_i];
	struct session *s = r->online ? online("c", &conns[0]) :
					new_session("c");
	struct msg *m = mk("t", 1, r->qos);

	broker.limits.queue_qos0_messages = true;
	if (r->expires)
		m->expiry_at = (uint64_t)((int64_t)now_ms() + r->delta_ms);
	session_deliver(s, m, r->qos, false, NULL, 0, NULL);
	if (r->online)
		ck_assert_uint_eq(nsent, r->delivered ? 1 : 0);
	else
		ck_assert_uint_eq(s->queued_count, r->delivered ? 1 : 0);
	ck_assert_uint_eq(m->refs, r->delivered && r->qos ? 2 : 1);
	ck_assert_uint_eq(shard.stats.publish_dropped, 0);
	msg_unref(m);
}
END_TEST

/* Expiring while queued: dropped when its turn comes. */
START_TEST(test_expired_while_queued)
{
	struct session *s = new_session("c");
	static const uint16_t ids[] = { 1, 2 };
	struct msg *a = mk("a", 3, 1), *b = mk("b", 3, 1), *c = mk("c", 3, 2);

	a->expiry_at = now_ms() + 1000;
	c->expiry_at = now_ms() + 5000;
	session_deliver(s, a, 1, false, NULL, 0, NULL);
	session_deliver(s, b, 1, false, NULL, 0, NULL);
	session_deliver(s, c, 2, false, NULL, 0, NULL);
	ck_assert_uint_eq(s->queued_count, 3);
	fake_now += 2.0;
	s->conn = &conns[0];
	session_pump(s);
	ck_assert_uint_eq(nsent, 2);
	assert_publish(0, &conns[0], "b", 1, 1, false);
	assert_publish(1, &conns[0], "c", 2, 2, false);
	assert_inflight(s, ids, 2);
	assert_queue(s, NULL, 0);
	ck_assert_uint_eq(a->refs, 1);
	msg_unref(a);
	msg_unref(b);
	msg_unref(c);
}
END_TEST

/* ------------------------------------------------------------- resend */

START_TEST(test_resend_inflight)
{
	struct session *s = online("c", &conns[0]);
	static const char *const q[] = { "e" };
	uint32_t ids[] = { 3, 9 };
	struct msg *m;

	s->inflight_max = 4;
	deliver(s, "a", 1, 1); /* 1: SENT */
	deliver(s, "b", 1, 2); /* 2: RELEASED */
	m = mk("c", 1, 2); /* 3: SENT, retained, two sub ids */
	session_deliver(s, m, 2, true, ids, 2, NULL);
	msg_unref(m);
	deliver(s, "d", 1, 2); /* 4: RELEASED */
	deliver(s, "e", 1, 1); /* queued */
	ck_assert(session_ack(s, 2, MQTT_PUBREC));
	ck_assert(session_ack(s, 4, MQTT_PUBREC));
	/* A message in flight is resent even once expired [MQTT-4.3.3-7]. */
	s->inflight->msg->expiry_at = now_ms();

	/* Reconnect on another connection. */
	s->conn = &conns[1];
	nsent = 0;
	session_resend_inflight(s);
	ck_assert_uint_eq(nsent, 4);
	assert_publish(0, &conns[1], "a", 1, 1, true);
	assert_pubrel(1, &conns[1], 2);
	assert_publish(2, &conns[1], "c", 2, 3, true);
	ck_assert(sent[2].retain);
	ck_assert_uint_eq(sent[2].sub_id_count, 2);
	ck_assert_uint_eq(sent[2].sub_ids[0], 3);
	ck_assert_uint_eq(sent[2].sub_ids[1], 9);
	ck_assert(!sent[0].retain);
	assert_pubrel(3, &conns[1], 4);
	/* Nothing changed state; the queue waits for the pump. */
	ck_assert_uint_eq(s->inflight_count, 4);
	assert_queue(s, q, 1);

	/* Twice is the same again. */
	nsent = 0;
	session_resend_inflight(s);
	ck_assert_uint_eq(nsent, 4);
	assert_publish(0, &conns[1], "a", 1, 1, true);
	assert_pubrel(3, &conns[1], 4);
}
END_TEST

START_TEST(test_resend_nothing_in_flight)
{
	struct session *s = online("c", &conns[0]);

	session_resend_inflight(s);
	ck_assert_uint_eq(nsent, 0);
}
END_TEST

/* ------------------------------------------------------- incoming QoS 2 */

START_TEST(test_qos2_in_set)
{
	struct session *s = new_session("c");
	uint16_t id;

	ck_assert(!session_qos2_has(s, 1));
	ck_assert(!session_qos2_remove(s, 1));
	for (id = 1; id <= 100; id++) {
		ck_assert_int_eq(session_qos2_add(s, (uint16_t)(id * 600)), 0);
		ck_assert_uint_eq(s->qos2_in_count, id);
		ck_assert_uint_eq(s->qos2_in_cap,
				  id <= 8 ? 8 : id <= 16 ? 16 :
				  id <= 32 ? 32 : id <= 64 ? 64 : 128);
	}
	for (id = 1; id <= 100; id++)
		ck_assert(session_qos2_has(s, (uint16_t)(id * 600)));
	ck_assert(!session_qos2_has(s, 0));
	ck_assert(!session_qos2_has(s, 601));
	/* Remove the odd ones; the even ones stay. */
	for (id = 1; id <= 100; id += 2)
		ck_assert(session_qos2_remove(s, (uint16_t)(id * 600)));
	ck_assert_uint_eq(s->qos2_in_count, 50);
	for (id = 1; id <= 100; id++)
		ck_assert(session_qos2_has(s, (uint16_t)(id * 600)) ==
			  (id % 2 == 0));
	for (id = 1; id <= 100; id += 2)
		ck_assert(!session_qos2_remove(s, (uint16_t)(id * 600)));
	for (id = 2; id <= 100; id += 2)
		ck_assert(session_qos2_remove(s, (uint16_t)(id * 600)));
	ck_assert_uint_eq(s->qos2_in_count, 0);
	ck_assert(!session_qos2_has(s, 1200));
	/* The boundary ids. */
	ck_assert_int_eq(session_qos2_add(s, 65535), 0);
	ck_assert_int_eq(session_qos2_add(s, 1), 0);
	ck_assert(session_qos2_has(s, 65535));
	ck_assert(session_qos2_has(s, 1));
	ck_assert(session_qos2_remove(s, 65535));
	ck_assert(!session_qos2_has(s, 65535));
	ck_assert(session_qos2_has(s, 1));
}
END_TEST

/* ------------------------------------------------------- shared groups */

struct group_find {
	const char *want; /* group name */
	const char *found;
};

static void group_cb(void *arg, void *subscriber, const struct sub_opts *opts,
		     const char *shared_group)
{
	struct group_find *g = arg;

	(void)subscriber;
	(void)opts;
	if (shared_group && strcmp(shared_group, g->want) == 0)
		g->found = shared_group;
}

/*
 * The name pointer the tree hands route_match_cb for group name on topic.
 * Matching advances the group's rotation; the tests do not rely on it.
 */
static const char *group_of(const char *name, const char *topic)
{
	struct group_find g = { name, NULL };

	subtree_match(shard.subs, topic, strlen(topic), group_cb, &g);
	ck_assert_ptr_nonnull(g.found);
	return g.found;
}

static void subscribe(struct session *s, const char *filter, uint8_t qos,
		      uint32_t sub_id)
{
	struct sub_opts opts = { .qos = qos, .subscription_id = sub_id };
	size_t len = strlen(filter);

	ck_assert_int_eq(subtree_add(shard.subs, filter, len, s, &opts, NULL),
			 0);
	ck_assert_int_eq(session_add_sub(s, filter, len, &opts), 0);
}

static void deliver_shared(struct session *s, const char *topic, uint8_t qos,
			   const char *group)
{
	struct msg *m = mk(topic, 4, qos);

	session_deliver(s, m, qos, false, NULL, 0, group);
	msg_unref(m);
}

enum handover_case {
	HO_INFLIGHT, /* QoS 1 and 2 in flight, one queued: all go */
	HO_OTHER_OFFLINE, /* they wait in the other member's queue */
	HO_RELEASED, /* PUBREL sent: the receiver has it, nothing goes */
	HO_ALONE, /* no other member: nothing goes */
	HO_FORGOTTEN, /* session_forget_group first: nothing goes */
	HO_NOT_SHARED, /* an ordinary delivery: nothing goes */
};

struct handover_row {
	const char *name;
	enum handover_case c;
	size_t moved;
};

static const struct handover_row handover_rows[] = {
	{ "in flight", HO_INFLIGHT, 2 },
	{ "other offline", HO_OTHER_OFFLINE, 2 },
	{ "released", HO_RELEASED, 0 },
	{ "alone", HO_ALONE, 0 },
	{ "forgotten", HO_FORGOTTEN, 0 },
	{ "not shared", HO_NOT_SHARED, 0 },
};

START_TEST(test_shared_handover)
{
	const struct handover_row *r = &handover_rows[_i];
	struct session *s1 = online("s1", &conns[0]);
	struct session *s2 = r->c == HO_OTHER_OFFLINE ? new_session("s2") :
							online("s2", &conns[1]);
	const char *group;

	subscribe(s1, "$share/g/t", 2, 0);
	if (r->c != HO_ALONE)
		subscribe(s2, "$share/g/t", 1, 7);
	group = group_of("g", "t");
	if (r->c == HO_NOT_SHARED)
		group = NULL;
	s1->inflight_max = 2;
	deliver_shared(s1, "t/q1", 1, group);
	deliver_shared(s1, "t/q2", 2, group);
	deliver_shared(s1, "t/queued", 1, group);
	ck_assert_uint_eq(nsent, 2);
	ck_assert_uint_eq(s1->queued_count, 1);
	if (r->c == HO_RELEASED) {
		ck_assert(session_ack(s1, 2, MQTT_PUBREC));
		ck_assert(session_ack(s1, 1, MQTT_PUBACK)); /* t/queued out */
		ck_assert(session_ack(s1, 3, MQTT_PUBACK));
		ck_assert_uint_eq(s1->queued_count, 0);
	}
	if (r->c == HO_FORGOTTEN)
		session_forget_group(s1, group);
	nsent = 0;

	session_destroy(s1);
	ck_assert_ptr_null(session_find(&shard, "s1", 2));
	ck_assert_uint_eq(subtree_count(shard.subs), r->c == HO_ALONE ? 0 : 1);
	/*
	 * QoS 1 in flight and anything queued moves; the QoS 2 message
	 * already sent to s1 goes to no other member [MQTT-4.8.2-5].
	 */
	if (r->c == HO_OTHER_OFFLINE) {
		static const char *const q[] = { "t/q1", "t/queued" };

		ck_assert_uint_eq(nsent, 0);
		assert_queue(s2, q, 2);
	} else if (r->moved) {
		static const uint16_t ids[] = { 1, 2 };

		/* At min(published, other member's QoS), its sub id. */
		ck_assert_uint_eq(nsent, 2);
		assert_publish(0, &conns[1], "t/q1", 1, 1, false);
		assert_publish(1, &conns[1], "t/queued", 1, 2, false);
		for (size_t i = 0; i < 2; i++) {
			ck_assert_uint_eq(sent[i].sub_id_count, 1);
			ck_assert_uint_eq(sent[i].sub_ids[0], 7);
		}
		assert_inflight(s2, ids, 2);
	} else {
		ck_assert_uint_eq(nsent, 0);
		ck_assert_uint_eq(s2->inflight_count + s2->queued_count, 0);
	}
	/* Alone on this shard: q1 and queued go to another shard's member. */
	ck_assert_uint_eq(shared_posts, r->c == HO_ALONE ? 2 : 0);
	if (r->c == HO_ALONE)
		ck_assert_ptr_eq(shared_post_group, group);
	/* What moved still names the group, for a further hand-over. */
	for (const struct delivery *d = s2->inflight; d; d = d->next)
		ck_assert_ptr_eq(d->shared_group, group);
	for (const struct delivery *d = s2->queue; d; d = d->next)
		ck_assert_ptr_eq(d->shared_group, group);
	ck_assert_uint_eq(s2->inflight_count + s2->queued_count, r->moved);
}
END_TEST

/* QoS 0 keeps no group: it is never handed over. */
START_TEST(test_shared_qos0_keeps_no_group)
{
	struct session *s1 = new_session("s1");
	const char *group;

	broker.limits.queue_qos0_messages = true;
	subscribe(s1, "$share/g/t", 1, 0);
	group = group_of("g", "t");
	deliver_shared(s1, "t", 0, group);
	ck_assert_uint_eq(s1->queued_count, 1);
	ck_assert_ptr_null(s1->queue->shared_group);
}
END_TEST

/*
 * A parked will (MQTT 5 Will Delay) is dropped when the client comes back,
 * replaced by a newer one, and sent when the session ends first
 * [MQTT-3.1.3-9].
 */
START_TEST(test_parked_will)
{
	struct session *s = new_session("w");
	struct msg *a = msg_new("will/a", 6, (const uint8_t *)"x", 1, NULL, 0,
				1, false);
	struct msg *b = msg_new("will/b", 6, (const uint8_t *)"y", 1, NULL, 0,
				1, false);

	wills_sent = 0;
	session_park_will(s, a, fake_now + 5, 0);
	ck_assert_ptr_eq(s->will, a);
	session_cancel_will(s); /* reconnected in time: not sent */
	ck_assert_ptr_null(s->will);
	ck_assert_uint_eq(wills_sent, 0);
	session_park_will(s, b, fake_now + 5, 0);
	session_send_will(s); /* due */
	ck_assert_uint_eq(wills_sent, 1);
	ck_assert_ptr_null(s->will);
	b = msg_new("will/b", 6, (const uint8_t *)"y", 1, NULL, 0, 1, false);
	session_park_will(s, b, fake_now + 5, 0);
	session_destroy(s); /* the session ends before the delay */
	ck_assert_uint_eq(wills_sent, 2);
}
END_TEST

/* Forgetting group "g" leaves "gg" alone. */
START_TEST(test_forget_group_exact_name)
{
	struct session *s1 = online("s1", &conns[0]);
	struct session *s2 = online("s2", &conns[1]);
	const char *g, *gg;

	subscribe(s1, "$share/g/t", 1, 0);
	subscribe(s1, "$share/gg/t", 1, 0);
	subscribe(s2, "$share/g/t", 1, 0);
	subscribe(s2, "$share/gg/t", 1, 0);
	g = group_of("g", "t");
	gg = group_of("gg", "t");
	deliver_shared(s1, "via-g", 1, g);
	deliver_shared(s1, "via-gg", 1, gg);
	ck_assert_ptr_eq(subtree_group_of(shard.subs, "$share/g/t", 10), g);
	ck_assert_ptr_null(subtree_group_of(shard.subs, "$share/ggg/t", 12));
	session_forget_group(s1, g);
	ck_assert_ptr_null(s1->inflight->shared_group);
	ck_assert_ptr_eq(s1->inflight->next->shared_group, gg);

	nsent = 0;
	session_destroy(s1);
	ck_assert_uint_eq(nsent, 1);
	assert_publish(0, &conns[1], "via-gg", 1, 1, false);
}
END_TEST

/*
 * "$share/g/a" and "$share/g/b" are two shared subscriptions [MQTT-4.8.2]
 * that happen to share a name.  Unsubscribing the first (handle_unsubscribe
 * forgets that group, then removes the filter) must not stop the
 * messages received through the second from going to its other member
 * when the session ends [MQTT 5.0 section 4.8.2].
 */
START_TEST(test_forget_group_other_filter_kept)
{
	struct session *s1 = online("s1", &conns[0]);
	struct session *s2 = online("s2", &conns[1]);
	const char *ga, *gb;

	subscribe(s1, "$share/g/a", 1, 0);
	subscribe(s1, "$share/g/b", 1, 0);
	subscribe(s2, "$share/g/a", 1, 0);
	subscribe(s2, "$share/g/b", 1, 0);
	ga = group_of("g", "a");
	gb = group_of("g", "b");
	ck_assert_ptr_ne(ga, gb);
	deliver_shared(s1, "a", 1, ga);
	deliver_shared(s1, "b", 1, gb);

	/* UNSUBSCRIBE $share/g/a, as handle_unsubscribe does it. */
	ck_assert(session_remove_sub(s1, "$share/g/a", 10));
	session_forget_group(s1, subtree_group_of(shard.subs, "$share/g/a", 10));
	ck_assert_int_eq(subtree_remove(shard.subs, "$share/g/a", 10, s1), 0);

	nsent = 0;
	session_destroy(s1);
	ck_assert_uint_eq(nsent, 1);
	assert_publish(0, &conns[1], "b", 1, 1, false);
}
END_TEST

/* ------------------------------------------------------ out of memory */

/* session_new: the registry, the session, its id; nothing half made. */
START_TEST(test_oom_session_new)
{
	static const long budgets[] = { 0, 1 };
	struct session *s;
	char id[16];
	int n;

	/* The table fails; then (table kept) the session. */
	for (size_t i = 0; i < NELEM(budgets); i++) {
		alloc_budget = budgets[i];
		ck_assert_ptr_null(session_new(&shard, "c", 1));
		ck_assert_uint_eq(shard.session_count, 0);
		ck_assert_ptr_null(session_find(&shard, "c", 1));
		ck_assert_uint_eq(shard.session_buckets, i ? 1024 : 0);
	}
	alloc_budget = 1;
	ck_assert_ptr_nonnull(session_new(&shard, "c", 1));
	ck_assert_int_eq(alloc_budget, 0);
	alloc_budget = -1;

	/* The 2049th session needs a bigger table: failing keeps the old. */
	for (size_t i = 1; i < 2048; i++) {
		n = snprintf(id, sizeof(id), "s%zu", i);
		ck_assert_ptr_nonnull(session_new(&shard, id, (size_t)n));
	}
	ck_assert_uint_eq(shard.session_buckets, 1024);
	alloc_budget = 0;
	ck_assert_ptr_null(session_new(&shard, "last", 4));
	ck_assert_uint_eq(shard.session_count, 2048);
	ck_assert_uint_eq(shard.session_buckets, 1024);
	alloc_budget = -1;
	for (size_t i = 1; i < 2048; i++) {
		n = snprintf(id, sizeof(id), "s%zu", i);
		ck_assert_ptr_nonnull(session_find(&shard, id, (size_t)n));
	}
	s = session_new(&shard, "last", 4);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(shard.session_buckets, 2048);
}
END_TEST

START_TEST(test_oom_add_sub)
{
	struct session *s = new_session("c");

	ck_assert_int_eq(add_sub(s, "a", 1, 1), 0);
	alloc_budget = 0;
	ck_assert_int_eq(add_sub(s, "b", 1, 1), -ENOMEM);
	ck_assert_uint_eq(s->sub_count, 1);
	ck_assert_ptr_null(sub_of(s, "b"));
	/* An update allocates nothing. */
	ck_assert_int_eq(add_sub(s, "a", 1, 2), 0);
	ck_assert_uint_eq(sub_of(s, "a")->qos, 2);
}
END_TEST

START_TEST(test_oom_deliver)
{
	struct session *s = online("c", &conns[0]);
	struct msg *m = mk("t", 1, 2);

	alloc_budget = 0;
	session_deliver(s, m, 2, false, NULL, 0, NULL);
	session_deliver(s, m, 0, false, NULL, 0, NULL); /* needs nothing */
	alloc_budget = -1;
	ck_assert_uint_eq(shard.stats.publish_dropped, 1);
	ck_assert_uint_eq(nsent, 1);
	assert_publish(0, &conns[0], "t", 0, 0, false);
	assert_inflight(s, NULL, 0);
	assert_queue(s, NULL, 0);
	ck_assert_uint_eq(m->refs, 1);
	msg_unref(m);
}
END_TEST

START_TEST(test_oom_qos2_add)
{
	struct session *s = new_session("c");

	alloc_budget = 0;
	ck_assert_int_eq(session_qos2_add(s, 1), -ENOMEM);
	ck_assert_uint_eq(s->qos2_in_count, 0);
	ck_assert(!session_qos2_has(s, 1));
	alloc_budget = 1;
	for (uint16_t id = 1; id <= 8; id++)
		ck_assert_int_eq(session_qos2_add(s, id), 0);
	ck_assert_int_eq(session_qos2_add(s, 9), -ENOMEM); /* growing */
	ck_assert_uint_eq(s->qos2_in_count, 8);
	ck_assert_uint_eq(s->qos2_in_cap, 8);
	ck_assert(!session_qos2_has(s, 9));
	for (uint16_t id = 1; id <= 8; id++)
		ck_assert(session_qos2_has(s, id));
}
END_TEST

/* --------------------------------------------------------------- suite */

/*
 * Deliveries with at most one subscription identifier come from the
 * shard's free list and go back to it; those with more do not.
 */
START_TEST(test_deliveries_from_shard_list)
{
	struct session *a = session_new(&shard, "a", 1);
	struct session *b;
	struct msg *m = mk("t", 4, 1);
	const uint32_t ids[2] = { 7, 9 };
	struct delivery *first;

	ck_assert_ptr_nonnull(a);
	session_deliver(a, m, 1, false, &ids[0], 1, NULL);
	ck_assert_uint_eq(a->queued_count, 1);
	first = a->queue;
	ck_assert_uint_eq(shard.deliveries.count, 0);
	session_destroy(a);
	ck_assert_uint_eq(shard.deliveries.count, 1);

	b = session_new(&shard, "b", 1);
	ck_assert_ptr_nonnull(b);
	session_deliver(b, m, 1, false, ids, 2, NULL);
	ck_assert_ptr_ne(b->queue, first); /* too big for the list */
	ck_assert_uint_eq(shard.deliveries.count, 1);
	ck_assert_uint_eq(b->queue->sub_ids[1], 9);
	session_deliver(b, m, 1, false, NULL, 0, NULL);
	ck_assert_ptr_eq(b->queue_tail, first);
	ck_assert_uint_eq(shard.deliveries.count, 0);
	session_destroy(b);
	ck_assert_uint_eq(shard.deliveries.count, 1);
	msg_unref(m);
}
END_TEST

static Suite *session_suite(void)
{
	Suite *s = suite_create("session");
	TCase *tc = tcase_create("session"), *tl;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_find_in_empty_registry);
	tcase_add_test(tc, test_deliveries_from_shard_list);
	tcase_add_test(tc, test_registry_ids);
	tcase_add_test(tc, test_registry_growth);
	tcase_add_test(tc, test_subs_add_update_remove);
	tcase_add_test(tc, test_destroy_unsubscribes);
	tcase_add_test(tc, test_destroy_drops_messages);
	tcase_add_test(tc, test_qos0_online_goes_out);
	tcase_add_loop_test(tc, test_qos0_soft_limit, 0, NELEM(pending_rows));
	tcase_add_loop_test(tc, test_qos0_offline, 0,
			    NELEM(offline_qos0_rows));
	tcase_add_test(tc, test_qos0_keeps_order_behind_queue);
	tcase_add_loop_test(tc, test_window, 0, NELEM(window_rows));
	tcase_add_test(tc, test_offline_then_pump);
	tcase_add_test(tc, test_refused_publish_dropped);
	tcase_add_loop_test(tc, test_packet_ids, 0, NELEM(pid_rows));
	tcase_add_loop_test(tc, test_ack, 0, NELEM(ack_rows));
	tcase_add_test(tc, test_ack_pumps_next);
	tcase_add_test(tc, test_persist_follows_delivery);
	tcase_add_test(tc, test_restore_delivery);
	tcase_add_loop_test(tc, test_queue_limits, 0, NELEM(limit_rows));
	tcase_add_test(tc, test_queue_limits_online);
	tcase_add_loop_test(tc, test_expired_not_delivered, 0,
			    NELEM(expiry_rows));
	tcase_add_test(tc, test_expired_while_queued);
	tcase_add_test(tc, test_resend_inflight);
	tcase_add_test(tc, test_resend_nothing_in_flight);
	tcase_add_test(tc, test_qos2_in_set);
	tcase_add_loop_test(tc, test_shared_handover, 0,
			    NELEM(handover_rows));
	tcase_add_test(tc, test_shared_qos0_keeps_no_group);
	tcase_add_test(tc, test_forget_group_exact_name);
	tcase_add_test(tc, test_parked_will);
	tcase_add_test(tc, test_forget_group_other_filter_kept);
	tcase_add_test(tc, test_oom_session_new);
	tcase_add_test(tc, test_oom_add_sub);
	tcase_add_test(tc, test_oom_deliver);
	tcase_add_test(tc, test_oom_qos2_add);
	suite_add_tcase(s, tc);
	/* Long: 140,000 messages, slow under the sanitizers. */
	tl = tcase_create("packet id wrap");
	tcase_add_checked_fixture(tl, setup, teardown);
	tcase_set_timeout(tl, 120);
	tcase_add_test(tl, test_packet_ids_window_wraps);
	suite_add_tcase(s, tl);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(session_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
