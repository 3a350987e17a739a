/*
 * Error codes and reason codes: mqtt_err_reason() for every enum mqtt_err
 * value as the comments of protocol/mqtt.h state it, 0x81 for unknown
 * errors, and mqtt_err_str() / mqtt_rc_str() names that are never NULL and
 * tell every value apart.
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mqtt.h"

/* The mapping written next to each error in mqtt.h. */
static const struct {
	int err;
	uint8_t reason;
} mapping[] = {
	{ MQTT_E_VARINT, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_PACKET_TYPE, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_HEADER_FLAGS, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_QOS, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_DUP_QOS0, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_SHORT, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_TRAILING, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_TOO_LARGE, MQTT_RC_PACKET_TOO_LARGE },
	{ MQTT_E_UTF8, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_PROTOCOL_NAME, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION },
	{ MQTT_E_PROTOCOL_VERSION, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION },
	{ MQTT_E_CONNECT_RESERVED, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_WILL_FLAGS, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_PASSWORD_FLAG, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_PACKET_ID, MQTT_RC_PROTOCOL_ERROR },
	{ MQTT_E_PROP_ID, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_PROP_NOT_ALLOWED, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_PROP_DUPLICATE, MQTT_RC_PROTOCOL_ERROR },
	{ MQTT_E_PROP_VALUE, MQTT_RC_PROTOCOL_ERROR },
	{ MQTT_E_NO_TOPICS, MQTT_RC_PROTOCOL_ERROR },
	{ MQTT_E_SUB_OPTIONS, MQTT_RC_MALFORMED_PACKET },
	{ MQTT_E_RETAIN_HANDLING, MQTT_RC_PROTOCOL_ERROR },
	{ MQTT_E_SHARED_NO_LOCAL, MQTT_RC_PROTOCOL_ERROR },
	{ MQTT_E_TOPIC_NAME, MQTT_RC_TOPIC_NAME_INVALID },
	{ MQTT_E_TOPIC_EMPTY, MQTT_RC_PROTOCOL_ERROR },
	{ MQTT_E_TOPIC_ALIAS, MQTT_RC_TOPIC_ALIAS_INVALID },
	{ MQTT_E_REASON_CODE, MQTT_RC_MALFORMED_PACKET },
};

#define MAPPING_COUNT ((int)(sizeof(mapping) / sizeof(mapping[0])))

/* Every value of enum mqtt_err. */
static const int all_errs[] = {
	MQTT_OK, MQTT_E_INCOMPLETE, MQTT_E_VARINT, MQTT_E_PACKET_TYPE,
	MQTT_E_HEADER_FLAGS, MQTT_E_QOS, MQTT_E_DUP_QOS0, MQTT_E_SHORT,
	MQTT_E_TRAILING, MQTT_E_TOO_LARGE, MQTT_E_UTF8, MQTT_E_PROTOCOL_NAME,
	MQTT_E_PROTOCOL_VERSION, MQTT_E_CONNECT_RESERVED, MQTT_E_WILL_FLAGS,
	MQTT_E_PASSWORD_FLAG, MQTT_E_PACKET_ID, MQTT_E_PROP_ID,
	MQTT_E_PROP_NOT_ALLOWED, MQTT_E_PROP_DUPLICATE, MQTT_E_PROP_VALUE,
	MQTT_E_NO_TOPICS, MQTT_E_SUB_OPTIONS, MQTT_E_RETAIN_HANDLING,
	MQTT_E_SHARED_NO_LOCAL, MQTT_E_TOPIC_NAME, MQTT_E_TOPIC_EMPTY,
	MQTT_E_TOPIC_ALIAS, MQTT_E_REASON_CODE, MQTT_E_NO_SPACE,
	MQTT_E_ENCODE,
};

#define ERR_COUNT ((int)(sizeof(all_errs) / sizeof(all_errs[0])))

/* Every value of enum mqtt_rc. */
static const uint8_t all_rcs[] = {
	0x00, 0x01, 0x02, 0x04, 0x10, 0x11, 0x18, 0x19, 0x80, 0x81, 0x82,
	0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D,
	0x8E, 0x8F, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
	0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2,
};

#define RC_COUNT ((int)(sizeof(all_rcs) / sizeof(all_rcs[0])))

