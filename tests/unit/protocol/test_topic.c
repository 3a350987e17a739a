/*
 * Unit tests for protocol/topic.c: topic name and filter syntax, shared
 * subscription splitting, matching (the examples of MQTT 5 section 4.7
 * and 3.1.1 section 4.7) and level counting.  Table-driven: one Check
 * iteration per row.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/topic.h"

/*
 * A syntax row.  When fill is set the input is prefix followed by fill
 * bytes up to len, for the boundary lengths no literal can spell.
 */
struct syntax_row {
	const char *bytes;
	size_t len;
	bool expected;
	char fill;
};

#define ROW(lit, expected) { lit, sizeof(lit) - 1, expected, 0 }
#define FILL(prefix, len, fill, expected) { prefix, len, expected, fill }

/* Room for the longest generated input (TOPIC_MAX_LEN + 1). */
static char big[TOPIC_MAX_LEN + 2];

static const char *row_input(const struct syntax_row *r)
{
	size_t plen;

	if (!r->fill)
		return r->bytes;
	plen = strlen(r->bytes);
	ck_assert_uint_le(r->len, sizeof(big));
	ck_assert_uint_le(plen, r->len);
	memcpy(big, r->bytes, plen);
	memset(big + plen, r->fill, r->len - plen);
	return big;
}

static const struct syntax_row name_rows[] = {
	ROW("", false),
	ROW("a", true),
	ROW("/", true),
	ROW("//", true),
	ROW("/finance", true),
	ROW("a//b", true),
	ROW("sport/tennis/player1", true),
	ROW("sport/tennis/player1/ranking", true),
	ROW("$SYS/broker/uptime", true),
	ROW(" ", true),
	ROW("Accounts payable", true),
	ROW("+", false),
	ROW("#", false),
	ROW("sport+", false),
	ROW("sport/+", false),
	ROW("sport/#", false),
	ROW("sport/tennis#", false),
	ROW("a/+/b", false),
	ROW("\0", false),
	ROW("a\0b", false),
	ROW("a/b\0", false),
	/* A name that looks like a share is still just a name. */
	ROW("$share/g/x", true),
	FILL("", 1, 'a', true),
	FILL("", TOPIC_MAX_LEN, 'a', true),
	FILL("", TOPIC_MAX_LEN + 1, 'a', false),
	FILL("", TOPIC_MAX_LEN, '/', true),
	FILL("#", TOPIC_MAX_LEN, 'a', false),
};

static const struct syntax_row filter_rows[] = {
	ROW("", false),
	ROW("a", true),
	ROW("/", true),
	ROW("//", true),
	ROW("#", true),
	ROW("+", true),
	ROW("+/+", true),
	ROW("/+", true),
	ROW("+/", true),
	ROW("+/#", true),
	ROW("/#", true),
	ROW("sport/tennis/player1/#", true),
	ROW("sport/tennis/#", true),
	ROW("sport/#", true),
	ROW("sport/+", true),
	ROW("sport/+/player1", true),
	ROW("+/tennis/#", true),
	ROW("$SYS/#", true),
	ROW("sport+", false),
	ROW("sport/tennis#", false),
	ROW("sport/tennis/#/ranking", false),
	ROW("#/", false),
	ROW("#/a", false),
	ROW("##", false),
	ROW("++", false),
	ROW("+a", false),
	ROW("a+", false),
	ROW("a+/b", false),
	ROW("a/#b", false),
	ROW("a/b#", false),
	ROW("\0", false),
	ROW("a\0b", false),
	ROW("a/\0/#", false),
	/* Shared subscriptions must be valid shares as a whole. */
	ROW("$share/g/x", true),
	ROW("$share/g/#", true),
	ROW("$share/g/+/x", true),
	ROW("$share/g", false),
	ROW("$share/", false),
	ROW("$share//f", false),
	ROW("$share/g/", false),
	ROW("$share/+/f", false),
	ROW("$share/g#/f", false),
	ROW("$share/g/a#", false),
	/* Not shares at all: ordinary filters. */
	ROW("$share", true),
	ROW("$sharex/g/f", true),
	ROW("$SHARE/g", true),
	FILL("", 1, 'a', true),
	FILL("", TOPIC_MAX_LEN, 'a', true),
	FILL("", TOPIC_MAX_LEN + 1, 'a', false),
	FILL("", TOPIC_MAX_LEN, '/', true),
	FILL("$share/g/", TOPIC_MAX_LEN, 'a', true),
	FILL("$share/g/", TOPIC_MAX_LEN + 1, 'a', false),
};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

