/*
 * Unit tests for broker/msg.c: what msg_new() copies and where, the limits
 * it refuses, and that the last msg_unref() frees the one allocation.
 * The test includes msg.c with malloc and free wrapped, to fail an
 * allocation and to count frees; and the free lists a shard binds.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t frees; /* non-NULL pointers freed by msg.c */
static uintptr_t last_freed;
static bool fail_malloc;

static void *test_malloc(size_t size)
{
	return fail_malloc ? NULL : malloc(size);
}

static void test_free(void *p)
{
	if (p) {
		frees++;
		last_freed = (uintptr_t)p;
	}
	free(p);
}

#define malloc test_malloc
#define free test_free
#include "broker/msg.c"
#include "broker/objcache.c"
#undef malloc
#undef free

/*
 * The tests drop a reference and then look at a message they know is
 * still alive.  Called through a volatile pointer, msg_unref() is not
 * inlined here, so gcc -O2 does not take the free() on its last-reference
 * path for a use after free (-Wuse-after-free).
 */
static void (*volatile drop)(struct msg *) = msg_unref;

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct new_row {
	const char *topic;
	size_t topic_len;
	const char *payload; /* NULL with len 0: no payload at all */
	size_t payload_len;
	const char *props;
	size_t props_len;
	uint8_t qos;
	bool retain;
};

#define BYTES(s) s, sizeof(s) - 1

static const struct new_row new_rows[] = {
	{ BYTES("a"), BYTES("x"), NULL, 0, 0, false },
	{ BYTES("sport/tennis/player1"), BYTES("15-30"), NULL, 0, 1, true },
	{ BYTES("$SYS/broker/uptime"), BYTES("42"), BYTES("\x01\x01"), 0,
	  true },
	{ BYTES("a//b/"), NULL, 0, NULL, 0, 2, true },
	/* Embedded NUL bytes are payload like any other. */
	{ BYTES("bin"), BYTES("\0\xff\0"), BYTES("\x23\x00\x05"), 2, false },
	{ BYTES("/"), BYTES(""), BYTES(""), 1, false },
};

START_TEST(test_new_copies)
{
	const struct new_row *r = &new_rows[_i];
	struct msg *m;

	m = msg_new(r->topic, r->topic_len, (const uint8_t *)r->payload,
		    r->payload_len, (const uint8_t *)r->props, r->props_len,
		    r->qos, r->retain);
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->refs, 1);
	ck_assert_uint_eq(m->qos, r->qos);
	ck_assert(m->retain == r->retain);
	ck_assert_uint_eq(m->expiry_at, 0);
	ck_assert_ptr_null(m->origin);
	ck_assert_uint_eq(m->store_id, 0);
	ck_assert_uint_eq(m->store_refs, 0);

	ck_assert_uint_eq(m->topic_len, r->topic_len);
	ck_assert_int_eq(memcmp(m->topic, r->topic, r->topic_len), 0);
	ck_assert_int_eq(m->topic[r->topic_len], '\0');
	ck_assert_ptr_ne(m->topic, r->topic);

	ck_assert_uint_eq(m->payload_len, r->payload_len);
	ck_assert_ptr_nonnull(m->payload);
	if (r->payload_len)
		ck_assert_int_eq(memcmp(m->payload, r->payload,
					r->payload_len), 0);

	ck_assert_uint_eq(m->props_len, r->props_len);
	ck_assert_ptr_nonnull(m->props);
	if (r->props_len)
		ck_assert_int_eq(memcmp(m->props, r->props, r->props_len), 0);

	/* All three live inside the one allocation, in order. */
	ck_assert_ptr_eq(m->topic, (const char *)m->data);
	ck_assert_ptr_eq(m->payload, m->data + r->topic_len + 1);
	ck_assert_ptr_eq(m->props, m->payload + r->payload_len);

	frees = 0;
	drop(m);
	ck_assert_uint_eq(frees, 1);
}
END_TEST

