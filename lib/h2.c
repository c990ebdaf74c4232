/*
 * h2.c: one place that decides how our nghttp2 sessions are configured:
 * manual window updates (a slow reader pushes back on the writer), large
 * windows for throughput, limits for servers.
 */
#include "h2.h"

#include <pthread.h>

#include "internal.h"

/* Built once, read-only afterwards, shared by every session. */
static nghttp2_session_callbacks *cbs;
static pthread_once_t cbs_once = PTHREAD_ONCE_INIT;

static void make_cbs(void) {
  if (crpc__conn_make_callbacks(&cbs) != 0)
    cbs = NULL;
}

int crpc__h2_session_new(crpc__conn *c, uint32_t max_streams,
                         uint32_t max_header_list) {
  nghttp2_option *opt;
  int rv;
  pthread_once(&cbs_once, make_cbs);
  if (!cbs)
    return CRPC_ENOMEM;
  if (nghttp2_option_new(&opt) != 0)
    return CRPC_ENOMEM;
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_peer_max_concurrent_streams(opt, 100);
  if (max_header_list)
    nghttp2_option_set_max_send_header_block_length(opt, 64 * 1024);
  rv = c->is_server ? nghttp2_session_server_new2(&c->session, cbs, c, opt)
                    : nghttp2_session_client_new2(&c->session, cbs, c, opt);
  nghttp2_option_del(opt);
  if (rv != 0)
    return CRPC_ENOMEM;
  nghttp2_settings_entry iv[4];
  size_t n = 0;
  iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                                     CRPC__STREAM_WINDOW};
  iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
  if (c->is_server) {
    iv[n++] = (nghttp2_settings_entry){
        NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, max_streams};
    iv[n++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
                                       max_header_list};
  }
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, n);
  nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                        CRPC__CONN_WINDOW);
  return 0;
}
