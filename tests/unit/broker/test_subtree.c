/*
 * Unit tests for broker/subtree.c: the matching examples of MQTT 5.0
 * section 4.7, overlapping and replaced subscriptions, shared groups and
 * their rotation, pruning, allocation failures, deep filters, and a
 * randomized comparison with topic_match() as the oracle.
 *
 * The test includes subtree.c to read the node counter and to fail chosen
 * allocations (calloc and realloc are wrapped before the include, and
 * before that of level_table.c, whose child tables grow too).
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Allocations left before one fails; negative: never fail. */
static long alloc_budget = -1;

static bool alloc_may_succeed(void)
{
	if (alloc_budget < 0)
		return true;
	if (alloc_budget == 0)
		return false;
	alloc_budget--;
	return true;
}

static void *test_calloc(size_t n, size_t size)
{
	return alloc_may_succeed() ? calloc(n, size) : NULL;
}

static void *test_realloc(void *p, size_t size)
{
	return alloc_may_succeed() ? realloc(p, size) : NULL;
}

#define calloc test_calloc
#define realloc test_realloc
#include "broker/level_table.c"
#include "broker/subtree.c"
#undef calloc
#undef realloc

#include "protocol/topic.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Subscribers are opaque to the tree: addresses of these do. */
static char subscribers[4096];
#define SUB(i) ((void *)&subscribers[i])
#define SUB_INDEX(p) ((size_t)((char *)(p) - subscribers))

static const struct sub_opts opts0;

/* ------------------------------------------------------------- recorder */

#define MAX_HITS 64

struct hit {
	void *subscriber;
	struct sub_opts opts;
	char group[16]; /* "" for an ordinary subscription */
};

struct rec {
	size_t n;
	struct hit hit[MAX_HITS];
};

static void rec_cb(void *arg, void *subscriber, const struct sub_opts *opts,
		   const char *shared_group)
{
	struct rec *r = arg;
	struct hit *h;

	ck_assert_uint_lt(r->n, MAX_HITS);
	h = &r->hit[r->n++];
	h->subscriber = subscriber;
	h->opts = *opts;
	h->group[0] = '\0';
	if (shared_group) {
		ck_assert_uint_gt(strlen(shared_group), 0);
		ck_assert_uint_lt(strlen(shared_group), sizeof(h->group));
		strcpy(h->group, shared_group);
	}
}

static void match(struct subtree *t, const char *topic, struct rec *r)
{
	r->n = 0;
	subtree_match(t, topic, strlen(topic), rec_cb, r);
}

static int add(struct subtree *t, const char *filter, size_t sub,
	       uint32_t id, bool *replaced)
{
	struct sub_opts o = { .qos = 1, .subscription_id = id };

	return subtree_add(t, filter, strlen(filter), SUB(sub), &o, replaced);
}

static int rm(struct subtree *t, const char *filter, size_t sub)
{
	return subtree_remove(t, filter, strlen(filter), SUB(sub));
}

static void assert_empty(struct subtree *t)
{
	ck_assert_uint_eq(subtree_count(t), 0);
	ck_assert_uint_eq(t->nodes, 0);
	ck_assert_ptr_null(t->root->plus);
	ck_assert_ptr_null(t->root->multi);
	ck_assert_uint_eq(t->root->kids.used, 0);
	ck_assert_ptr_null(t->root->kids.slot);
}

/* ------------------------------------------------------ spec matching */

struct match_row {
	const char *filter;
	const char *topic;
	bool match;
};

