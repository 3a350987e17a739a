/*
 * Unit tests for broker/objcache.c: an object given back is the next one
 * taken, the cap (past it objects are freed), the low-water trim (what a
 * second did not take goes, what it took stays), tiny sizes rounded up
 * to hold the link, fini, and objects given back by other threads.  Leaks
 * show under AddressSanitizer, which CI runs this under.
 */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/objcache.c"

START_TEST(test_reuse)
{
	struct objcache c;
	void *a, *b;

	objcache_init(&c, 48, 16);
	a = objcache_get(&c);
	ck_assert_ptr_nonnull(a);
	memset(a, 0xab, 48); /* really 48 bytes, for ASan */
	objcache_put(&c, a);
	ck_assert_uint_eq(c.count, 1);
	b = objcache_get(&c);
	ck_assert_ptr_eq(a, b);
	ck_assert_uint_eq(c.count, 0);
	objcache_put(&c, b);
	objcache_put(&c, NULL);
	ck_assert_uint_eq(c.count, 1);
	objcache_fini(&c);
	ck_assert_uint_eq(c.count, 0);
	ck_assert_ptr_null(c.free);
}
END_TEST

START_TEST(test_lifo_order)
{
	struct objcache c;
	void *o[3];

	objcache_init(&c, 64, 16);
	for (int i = 0; i < 3; i++)
		o[i] = objcache_get(&c);
	for (int i = 0; i < 3; i++)
		objcache_put(&c, o[i]);
	/* Most recently given back first: the one still in cache. */
	for (int i = 2; i >= 0; i--)
		ck_assert_ptr_eq(objcache_get(&c), o[i]);
	for (int i = 0; i < 3; i++)
		objcache_put(&c, o[i]);
	objcache_fini(&c);
}
END_TEST

START_TEST(test_cap)
{
	struct objcache c;
	void *o[5];

	objcache_init(&c, 32, 3);
	for (int i = 0; i < 5; i++)
		o[i] = objcache_get(&c);
	for (int i = 0; i < 5; i++)
		objcache_put(&c, o[i]);
	ck_assert_uint_eq(c.count, 3);
	objcache_fini(&c);
}
END_TEST

START_TEST(test_tiny_size_holds_link)
{
	struct objcache c;
	void *a;

	objcache_init(&c, 1, 4);
	ck_assert_uint_ge(c.size, sizeof(void *));
	a = objcache_get(&c);
	objcache_put(&c, a); /* writes the link into it: ASan checks */
	ck_assert_ptr_eq(objcache_get(&c), a);
	free(a);
	objcache_fini(&c);
}
END_TEST

START_TEST(test_trim_low_water)
{
	struct objcache c;
	void *o[3];

	objcache_init(&c, 128, 100);
	for (int i = 0; i < 3; i++)
		o[i] = objcache_get(&c);
	for (int i = 0; i < 3; i++)
		objcache_put(&c, o[i]);
	/* Before any trim the mark is unknown: nothing goes. */
	objcache_trim(&c);
	ck_assert_uint_eq(c.count, 3);
	/* A second in which one was taken (and given back): two unused. */
	objcache_put(&c, objcache_get(&c));
	objcache_trim(&c);
	ck_assert_uint_eq(c.count, 1);
	/* One in use across a trim and given back after: it stays. */
	o[0] = objcache_get(&c);
	objcache_trim(&c);
	objcache_put(&c, o[0]);
	ck_assert_uint_eq(c.count, 1);
	/* Then a whole quiet second, trim to trim: it goes. */
	objcache_trim(&c);
	ck_assert_uint_eq(c.count, 1);
	objcache_trim(&c);
	ck_assert_uint_eq(c.count, 0);
	ck_assert_ptr_null(c.free);
	objcache_fini(&c);
}
END_TEST

/*
 * Given back from elsewhere: kept aside, not counted, until the owner's
 * list runs out; then taken whole, up to the cap (the rest is freed).
 */
