/*
 * Variable Byte Integers (MQTT 5.0 §1.5.5, 3.1.1 §2.2.3): decode, size and
 * encode at every boundary of the size table, incomplete input, the fifth
 * byte, and round trips.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mqtt.h"

/* The table of §1.5.5: each size's smallest and largest value. */
static const struct {
	uint32_t value;
	uint8_t bytes[4];
	size_t size;
} table[] = {
	{ 0, { 0x00 }, 1 },
	{ 1, { 0x01 }, 1 },
	{ 127, { 0x7F }, 1 },
	{ 128, { 0x80, 0x01 }, 2 },
	{ 129, { 0x81, 0x01 }, 2 },
	{ 321, { 0xC1, 0x02 }, 2 },
	{ 16383, { 0xFF, 0x7F }, 2 },
	{ 16384, { 0x80, 0x80, 0x01 }, 3 },
	{ 2097151, { 0xFF, 0xFF, 0x7F }, 3 },
	{ 2097152, { 0x80, 0x80, 0x80, 0x01 }, 4 },
	{ 268435455, { 0xFF, 0xFF, 0xFF, 0x7F }, 4 },
};

#define TABLE_COUNT ((int)(sizeof(table) / sizeof(table[0])))

START_TEST(varint_decode_table)
{
	uint8_t buf[8];
	uint32_t v = 0xDEADBEEF;
	size_t used = 99;

	memcpy(buf, table[_i].bytes, table[_i].size);
	ck_assert_int_eq(mqtt_varint_decode(buf, table[_i].size, &v, &used),
			 MQTT_OK);
	ck_assert_uint_eq(v, table[_i].value);
	ck_assert_uint_eq(used, table[_i].size);
	/* Bytes after the integer are not part of it. */
	memset(buf + table[_i].size, 0xFF, sizeof(buf) - table[_i].size);
	ck_assert_int_eq(mqtt_varint_decode(buf, sizeof(buf), &v, &used),
			 MQTT_OK);
	ck_assert_uint_eq(v, table[_i].value);
	ck_assert_uint_eq(used, table[_i].size);
}
END_TEST

/* Every strict prefix of a multi-byte integer needs more bytes. */
START_TEST(varint_decode_incomplete)
{
	uint32_t v;
	size_t used, n;

	for (n = 0; n < table[_i].size; n++)
		ck_assert_msg(mqtt_varint_decode(table[_i].bytes, n, &v,
						 &used) == MQTT_E_INCOMPLETE,
			      "value %u, %zu bytes", table[_i].value, n);
}
END_TEST

START_TEST(varint_size_table)
{
	ck_assert_uint_eq(mqtt_varint_size(table[_i].value), table[_i].size);
}
END_TEST

START_TEST(varint_encode_table)
{
	uint8_t out[8];

	memset(out, 0xEE, sizeof(out));
	ck_assert_uint_eq(mqtt_varint_encode(table[_i].value, out),
			  table[_i].size);
	ck_assert_mem_eq(out, table[_i].bytes, table[_i].size);
	ck_assert_uint_eq(out[table[_i].size], 0xEE);
}
END_TEST

/* More than four bytes is malformed. */
START_TEST(varint_five_bytes)
{
	static const uint8_t a[] = { 0xFF, 0xFF, 0xFF, 0xFF, 0x7F };
	static const uint8_t b[] = { 0x80, 0x80, 0x80, 0x80, 0x01 };
	static const uint8_t c[] = { 0x80, 0x80, 0x80, 0x80, 0x00 };
	static const uint8_t d[] = { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF };
	uint32_t v;
	size_t used;

	ck_assert_int_eq(mqtt_varint_decode(a, sizeof(a), &v, &used),
			 MQTT_E_VARINT);
	ck_assert_int_eq(mqtt_varint_decode(b, sizeof(b), &v, &used),
			 MQTT_E_VARINT);
	ck_assert_int_eq(mqtt_varint_decode(c, sizeof(c), &v, &used),
			 MQTT_E_VARINT);
	ck_assert_int_eq(mqtt_varint_decode(d, sizeof(d), &v, &used),
			 MQTT_E_VARINT);
}
END_TEST

/*
 * Four bytes with the continuation bit: a fifth byte would be needed, which
 * can never be valid, so waiting for it is pointless.
 */
START_TEST(varint_four_continuations)
{
	static const uint8_t a[] = { 0x80, 0x80, 0x80, 0x80 };
	uint32_t v;
	size_t used;

	ck_assert_int_eq(mqtt_varint_decode(a, sizeof(a), &v, &used),
			 MQTT_E_VARINT);
}
END_TEST

START_TEST(varint_round_trip)
{
	uint32_t seed = 12345, i;

	for (i = 0; i < 20000; i++) {
		uint8_t buf[4];
		uint32_t v, got = 0;
		size_t n, used = 0;

		seed = seed * 1103515245u + 12345u;
		v = (seed >> (i % 20)) % (MQTT_VARINT_MAX + 1u);
		n = mqtt_varint_encode(v, buf);
		ck_assert_uint_eq(n, mqtt_varint_size(v));
		ck_assert_int_eq(mqtt_varint_decode(buf, n, &got, &used),
				 MQTT_OK);
		ck_assert_uint_eq(got, v);
		ck_assert_uint_eq(used, n);
		/* Minimal encoding [MQTT-1.5.5-1]: no trailing 0x00 group. */
		ck_assert(n == 1 || buf[n - 1] != 0x00);
	}
}
END_TEST

static Suite *varint_suite(void)
{
	Suite *s = suite_create("protocol/varint");
	TCase *tc = tcase_create("table");

	tcase_add_loop_test(tc, varint_decode_table, 0, TABLE_COUNT);
	tcase_add_loop_test(tc, varint_decode_incomplete, 0, TABLE_COUNT);
	tcase_add_loop_test(tc, varint_size_table, 0, TABLE_COUNT);
	tcase_add_loop_test(tc, varint_encode_table, 0, TABLE_COUNT);
	suite_add_tcase(s, tc);

	tc = tcase_create("malformed");
	tcase_add_test(tc, varint_five_bytes);
	tcase_add_test(tc, varint_four_continuations);
	suite_add_tcase(s, tc);

	tc = tcase_create("round trip");
	tcase_add_test(tc, varint_round_trip);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(varint_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
