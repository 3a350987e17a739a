/*
 * Password checks and SCRAM-SHA-256 (see auth.h).  Password files are
 * parsed by conf/passwd.c; this file does the hashing with wolfCrypt.
 *
 * SCRAM server side, RFC 5802 section 3 with SHA-256 (RFC 7677):
 *   client-first  gs2-header "n=" user ",r=" cnonce
 *   server-first  "r=" cnonce snonce ",s=" salt ",i=" iterations
 *   client-final  "c=" base64(gs2-header) ",r=" nonce ",p=" proof
 *   server-final  "v=" base64(ServerSignature)
 * An unknown user, or one whose password file entry is not a SCRAM
 * verifier, gets a salt derived from a per-file secret and the usual
 * iterations, and fails only at the proof: the exchange does not tell
 * which user names exist.  No channel binding ("p=" is refused; "y" is
 * accepted since we do not advertise a -PLUS method).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include "broker/auth.h"
#include "broker/log.h"
#include "conf/config.h"
#include "conf/passwd.h"

#define SHA256_LEN 32
#define SHA512_LEN 64

struct auth_db {
	atomic_int refs;
	char *path;
	struct passwd pw;
	uint8_t mock_key[SHA256_LEN]; /* salts of unknown SCRAM users */
};

/* ------------------------------------------------------------ helpers */

static bool ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	volatile uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d = (uint8_t)(d | (a[i] ^ b[i]));
	return d == 0;
}

static void wipe(void *p, size_t n)
{
	volatile uint8_t *v = p;

	while (n--)
		*v++ = 0;
}

static int random_bytes(uint8_t *out, size_t n)
{
	WC_RNG rng;
	int rc = wc_InitRng(&rng);

	if (rc)
		return rc;
	rc = wc_RNG_GenerateBlock(&rng, out, (word32)n);
	wc_FreeRng(&rng);
	return rc;
}

static int hmac_sha256(const uint8_t *key, size_t key_len,
		       const void *msg, size_t len, uint8_t out[SHA256_LEN])
{
	Hmac h;
	int rc = wc_HmacInit(&h, NULL, INVALID_DEVID);

	if (rc)
		return rc;
	rc = wc_HmacSetKey(&h, WC_SHA256, key, (word32)key_len);
	if (!rc)
		rc = wc_HmacUpdate(&h, msg, (word32)len);
	if (!rc)
		rc = wc_HmacFinal(&h, out);
	wc_HmacFree(&h);
	return rc;
}

/* Base64 without line breaks into out[0..cap); returns length or 0. */
static size_t b64_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	word32 n = (word32)cap;

	if (Base64_Encode_NoNl(in, (word32)len, (byte *)out, &n) != 0)
		return 0;
	return n;
}

/* The password cannot be a NULL pointer for wolfCrypt, even empty. */
static const uint8_t *nonnull(const uint8_t *p)
{
	return p ? p : (const uint8_t *)"";
}

/* SaltedPassword, ClientKey, StoredKey of RFC 5802 section 3. */
static int scram_stored_key(const uint8_t *pw, size_t pw_len,
			    const uint8_t *salt, size_t salt_len,
			    uint32_t iterations, uint8_t stored[SHA256_LEN])
{
	uint8_t salted[SHA256_LEN], client_key[SHA256_LEN];
	int rc;

	rc = wc_PBKDF2(salted, nonnull(pw), (int)pw_len, salt, (int)salt_len,
		       (int)iterations, SHA256_LEN, WC_SHA256);
	if (!rc)
		rc = hmac_sha256(salted, sizeof(salted), "Client Key", 10,
				 client_key);
	if (!rc)
		rc = wc_Sha256Hash(client_key, SHA256_LEN, stored);
	wipe(salted, sizeof(salted));
	wipe(client_key, sizeof(client_key));
	return rc;
}

/* -------------------------------------------------------- password check */

bool auth_entry_verify(const struct passwd_entry *e, const uint8_t *password,
		       size_t len)
{
	uint8_t out[SHA512_LEN];
	wc_Sha512 sha;
	bool ok = false;
	int rc = -1;

	if (len > 65535)
		return false;
	switch (e->kind) {
	case PASSWD_PBKDF2_SHA512:
		rc = wc_PBKDF2(out, nonnull(password), (int)len, e->salt,
			       (int)e->salt_len, (int)e->iterations,
			       SHA512_LEN, WC_SHA512);
		break;
	case PASSWD_SHA512:
		/* mosquitto 1.x: SHA512(password || salt). */
		rc = wc_InitSha512(&sha);
		if (rc)
			break;
		rc = wc_Sha512Update(&sha, nonnull(password), (word32)len);
		if (!rc)
			rc = wc_Sha512Update(&sha, e->salt, (word32)e->salt_len);
		if (!rc)
			rc = wc_Sha512Final(&sha, out);
		wc_Sha512Free(&sha);
		break;
	case PASSWD_SCRAM_SHA256:
		rc = scram_stored_key(password, len, e->salt, e->salt_len,
				      e->iterations, out);
		break;
	}
	if (rc == 0 && e->hash_len <= sizeof(out))
		ok = ct_equal(out, e->hash, e->hash_len);
	wipe(out, sizeof(out));
	return ok;
}

