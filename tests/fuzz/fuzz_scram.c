/*
 * libFuzzer target for the SCRAM-SHA-256 server of MQTT 5 enhanced
 * authentication (broker/auth.c, RFC 5802 / RFC 7677).  Includes auth.c,
 * as its unit test does, to fix the server nonce (scram_test_nonce) and to
 * build the password database in memory.
 *
 * Input: client-first-message, then optionally a 0x00 byte and a
 * client-final-message.  The split is at the last 0x00, so that the first
 * message may hold NUL bytes too (RFC 5802 allows none anywhere).
 *
 * The database holds RFC 7677's user "user" with password "pencil" (a
 * verifier derived here once, checked against the RFC's), and mosquitto
 * entries ($7$, $6$) that are not SCRAM credentials.  For every input the
 * server gets the client-first-message three times:
 *
 *   1. followed by the input's client-final-message: the server may accept
 *      it only when its proof is the one an honest client with the right
 *      password computes over the bytes that were exchanged, checked here
 *      with wolfCrypt directly;
 *   2. followed by the client-final an honest client with the password
 *      "pencil" would send: accepted exactly when the user is "user" and
 *      the message fits, with the server signature an honest client
 *      expects;
 *   3. followed by the input's client-final with its proof replaced by the
 *      right one: if accepted, the nonce it repeats must be the server's.
 *
 * Every server message must stay within its buffer and have the form RFC
 * 5802 gives it, and an exchange that ended must refuse another message.
 * RFC 7677's exchange (in the seed corpus) must succeed with the RFC's
 * server-final-message.  Any broken invariant aborts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/auth.c"

#define CHECK(cond)                                                     \
	do {                                                            \
		if (!(cond)) {                                          \
			fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__,  \
				__LINE__, #cond);                       \
			abort();                                        \
		}                                                       \
	} while (0)

/* RFC 7677 section 3. */
#define RFC_USER "user"
#define RFC_PASSWORD "pencil"
#define RFC_SALT64 "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_ITER 4096
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_CLIENT_FIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_CLIENT_FINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO" RFC_SNONCE \
			 ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* The verifier PostgreSQL would store for it. */
#define RFC_VERIFIER "SCRAM-SHA-256$4096:" RFC_SALT64 "$" \
		     "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:" \
		     "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

/* mosquitto_passwd -b: u / p ($7$) and, with -H sha512, v / p ($6$). */
#define LINE_7 "u:$7$101$4cbgZ0RngIuDFPOK$pPQ8k+9bUxd2wEr04IjnGOxT2U60RAiC" \
	       "mRvUGUjv9pZ6vLN82azk0kh6Z6qmbAds0vWNruX+G/x0Ez3lxjrQOw=="
#define LINE_6 "v:$6$WJz6y38i2Bl3Y6/G$ITczOpavsqrOOl1Tkjo7hki/5YkIXOEaU+PWC6" \
	       "gbDmwA7SiIDJEUIZCXsXpgPG1AsACcBCvBAm/U6kESKzywHw=="

#define KEY_LEN 32
/* A server message: auth.c's buffer for it. */
#define OUT_MAX SCRAM_MSG_MAX

static struct auth_db fz_db;
static const struct auth_mech *fz_mech;
/* The honest client's keys for "user" / "pencil". */
static uint8_t fz_client_key[KEY_LEN], fz_stored_key[KEY_LEN];
static uint8_t fz_server_key[KEY_LEN];

/* ------------------------------------------------- reference crypto */

static void ref_hmac(const uint8_t *key, size_t key_len, const void *msg,
		     size_t len, uint8_t out[KEY_LEN])
{
	Hmac h;

	CHECK(wc_HmacInit(&h, NULL, INVALID_DEVID) == 0);
	CHECK(wc_HmacSetKey(&h, WC_SHA256, key, (word32)key_len) == 0);
	CHECK(len == 0 || wc_HmacUpdate(&h, msg, (word32)len) == 0);
	CHECK(wc_HmacFinal(&h, out) == 0);
	wc_HmacFree(&h);
}

/* Base64 with padding, NUL-terminated; returns the length. */
static size_t ref_b64(const uint8_t *in, size_t len, char *out, size_t cap)
{
	word32 n = (word32)cap;

	CHECK(Base64_Encode_NoNl(in, (word32)len, (byte *)out, &n) == 0);
	CHECK(n < cap);
	out[n] = '\0';
	return n;
}

