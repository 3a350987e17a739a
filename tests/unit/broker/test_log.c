/*
 * Unit tests for broker/log.c: the level mask checked before any
 * formatting, the line format (level names, optional UTC timestamps),
 * truncation of long lines with the newline kept, every destination
 * (file, stderr, stdout, syslog) getting the same line, and
 * log_configure() keeping the old settings when the file cannot be
 * opened.
 *
 * log.c is included to reset its statics between tests.  syslog(),
 * openlog() and closelog() are defined here and record their calls, so
 * the tests never write to the system log.
 */
/* Keep syslog() a plain call to the definition below (no __syslog_chk). */
#undef _FORTIFY_SOURCE

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker/log.c"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define ALL_LEVELS \
	(LOGL_ERROR | LOGL_WARNING | LOGL_NOTICE | LOGL_INFO | LOGL_DEBUG)
#define DEFAULT_LEVELS (LOGL_ERROR | LOGL_WARNING | LOGL_NOTICE | LOGL_INFO)
/* "2024-01-31T12:34:56.789Z " */
#define STAMP_LEN 25

/* ------------------------------------------------------- syslog seam */

static size_t openlog_calls, closelog_calls, syslog_calls;
static int syslog_priority_seen;
static char syslog_line[4096];
static const char *openlog_ident;
static int openlog_option, openlog_facility;

void openlog(const char *ident, int option, int facility)
{
	openlog_calls++;
	openlog_ident = ident;
	openlog_option = option;
	openlog_facility = facility;
}

void closelog(void)
{
	closelog_calls++;
}

void syslog(int priority, const char *format, ...)
{
	va_list ap;

	syslog_calls++;
	syslog_priority_seen = priority;
	va_start(ap, format);
	vsnprintf(syslog_line, sizeof(syslog_line), format, ap);
	va_end(ap);
}

/* -------------------------------------------------------------- fixture */

static char dir[64];
static char path_a[96], path_b[96];

