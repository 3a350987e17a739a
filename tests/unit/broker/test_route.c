/*
 * Unit tests for broker/route.c: overlapping subscriptions of one session
 * folded into one delivery at the highest QoS granted (capped at the
 * message's) with every subscription identifier, No Local, the retain
 * flag as published or cleared, shared groups delivered apart, the count
 * route_message() returns, and the retained store kept up to date.
 *
 * route.c is included; session_deliver() is a fake recording each call,
 * and the subscription tree, retained store and messages are the real
 * ones, linked from libcicada_broker.a.  Sessions are plain structs: the
 * router only uses their match_* scratch fields.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/route.c"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ----------------------------------------------------------------- seam */

struct call {
	struct session *s;
	struct msg *msg;
	uint8_t qos;
	bool retain;
	uint8_t sub_id_count;
	uint32_t sub_ids[16];
	char group[16]; /* "" when not through a shared group */
};

#define MAX_CALLS 32
static struct call calls[MAX_CALLS];
static size_t ncalls;

/* route_will() reads the clock; a fixed one keeps shard.c out of the link. */
double shard_now(struct shard *sh)
{
	(void)sh;
	return 1000.0;
}

/* What storage was told of the retained store: the last change. */
static struct {
	unsigned calls;
	const struct msg *old, *msg;
} persisted;

void persist_retain(struct broker *b, struct msg *old, struct msg *msg)
{
	(void)b;
	persisted.calls++;
	persisted.old = old;
	persisted.msg = msg;
}

void session_deliver(struct session *s, struct msg *msg, uint8_t qos,
		     bool retain, const uint32_t *sub_ids, uint8_t sub_id_count,
		     const char *shared_group)
{
	struct call *c;

	ck_assert_uint_lt(ncalls, MAX_CALLS);
	c = &calls[ncalls++];
	memset(c, 0, sizeof(*c));
	c->s = s;
	c->msg = msg;
	c->qos = qos;
	c->retain = retain;
	ck_assert_uint_le(sub_id_count, NELEM(c->sub_ids));
	ck_assert(sub_id_count == 0 || sub_ids != NULL);
	c->sub_id_count = sub_id_count;
	if (sub_id_count)
		memcpy(c->sub_ids, sub_ids, sub_id_count * sizeof(*sub_ids));
	if (shared_group) {
		ck_assert_uint_lt(strlen(shared_group), sizeof(c->group));
		strcpy(c->group, shared_group);
	}
}

/* -------------------------------------------------------------- fixture */

static struct broker broker;
static struct shard shard;
static struct session sess[3]; /* A, B, C */
#define A (&sess[0])
#define B (&sess[1])
#define C (&sess[2])

static void setup(void)
{
	memset(&broker, 0, sizeof(broker));
	memset(&shard, 0, sizeof(shard));
	memset(sess, 0, sizeof(sess));
	broker.shard = &shard;
	shard.broker = &broker;
	shard.subs = subtree_new();
	broker.retain = retain_new();
	ck_assert_ptr_nonnull(shard.subs);
	ck_assert_ptr_nonnull(broker.retain);
	memset(&persisted, 0, sizeof(persisted));
	ncalls = 0;
}

static void teardown(void)
{
	subtree_free(shard.subs);
	retain_free(broker.retain);
}

/* ------------------------------------------------------------- helpers */

struct sub_row {
	struct session *s;
	const char *filter;
	uint8_t qos;
	uint32_t id;
	bool no_local;
	bool rap; /* Retain As Published */
};

static void subscribe(const struct sub_row *r)
{
	struct sub_opts o = {
		.qos = r->qos,
		.no_local = r->no_local,
		.retain_as_published = r->rap,
		.subscription_id = r->id,
	};

	ck_assert_int_eq(subtree_add(shard.subs, r->filter, strlen(r->filter),
				     r->s, &o, NULL), 0);
}

static struct msg *mk(const char *topic, const char *payload, uint8_t qos,
		      bool retain, const void *origin)
{
	struct msg *m = msg_new(topic, strlen(topic), (const uint8_t *)payload,
				strlen(payload), NULL, 0, qos, retain);

	ck_assert_ptr_nonnull(m);
	m->origin = origin;
	return m;
}

/* Route a fresh message, keep nothing of it. */
static size_t route(const char *topic, uint8_t qos, bool retain,
		    const void *origin)
{
	struct msg *m = mk(topic, "x", qos, retain, origin);
	size_t n = route_message(&shard, m);

	ck_assert_uint_eq(m->refs, retain ? 2 : 1); /* + the store's */
	msg_unref(m);
	return n;
}