START_TEST(test_name_valid)
{
	const struct syntax_row *r = &name_rows[_i];
	const char *s = row_input(r);

	ck_assert_msg(topic_name_is_valid(s, r->len) == r->expected,
		      "name row %d (\"%.40s\", len %zu) should be %d", _i,
		      r->bytes, r->len, r->expected);
}
END_TEST

START_TEST(test_filter_valid)
{
	const struct syntax_row *r = &filter_rows[_i];
	const char *s = row_input(r);

	ck_assert_msg(topic_filter_is_valid(s, r->len) == r->expected,
		      "filter row %d (\"%.40s\", len %zu) should be %d", _i,
		      r->bytes, r->len, r->expected);
}
END_TEST

struct share_row {
	const char *bytes;
	size_t len;
	int rc;
	const char *group; /* expected when rc == 1 */
	const char *sub; /* expected when rc == 1 */
};

#define SHARE(lit, rc, group, sub) { lit, sizeof(lit) - 1, rc, group, sub }

static const struct share_row share_rows[] = {
	SHARE("$share/g/x", 1, "g", "x"),
	SHARE("$share/group1/sport/tennis/#", 1, "group1", "sport/tennis/#"),
	SHARE("$share/consumer1/sport/+/player1", 1, "consumer1",
	      "sport/+/player1"),
	SHARE("$share/g/#", 1, "g", "#"),
	SHARE("$share/g/+", 1, "g", "+"),
	SHARE("$share/g//", 1, "g", "/"),
	SHARE("$share/g/$SYS/#", 1, "g", "$SYS/#"),
	SHARE("$share/$g/x", 1, "$g", "x"),
	/* The filter part is an ordinary filter, not parsed again. */
	SHARE("$share/g/$share/h/x", 1, "g", "$share/h/x"),
	SHARE("$share/g", -1, NULL, NULL),
	SHARE("$share/", -1, NULL, NULL),
	SHARE("$share//f", -1, NULL, NULL),
	SHARE("$share//", -1, NULL, NULL),
	SHARE("$share/g/", -1, NULL, NULL),
	SHARE("$share/+/f", -1, NULL, NULL),
	SHARE("$share/#/f", -1, NULL, NULL),
	SHARE("$share/a+b/f", -1, NULL, NULL),
	SHARE("$share/g/a#", -1, NULL, NULL),
	SHARE("$share/g/sport+", -1, NULL, NULL),
	SHARE("$share/g/#/a", -1, NULL, NULL),
	SHARE("$share/g\0h/f", -1, NULL, NULL),
	SHARE("$share/g/a\0", -1, NULL, NULL),
	SHARE("$sharex/g/f", 0, NULL, NULL),
	SHARE("$share", 0, NULL, NULL),
	SHARE("$shar", 0, NULL, NULL),
	SHARE("$SHARE/g/f", 0, NULL, NULL),
	SHARE("share/g/f", 0, NULL, NULL),
	SHARE("a/$share/g/f", 0, NULL, NULL),
	SHARE("#", 0, NULL, NULL),
	SHARE("", 0, NULL, NULL),
};

