/*
 * libFuzzer target for protocol/topic.c.  The input is split at its first
 * 0xFF byte (or, without one, in the middle) into a filter and a name; every
 * topic function runs on both, and the results are checked against each
 * other and against reference versions written here level by level, which
 * share no code with the single-pass versions under test.  Any broken
 * invariant aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/topic.h"

#define CHECK(cond)                  \
	do {                         \
		if (!(cond))         \
			abort();     \
	} while (0)

/* Walks a topic one level at a time: "a//b" yields "a", "", "b". */
struct level_iter {
	const char *s;
	size_t len;
	size_t pos;
	bool done;
};

static bool level_next(struct level_iter *it, const char **lvl, size_t *n)
{
	const char *slash;

	if (it->done)
		return false;
	*lvl = it->s + it->pos;
	slash = memchr(*lvl, '/', it->len - it->pos);
	if (slash) {
		*n = (size_t)(slash - *lvl);
		it->pos += *n + 1;
	} else {
		*n = it->len - it->pos;
		it->done = true;
	}
	return true;
}

static bool level_is(const char *lvl, size_t n, const char *what)
{
	return n == strlen(what) && memcmp(lvl, what, n) == 0;
}

static size_t count_byte(const char *s, size_t len, char c)
{
	size_t k = 0;

	for (size_t i = 0; i < len; i++)
		k += s[i] == c;
	return k;
}

static bool ref_name_is_valid(const char *s, size_t len)
{
	return len >= 1 && len <= TOPIC_MAX_LEN && !memchr(s, '\0', len) &&
	       !memchr(s, '+', len) && !memchr(s, '#', len);
}

/* Filter syntax, without the shared subscription rule. */
static bool ref_filter_syntax(const char *s, size_t len)
{
	struct level_iter it = { s, len, 0, false };
	const char *lvl;
	size_t n;

	if (len < 1 || len > TOPIC_MAX_LEN || memchr(s, '\0', len))
		return false;
	while (level_next(&it, &lvl, &n)) {
		if (level_is(lvl, n, "+"))
			continue;
		if (level_is(lvl, n, "#") && it.done)
			continue;
		if (memchr(lvl, '+', n) || memchr(lvl, '#', n))
			return false;
	}
	return true;
}

static bool ref_match(const char *f, size_t flen, const char *name,
		      size_t nlen)
{
	struct level_iter fi = { f, flen, 0, false };
	struct level_iter ni = { name, nlen, 0, false };
	const char *fl, *nl;
	size_t fn, nn;
	bool first = true;

	while (level_next(&fi, &fl, &fn)) {
		bool wild = level_is(fl, fn, "+") || level_is(fl, fn, "#");

		if (first && wild && name[0] == '$')
			return false;
		first = false;
		if (level_is(fl, fn, "#"))
			return true;
		if (!level_next(&ni, &nl, &nn))
			return false;
		if (level_is(fl, fn, "+"))
			continue;
		if (fn != nn || memcmp(fl, nl, fn) != 0)
			return false;
	}
	return !level_next(&ni, &nl, &nn);
}

static bool starts_with_share(const char *s, size_t len)
{
	return len >= 7 && memcmp(s, "$share/", 7) == 0;
}

static void check_share(const char *f, size_t flen)
{
	const char *group = f, *sub = f;
	size_t glen = 1, slen = 1;
	int rc = topic_share_parse(f, flen, &group, &glen, &sub, &slen);
	bool valid = topic_filter_is_valid(f, flen);

	CHECK(rc >= -1 && rc <= 1);
	CHECK(rc == 0 || starts_with_share(f, flen));
	CHECK(rc != 0 || !starts_with_share(f, flen));
	if (rc != 1) {
		CHECK(!group && glen == 0 && !sub && slen == 0);
		CHECK(rc == -1 ? !valid : valid == ref_filter_syntax(f, flen));
		return;
	}
	CHECK(valid);
	/* Both parts are views inside the input, in order, covering it. */
	CHECK(group == f + 7 && glen >= 1);
	CHECK(sub == group + glen + 1 && slen >= 1);
	CHECK(sub + slen == f + flen);
	CHECK(group[glen] == '/');
	CHECK(!memchr(group, '/', glen) && !memchr(group, '+', glen) &&
	      !memchr(group, '#', glen) && !memchr(group, '\0', glen));
	CHECK(ref_filter_syntax(sub, slen));
	/* "$share/h" alone is no filter; otherwise the part stands alone. */
	if (!starts_with_share(sub, slen))
		CHECK(topic_filter_is_valid(sub, slen));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *cut = memchr(data, 0xFF, size);
	const char *f = (const char *)data;
	size_t flen = cut ? (size_t)(cut - data) : size / 2;
	const char *name = f + flen + (cut ? 1 : 0);
	size_t nlen = size - flen - (cut ? 1 : 0);
	const char *match_f = f, *group;
	size_t match_flen = flen, glen;
	bool name_ok = topic_name_is_valid(name, nlen);
	bool filter_ok = topic_filter_is_valid(f, flen);
	bool m = topic_match(f, flen, name, nlen);

	CHECK(name_ok == ref_name_is_valid(name, nlen));
	CHECK(topic_level_count(f, flen) == 1 + count_byte(f, flen, '/'));
	CHECK(topic_level_count(name, nlen) == 1 + count_byte(name, nlen, '/'));
	check_share(f, flen);
	check_share(name, nlen);

	/* Invalid inputs must be safe; the answer is then unspecified. */
	(void)topic_match(name, nlen, f, flen);

	if (name_ok) {
		bool name_as_filter = topic_filter_is_valid(name, nlen);

		/*
		 * A name is a filter without wildcards, unless it starts with
		 * "$share/": then it must also be a complete share, which
		 * "$share/g" as a name is not.
		 */
		if (!starts_with_share(name, nlen)) {
			CHECK(name_as_filter);
			CHECK(topic_match(name, nlen, name, nlen));
		}
		CHECK(topic_match("#", 1, name, nlen) == (name[0] != '$'));
		CHECK(topic_match("+", 1, name, nlen) ==
		      (name[0] != '$' && !memchr(name, '/', nlen)));
	}

	if (filter_ok) {
		if (topic_share_parse(f, flen, &group, &glen, &match_f,
				      &match_flen) == 0) {
			match_f = f;
			match_flen = flen;
		}
		if (!memchr(match_f, '+', match_flen) &&
		    !memchr(match_f, '#', match_flen)) {
			CHECK(topic_name_is_valid(match_f, match_flen));
			CHECK(topic_match(match_f, match_flen, match_f,
					  match_flen));
		}
		if (name_ok)
			CHECK(topic_match(match_f, match_flen, name, nlen) ==
			      ref_match(match_f, match_flen, name, nlen));
		if (name_ok && match_f == f)
			CHECK(m == ref_match(f, flen, name, nlen));
	}
	return 0;
}
