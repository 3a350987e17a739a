/*
 * Unit tests for broker/inbox.c: FIFO through one ring, the indices
 * wrapping many times, per-producer order across the ring/overflow
 * boundary (including posts that find room in the ring again while older
 * items still wait in the overflow), round-robin under max, posting from
 * inside the drain callback, bad sizes, and a stress run of 4 producer
 * threads against one consumer on a 64-slot ring.
 *
 * It links inbox.c rather than including it, so that the same two files
 * build alone under -fsanitize=thread; everything is checked through the
 * public API, the overflow by the order it must keep.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/inbox.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ptr carries a function of (producer, seq) so a torn copy shows. */
static void *tag(uint32_t producer, uint32_t seq)
{
	return (void *)(uintptr_t)(((uintptr_t)producer << 24) ^ seq ^
				   0x5a5a5aUL);
}

static struct inbox_item item(uint32_t producer, uint32_t seq)
{
	struct inbox_item it = { .kind = producer, .arg = seq,
				 .ptr = tag(producer, seq) };

	return it;
}

static void post(struct inbox *ib, uint32_t producer, uint32_t seq)
{
	struct inbox_item it = item(producer, seq);

	ck_assert_int_eq(inbox_post(ib, producer, &it), 0);
}

/* What the drain callback saw, in order. */
struct seen {
	size_t n;
	struct inbox_item it[256];
};

static void record_cb(void *arg, const struct inbox_item *it)
{
	struct seen *s = arg;

	ck_assert_uint_lt(s->n, NELEM(s->it));
	s->it[s->n++] = *it;
}

/* Drain up to max into a fresh s; check the count it returns. */
static void drain_expect(struct inbox *ib, struct seen *s, size_t max,
			 size_t expected)
{
	memset(s, 0, sizeof(*s));
	ck_assert_uint_eq(inbox_drain(ib, record_cb, s, max), expected);
	ck_assert_uint_eq(s->n, expected);
}

static void expect_item(const struct inbox_item *it, uint32_t producer,
			uint32_t seq)
{
	ck_assert_uint_eq(it->kind, producer);
	ck_assert_uint_eq(it->arg, seq);
	ck_assert_ptr_eq(it->ptr, tag(producer, seq));
}

/* Producer 0's items first..first+n-1 in s->it[from..]. */
static void expect_run(const struct seen *s, size_t from, uint32_t first,
		       uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		expect_item(&s->it[from + i], 0, first + i);
}

/* ----------------------------------------------------------- one ring */

START_TEST(test_init_rejects)
{
	static const struct {
		unsigned producers, cap;
	} rows[] = { { 0, 16 }, { 1, 0 }, { 1, 3 }, { 4, 48 }, { 2, 0x80000001u } };
	struct inbox ib;
	size_t i;

	for (i = 0; i < NELEM(rows); i++)
		ck_assert_int_eq(inbox_init(&ib, rows[i].producers,
					    rows[i].cap),
				 -EINVAL);
}
END_TEST

START_TEST(test_fifo)
{
	struct inbox ib;
	struct seen s;
	uint32_t i;

	ck_assert_int_eq(inbox_init(&ib, 1, 16), 0);
	ck_assert(inbox_empty(&ib));
	drain_expect(&ib, &s, 100, 0);
	for (i = 0; i < 10; i++)
		post(&ib, 0, i);
	ck_assert(!inbox_empty(&ib));
	drain_expect(&ib, &s, 100, 10);
	expect_run(&s, 0, 0, 10);
	ck_assert(inbox_empty(&ib));
	drain_expect(&ib, &s, 100, 0);
	inbox_fini(&ib);
}
END_TEST

START_TEST(test_max_zero)
{
	struct inbox ib;
	struct seen s;

	ck_assert_int_eq(inbox_init(&ib, 2, 4), 0);
	post(&ib, 1, 0);
	drain_expect(&ib, &s, 0, 0);
	ck_assert(!inbox_empty(&ib));
	drain_expect(&ib, &s, 1, 1);
	expect_item(&s.it[0], 1, 0);
	inbox_fini(&ib);
}
END_TEST

