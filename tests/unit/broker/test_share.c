/*
 * Unit tests for broker/share.c: the registry of $share groups (one group
 * per filter, reference counted, freed at the last put, found again by
 * its filter across bucket collisions), the per-shard member counts, and
 * share_group_mine(): for one message exactly one shard with members says
 * true, shards are picked in proportion to their members, and a shard
 * alone with members (or a broker of one shard) always delivers.
 *
 * share.c is included to see a group's reference count and member counts.
 * The last tests run two real shards of a broker (shard_init on two loops,
 * sessions, shard_sub_add, route_message, the inbox and the wake-up),
 * linked from libcicada_broker.a: a message published on one shard
 * reaches a subscriber on the other only through that shard's inbox, and
 * a group with members on both delivers each message once.
 */
#include <check.h>
#include <ev.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/share.c"

#include "broker/broker.h"
#include "broker/inbox.h"
#include "broker/msg.h"
#include "broker/retain.h"
#include "broker/route.h"
#include "broker/session.h"
#include "broker/shard.h"
#include "broker/subtree.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct share_registry *reg;

static void setup(void)
{
	reg = NULL;
}

static void teardown(void)
{
	share_registry_free(reg);
}

static struct share_group *get(const char *filter)
{
	struct share_group *g = share_group_get(reg, filter, strlen(filter));

	ck_assert_ptr_nonnull(g);
	return g;
}

static void members(struct share_group *g, unsigned shard, int n)
{
	for (; n > 0; n--)
		share_group_member(reg, g, shard, 1);
	for (; n < 0; n++)
		share_group_member(reg, g, shard, -1);
}

/* How many of keys [0, n) shard takes. */
static unsigned taken(const struct share_group *g, unsigned shard, unsigned n)
{
	unsigned k = 0;

	for (uint64_t key = 0; key < n; key++)
		k += share_group_mine(reg, g, shard, key);
	return k;
}

/* ------------------------------------------------------------ registry */

START_TEST(test_registry_sizes)
{
	static const struct {
		unsigned shards;
		bool ok;
	} rows[] = { { 0, false }, { 1, true }, { 2, true }, { 64, true },
		     { 65, false }, { 1000, false } };

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct share_registry *r = share_registry_new(rows[i].shards);

		ck_assert_msg((r != NULL) == rows[i].ok, "%u shards",
			      rows[i].shards);
		if (r)
			ck_assert_uint_eq(r->shards, rows[i].shards);
		share_registry_free(r);
	}
	share_registry_free(NULL); /* nothing */
}
END_TEST

START_TEST(test_get_put_refcount)
{
	struct share_group *g, *g2, *h, *again;

	reg = share_registry_new(2);
	ck_assert_ptr_nonnull(reg);
	g = get("$share/g/a/b");
	ck_assert_uint_eq(g->refs, 1);
	ck_assert_uint_eq(g->len, 12);
	ck_assert_mem_eq(g->filter, "$share/g/a/b", 12);
	for (unsigned i = 0; i < SHARE_MAX_SHARDS; i++)
		ck_assert_uint_eq(atomic_load(&g->members[i]), 0);

	/* Same filter: the same group, one more reference. */
	g2 = get("$share/g/a/b");
	ck_assert_ptr_eq(g2, g);
	ck_assert_uint_eq(g->refs, 2);
	/* Another group name, a longer and a shorter filter: others. */
	h = get("$share/h/a/b");
	ck_assert_ptr_ne(h, g);
	again = get("$share/g/a/b/c");
	ck_assert_ptr_ne(again, g);
	share_group_put(reg, again);
	again = get("$share/g/a/");
	ck_assert_ptr_ne(again, g);
	share_group_put(reg, again);
	ck_assert_uint_eq(g->refs, 2);

	/* Members live with the group, not with the references. */
	members(g, 1, 2);
	share_group_put(reg, g2);
	ck_assert_uint_eq(g->refs, 1);
	ck_assert_uint_eq(atomic_load(&g->members[1]), 2);
	ck_assert_ptr_eq(get("$share/g/a/b"), g);
	share_group_put(reg, g);

	/* The last put frees it; the filter then makes a new group. */
	share_group_put(reg, g);
	again = get("$share/g/a/b");
	ck_assert_uint_eq(again->refs, 1);
	ck_assert_uint_eq(atomic_load(&again->members[1]), 0);
	share_group_put(reg, again);
	share_group_put(reg, h);
	for (size_t i = 0; i < SHARE_BUCKETS; i++)
		ck_assert_ptr_null(reg->bucket[i]);
	share_group_put(reg, NULL); /* nothing */
}
END_TEST

