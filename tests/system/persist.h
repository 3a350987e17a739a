/*
 * Shared by the persistence system tests (persist-restart, persist-kill):
 * a cicada with "persistence true" and "durability strict" whose SQLite
 * database lives in a temporary directory of its own, so that it survives
 * broker_stop()/broker_kill() and broker_restart() (harness.h) and is
 * removed at the end.
 */
#ifndef CICADA_TESTS_SYSTEM_PERSIST_H
#define CICADA_TESTS_SYSTEM_PERSIST_H

#include <stdbool.h>

#include "tests/integration/harness.h"

struct pbroker {
	struct broker_proc b;
	char dbdir[64]; /* /tmp/cicada-persist-XXXXXX */
	char db[128]; /* dbdir/cicada.db */
};

/*
 * Create the database directory and start cicada with "persistence true",
 * "persistence_file DB", "durability strict" and the extra lines (may be
 * NULL).  Returns 0 or -1.
 */
int persist_start(struct pbroker *pb, const char *extra_config);
/*
 * Stop cicada: SIGKILL when kill9, else SIGTERM (a clean exit, status 0,
 * is required); then start it again on the same port and database.
 * Returns 0, or -1 with a reason in why (if not NULL).
 */
int persist_restart(struct pbroker *pb, bool kill9, const char **why);
/*
 * Stop cicada if running (SIGTERM), then remove the database directory,
 * and, when remove_log, the harness's config, log and scratch directory.
 */
void persist_cleanup(struct pbroker *pb, bool remove_log);

/* Monotonic milliseconds. */
long persist_now_ms(void);

#endif