/* A 1-slot ring is legal: every second item overflows. */
START_TEST(test_capacity_one)
{
	struct inbox ib;
	struct seen s;
	uint32_t i;

	ck_assert_int_eq(inbox_init(&ib, 1, 1), 0);
	for (i = 0; i < 5; i++)
		post(&ib, 0, i);
	drain_expect(&ib, &s, 100, 5);
	expect_run(&s, 0, 0, 5);
	inbox_fini(&ib);
}
END_TEST

/*
 * Batches of 1..cap on a 4-slot ring, drained each time: the indices
 * pass the ring's end thousands of times and never overflow (an overflow
 * would still be in order, so this checks the ring arithmetic only).
 */
START_TEST(test_wrap_around)
{
	struct inbox ib;
	struct seen s;
	uint32_t round, i, next = 0, batch;

	ck_assert_int_eq(inbox_init(&ib, 1, 4), 0);
	for (round = 0; round < 10000; round++) {
		batch = round % 4 + 1;
		for (i = 0; i < batch; i++)
			post(&ib, 0, next + i);
		drain_expect(&ib, &s, 100, batch);
		expect_run(&s, 0, next, batch);
		next += batch;
		ck_assert(inbox_empty(&ib));
	}
	inbox_fini(&ib);
}
END_TEST

/*
 * Ring of 4: 0..3 fill it, 4..9 overflow.  After two are taken the ring
 * has room, yet 10 and 11 must queue behind 9; once all is drained, 12
 * uses the ring again.
 */
START_TEST(test_overflow_keeps_order)
{
	struct inbox ib;
	struct seen s;
	uint32_t i;

	ck_assert_int_eq(inbox_init(&ib, 1, 4), 0);
	for (i = 0; i < 10; i++)
		post(&ib, 0, i);
	drain_expect(&ib, &s, 2, 2);
	expect_run(&s, 0, 0, 2);
	post(&ib, 0, 10);
	post(&ib, 0, 11);
	drain_expect(&ib, &s, 5, 5);
	expect_run(&s, 0, 2, 5);
	ck_assert(!inbox_empty(&ib));
	drain_expect(&ib, &s, 100, 5);
	expect_run(&s, 0, 7, 5);
	ck_assert(inbox_empty(&ib));
	post(&ib, 0, 12);
	drain_expect(&ib, &s, 100, 1);
	expect_run(&s, 0, 12, 1);
	inbox_fini(&ib);
}
END_TEST

/*
 * Random bursts of posts and drains of random size on an 8-slot ring, so
 * the producer crosses into and out of the overflow at every offset.
 */
START_TEST(test_overflow_random)
{
	struct inbox ib;
	struct seen s;
	uint32_t posted = 0, taken = 0, i, n;
	unsigned seed = 12345;
	int step;

	ck_assert_int_eq(inbox_init(&ib, 1, 8), 0);
	for (step = 0; step < 20000; step++) {
		n = (uint32_t)rand_r(&seed) % 20;
		if (posted - taken + n > NELEM(s.it))
			n = 0;
		for (i = 0; i < n; i++)
			post(&ib, 0, posted++);
		n = (uint32_t)rand_r(&seed) % 20;
		if (n > posted - taken)
			n = posted - taken;
		drain_expect(&ib, &s, n, n);
		expect_run(&s, 0, taken, n);
		taken += n;
		ck_assert(inbox_empty(&ib) == (posted == taken));
	}
	inbox_fini(&ib);
}
END_TEST

/* Left in the ring and the overflow; ASan reports a leak if fini misses. */
START_TEST(test_fini_with_items)
{
	struct inbox ib;
	uint32_t i;

	ck_assert_int_eq(inbox_init(&ib, 3, 2), 0);
	for (i = 0; i < 7; i++)
		post(&ib, i % 3, i);
	inbox_fini(&ib);
	inbox_fini(&ib);
}
END_TEST

/* ----------------------------------------------------------- fairness */

/*
 * Producer 0 posts 10 (it overflows a 4-slot ring), 1 posts 2, 2 posts 5.
 * Each drain takes one item per producer in turn, skipping the empty, and
 * the next drain starts after the last producer served.
 */