static const struct call *call_of(const struct session *s, const char *group)
{
	const struct call *found = NULL;

	for (size_t i = 0; i < ncalls; i++) {
		if (calls[i].s == s && strcmp(calls[i].group, group) == 0) {
			ck_assert_msg(!found, "two deliveries to one session");
			found = &calls[i];
		}
	}
	return found;
}

/* The ids of c, in any order, are exactly ids[0..n). */
static void assert_ids(const struct call *c, const uint32_t *ids, size_t n)
{
	bool seen[16] = { false };

	ck_assert_uint_eq(c->sub_id_count, n);
	for (size_t i = 0; i < n; i++) {
		size_t j;

		for (j = 0; j < c->sub_id_count; j++)
			if (c->sub_ids[j] == ids[i] && !seen[j])
				break;
		ck_assert_msg(j < c->sub_id_count, "id %u missing", ids[i]);
		seen[j] = true;
	}
}

/* ------------------------------------------- folding, one session (A) */

struct fold_row {
	const char *name;
	struct sub_row sub[5];
	const char *topic;
	uint8_t msg_qos;
	bool msg_retain;
	bool from_a; /* published by A itself */
	bool delivered;
	uint8_t qos;
	bool retain;
	uint32_t ids[5];
	size_t nids;
};

#define S(f, q, i, nl, rap) { A, f, q, i, nl, rap }

static const struct fold_row fold_rows[] = {
	{ "granted below published", { S("a/b", 1, 0, 0, 0) }, "a/b", 2, 0,
	  0, true, 1, false, { 0 }, 0 },
	{ "published below granted", { S("a/b", 2, 0, 0, 0) }, "a/b", 1, 0,
	  0, true, 1, false, { 0 }, 0 },
	{ "qos 0 published", { S("a/#", 2, 5, 0, 0) }, "a/b", 0, 0, 0, true,
	  0, false, { 5 }, 1 },
	{ "overlap: highest qos, every id",
	  { S("a/b", 0, 1, 0, 0), S("a/+", 2, 2, 0, 0), S("#", 1, 3, 0, 0) },
	  "a/b", 2, 0, 0, true, 2, false, { 1, 2, 3 }, 3 },
	{ "overlap capped at message qos",
	  { S("a/b", 0, 1, 0, 0), S("a/+", 2, 2, 0, 0), S("#", 1, 3, 0, 0) },
	  "a/b", 1, 0, 0, true, 1, false, { 1, 2, 3 }, 3 },
	{ "overlap, highest first",
	  { S("+/+", 2, 0, 0, 0), S("a/b", 0, 0, 0, 0) }, "a/b", 2, 0, 0,
	  true, 2, false, { 0 }, 0 },
	{ "overlap, some without id",
	  { S("a/b", 1, 0, 0, 0), S("a/#", 0, 9, 0, 0), S("+/b", 0, 0, 0, 0) },
	  "a/b", 2, 0, 0, true, 1, false, { 9 }, 1 },
	{ "overlap, same id twice",
	  { S("a/b", 1, 4, 0, 0), S("a/#", 1, 4, 0, 0) }, "a/b", 1, 0, 0,
	  true, 1, false, { 4, 4 }, 2 },
	{ "largest id", { S("a/b", 1, 268435455, 0, 0) }, "a/b", 1, 0, 0,
	  true, 1, false, { 268435455 }, 1 },
	{ "no match", { S("a/c", 2, 1, 0, 0), S("a/b/+", 2, 1, 0, 0) }, "a/b",
	  2, 0, 0, false, 0, false, { 0 }, 0 },
	/* [MQTT-3.8.3-3] */
	{ "no local, own message", { S("a/b", 1, 1, 1, 0) }, "a/b", 1, 0, 1,
	  false, 0, false, { 0 }, 0 },
	{ "no local, other's message", { S("a/b", 1, 1, 1, 0) }, "a/b", 1, 0,
	  0, true, 1, false, { 1 }, 1 },
	{ "no local on one of two",
	  { S("a/b", 2, 1, 1, 0), S("a/#", 1, 2, 0, 0) }, "a/b", 2, 0, 1,
	  true, 1, false, { 2 }, 1 },
	{ "no local on both", { S("a/b", 2, 1, 1, 0), S("a/#", 1, 2, 1, 0) },
	  "a/b", 2, 0, 1, false, 0, false, { 0 }, 0 },
	/* [MQTT-3.3.1-12] and 3.1.1 [MQTT-3.3.1-9] */
	{ "retain cleared", { S("a/b", 1, 0, 0, 0) }, "a/b", 1, 1, 0, true, 1,
	  false, { 0 }, 0 },
	{ "retain as published", { S("a/b", 1, 0, 0, 1) }, "a/b", 1, 1, 0,
	  true, 1, true, { 0 }, 0 },
	{ "retain as published, not retained", { S("a/b", 1, 0, 0, 1) },
	  "a/b", 1, 0, 0, true, 1, false, { 0 }, 0 },
	{ "retain as published on one of two",
	  { S("a/b", 1, 0, 0, 0), S("a/#", 1, 0, 0, 1) }, "a/b", 1, 1, 0,
	  true, 1, true, { 0 }, 0 },
	{ "retain as published on the no-local one",
	  { S("a/b", 1, 0, 0, 0), S("a/#", 1, 0, 1, 1) }, "a/b", 1, 1, 1,
	  true, 1, false, { 0 }, 0 },
	/* '$' topics: only filters naming the first level match */
	{ "dollar topic", { S("#", 1, 1, 0, 0), S("$SYS/#", 0, 2, 0, 0) },
	  "$SYS/x", 1, 0, 0, true, 0, false, { 2 }, 1 },
};

