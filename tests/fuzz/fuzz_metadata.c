/*
 * Fuzz target: the crpc_metadata API and wire input (lib/metadata.c).
 *
 * The input is a little program: records of
 *   op (1 byte) | key length (1) | key | value length (1) | value
 * run against two lists, then every invariant of a list is checked.
 */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

/* The most pairs a list may reach through appends (see case 5). */
#define MAX_PAIRS 4096

static void check_list(const crpc_metadata *md) {
  size_t i, n = crpc_metadata_count(md);
  for (i = 0; i < n; i++) {
    const char *k;
    const uint8_t *v;
    size_t len, klen, j;
    FUZZ_CHECK(crpc_metadata_at(md, i, &k, &v, &len) == 0);
    klen = strlen(k);
    FUZZ_CHECK(crpc__metadata_key_valid(k, klen));
    FUZZ_CHECK(!crpc__metadata_key_reserved(k, klen));
    FUZZ_CHECK(v[len] == '\0');
    if (!crpc__metadata_key_is_bin(k, klen))
      for (j = 0; j < len; j++)
        FUZZ_CHECK(v[j] >= 0x20 && v[j] <= 0x7e);
    /* get() finds a pair with that key (the first, maybe not this one). */
    FUZZ_CHECK(crpc_metadata_get(md, k, NULL) != NULL);
  }
  FUZZ_CHECK(crpc_metadata_at(md, n, NULL, NULL, NULL) == CRPC_EINVAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  crpc_metadata *a = NULL, *b = NULL;
  size_t p = 0;

  if (crpc_metadata_new(&a) != 0 || crpc_metadata_new(&b) != 0)
    goto done;
  while (p + 2 <= size) {
    uint8_t op = data[p++];
    size_t klen = data[p++], vlen;
    char key[256];
    const uint8_t *k, *v;
    size_t before;
    int rv;
    if (klen > size - p)
      break;
    k = data + p;
    p += klen;
    vlen = p < size ? data[p++] : 0;
    if (vlen > size - p)
      vlen = size - p;
    v = data + p;
    p += vlen;
    memcpy(key, k, klen);
    key[klen] = '\0';
    crpc_metadata *md = op & 0x80 ? b : a;
    before = crpc_metadata_count(md);

    switch (op & 7) {
    case 0:
    case 1: /* the API (a key with a NUL inside is just shorter) */
      rv = crpc_metadata_add(md, key, v, vlen);
      FUZZ_CHECK(rv == 0 || rv == CRPC_EMETADATA || rv == CRPC_ENOMEM);
      FUZZ_CHECK(crpc_metadata_count(md) == before + (rv == 0));
      if (rv == 0) {
        const char *sk;
        const uint8_t *sv;
        size_t sl;
        crpc_metadata_at(md, before, &sk, &sv, &sl);
        FUZZ_CHECK(sl == vlen && memcmp(sv, v, vlen) == 0);
      }
      break;
    case 2:
    case 3: /* from the wire */
      rv = crpc__metadata_add_wire(md, k, klen, v, vlen);
      FUZZ_CHECK(rv == 0 || rv == CRPC_EMETADATA || rv == CRPC_ENOMEM);
      if (rv != 0)
        FUZZ_CHECK(crpc_metadata_count(md) == before); /* atomic */
      break;
    case 4:
      crpc_metadata_get(md, key, NULL);
      break;
    case 5: {
      /* Appending a list onto itself doubles it: bounded here, since no
       * caller builds a list that way (lib/ appends wire lists, already
       * bounded by the header-list limit, and the user's call metadata). */
      const crpc_metadata *src = op & 0x40 ? md : (md == a ? b : a);
      if (before + crpc_metadata_count(src) > MAX_PAIRS)
        break;
      rv = crpc__metadata_append(md, src);
      FUZZ_CHECK(rv == 0 || rv == CRPC_ENOMEM);
      FUZZ_CHECK(rv != 0 || crpc_metadata_count(md) ==
                                before + (src == md ? before
                                                    : crpc_metadata_count(src)));
      break;
    }
    case 6:
      if (op & 0x40)
        crpc_metadata_clear(md);
      break;
    default:
      /* A wire round trip of every pair: what we send, we accept back
       * unchanged (-bin values through base64). */
      {
        size_t i, n = crpc_metadata_count(md);
        crpc_metadata *c;
        if (n > 64 || crpc_metadata_new(&c) != 0)
          break;
        for (i = 0; i < n; i++) {
          const char *pk;
          const uint8_t *pv, *cv;
          size_t pl, cl, kl;
          crpc_metadata_at(md, i, &pk, &pv, &pl);
          kl = strlen(pk);
          if (crpc__metadata_key_is_bin(pk, kl)) {
            char *e;
            size_t el;
            FUZZ_CHECK(crpc__base64_encode(pv, pl, &e, &el) == 0);
            rv = crpc__metadata_add_wire(c, (const uint8_t *)pk, kl,
                                         (const uint8_t *)e, el);
            free(e);
          } else {
            rv = crpc__metadata_add_wire(c, (const uint8_t *)pk, kl, pv, pl);
          }
          FUZZ_CHECK(rv == 0);
          /* ASCII values may lose surrounding blanks; -bin ones are exact */
          FUZZ_CHECK(crpc_metadata_count(c) == i + 1);
          crpc_metadata_at(c, i, NULL, &cv, &cl);
          if (crpc__metadata_key_is_bin(pk, kl))
            FUZZ_CHECK(cl == pl && memcmp(cv, pv, pl) == 0);
          else
            FUZZ_CHECK(cl <= pl);
        }
        crpc_metadata_free(c);
      }
      break;
    }
  }
  check_list(a);
  check_list(b);
done:
  crpc_metadata_free(a);
  crpc_metadata_free(b);
  return 0;
}
