/*
 * Unit tests for broker/level_table.c: SipHash-1-3 known answers and its
 * key, and the child table on its own: placement and lookup when every
 * entry collides, backward-shift deletion across the wrap-around, growth
 * and shrinking, allocation failures, and 10,000 random inserts and
 * deletes checked against a plain array after every operation.
 *
 * The test includes level_table.c with calloc wrapped, to fail chosen
 * allocations.  Entries get their hashes from the tests, not from
 * level_hash(), so that collisions can be forced.
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
#undef calloc

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * ck_assert() records every assertion that passes (a write to the parent
 * process); the checks run millions of times in test_random, so they
 * speak only when they fail.
 */
#define CHECK(cond)                                                   \
	do {                                                          \
		if (!(cond))                                          \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, \
				     #cond);                          \
	} while (0)

/* An entry of level s with the hash a test chose. */
static struct level_entry entry(const char *s, uint64_t hash)
{
	struct level_entry e = { .hash = hash, .len = strlen(s), .level = s };

	return e;
}

static struct level_entry *find(const struct level_table *t,
				const struct level_entry *e)
{
	return level_table_find(t, e->level, e->len, e->hash);
}

static void check_table(const struct level_table *t);

/* Insert e[0..n) in order into t; e[i] must land in slot[i], t be cap. */
static void insert_expect(struct level_table *t, struct level_entry *e,
			  size_t n, size_t cap, const size_t *slot)
{
	size_t i;

	for (i = 0; i < n; i++)
		ck_assert_int_eq(level_table_insert(t, &e[i]), 0);
	ck_assert_uint_eq(t->cap, cap);
	ck_assert_uint_eq(t->used, n);
	for (i = 0; i < n; i++)
		ck_assert_uint_eq(e[i].slot, slot[i]);
	check_table(t);
}

/*
 * What every operation must leave: each entry in the slot its slot field
 * names, reachable from its home slot without crossing an empty one (else
 * find stops short of it), and the load within [1/4, 3/4] above the
 * first capacity.
 */
static void check_table(const struct level_table *t)
{
	size_t i, j, used = 0, mask;
	struct level_entry *e;

	if (!t->cap) {
		CHECK(!t->slot);
		CHECK(t->used == 0);
		return;
	}
	CHECK((t->cap & (t->cap - 1)) == 0);
	CHECK(t->cap >= LEVEL_TABLE_MIN_CAP);
	mask = t->cap - 1;
	for (i = 0; i < t->cap; i++) {
		e = t->slot[i];
		if (!e)
			continue;
		used++;
		CHECK(e->slot == i);
		for (j = (size_t)e->hash & mask; j != i; j = (j + 1) & mask)
			CHECK(t->slot[j]);
		CHECK(find(t, e) == e);
	}
	CHECK(used == t->used);
	CHECK(t->used > 0);
	CHECK(t->used * 4 <= t->cap * 3);
	if (t->cap > LEVEL_TABLE_MIN_CAP)
		CHECK(t->used * 4 >= t->cap);
}

/* ------------------------------------------------------------------ hash */

/*
 * SipHash-1-3 under the key 00 01 .. 0f of the messages 00 01 .. (len-1),
 * from an independent implementation (its SipHash-2-4 gives the paper's
 * a129ca6149be45e5; the empty message matches Rust's SipHasher13 vector).
 */
static const struct {
	size_t len;
	uint64_t hash;
} sip_rows[] = {
	{ 0, 0xabac0158050fc4dcULL },  { 1, 0xc9f49bf37d57ca93ULL },
	{ 3, 0x8bf80ab8e7ddf7fbULL },  { 7, 0xd3927d989bb11140ULL },
	{ 8, 0x369095118d299a8eULL },  { 9, 0x25a48eb36c063de4ULL },
	{ 15, 0xd320d86d2a519956ULL }, { 16, 0xcc4fdd1a7d908b66ULL },
	{ 17, 0x9cf2689063dbd80cULL },
};

static bool little_endian(void)
{
	const uint16_t one = 1;

	return *(const unsigned char *)&one == 1;
}

START_TEST(test_hash_known_answers)
{
	const struct level_key key = { 0x0706050403020100ULL,
				       0x0f0e0d0c0b0a0908ULL };
	char msg[32];
	size_t i;

	/* Whole 8-byte words are loaded in host order: SipHash on LE only. */
	if (sip_rows[_i].len >= 8 && !little_endian())
		return;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (char)i;
	ck_assert_uint_eq(level_hash(&key, msg, sip_rows[_i].len),
			  sip_rows[_i].hash);
}
END_TEST

