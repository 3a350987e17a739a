/*
 * Unit tests for protocol/utf8.c: the MQTT string rules and plain UTF-8
 * well-formedness, one table row per byte pattern.  Every row states both
 * verdicts, so each row also shows where the two validators differ.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/mqtt.h"

struct utf8_row {
	const char *bytes;
	size_t len;
	bool valid; /* mqtt_utf8_is_valid */
	bool well_formed; /* mqtt_utf8_is_well_formed */
	const char *what;
};

/* sizeof keeps embedded NULs that strlen would stop at. */
#define ROW(lit, v, wf, what) { lit, sizeof(lit) - 1, v, wf, what }

static const struct utf8_row rows[] = {
	/* Plain ASCII and the printable boundaries. */
	ROW("", true, true, "empty string"),
	ROW("a", true, true, "one letter"),
	ROW("sport/tennis/player1", true, true, "topic"),
	ROW(" ", true, true, "U+0020 first printable"),
	ROW("~", true, true, "U+007E last printable"),
	ROW("abcdefghijklmnopqrstuvwxyz0123456789", true, true, "long ASCII"),

	/* U+0000 [MQTT-1.5.4-2] and controls: not in strings, well-formed. */
	ROW("\x00", false, true, "U+0000"),
	ROW("a\x00" "b", false, true, "embedded U+0000"),
	ROW("\x01", false, true, "U+0001"),
	ROW("\t", false, true, "U+0009 tab"),
	ROW("\n", false, true, "U+000A newline"),
	ROW("\x1f", false, true, "U+001F"),
	ROW("\x7f", false, true, "U+007F DEL"),
	ROW("\xc2\x80", false, true, "U+0080 first C1 control"),
	ROW("\xc2\x9f", false, true, "U+009F last C1 control"),
	ROW("abc\xc2\x85", false, true, "U+0085 NEL after ASCII"),

	/* Valid multi-byte code points at each length boundary. */
	ROW("\xc2\xa0", true, true, "U+00A0 after the C1 controls"),
	ROW("\xc3\xa9", true, true, "U+00E9 e acute"),
	ROW("\xdf\xbf", true, true, "U+07FF last 2-byte"),
	ROW("\xe0\xa0\x80", true, true, "U+0800 first 3-byte"),
	ROW("\xe2\x82\xac", true, true, "U+20AC euro"),
	ROW("\xed\x9f\xbf", true, true, "U+D7FF below surrogates"),
	ROW("\xee\x80\x80", true, true, "U+E000 above surrogates"),
	ROW("\xef\xbf\xbd", true, true, "U+FFFD replacement character"),
	ROW("\xf0\x90\x80\x80", true, true, "U+10000 first 4-byte"),
	ROW("\xf4\x8f\xbf\xbd", true, true, "U+10FFFD last allowed"),
	ROW("A\xf0\xaa\x9b\x94", true, true, "MQTT 5 example A U+2A6D4"),
	ROW("caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac/\xf0\x9f\x98\x80", true, true,
	    "mixed 1-4 byte topic"),

	/* Overlong encodings. */
	ROW("\xc0\x80", false, false, "overlong U+0000 (2 bytes)"),
	ROW("\xc0\xaf", false, false, "overlong '/' (2 bytes)"),
	ROW("\xc1\xbf", false, false, "overlong U+007F (2 bytes)"),
	ROW("\xe0\x80\x80", false, false, "overlong U+0000 (3 bytes)"),
	ROW("\xe0\x9f\xbf", false, false, "overlong U+07FF (3 bytes)"),
	ROW("\xf0\x80\x80\x80", false, false, "overlong U+0000 (4 bytes)"),
	ROW("\xf0\x8f\xbf\xbf", false, false, "overlong U+FFFF (4 bytes)"),

	/* UTF-16 surrogate halves. */
	ROW("\xed\xa0\x80", false, false, "U+D800 first surrogate"),
	ROW("\xed\xb0\x80", false, false, "U+DC00 low surrogate"),
	ROW("\xed\xbf\xbf", false, false, "U+DFFF last surrogate"),
	ROW("\xed\xa0\xbd\xed\xb8\x80", false, false, "CESU-8 pair"),

	/* Beyond U+10FFFF, 5- and 6-byte forms, bytes never in UTF-8. */
	ROW("\xf4\x90\x80\x80", false, false, "U+110000"),
	ROW("\xf5\x80\x80\x80", false, false, "lead F5"),
	ROW("\xf7\xbf\xbf\xbf", false, false, "lead F7"),
	ROW("\xf8\x88\x80\x80\x80", false, false, "5-byte form"),
	ROW("\xfc\x84\x80\x80\x80\x80", false, false, "6-byte form"),
	ROW("\xfe", false, false, "byte FE"),
	ROW("\xff", false, false, "byte FF"),
	ROW("a\xff" "b", false, false, "FF inside ASCII"),

	/* Truncated sequences and bad continuations. */
	ROW("\xc2", false, false, "2-byte lead at end"),
	ROW("\xe0\xa0", false, false, "3-byte sequence cut after 2"),
	ROW("\xe2", false, false, "3-byte lead at end"),
	ROW("\xf0\x90\x80", false, false, "4-byte sequence cut after 3"),
	ROW("\xf0", false, false, "4-byte lead at end"),
	ROW("abc\xe2\x82", false, false, "euro cut at end of string"),
	ROW("\xe2\x82" "a", false, false, "ASCII where continuation due"),
	ROW("\xc3\xc3\xa9", false, false, "lead where continuation due"),

	/* Stray continuation bytes. */
	ROW("\x80", false, false, "lone 80"),
	ROW("\xbf", false, false, "lone BF"),
	ROW("a\x80" "b", false, false, "80 inside ASCII"),
	ROW("\xc3\xa9\xa9", false, false, "extra continuation"),

	/* Non-characters: well-formed, but not in MQTT strings. */
	ROW("\xef\xb7\x8f", true, true, "U+FDCF before the FDD0 block"),
	ROW("\xef\xb7\x90", false, true, "U+FDD0"),
	ROW("\xef\xb7\xaf", false, true, "U+FDEF"),
	ROW("\xef\xb7\xb0", true, true, "U+FDF0 after the FDD0 block"),
	ROW("\xef\xbf\xbe", false, true, "U+FFFE"),
	ROW("\xef\xbf\xbf", false, true, "U+FFFF"),
	ROW("\xf0\x9f\xbf\xbe", false, true, "U+1FFFE"),
	ROW("\xf0\x9f\xbf\xbf", false, true, "U+1FFFF"),
	ROW("\xf4\x8f\xbf\xbe", false, true, "U+10FFFE"),
	ROW("\xf4\x8f\xbf\xbf", false, true, "U+10FFFF"),

	/* Around the 8-byte ASCII fast path. */
	ROW("aaaaaaaaaaaaaaaa\x7f", false, true, "DEL after two words"),
	ROW("aaaaaaaa\x00" "aaaaaaa", false, true, "NUL as first of word 2"),
	ROW("aaaaaaa\xc3\xa9" "aaaaaaaa", true, true, "2-byte across words"),
	ROW("aaaaaaaa\xed\xa0\x80" "aaaaa", false, false,
	    "surrogate in word 2"),
	ROW("aaaaaaaaaaaaaaa\xe2\x82", false, false, "truncated after words"),
};

