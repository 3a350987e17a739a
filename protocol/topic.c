/*
 * Topic names and filters: syntax checks, "$share/{group}/{filter}"
 * splitting [MQTT-4.8.2] and filter/name matching [MQTT-4.7].
 *
 * Everything here is a single forward pass over (pointer, length) with no
 * allocation: the broker calls topic_match() for retained messages and the
 * syntax checks on every PUBLISH and SUBSCRIBE, and a peer chooses the input.
 */
#include <string.h>

#include "topic.h"

#define SHARE_PREFIX "$share/"
#define SHARE_PREFIX_LEN (sizeof(SHARE_PREFIX) - 1)

bool topic_name_is_valid(const char *name, size_t len)
{
	if (len == 0 || len > TOPIC_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (c == '\0' || c == '+' || c == '#')
			return false;
	}
	return true;
}

/*
 * Filter syntax without the shared subscription rule, for ordinary filters
 * and for the filter part of a share (which is not itself re-parsed as a
 * share: "$share/g/$share/h/x" subscribes group g to the literal filter
 * "$share/h/x").
 */
static bool filter_syntax_is_valid(const char *f, size_t len)
{
	if (len == 0 || len > TOPIC_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = f[i];
		bool level_start = i == 0 || f[i - 1] == '/';

		if (c == '\0')
			return false;
		if (c == '+') {
			/* A whole level: "a/+/b", "+", never "a+" or "+a". */
			if (!level_start || (i + 1 < len && f[i + 1] != '/'))
				return false;
		} else if (c == '#') {
			/* The whole last level [MQTT-4.7.1-1]. */
			if (!level_start || i + 1 != len)
				return false;
		}
	}
	return true;
}

int topic_share_parse(const char *filter, size_t len, const char **group,
		      size_t *group_len, const char **sub_filter,
		      size_t *sub_filter_len)
{
	const char *g, *slash, *sub;
	size_t glen, sublen;

	/* Cleared first so callers never read stale views on 0 or -1. */
	if (group)
		*group = NULL;
	if (group_len)
		*group_len = 0;
	if (sub_filter)
		*sub_filter = NULL;
	if (sub_filter_len)
		*sub_filter_len = 0;

	if (len < SHARE_PREFIX_LEN ||
	    memcmp(filter, SHARE_PREFIX, SHARE_PREFIX_LEN) != 0)
		return 0;
	/* The whole string is one MQTT string, so it has the same limit. */
	if (len > TOPIC_MAX_LEN)
		return -1;

	g = filter + SHARE_PREFIX_LEN;
	slash = memchr(g, '/', len - SHARE_PREFIX_LEN);
	if (!slash)
		return -1; /* "$share/g": no filter part */
	glen = (size_t)(slash - g);
	if (glen == 0)
		return -1; /* "$share//f" [MQTT-4.8.2-1] */
	/* ShareName may not hold '+' or '#' [MQTT-4.8.2-2]; '/' ends it. */
	for (size_t i = 0; i < glen; i++)
		if (g[i] == '+' || g[i] == '#' || g[i] == '\0')
			return -1;

	sub = slash + 1;
	sublen = len - SHARE_PREFIX_LEN - glen - 1;
	if (!filter_syntax_is_valid(sub, sublen))
		return -1; /* empty ("$share/g/") or malformed filter part */

	if (group)
		*group = g;
	if (group_len)
		*group_len = glen;
	if (sub_filter)
		*sub_filter = sub;
	if (sub_filter_len)
		*sub_filter_len = sublen;
	return 1;
}

bool topic_filter_is_valid(const char *filter, size_t len)
{
	int rc = topic_share_parse(filter, len, NULL, NULL, NULL, NULL);

	if (rc != 0)
		return rc == 1;
	return filter_syntax_is_valid(filter, len);
}

/*
 * Walk filter and name level by level, each byte once.  At the top of the
 * loop f and n are at the start of a level in each string (possibly at the
 * end, for an empty last level such as in "a/").  Invalid input gives an
 * unspecified answer but never reads out of bounds.
 */
bool topic_match(const char *filter, size_t filter_len, const char *name,
		 size_t name_len)
{
	size_t f = 0, n = 0;

	if (filter_len == 0 || name_len == 0)
		return false;
	/* "$SYS/x" is not matched by "#" or "+/x" [MQTT-4.7.2-1]. */
	if (name[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false;

	for (;;) {
		bool at_end = f == filter_len;

		if (!at_end && filter[f] == '#' && f + 1 == filter_len)
			return true; /* the rest of the name, empty or not */
		if (!at_end && filter[f] == '+' &&
		    (f + 1 == filter_len || filter[f + 1] == '/')) {
			/* Any one level, including an empty one. */
			while (n < name_len && name[n] != '/')
				n++;
			f++;
		} else {
			while (f < filter_len && filter[f] != '/') {
				if (n == name_len || name[n] != filter[f])
					return false;
				f++;
				n++;
			}
			if (n < name_len && name[n] != '/')
				return false; /* name level is longer */
		}

		/* Both at the end of a level: end of string or a '/'. */
		if (f == filter_len)
			return n == name_len;
		if (n == name_len) {
			/* "sport/#" matches "sport": '#' covers the parent. */
			return filter_len - f == 2 && filter[f + 1] == '#';
		}
		f++;
		n++;
	}
}

size_t topic_level_count(const char *topic, size_t len)
{
	size_t count = 1;
	const char *p, *end;

	if (len == 0)
		return 1; /* one empty level; also spares NULL + 0 */
	p = topic;
	end = topic + len;
	while (p < end) {
		const char *slash = memchr(p, '/', (size_t)(end - p));

		if (!slash)
			break;
		count++;
		p = slash + 1;
	}
	return count;
}