START_TEST(test_fold)
{
	const struct fold_row *r = &fold_rows[_i];
	size_t n, i;

	for (i = 0; i < NELEM(r->sub) && r->sub[i].filter; i++)
		subscribe(&r->sub[i]);
	n = route(r->topic, r->msg_qos, r->msg_retain, r->from_a ? A : B);
	ck_assert_msg(n == (r->delivered ? 1 : 0), "%s: reached %zu",
		      r->name, n);
	ck_assert_uint_eq(ncalls, n);
	if (!r->delivered)
		return;
	ck_assert_ptr_eq(calls[0].s, A);
	ck_assert_msg(calls[0].qos == r->qos, "%s: qos %u", r->name,
		      calls[0].qos);
	ck_assert_msg(calls[0].retain == r->retain, "%s: retain", r->name);
	ck_assert_str_eq(calls[0].group, "");
	assert_ids(&calls[0], r->ids, r->nids);
	ck_assert_ptr_null(A->match_next); /* the scratch list is undone */
}
END_TEST

/*
 * Every matching subscription's identifier reaches the client: one copy
 * carries as many as the fold holds (eight) [MQTT-3.3.4-4], each one past
 * that comes in a copy of its own [MQTT-3.3.4-5]; none is dropped.  Ten
 * filters match "a/b".
 */
START_TEST(test_fold_many_ids)
{
	static const char *const filters[] = {
		"a/b", "a/+", "+/b", "+/+", "#",
		"a/#", "+/#", "a/b/#", "+/b/#", "a/+/#",
	};
	uint32_t ids[NELEM(filters)];

	for (size_t i = 0; i < NELEM(filters); i++) {
		struct sub_row r = { A, filters[i], 1, (uint32_t)(100 + i),
				     false, false };

		subscribe(&r);
		ids[i] = (uint32_t)(100 + i);
	}
	bool seen[NELEM(filters)] = { false };

	size_t copies = 1 + NELEM(filters) - SESSION_MATCH_IDS, total = 0;

	/* One delivery folds SESSION_MATCH_IDS ids, each other one a copy. */
	ck_assert_uint_eq(route("a/b", 1, false, NULL), copies);
	ck_assert_uint_eq(ncalls, copies);
	for (size_t c = 0; c < ncalls; c++)
		total += calls[c].sub_id_count;
	ck_assert_uint_eq(total, NELEM(ids));
	for (size_t c = 0; c < ncalls; c++) {
		ck_assert_ptr_eq(calls[c].s, A);
		ck_assert_uint_eq(calls[c].qos, 1);
		for (size_t j = 0; j < calls[c].sub_id_count; j++) {
			uint32_t id = calls[c].sub_ids[j];

			ck_assert(id >= 100 && id < 100 + NELEM(filters));
			ck_assert(!seen[id - 100]);
			seen[id - 100] = true;
		}
	}
	(void)ids;
}
END_TEST

