/*
 * h2.c: one place that decides how our nghttp2 sessions are configured:
 * manual window updates (a slow reader pushes back on the writer), large
 * windows for throughput, limits for servers.
 */
#include "h2.h"

#include <pthread.h>

#include "internal.h"

/* Built once, read-only afterwards, shared by every session (nghttp2
 * copies what it needs from them): the callbacks, and the options of
 * clients and of servers. They come from libc, as they belong to no
 * crpc object. */
static nghttp2_session_callbacks *cbs;
static nghttp2_option *opts[2]; /* [is_server] */
static pthread_once_t cbs_once = PTHREAD_ONCE_INIT;

static void make_cbs(void) {
  if (crpc__conn_make_callbacks(&cbs) != 0) {
    cbs = NULL;
    return;
  }
  for (int i = 0; i < 2; i++) {
    if (nghttp2_option_new(&opts[i]) != 0) {
      opts[i] = NULL;
      continue;
    }
    nghttp2_option_set_no_auto_window_update(opts[i], 1);
    nghttp2_option_set_peer_max_concurrent_streams(opts[i], 100);
    if (i == 1)
      nghttp2_option_set_max_send_header_block_length(opts[i], 64 * 1024);
  }
}

/* nghttp2_mem over the connection's crpc_mem (the same shape; crpc__*
 * also supply calloc when the user's has none). */
static void *h2_malloc(size_t n, void *ud) { return crpc__malloc(ud, n); }
static void h2_free(void *p, void *ud) { crpc__free(ud, p); }
static void *h2_calloc(size_t nmemb, size_t n, void *ud) {
  return crpc__calloc(ud, nmemb, n);
}
static void *h2_realloc(void *p, size_t n, void *ud) {
  if (n == 0) { /* nghttp2_mem's realloc follows realloc(3) */
    crpc__free(ud, p);
    return NULL;
  }
  return crpc__realloc(ud, p, n);
}

int crpc__h2_session_new(crpc__conn *c, uint32_t max_streams,
                         uint32_t max_header_list) {
  int rv;
  pthread_once(&cbs_once, make_cbs);
  nghttp2_option *opt = opts[c->is_server && max_header_list ? 1 : 0];
  if (!cbs || !opt)
    return CRPC_ENOMEM;
  /* copied by nghttp2; |c->mem| (the owner's) outlives the session */
  nghttp2_mem mem = {(void *)(uintptr_t)c->mem, h2_malloc, h2_free,
                     h2_calloc, h2_realloc};
  rv = c->is_server
           ? nghttp2_session_server_new3(&c->session, cbs, c, opt, &mem)
           : nghttp2_session_client_new3(&c->session, cbs, c, opt, &mem);
  if (rv != 0)
    return CRPC_ENOMEM;
  nghttp2_settings_entry iv[5];
  size_t n = 0;
  iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                                     CRPC__STREAM_WINDOW};
  iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
  iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_FRAME_SIZE,
                                     CRPC__MAX_FRAME};
  if (c->is_server) {
    iv[n++] = (nghttp2_settings_entry){
        NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams};
    iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
                                       max_header_list};
  }
  if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, n) != 0 ||
      nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                            CRPC__CONN_WINDOW) != 0) {
    /* the caller closes the conn, which deletes the session */
    return CRPC_ENOMEM;
  }
  return 0;
}
