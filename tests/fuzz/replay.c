/*
 * Replay driver for the libFuzzer targets in a plain (non-clang, non-fuzzing)
 * build: main() reads every file named on the command line, or found directly
 * inside a directory named there, and passes its bytes to
 * LLVMFuzzerTestOneInput().  `make check` runs it over the seed corpora, so
 * every input that once crashed a parser stays a regression test.
 *
 *   fuzz_packet [-q] CORPUS_DIR_OR_FILE...
 *
 * Each input gets its own heap buffer of exactly its size, as under
 * libFuzzer, so a sanitizer build catches reads past the end.  Exit status:
 * 0 when every input was replayed, 1 when a file or directory could not be
 * read, 2 on bad usage; a crash in the target is a crash here too.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Optional in a target, as with libFuzzer. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static const char *prog = "replay";
static int quiet;		/* -q: do not name each input */
static unsigned long replayed;	/* inputs passed to the target */

/* Reads all of path into a new buffer of exactly its size. */
static int read_file(const char *path, uint8_t **data, size_t *size)
{
	FILE *f;
	struct stat st;
	uint8_t *buf;
	size_t len;
	int rc = -1;

	f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) != 0 || st.st_size < 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		goto out_close;
	}
	len = (size_t)st.st_size;
	/* malloc(0) may return NULL; the target still gets size 0. */
	buf = malloc(len ? len : 1);
	if (!buf) {
		fprintf(stderr, "%s: %s: out of memory\n", prog, path);
		goto out_close;
	}
	if (len && fread(buf, 1, len, f) != len) {
		fprintf(stderr, "%s: %s: short read\n", prog, path);
		free(buf);
		goto out_close;
	}
	*data = buf;
	*size = len;
	rc = 0;
out_close:
	fclose(f);
	return rc;
}

static int replay_file(const char *path)
{
	uint8_t *data;
	size_t size;

	if (read_file(path, &data, &size) != 0)
		return -1;
	/* stderr is unbuffered: the name is out before a crash. */
	if (!quiet)
		fprintf(stderr, "%s: %s (%zu bytes)\n", prog, path, size);
	LLVMFuzzerTestOneInput(data, size);
	free(data);
	replayed++;
	return 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Replays the regular files directly inside dir, in name order so that runs
 * are reproducible.  Hidden files (.gitkeep) and subdirectories are skipped.
 */
static int replay_dir(const char *dir)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;

	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "%s: %s: %s\n", prog, dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			char **p = realloc(names, ncap * sizeof(*names));

			if (!p)
				goto out_nomem;
			names = p;
			cap = ncap;
		}
		names[n] = strdup(de->d_name);
		if (!names[n])
			goto out_nomem;
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);

	for (size_t i = 0; i < n && rc == 0; i++) {
		size_t len = strlen(dir) + 1 + strlen(names[i]) + 1;
		char *path = malloc(len);
		struct stat st;

		if (!path)
			goto out_nomem;
		snprintf(path, len, "%s/%s", dir, names[i]);
		if (stat(path, &st) != 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
			rc = -1;
		} else if (S_ISREG(st.st_mode)) {
			rc = replay_file(path);
		}
		free(path);
	}
	goto out_free;

out_nomem:
	fprintf(stderr, "%s: %s: out of memory\n", prog, dir);
	rc = -1;
out_free:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return rc;
}

int main(int argc, char **argv)
{
	int first = 1;
	int rc = 0;

	if (argv[0] && argv[0][0]) {
		const char *slash = strrchr(argv[0], '/');

		prog = slash ? slash + 1 : argv[0];
	}
	if (argc > 1 && strcmp(argv[1], "-q") == 0) {
		quiet = 1;
		first = 2;
	}
	if (first >= argc) {
		fprintf(stderr, "usage: %s [-q] CORPUS_DIR_OR_FILE...\n", prog);
		return 2;
	}
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);

	for (int i = first; i < argc; i++) {
		struct stat st;

		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "%s: %s: %s\n", prog, argv[i], strerror(errno));
			rc = 1;
			continue;
		}
		if (S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]))
			rc = 1;
	}
	printf("%s: replayed %lu inputs\n", prog, replayed);
	return rc;
}
