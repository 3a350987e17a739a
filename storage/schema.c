/*
 * The database schema, its version, and the way from each older version
 * to ours.
 *
 * schema_version holds one row.  migrations[v] takes a database from
 * version v to v + 1 (migrations[0] creates version 1 in an empty
 * database), so schema version 2 is one more entry in that table and a
 * bump of STORE_SCHEMA_VERSION; store_open() runs every step a database
 * needs in one transaction, and a crash halfway leaves the old version.
 * A database whose version is higher than ours was written by a newer
 * cicada; we refuse it rather than guess at what its tables mean.
 *
 * Client ids, topics and filters are BLOBs with their exact lengths:
 * they are UTF-8 that may hold any character, U+0000 included.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "storage/store_int.h"

static const char *const migrations[] = {
	/* 0 -> 1: the first schema. */
	"CREATE TABLE schema_version("
	"  one INTEGER PRIMARY KEY CHECK (one = 1),"
	"  version INTEGER NOT NULL);"
	/* Stored once, however many deliveries and retained entries. */
	"CREATE TABLE msg("
	"  id INTEGER PRIMARY KEY,"
	"  topic BLOB NOT NULL,"
	"  payload BLOB NOT NULL,"
	"  props BLOB NOT NULL,"
	"  qos INTEGER NOT NULL,"
	"  retain INTEGER NOT NULL,"
	"  expiry_at_ms INTEGER NOT NULL);"
	/*
	 * will_msg_id is NULL without a will, so that the partial index
	 * holds wills only and still serves will_msg_id = ?.
	 */
	"CREATE TABLE session("
	"  client_id BLOB PRIMARY KEY,"
	"  version INTEGER NOT NULL,"
	"  expiry_interval INTEGER NOT NULL,"
	"  offline_since INTEGER NOT NULL,"
	"  will_msg_id INTEGER,"
	"  will_delay INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX session_will ON session(will_msg_id)"
	"  WHERE will_msg_id IS NOT NULL;"
	"CREATE TABLE sub("
	"  client_id BLOB NOT NULL,"
	"  filter BLOB NOT NULL,"
	"  options INTEGER NOT NULL,"
	"  sub_id INTEGER NOT NULL,"
	"  PRIMARY KEY (client_id, filter)) WITHOUT ROWID;"
	/* sub_ids: packed little-endian uint32s. */
	"CREATE TABLE delivery("
	"  id INTEGER PRIMARY KEY,"
	"  client_id BLOB NOT NULL,"
	"  msg_id INTEGER NOT NULL,"
	"  packet_id INTEGER NOT NULL,"
	"  qos INTEGER NOT NULL,"
	"  state INTEGER NOT NULL,"
	"  retain INTEGER NOT NULL,"
	"  sub_ids BLOB NOT NULL);"
	/* A session's deliveries in order; a message's references. */
	"CREATE INDEX delivery_client ON delivery(client_id, id);"
	"CREATE INDEX delivery_msg ON delivery(msg_id);"
	"CREATE TABLE retained("
	"  topic BLOB PRIMARY KEY,"
	"  msg_id INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX retained_msg ON retained(msg_id);"
	"CREATE TABLE qos2_in("
	"  client_id BLOB NOT NULL,"
	"  packet_id INTEGER NOT NULL,"
	"  PRIMARY KEY (client_id, packet_id)) WITHOUT ROWID;",
	/* 1 -> 2: a parked will's Message Expiry Interval. */
	"ALTER TABLE session ADD COLUMN"
	"  will_expiry INTEGER NOT NULL DEFAULT 0;",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) ==
		       STORE_SCHEMA_VERSION,
	       "one migration per schema version");

/* The single integer of sql's first row; SQLITE_DONE when no row. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
	sqlite3_stmt *s;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ROW;
	}
	sqlite3_finalize(s);
	return rc;
}

int store_schema_read(sqlite3 *db, const char *path, int64_t *version,
		      char *err, size_t errlen)
{
	int64_t n;
	int rc;

	rc = query_int(db,
		       "SELECT count(*) FROM sqlite_master"
		       " WHERE type = 'table' AND name = 'schema_version'",
		       &n);
	if (rc != SQLITE_OK)
		return store_sqlite_err(db, path, err, errlen);
	if (n == 0) {
		rc = query_int(db,
			       "SELECT count(*) FROM sqlite_master"
			       " WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
			       &n);
		if (rc != SQLITE_OK)
			return store_sqlite_err(db, path, err, errlen);
		if (n) {
			snprintf(err, errlen,
				 "%s: not a cicada database (it has tables but "
				 "no schema_version)",
				 path);
			return -EPROTO;
		}
		*version = 0;
		return 0;
	}
	rc = query_int(db, "SELECT version FROM schema_version", version);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW || (rc == SQLITE_OK &&
						      *version < 1)) {
		snprintf(err, errlen,
			 "%s: table schema_version is damaged (it must hold "
			 "one version, 1 or more)",
			 path);
		return -EPROTO;
	}
	if (rc != SQLITE_OK)
		return store_sqlite_err(db, path, err, errlen);
	return 0;
}

int store_schema_refuse_newer(const char *path, int64_t version, char *err,
			      size_t errlen)
{
	if (version <= STORE_SCHEMA_VERSION)
		return 0;
	snprintf(err, errlen,
		 "database %s has schema version %" PRId64
		 "; this cicada reads up to %d: use a newer cicada",
		 path, version, STORE_SCHEMA_VERSION);
	return -EPROTO;
}

int store_schema_migrate(sqlite3 *db, const char *path, int64_t from,
			 char *err, size_t errlen)
{
	char sql[128];
	int64_t v;
	int rc;

	if (from >= STORE_SCHEMA_VERSION)
		return 0;
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return store_sqlite_err(db, path, err, errlen);
	/* Another process may have migrated it since we looked. */
	rc = store_schema_read(db, path, &v, err, errlen);
	if (rc == 0)
		rc = store_schema_refuse_newer(path, v, err, errlen);
	if (rc < 0)
		goto out_rollback;
	for (; v < STORE_SCHEMA_VERSION; v++) {
		if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL) !=
		    SQLITE_OK)
			goto out_sqlite;
	}
	snprintf(sql, sizeof(sql),
		 "INSERT OR REPLACE INTO schema_version(one, version)"
		 " VALUES (1, %d)",
		 STORE_SCHEMA_VERSION);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto out_sqlite;
	return 0;

out_sqlite:
	rc = store_sqlite_err(db, path, err, errlen);
out_rollback:
	if (!sqlite3_get_autocommit(db))
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}