static void fz_init(void)
{
	static char text[1024];
	uint8_t salt[64], salted[KEY_LEN];
	word32 salt_len = sizeof(salt);
	char stored64[64], server64[64];
	int n;

	CHECK(Base64_Decode((const byte *)RFC_SALT64, sizeof(RFC_SALT64) - 1,
			    salt, &salt_len) == 0);
	CHECK(wc_PBKDF2(salted, (const byte *)RFC_PASSWORD,
			(int)strlen(RFC_PASSWORD), salt, (int)salt_len,
			RFC_ITER, KEY_LEN, WC_SHA256) == 0);
	ref_hmac(salted, KEY_LEN, "Client Key", 10, fz_client_key);
	CHECK(wc_Sha256Hash(fz_client_key, KEY_LEN, fz_stored_key) == 0);
	ref_hmac(salted, KEY_LEN, "Server Key", 10, fz_server_key);
	ref_b64(fz_stored_key, KEY_LEN, stored64, sizeof(stored64));
	ref_b64(fz_server_key, KEY_LEN, server64, sizeof(server64));
	n = snprintf(text, sizeof(text),
		     "%s\n%s\n" RFC_USER ":SCRAM-SHA-256$%d:%s$%s:%s\n",
		     LINE_7, LINE_6, RFC_ITER, RFC_SALT64, stored64, server64);
	CHECK(n > 0 && (size_t)n < sizeof(text));
	CHECK(strstr(text, RFC_USER ":" RFC_VERIFIER "\n") != NULL);
	CHECK(passwd_parse(&fz_db.pw, "fuzz", text, (size_t)n, NULL, 0) == 0);
	memset(fz_db.mock_key, 0x5A, sizeof(fz_db.mock_key));
	scram_test_nonce = RFC_SNONCE;
	fz_mech = auth_mech_find((const uint8_t *)"SCRAM-SHA-256", 13);
	CHECK(fz_mech != NULL);
}

/* ----------------------------------------------------- one exchange */

struct fz_msg {
	const char *s;
	size_t len;
};

static bool msg_is(const uint8_t *p, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(p, want, len) == 0;
}

static const char *find(const char *s, size_t len, const char *what)
{
	size_t n = strlen(what);

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(s + i, what, n) == 0)
			return s + i;
	return NULL;
}

static const char *find_last(const char *s, size_t len, const char *what)
{
	size_t n = strlen(what);

	for (size_t i = len; i >= n; i--)
		if (memcmp(s + i - n, what, n) == 0)
			return s + i - n;
	return NULL;
}

/*
 * A client-first-message the server accepted, taken apart the RFC's way:
 * gs2-header (through its second ','; an authzid holds no ','), the bare
 * message, and the client nonce (after "n=USER,r=", up to ',').
 */
struct fz_first {
	struct fz_msg gs2, bare, cnonce;
};

static void split_first(const char *s, size_t len, struct fz_first *f)
{
	const char *c1 = memchr(s, ',', len), *c2, *r, *end = s + len;

	CHECK(c1);
	c2 = memchr(c1 + 1, ',', (size_t)(end - c1 - 1));
	CHECK(c2);
	f->gs2.s = s;
	f->gs2.len = (size_t)(c2 + 1 - s);
	f->bare.s = c2 + 1;
	f->bare.len = (size_t)(end - c2 - 1);
	CHECK(f->bare.len > 2 && memcmp(f->bare.s, "n=", 2) == 0);
	r = memchr(f->bare.s, ',', f->bare.len);
	CHECK(r && end - r > 3 && memcmp(r, ",r=", 3) == 0);
	f->cnonce.s = r + 3;
	f->cnonce.len = (size_t)(end - f->cnonce.s);
	r = memchr(f->cnonce.s, ',', f->cnonce.len);
	if (r)
		f->cnonce.len = (size_t)(r - f->cnonce.s);
}

/*
 * The server-first-message: "r=" cnonce snonce ",s=" salt ",i=" rounds.
 * For "user" exactly RFC 7677's salt and rounds; for anyone else a 16-byte
 * salt and 4096 rounds.  Returns the nonce.
 */
static struct fz_msg check_server_first(const uint8_t *out, size_t len,
					const struct fz_first *f, bool known)
{
	const char *s = (const char *)out, *salt;
	size_t nlen = f->cnonce.len + strlen(RFC_SNONCE), rest;
	struct fz_msg nonce;

	CHECK(len <= OUT_MAX);
	CHECK(len > 2 + nlen && memcmp(s, "r=", 2) == 0);
	CHECK(memcmp(s + 2, f->cnonce.s, f->cnonce.len) == 0);
	CHECK(memcmp(s + 2 + f->cnonce.len, RFC_SNONCE,
		     strlen(RFC_SNONCE)) == 0);
	nonce.s = s + 2;
	nonce.len = nlen;
	salt = s + 2 + nlen;
	rest = len - 2 - nlen;
	if (known) {
		CHECK(msg_is((const uint8_t *)salt, rest,
			     ",s=" RFC_SALT64 ",i=4096"));
	} else {
		/* base64 of 16 bytes is 24 characters. */
		CHECK(rest == 3 + 24 + 7 && memcmp(salt, ",s=", 3) == 0 &&
		      memcmp(salt + 3 + 24, ",i=4096", 7) == 0);
	}
	return nonce;
}

