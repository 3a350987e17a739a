/*
 * Unit tests for broker/bufpool.c: a buffer given back is the next one
 * taken of its size and only of its size, sizes outside the classes go
 * straight to malloc/free, a pool never initialised (a test's shard)
 * only mallocs, and each size's cap.  The free lists themselves are
 * broker/objcache.c's, tested there.  Leaks show under AddressSanitizer.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/bufpool.c"
#include "broker/objcache.c"

#define KIB 1024u

START_TEST(test_reuse_same_size)
{
	struct bufpool p;
	void *a, *b;

	bufpool_init(&p);
	a = bufpool_get(&p, 4 * KIB);
	ck_assert_ptr_nonnull(a);
	memset(a, 0xab, 4 * KIB); /* really 4 KiB, for ASan */
	bufpool_put(&p, a, 4 * KIB);
	ck_assert_uint_eq(p.size[2].count, 1);
	b = bufpool_get(&p, 4 * KIB);
	ck_assert_ptr_eq(a, b);
	ck_assert_uint_eq(p.size[2].count, 0);
	bufpool_put(&p, b, 4 * KIB);
	bufpool_fini(&p);
	ck_assert_ptr_null(p.size[2].free);
}
END_TEST

START_TEST(test_sizes_kept_apart)
{
	struct bufpool p;
	void *small, *big;

	bufpool_init(&p);
	small = bufpool_get(&p, 1 * KIB);
	bufpool_put(&p, small, 1 * KIB);
	big = bufpool_get(&p, 64 * KIB);
	ck_assert_ptr_ne(big, small);
	memset(big, 0, 64 * KIB);
	ck_assert_uint_eq(p.size[0].count, 1);
	bufpool_put(&p, big, 64 * KIB);
	ck_assert_uint_eq(p.size[BUFPOOL_CLASSES - 1].count, 1);
	bufpool_trim(&p); /* sets the marks: nothing goes yet */
	ck_assert_uint_eq(p.size[0].count, 1);
	bufpool_trim(&p); /* a quiet second: both go */
	ck_assert_uint_eq(p.size[0].count, 0);
	ck_assert_uint_eq(p.size[BUFPOOL_CLASSES - 1].count, 0);
	bufpool_fini(&p);
}
END_TEST

START_TEST(test_unpooled_sizes)
{
	struct bufpool p;
	/* Not a power of two, below, and above the classes. */
	size_t sizes[] = { 3000, 512, 128 * KIB, 2 * BUFPOOL_MAX_SIZE };

	bufpool_init(&p);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *buf = bufpool_get(&p, sizes[i]);

		ck_assert_ptr_nonnull(buf);
		memset(buf, 1, sizes[i]);
		bufpool_put(&p, buf, sizes[i]);
		for (int k = 0; k < BUFPOOL_CLASSES; k++)
			ck_assert_uint_eq(p.size[k].count, 0);
	}
	bufpool_put(&p, NULL, 4 * KIB);
	ck_assert_uint_eq(p.size[2].count, 0);
	bufpool_fini(&p);
}
END_TEST

START_TEST(test_uninitialised_pool_mallocs)
{
	struct bufpool p;
	void *a;

	memset(&p, 0, sizeof(p));
	a = bufpool_get(&p, 4 * KIB);
	ck_assert_ptr_nonnull(a);
	memset(a, 2, 4 * KIB);
	bufpool_put(&p, a, 4 * KIB); /* freed, not kept */
	for (int k = 0; k < BUFPOOL_CLASSES; k++)
		ck_assert_uint_eq(p.size[k].count, 0);
}
END_TEST

START_TEST(test_class_caps)
{
	struct bufpool p;

	bufpool_init(&p);
	for (int k = 0; k < BUFPOOL_CLASSES; k++)
		ck_assert_uint_eq((size_t)p.size[k].max * p.size[k].size,
				  BUFPOOL_CLASS_BYTES);
	bufpool_fini(&p);
}
END_TEST

static Suite *bufpool_suite(void)
{
	Suite *s = suite_create("bufpool");
	TCase *tc = tcase_create("bufpool");

	tcase_add_test(tc, test_reuse_same_size);
	tcase_add_test(tc, test_sizes_kept_apart);
	tcase_add_test(tc, test_unpooled_sizes);
	tcase_add_test(tc, test_uninitialised_pool_mallocs);
	tcase_add_test(tc, test_class_caps);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bufpool_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