static void setup(void)
{
	strcpy(dir, "/tmp/cicada-test-log-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path_a, sizeof(path_a), "%s/a.log", dir);
	snprintf(path_b, sizeof(path_b), "%s/b.log", dir);
	/* log.c's own defaults, whatever the previous test left. */
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	log_dests = LOGD_STDERR;
	log_mask = DEFAULT_LEVELS;
	log_timestamps = true;
	openlog_calls = closelog_calls = syslog_calls = 0;
	syslog_line[0] = '\0';
}

static void teardown(void)
{
	log_close();
	unlink(path_a);
	unlink(path_b);
	rmdir(dir);
}

/* ------------------------------------------------------------- helpers */

static char file_buf[1 << 18];

/* The whole file, NUL-terminated, in file_buf; its length. */
static size_t slurp(const char *path)
{
	int fd = open(path, O_RDONLY);
	size_t len = 0;
	ssize_t n;

	if (fd < 0) {
		ck_assert_int_eq(errno, ENOENT);
		file_buf[0] = '\0';
		return 0;
	}
	while ((n = read(fd, file_buf + len, sizeof(file_buf) - 1 - len)) > 0)
		len += (size_t)n;
	ck_assert_int_ge(n, 0);
	close(fd);
	file_buf[len] = '\0';
	return len;
}

static void to_file(const char *path, unsigned levels, bool timestamps)
{
	ck_assert_int_eq(log_configure(LOGD_FILE, path, levels, timestamps),
			 0);
}

static size_t nl_count(const char *s, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	return n;
}

/* --------------------------------------------------------- level names */

struct level_row {
	unsigned level;
	const char *name;
	int priority;
};

static const struct level_row level_rows[] = {
	{ LOGL_ERROR, "error", LOG_ERR },
	{ LOGL_WARNING, "warning", LOG_WARNING },
	{ LOGL_NOTICE, "notice", LOG_NOTICE },
	{ LOGL_INFO, "info", LOG_INFO },
	{ LOGL_DEBUG, "debug", LOG_DEBUG },
};

START_TEST(test_level_names)
{
	const struct level_row *r = &level_rows[_i];
	char want[64];
	size_t len;

	to_file(path_a, ALL_LEVELS, false);
	log_write(r->level, "value %d, %s", 42, "text");
	log_at(r->level, "%u%%", 100u);
	snprintf(want, sizeof(want), "%s: value 42, text\n%s: 100%%\n",
		 r->name, r->name);
	len = slurp(path_a);
	ck_assert_str_eq(file_buf, want);
	ck_assert_uint_eq(len, strlen(want));
}
END_TEST

/* ---------------------------------------------------------- level mask */

static int formatted; /* arguments evaluated */

static int bump(void)
{
	return ++formatted;
}

struct mask_row {
	unsigned mask;
	unsigned level;
	bool written;
};

static const struct mask_row mask_rows[] = {
	{ DEFAULT_LEVELS, LOGL_DEBUG, false },
	{ DEFAULT_LEVELS, LOGL_INFO, true },
	{ DEFAULT_LEVELS, LOGL_ERROR, true },
	{ LOGL_ERROR, LOGL_ERROR, true },
	{ LOGL_ERROR, LOGL_WARNING, false },
	{ LOGL_ERROR, LOGL_DEBUG, false },
	{ LOGL_DEBUG, LOGL_DEBUG, true },
	{ LOGL_DEBUG, LOGL_ERROR, false },
	{ LOGL_WARNING | LOGL_INFO, LOGL_NOTICE, false },
	{ LOGL_WARNING | LOGL_INFO, LOGL_INFO, true },
	{ ALL_LEVELS, LOGL_DEBUG, true },
	{ 0, LOGL_ERROR, false },
	{ 0, LOGL_DEBUG, false },
};

START_TEST(test_mask)
{
	const struct mask_row *r = &mask_rows[_i];
	unsigned level = r->level; /* checked at run time, not folded */

	formatted = 0;
	to_file(path_a, r->mask, false);
	ck_assert_uint_eq(log_mask, r->mask);
	log_at(level, "n=%d", bump());
	ck_assert_int_eq(formatted, r->written ? 1 : 0);
	slurp(path_a);
	if (r->written)
		ck_assert_str_eq(strchr(file_buf, ':'), ": n=1\n");
	else
		ck_assert_str_eq(file_buf, "");
}
END_TEST

/* ---------------------------------------------------------- timestamps */

START_TEST(test_timestamps)
{
	regex_t re;
	regmatch_t m[2];
	struct tm tm;
	time_t before, after, stamp;

	ck_assert_int_eq(regcomp(&re,
				 "^([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:"
				 "[0-9]{2}:[0-9]{2})\\.[0-9]{3}Z "
				 "notice: hello\n$",
				 REG_EXTENDED), 0);
	to_file(path_a, ALL_LEVELS, true);
	before = time(NULL);
	log_write(LOGL_NOTICE, "hello");
	after = time(NULL);
	ck_assert_uint_eq(slurp(path_a), STAMP_LEN + strlen("notice: hello\n"));
	ck_assert_msg(regexec(&re, file_buf, 2, m, 0) == 0, "line: %s",
		      file_buf);
	regfree(&re);
	/* UTC wall time of the write. */
	memset(&tm, 0, sizeof(tm));
	ck_assert_ptr_nonnull(strptime(file_buf, "%Y-%m-%dT%H:%M:%S", &tm));
	stamp = timegm(&tm);
	ck_assert_int_ge(stamp, before);
	ck_assert_int_le(stamp, after);

	/* Off again: the bare line. */
	to_file(path_b, ALL_LEVELS, false);
	log_write(LOGL_NOTICE, "hello");
	slurp(path_b);
	ck_assert_str_eq(file_buf, "notice: hello\n");
}
END_TEST

/* ---------------------------------------------------------- truncation */

struct trunc_row {
	size_t msg_len; /* bytes of message after "info: " */
	bool timestamps;
	size_t line_len; /* with the newline */
};

#define LINE_MAX_OUT 2047 /* line[2048], less the NUL vsnprintf needs */

static const struct trunc_row trunc_rows[] = {
	{ 0, false, 7 },
	{ 100, false, 107 },
	{ 2039, false, 2046 },
	{ 2040, false, LINE_MAX_OUT }, /* fits exactly */
	{ 2041, false, LINE_MAX_OUT },
	{ 2042, false, LINE_MAX_OUT },
	{ 3000, false, LINE_MAX_OUT },
	{ 100000, false, LINE_MAX_OUT },
	{ 2015, true, LINE_MAX_OUT }, /* fits exactly */
	{ 2016, true, LINE_MAX_OUT },
	{ 100000, true, LINE_MAX_OUT },
};

static char big[100001];

START_TEST(test_truncation)
{
	const struct trunc_row *r = &trunc_rows[_i];
	size_t prefix = (r->timestamps ? STAMP_LEN : 0) + strlen("info: ");
	size_t len, kept, i;

	memset(big, 'x', sizeof(big) - 1);
	big[r->msg_len] = '\0';
	to_file(path_a, ALL_LEVELS, r->timestamps);
	log_write(LOGL_INFO, "%s", big);
	log_write(LOGL_INFO, "next");
	len = slurp(path_a);

	/* The long line, cut, its newline kept; then the next line intact. */
	ck_assert_uint_eq(len, r->line_len + prefix + strlen("next\n"));
	ck_assert_uint_eq(nl_count(file_buf, len), 2);
	ck_assert_int_eq(file_buf[r->line_len - 1], '\n');
	ck_assert_mem_eq(file_buf + (r->timestamps ? STAMP_LEN : 0), "info: ",
			 6);
	kept = r->line_len - 1 - prefix;
	ck_assert_uint_eq(kept, r->msg_len < LINE_MAX_OUT - 1 - prefix ?
				r->msg_len : LINE_MAX_OUT - 1 - prefix);
	for (i = prefix; i < prefix + kept; i++)
		ck_assert_int_eq(file_buf[i], 'x');
	ck_assert_str_eq(file_buf + r->line_len +
			 (r->timestamps ? STAMP_LEN : 0), "info: next\n");
}
END_TEST

/* ---------------------------------------------------------- log_configure */

struct bad_file_row {
	const char *name; /* under the test directory; NULL: dir itself */
	bool make_file; /* create "file" first: name goes through it */
	int err;
};

static const struct bad_file_row bad_file_rows[] = {
	{ "missing/x.log", false, ENOENT },
	{ NULL, false, EISDIR },
	{ "file/x.log", true, ENOTDIR },
	{ "", false, EISDIR }, /* "dir/" */
};

START_TEST(test_configure_bad_file_keeps_settings)
{
	const struct bad_file_row *r = &bad_file_rows[_i];
	char bad[160], file[128];
	int old_fd;

	to_file(path_a, LOGL_ERROR | LOGL_INFO, false);
	old_fd = log_fd;
	log_write(LOGL_INFO, "one");
	snprintf(file, sizeof(file), "%s/file", dir);
	if (r->make_file) {
		int fd = open(file, O_WRONLY | O_CREAT, 0600);

		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	if (r->name)
		snprintf(bad, sizeof(bad), "%s/%s", dir, r->name);
	else
		snprintf(bad, sizeof(bad), "%s", dir);

	ck_assert_int_eq(log_configure(LOGD_FILE | LOGD_STDERR | LOGD_SYSLOG,
				       bad, ALL_LEVELS, true), -r->err);
	/* Nothing changed: levels, destinations, file, format. */
	ck_assert_uint_eq(log_mask, LOGL_ERROR | LOGL_INFO);
	ck_assert_uint_eq(log_dests, LOGD_FILE);
	ck_assert_int_eq(log_fd, old_fd);
	ck_assert(!log_timestamps);
	ck_assert_uint_eq(openlog_calls, 0);
	log_at(LOGL_DEBUG, "hidden");
	log_write(LOGL_INFO, "two");
	slurp(path_a);
	ck_assert_str_eq(file_buf, "info: one\ninfo: two\n");
	ck_assert_uint_eq(syslog_calls, 0);
	if (r->make_file)
		unlink(file);
}
END_TEST

START_TEST(test_configure_replaces_file)
{
	int old_fd;

	to_file(path_a, ALL_LEVELS, false);
	old_fd = log_fd;
	log_write(LOGL_INFO, "to a");
	to_file(path_b, ALL_LEVELS, false);
	ck_assert_int_ne(log_fd, old_fd);
	/* The old descriptor was closed. */
	errno = 0;
	ck_assert_int_eq(fcntl(old_fd, F_GETFD), -1);
	ck_assert_int_eq(errno, EBADF);
	log_write(LOGL_INFO, "to b");
	slurp(path_a);
	ck_assert_str_eq(file_buf, "info: to a\n");
	slurp(path_b);
	ck_assert_str_eq(file_buf, "info: to b\n");

	/* Without LOGD_FILE the file is closed and no longer written. */
	old_fd = log_fd;
	ck_assert_int_eq(log_configure(LOGD_SYSLOG, NULL, ALL_LEVELS, false),
			 0);
	ck_assert_int_eq(log_fd, -1);
	ck_assert_int_eq(fcntl(old_fd, F_GETFD), -1);
	log_write(LOGL_INFO, "nowhere");
	slurp(path_b);
	ck_assert_str_eq(file_buf, "info: to b\n");
}
END_TEST

/* Appended to what is there; created 0640 (less the umask). */
START_TEST(test_file_append_and_mode)
{
	struct stat st;
	int fd = open(path_a, O_WRONLY | O_CREAT, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "old\n", 4), 4);
	close(fd);
	to_file(path_a, ALL_LEVELS, false);
	log_write(LOGL_ERROR, "new");
	slurp(path_a);
	ck_assert_str_eq(file_buf, "old\nerror: new\n");

	umask(022);
	to_file(path_b, ALL_LEVELS, false);
	ck_assert_int_eq(stat(path_b, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(fcntl(log_fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}
END_TEST

START_TEST(test_close)
{
	to_file(path_a, ALL_LEVELS, false);
	log_write(LOGL_INFO, "before");
	log_close();
	ck_assert_int_eq(log_fd, -1);
	log_write(LOGL_INFO, "after");
	slurp(path_a);
	ck_assert_str_eq(file_buf, "info: before\n");
	ck_assert_uint_eq(closelog_calls, 0); /* syslog was never on */
	log_close(); /* twice is harmless */
}
END_TEST

/* ---------------------------------------------- stderr, stdout, syslog */

/* Point fd at path; returns a copy of the old fd to restore. */
static int redirect(int fd, const char *path)
{
	int saved = dup(fd), f = open(path, O_WRONLY | O_CREAT | O_TRUNC,
				      0600);

	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(f, 0);
	ck_assert_int_ge(dup2(f, fd), 0);
	close(f);
	return saved;
}

static void restore(int fd, int saved)
{
	ck_assert_int_ge(dup2(saved, fd), 0);
	close(saved);
}

struct dest_row {
	unsigned dests;
};

static const struct dest_row dest_rows[] = {
	{ LOGD_STDERR },
	{ LOGD_STDOUT },
	{ LOGD_FILE },
	{ LOGD_STDERR | LOGD_STDOUT },
	{ LOGD_STDERR | LOGD_FILE | LOGD_SYSLOG },
	{ LOGD_STDERR | LOGD_STDOUT | LOGD_FILE | LOGD_SYSLOG },
	{ LOGD_SYSLOG },
	{ 0 },
};

START_TEST(test_destinations)
{
	const struct dest_row *r = &dest_rows[_i];
	char out_path[96], err_path[96];
	static const char line[] = "warning: to all 7\n";
	int saved_out, saved_err;

	snprintf(out_path, sizeof(out_path), "%s/stdout", dir);
	snprintf(err_path, sizeof(err_path), "%s/stderr", dir);
	fflush(stdout);
	fflush(stderr);
	saved_out = redirect(STDOUT_FILENO, out_path);
	saved_err = redirect(STDERR_FILENO, err_path);
	ck_assert_int_eq(log_configure(r->dests, path_a, ALL_LEVELS, false),
			 0);
	log_write(LOGL_WARNING, "to all %d", 7);
	restore(STDOUT_FILENO, saved_out);
	restore(STDERR_FILENO, saved_err);

	slurp(out_path);
	ck_assert_str_eq(file_buf, r->dests & LOGD_STDOUT ? line : "");
	slurp(err_path);
	ck_assert_str_eq(file_buf, r->dests & LOGD_STDERR ? line : "");
	slurp(path_a);
	ck_assert_str_eq(file_buf, r->dests & LOGD_FILE ? line : "");
	if (r->dests & LOGD_SYSLOG) {
		ck_assert_uint_eq(syslog_calls, 1);
		ck_assert_str_eq(syslog_line, "warning: to all 7");
		ck_assert_int_eq(syslog_priority_seen, LOG_WARNING);
	} else {
		ck_assert_uint_eq(syslog_calls, 0);
	}
	unlink(out_path);
	unlink(err_path);
}
END_TEST

/* syslog: opened once, the right priority, no timestamp, no newline. */
START_TEST(test_syslog)
{
	ck_assert_int_eq(log_configure(LOGD_SYSLOG, NULL, ALL_LEVELS, true),
			 0);
	ck_assert_uint_eq(openlog_calls, 1);
	ck_assert_str_eq(openlog_ident, "cicada");
	ck_assert_int_eq(openlog_option, LOG_PID | LOG_NDELAY);
	ck_assert_int_eq(openlog_facility, LOG_DAEMON);
	for (size_t i = 0; i < NELEM(level_rows); i++) {
		char want[64];

		log_write(level_rows[i].level, "n%zu", i);
		snprintf(want, sizeof(want), "%s: n%zu", level_rows[i].name, i);
		ck_assert_str_eq(syslog_line, want);
		ck_assert_int_eq(syslog_priority_seen, level_rows[i].priority);
	}
	/* Long lines are cut as for the other destinations. */
	memset(big, 'y', 5000);
	big[5000] = '\0';
	log_write(LOGL_INFO, "%s", big);
	ck_assert_uint_eq(strlen(syslog_line),
			  LINE_MAX_OUT - 1 - STAMP_LEN);
	ck_assert_mem_eq(syslog_line, "info: yyy", 9);

	/* Still on: not opened again; off after log_close. */
	ck_assert_int_eq(log_configure(LOGD_SYSLOG | LOGD_STDERR, NULL,
				       ALL_LEVELS, false), 0);
	ck_assert_uint_eq(openlog_calls, 1);
	log_close();
	ck_assert_uint_eq(closelog_calls, 1);
}
END_TEST

/* --------------------------------------------------------------- suite */

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_level_names, 0, NELEM(level_rows));
	tcase_add_loop_test(tc, test_mask, 0, NELEM(mask_rows));
	tcase_add_test(tc, test_timestamps);
	tcase_add_loop_test(tc, test_truncation, 0, NELEM(trunc_rows));
	tcase_add_loop_test(tc, test_configure_bad_file_keeps_settings, 0,
			    NELEM(bad_file_rows));
	tcase_add_test(tc, test_configure_replaces_file);
	tcase_add_test(tc, test_file_append_and_mode);
	tcase_add_test(tc, test_close);
	tcase_add_loop_test(tc, test_destinations, 0, NELEM(dest_rows));
	tcase_add_test(tc, test_syslog);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(log_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