/* AuthMessage: bare "," server-first "," client-final-without-proof. */
static char *auth_message(const struct fz_first *f, const uint8_t *sf,
			  size_t sf_len, const char *cf, size_t cf_len,
			  size_t *len)
{
	char *m = malloc(f->bare.len + sf_len + cf_len + 2);

	CHECK(m);
	memcpy(m, f->bare.s, f->bare.len);
	m[f->bare.len] = ',';
	memcpy(m + f->bare.len + 1, sf, sf_len);
	m[f->bare.len + 1 + sf_len] = ',';
	memcpy(m + f->bare.len + 2 + sf_len, cf, cf_len);
	*len = f->bare.len + sf_len + cf_len + 2;
	return m;
}

/* ClientProof and ServerSignature of "user" / "pencil" over am. */
static void honest(const char *am, size_t am_len, uint8_t proof[KEY_LEN],
		   uint8_t sig[KEY_LEN])
{
	uint8_t client_sig[KEY_LEN];

	ref_hmac(fz_stored_key, KEY_LEN, am, am_len, client_sig);
	for (size_t i = 0; i < KEY_LEN; i++)
		proof[i] = (uint8_t)(fz_client_key[i] ^ client_sig[i]);
	ref_hmac(fz_server_key, KEY_LEN, am, am_len, sig);
}

/* server-final-message "v=" base64(ServerSignature). */
static void check_server_final(const uint8_t *out, size_t len,
			       const uint8_t sig[KEY_LEN])
{
	char want[64] = "v=";

	ref_b64(sig, KEY_LEN, want + 2, sizeof(want) - 2);
	CHECK(msg_is(out, len, want));
}

struct fz_run {
	void *state;
	const uint8_t *out;
	size_t out_len;
	const char *why;
	enum auth_step rc;
};

static void run_start(struct fz_run *r, const char *first, size_t len)
{
	r->out = NULL;
	r->out_len = 0;
	r->why = NULL;
	r->rc = fz_mech->start(&r->state, &fz_db, (const uint8_t *)first, len,
			       &r->out, &r->out_len, &r->why);
	CHECK(r->rc == AUTH_STEP_CONTINUE || r->rc == AUTH_STEP_FAIL);
	if (r->rc == AUTH_STEP_FAIL)
		CHECK(r->why && r->why[0]);
}

/* The client-final-message; the exchange is over afterwards. */
static enum auth_step run_step(struct fz_run *r, const char *final,
			       size_t len)
{
	const uint8_t *out = NULL;
	size_t out_len = 0;
	const char *why = NULL;

	r->out = NULL;
	r->out_len = 0;
	r->why = NULL;
	r->rc = fz_mech->step(r->state, (const uint8_t *)final, len, &r->out,
			      &r->out_len, &r->why);
	CHECK(r->rc == AUTH_STEP_DONE || r->rc == AUTH_STEP_FAIL);
	if (r->rc == AUTH_STEP_FAIL) {
		CHECK(r->why && r->why[0]);
	} else {
		CHECK(r->out && r->out_len <= OUT_MAX);
		CHECK(strcmp(fz_mech->user(r->state), RFC_USER) == 0);
	}
	/* Nothing after the end of an exchange, not even the same again. */
	CHECK(fz_mech->step(r->state, (const uint8_t *)final, len, &out,
			    &out_len, &why) == AUTH_STEP_FAIL);
	CHECK(why && why[0]);
	return r->rc;
}