/* MQTT 5.0 section 4.7 and its 3.1.1 twin, then the corners. */
static const struct match_row match_rows[] = {
	/* 4.7.1.2: the multi-level wildcard */
	{ "sport/tennis/player1/#", "sport/tennis/player1", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon",
	  true },
	{ "sport/tennis/player1/#", "sport/tennis/player2", false },
	{ "sport/tennis/player1/#", "sport/tennis", false },
	{ "sport/#", "sport", true },
	{ "sport/#", "sports", false },
	{ "#", "sport", true },
	{ "#", "/", true },
	{ "#", "a/b/c", true },
	/* 4.7.1.3: the single-level wildcard */
	{ "sport/tennis/+", "sport/tennis/player1", true },
	{ "sport/tennis/+", "sport/tennis/player2", true },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", false },
	{ "sport/+", "sport", false },
	{ "sport/+", "sport/", true },
	{ "+", "sport", true },
	{ "+", "sport/", false },
	{ "+/+", "/finance", true },
	{ "/+", "/finance", true },
	{ "+", "/finance", false },
	{ "+/tennis/#", "sport/tennis/player1", true },
	{ "+/tennis/#", "sport/tennis", true },
	{ "sport/+/player1", "sport/tennis/player1", true },
	{ "sport/+/player1", "sport//player1", true },
	/* 4.7.2: topics beginning with '$' */
	{ "#", "$SYS", false },
	{ "#", "$SYS/monitor/Clients", false },
	{ "+", "$SYS", false },
	{ "+/monitor/Clients", "$SYS/monitor/Clients", false },
	{ "+/#", "$SYS/x", false },
	{ "$SYS/#", "$SYS/monitor/Clients", true },
	{ "$SYS/#", "$SYS", true },
	{ "$SYS/monitor/+", "$SYS/monitor/Clients", true },
	{ "$SYS/+/Clients", "$SYS/monitor/Clients", true },
	{ "$SYS", "$SYS", true },
	{ "$SYS/x", "$sys/x", false },
	/* '$' past the first level is an ordinary byte */
	{ "a/+", "a/$b", true },
	{ "a/#", "a/$b/c", true },
	{ "+/$b", "a/$b", true },
	/* empty levels are levels */
	{ "/", "/", true },
	{ "+/+", "/", true },
	{ "+", "/", false },
	{ "//", "/", false },
	{ "a//b", "a//b", true },
	{ "a/+/b", "a//b", true },
	{ "a/+", "a/", true },
	{ "a/#", "a/", true },
	{ "a/b", "a/b/", false },
	{ "a/b/", "a/b", false },
	{ "/#", "/", true },
	{ "/#", "a", false },
	/* literal comparison is exact */
	{ "ACCOUNTS", "Accounts", false },
	{ "a/b", "a", false },
	{ "a", "a/b", false },
	{ "a/bc", "a/b", false },
	{ "Accounts payable", "Accounts payable", true },
};

START_TEST(test_spec_match)
{
	const struct match_row *r = &match_rows[_i];
	struct subtree *t = subtree_new();
	struct rec rec;
	bool replaced;

	ck_assert_ptr_nonnull(t);
	/* The oracle agrees with the row, so the row is right. */
	ck_assert(topic_match(r->filter, strlen(r->filter), r->topic,
			      strlen(r->topic)) == r->match);
	ck_assert_int_eq(add(t, r->filter, 1, 7, &replaced), 0);
	ck_assert(!replaced);
	match(t, r->topic, &rec);
	ck_assert_msg(rec.n == (r->match ? 1u : 0u),
		      "filter \"%s\" topic \"%s\": %zu hits", r->filter,
		      r->topic, rec.n);
	if (r->match) {
		ck_assert_ptr_eq(rec.hit[0].subscriber, SUB(1));
		ck_assert_uint_eq(rec.hit[0].opts.subscription_id, 7);
		ck_assert_str_eq(rec.hit[0].group, "");
	}
	ck_assert_int_eq(rm(t, r->filter, 1), 0);
	assert_empty(t);
	subtree_free(t);
}
END_TEST

/* The same rows through a shared group: one delivery or none. */
START_TEST(test_spec_match_shared)
{
	const struct match_row *r = &match_rows[_i];
	struct subtree *t = subtree_new();
	char filter[128];
	struct rec rec;

	snprintf(filter, sizeof(filter), "$share/g/%s", r->filter);
	ck_assert_int_eq(add(t, filter, 1, 0, NULL), 0);
	ck_assert_int_eq(add(t, filter, 2, 0, NULL), 0);
	match(t, r->topic, &rec);
	ck_assert_uint_eq(rec.n, r->match ? 1 : 0);
	if (r->match)
		ck_assert_str_eq(rec.hit[0].group, "g");
	ck_assert_int_eq(rm(t, filter, 1), 0);
	ck_assert_int_eq(rm(t, filter, 2), 0);
	assert_empty(t);
	subtree_free(t);
}
END_TEST

/* ------------------------------------------------- overlap and replace */

START_TEST(test_overlap_each_filter_reported)
{
	static const char *const filters[] = {
		"a/b", "a/+", "a/#", "#", "+/b", "+/+", "+/#",
	};
	struct subtree *t = subtree_new();
	bool seen[NELEM(filters)] = { false };
	struct rec rec;
	size_t i;

	for (i = 0; i < NELEM(filters); i++)
		ck_assert_int_eq(add(t, filters[i], 1, (uint32_t)i + 1, NULL),
				 0);
	ck_assert_int_eq(add(t, "a/b", 2, 100, NULL), 0);
	ck_assert_int_eq(add(t, "a/c", 3, 200, NULL), 0);
	ck_assert_uint_eq(subtree_count(t), NELEM(filters) + 2);

	match(t, "a/b", &rec);
	ck_assert_uint_eq(rec.n, NELEM(filters) + 1);
	for (i = 0; i < rec.n; i++) {
		uint32_t id = rec.hit[i].opts.subscription_id;

		if (rec.hit[i].subscriber == SUB(2)) {
			ck_assert_uint_eq(id, 100);
			continue;
		}
		ck_assert_ptr_eq(rec.hit[i].subscriber, SUB(1));
		ck_assert_uint_ge(id, 1);
		ck_assert_uint_le(id, NELEM(filters));
		ck_assert_msg(!seen[id - 1], "filter %u reported twice", id);
		seen[id - 1] = true;
	}

	/* One of them gone, the others still reported. */
	ck_assert_int_eq(rm(t, "a/+", 1), 0);
	match(t, "a/b", &rec);
	ck_assert_uint_eq(rec.n, NELEM(filters));
	subtree_free(t);
}
END_TEST