/* Several sessions, interleaved in the tree, each folded on its own. */
START_TEST(test_fold_per_session)
{
	static const struct sub_row subs[] = {
		{ A, "x/#", 0, 1, false, false },
		{ B, "x/#", 2, 2, false, true },
		{ C, "x/y", 1, 0, false, false },
		{ A, "x/y", 2, 3, false, false },
		{ B, "+/y", 0, 4, false, false },
		{ C, "+/+", 0, 5, false, false },
	};
	static const uint32_t a_ids[] = { 1, 3 }, b_ids[] = { 2, 4 },
			      c_ids[] = { 5 };
	const struct call *c;

	for (size_t i = 0; i < NELEM(subs); i++)
		subscribe(&subs[i]);
	ck_assert_uint_eq(route("x/y", 2, true, NULL), 3);
	ck_assert_uint_eq(ncalls, 3);
	c = call_of(A, "");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 2);
	ck_assert(!c->retain);
	assert_ids(c, a_ids, 2);
	c = call_of(B, "");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 2);
	ck_assert(c->retain);
	assert_ids(c, b_ids, 2);
	c = call_of(C, "");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 1);
	ck_assert(!c->retain);
	assert_ids(c, c_ids, 1);

	/* Routing again starts afresh: nothing carried over. */
	ncalls = 0;
	ck_assert_uint_eq(route("x/z", 1, false, NULL), 3);
	c = call_of(A, "");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 0);
	assert_ids(c, a_ids, 1);
	c = call_of(B, "");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 1);
	ck_assert(!c->retain);
	assert_ids(c, b_ids, 1);
	c = call_of(C, "");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 0);
	assert_ids(c, c_ids, 1);
	for (size_t i = 0; i < NELEM(sess); i++)
		ck_assert_ptr_null(sess[i].match_next);
}
END_TEST

/* ------------------------------------------------------- shared groups */

START_TEST(test_shared_separate)
{
	static const struct sub_row subs[] = {
		{ A, "$share/g/s/+", 1, 11, false, true },
		{ B, "$share/g/s/+", 2, 12, false, false },
		{ A, "s/#", 0, 13, false, false },
		{ C, "$share/h/s/t", 2, 0, false, false },
	};
	static const uint32_t id11[] = { 11 }, id12[] = { 12 }, id13[] = { 13 };
	const struct call *c;

	for (size_t i = 0; i < NELEM(subs); i++)
		subscribe(&subs[i]);

	/* A's ordinary delivery, g's pick (A, first to join), h's only. */
	ck_assert_uint_eq(route("s/t", 2, true, NULL), 3);
	ck_assert_uint_eq(ncalls, 3);
	c = call_of(A, "");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 0);
	ck_assert(!c->retain);
	assert_ids(c, id13, 1);
	c = call_of(A, "g");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 1);
	ck_assert(c->retain); /* A's g subscription is retain as published */
	assert_ids(c, id11, 1);
	c = call_of(C, "h");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 2);
	ck_assert(!c->retain);
	assert_ids(c, NULL, 0);

	/* Next message: g's turn passes to B. */
	ncalls = 0;
	ck_assert_uint_eq(route("s/t", 1, true, NULL), 3);
	c = call_of(B, "g");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 1);
	ck_assert(!c->retain);
	assert_ids(c, id12, 1);
	ck_assert_ptr_null(call_of(A, "g"));
	ck_assert_ptr_nonnull(call_of(A, ""));
	ck_assert_ptr_nonnull(call_of(C, "h"));

	/* A topic only g matches. */
	ncalls = 0;
	ck_assert_uint_eq(route("s/u", 0, false, NULL), 2);
	c = call_of(A, "g");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 0);
	ck_assert_ptr_nonnull(call_of(A, ""));
}
END_TEST

/* One session in two groups on the same filter: a copy from each. */
START_TEST(test_shared_two_groups)
{
	static const struct sub_row subs[] = {
		{ A, "$share/g1/t", 1, 1, false, false },
		{ A, "$share/g2/t", 2, 2, false, false },
	};

	for (size_t i = 0; i < NELEM(subs); i++)
		subscribe(&subs[i]);
	ck_assert_uint_eq(route("t", 2, false, NULL), 2);
	ck_assert_uint_eq(call_of(A, "g1")->qos, 1);
	ck_assert_uint_eq(call_of(A, "g2")->qos, 2);
	ck_assert_uint_eq(call_of(A, "g1")->sub_ids[0], 1);
	ck_assert_uint_eq(call_of(A, "g2")->sub_ids[0], 2);
}
END_TEST

/* ------------------------------------------------------------ counting */

