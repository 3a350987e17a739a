/*
 * Unit tests for broker/retain.c: set, replace and clear; retrieval by
 * wildcard filter and the '$' rule (checked against topic_match() as the
 * oracle); expiry on the way; reference counts; pruning; allocation
 * failures; deep topics and wide nodes.
 *
 * The test includes msg.c with free wrapped, to see exactly when a message
 * goes, and retain.c (with level_table.c, whose child tables grow too)
 * with calloc wrapped, to fail chosen allocations.
 */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t msg_frees; /* messages freed */
static uintptr_t msg_last_freed;

static void counted_free(void *p)
{
	if (p) {
		msg_frees++;
		msg_last_freed = (uintptr_t)p;
	}
	free(p);
}

#define free counted_free
#include "broker/msg.c"
#include "broker/objcache.c"
#undef free

/*
 * The tests drop a reference and then look at a message they know is
 * still alive.  Called through a volatile pointer, msg_unref() is not
 * inlined here, so gcc -O2 does not take the free() on its last-reference
 * path for a use after free (-Wuse-after-free).
 */
static void (*volatile drop)(struct msg *) = msg_unref;

/* Allocations left before one fails; negative: never fail. */
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
#include "broker/level_table.c"
#include "broker/retain.c"
#undef calloc

#include "protocol/topic.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct msg *mk(const char *topic, const char *payload)
{
	struct msg *m = msg_new(topic, strlen(topic), (const uint8_t *)payload,
				strlen(payload), NULL, 0, 1, true);

	ck_assert_ptr_nonnull(m);
	return m;
}

/* Store a message with the store's reference only. */
static struct msg *put(struct retain *r, const char *topic,
		       const char *payload, uint64_t expiry_at)
{
	struct msg *m = mk(topic, payload);

	m->expiry_at = expiry_at;
	ck_assert_int_eq(retain_set(r, m), 0);
	drop(m);
	return m;
}

static void clear(struct retain *r, const char *topic)
{
	struct msg *m = mk(topic, "");

	ck_assert_int_eq(retain_set(r, m), 0);
	ck_assert_uint_eq(m->refs, 1); /* an empty message is never kept */
	drop(m);
}

static void assert_empty(struct retain *r)
{
	ck_assert_uint_eq(retain_count(r), 0);
	ck_assert_uint_eq(r->nodes, 0);
	ck_assert_uint_eq(r->root->kids.used, 0);
	ck_assert_ptr_null(r->root->kids.slot);
}

/* ------------------------------------------------------------ recorder */

#define MAX_HITS 64

struct rec {
	size_t n;
	struct msg *msg[MAX_HITS];
	bool take_ref; /* keep a reference on each message passed */
};

static void rec_cb(void *arg, struct msg *m)
{
	struct rec *rc = arg;

	ck_assert_uint_lt(rc->n, MAX_HITS);
	rc->msg[rc->n++] = rc->take_ref ? msg_ref(m) : m;
}

static void match(struct retain *r, const char *filter,
		  unsigned long long now, struct rec *rc)
{
	rc->n = 0;
	retain_match(r, filter, strlen(filter), now, rec_cb, rc);
}

static int topic_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The topics passed, sorted and joined with '|'. */
static void rec_join(const struct rec *rc, char *out, size_t size)
{
	const char *t[MAX_HITS];
	size_t i, len = 0;

	for (i = 0; i < rc->n; i++)
		t[i] = rc->msg[i]->topic;
	qsort(t, rc->n, sizeof(t[0]), topic_cmp);
	out[0] = '\0';
	for (i = 0; i < rc->n; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s",
					i ? "|" : "", t[i]);
	ck_assert_uint_lt(len, size);
}

/* --------------------------------------------------- set, replace, clear */

