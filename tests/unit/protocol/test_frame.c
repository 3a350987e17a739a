/*
 * mqtt_frame_peek(): delimiting packets in a byte stream without consuming
 * it.  Remaining Length boundaries of MQTT 5.0 §1.5.5 / 3.1.1 §2.2.3, the
 * fifth length byte, byte-at-a-time arrival of a stream of packets, the
 * size limit checked as soon as the length field is complete, and type 0.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mqtt.h"

#define NAME_MQTT 0x00, 0x04, 'M', 'Q', 'T', 'T'

static const struct {
	uint32_t rl;
	uint8_t len_bytes[4];
	size_t len_size;
} bounds[] = {
	{ 0, { 0x00 }, 1 },
	{ 127, { 0x7F }, 1 },
	{ 128, { 0x80, 0x01 }, 2 },
	{ 16383, { 0xFF, 0x7F }, 2 },
	{ 16384, { 0x80, 0x80, 0x01 }, 3 },
	{ 2097151, { 0xFF, 0xFF, 0x7F }, 3 },
	{ 2097152, { 0x80, 0x80, 0x80, 0x01 }, 4 },
	{ 268435455, { 0xFF, 0xFF, 0xFF, 0x7F }, 4 },
};

#define BOUND_COUNT ((int)(sizeof(bounds) / sizeof(bounds[0])))

/*
 * Only the fixed header present: the total is known and reported while
 * INCOMPLETE (a zero Remaining Length is a complete packet).
 */
START_TEST(frame_length_boundaries_header_only)
{
	uint8_t hdr[5] = { 0x30 };
	size_t hlen = 1 + bounds[_i].len_size, plen = 12345;
	size_t total = hlen + bounds[_i].rl;
	int rc;

	memcpy(hdr + 1, bounds[_i].len_bytes, bounds[_i].len_size);
	if (bounds[_i].rl == 0)
		hdr[0] = 0xC0; /* PINGREQ */
	rc = mqtt_frame_peek(hdr, hlen, 0, &plen);
	if (bounds[_i].rl == 0) {
		ck_assert_int_eq(rc, MQTT_OK);
	} else {
		ck_assert_msg(rc == MQTT_E_INCOMPLETE, "rl %u: %d",
			      bounds[_i].rl, rc);
	}
	ck_assert_msg(plen == total, "rl %u: packet_len %zu, expected %zu",
		      bounds[_i].rl, plen, total);
	/* Peeking consumes nothing: the same answer again. */
	ck_assert_int_eq(mqtt_frame_peek(hdr, hlen, 0, &plen), rc);
	ck_assert_uint_eq(plen, total);
}
END_TEST

/* With the whole packet present (up to the 4-byte boundary of 2 MiB). */
START_TEST(frame_length_boundaries_full)
{
	size_t hlen = 1 + bounds[_i].len_size;
	size_t total = hlen + bounds[_i].rl, plen = 0;
	uint8_t *buf;

	if (bounds[_i].rl > 2097152)
		return;
	buf = calloc(1, total + 7);
	ck_assert_ptr_nonnull(buf);
	buf[0] = 0x30;
	memcpy(buf + 1, bounds[_i].len_bytes, bounds[_i].len_size);
	ck_assert_int_eq(mqtt_frame_peek(buf, total, 0, &plen), MQTT_OK);
	ck_assert_uint_eq(plen, total);
	/* Bytes of a following packet do not change the answer. */
	ck_assert_int_eq(mqtt_frame_peek(buf, total + 7, 0, &plen), MQTT_OK);
	ck_assert_uint_eq(plen, total);
	if (total > hlen) {
		ck_assert_int_eq(mqtt_frame_peek(buf, total - 1, 0, &plen),
				 MQTT_E_INCOMPLETE);
		ck_assert_uint_eq(plen, total);
	}
	/* Exactly at the limit is allowed. */
	ck_assert_int_eq(mqtt_frame_peek(buf, total, (uint32_t)total, &plen),
			 MQTT_OK);
	free(buf);
}
END_TEST