/* More groups than buckets: chains, unlinked from head, middle and tail. */
START_TEST(test_many_groups)
{
	enum { N = 1000 };
	static struct share_group *g[N];
	char f[32];
	size_t i;

	reg = share_registry_new(4);
	ck_assert_ptr_nonnull(reg);
	for (i = 0; i < N; i++) {
		snprintf(f, sizeof(f), "$share/g%zu/t", i);
		g[i] = get(f);
		for (size_t j = 0; j < i; j += 97)
			ck_assert_ptr_ne(g[i], g[j]);
	}
	/* Every third goes. */
	for (i = 0; i < N; i += 3)
		share_group_put(reg, g[i]);
	for (i = 0; i < N; i++) {
		struct share_group *x;

		snprintf(f, sizeof(f), "$share/g%zu/t", i);
		x = get(f);
		if (i % 3) {
			ck_assert_ptr_eq(x, g[i]);
			ck_assert_uint_eq(x->refs, 2);
		} else {
			ck_assert_uint_eq(x->refs, 1);
			g[i] = x;
			share_group_get(reg, f, strlen(f)); /* 2, as the rest */
		}
	}
	for (i = 0; i < N; i++) {
		share_group_put(reg, g[i]);
		share_group_put(reg, g[i]);
	}
	for (i = 0; i < SHARE_BUCKETS; i++)
		ck_assert_ptr_null(reg->bucket[i]);
	/* share_registry_free frees what is still there (teardown). */
	get("$share/left/over");
}
END_TEST

/* ------------------------------------------------------------- picking */

START_TEST(test_mine_one_shard)
{
	struct share_group *g;

	reg = share_registry_new(1);
	ck_assert_ptr_nonnull(reg);
	g = get("$share/g/t");
	ck_assert_uint_eq(taken(g, 0, 1000), 1000); /* no members counted */
	members(g, 0, 3);
	ck_assert_uint_eq(taken(g, 0, 1000), 1000);
	ck_assert(share_group_mine(reg, g, 0, UINT64_MAX));
	ck_assert(share_group_mine(reg, NULL, 0, 5)); /* no group: true */
	share_group_put(reg, g);
}
END_TEST

/* Members on shard 1 only: shard 0 never delivers, shard 1 always. */
START_TEST(test_mine_members_on_one)
{
	struct share_group *g;

	reg = share_registry_new(2);
	ck_assert_ptr_nonnull(reg);
	g = get("$share/g/t");
	members(g, 1, 1);
	ck_assert_uint_eq(taken(g, 0, 1000), 0);
	ck_assert_uint_eq(taken(g, 1, 1000), 1000);
	members(g, 1, 4);
	ck_assert_uint_eq(taken(g, 0, 1000), 0);
	ck_assert_uint_eq(taken(g, 1, 1000), 1000);
	ck_assert(!share_group_mine(reg, g, 0, UINT64_MAX));
	ck_assert(share_group_mine(reg, g, 1, UINT64_MAX));
	share_group_put(reg, g);
}
END_TEST

struct split_row {
	unsigned shards;
	unsigned members[4];
	unsigned taken[4]; /* of keys 0..999 */
};

static const struct split_row split_rows[] = {
	{ 2, { 1, 3 }, { 250, 750 } },
	{ 2, { 3, 1 }, { 750, 250 } },
	{ 2, { 1, 1 }, { 500, 500 } },
	{ 2, { 2, 3 }, { 400, 600 } },
	{ 3, { 2, 0, 3 }, { 400, 0, 600 } },
	{ 4, { 1, 1, 1, 1 }, { 250, 250, 250, 250 } },
	{ 4, { 0, 5, 0, 0 }, { 0, 1000, 0, 0 } },
};

/*
 * Keys are consecutive integers, so key % total is exact: each shard
 * takes members/total of them, and for each key exactly one shard does.
 */