START_TEST(test_set_replace_clear)
{
	struct retain *r = retain_new();
	struct msg *m1 = mk("a/b", "1"), *m2 = mk("a/b", "2");
	uintptr_t a1 = (uintptr_t)m1;
	struct rec rc = { 0 };

	ck_assert_int_eq(retain_set(r, m1), 0);
	ck_assert_uint_eq(m1->refs, 2);
	ck_assert_uint_eq(retain_count(r), 1);
	ck_assert_uint_eq(r->nodes, 2);
	drop(m1); /* the store's is the only reference now */

	/* The same message again changes nothing. */
	ck_assert_int_eq(retain_set(r, m1), 0);
	ck_assert_uint_eq(m1->refs, 1);
	ck_assert_uint_eq(retain_count(r), 1);

	match(r, "a/b", 0, &rc);
	ck_assert_uint_eq(rc.n, 1);
	ck_assert_ptr_eq(rc.msg[0], m1);

	/* Replacing frees the old one: nobody else held it. */
	msg_frees = 0;
	ck_assert_int_eq(retain_set(r, m2), 0);
	ck_assert_uint_eq(msg_frees, 1);
	ck_assert(msg_last_freed == a1);
	ck_assert_uint_eq(retain_count(r), 1);
	ck_assert_uint_eq(r->nodes, 2);
	drop(m2);
	match(r, "a/b", 0, &rc);
	ck_assert_uint_eq(rc.n, 1);
	ck_assert_ptr_eq(rc.msg[0], m2);
	ck_assert_mem_eq(rc.msg[0]->payload, "2", 1);

	/* Clearing an absent topic, or a node without a message. */
	msg_frees = 0;
	clear(r, "a/c");
	clear(r, "a");
	ck_assert_uint_eq(msg_frees, 2); /* just the two empty messages */
	ck_assert_uint_eq(retain_count(r), 1);
	ck_assert_uint_eq(r->nodes, 2);

	/* Clearing frees it and prunes the path. */
	msg_frees = 0;
	clear(r, "a/b");
	ck_assert_uint_eq(msg_frees, 2);
	match(r, "a/b", 0, &rc);
	ck_assert_uint_eq(rc.n, 0);
	assert_empty(r);
	retain_free(r);
}
END_TEST

START_TEST(test_clear_keeps_neighbours)
{
	struct retain *r = retain_new();
	struct rec rc = { 0 };

	put(r, "a", "1", 0);
	put(r, "a/b", "2", 0);
	put(r, "a/b/c", "3", 0);
	ck_assert_uint_eq(r->nodes, 3);
	clear(r, "a/b");
	ck_assert_uint_eq(r->nodes, 3); /* "a/b/c" still needs the node */
	clear(r, "a/b/c");
	ck_assert_uint_eq(r->nodes, 1);
	match(r, "#", 0, &rc);
	ck_assert_uint_eq(rc.n, 1);
	ck_assert_str_eq(rc.msg[0]->topic, "a");
	clear(r, "a");
	assert_empty(r);
	retain_free(r);
}
END_TEST

static const char *const invalid_topics[] = {
	"", "a/+", "+", "#", "a/#", "a\0b",
};

START_TEST(test_set_invalid)
{
	const char *topic = invalid_topics[_i];
	size_t len = _i == 5 ? 3 : strlen(topic);
	struct retain *r = retain_new();
	struct msg *m = msg_new(topic, len, (const uint8_t *)"x", 1, NULL, 0,
				0, true);

	ck_assert_int_eq(retain_set(r, m), -EINVAL);
	ck_assert_uint_eq(m->refs, 1);
	assert_empty(r);
	drop(m);
	retain_free(r);
}
END_TEST

/* ------------------------------------------------------ wildcard lookup */

static const char *const stored[] = {
	"a", "a/b", "a/b/c", "a/c", "b", "/", "/x", "a/",
	"$SYS/up", "$SYS", "$x/a",
	"sport/tennis/player1", "sport/tennis/player1/ranking",
	"sport/tennis/player2",
};

struct lookup_row {
	const char *filter;
	const char *want; /* topics passed, sorted, '|'-joined */
};

#define ALL_PLAIN                                                          \
	"/|/x|a|a/|a/b|a/b/c|a/c|b|sport/tennis/player1|"                  \
	"sport/tennis/player1/ranking|sport/tennis/player2"

