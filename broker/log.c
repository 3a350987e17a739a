/*
 * Log line formatting and output.  Lines are formatted once into a stack
 * buffer and written with one write() per destination so lines from
 * different threads do not interleave.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "broker/log.h"

unsigned log_mask = LOGL_ERROR | LOGL_WARNING | LOGL_NOTICE | LOGL_INFO;

static unsigned log_dests = LOGD_STDERR;
static int log_fd = -1;
static bool log_timestamps = true;

int log_configure(unsigned dests, const char *file, unsigned levels,
		  bool timestamps)
{
	int fd = -1;

	if (dests & LOGD_FILE) {
		fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0)
			return -errno;
	}
	if (log_fd >= 0)
		close(log_fd);
	log_fd = fd;
	if ((dests & LOGD_SYSLOG) && !(log_dests & LOGD_SYSLOG))
		openlog("cicada", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!(dests & LOGD_SYSLOG) && (log_dests & LOGD_SYSLOG))
		closelog();
	log_dests = dests;
	log_mask = levels;
	log_timestamps = timestamps;
	return 0;
}

void log_close(void)
{
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	if (log_dests & LOGD_SYSLOG)
		closelog();
}

static const char *level_name(unsigned level)
{
	switch (level) {
	case LOGL_ERROR: return "error";
	case LOGL_WARNING: return "warning";
	case LOGL_NOTICE: return "notice";
	case LOGL_INFO: return "info";
	default: return "debug";
	}
}

static int syslog_priority(unsigned level)
{
	switch (level) {
	case LOGL_ERROR: return LOG_ERR;
	case LOGL_WARNING: return LOG_WARNING;
	case LOGL_NOTICE: return LOG_NOTICE;
	case LOGL_INFO: return LOG_INFO;
	default: return LOG_DEBUG;
	}
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* nowhere left to report a failing log */
		buf += n;
		len -= (size_t)n;
	}
}

void log_write(unsigned level, const char *fmt, ...)
{
	char line[2048];
	size_t prefix = 0, len;
	va_list ap;
	int n;

	if (log_timestamps) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		prefix = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n = snprintf(line + prefix, sizeof(line) - prefix, ".%03ldZ ",
			     ts.tv_nsec / 1000000);
		prefix += n > 0 ? (size_t)n : 0;
	}
	n = snprintf(line + prefix, sizeof(line) - prefix, "%s: ",
		     level_name(level));
	len = prefix + (n > 0 ? (size_t)n : 0);
	va_start(ap, fmt);
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	if (n > 0)
		len += (size_t)n;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2; /* truncated; keep the newline */
	if (log_dests & LOGD_SYSLOG)
		syslog(syslog_priority(level), "%.*s", (int)(len - prefix),
		       line + prefix);
	line[len++] = '\n';
	if (log_dests & LOGD_STDERR)
		write_all(STDERR_FILENO, line, len);
	if (log_dests & LOGD_STDOUT)
		write_all(STDOUT_FILENO, line, len);
	if ((log_dests & LOGD_FILE) && log_fd >= 0)
		write_all(log_fd, line, len);
}
