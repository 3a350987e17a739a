/*
 * Unit tests for conf/passwd.c: whole files parsed from memory (good
 * entries of each kind, comments, blank lines, CRLF), bad lines with the
 * "NAME:LINE: message" they must produce, lookups, base64 edge cases,
 * and one file read from disk.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/passwd.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* mosquitto_passwd (Debian 12, mosquitto 2.0.11): user u, password p. */
#define LINE_7 "u:$7$101$4cbgZ0RngIuDFPOK$pPQ8k+9bUxd2wEr04IjnGOxT2U60RAiC" \
	       "mRvUGUjv9pZ6vLN82azk0kh6Z6qmbAds0vWNruX+G/x0Ez3lxjrQOw=="
/* mosquitto_passwd -H sha512: user u, password p. */
#define HASH_6 "$6$WJz6y38i2Bl3Y6/G$ITczOpavsqrOOl1Tkjo7hki/5YkIXOEaU+PWC6" \
	       "gbDmwA7SiIDJEUIZCXsXpgPG1AsACcBCvBAm/U6kESKzywHw=="
#define LINE_6 "v:" HASH_6
/* RFC 7677's user "user", password "pencil". */
#define LINE_SCRAM "user:SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" \
		   "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:" \
		   "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

static void check_ok(const char *text, size_t want_count)
{
	struct passwd pw;
	char err[256] = "";
	int rc = passwd_parse(&pw, "pw", text, strlen(text), err,
			      sizeof(err));

	ck_assert_msg(rc == 0, "rc %d: %s", rc, err);
	ck_assert_uint_eq(pw.count, want_count);
	passwd_free(&pw);
}

START_TEST(test_good_entries)
{
	struct passwd pw;
	const struct passwd_entry *e;
	const char *text = "# users\n" LINE_7 "\n\n   \n" LINE_6 "\r\n"
			   LINE_SCRAM "\t \n#end";

	ck_assert_int_eq(passwd_parse(&pw, "pw", text, strlen(text), NULL, 0),
			 0);
	ck_assert_uint_eq(pw.count, 3);

	e = passwd_find(&pw, (const uint8_t *)"u", 1);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->kind, PASSWD_PBKDF2_SHA512);
	ck_assert_uint_eq(e->iterations, 101);
	ck_assert_uint_eq(e->salt_len, 12);
	ck_assert_uint_eq(e->hash_len, 64);
	ck_assert_uint_eq(e->line, 2);
	ck_assert_uint_eq(e->hash[0], 0xA4); /* 'pPQ8' */

	e = passwd_find(&pw, (const uint8_t *)"v", 1);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->kind, PASSWD_SHA512);
	ck_assert_uint_eq(e->iterations, 0);
	ck_assert_uint_eq(e->salt_len, 12);
	ck_assert_uint_eq(e->line, 5);

	e = passwd_find(&pw, (const uint8_t *)"user", 4);
	ck_assert_ptr_nonnull(e);
	ck_assert_int_eq(e->kind, PASSWD_SCRAM_SHA256);
	ck_assert_uint_eq(e->iterations, 4096);
	ck_assert_uint_eq(e->salt_len, 16);
	ck_assert_uint_eq(e->hash_len, 32);
	ck_assert_uint_eq(e->server_key[0], 0xC1); /* 'wfPL' */
	ck_assert_str_eq(e->user, "user");

	ck_assert_ptr_null(passwd_find(&pw, (const uint8_t *)"use", 3));
	ck_assert_ptr_null(passwd_find(&pw, (const uint8_t *)"userx", 5));
	ck_assert_ptr_null(passwd_find(&pw, (const uint8_t *)"U", 1));
	passwd_free(&pw);
	ck_assert_uint_eq(pw.count, 0);
}
END_TEST

START_TEST(test_empty_files)
{
	check_ok("", 0);
	check_ok("\n\n", 0);
	check_ok("# only a comment", 0);
	/* A name may hold anything but ':'; ones sharing a prefix are apart. */
	check_ok("a b:" HASH_6 "\nab:" HASH_6 "\na:" HASH_6 "\n", 3);
}
END_TEST

struct bad {
	const char *text;
	const char *err; /* the whole message */
};