START_TEST(test_replace)
{
	struct subtree *t = subtree_new();
	struct sub_opts o = { .qos = 0 };
	bool replaced = true;
	struct rec rec;

	ck_assert_int_eq(subtree_add(t, "a/b", 3, SUB(1), &o, &replaced), 0);
	ck_assert(!replaced);
	o = (struct sub_opts){ .qos = 2, .no_local = true,
			       .retain_as_published = true,
			       .retain_handling = 2, .subscription_id = 9 };
	ck_assert_int_eq(subtree_add(t, "a/b", 3, SUB(1), &o, &replaced), 0);
	ck_assert(replaced);
	ck_assert_uint_eq(subtree_count(t), 1);
	ck_assert_uint_eq(t->nodes, 2);

	match(t, "a/b", &rec);
	ck_assert_uint_eq(rec.n, 1);
	ck_assert_uint_eq(rec.hit[0].opts.qos, 2);
	ck_assert(rec.hit[0].opts.no_local);
	ck_assert(rec.hit[0].opts.retain_as_published);
	ck_assert_uint_eq(rec.hit[0].opts.retain_handling, 2);
	ck_assert_uint_eq(rec.hit[0].opts.subscription_id, 9);

	/* Another subscriber is not a replacement. */
	ck_assert_int_eq(subtree_add(t, "a/b", 3, SUB(2), &o, &replaced), 0);
	ck_assert(!replaced);
	/* Nor is the same filter shared, nor another group. */
	ck_assert_int_eq(add(t, "$share/g/a/b", 1, 1, &replaced), 0);
	ck_assert(!replaced);
	ck_assert_int_eq(add(t, "$share/h/a/b", 1, 1, &replaced), 0);
	ck_assert(!replaced);
	ck_assert_int_eq(add(t, "$share/g/a/b", 1, 5, &replaced), 0);
	ck_assert(replaced);
	ck_assert_uint_eq(subtree_count(t), 4);

	match(t, "a/b", &rec);
	ck_assert_uint_eq(rec.n, 4);
	for (size_t i = 0; i < rec.n; i++)
		if (strcmp(rec.hit[i].group, "g") == 0)
			ck_assert_uint_eq(rec.hit[i].opts.subscription_id, 5);
	subtree_free(t);
}
END_TEST

/* ------------------------------------------------------------- errors */

struct absent_row {
	const char *present; /* held by subscriber 1 first, or NULL */
	const char *filter; /* then removed for subscriber sub */
	size_t sub;
};

static const struct absent_row absent_rows[] = {
	{ NULL, "a", 1 },
	{ NULL, "$share/g/a", 1 },
	{ "a/b", "a/b", 2 }, /* another subscriber's */
	{ "a/b/c", "a/b", 1 }, /* a node, but no subscription on it */
	{ "a/b", "a/b/c", 1 },
	{ "a/+", "a/b", 1 }, /* '+' is not a literal */
	{ "a/b", "a/+", 1 },
	{ "a/#", "a", 1 },
	{ "a", "$share/g/a", 1 }, /* ordinary is not shared */
	{ "$share/g/a", "a", 1 }, /* nor the other way */
	{ "$share/g/a", "$share/h/a", 1 }, /* another group */
	{ "$share/g/a", "$share/g/b", 1 }, /* same group, other filter */
	{ "$share/g/a", "$share/g/a", 2 }, /* not a member */
	{ "a", "$share/g", 1 }, /* not even a valid filter */
	{ "a", "", 1 },
};

START_TEST(test_remove_absent)
{
	const struct absent_row *r = &absent_rows[_i];
	struct subtree *t = subtree_new();
	size_t nodes;

	if (r->present)
		ck_assert_int_eq(add(t, r->present, 1, 0, NULL), 0);
	nodes = t->nodes;
	ck_assert_int_eq(rm(t, r->filter, r->sub), -ENOENT);
	/* A failed remove changes nothing. */
	ck_assert_uint_eq(subtree_count(t), r->present ? 1 : 0);
	ck_assert_uint_eq(t->nodes, nodes);
	if (r->present) {
		ck_assert_int_eq(rm(t, r->present, 1), 0);
		ck_assert_int_eq(rm(t, r->present, 1), -ENOENT);
	}
	assert_empty(t);
	subtree_free(t);
}
END_TEST