/* A length field not yet complete: INCOMPLETE and *packet_len 0. */
START_TEST(frame_length_field_incomplete)
{
	static const uint8_t b[] = { 0x30, 0xFF, 0xFF, 0xFF, 0x7F };
	size_t n, plen;

	for (n = 0; n < sizeof(b); n++) {
		plen = 999;
		ck_assert_int_eq(mqtt_frame_peek(b, n, 0, &plen),
				 MQTT_E_INCOMPLETE);
		ck_assert_msg(plen == 0, "len %zu: packet_len %zu", n, plen);
	}
	plen = 999;
	ck_assert_int_eq(mqtt_frame_peek(NULL, 0, 0, &plen),
			 MQTT_E_INCOMPLETE);
	ck_assert_uint_eq(plen, 0);
}
END_TEST

/* A fifth length byte is malformed [MQTT-1.5.5], whatever follows. */
START_TEST(frame_five_byte_length)
{
	static const uint8_t a[] = { 0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F };
	static const uint8_t b[] = { 0x30, 0x80, 0x80, 0x80, 0x80, 0x01 };
	static const uint8_t c[] = { 0x30, 0x80, 0x80, 0x80, 0x80, 0x00,
				     0x00 };
	size_t plen;

	ck_assert_int_eq(mqtt_frame_peek(a, sizeof(a), 0, &plen),
			 MQTT_E_VARINT);
	ck_assert_int_eq(mqtt_frame_peek(b, sizeof(b), 0, &plen),
			 MQTT_E_VARINT);
	ck_assert_int_eq(mqtt_frame_peek(c, sizeof(c), 0, &plen),
			 MQTT_E_VARINT);
	ck_assert_int_eq(mqtt_frame_peek(a, sizeof(a), 1000, &plen),
			 MQTT_E_VARINT);
}
END_TEST

/*
 * Four length bytes all with the continuation bit: no valid length can
 * follow, so this is refused without waiting for a fifth byte.
 */
START_TEST(frame_four_continuation_bytes)
{
	static const uint8_t a[] = { 0x30, 0x80, 0x80, 0x80, 0x80 };
	size_t plen;

	ck_assert_int_eq(mqtt_frame_peek(a, sizeof(a), 0, &plen),
			 MQTT_E_VARINT);
}
END_TEST

/* Packet type 0 is reserved (Table 2.1). */
START_TEST(frame_type_zero)
{
	static const uint8_t a[] = { 0x00, 0x00 };
	static const uint8_t b[] = { 0x0F, 0x02, 0x00, 0x01 };
	size_t plen;

	ck_assert_int_eq(mqtt_frame_peek(a, sizeof(a), 0, &plen),
			 MQTT_E_PACKET_TYPE);
	ck_assert_int_eq(mqtt_frame_peek(b, sizeof(b), 0, &plen),
			 MQTT_E_PACKET_TYPE);
}
END_TEST

/* Every other type is framed, whatever its flags: decode checks those. */
START_TEST(frame_every_type)
{
	uint8_t b[] = { (uint8_t)(_i << 4), 0x02, 0x00, 0x01 };
	size_t plen = 0;

	ck_assert_int_eq(mqtt_frame_peek(b, sizeof(b), 0, &plen), MQTT_OK);
	ck_assert_uint_eq(plen, 4);
}
END_TEST

/*
 * Size limit: a total of exactly max_size is fine, max_size + 1 is
 * TOO_LARGE, reported from the fixed header alone, before the body.
 */
START_TEST(frame_too_large_one_byte_length)
{
	static const uint8_t at[] = { 0x30, 0x62 };   /* total 100 */
	static const uint8_t over[] = { 0x30, 0x63 }; /* total 101 */
	size_t plen;

	ck_assert_int_eq(mqtt_frame_peek(at, sizeof(at), 100, &plen),
			 MQTT_E_INCOMPLETE);
	ck_assert_uint_eq(plen, 100);
	ck_assert_int_eq(mqtt_frame_peek(over, sizeof(over), 100, &plen),
			 MQTT_E_TOO_LARGE);
	ck_assert_int_eq(mqtt_frame_peek(over, sizeof(over), 101, &plen),
			 MQTT_E_INCOMPLETE);
	ck_assert_uint_eq(plen, 101);
	ck_assert_int_eq(mqtt_frame_peek(over, sizeof(over), 0, &plen),
			 MQTT_E_INCOMPLETE);
}
END_TEST