static const struct {
	size_t max;
	size_t n;
	uint8_t producer[16];
	uint8_t seq[16];
} fair_rows[] = {
	{ 4, 4, { 0, 1, 2, 0 }, { 0, 0, 0, 1 } },
	{ 3, 3, { 1, 2, 0 }, { 1, 1, 2 } },
	{ 100, 10,
	  { 2, 0, 2, 0, 2, 0, 0, 0, 0, 0 },
	  { 2, 3, 3, 4, 4, 5, 6, 7, 8, 9 } },
	{ 100, 0, { 0 }, { 0 } },
};

START_TEST(test_round_robin)
{
	static const uint32_t count[] = { 10, 2, 5 };
	struct inbox ib;
	struct seen s;
	uint32_t p, i;
	size_t row, k;

	ck_assert_int_eq(inbox_init(&ib, 3, 4), 0);
	for (p = 0; p < NELEM(count); p++)
		for (i = 0; i < count[p]; i++)
			post(&ib, p, i);
	for (row = 0; row < NELEM(fair_rows); row++) {
		drain_expect(&ib, &s, fair_rows[row].max, fair_rows[row].n);
		for (k = 0; k < fair_rows[row].n; k++)
			expect_item(&s.it[k], fair_rows[row].producer[k],
				    fair_rows[row].seq[k]);
	}
	ck_assert(inbox_empty(&ib));
	inbox_fini(&ib);
}
END_TEST

/* ------------------------------------------------ posting from the drain */

struct repost {
	struct inbox *self, *other;
	unsigned as; /* the producer index the consumer thread posts as */
	uint32_t seq;
};

/* Forward every item to other, and post a follow-up to self. */
static void repost_cb(void *arg, const struct inbox_item *it)
{
	struct repost *r = arg;
	struct inbox_item copy = *it;
	struct inbox_item next = item(r->as, r->seq);

	ck_assert_int_eq(inbox_post(r->other, 0, &copy), 0);
	if (it->kind != r->as) {
		ck_assert_int_eq(inbox_post(r->self, r->as, &next), 0);
		r->seq++;
	}
}

START_TEST(test_post_from_drain)
{
	struct inbox self, other;
	struct repost r = { &self, &other, 1, 0 };
	struct seen s;
	uint32_t i;

	ck_assert_int_eq(inbox_init(&self, 2, 2), 0);
	ck_assert_int_eq(inbox_init(&other, 1, 2), 0);
	for (i = 0; i < 5; i++)
		post(&self, 0, i);
	/* 5 from producer 0 (3 of them overflowed) and the 5 follow-ups
	 * posted as 1 while the drain ran, all taken by the same call;
	 * other's 2-slot ring overflows as the items are forwarded. */
	ck_assert_uint_eq(inbox_drain(&self, repost_cb, &r, 100), 10);
	ck_assert(inbox_empty(&self));
	drain_expect(&other, &s, 100, 10);
	expect_item(&s.it[0], 0, 0);
	for (i = 1; i < 5; i++) {
		expect_item(&s.it[2 * i - 1], 1, i - 1);
		expect_item(&s.it[2 * i], 0, i);
	}
	expect_item(&s.it[9], 1, 4);
	inbox_fini(&other);
	inbox_fini(&self);
}
END_TEST

/* --------------------------------------------------------------- stress */

#define STRESS_PRODUCERS 4
#define STRESS_ITEMS 200000u
#define STRESS_CAP 64

struct stress {
	struct inbox ib;
	atomic_uint posted[STRESS_PRODUCERS];
	atomic_uint finished; /* producers done posting */
	uint32_t next[STRESS_PRODUCERS]; /* consumer: seq expected next */
	size_t received;
	size_t bad; /* out of order, duplicate, unknown or torn */
	int post_failed;
};

struct producer_arg {
	struct stress *st;
	unsigned id;
};

static void *producer_main(void *arg)
{
	struct producer_arg *pa = arg;
	struct stress *st = pa->st;
	struct inbox_item it;
	uint32_t seq;

	for (seq = 0; seq < STRESS_ITEMS; seq++) {
		it = item(pa->id, seq);
		if (inbox_post(&st->ib, pa->id, &it) != 0)
			st->post_failed = 1;
		atomic_store_explicit(&st->posted[pa->id], seq + 1,
				      memory_order_relaxed);
		/* Bursts of 100: the consumer catches up in between, so
		 * the producers go in and out of the overflow. */
		if (seq % 100 == 99)
			sched_yield();
	}
	atomic_fetch_add(&st->finished, 1);
	return NULL;
}