/* Work for unknown users, as much as mosquitto_passwd's default costs. */
static const struct passwd_entry dummy_entry = {
	.user = "",
	.kind = PASSWD_PBKDF2_SHA512,
	.iterations = 101,
	.salt_len = 12,
	.hash_len = SHA512_LEN,
};

bool auth_db_has_user(const struct auth_db *db, const char *user)
{
	return passwd_find(&db->pw, (const uint8_t *)user, strlen(user)) !=
	       NULL;
}

bool auth_check_password(const struct auth_db *db, const uint8_t *user,
			 size_t user_len, const uint8_t *password,
			 size_t password_len)
{
	const struct passwd_entry *e = passwd_find(&db->pw, user, user_len);

	if (!e) {
		auth_entry_verify(&dummy_entry, password, password_len);
		return false;
	}
	return auth_entry_verify(e, password, password_len);
}

/* ---------------------------------------------------------- the file */

struct auth_db *auth_db_load(const char *path)
{
	struct auth_db *db = calloc(1, sizeof(*db));
	char err[512];
	int rc;

	if (!db || !(db->path = strdup(path))) {
		log_at(LOGL_ERROR, "%s: out of memory", path);
		free(db);
		return NULL;
	}
	rc = passwd_load(&db->pw, path, err, sizeof(err));
	if (rc < 0) {
		log_at(LOGL_ERROR, "password_file %s", err);
		goto err;
	}
	if (random_bytes(db->mock_key, sizeof(db->mock_key)) != 0) {
		log_at(LOGL_ERROR, "%s: no random numbers for SCRAM", path);
		passwd_free(&db->pw);
		goto err;
	}
	atomic_init(&db->refs, 1);
	log_at(LOGL_INFO, "password_file %s: %zu users", path, db->pw.count);
	return db;
err:
	free(db->path);
	free(db);
	return NULL;
}

struct auth_db *auth_db_ref(struct auth_db *db)
{
	atomic_fetch_add(&db->refs, 1);
	return db;
}

void auth_db_unref(struct auth_db *db)
{
	if (!db || atomic_fetch_sub(&db->refs, 1) != 1)
		return;
	passwd_free(&db->pw);
	free(db->path);
	free(db);
}

const char *auth_db_path(const struct auth_db *db)
{
	return db->path;
}

int auth_test_config(const struct config *cfg)
{
	int rc = 0;

	for (size_t i = 0; i < cfg->listener_count; i++) {
		const char *path = cfg->listeners[i].password_file;
		struct passwd pw;
		char err[512];

		if (!path)
			continue;
		if (passwd_load(&pw, path, err, sizeof(err)) < 0) {
			fprintf(stderr, "cicada: %s\n", err);
			rc = -1;
			continue;
		}
		passwd_free(&pw);
	}
	return rc;
}

/* ------------------------------------------------------ SCRAM-SHA-256 */

#define SCRAM_MSG_MAX 1024	/* a client message; real ones are < 200 */
#define SCRAM_MOCK_ITER 4096
#define SCRAM_MOCK_SALT 16
#define SCRAM_NONCE_BYTES 18	/* 24 base64 characters */

/* Tests set a fixed server nonce (RFC 7677's example); NULL: random. */
static const char *scram_test_nonce;

struct scram {
	bool known;		/* the user has a SCRAM verifier */
	bool final_sent;	/* server-final produced: nothing more */
	char *user;
	uint8_t stored_key[SHA256_LEN];
	uint8_t server_key[SHA256_LEN];
	char gs2[SCRAM_MSG_MAX];	/* gs2-header as the client sent it */
	size_t gs2_len;
	char nonce[2 * SCRAM_MSG_MAX]; /* client nonce + server nonce */
	size_t nonce_len;
	/* client-first-message-bare "," server-first-message */
	char auth_msg[4 * SCRAM_MSG_MAX];
	size_t auth_len;
	char out[SCRAM_MSG_MAX];	/* the last server message */
	size_t out_len;
};