START_TEST(frame_too_large_two_byte_length)
{
	static const uint8_t at[] = { 0x30, 0xC5, 0x01 };   /* 197: total 200 */
	static const uint8_t over[] = { 0x30, 0xC6, 0x01 }; /* 198: total 201 */
	size_t plen;

	/* The first length byte alone says nothing yet. */
	ck_assert_int_eq(mqtt_frame_peek(over, 2, 200, &plen),
			 MQTT_E_INCOMPLETE);
	ck_assert_uint_eq(plen, 0);
	ck_assert_int_eq(mqtt_frame_peek(over, 3, 200, &plen),
			 MQTT_E_TOO_LARGE);
	ck_assert_int_eq(mqtt_frame_peek(at, 3, 200, &plen),
			 MQTT_E_INCOMPLETE);
	ck_assert_uint_eq(plen, 200);
}
END_TEST

/* Whole packets too: == max OK, max + 1 refused. */
START_TEST(frame_too_large_complete_packets)
{
	static const uint8_t pingreq[] = { 0xC0, 0x00 };
	static const uint8_t puback[] = { 0x40, 0x02, 0x00, 0x01 };
	size_t plen;

	ck_assert_int_eq(mqtt_frame_peek(pingreq, 2, 2, &plen), MQTT_OK);
	ck_assert_int_eq(mqtt_frame_peek(pingreq, 2, 1, &plen),
			 MQTT_E_TOO_LARGE);
	ck_assert_int_eq(mqtt_frame_peek(puback, 4, 4, &plen), MQTT_OK);
	ck_assert_uint_eq(plen, 4);
	ck_assert_int_eq(mqtt_frame_peek(puback, 4, 3, &plen),
			 MQTT_E_TOO_LARGE);
}
END_TEST

/* The largest packet MQTT allows, against a large limit and none. */
START_TEST(frame_too_large_protocol_maximum)
{
	static const uint8_t max[] = { 0x30, 0xFF, 0xFF, 0xFF, 0x7F };
	size_t plen;

	ck_assert_int_eq(mqtt_frame_peek(max, sizeof(max), 0, &plen),
			 MQTT_E_INCOMPLETE);
	ck_assert_uint_eq(plen, (size_t)MQTT_VARINT_MAX + 5);
	ck_assert_int_eq(mqtt_frame_peek(max, sizeof(max),
					 MQTT_VARINT_MAX + 5, &plen),
			 MQTT_E_INCOMPLETE);
	ck_assert_int_eq(mqtt_frame_peek(max, sizeof(max),
					 MQTT_VARINT_MAX + 4, &plen),
			 MQTT_E_TOO_LARGE);
	ck_assert_int_eq(mqtt_frame_peek(max, sizeof(max), 1024 * 1024, &plen),
			 MQTT_E_TOO_LARGE);
}
END_TEST

/*
 * A stream of packets arriving one byte at a time: INCOMPLETE until exactly
 * the whole current packet is visible, then OK with its length; *packet_len
 * is the total once the length field is complete, 0 before.
 */