static const char *const hash_levels[] = {
	"", "a", "dev", "device-000001", "a level longer than sixteen bytes",
};

START_TEST(test_hash_keyed)
{
	const char *s = hash_levels[_i];
	size_t len = strlen(s);
	struct level_key a = { 1, 2 }, b = { 1, 3 }, c = { 5, 2 };
	struct level_key r1, r2;

	/* Same key, same level: same hash; another key: another hash. */
	ck_assert_uint_eq(level_hash(&a, s, len), level_hash(&a, s, len));
	ck_assert_uint_ne(level_hash(&a, s, len), level_hash(&b, s, len));
	ck_assert_uint_ne(level_hash(&a, s, len), level_hash(&c, s, len));

	/* Two tries draw two keys (equal: a 2^-128 chance). */
	level_key_init(&r1);
	level_key_init(&r2);
	ck_assert(r1.k0 != r2.k0 || r1.k1 != r2.k1);
	ck_assert_uint_ne(level_hash(&r1, s, len), level_hash(&r2, s, len));
}
END_TEST

/* The length takes part: "" and "\0" differ, so do "a" and "a\0". */
START_TEST(test_hash_length)
{
	const struct level_key key = { 7, 11 };

	ck_assert_uint_ne(level_hash(&key, "", 0), level_hash(&key, "\0", 1));
	ck_assert_uint_ne(level_hash(&key, "a", 1), level_hash(&key, "a\0", 2));
	ck_assert_uint_ne(level_hash(&key, "ab", 2), level_hash(&key, "ba", 2));
}
END_TEST

/* ------------------------------------------------------------ collisions */

START_TEST(test_empty)
{
	struct level_table t = { 0 };

	ck_assert_ptr_null(level_table_find(&t, "a", 1, 0));
	ck_assert_ptr_null(level_table_find(&t, "", 0, 0));
	check_table(&t);
}
END_TEST

/*
 * Three entries with one hash in a table of four: they sit in a run from
 * their home slot, each found by its bytes; deleting the first pulls the
 * others back one slot each.
 */
START_TEST(test_same_hash)
{
	struct level_table t = { 0 };
	struct level_entry e[3] = {
		entry("a", 0x11), entry("b", 0x11), entry("cc", 0x11),
	};
	struct level_entry *a = &e[0], *b = &e[1], *c = &e[2], *got;

	insert_expect(&t, e, 3, 4, (const size_t[]){ 1, 2, 3 });
	ck_assert_ptr_eq(find(&t, a), a);
	ck_assert_ptr_eq(find(&t, b), b);
	ck_assert_ptr_eq(find(&t, c), c);
	/* Same hash, other bytes or length; same bytes, other hash. */
	ck_assert_ptr_null(level_table_find(&t, "d", 1, 0x11));
	ck_assert_ptr_null(level_table_find(&t, "c", 1, 0x11));
	ck_assert_ptr_null(level_table_find(&t, "ccc", 3, 0x11));
	ck_assert_ptr_null(level_table_find(&t, "a", 1, 0x15));
	/* The levels need not be NUL-terminated. */
	got = level_table_find(&t, "ccX", 2, 0x11);
	ck_assert_ptr_eq(got, c);

	level_table_delete(&t, a);
	ck_assert_ptr_null(find(&t, a));
	ck_assert_uint_eq(b->slot, 1);
	ck_assert_uint_eq(c->slot, 2);
	ck_assert_ptr_null(t.slot[3]);
	check_table(&t);

	level_table_delete(&t, c);
	ck_assert_uint_eq(b->slot, 1);
	check_table(&t);
	level_table_delete(&t, b);
	ck_assert_uint_eq(t.used, 0);
	ck_assert_uint_eq(t.cap, 0);
	ck_assert_ptr_null(t.slot);
}
END_TEST

/*
 * A run that wraps from the last slot to the first: x (home 3) at 3, y
 * (home 3) at 0, z (home 0) at 1.  Deleting x moves y back across the
 * wrap to 3 and z to its home 0.  Then x comes back at 1, and deleting y
 * (at 3) leaves z at its home 0 but pulls x (home 3) past it into 3.
 */
START_TEST(test_wrap_around)
{
	struct level_table t = { 0 };
	struct level_entry e[3] = {
		entry("x", 3), entry("y", 7), entry("z", 4),
	};
	struct level_entry *x = &e[0], *y = &e[1], *z = &e[2];

	insert_expect(&t, e, 3, 4, (const size_t[]){ 3, 0, 1 });
	level_table_delete(&t, x);
	ck_assert_uint_eq(y->slot, 3);
	ck_assert_uint_eq(z->slot, 0);
	ck_assert_ptr_null(t.slot[1]);
	check_table(&t);

	ck_assert_int_eq(level_table_insert(&t, x), 0);
	ck_assert_uint_eq(x->slot, 1); /* 3 and 0 taken */
	level_table_delete(&t, y);
	ck_assert_uint_eq(x->slot, 3);
	ck_assert_uint_eq(z->slot, 0);
	check_table(&t);
	level_table_delete(&t, z);
	level_table_delete(&t, x);
	check_table(&t);
}
END_TEST

