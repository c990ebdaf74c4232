/*
 * fuzz.h: shared by the libFuzzer targets in this directory.
 *
 * FUZZ_CHECK is the targets' assert: it stays on in release builds (assert
 * is compiled out by NDEBUG) and aborts, which libFuzzer and the replay
 * driver both report as a failure.
 */
#ifndef CRPC_FUZZ_H
#define CRPC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      abort();                                                                 \
    }                                                                          \
  } while (0)

#endif /* CRPC_FUZZ_H */
