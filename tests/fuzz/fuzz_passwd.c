/*
 * libFuzzer target for the password file parser (conf/passwd.c): the input
 * is the whole content of a password file, given to passwd_parse() as the
 * broker's passwd_load() gives it a file it read.
 *
 * A file that parses must give exactly one entry per line that is neither
 * blank nor a '#' comment, each with a non-empty user name free of ':',
 * newline and NUL that is the start of its line, sizes that fit its kind,
 * entries sorted with no name twice and each found by passwd_find().  A
 * file that does not must leave *pw empty and say "NAME:LINE: message" with
 * LINE a line of the input that is neither blank nor a comment.  Parsing
 * again, with a short error buffer or with none, gives the same result.
 * Separately, passwd_base64_decode() must decode the input only when it is
 * canonical base64, checked against an encoder written here.  Any broken
 * invariant aborts.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/passwd.h"

#define CHECK(cond)                                                     \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__,  \
				__LINE__, #cond);                       \
			abort();                                        \
		}                                                       \
	} while (0)

#define NAME "fuzz"

/* Lines as the parser counts them: a last line needs no '\n'. */
static unsigned count_lines(const char *s, size_t len)
{
	unsigned n = 0;

	for (size_t i = 0; i < len; i++)
		if (s[i] == '\n')
			n++;
	if (len && s[len - 1] != '\n')
		n++;
	return n;
}

/* Line number (1-based) of s[0..len): its start and length without '\n'. */
static bool nth_line(const char *s, size_t len, unsigned nr,
		     const char **line, size_t *line_len)
{
	const char *p = s, *end = s + len;

	for (unsigned i = 1; p < end; i++) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);

		if (i == nr) {
			*line = p;
			*line_len = l;
			return true;
		}
		p = eol ? eol + 1 : end;
	}
	return false;
}

/* Neither blank (spaces, tabs, CRs) nor a comment: an entry's line. */
static bool is_content(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return s[0] != '#';
	return false;
}

static unsigned count_content(const char *s, size_t len)
{
	unsigned n = 0, lines = count_lines(s, len);

	for (unsigned i = 1; i <= lines; i++) {
		const char *l;
		size_t ll;

		CHECK(nth_line(s, len, i, &l, &ll));
		n += is_content(l, ll);
	}
	return n;
}

/* "NAME:LINE: message" with LINE an entry's line of the input. */
static void check_err(const char *err, const char *s, size_t len)
{
	const char *p = err + strlen(NAME ":"), *l;
	unsigned long nr = 0;
	size_t ll;

	CHECK(strncmp(err, NAME ":", strlen(NAME ":")) == 0);
	CHECK(*p >= '1' && *p <= '9');
	while (*p >= '0' && *p <= '9') {
		nr = nr * 10 + (unsigned long)(*p - '0');
		CHECK(nr <= count_lines(s, len));
		p++;
	}
	CHECK(p[0] == ':' && p[1] == ' ' && p[2] != '\0');
	CHECK(nth_line(s, len, (unsigned)nr, &l, &ll));
	CHECK(is_content(l, ll));
}

static void check_entry(const struct passwd *pw, size_t i, const char *s,
			size_t len)
{
	const struct passwd_entry *e = &pw->entries[i];
	const char *l;
	size_t ll;

	CHECK(e->user && e->user_len > 0);
	CHECK(strlen(e->user) == e->user_len);
	CHECK(!memchr(e->user, ':', e->user_len));
	CHECK(!memchr(e->user, '\n', e->user_len));
	/* The line it came from starts with "user:". */
	CHECK(e->line >= 1 && e->line <= count_lines(s, len));
	CHECK(nth_line(s, len, e->line, &l, &ll));
	CHECK(ll > e->user_len && memcmp(l, e->user, e->user_len) == 0 &&
	      l[e->user_len] == ':');
	CHECK(e->salt_len >= 1 && e->salt_len <= PASSWD_SALT_MAX);
	switch (e->kind) {
	case PASSWD_PBKDF2_SHA512:
		CHECK(e->iterations >= 1 && e->iterations <= PASSWD_ITER_MAX);
		CHECK(e->hash_len == 64);
		break;
	case PASSWD_SHA512:
		CHECK(e->iterations == 0);
		CHECK(e->hash_len == 64);
		break;
	case PASSWD_SCRAM_SHA256:
		CHECK(e->iterations >= 1 && e->iterations <= PASSWD_ITER_MAX);
		CHECK(e->hash_len == PASSWD_SCRAM_KEY_LEN);
		break;
	default:
		CHECK(0);	/* not a kind of passwd.h */
	}
	CHECK(passwd_find(pw, (const uint8_t *)e->user, e->user_len) == e);
	if (i > 0) {
		const struct passwd_entry *prev = &pw->entries[i - 1];
		size_t n = prev->user_len < e->user_len ? prev->user_len :
							  e->user_len;
		int c = memcmp(prev->user, e->user, n);

		/* Strictly increasing: sorted, and no name twice. */
		CHECK(c < 0 || (c == 0 && prev->user_len < e->user_len));
	}
}