START_TEST(test_new_is_a_copy)
{
	char topic[] = "a/b";
	uint8_t payload[] = { 1, 2, 3 };
	uint8_t props[] = { 0x01, 0x00 };
	struct msg *m = msg_new(topic, 3, payload, 3, props, 2, 1, false);

	ck_assert_ptr_nonnull(m);
	topic[0] = 'z';
	payload[0] = 9;
	props[1] = 1;
	ck_assert_str_eq(m->topic, "a/b");
	ck_assert_uint_eq(m->payload[0], 1);
	ck_assert_uint_eq(m->props[1], 0);
	drop(m);
}
END_TEST

struct limit_row {
	size_t topic_len;
	size_t payload_len;
	size_t props_len;
	bool ok;
};

/* Lengths only: msg_new() must refuse before reading any byte. */
static const struct limit_row limit_rows[] = {
	{ 65535, 0, 0, true },
	{ 65536, 0, 0, false },
	{ 1, (size_t)UINT32_MAX + 1, 0, false },
	{ 1, 0, (size_t)UINT32_MAX + 1, false },
	{ 1, SIZE_MAX, 0, false },
	{ 1, 0, SIZE_MAX, false },
};

START_TEST(test_new_limits)
{
	const struct limit_row *r = &limit_rows[_i];
	static char big[65535];
	struct msg *m;

	memset(big, 't', sizeof(big));
	m = msg_new(big, r->topic_len, (const uint8_t *)big, r->payload_len,
		    (const uint8_t *)big, r->props_len, 0, false);
	if (!r->ok) {
		ck_assert_ptr_null(m);
		return;
	}
	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(m->topic_len, r->topic_len);
	ck_assert_uint_eq(strlen(m->topic), r->topic_len);
	drop(m);
}
END_TEST

START_TEST(test_new_out_of_memory)
{
	struct msg *m;

	fail_malloc = true;
	m = msg_new("a", 1, NULL, 0, NULL, 0, 0, false);
	fail_malloc = false;
	ck_assert_ptr_null(m);
}
END_TEST

START_TEST(test_refcount)
{
	struct msg *m = msg_new("a", 1, (const uint8_t *)"x", 1, NULL, 0, 0,
				false);
	uintptr_t addr = (uintptr_t)m;

	ck_assert_ptr_nonnull(m);
	ck_assert_ptr_eq(msg_ref(m), m);
	ck_assert_ptr_eq(msg_ref(m), m);
	ck_assert_uint_eq(m->refs, 3);

	frees = 0;
	drop(m);
	drop(m);
	ck_assert_uint_eq(frees, 0);
	ck_assert_uint_eq(m->refs, 1);
	drop(m);
	ck_assert_uint_eq(frees, 1);
	ck_assert(last_freed == addr);

	drop(NULL); /* no-op */
	ck_assert_uint_eq(frees, 1);
}
END_TEST

/*
 * With a shard's lists bound to the thread, messages of up to 1 KiB in all
 * come from and go back to the list of their size; larger ones are
 * malloc'ed and freed.  A message made where nothing is bound has its
 * list's size too, so it may go to a list when freed (ASan checks the
 * size when it is used again).
 */
