/*
 * Unit tests for broker/auth.c: password verification of each hash kind
 * against entries made by mosquitto_passwd and from RFC 7677's example,
 * the constant-work check of CONNECT passwords, loading files, and the
 * SCRAM-SHA-256 server against RFC 7677 section 3's exchange (server nonce
 * fixed through scram_test_nonce) plus every way a client message can be
 * wrong.  Includes auth.c to reach its statics.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/auth.c"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* mosquitto_passwd -b (Debian 12, mosquitto 2.0.11): u / p. */
#define LINE_7 "u:$7$101$4cbgZ0RngIuDFPOK$pPQ8k+9bUxd2wEr04IjnGOxT2U60RAiC" \
	       "mRvUGUjv9pZ6vLN82azk0kh6Z6qmbAds0vWNruX+G/x0Ez3lxjrQOw=="
/* mosquitto_passwd -H sha512 -b: v / p. */
#define LINE_6 "v:$6$WJz6y38i2Bl3Y6/G$ITczOpavsqrOOl1Tkjo7hki/5YkIXOEaU+PWC6" \
	       "gbDmwA7SiIDJEUIZCXsXpgPG1AsACcBCvBAm/U6kESKzywHw=="
/* RFC 7677: "user" / "pencil", salt and iterations of its example. */
#define LINE_SCRAM "user:SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$" \
		   "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:" \
		   "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define FILE_TEXT LINE_7 "\n" LINE_6 "\n" LINE_SCRAM "\n" \
		  "plain:$6$WJz6y38i2Bl3Y6/G$ITczOpavsqrOOl1Tkjo7hki/5YkIXOEa" \
		  "U+PWC6gbDmwA7SiIDJEUIZCXsXpgPG1AsACcBCvBAm/U6kESKzywHw==\n"

/* RFC 7677 section 3. */
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SERVER_FIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
			 "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_FINAL_NO_PROOF "c=biws,r=rOprNGfwEbeRWgbNEkqO" \
			   "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_PROOF "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static struct auth_db db;

static void setup(void)
{
	ck_assert_int_eq(passwd_parse(&db.pw, "test", FILE_TEXT,
				      strlen(FILE_TEXT), NULL, 0), 0);
	memset(db.mock_key, 0x5A, sizeof(db.mock_key));
	scram_test_nonce = RFC_SNONCE;
}

static void teardown(void)
{
	passwd_free(&db.pw);
	scram_test_nonce = NULL;
}

static const struct passwd_entry *entry(const char *user)
{
	const struct passwd_entry *e =
		passwd_find(&db.pw, (const uint8_t *)user, strlen(user));

	ck_assert_ptr_nonnull(e);
	return e;
}

static bool verify(const char *user, const char *password)
{
	return auth_entry_verify(entry(user), (const uint8_t *)password,
				 strlen(password));
}

static bool check(const char *user, const char *password)
{
	return auth_check_password(&db, (const uint8_t *)user, strlen(user),
				   (const uint8_t *)password,
				   strlen(password));
}

/* ------------------------------------------------------------ passwords */

START_TEST(test_pbkdf2_sha512)
{
	ck_assert(verify("u", "p"));
	ck_assert(!verify("u", "P"));
	ck_assert(!verify("u", "p "));
	ck_assert(!verify("u", ""));
}
END_TEST

START_TEST(test_sha512)
{
	ck_assert(verify("v", "p"));
	ck_assert(!verify("v", "q"));
	ck_assert(!verify("v", ""));
}
END_TEST

/* A SCRAM verifier also checks a CONNECT password (derive and compare). */
START_TEST(test_scram_password)
{
	ck_assert(verify("user", "pencil"));
	ck_assert(!verify("user", "pencil2"));
	ck_assert(!verify("user", "Pencil"));
}
END_TEST

