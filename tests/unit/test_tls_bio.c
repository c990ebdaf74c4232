/*
 * test_tls_bio.c: the TLS socket BIO (lib/tls_bio.c) when the socket is
 * full. Records gathered in a scratch buffer that the socket does not
 * take are held by the BIO; while it holds any, new records wait (retry)
 * whether gathered or not; a flush sends them once the peer reads; and
 * the peer gets every byte once, in order.
 *
 * A socketpair nobody reads fills deterministically, so no timing is
 * involved.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "tls_bio.h"

#define RECORD 1000
#define MAX_BYTES (64 * 1024 * 1024)

static uint8_t byte_at(size_t i) { return (uint8_t)(i * 7 + i / 251); }

static int write_record(BIO *b, size_t *sent) {
  uint8_t rec[RECORD];
  for (size_t i = 0; i < RECORD; i++)
    rec[i] = byte_at(*sent + i);
  int n = BIO_write(b, rec, RECORD);
  if (n == RECORD)
    *sent += RECORD;
  return n;
}

static void held_records_keep_order(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  int small = 16384;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  fcntl(sv[1], F_SETFL, fcntl(sv[1], F_GETFL) | O_NONBLOCK);
  BIO *b = crpc__tls_bio_new(sv[0], NULL);
  assert_non_null(b);

  /* Gathered writes until the full socket pushes back. */
  static uint8_t scratch[8192];
  size_t sent = 0;
  crpc__tls_bio_gather(b, scratch, sizeof scratch);
  int n;
  while ((n = write_record(b, &sent)) == RECORD && sent < MAX_BYTES)
    ;
  assert_int_equal(n, -1);
  assert_true(BIO_should_retry(b) && BIO_should_write(b));
  assert_int_equal(crpc__tls_bio_end_gather(b), 0);
  assert_true(BIO_ctrl_wpending(b) > 0); /* held, not lost */
  assert_int_equal(crpc__tls_bio_flush(b), 1);

  /* A record outside a gather waits behind the held ones too. */
  assert_int_equal(write_record(b, &sent), -1);
  assert_true(BIO_should_retry(b));
  assert_int_equal(BIO_flush(b), 0);
  assert_true(BIO_should_retry(b));

  /* The peer reads a little at a time while records keep coming: the
   * held bytes go first, the stream stays in order. */
  size_t target = sent + 200 * RECORD;
  uint8_t *got = malloc(target + RECORD);
  assert_non_null(got);
  size_t have = 0;
  int f = 1;
  for (long round = 0; f != 0 || have < sent || sent < target; round++) {
    if (round > 1000000)
      fail_msg("stuck: %zu of %zu bytes read", have, sent);
    size_t want = target + RECORD - have;
    ssize_t r = read(sv[1], got + have, want < 3000 ? want : 3000);
    if (r > 0)
      have += (size_t)r;
    else
      assert_true(r < 0 && errno == EAGAIN);
    if (have > sent)
      fail_msg("%zu bytes read, only %zu written", have, sent);
    if (sent < target) {
      crpc__tls_bio_gather(b, scratch, sizeof scratch);
      write_record(b, &sent); /* or it waits: retried next time round */
      assert_int_equal(crpc__tls_bio_end_gather(b), 0);
    }
    f = crpc__tls_bio_flush(b);
    assert_true(f >= 0);
  }
  assert_int_equal(BIO_ctrl_wpending(b), 0);
  assert_int_equal(BIO_flush(b), 1);
  assert_int_equal(write_record(b, &sent), RECORD); /* straight out */
  while (have < sent) {
    ssize_t r = read(sv[1], got + have, sent - have);
    assert_true(r > 0);
    have += (size_t)r;
  }
  assert_int_equal(have, sent);
  for (size_t i = 0; i < sent; i++)
    if (got[i] != byte_at(i))
      fail_msg("byte %zu of %zu differs", i, sent);
  free(got);
  BIO_free(b); /* frees what it held: ASan checks */
  close(sv[0]);
  close(sv[1]);
}

/* A BIO freed while it holds records frees them. */
static void free_while_holding(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  BIO *b = crpc__tls_bio_new(sv[0], NULL);
  assert_non_null(b);
  static uint8_t scratch[8192];
  size_t sent = 0;
  crpc__tls_bio_gather(b, scratch, sizeof scratch);
  while (write_record(b, &sent) == RECORD && sent < MAX_BYTES)
    ;
  assert_int_equal(crpc__tls_bio_end_gather(b), 0);
  assert_true(BIO_ctrl_wpending(b) > 0);
  BIO_free(b);
  close(sv[0]);
  close(sv[1]);
}

/* A peer that is gone: an error, not a signal or a retry. */
static void closed_peer(void **state) {
  (void)state;
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  close(sv[1]);
  BIO *b = crpc__tls_bio_new(sv[0], NULL);
  assert_non_null(b);
  size_t sent = 0;
  assert_int_equal(write_record(b, &sent), -1); /* EPIPE, no SIGPIPE */
  assert_false(BIO_should_retry(b));
  BIO_free(b);
  close(sv[0]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(held_records_keep_order),
      cmocka_unit_test(free_while_holding),
      cmocka_unit_test(closed_peer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