#define NROWS ((int)(sizeof(rows) / sizeof(rows[0])))

START_TEST(test_utf8_row)
{
	const struct utf8_row *r = &rows[_i];
	const uint8_t *s = (const uint8_t *)r->bytes;

	ck_assert_msg(mqtt_utf8_is_valid(s, r->len) == r->valid,
		      "row %d (%s): is_valid should be %d", _i, r->what,
		      r->valid);
	ck_assert_msg(mqtt_utf8_is_well_formed(s, r->len) == r->well_formed,
		      "row %d (%s): is_well_formed should be %d", _i, r->what,
		      r->well_formed);
}
END_TEST

/*
 * The fast path loads words with memcpy; the verdict must not depend on
 * where the string sits relative to an 8-byte boundary.
 */
START_TEST(test_utf8_row_unaligned)
{
	const struct utf8_row *r = &rows[_i];
	uint8_t buf[64 + 8];

	ck_assert_uint_le(r->len, 64);
	for (size_t off = 1; off < 8; off++) {
		memcpy(buf + off, r->bytes, r->len);
		ck_assert_msg(mqtt_utf8_is_valid(buf + off, r->len) == r->valid,
			      "row %d (%s) at offset %zu", _i, r->what, off);
		ck_assert_msg(mqtt_utf8_is_well_formed(buf + off, r->len) ==
				      r->well_formed,
			      "row %d (%s) at offset %zu", _i, r->what, off);
	}
}
END_TEST

