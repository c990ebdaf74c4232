/*
 * Fuzz target: the message deframer and unpacking (lib/codec.c), the path
 * every received DATA byte takes. The first input byte picks how the rest
 * is cut into chunks (as HTTP/2 DATA frames would cut it) and which
 * grpc-encoding is in force; every complete message is then unpacked as a
 * HelloRequest. Checks: chunking never changes what comes out, no message
 * exceeds the limit, every failure is one of the statuses the spec names.
 */
#include <string.h>

#include "codec.h"
#include "fuzz.h"
#include "helloworld.pb-c.h"

#define MAX_LEN 4096

typedef struct sink {
  size_t count, bytes;
  uint32_t hash;
} sink;

static int on_msg(void *ud, crpc__msgbuf *m) {
  sink *s = ud;
  FUZZ_CHECK(m->len <= MAX_LEN);
  s->count++;
  s->bytes += m->len;
  for (size_t i = 0; i < m->len; i++)
    s->hash = s->hash * 31 + m->data[i];
  s->hash = s->hash * 31 + m->compressed;
  crpc__encoding enc = (crpc__encoding)(s->hash % 3);
  ProtobufCMessage *out = NULL;
  crpc_status st = {0};
  crpc_code code =
      crpc__unframe_message(NULL, &helloworld__hello_request__descriptor,
                            NULL, m, enc, MAX_LEN, &out, &st);
  FUZZ_CHECK(code == CRPC_OK || code == CRPC_INTERNAL ||
             code == CRPC_RESOURCE_EXHAUSTED);
  FUZZ_CHECK((code == CRPC_OK) == (out != NULL));
  FUZZ_CHECK(code == CRPC_OK || st.message != NULL);
  if (out)
    protobuf_c_message_free_unpacked(out, NULL);
  crpc_status_clear(&st);
  free(m);
  return 0;
}

static int feed(const uint8_t *data, size_t size, size_t chunk, sink *s,
                bool *partial) {
  crpc__deframer d = {.max_len = MAX_LEN};
  int rv = 0;
  for (size_t off = 0; off < size && rv == 0; off += chunk) {
    size_t n = size - off < chunk ? size - off : chunk;
    rv = crpc__deframer_feed(&d, data + off, n, on_msg, s);
  }
  *partial = crpc__deframer_partial(&d);
  crpc__deframer_reset(&d);
  return rv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t chunk = (size_t)(data[0] % 17) + 1;
  sink whole = {0}, cut = {0};
  bool pw, pc;
  int rw = feed(data + 1, size - 1, size, &whole, &pw);
  int rc = feed(data + 1, size - 1, chunk, &cut, &pc);
  FUZZ_CHECK(rw == 0 || rw == CRPC_ETOOBIG || rw == CRPC_EPROTO);
  FUZZ_CHECK(rw == rc);
  FUZZ_CHECK(whole.count == cut.count && whole.bytes == cut.bytes &&
             whole.hash == cut.hash);
  if (rw == 0)
    FUZZ_CHECK(pw == pc);
  return 0;
}
