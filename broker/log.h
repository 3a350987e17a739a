/*
 * Logging: levels, destinations (stderr, stdout, a file, syslog), and a
 * level check before any formatting so a disabled debug line costs a test
 * and a branch.  Connection lines carry client id and peer (conn_log in
 * conn.h).
 */
#ifndef CICADA_BROKER_LOG_H
#define CICADA_BROKER_LOG_H

#include <stdbool.h>

enum log_level {
	LOGL_ERROR = 1 << 0,
	LOGL_WARNING = 1 << 1,
	LOGL_NOTICE = 1 << 2,
	LOGL_INFO = 1 << 3,
	LOGL_DEBUG = 1 << 4,
};

enum log_dest {
	LOGD_STDERR = 1 << 0,
	LOGD_STDOUT = 1 << 1,
	LOGD_FILE = 1 << 2,
	LOGD_SYSLOG = 1 << 3,
};

/* Levels written; read without a call on every log line. */
extern unsigned log_mask;

/*
 * Set where lines go and which levels; file is used with LOGD_FILE.
 * Returns 0, or -errno when the file cannot be opened (the old settings
 * stay).
 */
int log_configure(unsigned dests, const char *file, unsigned levels,
		  bool timestamps);
void log_close(void);

void log_write(unsigned level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_at(level, ...)                                  \
	do {                                                \
		if (log_mask & (level))                     \
			log_write((level), __VA_ARGS__);    \
	} while (0)

#endif
