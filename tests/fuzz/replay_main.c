/*
 * replay_main.c: a plain main() for libFuzzer targets, so ctest can replay
 * the committed corpora without clang or libFuzzer.
 *
 *   <target>_replay FILE_OR_DIR...
 *
 * Every regular file (directories are read one level deep, in name order)
 * is passed to LLVMFuzzerTestOneInput once; the empty input is run too.
 * A crash, a sanitizer report or an abort fails the test; so does finding
 * no input at all, which would otherwise hide a wrong corpus path.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* scandir */
#endif
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0, n;

  if (f == NULL) {
    perror(path);
    return -1;
  }
  for (;;) {
    if (len == cap) {
      uint8_t *nb;
      cap = cap ? cap * 2 : 4096;
      if ((nb = realloc(buf, cap)) == NULL) {
        fprintf(stderr, "%s: out of memory\n", path);
        free(buf);
        fclose(f);
        return -1;
      }
      buf = nb;
    }
    n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0)
      break;
  }
  if (ferror(f)) {
    perror(path);
    free(buf);
    fclose(f);
    return -1;
  }
  fclose(f);
  /* An exactly-sized copy, so ASan catches reads past the input's end. */
  {
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL) {
      free(buf);
      return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
  }
  return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
  return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_regular(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int main(int argc, char **argv) {
  long files = 0;
  int i, failed = 0;

  if (LLVMFuzzerInitialize != NULL)
    LLVMFuzzerInitialize(&argc, &argv);
  LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
  for (i = 1; i < argc; i++) {
    struct dirent **ents;
    struct stat st;
    int n, k;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      failed = 1;
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      failed |= run_file(argv[i]) != 0;
      files++;
      continue;
    }
    if ((n = scandir(argv[i], &ents, NULL, by_name)) < 0) {
      perror(argv[i]);
      failed = 1;
      continue;
    }
    for (k = 0; k < n; k++) {
      char path[4096];
      snprintf(path, sizeof(path), "%s/%s", argv[i], ents[k]->d_name);
      if (ents[k]->d_name[0] != '.' && is_regular(path)) {
        failed |= run_file(path) != 0;
        files++;
      }
      free(ents[k]);
    }
    free(ents);
  }
  printf("replayed %ld input(s)\n", files);
  if (files == 0) {
    fprintf(stderr, "no inputs found\n");
    return 1;
  }
  return failed;
}