static const char *const invalid_filters[] = {
	"", "a/#/b", "a#", "a+", "+a/b", "a/b#", "$share/g", "$share//a",
	"$share/g/", "$share/g+/a", "$share/g/a/#/b",
};

START_TEST(test_add_invalid)
{
	const char *f = invalid_filters[_i];
	struct subtree *t = subtree_new();
	bool replaced = true;

	ck_assert_int_eq(add(t, f, 1, 0, &replaced), -EINVAL);
	ck_assert(!replaced);
	assert_empty(t);
	subtree_free(t);
}
END_TEST

START_TEST(test_add_null_subscriber)
{
	struct subtree *t = subtree_new();

	ck_assert_int_eq(subtree_add(t, "a", 1, NULL, &opts0, NULL), -EINVAL);
	assert_empty(t);
	subtree_free(t);
}
END_TEST

/* ----------------------------------------------------- shared groups */

START_TEST(test_shared_round_robin_even)
{
	struct subtree *t = subtree_new();
	size_t got[3] = { 0 };
	struct rec rec;
	size_t k;

	for (k = 0; k < 3; k++)
		ck_assert_int_eq(add(t, "$share/work/jobs/+", k, 0, NULL), 0);
	ck_assert_uint_eq(subtree_count(t), 3);
	for (k = 0; k < 300; k++) {
		match(t, "jobs/x", &rec);
		ck_assert_uint_eq(rec.n, 1);
		ck_assert_str_eq(rec.hit[0].group, "work");
		/* Strict rotation in arrival order. */
		ck_assert_ptr_eq(rec.hit[0].subscriber, SUB(k % 3));
		got[SUB_INDEX(rec.hit[0].subscriber)]++;
	}
	ck_assert_uint_eq(got[0], 100);
	ck_assert_uint_eq(got[1], 100);
	ck_assert_uint_eq(got[2], 100);
	/* A topic the group does not match leaves the rotation alone. */
	match(t, "other/x", &rec);
	ck_assert_uint_eq(rec.n, 0);
	match(t, "jobs/y", &rec);
	ck_assert_ptr_eq(rec.hit[0].subscriber, SUB(0));
	subtree_free(t);
}
END_TEST

START_TEST(test_shared_groups_each_deliver)
{
	struct subtree *t = subtree_new();
	size_t g1 = 0, g2 = 0, g1_hash = 0, plain = 0, i, k;
	struct rec rec;

	ck_assert_int_eq(add(t, "$share/g1/a/+", 1, 0, NULL), 0);
	ck_assert_int_eq(add(t, "$share/g1/a/+", 2, 0, NULL), 0);
	ck_assert_int_eq(add(t, "$share/g2/a/+", 3, 0, NULL), 0);
	ck_assert_int_eq(add(t, "$share/g2/a/+", 4, 0, NULL), 0);
	/* Same group name, other filter: another shared subscription. */
	ck_assert_int_eq(add(t, "$share/g1/a/#", 5, 0, NULL), 0);
	ck_assert_int_eq(add(t, "a/+", 1, 0, NULL), 0);
	ck_assert_uint_eq(subtree_count(t), 6);

	for (k = 0; k < 10; k++) {
		match(t, "a/x", &rec);
		ck_assert_uint_eq(rec.n, 4);
		for (i = 0; i < rec.n; i++) {
			size_t s = SUB_INDEX(rec.hit[i].subscriber);

			if (!rec.hit[i].group[0]) {
				ck_assert_uint_eq(s, 1);
				plain++;
			} else if (s == 5) {
				ck_assert_str_eq(rec.hit[i].group, "g1");
				g1_hash++;
			} else if (strcmp(rec.hit[i].group, "g1") == 0) {
				ck_assert(s == 1 || s == 2);
				g1++;
			} else {
				ck_assert_str_eq(rec.hit[i].group, "g2");
				ck_assert(s == 3 || s == 4);
				g2++;
			}
		}
	}
	ck_assert_uint_eq(g1, 10);
	ck_assert_uint_eq(g2, 10);
	ck_assert_uint_eq(g1_hash, 10);
	ck_assert_uint_eq(plain, 10);
	subtree_free(t);
}
END_TEST

/*
 * Rotation after removals.  members: how many join (0, 1, ...); before:
 * publishes before the removal; gone: the member removed; then the
 * members expected for the next publishes, -1 ending the list.
 */
struct rotation_row {
	size_t members;
	size_t before;
	size_t gone;
	int next[8];
};