START_TEST(test_mine_split)
{
	const struct split_row *r = &split_rows[_i];
	struct share_group *g;

	reg = share_registry_new(r->shards);
	ck_assert_ptr_nonnull(reg);
	g = get("$share/g/t");
	for (unsigned i = 0; i < r->shards; i++)
		members(g, i, (int)r->members[i]);
	for (unsigned i = 0; i < r->shards; i++)
		ck_assert_msg(taken(g, i, 1000) == r->taken[i],
			      "shard %u took %u", i, taken(g, i, 1000));
	for (uint64_t key = 0; key < 1000; key++) {
		unsigned yes = 0;

		for (unsigned i = 0; i < r->shards; i++)
			yes += share_group_mine(reg, g, i, key);
		ck_assert_msg(yes == 1, "key %u: %u shards", (unsigned)key,
			      yes);
	}
	/* Large keys too: one shard each. */
	for (uint64_t key = UINT64_MAX - 100; key != 0; key++) {
		unsigned yes = 0;

		for (unsigned i = 0; i < r->shards; i++)
			yes += share_group_mine(reg, g, i, key);
		ck_assert_uint_eq(yes, 1);
	}
	share_group_put(reg, g);
}
END_TEST

/* Members leave one shard: the other gets everything, and back again. */
START_TEST(test_mine_members_leave)
{
	struct share_group *g;

	reg = share_registry_new(2);
	ck_assert_ptr_nonnull(reg);
	g = get("$share/g/t");
	members(g, 0, 1);
	members(g, 1, 3);
	ck_assert_uint_eq(taken(g, 1, 1000), 750);
	members(g, 0, -1);
	ck_assert_uint_eq(atomic_load(&g->members[0]), 0);
	ck_assert_uint_eq(taken(g, 0, 1000), 0);
	ck_assert_uint_eq(taken(g, 1, 1000), 1000);
	members(g, 0, 1);
	members(g, 1, -3);
	ck_assert_uint_eq(taken(g, 0, 1000), 1000);
	ck_assert_uint_eq(taken(g, 1, 1000), 0);
	members(g, 1, 1);
	ck_assert_uint_eq(taken(g, 0, 1000), 500);
	ck_assert_uint_eq(taken(g, 1, 1000), 500);
	/* A shard out of range counts nothing. */
	share_group_member(reg, g, SHARE_MAX_SHARDS, 1);
	ck_assert_uint_eq(taken(g, 0, 1000), 500);
	share_group_put(reg, g);
}
END_TEST

/* Shards count their members from their own threads. */
struct counter_arg {
	struct share_group *g;
	unsigned shard;
};

static void *count_up_down(void *p)
{
	struct counter_arg *a = p;

	for (int i = 0; i < 20000; i++)
		share_group_member(reg, a->g, a->shard, 1);
	for (int i = 0; i < 10000; i++)
		share_group_member(reg, a->g, a->shard, -1);
	return NULL;
}