START_TEST(test_check_password)
{
	ck_assert(check("u", "p"));
	ck_assert(check("user", "pencil"));
	ck_assert(!check("u", "pencil"));
	ck_assert(!check("nobody", "p"));
	ck_assert(!check("", ""));
	/* A password of 64 KiB is refused, not hashed. */
	{
		static uint8_t big[65536];

		ck_assert(!auth_check_password(&db, (const uint8_t *)"u", 1,
					       big, sizeof(big)));
	}
}
END_TEST

START_TEST(test_db_load)
{
	char path[] = "/tmp/cicada-auth-XXXXXX";
	struct config cfg = { 0 };
	struct config_listener l = { 0 };
	struct auth_db *d, *d2;
	int fd = mkstemp(path);
	FILE *f;

	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	fputs(FILE_TEXT, f);
	fclose(f);
	d = auth_db_load(path);
	ck_assert_ptr_nonnull(d);
	ck_assert_str_eq(auth_db_path(d), path);
	ck_assert(auth_check_password(d, (const uint8_t *)"u", 1,
				      (const uint8_t *)"p", 1));
	d2 = auth_db_ref(d);
	ck_assert_ptr_eq(d, d2);
	auth_db_unref(d2);
	auth_db_unref(d);
	auth_db_unref(NULL);

	cfg.listeners = &l;
	cfg.listener_count = 1;
	ck_assert_int_eq(auth_test_config(&cfg), 0);
	l.password_file = path;
	ck_assert_int_eq(auth_test_config(&cfg), 0);

	f = fopen(path, "a");
	fputs("bad line\n", f);
	fclose(f);
	ck_assert_ptr_null(auth_db_load(path));
	ck_assert_int_eq(auth_test_config(&cfg), -1);
	unlink(path);
	ck_assert_ptr_null(auth_db_load(path));
}
END_TEST

/* ---------------------------------------------------------------- SCRAM */

struct exchange {
	const struct auth_mech *m;
	void *state;
	const uint8_t *out;
	size_t out_len;
	const char *why;
};

static enum auth_step start(struct exchange *x, const char *client_first)
{
	x->m = auth_mech_find((const uint8_t *)"SCRAM-SHA-256", 13);
	ck_assert_ptr_nonnull(x->m);
	x->why = NULL;
	return x->m->start(&x->state, &db, (const uint8_t *)client_first,
			   strlen(client_first), &x->out, &x->out_len,
			   &x->why);
}

static enum auth_step step(struct exchange *x, const char *client_final)
{
	x->why = NULL;
	return x->m->step(x->state, (const uint8_t *)client_final,
			  strlen(client_final), &x->out, &x->out_len, &x->why);
}

static void out_is(const struct exchange *x, const char *want)
{
	ck_assert_msg(x->out_len == strlen(want) &&
		      memcmp(x->out, want, x->out_len) == 0,
		      "got '%.*s', want '%s'", (int)x->out_len, x->out, want);
}

static void done(struct exchange *x)
{
	x->m->free_state(x->state);
	x->state = NULL;
}

START_TEST(test_mech_find)
{
	ck_assert_ptr_nonnull(auth_mech_find((const uint8_t *)"SCRAM-SHA-256",
					     13));
	ck_assert_ptr_null(auth_mech_find((const uint8_t *)"SCRAM-SHA-25", 12));
	ck_assert_ptr_null(auth_mech_find((const uint8_t *)"SCRAM-SHA-1", 11));
	ck_assert_ptr_null(auth_mech_find((const uint8_t *)"scram-sha-256",
					  13));
}
END_TEST

/* RFC 7677 section 3, message for message. */
START_TEST(test_rfc7677)
{
	struct exchange x;

	ck_assert_int_eq(start(&x, RFC_CLIENT_FIRST), AUTH_STEP_CONTINUE);
	out_is(&x, RFC_SERVER_FIRST);
	ck_assert_int_eq(step(&x, RFC_FINAL_NO_PROOF ",p=" RFC_PROOF),
			 AUTH_STEP_DONE);
	out_is(&x, RFC_SERVER_FINAL);
	ck_assert_str_eq(x.m->user(x.state), "user");
	/* Nothing after the server-final-message. */
	ck_assert_int_eq(step(&x, RFC_FINAL_NO_PROOF ",p=" RFC_PROOF),
			 AUTH_STEP_FAIL);
	done(&x);
}
END_TEST