static const struct rotation_row rotation_rows[] = {
	/* The member under the cursor leaves: its successor is next. */
	{ 3, 1, 1, { 2, 0, 2, 0, -1 } },
	/* A member before the cursor leaves: the cursor stays on C. */
	{ 4, 2, 0, { 2, 3, 1, 2, -1 } },
	/* A member after the cursor leaves. */
	{ 4, 1, 3, { 1, 2, 0, 1, -1 } },
	/* The cursor is on the last member, which leaves: wrap to 0. */
	{ 3, 2, 2, { 0, 1, 0, 1, -1 } },
	/* The cursor wrapped to 0 and member 0 leaves. */
	{ 3, 3, 0, { 1, 2, 1, -1 } },
	/* The only member leaves: the group is gone. */
	{ 1, 1, 0, { -1 } },
};

START_TEST(test_shared_remove_during_rotation)
{
	const struct rotation_row *r = &rotation_rows[_i];
	struct subtree *t = subtree_new();
	struct rec rec;
	size_t k;

	for (k = 0; k < r->members; k++)
		ck_assert_int_eq(add(t, "$share/g/t", k, 0, NULL), 0);
	for (k = 0; k < r->before; k++) {
		match(t, "t", &rec);
		ck_assert_ptr_eq(rec.hit[0].subscriber, SUB(k % r->members));
	}
	ck_assert_int_eq(rm(t, "$share/g/t", r->gone), 0);
	ck_assert_uint_eq(subtree_count(t), r->members - 1);
	for (k = 0; r->next[k] >= 0; k++) {
		match(t, "t", &rec);
		ck_assert_uint_eq(rec.n, 1);
		ck_assert_msg(rec.hit[0].subscriber == SUB(r->next[k]),
			      "row %d publish %zu: got %zu, want %d", _i, k,
			      SUB_INDEX(rec.hit[0].subscriber), r->next[k]);
	}
	if (r->members == 1) {
		match(t, "t", &rec);
		ck_assert_uint_eq(rec.n, 0);
		assert_empty(t);
	}
	subtree_free(t);
}
END_TEST

/* Members leave and join while messages flow: nobody starves. */
START_TEST(test_shared_churn_fair)
{
	struct subtree *t = subtree_new();
	size_t got[8] = { 0 }, k;
	struct rec rec;

	for (k = 0; k < 8; k++)
		ck_assert_int_eq(add(t, "$share/g/t", k, 0, NULL), 0);
	for (k = 0; k < 800; k++) {
		match(t, "t", &rec);
		ck_assert_uint_eq(rec.n, 1);
		got[SUB_INDEX(rec.hit[0].subscriber)]++;
		if (k % 10 == 9) { /* the one just served leaves and rejoins */
			size_t s = SUB_INDEX(rec.hit[0].subscriber);

			ck_assert_int_eq(rm(t, "$share/g/t", s), 0);
			ck_assert_int_eq(add(t, "$share/g/t", s, 0, NULL), 0);
		}
	}
	for (k = 0; k < 8; k++)
		ck_assert_uint_ge(got[k], 90);
	ck_assert_uint_eq(subtree_count(t), 8);
	subtree_free(t);
}
END_TEST

/* ------------------------------------------------------------ pruning */

START_TEST(test_prune_partial)
{
	struct subtree *t = subtree_new();

	ck_assert_int_eq(add(t, "a/b/c", 1, 0, NULL), 0);
	ck_assert_int_eq(add(t, "a/b", 1, 0, NULL), 0);
	ck_assert_int_eq(add(t, "a/+/#", 1, 0, NULL), 0);
	ck_assert_uint_eq(t->nodes, 5); /* a b c + # */
	ck_assert_int_eq(rm(t, "a/+/#", 1), 0);
	ck_assert_uint_eq(t->nodes, 3);
	ck_assert_int_eq(rm(t, "a/b/c", 1), 0);
	ck_assert_uint_eq(t->nodes, 2); /* "a/b" still holds one */
	ck_assert_int_eq(add(t, "$share/g/a/b/x", 1, 0, NULL), 0);
	ck_assert_uint_eq(t->nodes, 3);
	ck_assert_int_eq(rm(t, "a/b", 1), 0);
	ck_assert_uint_eq(t->nodes, 3); /* the group's path stays */
	ck_assert_int_eq(rm(t, "$share/g/a/b/x", 1), 0);
	assert_empty(t);
	subtree_free(t);
}
END_TEST