/*
 * An entry at its home slot, after a run of others, is not pulled back
 * over its home: a (home 0) at 0, b (home 0) at 1, c (home 1) at 2, d
 * (home 3) at 3 in a table of eight; deleting a moves b to 0 and c to 1,
 * and leaves d.
 */
START_TEST(test_shift_stops_at_home)
{
	struct level_table t = { 0 };
	struct level_entry e[5] = {
		entry("a", 0), entry("b", 8), entry("c", 1), entry("d", 3),
		entry("e", 6),
	};
	size_t i;

	insert_expect(&t, e, NELEM(e), 8, (const size_t[]){ 0, 1, 2, 3, 6 });

	level_table_delete(&t, &e[0]);
	ck_assert_uint_eq(e[1].slot, 0);
	ck_assert_uint_eq(e[2].slot, 1);
	ck_assert_uint_eq(e[3].slot, 3);
	ck_assert_uint_eq(e[4].slot, 6);
	ck_assert_ptr_null(t.slot[2]);
	check_table(&t);
	for (i = 1; i < NELEM(e); i++)
		level_table_delete(&t, &e[i]);
	check_table(&t);
}
END_TEST

/* ------------------------------------------------------- grow and shrink */

#define MANY 1000

static struct level_entry many[MANY];
static char many_names[MANY][8];

static void many_init(void)
{
	struct level_key key = { 42, 43 };
	size_t i;

	for (i = 0; i < MANY; i++) {
		snprintf(many_names[i], sizeof(many_names[i]), "%zu", i);
		many[i] = entry(many_names[i], 0);
		many[i].hash = level_hash(&key, many[i].level, many[i].len);
	}
}

/* Capacity doubles past 3/4 and halves under 1/4, never below 4. */
START_TEST(test_grow_shrink)
{
	struct level_table t = { 0 };
	size_t i, cap;

	many_init();
	for (i = 0; i < MANY; i++) {
		cap = t.cap;
		ck_assert_int_eq(level_table_insert(&t, &many[i]), 0);
		if ((i + 1) * 4 > cap * 3)
			ck_assert_uint_eq(t.cap, cap ? cap * 2 : 4);
		else
			ck_assert_uint_eq(t.cap, cap);
		if (i % 97 == 0)
			check_table(&t);
	}
	ck_assert_uint_eq(t.cap, 2048);
	check_table(&t);
	for (i = 0; i < MANY; i++)
		ck_assert_ptr_eq(find(&t, &many[i]), &many[i]);

	for (i = 0; i < MANY; i++) {
		cap = t.cap;
		level_table_delete(&t, &many[i]);
		ck_assert_ptr_null(find(&t, &many[i]));
		if (t.used == 0)
			ck_assert_uint_eq(t.cap, 0);
		else if (cap > 4 && t.used * 4 < cap)
			ck_assert_uint_eq(t.cap, cap / 2);
		else
			ck_assert_uint_eq(t.cap, cap);
		if (i % 97 == 0 || MANY - i < 10)
			check_table(&t);
	}
	ck_assert_ptr_null(t.slot);
}
END_TEST

/*
 * No memory to grow: -ENOMEM, the table as it was.  No memory to shrink:
 * the entry goes all the same and the larger table stays.
 */
START_TEST(test_out_of_memory)
{
	struct level_table t = { 0 };
	size_t i;

	many_init();
	alloc_budget = 0;
	ck_assert_int_eq(level_table_insert(&t, &many[0]), -ENOMEM);
	alloc_budget = -1;
	check_table(&t);

	for (i = 0; i < 6; i++)
		ck_assert_int_eq(level_table_insert(&t, &many[i]), 0);
	ck_assert_uint_eq(t.cap, 8);
	alloc_budget = 0;
	ck_assert_int_eq(level_table_insert(&t, &many[6]), -ENOMEM);
	alloc_budget = -1;
	ck_assert_uint_eq(t.cap, 8);
	ck_assert_uint_eq(t.used, 6);
	ck_assert_ptr_null(find(&t, &many[6]));
	check_table(&t);

	/* 6 → 1 in a table of 8: the shrink at 1 fails and 8 stays. */
	for (i = 0; i < 4; i++)
		level_table_delete(&t, &many[i]);
	ck_assert_uint_eq(t.cap, 8);
	alloc_budget = 0;
	level_table_delete(&t, &many[4]);
	alloc_budget = -1;
	ck_assert_uint_eq(t.cap, 8);
	ck_assert_uint_eq(t.used, 1);
	ck_assert_ptr_eq(find(&t, &many[5]), &many[5]);
	ck_assert_ptr_null(find(&t, &many[4]));
	level_table_delete(&t, &many[5]);
	check_table(&t);
}
END_TEST