/*
 * One bad byte in each position of a 24-byte ASCII run, so every lane of
 * every word the fast path loads is exercised.
 */
struct lane_row {
	uint8_t byte;
	bool valid;
	bool well_formed;
};

static const struct lane_row lane_rows[] = {
	{ 0x00, false, true },
	{ 0x01, false, true },
	{ 0x1f, false, true },
	{ 0x7f, false, true },
	{ 0x80, false, false },
	{ 0xff, false, false },
	{ 0x20, true, true },
	{ 0x7e, true, true },
};

#define LANE_RUN 24

START_TEST(test_utf8_lane)
{
	const struct lane_row *r = &lane_rows[_i];
	uint8_t buf[LANE_RUN];

	for (size_t pos = 0; pos < LANE_RUN; pos++) {
		memset(buf, 'a', sizeof(buf));
		buf[pos] = r->byte;
		ck_assert_msg(mqtt_utf8_is_valid(buf, sizeof(buf)) == r->valid,
			      "byte %02x at %zu", r->byte, pos);
		ck_assert_msg(mqtt_utf8_is_well_formed(buf, sizeof(buf)) ==
				      r->well_formed,
			      "byte %02x at %zu", r->byte, pos);
	}
}
END_TEST

/* Every code point once: the verdicts must follow from its value alone. */
START_TEST(test_utf8_all_code_points)
{
	for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
		uint8_t b[4];
		size_t n;
		bool wf = cp < 0xD800 || cp > 0xDFFF;
		bool valid = wf && cp >= 0x20 && !(cp >= 0x7F && cp <= 0x9F) &&
			     !(cp >= 0xFDD0 && cp <= 0xFDEF) &&
			     (cp & 0xFFFE) != 0xFFFE;

		if (cp < 0x80) {
			b[0] = (uint8_t)cp;
			n = 1;
		} else if (cp < 0x800) {
			b[0] = (uint8_t)(0xC0 | cp >> 6);
			b[1] = (uint8_t)(0x80 | (cp & 0x3F));
			n = 2;
		} else if (cp < 0x10000) {
			b[0] = (uint8_t)(0xE0 | cp >> 12);
			b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
			b[2] = (uint8_t)(0x80 | (cp & 0x3F));
			n = 3;
		} else {
			b[0] = (uint8_t)(0xF0 | cp >> 18);
			b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
			b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
			b[3] = (uint8_t)(0x80 | (cp & 0x3F));
			n = 4;
		}
		if (mqtt_utf8_is_well_formed(b, n) != wf)
			ck_abort_msg("U+%04X: is_well_formed should be %d", cp,
				     wf);
		if (mqtt_utf8_is_valid(b, n) != valid)
			ck_abort_msg("U+%04X: is_valid should be %d", cp,
				     valid);
	}
}
END_TEST

static Suite *utf8_suite(void)
{
	Suite *s = suite_create("utf8");
	TCase *tc = tcase_create("table");

	tcase_add_loop_test(tc, test_utf8_row, 0, NROWS);
	tcase_add_loop_test(tc, test_utf8_row_unaligned, 0, NROWS);
	tcase_add_loop_test(tc, test_utf8_lane, 0,
			    (int)(sizeof(lane_rows) / sizeof(lane_rows[0])));
	tcase_add_test(tc, test_utf8_all_code_points);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(utf8_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