/* One node with thousands of children, one per device id. */
START_TEST(test_many_children)
{
	struct subtree *t = subtree_new();
	struct node *dev;
	char f[64];
	struct rec rec;
	size_t i;

	for (i = 0; i < 4000; i++) {
		snprintf(f, sizeof(f), "dev/%zu/temp", i);
		ck_assert_int_eq(add(t, f, i, (uint32_t)i, NULL), 0);
	}
	ck_assert_int_eq(add(t, "dev/+/temp", 4000, 0,
			     NULL), 0);
	ck_assert_uint_eq(subtree_count(t), 4001);
	ck_assert_uint_eq(t->nodes, 1 + 2 * 4000 + 2);
	dev = kids_find(&t->root->kids, "dev", 3,
			level_hash(&t->key, "dev", 3));
	ck_assert_ptr_nonnull(dev);
	ck_assert_uint_eq(dev->kids.used, 4000);
	ck_assert_uint_le(dev->kids.used * 4, dev->kids.cap * 3);

	for (i = 0; i < 4000; i += 37) {
		snprintf(f, sizeof(f), "dev/%zu/temp", i);
		match(t, f, &rec);
		ck_assert_uint_eq(rec.n, 2);
	}
	/* Remove all but ten: the table shrinks with them. */
	for (i = 10; i < 4000; i++) {
		snprintf(f, sizeof(f), "dev/%zu/temp", i);
		ck_assert_int_eq(rm(t, f, i), 0);
	}
	ck_assert_uint_eq(dev->kids.used, 10);
	ck_assert_uint_le(dev->kids.cap, 64);
	for (i = 0; i < 4000; i += 7) {
		snprintf(f, sizeof(f), "dev/%zu/temp", i);
		match(t, f, &rec);
		ck_assert_uint_eq(rec.n, i < 10 ? 2 : 1);
	}
	for (i = 0; i < 10; i++) {
		snprintf(f, sizeof(f), "dev/%zu/temp", i);
		ck_assert_int_eq(rm(t, f, i), 0);
	}
	ck_assert_int_eq(rm(t, "dev/+/temp", 4000), 0);
	assert_empty(t);
	subtree_free(t);
}
END_TEST

/* Thousands of subscribers on one filter, added and removed. */
START_TEST(test_many_subscribers)
{
	struct subtree *t = subtree_new();
	struct rec rec;
	size_t i;

	for (i = 0; i < 4000; i++)
		ck_assert_int_eq(add(t, "alerts/#", i, 0, NULL), 0);
	ck_assert_uint_eq(subtree_count(t), 4000);
	for (i = 0; i < 4000; i += 2)
		ck_assert_int_eq(rm(t, "alerts/#", i), 0);
	for (i = 0; i < 4000; i++) {
		bool replaced;

		if (i % 40 != 1)
			continue;
		ck_assert_int_eq(add(t, "alerts/#", i, 0, &replaced), 0);
		ck_assert(replaced);
	}
	for (i = 1; i < 4000; i += 2)
		if (i != 63) /* keep one */
			ck_assert_int_eq(rm(t, "alerts/#", i), 0);
	match(t, "alerts/x", &rec);
	ck_assert_uint_eq(rec.n, 1);
	ck_assert_ptr_eq(rec.hit[0].subscriber, SUB(63));
	ck_assert_int_eq(rm(t, "alerts/#", 63), 0);
	assert_empty(t);
	subtree_free(t);
}
END_TEST

/* ------------------------------------------------------ deep filters */

/* 65535 bytes of '/': 65536 empty levels, deeper than a stack allows. */
static char deep[TOPIC_MAX_LEN];

static void deep_slashes(void)
{
	memset(deep, '/', sizeof(deep));
}

/* "+/+/.../+" or "a/a/.../a": 32768 levels of c. */
static void deep_levels(char c)
{
	for (size_t i = 0; i < sizeof(deep); i++)
		deep[i] = i % 2 ? '/' : c;
}

static void deep_add(struct subtree *t, size_t sub)
{
	ck_assert_int_eq(subtree_add(t, deep, sizeof(deep), SUB(sub), &opts0,
				     NULL), 0);
}

START_TEST(test_deep_filter)
{
	static char filter[3][TOPIC_MAX_LEN];
	struct subtree *t = subtree_new();
	struct rec rec;
	size_t k, f, want;

	deep_slashes();
	deep_add(t, 0);
	memcpy(filter[0], deep, sizeof(deep));
	ck_assert_uint_eq(t->nodes, 65536);
	deep[sizeof(deep) - 1] = '#'; /* "/.../#" */
	deep_add(t, 1);
	memcpy(filter[1], deep, sizeof(deep));
	deep_levels('+');
	deep_add(t, 2);
	memcpy(filter[2], deep, sizeof(deep));

	/* All slashes, one fewer, and 32768 levels of "a". */
	for (k = 0; k < 3; k++) {
		size_t len = sizeof(deep);

		if (k < 2)
			deep_slashes();
		else
			deep_levels('a');
		if (k == 1)
			len--;
		rec.n = 0;
		subtree_match(t, deep, len, rec_cb, &rec);
		for (f = 0, want = 0; f < 3; f++)
			want += topic_match(filter[f], sizeof(deep), deep, len);
		ck_assert_uint_eq(rec.n, want);
		ck_assert_uint_eq(rec.n, k == 0 ? 2 : 1);
	}

	deep_slashes();
	ck_assert_int_eq(subtree_remove(t, deep, sizeof(deep), SUB(0)), 0);
	/* The other two are freed with the tree, without recursion. */
	subtree_free(t);
}
END_TEST