START_TEST(test_share_parse)
{
	const struct share_row *r = &share_rows[_i];
	const char *group = r->bytes, *sub = r->bytes;
	size_t group_len = 99, sub_len = 99;
	int rc = topic_share_parse(r->bytes, r->len, &group, &group_len, &sub,
				   &sub_len);

	ck_assert_msg(rc == r->rc, "share row %d (\"%s\"): rc %d, want %d", _i,
		      r->bytes, rc, r->rc);
	if (r->rc != 1) {
		ck_assert_ptr_null(group);
		ck_assert_ptr_null(sub);
		ck_assert_uint_eq(group_len, 0);
		ck_assert_uint_eq(sub_len, 0);
		return;
	}
	/* Views into the input, not copies: group after "$share/", sub after
	 * the group's '/', running to the end. */
	ck_assert_ptr_eq(group, r->bytes + 7);
	ck_assert_ptr_eq(sub, group + group_len + 1);
	ck_assert_ptr_eq(sub + sub_len, r->bytes + r->len);
	ck_assert_uint_eq(group_len, strlen(r->group));
	ck_assert_uint_eq(sub_len, strlen(r->sub));
	ck_assert(memcmp(group, r->group, group_len) == 0);
	ck_assert(memcmp(sub, r->sub, sub_len) == 0);
}
END_TEST

/* NULL outputs are allowed when the caller wants only the verdict. */
START_TEST(test_share_parse_null_outputs)
{
	ck_assert_int_eq(topic_share_parse("$share/g/x", 10, NULL, NULL, NULL,
					   NULL),
			 1);
	ck_assert_int_eq(topic_share_parse("$share/g", 8, NULL, NULL, NULL,
					   NULL),
			 -1);
}
END_TEST

struct match_row {
	const char *filter;
	const char *name;
	bool expected;
};