START_TEST(test_remote_put)
{
	struct objcache c;
	void *o[4], *mine, *got;

	objcache_init(&c, 64, 3);
	for (int i = 0; i < 4; i++)
		o[i] = objcache_get(&c);
	mine = objcache_get(&c);
	objcache_put(&c, mine);
	for (int i = 0; i < 4; i++)
		objcache_put_remote(&c, o[i]);
	objcache_put_remote(&c, NULL);
	ck_assert_uint_eq(c.count, 1);
	/* The owner's own list first. */
	ck_assert_ptr_eq(objcache_get(&c), mine);
	ck_assert_uint_eq(c.count, 0);
	/* Then the returned ones: o[3], o[2], o[1] kept, o[0] freed. */
	got = objcache_get(&c);
	ck_assert_ptr_eq(got, o[1]);
	ck_assert_ptr_null(atomic_load(&c.returned));
	ck_assert_uint_eq(c.count, 2);
	objcache_put(&c, got);
	objcache_put(&c, mine); /* past the cap: freed */
	ck_assert_uint_eq(c.count, 3);
	objcache_fini(&c);
	ck_assert_uint_eq(c.count, 0);
}
END_TEST

/* What came back stays one trim, goes at the next unless taken. */
START_TEST(test_remote_trim_and_fini)
{
	struct objcache c;
	void *a, *b;

	objcache_init(&c, 64, 8);
	a = objcache_get(&c);
	b = objcache_get(&c);
	objcache_put_remote(&c, a);
	objcache_trim(&c);
	ck_assert_uint_eq(c.count, 1);
	ck_assert_ptr_null(atomic_load(&c.returned));
	objcache_trim(&c);
	ck_assert_uint_eq(c.count, 0);
	/* fini frees what is still on the stack (ASan: no leak). */
	objcache_put_remote(&c, b);
	objcache_fini(&c);
	ck_assert_ptr_null(atomic_load(&c.returned));
	ck_assert_uint_eq(c.count, 0);
}
END_TEST

#define REMOTE_OBJECTS 20000

struct remote_args {
	struct objcache *c;
	void **objs;
};

static void *give_back(void *arg)
{
	struct remote_args *a = arg;

	for (int i = 0; i < REMOTE_OBJECTS; i++)
		objcache_put_remote(a->c, a->objs[i]);
	return NULL;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void *const *)a;
	uintptr_t y = (uintptr_t)*(void *const *)b;

	return x < y ? -1 : x > y;
}

/*
 * Another thread gives back while the owner takes (and mallocs when both
 * are empty): every object given back is taken exactly once.
 */
START_TEST(test_remote_concurrent)
{
	static void *objs[REMOTE_OBJECTS], *got[2 * REMOTE_OBJECTS];
	struct objcache c;
	struct remote_args a = { &c, objs };
	pthread_t t;
	size_t n = 0, remote = 0;

	objcache_init(&c, 32, REMOTE_OBJECTS);
	for (int i = 0; i < REMOTE_OBJECTS; i++) {
		objs[i] = malloc(32);
		ck_assert_ptr_nonnull(objs[i]);
	}
	ck_assert_int_eq(pthread_create(&t, NULL, give_back, &a), 0);
	for (int i = 0; i < REMOTE_OBJECTS; i++) {
		got[n] = objcache_get(&c);
		memset(got[n++], i, 32);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	while (c.free || atomic_load(&c.returned))
		got[n++] = objcache_get(&c);
	qsort(objs, REMOTE_OBJECTS, sizeof(objs[0]), cmp_ptr);
	qsort(got, n, sizeof(got[0]), cmp_ptr);
	for (size_t i = 0; i < n; i++) {
		ck_assert(i == 0 || got[i] != got[i - 1]);
		if (bsearch(&got[i], objs, REMOTE_OBJECTS, sizeof(objs[0]),
			    cmp_ptr))
			remote++;
		free(got[i]);
	}
	ck_assert_uint_eq(remote, REMOTE_OBJECTS);
	objcache_fini(&c);
}
END_TEST

static Suite *objcache_suite(void)
{
	Suite *s = suite_create("objcache");
	TCase *tc = tcase_create("objcache");

	tcase_add_test(tc, test_reuse);
	tcase_add_test(tc, test_lifo_order);
	tcase_add_test(tc, test_cap);
	tcase_add_test(tc, test_tiny_size_holds_link);
	tcase_add_test(tc, test_trim_low_water);
	tcase_add_test(tc, test_remote_put);
	tcase_add_test(tc, test_remote_trim_and_fini);
	tcase_add_test(tc, test_remote_concurrent);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(objcache_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