/* --------------------------------------------------- out of memory */

struct oom_row {
	const char *filter;
	bool allocates; /* whether adding it needs memory at all */
};

static const struct oom_row oom_rows[] = {
	{ "a/b/c/d", true }, /* new nodes below an existing one */
	{ "x/+/y/#", true }, /* a new branch with wildcards */
	{ "a/b", false }, /* a second subscription: the table has room */
	{ "$share/g/a/b", false }, /* a second member: the array has room */
	{ "$share/h/a/b", true }, /* a new group on an existing node */
	{ "$share/h/p/q/r", true }, /* a new group on new nodes */
	{ "k3", true }, /* a fourth root child: the root's table grows */
	{ "a/+", true }, /* a wildcard child */
};

START_TEST(test_out_of_memory)
{
	const struct oom_row *r = &oom_rows[_i];
	size_t count, nodes;
	struct subtree *t;
	struct rec rec;
	long budget;
	int rc;

	for (budget = 0;; budget++) {
		t = subtree_new();
		ck_assert_int_eq(add(t, "a/b", 1, 0, NULL), 0);
		ck_assert_int_eq(add(t, "$share/g/a/b", 1, 0, NULL), 0);
		ck_assert_int_eq(add(t, "k1", 1, 0, NULL), 0);
		ck_assert_int_eq(add(t, "k2", 1, 0, NULL), 0);
		count = subtree_count(t);
		nodes = t->nodes;

		alloc_budget = budget;
		rc = add(t, r->filter, 2, 0, NULL);
		alloc_budget = -1;
		if (rc == 0) {
			ck_assert_uint_eq(subtree_count(t), count + 1);
			subtree_free(t);
			break;
		}
		ck_assert_int_eq(rc, -ENOMEM);
		ck_assert_uint_eq(subtree_count(t), count);
		ck_assert_uint_eq(t->nodes, nodes);
		match(t, "a/b", &rec);
		ck_assert_uint_eq(rec.n, 2);
		subtree_free(t);
	}
	ck_assert(r->allocates == (budget > 0));
}
END_TEST

/* ------------------------------------------------------ differential */

static uint64_t rng_state;

