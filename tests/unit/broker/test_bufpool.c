/*
 * Unit tests for broker/bufpool.c: a buffer given back is the next one
 * taken of its size and only of its size, sizes outside the classes go
 * straight to malloc/free, the byte cap, the low-water trim (what a
 * second did not take goes, what it took stays), and fini.  Leaks show
 * under AddressSanitizer, which CI runs this under.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/bufpool.c"

#define KIB 1024u

START_TEST(test_reuse_same_size)
{
	struct bufpool p = { 0 };
	void *a = bufpool_get(&p, 4 * KIB);
	void *b;

	ck_assert_ptr_nonnull(a);
	memset(a, 0xab, 4 * KIB); /* really 4 KiB, for ASan */
	bufpool_put(&p, a, 4 * KIB);
	ck_assert_uint_eq(p.count[2], 1);
	ck_assert_uint_eq(p.bytes, 4 * KIB);
	b = bufpool_get(&p, 4 * KIB);
	ck_assert_ptr_eq(a, b);
	ck_assert_uint_eq(p.count[2], 0);
	ck_assert_uint_eq(p.bytes, 0);
	bufpool_put(&p, b, 4 * KIB);
	bufpool_fini(&p);
	ck_assert_ptr_null(p.free[2]);
	ck_assert_uint_eq(p.bytes, 0);
}
END_TEST

START_TEST(test_sizes_kept_apart)
{
	struct bufpool p = { 0 };
	void *small = bufpool_get(&p, 1 * KIB);
	void *big;

	bufpool_put(&p, small, 1 * KIB);
	big = bufpool_get(&p, 64 * KIB);
	ck_assert_ptr_ne(big, small);
	memset(big, 0, 64 * KIB);
	ck_assert_uint_eq(p.count[0], 1);
	bufpool_put(&p, big, 64 * KIB);
	ck_assert_uint_eq(p.count[BUFPOOL_CLASSES - 1], 1);
	ck_assert_uint_eq(p.bytes, 65 * KIB);
	bufpool_fini(&p);
}
END_TEST

START_TEST(test_unpooled_sizes)
{
	struct bufpool p = { 0 };
	/* Not a power of two, below, and above the classes. */
	size_t sizes[] = { 3000, 512, 128 * KIB, 2 * BUFPOOL_MAX_SIZE };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		void *buf = bufpool_get(&p, sizes[i]);

		ck_assert_ptr_nonnull(buf);
		memset(buf, 1, sizes[i]);
		bufpool_put(&p, buf, sizes[i]);
		ck_assert_uint_eq(p.bytes, 0);
	}
	bufpool_put(&p, NULL, 4 * KIB);
	ck_assert_uint_eq(p.bytes, 0);
	bufpool_fini(&p);
}
END_TEST

START_TEST(test_cap)
{
	struct bufpool p = { 0 };
	size_t n = BUFPOOL_MAX_BYTES / (64 * KIB) + 3;
	void **bufs = calloc(n, sizeof(*bufs));

	ck_assert_ptr_nonnull(bufs);
	for (size_t i = 0; i < n; i++)
		bufs[i] = bufpool_get(&p, 64 * KIB);
	for (size_t i = 0; i < n; i++)
		bufpool_put(&p, bufs[i], 64 * KIB);
	ck_assert_uint_eq(p.bytes, BUFPOOL_MAX_BYTES);
	ck_assert_uint_eq(p.count[BUFPOOL_CLASSES - 1],
			  BUFPOOL_MAX_BYTES / (64 * KIB));
	bufpool_fini(&p);
	free(bufs);
}
END_TEST

START_TEST(test_trim_low_water)
{
	struct bufpool p = { 0 };
	void *bufs[3];

	for (int i = 0; i < 3; i++)
		bufs[i] = bufpool_get(&p, 8 * KIB);
	for (int i = 0; i < 3; i++)
		bufpool_put(&p, bufs[i], 8 * KIB);
	/* Before any trim the mark is unknown: nothing goes. */
	bufpool_trim(&p);
	ck_assert_uint_eq(p.count[3], 3);
	/* A second in which one was taken (and given back): two unused. */
	bufs[0] = bufpool_get(&p, 8 * KIB);
	bufpool_put(&p, bufs[0], 8 * KIB);
	bufpool_trim(&p);
	ck_assert_uint_eq(p.count[3], 1);
	ck_assert_uint_eq(p.bytes, 8 * KIB);
	/* One in use across the trim and given back after: it stays. */
	bufs[0] = bufpool_get(&p, 8 * KIB);
	bufpool_trim(&p);
	bufpool_put(&p, bufs[0], 8 * KIB);
	ck_assert_uint_eq(p.count[3], 1);
	/* Then a whole quiet second, trim to trim: it goes. */
	bufpool_trim(&p);
	ck_assert_uint_eq(p.count[3], 1);
	bufpool_trim(&p);
	ck_assert_uint_eq(p.count[3], 0);
	ck_assert_ptr_null(p.free[3]);
	ck_assert_uint_eq(p.bytes, 0);
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
	tcase_add_test(tc, test_cap);
	tcase_add_test(tc, test_trim_low_water);
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