/* ------------------------------------------------------------ randomized */

static uint64_t rng_state;

static uint32_t rng(uint32_t n)
{
	/* xorshift64*: fixed seed, same sequence on every platform. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 33) % n;
}

#define RANDOM_OPS 10000
#define RANDOM_LEVELS 400

/*
 * Hashes as level_hash() gives them, or with bits 3 to 6 cleared so that
 * homes crowd into one slot in sixteen and probe runs get long: deletions
 * then shift across runs that began at other homes.
 */
static const uint64_t random_hash_masks[] = { ~0ULL, ~0x78ULL };

/*
 * 10,000 inserts and deletes of 400 levels, checked after each against an
 * array saying which are in.  The odds swing between filling (9 in 10
 * levels in) and draining (1 in 10) every 1,000 operations, so the table
 * grows and shrinks many times.
 */
START_TEST(test_random)
{
	static struct level_entry e[RANDOM_LEVELS];
	static char name[RANDOM_LEVELS][8];
	static bool in[RANDOM_LEVELS];
	struct level_key key = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL };
	struct level_table t = { 0 };
	size_t op, i, count = 0, max_cap = 0, grows = 0, shrinks = 0, cap;
	uint32_t odds;

	rng_state = 0x9e3779b97f4a7c15ULL;
	for (i = 0; i < RANDOM_LEVELS; i++) {
		snprintf(name[i], sizeof(name[i]), "l%zu", i);
		e[i] = entry(name[i], 0);
		e[i].hash = level_hash(&key, e[i].level, e[i].len) &
			    random_hash_masks[_i];
		in[i] = false;
	}
	for (op = 0; op < RANDOM_OPS; op++) {
		odds = (op / 1000) % 2 == 0 ? 9 : 1; /* in 10, to insert */
		i = rng(RANDOM_LEVELS);
		cap = t.cap;
		if (!in[i] && rng(10) < odds) {
			CHECK(!find(&t, &e[i]));
			CHECK(level_table_insert(&t, &e[i]) == 0);
			in[i] = true;
			count++;
		} else if (in[i] && rng(10) >= odds) {
			level_table_delete(&t, &e[i]);
			in[i] = false;
			count--;
		}
		grows += t.cap > cap;
		shrinks += t.cap < cap;
		if (t.cap > max_cap)
			max_cap = t.cap;

		CHECK(t.used == count);
		check_table(&t);
		for (i = 0; i < RANDOM_LEVELS; i++)
			CHECK(find(&t, &e[i]) == (in[i] ? &e[i] : NULL));
	}
	/* With this seed: 512, 13 and 6. */
	ck_assert_uint_ge(max_cap, 512);
	ck_assert_uint_ge(grows, 10);
	ck_assert_uint_ge(shrinks, 5);

	/* Drain what is left, the table shrinking down to nothing. */
	for (op = 0; op < RANDOM_LEVELS; op++) {
		i = (op * 7) % RANDOM_LEVELS; /* 7 is prime to 400 */
		if (!in[i])
			continue;
		level_table_delete(&t, &e[i]);
		in[i] = false;
		check_table(&t);
	}
	for (i = 0; i < RANDOM_LEVELS; i++)
		CHECK(!find(&t, &e[i]));
	ck_assert_uint_eq(t.used, 0);
	ck_assert_ptr_null(t.slot);
}
END_TEST

static Suite *level_table_suite(void)
{
	Suite *s = suite_create("level_table");
	TCase *tc = tcase_create("level_table");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_hash_known_answers, 0, NELEM(sip_rows));
	tcase_add_loop_test(tc, test_hash_keyed, 0, NELEM(hash_levels));
	tcase_add_test(tc, test_hash_length);
	tcase_add_test(tc, test_empty);
	tcase_add_test(tc, test_same_hash);
	tcase_add_test(tc, test_wrap_around);
	tcase_add_test(tc, test_shift_stops_at_home);
	tcase_add_test(tc, test_grow_shrink);
	tcase_add_test(tc, test_out_of_memory);
	tcase_add_loop_test(tc, test_random, 0, NELEM(random_hash_masks));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(level_table_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