static uint32_t rng(uint32_t n)
{
	/* xorshift64*: fixed seed, same sequence on every platform. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 33) % n;
}

static const char *const levels[] = { "a", "b", "", "$x", "ab" };

/* Levels from a small alphabet; never "", which is no topic. */
static size_t random_topic(char *buf)
{
	size_t n, len = 0, i;
	const char *l;

again:
	n = 1 + rng(5);
	for (i = 0; i < n; i++) {
		if (i)
			buf[len++] = '/';
		l = levels[rng(NELEM(levels))];
		memcpy(buf + len, l, strlen(l));
		len += strlen(l);
	}
	if (!len)
		goto again;
	buf[len] = '\0';
	return len;
}

/* The same, with '+' and a last '#' mixed in; never "". */
static size_t random_filter(char *buf)
{
	size_t n, len = 0, i;
	const char *l;

again:
	n = 1 + rng(5);
	for (i = 0; i < n; i++) {
		if (i)
			buf[len++] = '/';
		if (i + 1 == n && rng(4) == 0)
			l = "#";
		else if (rng(3) == 0)
			l = "+";
		else
			l = levels[rng(NELEM(levels))];
		memcpy(buf + len, l, strlen(l));
		len += strlen(l);
	}
	if (!len)
		goto again;
	buf[len] = '\0';
	return len;
}

/* 2,000 single pairs, each in a fresh tree. */
START_TEST(test_random_pairs)
{
	char f[64], n[64];
	size_t flen, nlen, k, matched = 0;
	struct rec rec;

	rng_state = 0x9e3779b97f4a7c15ULL;
	for (k = 0; k < 2000; k++) {
		struct subtree *t = subtree_new();
		bool want;

		flen = random_filter(f);
		nlen = random_topic(n);
		ck_assert(topic_filter_is_valid(f, flen));
		ck_assert(topic_name_is_valid(n, nlen));
		want = topic_match(f, flen, n, nlen);
		matched += want;
		ck_assert_int_eq(subtree_add(t, f, flen, SUB(1), &opts0, NULL),
				 0);
		rec.n = 0;
		subtree_match(t, n, nlen, rec_cb, &rec);
		ck_assert_msg(rec.n == (want ? 1u : 0u),
			      "filter \"%s\" topic \"%s\": want %d got %zu", f,
			      n, want, rec.n);
		subtree_free(t);
	}
	/* The alphabet is small enough for both outcomes to be common. */
	ck_assert_uint_gt(matched, 100);
	ck_assert_uint_lt(matched, 1900);
}
END_TEST

#define TREE_FILTERS 600
#define TREE_TOPICS 300

static char tree_filters[TREE_FILTERS][64];
static size_t hits[TREE_FILTERS];

static void count_cb(void *arg, void *subscriber, const struct sub_opts *o,
		     const char *shared_group)
{
	size_t i = SUB_INDEX(subscriber);

	(void)arg;
	(void)o;
	ck_assert_ptr_null(shared_group);
	ck_assert_uint_lt(i, TREE_FILTERS);
	hits[i]++;
}

static void check_tree(struct subtree *t, const bool *present)
{
	char n[64];
	size_t nlen, k, i;

	for (k = 0; k < TREE_TOPICS; k++) {
		nlen = random_topic(n);
		memset(hits, 0, sizeof(hits));
		subtree_match(t, n, nlen, count_cb, NULL);
		for (i = 0; i < TREE_FILTERS; i++) {
			const char *f = tree_filters[i];
			bool want = present[i] &&
				    topic_match(f, strlen(f), n, nlen);

			ck_assert_msg(hits[i] == (want ? 1u : 0u),
				      "filter %zu \"%s\" topic \"%s\": %zu",
				      i, f, n, hits[i]);
		}
	}
}

/*
 * One tree of 600 random filters (repeats included, one subscriber each),
 * checked against the oracle, then emptied in random order with checks
 * along the way: matching must survive the deletions and pruning.
 */
START_TEST(test_random_tree)
{
	struct subtree *t = subtree_new();
	static bool present[TREE_FILTERS];
	size_t order[TREE_FILTERS], i, j, tmp;

	rng_state = 0x0123456789abcdefULL;
	for (i = 0; i < TREE_FILTERS; i++) {
		random_filter(tree_filters[i]);
		ck_assert_int_eq(add(t, tree_filters[i], i, 0, NULL), 0);
		present[i] = true;
		order[i] = i;
	}
	ck_assert_uint_eq(subtree_count(t), TREE_FILTERS);
	check_tree(t, present);

	for (i = TREE_FILTERS - 1; i > 0; i--) {
		j = rng((uint32_t)i + 1);
		tmp = order[i];
		order[i] = order[j];
		order[j] = tmp;
	}
	for (i = 0; i < TREE_FILTERS; i++) {
		ck_assert_int_eq(rm(t, tree_filters[order[i]], order[i]), 0);
		present[order[i]] = false;
		if (i == TREE_FILTERS / 3 || i == 2 * TREE_FILTERS / 3)
			check_tree(t, present);
	}
	assert_empty(t);
	subtree_free(t);
}
END_TEST

/* A tree freed full, groups and all: the leak checker has the last word. */
START_TEST(test_free_full)
{
	struct subtree *t = subtree_new();
	char f[64];
	size_t i;

	rng_state = 42;
	for (i = 0; i < 300; i++) {
		random_filter(f);
		ck_assert_int_eq(add(t, f, i, 0, NULL), 0);
	}
	for (i = 0; i < 50; i++) {
		char s[80];

		random_filter(f);
		snprintf(s, sizeof(s), "$share/g%zu/%s", i % 4, f);
		ck_assert_int_eq(add(t, s, i, 0, NULL), 0);
	}
	subtree_free(t);
	subtree_free(NULL);
}
END_TEST

static Suite *subtree_suite(void)
{
	Suite *s = suite_create("subtree");
	TCase *tc = tcase_create("subtree");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_spec_match, 0, NELEM(match_rows));
	tcase_add_loop_test(tc, test_spec_match_shared, 0, NELEM(match_rows));
	tcase_add_test(tc, test_overlap_each_filter_reported);
	tcase_add_test(tc, test_replace);
	tcase_add_loop_test(tc, test_remove_absent, 0, NELEM(absent_rows));
	tcase_add_loop_test(tc, test_add_invalid, 0, NELEM(invalid_filters));
	tcase_add_test(tc, test_add_null_subscriber);
	tcase_add_test(tc, test_shared_round_robin_even);
	tcase_add_test(tc, test_shared_groups_each_deliver);
	tcase_add_loop_test(tc, test_shared_remove_during_rotation, 0,
			    NELEM(rotation_rows));
	tcase_add_test(tc, test_shared_churn_fair);
	tcase_add_test(tc, test_prune_partial);
	tcase_add_test(tc, test_many_children);
	tcase_add_test(tc, test_many_subscribers);
	tcase_add_test(tc, test_deep_filter);
	tcase_add_loop_test(tc, test_out_of_memory, 0, NELEM(oom_rows));
	tcase_add_test(tc, test_random_pairs);
	tcase_add_test(tc, test_random_tree);
	tcase_add_test(tc, test_free_full);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(subtree_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