static const struct lookup_row lookup_rows[] = {
	{ "a", "a" },
	{ "a/b", "a/b" },
	{ "a/+", "a/|a/b|a/c" },
	{ "a/#", "a|a/|a/b|a/b/c|a/c" },
	{ "a/b/c/#", "a/b/c" },
	{ "a/b/c/d", "" },
	{ "a/+/c", "a/b/c" },
	{ "+", "a|b" },
	{ "+/+", "/|/x|a/|a/b|a/c" },
	{ "+/+/+", "a/b/c|sport/tennis/player1|sport/tennis/player2" },
	{ "/+", "/|/x" },
	{ "/#", "/|/x" },
	{ "+/b", "a/b" },
	{ "#", ALL_PLAIN },
	{ "+/#", ALL_PLAIN },
	/* '$' topics: only filters naming their first level see them */
	{ "$SYS/#", "$SYS|$SYS/up" },
	{ "$SYS/+", "$SYS/up" },
	{ "$SYS", "$SYS" },
	{ "+/up", "" },
	{ "+/a", "" },
	{ "$x/+", "$x/a" },
	{ "$x/#", "$x/a" },
	/* the spec's examples */
	{ "sport/tennis/player1/#",
	  "sport/tennis/player1|sport/tennis/player1/ranking" },
	{ "sport/tennis/+", "sport/tennis/player1|sport/tennis/player2" },
	{ "sport/+/player1", "sport/tennis/player1" },
	{ "sport/+", "" },
	{ "sport/#",
	  "sport/tennis/player1|sport/tennis/player1/ranking|"
	  "sport/tennis/player2" },
	{ "nope/#", "" },
	{ "A", "" },
};

START_TEST(test_lookup)
{
	const struct lookup_row *row = &lookup_rows[_i];
	struct retain *r = retain_new();
	struct rec rc = { 0 };
	char got[512], oracle[512];
	size_t i, len = 0;

	for (i = 0; i < NELEM(stored); i++)
		put(r, stored[i], "v", 0);
	ck_assert_uint_eq(retain_count(r), NELEM(stored));

	/* The row agrees with the oracle, in stored order (sorted). */
	{
		const char *t[NELEM(stored)];
		size_t n = 0;

		for (i = 0; i < NELEM(stored); i++)
			if (topic_match(row->filter, strlen(row->filter),
					stored[i], strlen(stored[i])))
				t[n++] = stored[i];
		qsort(t, n, sizeof(t[0]), topic_cmp);
		oracle[0] = '\0';
		for (i = 0; i < n; i++)
			len += (size_t)snprintf(oracle + len,
						sizeof(oracle) - len, "%s%s",
						i ? "|" : "", t[i]);
		ck_assert_str_eq(oracle, row->want);
	}

	match(r, row->filter, 0, &rc);
	rec_join(&rc, got, sizeof(got));
	ck_assert_msg(strcmp(got, row->want) == 0, "filter \"%s\": got \"%s\"",
		      row->filter, got);
	/* Nothing expired, nothing dropped. */
	ck_assert_uint_eq(retain_count(r), NELEM(stored));
	retain_free(r);
}
END_TEST

/* --------------------------------------------------------------- expiry */

struct expiry_row {
	const char *filter;
	unsigned long long now;
	const char *want; /* passed */
	size_t count_after; /* messages left in the store */
	size_t nodes_after;
};

/*
 * Stored: e/1 expires at 100, e/2 never, e/3 at 200, e/3/x at 100, and
 * e/4 at 300.  A walk drops what it reaches and finds expired.
 */