/* Called on the consumer thread only: no locking of st's fields. */
static void stress_cb(void *arg, const struct inbox_item *it)
{
	struct stress *st = arg;

	if (it->kind >= STRESS_PRODUCERS || it->arg != st->next[it->kind] ||
	    it->ptr != tag(it->kind, it->arg))
		st->bad++;
	else
		st->next[it->kind]++;
	st->received++;
}

static unsigned total_posted(struct stress *st)
{
	unsigned i, n = 0;

	for (i = 0; i < STRESS_PRODUCERS; i++)
		n += atomic_load_explicit(&st->posted[i], memory_order_relaxed);
	return n;
}

/*
 * Drain until every producer has finished and a drain after that found
 * nothing: bounded by the producers' loops, not by the items arriving, so
 * a lost item ends the run with a short count instead of hanging it.
 * Every 20,000 items the consumer stops until the producers have posted
 * 8 rings' worth more, which pushes them into the overflow.
 */
static void *consumer_main(void *arg)
{
	struct stress *st = arg;
	size_t got, pause_at = 0;
	unsigned done, target;

	for (;;) {
		if (st->received >= pause_at) {
			pause_at += 20000;
			target = total_posted(st) + 8 * STRESS_CAP *
							    STRESS_PRODUCERS;
			while (total_posted(st) < target &&
			       atomic_load(&st->finished) < STRESS_PRODUCERS)
				sched_yield();
		}
		done = atomic_load(&st->finished);
		got = inbox_drain(&st->ib, stress_cb, st, 64);
		if (got == 0) {
			if (done == STRESS_PRODUCERS)
				break;
			sched_yield();
		}
	}
	return NULL;
}

START_TEST(test_stress)
{
	struct stress *st = calloc(1, sizeof(*st));
	struct producer_arg pa[STRESS_PRODUCERS];
	pthread_t prod[STRESS_PRODUCERS], cons;
	unsigned i;

	ck_assert_ptr_nonnull(st);
	ck_assert_int_eq(inbox_init(&st->ib, STRESS_PRODUCERS, STRESS_CAP), 0);
	ck_assert_int_eq(pthread_create(&cons, NULL, consumer_main, st), 0);
	for (i = 0; i < STRESS_PRODUCERS; i++) {
		pa[i].st = st;
		pa[i].id = i;
		ck_assert_int_eq(pthread_create(&prod[i], NULL, producer_main,
						&pa[i]),
				 0);
	}
	for (i = 0; i < STRESS_PRODUCERS; i++)
		ck_assert_int_eq(pthread_join(prod[i], NULL), 0);
	ck_assert_int_eq(pthread_join(cons, NULL), 0);

	ck_assert_int_eq(st->post_failed, 0);
	ck_assert_uint_eq(st->bad, 0);
	ck_assert_uint_eq(st->received,
			  (size_t)STRESS_PRODUCERS * STRESS_ITEMS);
	for (i = 0; i < STRESS_PRODUCERS; i++)
		ck_assert_uint_eq(st->next[i], STRESS_ITEMS);
	ck_assert(inbox_empty(&st->ib));
	inbox_fini(&st->ib);
	free(st);
}
END_TEST

/* --------------------------------------------------------------- suite */

static Suite *inbox_suite(void)
{
	Suite *s = suite_create("inbox");
	TCase *tc = tcase_create("inbox");

	/* The stress run under TSan on two cores; not a timing check. */
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_init_rejects);
	tcase_add_test(tc, test_fifo);
	tcase_add_test(tc, test_max_zero);
	tcase_add_test(tc, test_capacity_one);
	tcase_add_test(tc, test_wrap_around);
	tcase_add_test(tc, test_overflow_keeps_order);
	tcase_add_test(tc, test_overflow_random);
	tcase_add_test(tc, test_fini_with_items);
	tcase_add_test(tc, test_round_robin);
	tcase_add_test(tc, test_post_from_drain);
	tcase_add_test(tc, test_stress);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(inbox_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