/* Printable ASCII but ',' [RFC 5802 section 7, "printable"]. */
static bool nonce_is_valid(const char *s, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7E || s[i] == ',')
			return false;
	return true;
}

/*
 * saslname: "=2C" is ',' and "=3D" is '='; any other '=' is an error.
 * Returns a new NUL-terminated string, or NULL (*why set).
 */
static char *decode_saslname(const char *s, size_t len, const char **why)
{
	char *out = malloc(len + 1);
	size_t n = 0;

	if (!out) {
		*why = "out of memory";
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\0') {
			*why = "NUL in SCRAM user name";
			goto err;
		}
		if (s[i] != '=') {
			out[n++] = s[i];
			continue;
		}
		if (len - i >= 3 && s[i + 1] == '2' && s[i + 2] == 'C')
			out[n++] = ',';
		else if (len - i >= 3 && s[i + 1] == '3' && s[i + 2] == 'D')
			out[n++] = '=';
		else {
			*why = "bad '=' escape in SCRAM user name";
			goto err;
		}
		i += 2;
	}
	if (n == 0) {
		*why = "empty SCRAM user name";
		goto err;
	}
	out[n] = '\0';
	return out;
err:
	free(out);
	return NULL;
}

/* The value of attribute "k=" at *p, up to ',' or end; advances *p. */
static bool take_attr(const char **p, const char *end, char k,
		      const char **val, size_t *len)
{
	const char *s = *p, *comma;

	if (end - s < 2 || s[0] != k || s[1] != '=')
		return false;
	s += 2;
	comma = memchr(s, ',', (size_t)(end - s));
	*val = s;
	*len = (size_t)((comma ? comma : end) - s);
	*p = comma ? comma + 1 : end;
	return true;
}

/* Credentials of a user, or the mock ones of an unknown user. */
static int scram_credentials(struct scram *st, const struct auth_db *db,
			     uint8_t *salt, size_t *salt_len, uint32_t *iter)
{
	const struct passwd_entry *e = db ? passwd_find(&db->pw,
		(const uint8_t *)st->user, strlen(st->user)) : NULL;
	uint8_t mac[SHA256_LEN];
	int rc;

	if (e && e->kind == PASSWD_SCRAM_SHA256) {
		st->known = true;
		memcpy(salt, e->salt, e->salt_len);
		*salt_len = e->salt_len;
		*iter = e->iterations;
		memcpy(st->stored_key, e->hash, SHA256_LEN);
		memcpy(st->server_key, e->server_key, SHA256_LEN);
		return 0;
	}
	/* Same salt every time for the same name, as a real one would be. */
	if (db)
		rc = hmac_sha256(db->mock_key, sizeof(db->mock_key), st->user,
				 strlen(st->user), mac);
	else
		rc = wc_Sha256Hash((const byte *)st->user,
				   (word32)strlen(st->user), mac);
	if (rc)
		return rc;
	memcpy(salt, mac, SCRAM_MOCK_SALT);
	*salt_len = SCRAM_MOCK_SALT;
	*iter = SCRAM_MOCK_ITER;
	return random_bytes(st->stored_key, SHA256_LEN);
}

