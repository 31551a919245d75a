/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Corpus replayer for tests/fuzz/fuzz-nbd.c without libFuzzer: built with
 * the project's compiler (gcc, and its sanitizers in an ASan build), it
 * calls LLVMFuzzerTestOneInput once on every input given on the command
 * line, the way libFuzzer runs a file: a FILE is one input; a DIR means
 * every regular file below it (recursively, in name order).  Each input is
 * passed in a heap buffer of exactly its size, so that ASan sees a read past
 * its end.  A violated invariant in the fuzzer aborts; the replay fails if
 * an input cannot be read or there is no input at all.
 *
 *   fuzz-nbd-replay FILE|DIR...      (meson test: over tests/fuzz/corpus)
 *
 * Ends with "summary: N inputs replayed (B bytes), 0 crashes".
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned long n_inputs;
static unsigned long long n_bytes;

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, got;

	if (!f) {
		fprintf(stderr, "fuzz-nbd-replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			uint8_t *nb;

			cap = cap ? cap * 2 : 4096;
			nb = realloc(buf, cap);
			if (!nb) {
				fprintf(stderr, "fuzz-nbd-replay: %s: out of memory\n", path);
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		fprintf(stderr, "fuzz-nbd-replay: %s: read error\n", path);
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);

	/* Exactly LEN bytes (at least one, so that an empty input still gets a
	 * valid pointer), as libFuzzer passes them. */
	uint8_t *data = malloc(len ? len : 1);

	if (!data) {
		fprintf(stderr, "fuzz-nbd-replay: %s: out of memory\n", path);
		free(buf);
		return -1;
	}
	if (len)
		memcpy(data, buf, len);
	free(buf);
	printf("replay %s (%zu bytes)\n", path, len);
	fflush(stdout);
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	n_inputs++;
	n_bytes += len;
	return 0;
}

static int replay_path(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "fuzz-nbd-replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);

	struct dirent **ents;
	int n = scandir(path, &ents, NULL, alphasort), rc = 0;

	if (n < 0) {
		fprintf(stderr, "fuzz-nbd-replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;

		if (rc == 0 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			size_t plen = strlen(path) + 1 + strlen(name) + 1;
			char *sub = malloc(plen);

			if (!sub) {
				fprintf(stderr, "fuzz-nbd-replay: out of memory\n");
				rc = -1;
			} else {
				snprintf(sub, plen, "%s/%s", path, name);
				rc = replay_path(sub);
				free(sub);
			}
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i]) < 0)
			return 1;
	if (n_inputs == 0) {
		fprintf(stderr, "fuzz-nbd-replay: no input files\n");
		return 1;
	}
	printf("summary: %lu inputs replayed (%llu bytes), 0 crashes\n", n_inputs, n_bytes);
	return 0;
}