/* Client-final-messages that must fail after the RFC's client-first. */
static const char *const bad_finals[] = {
	/* One bit of the proof flipped. */
	RFC_FINAL_NO_PROOF ",p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	/* The proof of another password: all zero. */
	RFC_FINAL_NO_PROOF ",p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	/* Proof of the wrong length. */
	RFC_FINAL_NO_PROOF ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ==",
	RFC_FINAL_NO_PROOF ",p=!!",
	RFC_FINAL_NO_PROOF,
	/* Nonce: the client's alone, or changed. */
	"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=" RFC_PROOF,
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p="
	RFC_PROOF,
	/* c= not the gs2-header ("y,," is eSws). */
	"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="
	RFC_PROOF,
	/* No c=. */
	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=" RFC_PROOF,
	"",
};

START_TEST(test_bad_final)
{
	struct exchange x;

	ck_assert_int_eq(start(&x, RFC_CLIENT_FIRST), AUTH_STEP_CONTINUE);
	ck_assert_int_eq(step(&x, bad_finals[_i]), AUTH_STEP_FAIL);
	ck_assert_ptr_nonnull(x.why);
	done(&x);
}
END_TEST

static const char *const bad_firsts[] = {
	"",
	"p=tls-unique,,n=user,r=abc",	/* channel binding */
	"x,,n=user,r=abc",
	"n,n=user,r=abc",		/* gs2-header without authzid ',' */
	"n,,m=ext,n=user,r=abc",	/* mandatory extension */
	"n,,r=abc",			/* no user */
	"n,,n=,r=abc",
	"n,,n=us=2er,r=abc",		/* bad escape */
	"n,,n=user",			/* no nonce */
	"n,,n=user,r=",
	"n,,n=user,r=a\001b",	/* nonce not printable */
	"n,a=other,n=user,r=abc",	/* authzid not the user */
	"n,a=,n=user,r=abc",
};

START_TEST(test_bad_first)
{
	struct exchange x;

	ck_assert_int_eq(start(&x, bad_firsts[_i]), AUTH_STEP_FAIL);
	ck_assert_ptr_nonnull(x.why);
	done(&x);
}
END_TEST

/* "y" (client could bind, thinks we cannot) and a matching authzid. */
START_TEST(test_gs2_variants)
{
	struct exchange x;

	ck_assert_int_eq(start(&x, "y,,n=user,r=abc"), AUTH_STEP_CONTINUE);
	ck_assert_uint_eq(x.state ? ((struct scram *)x.state)->gs2_len : 0, 3);
	done(&x);
	ck_assert_int_eq(start(&x, "n,a=user,n=user,r=abc,ext=1"),
			 AUTH_STEP_CONTINUE);
	ck_assert_uint_eq(((struct scram *)x.state)->gs2_len, 9);
	done(&x);
}
END_TEST

/* "=2C" and "=3D" in a name are ',' and '='. */
START_TEST(test_saslname_escapes)
{
	struct exchange x;

	ck_assert_int_eq(start(&x, "n,,n=a=2Cb=3Dc,r=abc"),
			 AUTH_STEP_CONTINUE);
	ck_assert_str_eq(((struct scram *)x.state)->user, "a,b=c");
	done(&x);
}
END_TEST

/*
 * Unknown users, and users without a SCRAM verifier, get a server-first
 * like anyone (same salt each time for a name, 4096 rounds) and fail at
 * the proof: the exchange does not reveal which names exist.
 */