static const struct expiry_row expiry_rows[] = {
	{ "e/+", 99, "e/1|e/2|e/3|e/4", 5, 6 },
	{ "e/+", 100, "e/2|e/3|e/4", 4, 5 }, /* at expiry_at: gone */
	{ "e/+", 150, "e/2|e/3|e/4", 4, 5 },
	{ "e/+", 200, "e/2|e/4", 3, 5 }, /* e/3's node stays for e/3/x */
	{ "e/#", 200, "e/2|e/4", 2, 3 },
	{ "e/#", 1000, "e/2", 1, 2 },
	{ "e/1", 100, "", 4, 5 }, /* a literal walk drops too */
	{ "e/3/x", 100, "", 4, 5 },
	{ "e/3/x", 99, "e/3/x", 5, 6 },
	{ "#", 250, "e/2|e/4", 2, 3 },
	{ "+/+", 250, "e/2|e/4", 3, 5 }, /* e/3/x not reached: kept */
	{ "x/#", 1000, "", 5, 6 }, /* nothing reached, nothing dropped */
};

START_TEST(test_expiry)
{
	const struct expiry_row *row = &expiry_rows[_i];
	struct retain *r = retain_new();
	struct rec rc = { 0 };
	char got[256];

	put(r, "e/1", "1", 100);
	put(r, "e/2", "2", 0);
	put(r, "e/3", "3", 200);
	put(r, "e/3/x", "x", 100);
	put(r, "e/4", "4", 300);
	ck_assert_uint_eq(r->nodes, 6);

	msg_frees = 0;
	match(r, row->filter, row->now, &rc);
	rec_join(&rc, got, sizeof(got));
	ck_assert_str_eq(got, row->want);
	ck_assert_uint_eq(retain_count(r), row->count_after);
	ck_assert_uint_eq(msg_frees, 5 - row->count_after);
	ck_assert_uint_eq(r->nodes, row->nodes_after);

	/* What is left is still found, and only it. */
	match(r, "#", 0, &rc);
	ck_assert_uint_eq(rc.n, row->count_after);
	retain_free(r);
}
END_TEST

/* Counts per device for the wide tests, where 64 hits are too few. */
static size_t dev_hits[4000];

static void dev_cb(void *arg, struct msg *m)
{
	unsigned long i = strtoul(m->topic + 4, NULL, 10);

	(void)arg;
	ck_assert_uint_lt(i, NELEM(dev_hits));
	dev_hits[i]++;
}

/*
 * Every other sibling expired and dropped while a '+' scan runs over
 * them: the deferred clearing must not make the scan skip or repeat one.
 */
START_TEST(test_expiry_many_siblings)
{
	struct retain *r = retain_new();
	char topic[32];
	size_t i;

	for (i = 0; i < 1000; i++) {
		snprintf(topic, sizeof(topic), "dev/%zu", i);
		put(r, topic, "v", i % 2 ? 0 : 50);
	}
	ck_assert_uint_eq(r->nodes, 1001);
	memset(dev_hits, 0, sizeof(dev_hits));
	retain_match(r, "dev/+", 5, 60, dev_cb, NULL);
	for (i = 0; i < 1000; i++)
		ck_assert_uint_eq(dev_hits[i], i % 2);
	ck_assert_uint_eq(retain_count(r), 500);
	ck_assert_uint_eq(r->nodes, 501);

	memset(dev_hits, 0, sizeof(dev_hits));
	retain_match(r, "dev/#", 5, 60, dev_cb, NULL);
	for (i = 0; i < 1000; i++)
		ck_assert_uint_eq(dev_hits[i], i % 2);
	retain_free(r);
}
END_TEST

/* ------------------------------------------------------ reference counts */