static enum auth_step scram_start(void **state, const struct auth_db *db,
				  const uint8_t *in, size_t len,
				  const uint8_t **out, size_t *out_len,
				  const char **why)
{
	const char *s = (const char *)in, *end = s + len, *p = s;
	const char *val, *bare, *cnonce;
	size_t vlen, cnonce_len, salt_len = 0, n, snonce_len;
	struct scram *st;
	uint8_t salt[PASSWD_SALT_MAX], rnd[SCRAM_NONCE_BYTES];
	char salt64[PASSWD_SALT_MAX * 2], snonce[64];
	uint32_t iter = 0;
	char *authzid = NULL;
	int w;

	*state = NULL;
	if (!in || len == 0 || len > SCRAM_MSG_MAX) {
		*why = "no or oversized SCRAM client-first-message";
		return AUTH_STEP_FAIL;
	}
	/*
	 * RFC 5802's grammar has no NUL anywhere.  The message goes into the
	 * AuthMessage as text: a NUL would cut it short there, and the proof
	 * of a client that hashed all the bytes would not match.
	 */
	if (memchr(in, '\0', len)) {
		*why = "NUL in SCRAM client-first-message";
		return AUTH_STEP_FAIL;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		*why = "out of memory";
		return AUTH_STEP_FAIL;
	}
	*state = st;
	/* gs2-header: cbind flag, optional authzid. */
	if (end - p >= 2 && (p[0] == 'n' || p[0] == 'y') && p[1] == ',') {
		p += 2;
	} else {
		*why = p[0] == 'p' ? "SCRAM channel binding is not supported" :
				     "bad SCRAM gs2-header";
		return AUTH_STEP_FAIL;
	}
	if (p < end && *p == 'a') {
		if (!take_attr(&p, end, 'a', &val, &vlen) || vlen == 0) {
			*why = "bad SCRAM authzid";
			return AUTH_STEP_FAIL;
		}
		authzid = decode_saslname(val, vlen, why);
		if (!authzid)
			return AUTH_STEP_FAIL;
	} else if (p < end && *p == ',') {
		p++;
	} else {
		*why = "bad SCRAM gs2-header";
		return AUTH_STEP_FAIL;
	}
	/* take_attr consumed the ',' ending the authzid. */
	st->gs2_len = (size_t)(p - s);
	memcpy(st->gs2, s, st->gs2_len);
	bare = p;
	if (p < end && *p == 'm') {
		*why = "SCRAM mandatory extension not supported";
		goto fail_authzid;
	}
	if (!take_attr(&p, end, 'n', &val, &vlen)) {
		*why = "SCRAM client-first-message without n=";
		goto fail_authzid;
	}
	st->user = decode_saslname(val, vlen, why);
	if (!st->user)
		goto fail_authzid;
	if (authzid && strcmp(authzid, st->user) != 0) {
		*why = "SCRAM authzid differs from the user name";
		goto fail_authzid;
	}
	free(authzid);
	authzid = NULL;
	if (!take_attr(&p, end, 'r', &cnonce, &cnonce_len) ||
	    !nonce_is_valid(cnonce, cnonce_len)) {
		*why = "bad SCRAM client nonce";
		return AUTH_STEP_FAIL;
	}
	/* Optional extensions after r= are ignored (RFC 5802 section 5.1). */

	if (scram_credentials(st, db, salt, &salt_len, &iter) != 0) {
		*why = "SCRAM: crypto failure";
		return AUTH_STEP_FAIL;
	}
	if (scram_test_nonce) {
		snonce_len = strlen(scram_test_nonce);
		memcpy(snonce, scram_test_nonce, snonce_len);
	} else {
		if (random_bytes(rnd, sizeof(rnd)) != 0) {
			*why = "SCRAM: no random numbers";
			return AUTH_STEP_FAIL;
		}
		snonce_len = b64_encode(rnd, sizeof(rnd), snonce,
					sizeof(snonce));
	}
	n = b64_encode(salt, salt_len, salt64, sizeof(salt64));
	if (!n || !snonce_len) {
		*why = "SCRAM: encoding failure";
		return AUTH_STEP_FAIL;
	}
	memcpy(st->nonce, cnonce, cnonce_len);
	memcpy(st->nonce + cnonce_len, snonce, snonce_len);
	st->nonce_len = cnonce_len + snonce_len;
	w = snprintf(st->out, sizeof(st->out), "r=%.*s,s=%.*s,i=%u",
		     (int)st->nonce_len, st->nonce, (int)n, salt64, iter);
	if (w < 0 || (size_t)w >= sizeof(st->out)) {
		*why = "SCRAM: message too long";
		return AUTH_STEP_FAIL;
	}
	st->out_len = (size_t)w;
	/* AuthMessage so far: client-first-message-bare "," server-first. */
	w = snprintf(st->auth_msg, sizeof(st->auth_msg), "%.*s,%.*s",
		     (int)(end - bare), bare, (int)st->out_len, st->out);
	if (w < 0 || (size_t)w >= sizeof(st->auth_msg)) {
		*why = "SCRAM: message too long";
		return AUTH_STEP_FAIL;
	}
	st->auth_len = (size_t)w;
	*out = (const uint8_t *)st->out;
	*out_len = st->out_len;
	return AUTH_STEP_CONTINUE;

fail_authzid:
	free(authzid);
	return AUTH_STEP_FAIL;
}

