/*
 * Unit tests for broker/objcache.c: an object given back is the next one
 * taken, the cap (past it objects are freed), the low-water trim (what a
 * second did not take goes, what it took stays), tiny sizes rounded up
 * to hold the link, and fini.  Leaks show under AddressSanitizer, which
 * CI runs this under.
 */
#include <check.h>
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

static Suite *objcache_suite(void)
{
	Suite *s = suite_create("objcache");
	TCase *tc = tcase_create("objcache");

	tcase_add_test(tc, test_reuse);
	tcase_add_test(tc, test_lifo_order);
	tcase_add_test(tc, test_cap);
	tcase_add_test(tc, test_tiny_size_holds_link);
	tcase_add_test(tc, test_trim_low_water);
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