START_TEST(test_members_from_threads)
{
	pthread_t t[4];
	struct counter_arg a[4];
	struct share_group *g;

	reg = share_registry_new(2);
	ck_assert_ptr_nonnull(reg);
	g = get("$share/g/t");
	for (unsigned i = 0; i < 4; i++) {
		a[i].g = g;
		a[i].shard = i % 2;
		ck_assert_int_eq(pthread_create(&t[i], NULL, count_up_down,
						&a[i]), 0);
	}
	for (unsigned i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	ck_assert_uint_eq(atomic_load(&g->members[0]), 20000);
	ck_assert_uint_eq(atomic_load(&g->members[1]), 20000);
	ck_assert_uint_eq(taken(g, 0, 40000), 20000);
	share_group_put(reg, g);
}
END_TEST

/* ------------------------------------------------- two real shards */

static struct broker b;
static struct shard sh[2];

static void shards_setup(void)
{
	memset(&b, 0, sizeof(b));
	memset(sh, 0, sizeof(sh));
	b.shards = sh;
	b.shard_count = 2;
	ck_assert_int_eq(pthread_rwlock_init(&b.retain_lock, NULL), 0);
	b.retain = retain_new();
	ck_assert_ptr_nonnull(b.retain);
	b.shares = share_registry_new(2);
	ck_assert_ptr_nonnull(b.shares);
	for (unsigned i = 0; i < 2; i++) {
		struct ev_loop *loop = ev_loop_new(0);

		ck_assert_ptr_nonnull(loop);
		ck_assert_int_eq(shard_init(&sh[i], &b, i, loop), 0);
	}
}

static void shards_teardown(void)
{
	for (unsigned i = 0; i < 2; i++)
		session_destroy_all(&sh[i]);
	for (unsigned i = 0; i < 2; i++) {
		ck_assert_uint_eq(atomic_load(&sh[i].interest_wild), 0);
		for (unsigned j = 0; j < SHARD_INTEREST_SLOTS; j++) {
			ck_assert_uint_eq(atomic_load(&sh[i].interest_exact[j]),
					  0);
			ck_assert_uint_eq(atomic_load(&sh[i].interest_first[j]),
					  0);
		}
		ck_assert_uint_eq(sh[i].session_count, 0);
	}
	/* Every group went with its last member. */
	for (size_t i = 0; i < SHARE_BUCKETS; i++)
		ck_assert_ptr_null(b.shares->bucket[i]);
	for (unsigned i = 0; i < 2; i++) {
		struct ev_loop *loop = sh[i].loop;

		shard_fini(&sh[i]);
		ev_loop_destroy(loop);
	}
	share_registry_free(b.shares);
	retain_free(b.retain);
	pthread_rwlock_destroy(&b.retain_lock);
}

/* An offline session on shard i subscribed to filter at QoS 1. */
static struct session *subscriber(unsigned i, const char *id,
				  const char *filter)
{
	struct session *s = session_new(&sh[i], id, strlen(id));
	struct sub_opts opts = { .qos = 1 };
	bool replaced;

	ck_assert_ptr_nonnull(s);
	ck_assert_int_eq(shard_sub_add(&sh[i], filter, strlen(filter), s,
				       &opts, &replaced), 0);
	ck_assert(!replaced);
	ck_assert_int_eq(session_add_sub(s, filter, strlen(filter), &opts),
			 0);
	return s;
}

static struct msg *mk(const char *topic)
{
	struct msg *m = msg_new(topic, strlen(topic), (const uint8_t *)"x", 1,
				NULL, 0, 1, false);

	ck_assert_ptr_nonnull(m);
	return m;
}

static unsigned slot_of(const char *topic)
{
	return shard_interest_slot(topic, strlen(topic));
}

static unsigned first_slot_of(const char *topic)
{
	return shard_interest_first_slot(topic, strlen(topic));
}

/* The exact counts of shard i, added up. */
static unsigned exact_total(unsigned i)
{
	unsigned n = 0;

	for (unsigned j = 0; j < SHARD_INTEREST_SLOTS; j++)
		n += atomic_load(&sh[i].interest_exact[j]);
	return n;
}

/* End shard i's loop turn (its wake-ups go out), then shard j's. */
static void turns(unsigned i, unsigned j)
{
	ev_run(sh[i].loop, EVRUN_NOWAIT);
	ev_run(sh[j].loop, EVRUN_NOWAIT);
}

/*
 * A session on shard 1 subscribed to a/b; published on shard 0: nothing
 * there, one post to shard 1, delivered (queued: it is offline) once
 * shard 1 takes its inbox.  Another topic is not posted to shard 1 while
 * its only subscription is exact; a wildcard one after a literal first
 * level makes it take the topics of that level, one starting with a
 * wildcard every topic.  The message's references add up.
 */
START_TEST(test_route_to_other_shard)
{
	const unsigned q = first_slot_of("q");
	struct session *s, *w;
	struct msg *m;

	/* x/y must not share a/b's slot: it would be posted like a/b. */
	ck_assert_uint_ne(slot_of("a/b"), slot_of("x/y"));
	shards_setup();
	s = subscriber(1, "c1", "a/b");
	ck_assert_uint_eq(atomic_load(&sh[1].interest_exact[slot_of("a/b")]),
			  1);
	ck_assert_uint_eq(exact_total(1), 1);
	ck_assert_uint_eq(atomic_load(&sh[1].interest_wild), 0);
	ck_assert_uint_eq(exact_total(0), 0);
	ck_assert_uint_eq(atomic_load(&sh[0].interest_wild), 0);

	m = mk("a/b");
	ck_assert_uint_eq(route_message(&sh[0], m), 1);
	ck_assert_uint_eq(m->refs, 2); /* ours and the post's */
	ck_assert(!inbox_empty(&sh[1].inbox));
	ck_assert(inbox_empty(&sh[0].inbox));
	ck_assert_uint_eq(s->queued_count, 0);

	turns(0, 1);
	ck_assert(inbox_empty(&sh[1].inbox));
	ck_assert_uint_eq(s->queued_count, 1);
	ck_assert_ptr_eq(s->queue->msg, m);
	ck_assert_uint_eq(s->queue->qos, 1);
	ck_assert_uint_eq(m->refs, 2); /* ours and the queue's */

	/* Published on shard 1 itself: delivered there, nothing posted. */
	ck_assert_uint_eq(route_message(&sh[1], m), 1);
	ck_assert_uint_eq(s->queued_count, 2);
	ck_assert(inbox_empty(&sh[0].inbox));
	ck_assert_uint_eq(m->refs, 3);

	/* Another topic: shard 1 has no interest in it, nothing posted. */
	msg_unref(m);
	m = mk("x/y");
	ck_assert_uint_eq(route_message(&sh[0], m), 0);
	ck_assert(inbox_empty(&sh[1].inbox));
	ck_assert_uint_eq(m->refs, 1);
	msg_unref(m);

	/*
	 * A wildcard subscription under q on shard 1: the topics of q are
	 * posted there, x/y still not.
	 */
	ck_assert_uint_ne(q, first_slot_of("x"));
	w = subscriber(1, "c2", "q/+");
	ck_assert_uint_eq(atomic_load(&sh[1].interest_first[q]), 1);
	ck_assert_uint_eq(atomic_load(&sh[1].interest_wild), 0);
	ck_assert_uint_eq(exact_total(1), 1);
	m = mk("x/y");
	ck_assert_uint_eq(route_message(&sh[0], m), 0);
	ck_assert(inbox_empty(&sh[1].inbox));
	msg_unref(m);
	m = mk("q/r");
	ck_assert_uint_eq(route_message(&sh[0], m), 1);
	turns(0, 1);
	ck_assert_uint_eq(w->queued_count, 1);
	ck_assert_uint_eq(s->queued_count, 2);
	msg_unref(m);
	ck_assert(session_remove_sub(w, "q/+", 3));
	ck_assert_int_eq(shard_sub_remove(&sh[1], "q/+", 3, w), 0);
	ck_assert_uint_eq(atomic_load(&sh[1].interest_first[q]), 0);

	/*
	 * One starting with a wildcard: every topic is posted there, x/y
	 * too, and delivered to none when no filter matches.
	 */
	w = subscriber(1, "c3", "+/r");
	ck_assert_uint_eq(atomic_load(&sh[1].interest_wild), 1);
	m = mk("x/y");
	ck_assert_uint_eq(route_message(&sh[0], m), 1);
	ck_assert(!inbox_empty(&sh[1].inbox));
	turns(0, 1);
	ck_assert_uint_eq(s->queued_count, 2);
	ck_assert_uint_eq(w->queued_count, 0);
	ck_assert_uint_eq(m->refs, 1);
	msg_unref(m);
	ck_assert(session_remove_sub(w, "+/r", 3));
	ck_assert_int_eq(shard_sub_remove(&sh[1], "+/r", 3, w), 0);
	ck_assert_uint_eq(atomic_load(&sh[1].interest_wild), 0);

	/* Unsubscribed: shard 1 has no interest, nothing goes there. */
	ck_assert(session_remove_sub(s, "a/b", 3));
	ck_assert_int_eq(shard_sub_remove(&sh[1], "a/b", 3, s), 0);
	ck_assert_uint_eq(exact_total(1), 0);
	m = mk("a/b");
	ck_assert_uint_eq(route_message(&sh[0], m), 0);
	ck_assert(inbox_empty(&sh[1].inbox));
	ck_assert_uint_eq(m->refs, 1);
	msg_unref(m);
	shards_teardown();
}
END_TEST

/* Posted and never taken: shard_fini gives the reference back. */
START_TEST(test_route_post_dropped_at_fini)
{
	struct msg *m;

	shards_setup();
	subscriber(1, "c1", "a/b");
	m = mk("a/b");
	ck_assert_uint_eq(route_message(&sh[0], m), 1);
	ck_assert_uint_eq(m->refs, 2);
	shards_teardown();
	ck_assert_uint_eq(m->refs, 1);
	msg_unref(m);
}
END_TEST

/*
 * A group with one member on shard 0 and three on shard 1: every message
 * published on shard 0 goes to exactly one member.  Shard 0 numbers its
 * messages 1, 2, 3 ... (msg->share_key) and the shards split the keys
 * modulo the four members: shard 0 takes one in four exactly, shard 1
 * three in four.
 */
START_TEST(test_route_shared_group_two_shards)
{
	enum { N = 400 };
	struct session *s[4];
	unsigned on0, on1 = 0, after;
	struct share_group *g;

	shards_setup();
	s[0] = subscriber(0, "a", "$share/g/t");
	s[1] = subscriber(1, "b", "$share/g/t");
	s[2] = subscriber(1, "c", "$share/g/t");
	s[3] = subscriber(1, "d", "$share/g/t");
	/* One group in the registry, referenced by both trees. */
	g = share_group_get(b.shares, "$share/g/t", 10);
	ck_assert_uint_eq(g->refs, 3);
	ck_assert_uint_eq(atomic_load(&g->members[0]), 1);
	ck_assert_uint_eq(atomic_load(&g->members[1]), 3);
	share_group_put(b.shares, g);

	for (unsigned i = 0; i < N; i++) {
		struct msg *m = mk("t");

		route_message(&sh[0], m);
		msg_unref(m);
		if (i % 100 == 99) /* a few posts at a time, as in a turn */
			turns(0, 1);
	}
	turns(0, 1);
	ck_assert(inbox_empty(&sh[1].inbox));
	on0 = s[0]->queued_count;
	for (unsigned i = 1; i < 4; i++)
		on1 += s[i]->queued_count;
	ck_assert_uint_eq(on0 + on1, N);
	ck_assert_uint_eq(sh[0].share_seq, N);
	ck_assert_msg(on0 == N / 4 && on1 == N * 3 / 4,
		      "shard 0 had %u, shard 1 %u of %u", on0, on1, N);
	/*
	 * Within shard 1, its members take turns; the turn also moves on
	 * messages shard 0 delivers (the tree picks before route.c asks
	 * share_group_mine), so the shares are only about equal.
	 */
	for (unsigned i = 1; i < 4; i++)
		ck_assert_uint_ge(s[i]->queued_count, on1 / 4);

	/*
	 * The member on shard 0 goes, with no other member there: what it
	 * had queued goes to shard 1's members, and so does everything new.
	 */
	session_destroy(s[0]);
	g = share_group_get(b.shares, "$share/g/t", 10);
	ck_assert_uint_eq(g->refs, 2); /* shard 0's tree let go */
	ck_assert_uint_eq(atomic_load(&g->members[0]), 0);
	share_group_put(b.shares, g);
	for (unsigned i = 0; i < 50; i++) {
		struct msg *m = mk("t");

		ck_assert_uint_eq(route_message(&sh[0], m), 1); /* posted */
		msg_unref(m);
	}
	turns(0, 1);
	after = 0;
	for (unsigned i = 1; i < 4; i++)
		after += s[i]->queued_count;
	/* Its queued messages went over too (shard_post_shared). */
	ck_assert_uint_eq(after, on1 + on0 + 50);
	shards_teardown();
}

/*
 * Fleets are named in sequence (sensor0001, sensor0002...): their
 * sessions must still spread over the shards, with the real hash.
 */
static const char *const fleet_patterns[] = {
	"sensor%04d", "client-%d", "%d", "cicada-%016x",
};

START_TEST(test_sequential_ids_spread)
{
	struct broker fleet = { 0 };

	for (unsigned shards = 2; shards <= 8; shards *= 2) {
		unsigned count[8] = { 0 };
		char id[64];

		fleet.shard_count = shards;
		for (int i = 0; i < 4000; i++) {
			int n = snprintf(id, sizeof(id), fleet_patterns[_i], i);

			count[shard_of_client(&fleet, id, (size_t)n)]++;
		}
		/* Each within a fifth of its fair share. */
		for (unsigned i = 0; i < shards; i++) {
			ck_assert_uint_gt(count[i], 4000 / shards * 4 / 5);
			ck_assert_uint_lt(count[i], 4000 / shards * 6 / 5);
		}
	}
}
END_TEST

END_TEST

/* --------------------------------------------------------------- suite */

static Suite *share_suite(void)
{
	Suite *s = suite_create("share");
	TCase *tc = tcase_create("registry");
	TCase *tr = tcase_create("shards");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_registry_sizes);
	tcase_add_test(tc, test_get_put_refcount);
	tcase_add_test(tc, test_many_groups);
	tcase_add_test(tc, test_mine_one_shard);
	tcase_add_test(tc, test_mine_members_on_one);
	tcase_add_loop_test(tc, test_mine_split, 0, NELEM(split_rows));
	tcase_add_test(tc, test_mine_members_leave);
	tcase_add_test(tc, test_members_from_threads);
	tcase_add_loop_test(tc, test_sequential_ids_spread, 0,
			    NELEM(fleet_patterns));
	suite_add_tcase(s, tc);
	tcase_add_test(tr, test_route_to_other_shard);
	tcase_add_test(tr, test_route_post_dropped_at_fini);
	tcase_add_test(tr, test_route_shared_group_two_shards);
	suite_add_tcase(s, tr);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(share_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