START_TEST(frame_stream_byte_at_a_time)
{
	static uint8_t stream[1024];
	static const uint8_t connect[] = {
		0x10, 0x0D, NAME_MQTT, 0x04, 0x02, 0x00, 0x3C, 0x00, 0x01, 'a',
	};
	static const uint8_t publish[] = {
		0x32, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'x',
	};
	static const uint8_t pingreq[] = { 0xC0, 0x00 };
	static const uint8_t subscribe[] = {
		0x82, 0x0E, 0x00, 0x0A, 0x00, 0x03, 'a', '/', 'b', 0x01,
		0x00, 0x03, 'c', '/', 'd', 0x02,
	};
	static const uint8_t disconnect[] = { 0xE0, 0x00 };
	const uint8_t *pkts[] = {
		connect, publish, pingreq, NULL, subscribe, pingreq,
		disconnect,
	};
	size_t sizes[] = {
		sizeof(connect), sizeof(publish), sizeof(pingreq), 300,
		sizeof(subscribe), sizeof(pingreq), sizeof(disconnect),
	};
	size_t n = sizeof(sizes) / sizeof(sizes[0]);
	size_t total = 0, i, pos = 0, k = 0, visible;

	/* Packet 3: a PUBLISH with a two-byte Remaining Length (297). */
	for (i = 0; i < n; i++) {
		if (pkts[i]) {
			memcpy(stream + total, pkts[i], sizes[i]);
		} else {
			stream[total] = 0x30;
			stream[total + 1] = 0xA9; /* 297 = 0x29 + 2 * 128 */
			stream[total + 2] = 0x02;
			stream[total + 3] = 0x00;
			stream[total + 4] = 0x01;
			stream[total + 5] = 't';
			memset(stream + total + 6, 'p', sizes[i] - 6);
		}
		total += sizes[i];
	}
	for (visible = 1; visible <= total; visible++) {
		size_t have = visible - pos, plen = 777;
		size_t len_field = sizes[k] == 300 ? 3 : 2;
		int rc = mqtt_frame_peek(stream + pos, have, 0, &plen);

		if (have < sizes[k]) {
			ck_assert_msg(rc == MQTT_E_INCOMPLETE, "packet %zu, "
				      "%zu bytes: %d", k, have, rc);
			ck_assert_msg(plen == (have >= len_field ? sizes[k] :
					       0), "packet %zu, %zu bytes: "
				      "packet_len %zu", k, have, plen);
			continue;
		}
		ck_assert_msg(rc == MQTT_OK, "packet %zu complete: %d", k, rc);
		ck_assert_uint_eq(plen, sizes[k]);
		pos += sizes[k];
		k++;
	}
	ck_assert_uint_eq(k, n);
	ck_assert_uint_eq(pos, total);
}
END_TEST

/* Framed packets decode: frame_peek and decode agree on the length. */
START_TEST(frame_then_decode)
{
	static const uint8_t two[] = {
		0x32, 0x08, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'x',
		0xC0, 0x00,
	};
	struct mqtt_packet pkt;
	size_t plen;

	ck_assert_int_eq(mqtt_frame_peek(two, sizeof(two), 0, &plen), MQTT_OK);
	ck_assert_uint_eq(plen, 10);
	ck_assert_int_eq(mqtt_decode(two, plen, MQTT_V311, &pkt), MQTT_OK);
	ck_assert_uint_eq(pkt.type, MQTT_PUBLISH);
	ck_assert_uint_eq(pkt.u.publish.payload.len, 1);
	ck_assert_int_eq(mqtt_frame_peek(two + plen, sizeof(two) - plen, 0,
					 &plen), MQTT_OK);
	ck_assert_uint_eq(plen, 2);
}
END_TEST

static Suite *frame_suite(void)
{
	Suite *s = suite_create("protocol/frame");
	TCase *tc = tcase_create("length");

	tcase_add_loop_test(tc, frame_length_boundaries_header_only, 0,
			    BOUND_COUNT);
	tcase_add_loop_test(tc, frame_length_boundaries_full, 0, BOUND_COUNT);
	tcase_add_test(tc, frame_length_field_incomplete);
	tcase_add_test(tc, frame_five_byte_length);
	tcase_add_test(tc, frame_four_continuation_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("type");
	tcase_add_test(tc, frame_type_zero);
	tcase_add_loop_test(tc, frame_every_type, 1, 16);
	suite_add_tcase(s, tc);

	tc = tcase_create("limit");
	tcase_add_test(tc, frame_too_large_one_byte_length);
	tcase_add_test(tc, frame_too_large_two_byte_length);
	tcase_add_test(tc, frame_too_large_complete_packets);
	tcase_add_test(tc, frame_too_large_protocol_maximum);
	suite_add_tcase(s, tc);

	tc = tcase_create("stream");
	tcase_add_test(tc, frame_stream_byte_at_a_time);
	tcase_add_test(tc, frame_then_decode);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(frame_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