START_TEST(err_reason_mapping)
{
	uint8_t got = mqtt_err_reason(mapping[_i].err);

	ck_assert_msg(got == mapping[_i].reason, "%d (%s): 0x%02x, expected "
		      "0x%02x", mapping[_i].err, mqtt_err_str(mapping[_i].err),
		      got, mapping[_i].reason);
}
END_TEST

/* Every decoder error is a failure the peer caused: 0x80 or above. */
START_TEST(err_reason_is_failure)
{
	ck_assert_uint_ge(mqtt_err_reason(mapping[_i].err), 0x80);
}
END_TEST

START_TEST(err_reason_unknown)
{
	static const int unknown[] = {
		MQTT_E_ENCODE - 1, -100, -1000, INT_MIN + 1, INT_MIN,
	};
	size_t i;

	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		ck_assert_msg(mqtt_err_reason(unknown[i]) ==
			      MQTT_RC_MALFORMED_PACKET, "err %d: 0x%02x",
			      unknown[i], mqtt_err_reason(unknown[i]));
}
END_TEST

START_TEST(err_str_distinct)
{
	const char *s = mqtt_err_str(all_errs[_i]);
	int j;

	ck_assert_ptr_nonnull(s);
	ck_assert_msg(s[0] != '\0', "empty name for %d", all_errs[_i]);
	for (j = 0; j < ERR_COUNT; j++) {
		const char *o = mqtt_err_str(all_errs[j]);

		if (j == _i)
			continue;
		ck_assert_ptr_nonnull(o);
		ck_assert_msg(strcmp(s, o) != 0, "%d and %d share the name "
			      "\"%s\"", all_errs[_i], all_errs[j], s);
	}
}
END_TEST

START_TEST(err_str_unknown)
{
	ck_assert_ptr_nonnull(mqtt_err_str(MQTT_E_ENCODE - 1));
	ck_assert_ptr_nonnull(mqtt_err_str(-1000));
	ck_assert_ptr_nonnull(mqtt_err_str(INT_MIN));
	ck_assert_ptr_nonnull(mqtt_err_str(1));
}
END_TEST

START_TEST(rc_str_distinct)
{
	const char *s = mqtt_rc_str(all_rcs[_i]);
	int j;

	ck_assert_ptr_nonnull(s);
	ck_assert_msg(s[0] != '\0', "empty name for 0x%02x", all_rcs[_i]);
	for (j = 0; j < RC_COUNT; j++) {
		const char *o = mqtt_rc_str(all_rcs[j]);

		if (j == _i)
			continue;
		ck_assert_ptr_nonnull(o);
		ck_assert_msg(strcmp(s, o) != 0, "0x%02x and 0x%02x share the "
			      "name \"%s\"", all_rcs[_i], all_rcs[j], s);
	}
}
END_TEST

/* Any byte may arrive from a peer: every one has a printable name. */
START_TEST(rc_str_every_byte)
{
	const char *s = mqtt_rc_str((uint8_t)_i);

	ck_assert_ptr_nonnull(s);
	ck_assert(s[0] != '\0');
}
END_TEST

/* The names the spec gives (§2.4), for a few that logs show most. */
START_TEST(rc_str_spec_names)
{
	ck_assert_str_eq(mqtt_rc_str(MQTT_RC_MALFORMED_PACKET),
			 "Malformed Packet");
	ck_assert_str_eq(mqtt_rc_str(MQTT_RC_PROTOCOL_ERROR), "Protocol Error");
	ck_assert_str_eq(mqtt_rc_str(MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION),
			 "Unsupported Protocol Version");
	ck_assert_str_eq(mqtt_rc_str(MQTT_RC_PACKET_TOO_LARGE),
			 "Packet too large");
}
END_TEST

static Suite *errors_suite(void)
{
	Suite *s = suite_create("protocol/errors");
	TCase *tc = tcase_create("reason");

	tcase_add_loop_test(tc, err_reason_mapping, 0, MAPPING_COUNT);
	tcase_add_loop_test(tc, err_reason_is_failure, 0, MAPPING_COUNT);
	tcase_add_test(tc, err_reason_unknown);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_loop_test(tc, err_str_distinct, 0, ERR_COUNT);
	tcase_add_test(tc, err_str_unknown);
	tcase_add_loop_test(tc, rc_str_distinct, 0, RC_COUNT);
	tcase_add_loop_test(tc, rc_str_every_byte, 0, 256);
	tcase_add_test(tc, rc_str_spec_names);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(errors_suite());
	int failed;

	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
