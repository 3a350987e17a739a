/*
 * Unit tests for broker/route.c: overlapping subscriptions of one session
 * folded into one delivery at the highest QoS granted (capped at the
 * message's) with every subscription identifier, No Local, the retain
 * flag as published or cleared, shared groups delivered apart, the count
 * route_message() returns, and the retained store kept up to date.  With
 * two or three shards: what is posted to which shard (only those whose
 * interest index has the topic's slot, its first level's slot or a filter
 * starting with a wildcard, every one when the publisher waits for
 * confirmation), delivery there by route_local(), the
 * share key numbered by the publishing shard, a shared group with members
 * on two shards delivered once per message, and route_confirm().
 *
 * route.c is included; session_deliver(), shard_post_route() (the posts
 * are kept for the test to hand to route_local()), the persist_* calls
 * and ev_async_send() are fakes recording each call, shard_interest_slot()
 * and shard_interest_first_slot() are copies of shard.c's (shard.c is not
 * linked), and the subscription
 * tree, retained store, $share registry and messages are the real ones,
 * linked from libcicada_broker.a.  Sessions are plain structs the router
 * only compares: what it folds for one message is kept in the shard's
 * route scratch, whose growth, out-of-memory fallback and stamps are
 * tested here too (route.c's calloc is wrapped to fail on demand).
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Allocations route.c may still make; negative: no limit. */
static long alloc_budget = -1;

static void *test_calloc(size_t n, size_t size)
{
	if (alloc_budget == 0)
		return NULL;
	if (alloc_budget > 0)
		alloc_budget--;
	return calloc(n, size);
}

#define calloc test_calloc
#include "broker/route.c"
#undef calloc

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

/*
 * shard.c stays out of the link (its shard_now and shard_post_route are
 * faked below, and it would bring the connections and libev with it), so
 * the interest slots route_message() asks for are given here: the same
 * FNV-1a as shard.c's, from the same bases, which test_shard.c checks, so
 * that topics whose slots differ here differ in the broker too.
 */
static unsigned fnv_slot(uint32_t h, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	return (h ^ (h >> 16)) & (SHARD_INTEREST_SLOTS - 1);
}

unsigned shard_interest_slot(const char *topic, size_t len)
{
	return fnv_slot(2166136261u, topic, len);
}

unsigned shard_interest_first_slot(const char *topic, size_t len)
{
	const char *slash = memchr(topic, '/', len);

	return fnv_slot(0x9e3779b9u, topic,
			slash ? (size_t)(slash - topic) : len);
}

/* route_will() reads the clock; a fixed one keeps shard.c out of the link. */
double shard_now(struct shard *sh)
{
	(void)sh;
	return 1000.0;
}

/*
 * What route_message() posted to other shards: one reference of the
 * message each, which the test gives back (posts_drop).
 */
struct post {
	unsigned from, to;
	struct msg *msg;
};

#define MAX_POSTS 16
static struct post posts[MAX_POSTS];
static size_t nposts;

void shard_post_route(struct shard *sh, unsigned to, struct msg *msg)
{
	ck_assert_uint_lt(nposts, MAX_POSTS);
	ck_assert_uint_ne(sh->index, to);
	ck_assert_uint_lt(to, sh->broker->shard_count);
	posts[nposts].from = sh->index;
	posts[nposts].to = to;
	posts[nposts].msg = msg;
	nposts++;
}

/* Storage as route_confirm() sees it. */
static uint64_t fake_hold_seq;
static unsigned group_ends;

uint64_t persist_hold_seq(const struct broker *b)
{
	(void)b;
	return fake_hold_seq;
}

void persist_group_end(struct broker *b)
{
	(void)b;
	group_ends++;
}

/*
 * route_confirm() wakes the publisher's shard; libev is not linked, this
 * records the wake-ups instead.
 */
#define MAX_WAKES 8
static struct {
	struct ev_loop *loop;
	ev_async *w;
} wakes[MAX_WAKES];
static size_t nwakes;

void ev_async_send(struct ev_loop *loop, ev_async *w)
{
	ck_assert_uint_lt(nwakes, MAX_WAKES);
	wakes[nwakes].loop = loop;
	wakes[nwakes].w = w;
	nwakes++;
}