static bool same_entry(const struct passwd_entry *a,
		       const struct passwd_entry *b)
{
	return a->user_len == b->user_len &&
	       memcmp(a->user, b->user, a->user_len) == 0 &&
	       a->kind == b->kind && a->iterations == b->iterations &&
	       a->line == b->line && a->salt_len == b->salt_len &&
	       a->hash_len == b->hash_len &&
	       memcmp(a->salt, b->salt, a->salt_len) == 0 &&
	       memcmp(a->hash, b->hash, a->hash_len) == 0 &&
	       memcmp(a->server_key, b->server_key, sizeof(a->server_key)) == 0;
}

static void check_parse(const char *s, size_t len)
{
	struct passwd pw, again, quiet;
	char err[512], err2[512], small[12];
	int rc, rc2, rc3, rc4;

	memset(err, 0x7F, sizeof(err));
	rc = passwd_parse(&pw, NAME, s, len, err, sizeof(err));
	CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc == 0) {
		CHECK(pw.count == count_content(s, len));
		CHECK((pw.count == 0) == (pw.entries == NULL));
		for (size_t i = 0; i < pw.count; i++)
			check_entry(&pw, i, s, len);
	} else {
		CHECK(pw.entries == NULL && pw.count == 0);
		CHECK(memchr(err, '\0', sizeof(err)));
		if (rc == -EINVAL)
			check_err(err, s, len);
	}

	/* Deterministic, and the error buffer changes nothing else. */
	rc2 = passwd_parse(&again, NAME, s, len, err2, sizeof(err2));
	CHECK(rc2 == rc);
	if (rc == 0) {
		CHECK(again.count == pw.count);
		for (size_t i = 0; i < pw.count; i++)
			CHECK(same_entry(&pw.entries[i], &again.entries[i]));
	} else {
		CHECK(strcmp(err, err2) == 0);
	}
	passwd_free(&again);
	CHECK(again.entries == NULL && again.count == 0);

	memset(small, 0x7F, sizeof(small));
	rc3 = passwd_parse(&quiet, NAME, s, len, small, sizeof(small));
	CHECK(rc3 == rc);
	if (rc) {
		CHECK(small[sizeof(small) - 1] == '\0');
		CHECK(strncmp(small, err, sizeof(small) - 1) == 0);
	}
	passwd_free(&quiet);
	rc4 = passwd_parse(&quiet, NAME, s, len, NULL, 0);
	CHECK(rc4 == rc);
	passwd_free(&quiet);

	passwd_free(&pw);
	CHECK(pw.entries == NULL && pw.count == 0);
}

/* Reference base64 (RFC 4648 section 4), with padding; returns length. */
static size_t ref_b64(const uint8_t *in, size_t len, char *out)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		size_t left = len - i;

		if (left > 1)
			v |= (uint32_t)in[i + 1] << 8;
		if (left > 2)
			v |= in[i + 2];
		out[n++] = tab[v >> 18 & 63];
		out[n++] = tab[v >> 12 & 63];
		out[n++] = left > 1 ? tab[v >> 6 & 63] : '=';
		out[n++] = left > 2 ? tab[v & 63] : '=';
	}
	return n;
}

/*
 * Decoded, the input must encode back to itself, with or without its
 * padding, and must not fit in one byte less.
 */
static void check_base64(const char *s, size_t len)
{
	uint8_t out[256];
	char enc[4 * (sizeof(out) / 3 + 1)];
	long n = passwd_base64_decode(s, len, out, sizeof(out));
	size_t elen, unpadded;

	CHECK(n >= -1 && n <= (long)sizeof(out));
	if (n < 0)
		return;
	elen = ref_b64(out, (size_t)n, enc);
	unpadded = elen;
	while (unpadded && enc[unpadded - 1] == '=')
		unpadded--;
	CHECK((len == elen && memcmp(s, enc, len) == 0) ||
	      (len == unpadded && memcmp(s, enc, len) == 0));
	if (n > 0)
		CHECK(passwd_base64_decode(s, len, out, (size_t)n - 1) == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;

	check_parse(s, size);
	check_base64(s, size);
	return 0;
}
