/*
 * Password file parser (see passwd.h).  The whole file is read into
 * memory and split into lines; each line is checked completely (every
 * base64 field decoded, every size checked), so that the broker refuses to
 * start on a file it would only half understand.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/passwd.h"

static int b64_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

long passwd_base64_decode(const char *in, size_t len, uint8_t *out,
			  size_t cap)
{
	uint32_t acc = 0;
	size_t n = 0, bits = 0;

	/* Up to two '=' of padding, and then only to a multiple of 4. */
	if (len % 4 == 0 && len && in[len - 1] == '=') {
		len--;
		if (in[len - 1] == '=')
			len--;
	}
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -1;
			out[n++] = (uint8_t)(acc >> bits);
		}
	}
	/* The unused low bits of the last character must be zero. */
	if (acc & ((1u << bits) - 1))
		return -1;
	return (long)n;
}

static void set_err(char *err, size_t errlen, const char *name,
		    unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!errlen)
		return;
	n = snprintf(err, errlen, "%s:%u: ", name, line);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* A decimal count of rounds in s[0..len): 1..PASSWD_ITER_MAX. */
static bool parse_iterations(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 9 || s[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > PASSWD_ITER_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

/* Decode a base64 field that must be exactly want bytes (0: 1..cap). */
static bool decode_field(const char *s, size_t len, uint8_t *out,
			 size_t cap, size_t want, size_t *got)
{
	long n = passwd_base64_decode(s, len, out, cap);

	if (n <= 0 || (want && (size_t)n != want))
		return false;
	*got = (size_t)n;
	return true;
}

/* $7$ITER$SALT$HASH after the "$7$". */
static const char *parse_pbkdf2(const char *s, size_t len,
				struct passwd_entry *e)
{
	const char *d1 = memchr(s, '$', len), *d2;

	if (!d1)
		return "$7$ hash: expected $7$ITERATIONS$SALT$HASH";
	d2 = memchr(d1 + 1, '$', len - (size_t)(d1 + 1 - s));
	if (!d2)
		return "$7$ hash: expected $7$ITERATIONS$SALT$HASH";
	if (!parse_iterations(s, (size_t)(d1 - s), &e->iterations))
		return "$7$ hash: bad iteration count";
	if (!decode_field(d1 + 1, (size_t)(d2 - d1 - 1), e->salt,
			  sizeof(e->salt), 0, &e->salt_len))
		return "$7$ hash: bad salt (base64, at most 64 bytes)";
	if (!decode_field(d2 + 1, len - (size_t)(d2 + 1 - s), e->hash,
			  sizeof(e->hash), 64, &e->hash_len))
		return "$7$ hash: bad hash (base64 of 64 bytes)";
	e->kind = PASSWD_PBKDF2_SHA512;
	return NULL;
}

/* $6$SALT$HASH after the "$6$". */
static const char *parse_sha512(const char *s, size_t len,
				struct passwd_entry *e)
{
	const char *d = memchr(s, '$', len);

	if (!d)
		return "$6$ hash: expected $6$SALT$HASH";
	if (!decode_field(s, (size_t)(d - s), e->salt, sizeof(e->salt), 0,
			  &e->salt_len))
		return "$6$ hash: bad salt (base64, at most 64 bytes)";
	if (!decode_field(d + 1, len - (size_t)(d + 1 - s), e->hash,
			  sizeof(e->hash), 64, &e->hash_len))
		return "$6$ hash: bad hash (base64 of 64 bytes)";
	e->kind = PASSWD_SHA512;
	return NULL;
}

/* ITER:SALT$STOREDKEY:SERVERKEY after "SCRAM-SHA-256$". */
static const char *parse_scram(const char *s, size_t len,
			       struct passwd_entry *e)
{
	const char *end = s + len;
	const char *c1 = memchr(s, ':', len), *d, *c2;
	size_t klen;

	if (!c1 || !(d = memchr(c1, '$', (size_t)(end - c1))) ||
	    !(c2 = memchr(d, ':', (size_t)(end - d))))
		return "SCRAM-SHA-256 verifier: expected "
		       "SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY";
	if (!parse_iterations(s, (size_t)(c1 - s), &e->iterations))
		return "SCRAM-SHA-256 verifier: bad iteration count";
	if (!decode_field(c1 + 1, (size_t)(d - c1 - 1), e->salt,
			  sizeof(e->salt), 0, &e->salt_len))
		return "SCRAM-SHA-256 verifier: bad salt (base64, at most 64 bytes)";
	if (!decode_field(d + 1, (size_t)(c2 - d - 1), e->hash,
			  sizeof(e->hash), PASSWD_SCRAM_KEY_LEN, &e->hash_len))
		return "SCRAM-SHA-256 verifier: bad StoredKey (base64 of 32 bytes)";
	if (!decode_field(c2 + 1, (size_t)(end - c2 - 1), e->server_key,
			  sizeof(e->server_key), PASSWD_SCRAM_KEY_LEN, &klen))
		return "SCRAM-SHA-256 verifier: bad ServerKey (base64 of 32 bytes)";
	e->kind = PASSWD_SCRAM_SHA256;
	return NULL;
}

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

/* One "user:hash" line without its end of line; NULL or what is wrong. */
static const char *parse_line(const char *s, size_t len,
			      struct passwd_entry *e)
{
	const char *colon = memchr(s, ':', len), *h;
	size_t hlen;

	if (memchr(s, '\0', len))
		return "NUL byte in line";
	if (!colon)
		return "expected user:hash";
	if (colon == s)
		return "empty user name";
	h = colon + 1;
	hlen = len - (size_t)(h - s);
	e->user_len = (size_t)(colon - s);
	if (has_prefix(h, hlen, "$7$"))
		return parse_pbkdf2(h + 3, hlen - 3, e);
	if (has_prefix(h, hlen, "$6$"))
		return parse_sha512(h + 3, hlen - 3, e);
	if (has_prefix(h, hlen, "SCRAM-SHA-256$"))
		return parse_scram(h + 14, hlen - 14, e);
	if (has_prefix(h, hlen, "$argon2"))
		return "argon2 hashes are not supported; "
		       "use mosquitto_passwd's $7$ (sha512-pbkdf2)";
	if (hlen == 0)
		return "empty hash";
	return "unknown hash format (a plain-text password? "
	       "hash the file with mosquitto_passwd -U)";
}

static int cmp_user(const uint8_t *a, size_t alen, const uint8_t *b,
		    size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int cmp_entries(const void *pa, const void *pb)
{
	const struct passwd_entry *a = pa, *b = pb;
	int c = cmp_user((const uint8_t *)a->user, a->user_len,
			 (const uint8_t *)b->user, b->user_len);

	/* Equal names: file order, so the message names the later line. */
	if (c == 0)
		return a->line < b->line ? -1 : a->line > b->line;
	return c;
}

static bool is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

int passwd_parse(struct passwd *pw, const char *name, const char *text,
		 size_t len, char *err, size_t errlen)
{
	const char *p = text, *end = text + len;
	struct passwd_entry *v = NULL;
	size_t n = 0, cap = 0;
	unsigned line = 0;
	int rc = -EINVAL;

	pw->entries = NULL;
	pw->count = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
		const char *why;
		struct passwd_entry *e;

		line++;
		/* CRLF files and trailing blanks, as mosquitto tolerates. */
		while (l && (p[l - 1] == '\r' || p[l - 1] == ' ' ||
			     p[l - 1] == '\t'))
			l--;
		if (is_blank(p, l) || p[0] == '#')
			goto next;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct passwd_entry *nv =
				realloc(v, ncap * sizeof(*nv));

			if (!nv)
				goto nomem;
			v = nv;
			cap = ncap;
		}
		e = &v[n];
		memset(e, 0, sizeof(*e));
		e->line = line;
		why = parse_line(p, l, e);
		if (why) {
			set_err(err, errlen, name, line, "%s", why);
			goto fail;
		}
		e->user = strndup(p, e->user_len);
		if (!e->user)
			goto nomem;
		n++;
next:
		p = eol ? eol + 1 : end;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_entries);
	for (size_t i = 1; i < n; i++) {
		if (cmp_user((const uint8_t *)v[i - 1].user, v[i - 1].user_len,
			     (const uint8_t *)v[i].user, v[i].user_len) == 0) {
			set_err(err, errlen, name, v[i].line,
				"user '%s' already defined on line %u",
				v[i].user, v[i - 1].line);
			goto fail;
		}
	}
	pw->entries = v;
	pw->count = n;
	return 0;

nomem:
	rc = -ENOMEM;
	set_err(err, errlen, name, line, "out of memory");
fail:
	for (size_t i = 0; i < n; i++)
		free(v[i].user);
	free(v);
	return rc;
}

int passwd_load(struct passwd *pw, const char *path, char *err,
		size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	pw->entries = NULL;
	pw->count = 0;
	if (!f)
		goto err_errno;
	for (;;) {
		size_t got;

		if (cap - len < 4096) {
			char *nb = realloc(buf, cap ? cap * 2 : 8192);

			if (!nb) {
				errno = ENOMEM;
				goto err_close;
			}
			buf = nb;
			cap = cap ? cap * 2 : 8192;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		errno = EIO;
		goto err_close;
	}
	fclose(f);
	rc = passwd_parse(pw, path, buf, len, err, errlen);
	free(buf);
	return rc;

err_close:
	rc = errno;
	fclose(f);
	free(buf);
	errno = rc;
err_errno:
	rc = -errno;
	if (errlen)
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	return rc;
}

const struct passwd_entry *passwd_find(const struct passwd *pw,
				       const uint8_t *user, size_t len)
{
	size_t lo = 0, hi = pw->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct passwd_entry *e = &pw->entries[mid];
		int c = cmp_user(user, len, (const uint8_t *)e->user,
				 e->user_len);

		if (c == 0)
			return e;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

void passwd_free(struct passwd *pw)
{
	for (size_t i = 0; i < pw->count; i++)
		free(pw->entries[i].user);
	free(pw->entries);
	pw->entries = NULL;
	pw->count = 0;
}
