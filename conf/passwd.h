/*
 * Password files (password_file in cicada.conf(5)): one "user:hash" per
 * line, '#' comment lines and blank lines ignored, as mosquitto reads them.
 * Hashes cicada understands:
 *
 *   $7$ITER$SALT$HASH     mosquitto 2.x: PBKDF2-HMAC-SHA512, ITER rounds,
 *                         SALT and the 64-byte HASH in base64
 *   $6$SALT$HASH          mosquitto 1.x: SHA512(password || salt)
 *   SCRAM-SHA-256$ITER:SALT$STOREDKEY:SERVERKEY
 *                         PostgreSQL's SCRAM verifier (RFC 5802/7677):
 *                         good for CONNECT passwords and for MQTT 5
 *                         enhanced authentication with SCRAM-SHA-256
 *
 * Pure parsing: the base64 fields are decoded and checked for size here,
 * so that a bad line stops the broker at start with FILE:LINE; computing
 * and comparing hashes is the broker's business (broker/auth.c), so this
 * module needs no crypto library.  User names are bytes: no SASLprep or
 * other normalization.
 */
#ifndef CICADA_CONF_PASSWD_H
#define CICADA_CONF_PASSWD_H

#include <stddef.h>
#include <stdint.h>

enum passwd_kind {
	PASSWD_PBKDF2_SHA512,	/* $7$ */
	PASSWD_SHA512,		/* $6$ */
	PASSWD_SCRAM_SHA256,	/* SCRAM-SHA-256$ */
};

#define PASSWD_SALT_MAX 64	/* bytes of a decoded salt */
#define PASSWD_HASH_MAX 64	/* SHA-512 */
#define PASSWD_SCRAM_KEY_LEN 32	/* SHA-256 */
/* More rounds than any real file uses; keeps a typo from stalling CONNECT. */
#define PASSWD_ITER_MAX 10000000u

struct passwd_entry {
	char *user;		/* NUL-terminated, no ':' */
	size_t user_len;
	enum passwd_kind kind;
	uint32_t iterations;	/* $7$ and SCRAM; 0 for $6$ */
	unsigned line;		/* where it was read */
	size_t salt_len;
	size_t hash_len;	/* 64 ($7$, $6$), 32 (SCRAM StoredKey) */
	uint8_t salt[PASSWD_SALT_MAX];
	uint8_t hash[PASSWD_HASH_MAX];
	uint8_t server_key[PASSWD_SCRAM_KEY_LEN]; /* SCRAM only */
};

/* A loaded file: entries sorted by user name for passwd_find(). */
struct passwd {
	struct passwd_entry *entries;
	size_t count;
};

/*
 * Parse text[0..len) (the whole file; name is used in messages) into *pw.
 * Returns 0, -EINVAL for a bad line or a user listed twice, -ENOMEM; on
 * failure err holds "NAME:LINE: message" and *pw is empty.  err may be
 * NULL when errlen is 0.
 */
int passwd_parse(struct passwd *pw, const char *name, const char *text,
		 size_t len, char *err, size_t errlen);
/* Read and parse the file at path; -errno when it cannot be read. */
int passwd_load(struct passwd *pw, const char *path, char *err,
		size_t errlen);
/* The entry of a user (bytes, not NUL-terminated), or NULL. */
const struct passwd_entry *passwd_find(const struct passwd *pw,
				       const uint8_t *user, size_t len);
/* Release everything *pw holds; it is empty afterwards. */
void passwd_free(struct passwd *pw);

/*
 * Decode standard base64 (padding optional) from in[0..len) into
 * out[0..cap).  Returns the decoded length, or -1 for a bad character,
 * bad length or an output over cap.
 */
long passwd_base64_decode(const char *in, size_t len, uint8_t *out,
			  size_t cap);

#endif