START_TEST(test_unknown_user)
{
	struct exchange x;
	char first[256];
	size_t n;

	ck_assert_int_eq(start(&x, "n,,n=nobody,r=abc"), AUTH_STEP_CONTINUE);
	n = x.out_len;
	ck_assert_uint_lt(n, sizeof(first));
	memcpy(first, x.out, n);
	ck_assert(strstr(first, ",i=4096") != NULL);
	ck_assert_int_eq(step(&x, "c=biws,r=abc" RFC_SNONCE ",p=" RFC_PROOF),
			 AUTH_STEP_FAIL);
	ck_assert(strstr(x.why, "unknown user") != NULL);
	done(&x);
	ck_assert_int_eq(start(&x, "n,,n=nobody,r=abc"), AUTH_STEP_CONTINUE);
	ck_assert_uint_eq(x.out_len, n);
	ck_assert_mem_eq(x.out, first, n);
	done(&x);

	ck_assert_int_eq(start(&x, "n,,n=u,r=abc"), AUTH_STEP_CONTINUE);
	ck_assert_int_eq(step(&x, "c=biws,r=abc" RFC_SNONCE ",p=" RFC_PROOF),
			 AUTH_STEP_FAIL);
	done(&x);
}
END_TEST

/*
 * NUL bytes (none in RFC 5802's grammar) are refused.  They used to pass
 * in an extension of the client-first-message and cut the AuthMessage
 * short (it was built with "%.*s"), so that an honest client's proof over
 * all the bytes failed; found by tests/fuzz/fuzz_scram.
 */
START_TEST(test_nul_bytes)
{
	static const char first[] = "n,,n=user,r=abc,x=1\0y";
	static const char final[] = RFC_FINAL_NO_PROOF ",x=\0,p=" RFC_PROOF;
	struct exchange x;

	x.m = auth_mech_find((const uint8_t *)"SCRAM-SHA-256", 13);
	x.why = NULL;
	ck_assert_int_eq(x.m->start(&x.state, &db, (const uint8_t *)first,
				    sizeof(first) - 1, &x.out, &x.out_len,
				    &x.why),
			 AUTH_STEP_FAIL);
	ck_assert_str_eq(x.why, "NUL in SCRAM client-first-message");
	done(&x);

	ck_assert_int_eq(start(&x, RFC_CLIENT_FIRST), AUTH_STEP_CONTINUE);
	x.why = NULL;
	ck_assert_int_eq(x.m->step(x.state, (const uint8_t *)final,
				   sizeof(final) - 1, &x.out, &x.out_len,
				   &x.why),
			 AUTH_STEP_FAIL);
	ck_assert_str_eq(x.why, "NUL in SCRAM client-final-message");
	done(&x);
}
END_TEST

/* Without a fixed nonce: 24 random characters, different each time. */
START_TEST(test_random_nonce)
{
	struct exchange x;
	char a[128], b[128];

	scram_test_nonce = NULL;
	ck_assert_int_eq(start(&x, "n,,n=user,r=abc"), AUTH_STEP_CONTINUE);
	ck_assert_uint_lt(x.out_len, sizeof(a));
	memcpy(a, x.out, x.out_len);
	a[x.out_len] = '\0';
	done(&x);
	ck_assert_int_eq(start(&x, "n,,n=user,r=abc"), AUTH_STEP_CONTINUE);
	memcpy(b, x.out, x.out_len);
	b[x.out_len] = '\0';
	done(&x);
	ck_assert_ptr_eq(strchr(a, ','), a + 2 + 3 + 24);
	ck_assert_str_ne(a, b);
}
END_TEST

static Suite *auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tc = tcase_create("passwords");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_pbkdf2_sha512);
	tcase_add_test(tc, test_sha512);
	tcase_add_test(tc, test_scram_password);
	tcase_add_test(tc, test_check_password);
	tcase_add_test(tc, test_db_load);
	suite_add_tcase(s, tc);

	tc = tcase_create("scram");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_mech_find);
	tcase_add_test(tc, test_rfc7677);
	tcase_add_loop_test(tc, test_bad_final, 0, (int)NELEM(bad_finals));
	tcase_add_loop_test(tc, test_bad_first, 0, (int)NELEM(bad_firsts));
	tcase_add_test(tc, test_gs2_variants);
	tcase_add_test(tc, test_saslname_escapes);
	tcase_add_test(tc, test_unknown_user);
	tcase_add_test(tc, test_nul_bytes);
	tcase_add_test(tc, test_random_nonce);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
