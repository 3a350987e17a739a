/*
 * Authentication: password files loaded for listeners, CONNECT user name
 * and password checks, and the mechanisms of MQTT 5 enhanced
 * authentication [MQTT-4.12] (SCRAM-SHA-256, RFC 5802 / RFC 7677), behind
 * a small start/step/free interface so that another method is one more
 * table entry.  Crypto is wolfCrypt's.
 *
 * Names and passwords are bytes: no SASLprep.  A SCRAM user name has its
 * "=2C" and "=3D" escapes decoded and is then compared byte for byte with
 * the password file's names; use ASCII names and passwords for clients
 * that do apply SASLprep.
 */
#ifndef CICADA_BROKER_AUTH_H
#define CICADA_BROKER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct passwd_entry;

/* A loaded password file, shared by the listeners that name it. */
struct auth_db;

/*
 * Load and check a password file.  NULL after logging "FILE:LINE:
 * message" (or "FILE: error") when it cannot be used.
 */
struct auth_db *auth_db_load(const char *path);
struct auth_db *auth_db_ref(struct auth_db *db);
void auth_db_unref(struct auth_db *db);
/* The path it was loaded from. */
const char *auth_db_path(const struct auth_db *db);
/* Whether user (NUL-terminated) has an entry. */
bool auth_db_has_user(const struct auth_db *db, const char *user);

/*
 * Load every listener's password file once and free it again, printing
 * each error to stderr as "cicada: FILE:LINE: message": for --test-config.
 * Returns 0 when all load.
 */
int auth_test_config(const struct config *cfg);

/*
 * A CONNECT's user name and password against db.  Unknown users cost the
 * same work as known ones, and hashes are compared in constant time.
 */
bool auth_check_password(const struct auth_db *db, const uint8_t *user,
			 size_t user_len, const uint8_t *password,
			 size_t password_len);
/* One entry against a password (any of the three kinds). */
bool auth_entry_verify(const struct passwd_entry *e, const uint8_t *password,
		       size_t len);

/* ------------------------------------------------------------------ */
/* Enhanced authentication                                            */

/* What a mechanism's start or step decided. */
enum auth_step {
	AUTH_STEP_DONE,		/* authenticated; *out is the final data */
	AUTH_STEP_CONTINUE,	/* send *out in AUTH 0x18, wait for more */
	AUTH_STEP_FAIL,		/* refused; *why says why (for the log) */
};

struct auth_mech {
	const char *name;	/* Authentication Method, e.g. "SCRAM-SHA-256" */
	/*
	 * The client's first data (from CONNECT or AUTH 0x19).  *state is
	 * the mechanism's own, freed with free_state.  *out and *out_len
	 * point into *state and stay valid until the next call.
	 */
	enum auth_step (*start)(void **state, const struct auth_db *db,
				const uint8_t *in, size_t len,
				const uint8_t **out, size_t *out_len,
				const char **why);
	enum auth_step (*step)(void *state, const uint8_t *in, size_t len,
			       const uint8_t **out, size_t *out_len,
			       const char **why);
	/* The user a DONE exchange authenticated (NUL-terminated). */
	const char *(*user)(const void *state);
	void (*free_state)(void *state);
};

/* The mechanism of that name, or NULL when cicada does not offer it. */
const struct auth_mech *auth_mech_find(const uint8_t *name, size_t len);

/*
 * A connection's authentication: who it is, the method it chose in
 * CONNECT, the exchange in progress and, until CONNACK, the CONNECT it
 * came with (its bytes, decoded again when the exchange succeeds).
 */
struct auth_conn {
	const struct auth_mech *mech;	/* NULL: no enhanced auth */
	void *state;			/* exchange in progress, or NULL */
	char *user;			/* authenticated user, or NULL */
	uint8_t *connect;		/* CONNECT bytes until CONNACK */
	size_t connect_len;
};

void auth_conn_free(struct auth_conn *a);
/* Drop the exchange state (after DONE or FAIL). */
void auth_conn_end_exchange(struct auth_conn *a);

#endif