START_TEST(test_refcounts)
{
	struct retain *r = retain_new();
	struct msg *m1 = mk("t", "1"), *m2 = mk("t", "2");
	uintptr_t a2 = (uintptr_t)m2;
	struct rec rc = { .take_ref = true };

	/* The test keeps m1: replacing it must not free it. */
	ck_assert_int_eq(retain_set(r, m1), 0);
	ck_assert_uint_eq(m1->refs, 2);
	msg_frees = 0;
	ck_assert_int_eq(retain_set(r, m2), 0);
	ck_assert_uint_eq(msg_frees, 0);
	ck_assert_uint_eq(m1->refs, 1);
	ck_assert_uint_eq(m2->refs, 2);
	drop(m1);
	ck_assert_uint_eq(msg_frees, 1);
	drop(m2); /* the store's is the last reference */
	ck_assert_uint_eq(m2->refs, 1);

	/* A subscriber queue keeps what the callback was given. */
	match(r, "t", 0, &rc);
	ck_assert_uint_eq(rc.n, 1);
	ck_assert_ptr_eq(rc.msg[0], m2);
	ck_assert_uint_eq(m2->refs, 2);
	msg_frees = 0;
	clear(r, "t");
	ck_assert_uint_eq(msg_frees, 1); /* the empty message only */
	ck_assert_uint_eq(m2->refs, 1);
	drop(rc.msg[0]);
	ck_assert_uint_eq(msg_frees, 2);
	ck_assert(msg_last_freed == a2);

	/* Expiry drops the store's reference, not the queue's. */
	m1 = put(r, "u", "1", 10);
	msg_ref(m1);
	msg_frees = 0;
	match(r, "u", 10, &rc);
	ck_assert_uint_eq(rc.n, 0);
	ck_assert_uint_eq(msg_frees, 0);
	ck_assert_uint_eq(m1->refs, 1);
	drop(m1);
	ck_assert_uint_eq(msg_frees, 1);
	assert_empty(r);

	/* Freeing the store drops every reference it holds. */
	put(r, "x", "1", 0);
	put(r, "x/y", "2", 0);
	m1 = mk("z", "3");
	ck_assert_int_eq(retain_set(r, m1), 0);
	msg_frees = 0;
	retain_free(r);
	ck_assert_uint_eq(msg_frees, 2);
	ck_assert_uint_eq(m1->refs, 1);
	drop(m1);
}
END_TEST

/* --------------------------------------------------------- out of memory */

static const char *const oom_topics[] = {
	"a/b/c/d", /* new nodes below an existing one */
	"k3", /* a fourth root child: the root's table grows */
	"q",
};

START_TEST(test_out_of_memory)
{
	const char *topic = oom_topics[_i];
	struct retain *r;
	struct msg *m;
	struct rec rc = { 0 };
	long budget;
	int rc_set;

	for (budget = 0;; budget++) {
		r = retain_new();
		put(r, "a/b", "1", 0);
		put(r, "k1", "1", 0);
		m = mk(topic, "2");

		alloc_budget = budget;
		rc_set = retain_set(r, m);
		alloc_budget = -1;
		if (rc_set == 0) {
			ck_assert_uint_eq(retain_count(r), 3);
			ck_assert_uint_eq(m->refs, 2);
			drop(m);
			retain_free(r);
			break;
		}
		ck_assert_int_eq(rc_set, -ENOMEM);
		ck_assert_uint_eq(m->refs, 1);
		ck_assert_uint_eq(retain_count(r), 2);
		ck_assert_uint_eq(r->nodes, 3);
		match(r, "#", 0, &rc);
		ck_assert_uint_eq(rc.n, 2);
		drop(m);
		retain_free(r);
	}
	ck_assert_int_gt(budget, 0);
}
END_TEST

/* -------------------------------------------------------- deep and wide */

