/* Helpers of the persistence system tests (see persist.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/system/persist.h"

long persist_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int persist_start(struct pbroker *pb, const char *extra_config)
{
	char conf[1024];

	memset(pb, 0, sizeof(*pb));
	snprintf(pb->dbdir, sizeof(pb->dbdir), "/tmp/cicada-persist-XXXXXX");
	if (!mkdtemp(pb->dbdir)) {
		pb->dbdir[0] = '\0';
		return -1;
	}
	snprintf(pb->db, sizeof(pb->db), "%s/cicada.db", pb->dbdir);
	snprintf(conf, sizeof(conf),
		 "persistence true\npersistence_file %s\n"
		 "durability strict\n%s",
		 pb->db, extra_config ? extra_config : "");
	return broker_start(&pb->b, conf);
}

int persist_restart(struct pbroker *pb, bool kill9, const char **why)
{
	const char *dummy;

	if (!why)
		why = &dummy;
	if (kill9) {
		if (broker_kill(&pb->b) != 0) {
			*why = "cicada was not running when killed";
			return -1;
		}
	} else if (broker_stop(&pb->b) != 0) {
		*why = "cicada did not exit with status 0 on SIGTERM";
		return -1;
	}
	if (broker_restart(&pb->b) != 0) {
		*why = "cicada did not start again on the same database";
		return -1;
	}
	*why = NULL;
	return 0;
}

void persist_cleanup(struct pbroker *pb, bool remove_log)
{
	DIR *d;

	if (pb->b.pid > 0)
		broker_stop(&pb->b);
	if (pb->dbdir[0] && (d = opendir(pb->dbdir)) != NULL) {
		struct dirent *e;
		char path[512];

		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(path, sizeof(path), "%s/%s", pb->dbdir,
				 e->d_name);
			unlink(path);
		}
		closedir(d);
		rmdir(pb->dbdir);
	}
	if (remove_log)
		broker_remove_files(&pb->b);
}