START_TEST(test_reached_count)
{
	static const struct sub_row subs[] = {
		{ A, "c/#", 1, 0, false, false },
		{ A, "c/+", 1, 0, false, false },
		{ B, "c/d", 1, 0, false, false },
		{ C, "$share/g/c/d", 1, 0, false, false },
		{ C, "$share/h/c/d", 1, 0, false, false },
	};

	ck_assert_uint_eq(route("c/d", 1, false, NULL), 0);
	ck_assert_uint_eq(ncalls, 0);
	for (size_t i = 0; i < NELEM(subs); i++)
		subscribe(&subs[i]);
	ck_assert_uint_eq(route("c/d", 1, false, NULL), 4);
	ck_assert_uint_eq(ncalls, 4);
	ck_assert_uint_eq(route("c/e", 1, false, NULL), 1);
	ck_assert_uint_eq(route("c", 1, false, NULL), 1); /* c/# */
	ck_assert_uint_eq(route("d", 1, false, NULL), 0);
	ck_assert_uint_eq(route("c/d/e", 1, false, NULL), 1);
}
END_TEST

/* ---------------------------------------------------------- retaining */

struct retained {
	size_t n;
	struct msg *msg;
};

static void retained_cb(void *arg, struct msg *msg)
{
	struct retained *r = arg;

	r->n++;
	r->msg = msg;
}

static struct retained retained_on(const char *filter)
{
	struct retained r = { 0, NULL };

	retain_match(broker.retain, filter, strlen(filter), 0, retained_cb,
		     &r);
	return r;
}

START_TEST(test_retained_store)
{
	struct sub_row sub = { A, "r/#", 1, 0, false, false };
	struct msg *m1, *m2, *plain, *clear;

	subscribe(&sub);

	/* Kept even with no subscriber. */
	m1 = mk("q", "one", 1, true, NULL);
	ck_assert_uint_eq(route_message(&shard, m1), 0);
	ck_assert_uint_eq(retain_count(broker.retain), 1);
	ck_assert_ptr_eq(retained_on("q").msg, m1);
	ck_assert_uint_eq(m1->refs, 2);
	ck_assert_uint_eq(persisted.calls, 1);
	ck_assert_ptr_null(persisted.old);
	ck_assert_ptr_eq(persisted.msg, m1);

	/* Replaced by the next retained message on the topic. */
	m2 = mk("q", "two", 0, true, NULL);
	ck_assert_uint_eq(route_message(&shard, m2), 0);
	ck_assert_uint_eq(retain_count(broker.retain), 1);
	ck_assert_ptr_eq(retained_on("q").msg, m2);
	ck_assert_uint_eq(m1->refs, 1);
	/* Storage hears which message the new one replaced. */
	ck_assert_uint_eq(persisted.calls, 2);
	ck_assert_ptr_eq(persisted.old, m1);
	ck_assert_ptr_eq(persisted.msg, m2);

	/* Not retained: the store is left alone. */
	plain = mk("q", "three", 1, false, NULL);
	ck_assert_uint_eq(route_message(&shard, plain), 0);
	ck_assert_ptr_eq(retained_on("q").msg, m2);
	ck_assert_uint_eq(plain->refs, 1);
	ck_assert_uint_eq(persisted.calls, 2);

	/* Delivered and kept at once. */
	ck_assert_uint_eq(route("r/1", 1, true, NULL), 1);
	ck_assert_uint_eq(retain_count(broker.retain), 2);
	ck_assert(!calls[0].retain); /* cleared for the subscriber */

	/* An empty retained payload clears the topic, and is delivered. */
	clear = mk("q", "", 1, true, NULL);
	ck_assert_uint_eq(route_message(&shard, clear), 0);
	ck_assert_uint_eq(retained_on("q").n, 0);
	ck_assert_uint_eq(retain_count(broker.retain), 1);
	ck_assert_uint_eq(clear->refs, 1);
	ck_assert_uint_eq(m2->refs, 1);
	ck_assert_ptr_eq(persisted.old, m2);
	ck_assert_ptr_eq(persisted.msg, clear);
	msg_unref(clear);
	clear = mk("r/1", "", 2, true, NULL);
	ncalls = 0;
	ck_assert_uint_eq(route_message(&shard, clear), 1);
	ck_assert_uint_eq(retain_count(broker.retain), 0);
	ck_assert_ptr_eq(calls[0].msg, clear);

	msg_unref(m1);
	msg_unref(m2);
	msg_unref(plain);
	msg_unref(clear);
}
END_TEST

/* --------------------------------------------------------------- suite */

static Suite *route_suite(void)
{
	Suite *s = suite_create("route");
	TCase *tc = tcase_create("route");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_fold, 0, NELEM(fold_rows));
	tcase_add_test(tc, test_fold_many_ids);
	tcase_add_test(tc, test_fold_per_session);
	tcase_add_test(tc, test_shared_separate);
	tcase_add_test(tc, test_shared_two_groups);
	tcase_add_test(tc, test_reached_count);
	tcase_add_test(tc, test_retained_store);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(route_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