static void run_end(struct fz_run *r)
{
	fz_mech->free_state(r->state);
	r->state = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	const char *in = (const char *)data, *first = in, *final = NULL;
	const char *p_at;
	size_t first_len = size, final_len = 0, am_len, sf_len, n;
	struct fz_run r1, r2, r3;
	struct fz_first f;
	struct fz_msg nonce;
	uint8_t sf[OUT_MAX], proof[KEY_LEN], sig[KEY_LEN];
	char proof64[64], *am, *msg;
	bool known;

	if (!ready) {
		fz_init();
		ready = true;
	}
	for (size_t i = size; i > 0; i--) {
		if (data[i - 1] == 0) {
			first_len = i - 1;
			final = in + i;
			final_len = size - i;
			break;
		}
	}

	run_start(&r1, first, first_len);
	if (r1.rc == AUTH_STEP_FAIL) {
		run_end(&r1);
		return 0;
	}
	CHECK(r1.out && r1.out_len > 0 && r1.out_len <= OUT_MAX);
	known = strcmp(fz_mech->user(r1.state), RFC_USER) == 0;
	split_first(first, first_len, &f);
	nonce = check_server_first(r1.out, r1.out_len, &f, known);
	sf_len = r1.out_len;
	memcpy(sf, r1.out, sf_len);
	nonce.s = (const char *)sf + 2;

	/* 1. The input's client-final-message. */
	if (final) {
		if (run_step(&r1, final, final_len) == AUTH_STEP_DONE) {
			p_at = find_last(final, final_len, ",p=");
			CHECK(p_at);
			am = auth_message(&f, sf, sf_len, final,
					  (size_t)(p_at - final), &am_len);
			honest(am, am_len, proof, sig);
			free(am);
			n = ref_b64(proof, KEY_LEN, proof64, sizeof(proof64));
			/* The right proof, padded or not. */
			p_at += 3;
			CHECK((size_t)(final + final_len - p_at) == n ||
			      (size_t)(final + final_len - p_at) == n - 1);
			CHECK(memcmp(p_at, proof64,
				     (size_t)(final + final_len - p_at)) == 0);
			check_server_final(r1.out, r1.out_len, sig);
		}
		if (first_len == strlen(RFC_CLIENT_FIRST) &&
		    memcmp(first, RFC_CLIENT_FIRST, first_len) == 0 &&
		    msg_is((const uint8_t *)final, final_len,
			   RFC_CLIENT_FINAL)) {
			CHECK(r1.rc == AUTH_STEP_DONE);
			CHECK(msg_is(r1.out, r1.out_len, RFC_SERVER_FINAL));
		}
	}
	run_end(&r1);

	/* 2. An honest client's: "c=" base64(gs2) ",r=" nonce ",p=" proof. */
	run_start(&r2, first, first_len);
	CHECK(r2.rc == AUTH_STEP_CONTINUE);
	CHECK(r2.out_len == sf_len && memcmp(r2.out, sf, sf_len) == 0);
	msg = malloc(2 + 4 * (f.gs2.len / 3 + 1) + 1 + 3 + nonce.len + 3 +
		     sizeof(proof64));
	CHECK(msg);
	memcpy(msg, "c=", 2);
	n = 2 + ref_b64((const uint8_t *)f.gs2.s, f.gs2.len, msg + 2,
			4 * (f.gs2.len / 3 + 1) + 1);
	memcpy(msg + n, ",r=", 3);
	memcpy(msg + n + 3, nonce.s, nonce.len);
	n += 3 + nonce.len;
	am = auth_message(&f, sf, sf_len, msg, n, &am_len);
	honest(am, am_len, proof, sig);
	free(am);
	memcpy(msg + n, ",p=", 3);
	n += 3 + ref_b64(proof, KEY_LEN, msg + n + 3, sizeof(proof64));
	CHECK(run_step(&r2, msg, n) ==
	      (known && n <= SCRAM_MSG_MAX ? AUTH_STEP_DONE : AUTH_STEP_FAIL));
	if (r2.rc == AUTH_STEP_DONE)
		check_server_final(r2.out, r2.out_len, sig);
	free(msg);
	run_end(&r2);

	/* 3. The input's client-final with the right proof for it. */
	if (!final || !known)
		return 0;
	p_at = find_last(final, final_len, ",p=");
	n = p_at ? (size_t)(p_at - final) : final_len;
	msg = malloc(n + 3 + sizeof(proof64));
	CHECK(msg);
	memcpy(msg, final, n);
	am = auth_message(&f, sf, sf_len, msg, n, &am_len);
	honest(am, am_len, proof, sig);
	free(am);
	memcpy(msg + n, ",p=", 3);
	n += 3 + ref_b64(proof, KEY_LEN, msg + n + 3, sizeof(proof64));
	run_start(&r3, first, first_len);
	CHECK(r3.rc == AUTH_STEP_CONTINUE);
	if (run_step(&r3, msg, n) == AUTH_STEP_DONE) {
		const char *r = find(msg, n, ",r=");

		CHECK(n > 2 && memcmp(msg, "c=", 2) == 0);
		CHECK(r && (size_t)(msg + n - r) > 3 + nonce.len);
		CHECK(memcmp(r + 3, nonce.s, nonce.len) == 0 &&
		      r[3 + nonce.len] == ',');
		check_server_final(r3.out, r3.out_len, sig);
	}
	free(msg);
	run_end(&r3);
	return 0;
}