/* Give back the references the posts hold. */
static void posts_drop(void)
{
	for (size_t i = 0; i < nposts; i++)
		msg_unref(posts[i].msg);
	nposts = 0;
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

/*
 * Sessions by the thousand (many[0..nmany)): their deliveries are tallied
 * per session instead of recorded in calls[].
 */
struct tally {
	unsigned deliveries;
	uint8_t qos; /* the highest delivered */
	unsigned retained; /* deliveries with the retain flag */
	uint32_t ids; /* bit i: identifier i delivered (i < 32) */
	unsigned id_count; /* identifiers delivered, every copy */
};

static struct session *many;
static struct tally *tallies;
static size_t nmany;

static bool tally(struct session *s, uint8_t qos, bool retain,
		  const uint32_t *sub_ids, uint8_t sub_id_count)
{
	uintptr_t p = (uintptr_t)s, first = (uintptr_t)many;
	struct tally *t;

	if (!many || p < first || p >= (uintptr_t)(many + nmany))
		return false;
	t = &tallies[s - many];
	t->deliveries++;
	if (qos > t->qos)
		t->qos = qos;
	t->retained += retain;
	for (uint8_t i = 0; i < sub_id_count; i++) {
		ck_assert_uint_lt(sub_ids[i], 32);
		t->ids |= 1u << sub_ids[i];
	}
	t->id_count += sub_id_count;
	return true;
}

void session_deliver(struct session *s, struct msg *msg, uint8_t qos,
		     bool retain, const uint32_t *sub_ids, uint8_t sub_id_count,
		     const char *shared_group)
{
	struct call *c;

	if (tally(s, qos, retain, sub_ids, sub_id_count)) {
		ck_assert_ptr_null(shared_group);
		return;
	}
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
	broker.shards = &shard;
	broker.shard_count = 1;
	ck_assert_int_eq(pthread_rwlock_init(&broker.retain_lock, NULL), 0);
	shard.broker = &broker;
	shard.subs = subtree_new();
	broker.retain = retain_new();
	broker.shares = share_registry_new(1);
	ck_assert_ptr_nonnull(shard.subs);
	ck_assert_ptr_nonnull(broker.retain);
	ck_assert_ptr_nonnull(broker.shares);
	memset(&persisted, 0, sizeof(persisted));
	ncalls = 0;
	nposts = 0;
	nwakes = 0;
	group_ends = 0;
	fake_hold_seq = 0;
}

static void teardown(void)
{
	ck_assert_uint_eq(nposts, 0); /* every post given back */
	subtree_free(shard.subs);
	free(shard.route_scratch);
	alloc_budget = -1;
	free(many);
	free(tallies);
	many = NULL;
	tallies = NULL;
	nmany = 0;
	retain_free(broker.retain);
	share_registry_free(broker.shares);
	pthread_rwlock_destroy(&broker.retain_lock);
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
}
END_TEST

/* --------------------------------------------------------- route scratch */

/* n sessions of many[], their tallies zeroed. */
static void many_new(size_t n)
{
	many = calloc(n, sizeof(*many));
	tallies = calloc(n, sizeof(*tallies));
	ck_assert_ptr_nonnull(many);
	ck_assert_ptr_nonnull(tallies);
	nmany = n;
}

static void tallies_reset(void)
{
	memset(tallies, 0, nmany * sizeof(*tallies));
}

static void subscribe_many(const char *filter, uint8_t qos, uint32_t id,
			   bool rap_even)
{
	for (size_t i = 0; i < nmany; i++) {
		struct sub_row r = { &many[i], filter, qos, id, false,
				     rap_even && i % 2 == 0 };

		subscribe(&r);
	}
}

/*
 * 5000 sessions, each through three overlapping filters, in one route:
 * the scratch table grows from its first 64 slots (kept at most half
 * full: 16384 for 5000) and each session gets exactly one delivery at its
 * highest QoS with its three identifiers.  Routes after that find the
 * table large enough: they allocate nothing (calloc fails if they try,
 * which would show as unfolded copies) and carry nothing over.
 */
START_TEST(test_scratch_many_sessions)
{
	enum { N = 5000 };
	static const struct sub_row a = { A, "m/t", 1, 9, false, false };
	static const uint32_t a_ids[] = { 9 };
	const struct call *c;

	many_new(N);
	subscribe_many("m/t", 0, 1, false);
	subscribe(&a); /* in the middle of them */
	subscribe_many("m/+", 2, 2, true);
	subscribe_many("m/#", 1, 3, false);

	ck_assert_uint_eq(route("m/t", 2, true, NULL), N + 1);
	ck_assert_ptr_nonnull(shard.route_scratch);
	ck_assert_uint_eq(shard.route_scratch->cap, 16384);
	for (size_t i = 0; i < N; i++) {
		const struct tally *t = &tallies[i];

		ck_assert_msg(t->deliveries == 1, "session %zu: %u deliveries",
			      i, t->deliveries);
		ck_assert_uint_eq(t->qos, 2);
		ck_assert_uint_eq(t->retained, i % 2 == 0);
		ck_assert_uint_eq(t->ids, 1u << 1 | 1u << 2 | 1u << 3);
		ck_assert_uint_eq(t->id_count, 3);
	}
	ck_assert_uint_eq(ncalls, 1);
	c = call_of(A, "");
	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(c->qos, 1);
	assert_ids(c, a_ids, 1);

	/* Steady state: no allocation, nothing of the route before. */
	alloc_budget = 0;
	tallies_reset();
	ncalls = 0;
	ck_assert_uint_eq(route("m/x", 1, false, NULL), N);
	for (size_t i = 0; i < N; i++) {
		const struct tally *t = &tallies[i];

		ck_assert_uint_eq(t->deliveries, 1);
		ck_assert_uint_eq(t->qos, 1);
		ck_assert_uint_eq(t->retained, 0);
		ck_assert_uint_eq(t->ids, 1u << 2 | 1u << 3);
		ck_assert_uint_eq(t->id_count, 2);
	}
	ck_assert_uint_eq(ncalls, 0);

	tallies_reset();
	ck_assert_uint_eq(route("m/t/u", 2, true, NULL), N);
	for (size_t i = 0; i < N; i++) {
		ck_assert_uint_eq(tallies[i].deliveries, 1);
		ck_assert_uint_eq(tallies[i].qos, 1);
		ck_assert_uint_eq(tallies[i].retained, 0);
		ck_assert_uint_eq(tallies[i].ids, 1u << 3);
	}
	ck_assert_uint_eq(shard.route_scratch->cap, 16384);
	ck_assert_uint_eq(shard.match_stamp, 3);
}
END_TEST

/*
 * Consecutive routes do not leak into each other: what a session folded
 * for one message (its QoS, Retain As Published, identifiers) is not
 * there for the next, though its slot still holds it.
 */
START_TEST(test_scratch_stamp)
{
	static const struct sub_row subs[] = {
		{ A, "s/a", 2, 1, false, true },
		{ A, "s/#", 0, 2, false, false },
		{ B, "s/a", 1, 0, false, false },
		{ C, "s/c", 2, 3, false, true },
	};
	static const uint32_t a12[] = { 1, 2 }, a2[] = { 2 }, c3[] = { 3 };
	const struct call *c;

	for (size_t i = 0; i < NELEM(subs); i++)
		subscribe(&subs[i]);
	for (int round = 0; round < 2; round++) {
		ncalls = 0;
		ck_assert_uint_eq(route("s/a", 2, true, NULL), 2);
		c = call_of(A, "");
		ck_assert_ptr_nonnull(c);
		ck_assert_uint_eq(c->qos, 2);
		ck_assert(c->retain);
		assert_ids(c, a12, 2);
		c = call_of(B, "");
		ck_assert_ptr_nonnull(c);
		ck_assert_uint_eq(c->qos, 1);
		ck_assert(!c->retain);
		assert_ids(c, NULL, 0);

		/* A again, through s/# only; B not at all. */
		ncalls = 0;
		ck_assert_uint_eq(route("s/b", 2, true, NULL), 1);
		ck_assert_ptr_eq(calls[0].s, A);
		ck_assert_uint_eq(calls[0].qos, 0);
		ck_assert(!calls[0].retain);
		assert_ids(&calls[0], a2, 1);

		/* Nobody of the route before. */
		ncalls = 0;
		ck_assert_uint_eq(route("s/c", 1, false, NULL), 2);
		c = call_of(C, "");
		ck_assert_ptr_nonnull(c);
		ck_assert_uint_eq(c->qos, 1);
		assert_ids(c, c3, 1);
		c = call_of(A, "");
		ck_assert_ptr_nonnull(c);
		ck_assert_uint_eq(c->qos, 0);
		assert_ids(c, a2, 1);
		ck_assert_ptr_null(call_of(B, ""));

		ncalls = 0;
		ck_assert_uint_eq(route("x", 1, false, NULL), 0);
		ck_assert_uint_eq(ncalls, 0);
	}
	ck_assert_uint_eq(shard.match_stamp, 8);
}
END_TEST

/*
 * The folded deliveries go out in a fixed order: the last session met
 * first, as the subscription tree met them.  Routing the same topic twice
 * gives the same order.
 */
START_TEST(test_scratch_order)
{
	static const struct sub_row subs[] = {
		{ A, "o/#", 0, 0, false, false },
		{ B, "o/p", 0, 0, false, false },
		{ C, "o/+", 0, 0, false, false },
		{ A, "o/p", 0, 0, false, false },
	};
	struct session *first[3];

	for (size_t i = 0; i < NELEM(subs); i++)
		subscribe(&subs[i]);
	ck_assert_uint_eq(route("o/p", 1, false, NULL), 3);
	for (size_t i = 0; i < 3; i++)
		first[i] = calls[i].s;
	ck_assert(first[0] != first[1] && first[1] != first[2] &&
		  first[0] != first[2]);
	ncalls = 0;
	ck_assert_uint_eq(route("o/p", 1, false, NULL), 3);
	for (size_t i = 0; i < 3; i++)
		ck_assert_ptr_eq(calls[i].s, first[i]);
}
END_TEST

/*
 * Out of memory for the table: no subscription is lost, each one a
 * session could not be folded for is delivered apart with its own QoS and
 * identifier ([MQTT-3.3.4-5] allows the copies); the sessions already in
 * the table still fold.  With memory back, the next route folds again.
 */
START_TEST(test_scratch_enomem)
{
	enum { N = 100 };
	static const struct sub_row subs[] = {
		{ A, "e/t", 1, 1, false, false },
		{ A, "e/+", 2, 2, false, true },
	};
	static const uint32_t id1[] = { 1 }, id2[] = { 2 }, id12[] = { 1, 2 };
	size_t folded = 0;

	for (size_t i = 0; i < NELEM(subs); i++)
		subscribe(&subs[i]);
	/* No table at all: a copy per subscription. */
	alloc_budget = 0;
	ck_assert_uint_eq(route("e/t", 2, true, NULL), 2);
	ck_assert_ptr_null(shard.route_scratch);
	ck_assert_uint_eq(ncalls, 2);
	for (size_t i = 0; i < 2; i++) {
		ck_assert_ptr_eq(calls[i].s, A);
		if (calls[i].qos == 1) {
			ck_assert(!calls[i].retain);
			assert_ids(&calls[i], id1, 1);
		} else {
			ck_assert_uint_eq(calls[i].qos, 2);
			ck_assert(calls[i].retain);
			assert_ids(&calls[i], id2, 1);
		}
	}
	ck_assert_uint_ne(calls[0].qos, calls[1].qos);

	/* The first table (64 slots, 32 sessions), then no growing. */
	many_new(N);
	subscribe_many("e/t", 1, 3, false);
	subscribe_many("e/+", 2, 4, false);
	alloc_budget = 1;
	ncalls = 0;
	ck_assert_uint_eq(route("e/t", 2, false, NULL),
			  32 + (N + 1 - 32) * 2);
	ck_assert_uint_eq(shard.route_scratch->cap, ROUTE_SCRATCH_MIN);
	for (size_t i = 0; i < N; i++) {
		const struct tally *t = &tallies[i];

		ck_assert_uint_eq(t->ids, 1u << 3 | 1u << 4);
		ck_assert_uint_eq(t->id_count, 2);
		ck_assert_uint_eq(t->qos, 2);
		ck_assert(t->deliveries == 1 || t->deliveries == 2);
		folded += t->deliveries == 1;
	}
	/* A is one of the 32 or not. */
	ck_assert(ncalls == 1 || ncalls == 2);
	folded += ncalls == 1;
	ck_assert_uint_eq(folded, 32);
	if (ncalls == 1) {
		ck_assert_uint_eq(calls[0].qos, 2);
		assert_ids(&calls[0], id12, 2);
	}

	/* Memory back: one delivery each. */
	alloc_budget = -1;
	tallies_reset();
	ncalls = 0;
	ck_assert_uint_eq(route("e/t", 2, false, NULL), N + 1);
	ck_assert_uint_eq(shard.route_scratch->cap, 256);
	for (size_t i = 0; i < N; i++) {
		ck_assert_uint_eq(tallies[i].deliveries, 1);
		ck_assert_uint_eq(tallies[i].qos, 2);
		ck_assert_uint_eq(tallies[i].ids, 1u << 3 | 1u << 4);
	}
	ck_assert_uint_eq(ncalls, 1);
	assert_ids(&calls[0], id12, 2);
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

/* ----------------------------------------------------------- two shards */

/*
 * Two shards of one broker, their own trees; the fixture's shard is not
 * used.  What shard.c's shard_sub_add() keeps is kept here by hand: the
 * interest index (a $share filter taken as the filter after its group;
 * one without wildcards counted in its topic's slot, one with '+' or '#'
 * in its first level's slot, or in the wild count when that level is a
 * wildcard) and, for a shared group, its tag in the registry and the
 * member count of this shard.
 */
static unsigned slot_of(const char *topic)
{
	return shard_interest_slot(topic, strlen(topic));
}

static unsigned first_slot_of(const char *topic)
{
	return shard_interest_first_slot(topic, strlen(topic));
}

/* One subscription more (delta 1) or less (-1) in sh's interest index. */
static void interest_count(struct shard *sh, const char *filter, int delta)
{
	atomic_uint *n;

	if (strncmp(filter, "$share/", 7) == 0)
		filter = strchr(filter + 7, '/') + 1;
	if (!strchr(filter, '+') && !strchr(filter, '#'))
		n = &sh->interest_exact[slot_of(filter)];
	else if (filter[0] == '+' || filter[0] == '#')
		n = &sh->interest_wild;
	else
		n = &sh->interest_first[first_slot_of(filter)];

	if (delta < 0)
		ck_assert_uint_gt(atomic_load(n), 0);
	atomic_fetch_add(n, (unsigned)delta);
}

/* No subscription counted anywhere in sh's index. */
static void assert_no_interest(const struct shard *sh)
{
	ck_assert_uint_eq(atomic_load(&sh->interest_wild), 0);
	for (unsigned i = 0; i < SHARD_INTEREST_SLOTS; i++) {
		ck_assert_uint_eq(atomic_load(&sh->interest_exact[i]), 0);
		ck_assert_uint_eq(atomic_load(&sh->interest_first[i]), 0);
	}
}

static struct shard two[3]; /* two of them, three for some tests */

static void shards_setup(unsigned n)
{
	share_registry_free(broker.shares);
	broker.shares = share_registry_new(n);
	ck_assert_ptr_nonnull(broker.shares);
	memset(two, 0, sizeof(two));
	for (unsigned i = 0; i < n; i++) {
		two[i].broker = &broker;
		two[i].index = i;
		two[i].subs = subtree_new();
		ck_assert_ptr_nonnull(two[i].subs);
	}
	broker.shards = two;
	broker.shard_count = n;
}

static void two_setup(void)
{
	shards_setup(2);
}

static void two_teardown(void)
{
	ck_assert_uint_eq(nposts, 0); /* every test gives its posts back */
	for (unsigned i = 0; i < broker.shard_count; i++) {
		subtree_free(two[i].subs);
		free(two[i].route_scratch);
	}
	for (unsigned i = 0; i < broker.shard_count; i++)
		assert_no_interest(&two[i]);
	broker.shards = &shard;
	broker.shard_count = 1;
}

static void subscribe_on(struct shard *sh, const struct sub_row *r)
{
	struct sub_opts o = {
		.qos = r->qos,
		.no_local = r->no_local,
		.retain_as_published = r->rap,
		.subscription_id = r->id,
	};
	size_t len = strlen(r->filter);
	const char *group;
	bool replaced;

	ck_assert_int_eq(subtree_add(sh->subs, r->filter, len, r->s, &o,
				     &replaced), 0);
	group = subtree_group_of(sh->subs, r->filter, len);
	if (group) {
		struct share_group *g = subtree_group_tag(group);

		if (!g) {
			g = share_group_get(broker.shares, r->filter, len);
			ck_assert_ptr_nonnull(g);
			subtree_group_set_tag(group, g);
		}
		if (!replaced)
			share_group_member(broker.shares, g, sh->index, 1);
	}
	if (!replaced)
		interest_count(sh, r->filter, 1);
}

static void unsubscribe_on(struct shard *sh, struct session *s,
			   const char *filter)
{
	size_t len = strlen(filter);
	const char *group = subtree_group_of(sh->subs, filter, len);
	struct share_group *g = group ? subtree_group_tag(group) : NULL;

	ck_assert_int_eq(subtree_remove(sh->subs, filter, len, s), 0);
	if (g) {
		share_group_member(broker.shares, g, sh->index, -1);
		if (!subtree_group_of(sh->subs, filter, len))
			share_group_put(broker.shares, g);
	}
	interest_count(sh, filter, -1);
}

/* A topic other than avoid whose interest slot is that of like. */
static const char *slot_twin(const char *like, const char *avoid)
{
	static char t[32];
	const unsigned want = slot_of(like);

	for (unsigned i = 0; i < 1u << 20; i++) {
		snprintf(t, sizeof(t), "c/%u", i);
		if (slot_of(t) == want && strcmp(t, avoid) != 0)
			return t;
	}
	ck_abort_msg("no topic in the slot of %s", like);
	return NULL;
}

/*
 * A message goes to the other shard only when that one may have a
 * subscriber of its topic (the interest index), with a reference of its
 * own; there route_local() delivers it.  A shard whose only subscription
 * is exact gets the messages of that topic (and of the topics sharing its
 * slot), not the others; one with a wildcard gets every message.
 */
START_TEST(test_two_shards_post)
{
	static const struct sub_row a = { A, "a/b", 2, 7, false, false },
				    b = { B, "#", 1, 0, false, false };
	const char *twin;
	struct msg *m;

	/* a/c must not share a/b's slot for the finer tests below. */
	ck_assert_uint_ne(slot_of("a/b"), slot_of("a/c"));
	ck_assert_uint_ne(slot_of("a/b"), slot_of("z"));
	two_setup();
	/* Nobody anywhere: no post, nothing delivered. */
	m = mk("a/b", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 0);
	ck_assert_uint_eq(nposts, 0);
	ck_assert_uint_eq(ncalls, 0);
	ck_assert_uint_eq(m->refs, 1);
	msg_unref(m);

	/* A on shard 1: posted there, not delivered on shard 0. */
	subscribe_on(&two[1], &a);
	ck_assert_uint_eq(atomic_load(&two[1].interest_exact[slot_of("a/b")]),
			  1);
	ck_assert_uint_eq(atomic_load(&two[1].interest_wild), 0);
	m = mk("a/b", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 1);
	ck_assert_uint_eq(ncalls, 0);
	ck_assert_uint_eq(nposts, 1);
	ck_assert_uint_eq(posts[0].from, 0);
	ck_assert_uint_eq(posts[0].to, 1);
	ck_assert_ptr_eq(posts[0].msg, m);
	ck_assert_uint_eq(m->refs, 2); /* the post's and ours */
	/* Shard 1 takes it: A gets it, folded as usual. */
	ck_assert_uint_eq(route_local(&two[1], posts[0].msg), 1);
	ck_assert_uint_eq(ncalls, 1);
	ck_assert_ptr_eq(calls[0].s, A);
	ck_assert_ptr_eq(calls[0].msg, m);
	ck_assert_uint_eq(calls[0].qos, 1);
	ck_assert_uint_eq(calls[0].sub_id_count, 1);
	ck_assert_uint_eq(calls[0].sub_ids[0], 7);
	posts_drop();
	ck_assert_uint_eq(m->refs, 1);
	msg_unref(m);

	/* Only a/b's slot: a/c and z are not posted to shard 1. */
	ncalls = 0;
	m = mk("a/c", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 0);
	ck_assert_uint_eq(nposts, 0);
	ck_assert_uint_eq(m->refs, 1);
	msg_unref(m);
	m = mk("z", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 0);
	ck_assert_uint_eq(nposts, 0);
	msg_unref(m);
	ck_assert_uint_eq(ncalls, 0);

	/* Published on shard 1: B there and A here; one post to shard 0. */
	subscribe_on(&two[0], &b);
	ck_assert_uint_eq(atomic_load(&two[0].interest_wild), 1);
	ncalls = 0;
	m = mk("a/b", "x", 2, false, NULL);
	ck_assert_uint_eq(route_message(&two[1], m), 2);
	ck_assert_uint_eq(ncalls, 1);
	ck_assert_ptr_eq(calls[0].s, A);
	ck_assert_uint_eq(nposts, 1);
	ck_assert_uint_eq(posts[0].from, 1);
	ck_assert_uint_eq(posts[0].to, 0);
	ck_assert_uint_eq(route_local(&two[0], posts[0].msg), 1);
	ck_assert_ptr_eq(calls[1].s, B);
	ck_assert_uint_eq(calls[1].qos, 1);
	posts_drop();
	msg_unref(m);

	/* A wildcard takes anything: a topic only B matches goes to it. */
	ncalls = 0;
	m = mk("z", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[1], m), 1);
	ck_assert_uint_eq(ncalls, 0);
	ck_assert_uint_eq(nposts, 1);
	ck_assert_uint_eq(posts[0].to, 0);
	ck_assert_uint_eq(route_local(&two[0], posts[0].msg), 1);
	ck_assert_ptr_eq(calls[0].s, B);
	posts_drop();
	msg_unref(m);

	/* The other way, B's wildcard does not reach shard 1's index. */
	ncalls = 0;
	m = mk("a/c", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 1); /* B, locally */
	ck_assert_uint_eq(nposts, 0);
	ck_assert_uint_eq(ncalls, 1);
	ck_assert_ptr_eq(calls[0].s, B);
	msg_unref(m);
	ncalls = 0;
	m = mk("a/b", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 2); /* B, and posted */
	ck_assert_uint_eq(ncalls, 1);
	ck_assert_uint_eq(nposts, 1);
	ck_assert_uint_eq(posts[0].to, 1);
	posts_drop();
	msg_unref(m);

	/*
	 * A topic in a/b's slot: the index cannot tell it from a/b, so it is
	 * posted, and shard 1's tree delivers it to nobody.
	 */
	twin = slot_twin("a/b", "a/b");
	ncalls = 0;
	m = mk(twin, "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 2); /* B, and posted */
	ck_assert_uint_eq(nposts, 1);
	ck_assert_uint_eq(posts[0].to, 1);
	ck_assert_uint_eq(route_local(&two[1], posts[0].msg), 0);
	ck_assert_uint_eq(ncalls, 1); /* B's only */
	posts_drop();
	msg_unref(m);

	/* A leaves: shard 1 has no interest, nothing is posted to it. */
	unsubscribe_on(&two[1], A, "a/b");
	assert_no_interest(&two[1]);
	m = mk("a/b", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 1); /* B, locally */
	ck_assert_uint_eq(nposts, 0);
	msg_unref(m);
	unsubscribe_on(&two[0], B, "#");
	two_teardown();
}
END_TEST

/*
 * A wildcard filter with a literal first level draws only the topics of
 * that level to its shard: sensors/+/temp gets sensors/a/temp (and, the
 * index being by first level only, sensors/a/humidity, which its tree
 * then matches to nobody), not other/x; s/# gets its parent s too.
 */
START_TEST(test_two_shards_first_level)
{
	static const struct sub_row a = { A, "sensors/+/temp", 1, 0, false,
					   false },
				    b = { B, "s/#", 1, 0, false, false };
	static const char *const away[] = { "other/x", "x/s", "/sensors",
					    "sensor/a/temp" };
	struct msg *m;

	two_setup();
	subscribe_on(&two[1], &a);
	ck_assert_uint_eq(atomic_load(&two[1].interest_wild), 0);
	ck_assert_uint_eq(
		atomic_load(&two[1].interest_first[first_slot_of("sensors")]),
		1);
	m = mk("sensors/a/temp", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 1);
	ck_assert_uint_eq(nposts, 1);
	ck_assert_uint_eq(posts[0].to, 1);
	ck_assert_uint_eq(route_local(&two[1], posts[0].msg), 1);
	ck_assert_ptr_eq(calls[0].s, A);
	posts_drop();
	msg_unref(m);
	m = mk("sensors/a/humidity", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 1);
	ck_assert_uint_eq(nposts, 1);
	ck_assert_uint_eq(route_local(&two[1], posts[0].msg), 0);
	posts_drop();
	msg_unref(m);

	subscribe_on(&two[1], &b);
	ncalls = 0;
	m = mk("s", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 1);
	ck_assert_uint_eq(nposts, 1);
	ck_assert_uint_eq(route_local(&two[1], posts[0].msg), 1);
	ck_assert_ptr_eq(calls[0].s, B);
	posts_drop();
	msg_unref(m);

	/* Other first levels (not sharing a slot): nothing posted. */
	for (size_t i = 0; i < NELEM(away); i++) {
		ck_assert_uint_ne(first_slot_of(away[i]),
				  first_slot_of("sensors/a"));
		ck_assert_uint_ne(first_slot_of(away[i]), first_slot_of("s"));
		m = mk(away[i], "x", 1, false, NULL);
		ck_assert_uint_eq(route_message(&two[0], m), 0);
		ck_assert_uint_eq(nposts, 0);
		msg_unref(m);
	}
	unsubscribe_on(&two[1], A, "sensors/+/temp");
	unsubscribe_on(&two[1], B, "s/#");
	m = mk("sensors/a/temp", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 0);
	ck_assert_uint_eq(nposts, 0);
	msg_unref(m);
	two_teardown();
}
END_TEST

/*
 * Interest counted by hand, without a tree behind it, as another shard
 * reads it: an exact count posts the topics of its slot, a first-level
 * count those whose first level has its slot, the wild count every
 * topic; the receiving tree has nobody, so nothing is delivered.
 */
START_TEST(test_two_shards_counts)
{
	const unsigned ab = slot_of("a/b");
	struct msg *m;

	ck_assert_uint_ne(ab, slot_of("a/c"));
	shards_setup(3);
	atomic_store(&two[2].interest_exact[ab], 1);
	m = mk("a/b", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 1);
	ck_assert_uint_eq(nposts, 1);
	ck_assert_uint_eq(posts[0].to, 2);
	ck_assert_uint_eq(route_local(&two[2], posts[0].msg), 0);
	posts_drop();
	msg_unref(m);
	m = mk("a/c", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 0);
	ck_assert_uint_eq(nposts, 0);
	msg_unref(m);

	/* Shard 1 with a wild count: a/c goes there, a/b to both. */
	atomic_store(&two[1].interest_wild, 2);
	m = mk("a/c", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 1);
	ck_assert_uint_eq(nposts, 1);
	ck_assert_uint_eq(posts[0].to, 1);
	posts_drop();
	msg_unref(m);
	m = mk("a/b", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 2);
	ck_assert_uint_eq(nposts, 2);
	ck_assert_uint_eq(posts[0].to, 1);
	ck_assert_uint_eq(posts[1].to, 2);
	posts_drop();
	msg_unref(m);

	/* Shard 1 with a first-level count for q instead: q/r, q only. */
	ck_assert_uint_ne(first_slot_of("q"), first_slot_of("a/c"));
	atomic_store(&two[1].interest_wild, 0);
	atomic_store(&two[1].interest_first[first_slot_of("q")], 1);
	m = mk("a/c", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 0);
	ck_assert_uint_eq(nposts, 0);
	msg_unref(m);
	m = mk("q/r", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 1);
	ck_assert_uint_eq(nposts, 1);
	ck_assert_uint_eq(posts[0].to, 1);
	posts_drop();
	msg_unref(m);
	m = mk("q", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 1);
	ck_assert_uint_eq(posts[0].to, 1);
	posts_drop();
	msg_unref(m);
	atomic_store(&two[1].interest_first[first_slot_of("q")], 0);

	/* The publisher's own counts do not matter to it. */
	atomic_store(&two[2].interest_exact[ab], 0);
	atomic_store(&two[0].interest_wild, 1);
	m = mk("a/b", "x", 1, false, NULL);
	ck_assert_uint_eq(route_message(&two[0], m), 0);
	ck_assert_uint_eq(nposts, 0);
	msg_unref(m);
	atomic_store(&two[0].interest_wild, 0);
	ck_assert_uint_eq(ncalls, 0);
	two_teardown();
}
END_TEST

/* A retained message is stored once, by the shard it was published on. */
START_TEST(test_two_shards_retain)
{
	static const struct sub_row a = { A, "r/#", 1, 0, false, false };
	struct msg *m = mk("r/1", "x", 1, true, NULL);

	two_setup();
	subscribe_on(&two[1], &a);
	ck_assert_uint_eq(route_message(&two[0], m), 1);
	ck_assert_uint_eq(persisted.calls, 1);
	ck_assert_uint_eq(retain_count(broker.retain), 1);
	ck_assert_uint_eq(m->refs, 3); /* ours, the store's, the post's */
	ck_assert_uint_eq(route_local(&two[1], posts[0].msg), 1);
	ck_assert(!calls[0].retain);
	ck_assert_uint_eq(retain_count(broker.retain), 1);
	ck_assert_uint_eq(persisted.calls, 1); /* route_local keeps nothing */
	posts_drop();
	msg_unref(m);
	unsubscribe_on(&two[1], A, "r/#");
	two_teardown();
}
END_TEST

/*
 * A group with one member on shard 0 and two on shard 1: both shards get
 * each message and exactly one of them delivers it.  The key the shards
 * agree on is msg->share_key, which the publishing shard numbers 1, 2, 3
 * ...: share_group_mine() takes it modulo the three members, so shard 0
 * delivers the messages whose key is a multiple of 3 and shard 1 the
 * others, exactly two in three.
 */
START_TEST(test_two_shards_shared_group)
{
	enum { N = 300 };
	static const struct sub_row g0 = { A, "$share/g/t", 1, 0, false,
					   false },
				    g1 = { B, "$share/g/t", 1, 0, false,
					   false },
				    g2 = { C, "$share/g/t", 1, 0, false,
					   false };
	static struct msg *m[N];
	size_t on1 = 0, n0, n1;

	two_setup();
	subscribe_on(&two[0], &g0);
	subscribe_on(&two[1], &g1);
	subscribe_on(&two[1], &g2);
	for (size_t i = 0; i < N; i++) {
		m[i] = mk("t", "x", 1, false, NULL);
		ncalls = 0;
		n0 = route_message(&two[0], m[i]);
		ck_assert_uint_eq(m[i]->share_key, i + 1);
		ck_assert_uint_eq(two[0].share_seq, i + 1);
		ck_assert_uint_eq(nposts, 1); /* always to shard 1 */
		ck_assert_uint_eq(n0, ncalls + 1);
		n1 = route_local(&two[1], posts[0].msg);
		posts_drop();
		ck_assert_msg(ncalls == 1, "message %zu delivered %zu times",
			      i, ncalls);
		ck_assert_str_eq(calls[0].group, "g");
		if (n1)
			ck_assert(calls[0].s == B || calls[0].s == C);
		else
			ck_assert_ptr_eq(calls[0].s, A);
		ck_assert_msg(n1 == ((i + 1) % 3 != 0),
			      "message %zu (key %u) on the wrong shard", i,
			      (unsigned)m[i]->share_key);
		on1 += n1;
	}
	ck_assert_uint_eq(on1, N * 2 / 3);
	ck_assert_uint_eq(two[1].share_seq, 0); /* it published nothing */
	for (size_t i = 0; i < N; i++)
		msg_unref(m[i]);

	/* The member on shard 0 leaves: shard 1 delivers everything. */
	unsubscribe_on(&two[0], A, "$share/g/t");
	for (size_t i = 0; i < 20; i++) {
		struct msg *x = mk("t", "x", 1, false, NULL);

		ncalls = 0;
		ck_assert_uint_eq(route_message(&two[0], x), 1); /* posted */
		ck_assert_uint_eq(ncalls, 0);
		ck_assert_uint_eq(route_local(&two[1], posts[0].msg), 1);
		posts_drop();
		msg_unref(x);
	}
	unsubscribe_on(&two[1], B, "$share/g/t");
	unsubscribe_on(&two[1], C, "$share/g/t");
	two_teardown();
}
END_TEST

/*
 * msg->share_key: numbered by the publishing shard, one counter each, on
 * a broker of several shards; left alone with one shard, where
 * share_group_mine() does not read it.
 */
START_TEST(test_share_key)
{
	static const struct sub_row a = { A, "#", 1, 0, false, false };
	static const struct {
		unsigned on;
		uint32_t key;
	} rows[] = { { 0, 1 }, { 0, 2 }, { 1, 1 }, { 0, 3 }, { 1, 2 } };
	struct msg *m = mk("k", "x", 1, false, NULL);

	ck_assert_uint_eq(route_message(&shard, m), 0);
	ck_assert_uint_eq(m->share_key, 0);
	ck_assert_uint_eq(shard.share_seq, 0);
	msg_unref(m);

	two_setup();
	subscribe_on(&two[1], &a);
	for (size_t i = 0; i < NELEM(rows); i++) {
		m = mk("k", "x", 1, false, NULL);
		route_message(&two[rows[i].on], m);
		ck_assert_msg(m->share_key == rows[i].key,
			      "message %zu: key %u", i,
			      (unsigned)m->share_key);
		ck_assert_uint_eq(two[rows[i].on].share_seq, rows[i].key);
		/* Taken on the other shard, the key stays. */
		for (size_t p = 0; p < nposts; p++)
			route_local(&two[posts[p].to], posts[p].msg);
		ck_assert_uint_eq(m->share_key, rows[i].key);
		posts_drop();
		msg_unref(m);
	}
	ck_assert_uint_eq(two[0].share_seq, 3);
	ck_assert_uint_eq(two[1].share_seq, 2);
	unsubscribe_on(&two[1], A, "#");
	two_teardown();
}
END_TEST

/* ------------------------------------------------------- confirmation */

/* Nobody waits (confirm_from 0): route_confirm does nothing. */
START_TEST(test_confirm_not_waited)
{
	static const struct sub_row a = { A, "t", 1, 0, false, false };
	struct msg *m = mk("t", "x", 1, false, NULL);

	two_setup();
	subscribe_on(&two[1], &a);
	fake_hold_seq = 9;
	ck_assert_uint_eq(route_message(&two[0], m), 1);
	ck_assert_uint_eq(atomic_load(&m->remote_pending), 0);
	route_local(&two[1], posts[0].msg);
	route_confirm(&two[1], posts[0].msg, false);
	ck_assert_uint_eq(nwakes, 0);
	ck_assert_uint_eq(atomic_load(&m->remote_seq), 0);
	ck_assert_uint_eq(group_ends, 0);
	posts_drop();
	msg_unref(m);
	unsubscribe_on(&two[1], A, "t");
	two_teardown();
}
END_TEST

struct confirm_row {
	const char *name;
	bool group; /* confirm_group */
	bool refused; /* storage refused a record on the second shard */
	uint64_t seq[2]; /* hold seq on shards 1 and 2 */
};

static const struct confirm_row confirm_rows[] = {
	{ "plain", false, false, { 5, 3 } },
	{ "higher last", false, false, { 3, 8 } },
	{ "group", true, false, { 4, 4 } },
	{ "refused", false, true, { 2, 2 } },
};

/*
 * A publisher on shard 0 that waits: every other shard gets the message,
 * interested or not; each confirms once, the highest storage sequence is
 * kept, one refusal refuses the whole, and the last one wakes the
 * publisher's shard (and closes its storage group when it opened one).
 */
START_TEST(test_confirm_all_shards)
{
	const struct confirm_row *r = &confirm_rows[_i];
	static const struct sub_row a = { A, "t", 1, 0, false, false };
	struct msg *m = mk("t", "x", 1, false, NULL);

	shards_setup(3);
	subscribe_on(&two[2], &a); /* shard 1 has no interest */
	m->confirm_from = 1; /* shard 0 + 1 */
	m->confirm_group = r->group;
	ck_assert_uint_eq(route_message(&two[0], m), 2);
	ck_assert_uint_eq(nposts, 2);
	ck_assert_uint_eq(posts[0].to, 1);
	ck_assert_uint_eq(posts[1].to, 2);
	ck_assert_uint_eq(atomic_load(&m->remote_pending), 2);
	ck_assert_uint_eq(m->refs, 3);

	fake_hold_seq = r->seq[0];
	ck_assert_uint_eq(route_local(&two[1], m), 0);
	route_confirm(&two[1], m, false);
	ck_assert_uint_eq(nwakes, 0);
	ck_assert_uint_eq(group_ends, 0);
	ck_assert_uint_eq(atomic_load(&m->remote_pending), 1);
	ck_assert_uint_eq(atomic_load(&m->remote_seq), r->seq[0]);

	fake_hold_seq = r->seq[1];
	ck_assert_uint_eq(route_local(&two[2], m), 1);
	route_confirm(&two[2], m, r->refused);
	ck_assert_uint_eq(atomic_load(&m->remote_pending), 0);
	ck_assert_uint_eq(atomic_load(&m->remote_seq),
			  r->seq[0] > r->seq[1] ? r->seq[0] : r->seq[1]);
	ck_assert(atomic_load(&m->remote_refused) == r->refused);
	ck_assert_uint_eq(group_ends, r->group ? 1 : 0);
	/* The publisher's shard is woken, once. */
	ck_assert_uint_eq(nwakes, 1);
	ck_assert_ptr_eq(wakes[0].loop, two[0].loop);
	ck_assert_ptr_eq(wakes[0].w, &two[0].wake);

	posts_drop();
	ck_assert_uint_eq(m->refs, 1);
	msg_unref(m);
	unsubscribe_on(&two[2], A, "t");
	two_teardown();
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
	tcase_add_test(tc, test_scratch_many_sessions);
	tcase_add_test(tc, test_scratch_stamp);
	tcase_add_test(tc, test_scratch_order);
	tcase_add_test(tc, test_scratch_enomem);
	tcase_add_test(tc, test_shared_separate);
	tcase_add_test(tc, test_shared_two_groups);
	tcase_add_test(tc, test_reached_count);
	tcase_add_test(tc, test_retained_store);
	tcase_add_test(tc, test_two_shards_post);
	tcase_add_test(tc, test_two_shards_first_level);
	tcase_add_test(tc, test_two_shards_counts);
	tcase_add_test(tc, test_two_shards_retain);
	tcase_add_test(tc, test_two_shards_shared_group);
	tcase_add_test(tc, test_share_key);
	tcase_add_test(tc, test_confirm_not_waited);
	tcase_add_loop_test(tc, test_confirm_all_shards, 0,
			    NELEM(confirm_rows));
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