static const struct bad bad_rows[] = {
	{ "nocolon\n", "pw:1: expected user:hash" },
	{ "# c\n:" "$6$WJz6$ITcz\n", "pw:2: empty user name" },
	{ "x:\n", "pw:1: empty hash" },
	{ "x:secret\n", "pw:1: unknown hash format (a plain-text password? "
			"hash the file with mosquitto_passwd -U)" },
	{ "x:$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA\n",
	  "pw:1: argon2 hashes are not supported; use mosquitto_passwd's "
	  "$7$ (sha512-pbkdf2)" },
	{ "\n\nx:$7$101$4cbgZ0RngIuDFPOK\n",
	  "pw:3: $7$ hash: expected $7$ITERATIONS$SALT$HASH" },
	{ "x:$7$0$4cbgZ0RngIuDFPOK$pPQ8\n", "pw:1: $7$ hash: bad iteration count" },
	{ "x:$7$abc$4cbgZ0RngIuDFPOK$pPQ8\n",
	  "pw:1: $7$ hash: bad iteration count" },
	{ "x:$7$99999999999$4cbgZ0RngIuDFPOK$pPQ8\n",
	  "pw:1: $7$ hash: bad iteration count" },
	{ "x:$7$101$4cbg!0RngIuDFPOK$pPQ8\n",
	  "pw:1: $7$ hash: bad salt (base64, at most 64 bytes)" },
	{ "x:$7$101$$pPQ8\n",
	  "pw:1: $7$ hash: bad salt (base64, at most 64 bytes)" },
	/* A hash of 3 bytes where 64 are due. */
	{ "x:$7$101$4cbgZ0RngIuDFPOK$pPQ8\n",
	  "pw:1: $7$ hash: bad hash (base64 of 64 bytes)" },
	{ "x:$6$WJz6y38i2Bl3Y6/G\n", "pw:1: $6$ hash: expected $6$SALT$HASH" },
	{ "x:$6$WJz6y38i2Bl3Y6/G$ITcz\n",
	  "pw:1: $6$ hash: bad hash (base64 of 64 bytes)" },
	{ "x:SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$abc\n",
	  "pw:1: SCRAM-SHA-256 verifier: expected "
	  "SCRAM-SHA-256$ITERATIONS:SALT$STOREDKEY:SERVERKEY" },
	{ "x:SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
	  "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:AAAA\n",
	  "pw:1: SCRAM-SHA-256 verifier: bad ServerKey (base64 of 32 bytes)" },
	{ "x:SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$AAAA:"
	  "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\n",
	  "pw:1: SCRAM-SHA-256 verifier: bad StoredKey (base64 of 32 bytes)" },
	{ "x:SCRAM-SHA-256$x:W22ZaJ0SNY7soEsUEjb6gQ==$"
	  "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
	  "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\n",
	  "pw:1: SCRAM-SHA-256 verifier: bad iteration count" },
	/* The second of two lines for one user is the one named. */
	{ LINE_7 "\n# again\n" LINE_7 "\n",
	  "pw:3: user 'u' already defined on line 1" },
};

START_TEST(test_bad_lines)
{
	const struct bad *row = &bad_rows[_i];
	struct passwd pw = { (void *)1, 99 };
	char err[256] = "";
	int rc = passwd_parse(&pw, "pw", row->text, strlen(row->text), err,
			      sizeof(err));

	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_str_eq(err, row->err);
	ck_assert_ptr_null(pw.entries);
	ck_assert_uint_eq(pw.count, 0);
}
END_TEST

START_TEST(test_nul_byte)
{
	static const char text[] = "x:$6$\0abc\n";
	struct passwd pw;
	char err[64];

	ck_assert_int_eq(passwd_parse(&pw, "pw", text, sizeof(text) - 1, err,
				      sizeof(err)), -EINVAL);
	ck_assert_str_eq(err, "pw:1: NUL byte in line");
}
END_TEST

START_TEST(test_small_err_buffer)
{
	struct passwd pw;
	char err[6];

	ck_assert_int_eq(passwd_parse(&pw, "pw", "x", 1, err, sizeof(err)),
			 -EINVAL);
	ck_assert_str_eq(err, "pw:1:");
	ck_assert_int_eq(passwd_parse(&pw, "pw", "x", 1, NULL, 0), -EINVAL);
}
END_TEST

struct b64_row {
	const char *in;
	long want;	/* length, or -1 */
	const char *out;
};

static const struct b64_row b64_rows[] = {
	{ "", 0, "" },
	{ "Zg==", 1, "f" },
	{ "Zg", 1, "f" },
	{ "Zm8=", 2, "fo" },
	{ "Zm9v", 3, "foo" },
	{ "Zm9vYg==", 4, "foob" },
	{ "Z", -1, NULL },		/* one character cannot hold a byte */
	{ "Zh==", -1, NULL },		/* unused bits set */
	{ "Zm9v!", -1, NULL },
	{ "Zg=", -1, NULL },		/* padding only to a multiple of 4 */
	{ "Z===", -1, NULL },
	{ "Zm9vYmFy", -1, NULL },	/* 6 bytes: over the cap of 5 */
};

START_TEST(test_base64)
{
	const struct b64_row *row = &b64_rows[_i];
	uint8_t out[5];
	long n = passwd_base64_decode(row->in, strlen(row->in), out,
				      sizeof(out));

	ck_assert_int_eq(n, row->want);
	if (n > 0)
		ck_assert_mem_eq(out, row->out, (size_t)n);
}
END_TEST

START_TEST(test_load_file)
{
	char path[] = "/tmp/cicada-passwd-XXXXXX";
	struct passwd pw;
	char err[256];
	int fd = mkstemp(path);
	FILE *f;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(LINE_7 "\n" LINE_SCRAM "\n", f);
	fclose(f);
	ck_assert_int_eq(passwd_load(&pw, path, err, sizeof(err)), 0);
	ck_assert_uint_eq(pw.count, 2);
	passwd_free(&pw);

	f = fopen(path, "a");
	fputs("broken\n", f);
	fclose(f);
	ck_assert_int_eq(passwd_load(&pw, path, err, sizeof(err)), -EINVAL);
	ck_assert(strstr(err, ":3: expected user:hash") != NULL);
	ck_assert(strncmp(err, path, strlen(path)) == 0);
	unlink(path);

	ck_assert_int_eq(passwd_load(&pw, path, err, sizeof(err)), -ENOENT);
	ck_assert(strstr(err, "No such file") != NULL);
}
END_TEST

static Suite *passwd_suite(void)
{
	Suite *s = suite_create("passwd");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, test_good_entries);
	tcase_add_test(tc, test_empty_files);
	tcase_add_loop_test(tc, test_bad_lines, 0, (int)NELEM(bad_rows));
	tcase_add_test(tc, test_nul_byte);
	tcase_add_test(tc, test_small_err_buffer);
	tcase_add_loop_test(tc, test_base64, 0, (int)NELEM(b64_rows));
	tcase_add_test(tc, test_load_file);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(passwd_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