static enum auth_step scram_step(void *state, const uint8_t *in, size_t len,
				 const uint8_t **out, size_t *out_len,
				 const char **why)
{
	struct scram *st = state;
	const char *s = (const char *)in, *end = s + len, *p = s, *val;
	const char *proof_at = NULL;
	uint8_t gs2[SCRAM_MSG_MAX], proof[SHA256_LEN + 4];
	uint8_t sig[SHA256_LEN], key[SHA256_LEN], h[SHA256_LEN];
	char sig64[64];
	size_t vlen, n;
	long dl;
	bool ok;
	int rc;

	if (st->final_sent || !in || len == 0 || len > SCRAM_MSG_MAX) {
		*why = "no or oversized SCRAM client-final-message";
		return AUTH_STEP_FAIL;
	}
	if (memchr(in, '\0', len)) {
		*why = "NUL in SCRAM client-final-message";
		return AUTH_STEP_FAIL;
	}
	/* c= must repeat the gs2-header of client-first. */
	if (!take_attr(&p, end, 'c', &val, &vlen)) {
		*why = "SCRAM client-final-message without c=";
		return AUTH_STEP_FAIL;
	}
	dl = passwd_base64_decode(val, vlen, gs2, sizeof(gs2));
	if (dl < 0 || (size_t)dl != st->gs2_len ||
	    memcmp(gs2, st->gs2, st->gs2_len) != 0) {
		*why = "SCRAM channel binding data differs from the gs2-header";
		return AUTH_STEP_FAIL;
	}
	if (!take_attr(&p, end, 'r', &val, &vlen) || vlen != st->nonce_len ||
	    memcmp(val, st->nonce, vlen) != 0) {
		*why = "SCRAM nonce mismatch";
		return AUTH_STEP_FAIL;
	}
	/* The proof is the last attribute; extensions may come before it. */
	for (const char *q = p; q < end; q++)
		if (end - q >= 2 && q[0] == 'p' && q[1] == '=' &&
		    (q == s || q[-1] == ','))
			proof_at = q;
	if (!proof_at) {
		*why = "SCRAM client-final-message without p=";
		return AUTH_STEP_FAIL;
	}
	dl = passwd_base64_decode(proof_at + 2, (size_t)(end - proof_at - 2),
				  proof, sizeof(proof));
	if (dl != SHA256_LEN) {
		*why = "bad SCRAM proof encoding";
		return AUTH_STEP_FAIL;
	}
	/* AuthMessage += "," client-final-message-without-proof. */
	n = (size_t)(proof_at - 1 - s);
	if (sizeof(st->auth_msg) - st->auth_len < n + 1) {
		*why = "SCRAM: message too long";
		return AUTH_STEP_FAIL;
	}
	st->auth_msg[st->auth_len++] = ',';
	memcpy(st->auth_msg + st->auth_len, s, n);
	st->auth_len += n;

	rc = hmac_sha256(st->stored_key, SHA256_LEN, st->auth_msg,
			 st->auth_len, sig);
	for (size_t i = 0; i < SHA256_LEN; i++)
		key[i] = (uint8_t)(proof[i] ^ sig[i]);
	if (!rc)
		rc = wc_Sha256Hash(key, SHA256_LEN, h);
	ok = rc == 0 && ct_equal(h, st->stored_key, SHA256_LEN) && st->known;
	wipe(key, sizeof(key));
	st->final_sent = true;
	if (!ok) {
		*why = st->known ? "SCRAM proof does not match (wrong password)" :
				   "SCRAM: unknown user or no SCRAM-SHA-256 "
				   "credential in the password file";
		return AUTH_STEP_FAIL;
	}
	if (hmac_sha256(st->server_key, SHA256_LEN, st->auth_msg,
			st->auth_len, sig) != 0 ||
	    !(n = b64_encode(sig, SHA256_LEN, sig64, sizeof(sig64)))) {
		*why = "SCRAM: crypto failure";
		return AUTH_STEP_FAIL;
	}
	st->out_len = (size_t)snprintf(st->out, sizeof(st->out), "v=%.*s",
				       (int)n, sig64);
	*out = (const uint8_t *)st->out;
	*out_len = st->out_len;
	return AUTH_STEP_DONE;
}

static const char *scram_user(const void *state)
{
	const struct scram *st = state;

	return st->user;
}

static void scram_free(void *state)
{
	struct scram *st = state;

	if (!st)
		return;
	free(st->user);
	wipe(st, sizeof(*st));
	free(st);
}

static const struct auth_mech mechs[] = {
	{
		.name = "SCRAM-SHA-256",
		.start = scram_start,
		.step = scram_step,
		.user = scram_user,
		.free_state = scram_free,
	},
};

const struct auth_mech *auth_mech_find(const uint8_t *name, size_t len)
{
	for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
		if (strlen(mechs[i].name) == len &&
		    memcmp(mechs[i].name, name, len) == 0)
			return &mechs[i];
	return NULL;
}

/* ------------------------------------------------- connection state */

void auth_conn_end_exchange(struct auth_conn *a)
{
	if (a && a->state) {
		a->mech->free_state(a->state);
		a->state = NULL;
	}
}

void auth_conn_free(struct auth_conn *a)
{
	if (!a)
		return;
	auth_conn_end_exchange(a);
	free(a->user);
	free(a->connect);
	free(a);
}