START_TEST(test_cache_bound)
{
	static const uint8_t payload[1100];
	struct objcache caches[MSG_CACHE_CLASSES];
	size_t fill = 256 - sizeof(struct msg) - 2; /* "t", its NUL: 256 */
	struct msg *loose, *m, *big;
	uintptr_t loose_addr;

	loose = msg_new("t", 1, payload, 10, NULL, 0, 0, false);
	ck_assert_ptr_nonnull(loose);
	loose_addr = (uintptr_t)loose;
	msg_cache_init(caches);
	msg_cache_bind(caches);
	frees = 0;
	drop(loose);
	ck_assert_uint_eq(frees, 0);
	ck_assert_uint_eq(caches[0].count, 1);

	m = msg_new("t", 1, payload, fill, NULL, 0, 0, false);
	ck_assert((uintptr_t)m == loose_addr);
	ck_assert_uint_eq(caches[0].count, 0);
	memset((void *)m->payload, 1, fill); /* the whole 256 bytes */
	drop(m);
	ck_assert_uint_eq(caches[0].count, 1);

	m = msg_new("t", 1, payload, fill + 1, NULL, 0, 0, false);
	ck_assert((uintptr_t)m != loose_addr); /* 257 bytes: the 512 list */
	drop(m);
	ck_assert_uint_eq(caches[1].count, 1);
	ck_assert_uint_eq(frees, 0);

	big = msg_new("t", 1, payload, sizeof(payload), NULL, 0, 0, false);
	ck_assert_ptr_nonnull(big);
	drop(big);
	ck_assert_uint_eq(frees, 1);
	for (unsigned k = 0; k < MSG_CACHE_CLASSES; k++)
		ck_assert_uint_eq(caches[k].count, k < 2 ? 1 : 0);

	msg_cache_bind(NULL);
	m = msg_new("t", 1, payload, 10, NULL, 0, 0, false);
	ck_assert_uint_eq(caches[0].count, 1); /* unbound: not taken */
	drop(m);
	ck_assert_uint_eq(frees, 2);
	for (unsigned k = 0; k < MSG_CACHE_CLASSES; k++)
		objcache_fini(&caches[k]);
	ck_assert_uint_eq(frees, 4);
}
END_TEST

/*
 * A message freed on another shard's thread goes back to the list it came
 * from, not to that thread's: a shard that only publishes reuses its own.
 * One made where nothing was bound goes to the freeing thread's list.
 */
START_TEST(test_cache_home)
{
	static const uint8_t payload[64];
	struct objcache home[MSG_CACHE_CLASSES], other[MSG_CACHE_CLASSES];
	struct msg *m, *loose, *again;

	msg_cache_init(home);
	msg_cache_init(other);
	loose = msg_new("t", 1, payload, sizeof(payload), NULL, 0, 0, false);
	ck_assert_ptr_null(loose->home);
	msg_cache_bind(home);
	m = msg_new("t", 1, payload, sizeof(payload), NULL, 0, 0, false);
	ck_assert_ptr_eq(m->home, &home[0]);
	msg_cache_bind(other); /* now the publisher's message is freed here */
	frees = 0;
	drop(m);
	drop(loose);
	ck_assert_uint_eq(frees, 0);
	ck_assert_uint_eq(other[0].count, 1); /* loose */
	ck_assert_uint_eq(home[0].count, 0);
	ck_assert_ptr_eq(atomic_load(&home[0].returned), m);

	msg_cache_bind(home);
	again = msg_new("t", 1, payload, sizeof(payload), NULL, 0, 0, false);
	ck_assert_ptr_eq(again, m);
	ck_assert_ptr_eq(again->home, &home[0]);
	drop(again); /* its own thread: onto the list itself */
	ck_assert_uint_eq(home[0].count, 1);
	ck_assert_ptr_null(atomic_load(&home[0].returned));

	msg_cache_bind(NULL);
	for (unsigned k = 0; k < MSG_CACHE_CLASSES; k++) {
		objcache_fini(&home[k]);
		objcache_fini(&other[k]);
	}
	ck_assert_uint_eq(frees, 2);
}
END_TEST

static Suite *msg_suite(void)
{
	Suite *s = suite_create("msg");
	TCase *tc = tcase_create("msg");

	tcase_add_loop_test(tc, test_new_copies, 0, NELEM(new_rows));
	tcase_add_test(tc, test_new_is_a_copy);
	tcase_add_loop_test(tc, test_new_limits, 0, NELEM(limit_rows));
	tcase_add_test(tc, test_new_out_of_memory);
	tcase_add_test(tc, test_refcount);
	tcase_add_test(tc, test_cache_bound);
	tcase_add_test(tc, test_cache_home);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(msg_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