/* 65535 bytes of '/': 65536 empty levels, deeper than a stack allows. */
START_TEST(test_deep_topic)
{
	static char deep[TOPIC_MAX_LEN];
	struct retain *r = retain_new();
	struct rec rc = { 0 };
	struct msg *m;

	memset(deep, '/', sizeof(deep));
	m = msg_new(deep, sizeof(deep), (const uint8_t *)"v", 1, NULL, 0, 0,
		    true);
	ck_assert_int_eq(retain_set(r, m), 0);
	ck_assert_uint_eq(r->nodes, 65536);
	match(r, "#", 0, &rc);
	ck_assert_uint_eq(rc.n, 1);
	rc.n = 0;
	retain_match(r, deep, sizeof(deep), 0, rec_cb, &rc);
	ck_assert_uint_eq(rc.n, 1);
	deep[sizeof(deep) - 1] = '#';
	rc.n = 0;
	retain_match(r, deep, sizeof(deep), 0, rec_cb, &rc);
	ck_assert_uint_eq(rc.n, 1);
	/* "/.../+" is one level short of the topic. */
	deep[sizeof(deep) - 1] = '+';
	ck_assert(!topic_match(deep, sizeof(deep), m->topic, m->topic_len));
	rc.n = 0;
	retain_match(r, deep, sizeof(deep), 0, rec_cb, &rc);
	ck_assert_uint_eq(rc.n, 0);
	deep[sizeof(deep) - 1] = '/';
	/* Expired at the bottom: dropped, and 65536 nodes pruned. */
	m->expiry_at = 1;
	rc.n = 0;
	retain_match(r, deep, sizeof(deep), 1, rec_cb, &rc);
	ck_assert_uint_eq(rc.n, 0);
	assert_empty(r);
	drop(m);

	/* And one freed with the store, without recursion. */
	memset(deep, '/', sizeof(deep));
	put(r, "x", "1", 0);
	m = msg_new(deep, sizeof(deep), (const uint8_t *)"v", 1, NULL, 0, 0,
		    true);
	ck_assert_int_eq(retain_set(r, m), 0);
	drop(m);
	retain_free(r);
}
END_TEST

START_TEST(test_wide_node)
{
	struct retain *r = retain_new();
	struct rnode *dev;
	char topic[32];
	size_t i;

	for (i = 0; i < 4000; i++) {
		snprintf(topic, sizeof(topic), "dev/%zu", i);
		put(r, topic, "v", 0);
	}
	dev = kids_find(&r->root->kids, "dev", 3,
			level_hash(&r->key, "dev", 3));
	ck_assert_ptr_nonnull(dev);
	ck_assert_uint_eq(dev->kids.used, 4000);

	memset(dev_hits, 0, sizeof(dev_hits));
	retain_match(r, "dev/+", 5, 0, dev_cb, NULL);
	for (i = 0; i < 4000; i++)
		ck_assert_uint_eq(dev_hits[i], 1);
	for (i = 0; i < 4000; i += 97) {
		struct rec rc = { 0 };

		snprintf(topic, sizeof(topic), "dev/%zu", i);
		match(r, topic, 0, &rc);
		ck_assert_uint_eq(rc.n, 1);
		ck_assert_str_eq(rc.msg[0]->topic, topic);
	}
	for (i = 10; i < 4000; i++) {
		snprintf(topic, sizeof(topic), "dev/%zu", i);
		clear(r, topic);
	}
	ck_assert_uint_eq(retain_count(r), 10);
	ck_assert_uint_le(dev->kids.cap, 64); /* the table shrank */
	memset(dev_hits, 0, sizeof(dev_hits));
	retain_match(r, "dev/#", 5, 0, dev_cb, NULL);
	for (i = 0; i < 4000; i++)
		ck_assert_uint_eq(dev_hits[i], i < 10);
	for (i = 0; i < 10; i++) {
		snprintf(topic, sizeof(topic), "dev/%zu", i);
		clear(r, topic);
	}
	assert_empty(r);
	retain_free(r);
	retain_free(NULL);
}
END_TEST

static Suite *retain_suite(void)
{
	Suite *s = suite_create("retain");
	TCase *tc = tcase_create("retain");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_set_replace_clear);
	tcase_add_test(tc, test_clear_keeps_neighbours);
	tcase_add_loop_test(tc, test_set_invalid, 0, NELEM(invalid_topics));
	tcase_add_loop_test(tc, test_lookup, 0, NELEM(lookup_rows));
	tcase_add_loop_test(tc, test_expiry, 0, NELEM(expiry_rows));
	tcase_add_test(tc, test_expiry_many_siblings);
	tcase_add_test(tc, test_refcounts);
	tcase_add_loop_test(tc, test_out_of_memory, 0, NELEM(oom_topics));
	tcase_add_test(tc, test_deep_topic);
	tcase_add_test(tc, test_wide_node);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(retain_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