static const struct match_row match_rows[] = {
	/* MQTT 5 section 4.7.1.2, multi-level wildcard. */
	{ "sport/tennis/player1/#", "sport/tennis/player1", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/ranking", true },
	{ "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon",
	  true },
	{ "sport/tennis/player1/#", "sport/tennis/player10", false },
	{ "sport/tennis/player1/#", "sport/tennis", false },
	{ "sport/#", "sport", true },
	{ "sport/#", "sport/", true },
	{ "sport/#", "sports", false },
	{ "#", "sport", true },
	{ "#", "/", true },
	{ "#", "a/b/c", true },
	/* 4.7.1.3, single-level wildcard. */
	{ "sport/tennis/+", "sport/tennis/player1", true },
	{ "sport/tennis/+", "sport/tennis/player2", true },
	{ "sport/tennis/+", "sport/tennis/player1/ranking", false },
	{ "sport/+", "sport", false },
	{ "sport/+", "sport/", true },
	{ "sport/+/player1", "sport/tennis/player1", true },
	{ "sport/+/player1", "sport/player1", false },
	{ "+/+", "/finance", true },
	{ "/+", "/finance", true },
	{ "+", "/finance", false },
	{ "+", "finance", true },
	{ "+/+", "/", true },
	{ "+", "/", false },
	{ "+/tennis/#", "sport/tennis/player1/ranking", true },
	{ "+/tennis/#", "sport/tennis", true },
	{ "+/#", "a", true },
	{ "a/+/#", "a/b", true },
	{ "a/+/#", "a", false },
	{ "a/+/b", "a//b", true },
	/* 4.7.2, topics beginning with $ [MQTT-4.7.2-1]. */
	{ "#", "$SYS/monitor/Clients", false },
	{ "#", "$SYS", false },
	{ "#", "$", false },
	{ "+/monitor/Clients", "$SYS/monitor/Clients", false },
	{ "+", "$SYS", false },
	{ "$SYS/#", "$SYS/monitor/Clients", true },
	{ "$SYS/#", "$SYS/x", true },
	{ "$SYS/#", "$SYS", true },
	{ "$SYS/monitor/+", "$SYS/monitor/Clients", true },
	{ "$SYS/+/Clients", "$SYS/monitor/Clients", true },
	{ "a/#", "a/$b", true },
	{ "#", "a$", true },
	/* Literal levels: exact and case-sensitive. */
	{ "a/b", "a/b", true },
	{ "a/b", "a/bc", false },
	{ "a/bc", "a/b", false },
	{ "a/b", "a", false },
	{ "a", "a/b", false },
	{ "a/b", "a/b/", false },
	{ "a/b/", "a/b/", true },
	{ "a//b", "a//b", true },
	{ "/", "/", true },
	{ "Sport", "sport", false },
	{ "ACCOUNTS", "Accounts", false },
	/* Empty strings never match. */
	{ "#", "", false },
	{ "", "a", false },
};

START_TEST(test_match)
{
	const struct match_row *r = &match_rows[_i];

	ck_assert_msg(topic_match(r->filter, strlen(r->filter), r->name,
				  strlen(r->name)) == r->expected,
		      "match row %d: \"%s\" vs \"%s\" should be %d", _i,
		      r->filter, r->name, r->expected);
}
END_TEST

/* The filter part of a share matches like any filter. */
START_TEST(test_match_share_part)
{
	const char *f = "$share/g/sport/+";
	const char *group, *sub;
	size_t group_len, sub_len;

	ck_assert_int_eq(topic_share_parse(f, strlen(f), &group, &group_len,
					   &sub, &sub_len),
			 1);
	ck_assert(topic_match(sub, sub_len, "sport/tennis", 12));
	ck_assert(!topic_match(sub, sub_len, "sport", 5));
}
END_TEST

/* Long inputs: the 65535-byte limit, and no quadratic blow-up. */
START_TEST(test_match_long)
{
	static char name[TOPIC_MAX_LEN];
	static char filter[TOPIC_MAX_LEN];

	memset(name, '/', sizeof(name));
	memset(filter, '/', sizeof(filter));
	ck_assert(topic_match(filter, sizeof(filter), name, sizeof(name)));
	ck_assert(!topic_match(filter, sizeof(filter) - 1, name,
			       sizeof(name)));
	/* "+/+/.../+" (32768 levels) against 32768 empty levels. */
	for (size_t i = 0; i < sizeof(filter); i += 2)
		filter[i] = '+';
	ck_assert(topic_match(filter, sizeof(filter), name, 32767));
	ck_assert(!topic_match(filter, sizeof(filter), name, 32768));
	/* "+/.../+/#" takes the remaining levels. */
	filter[sizeof(filter) - 1] = '#';
	ck_assert(topic_match(filter, sizeof(filter), name, sizeof(name)));
}
END_TEST

struct level_row {
	const char *bytes;
	size_t len;
	size_t expected;
	char fill;
};

#define LEVELS(lit, n) { lit, sizeof(lit) - 1, n, 0 }

static const struct level_row level_rows[] = {
	LEVELS("", 1),
	LEVELS("a", 1),
	LEVELS("/", 2),
	LEVELS("a/b", 2),
	LEVELS("a/b/c", 3),
	LEVELS("//", 3),
	LEVELS("/a/", 3),
	LEVELS("/finance", 2),
	LEVELS("sport/tennis/player1/#", 4),
	LEVELS("$share/g/a/b", 4),
	LEVELS("a\0/b", 2),
	{ "", TOPIC_MAX_LEN, TOPIC_MAX_LEN + 1, '/' },
	{ "", TOPIC_MAX_LEN, 1, 'x' },
};

START_TEST(test_level_count)
{
	const struct level_row *r = &level_rows[_i];
	const char *s = r->bytes;

	if (r->fill) {
		memset(big, r->fill, r->len);
		s = big;
	}
	ck_assert_msg(topic_level_count(s, r->len) == r->expected,
		      "level row %d: want %zu", _i, r->expected);
}
END_TEST

static Suite *topic_suite(void)
{
	Suite *s = suite_create("topic");
	TCase *tc = tcase_create("table");

	tcase_add_loop_test(tc, test_name_valid, 0, NELEM(name_rows));
	tcase_add_loop_test(tc, test_filter_valid, 0, NELEM(filter_rows));
	tcase_add_loop_test(tc, test_share_parse, 0, NELEM(share_rows));
	tcase_add_test(tc, test_share_parse_null_outputs);
	tcase_add_loop_test(tc, test_match, 0, NELEM(match_rows));
	tcase_add_test(tc, test_match_share_part);
	tcase_add_test(tc, test_match_long);
	tcase_add_loop_test(tc, test_level_count, 0, NELEM(level_rows));
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(topic_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
