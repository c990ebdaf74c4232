#define _GNU_SOURCE
/*
 * rawh2.c: see rawh2.h. Blocking sockets: every flush writes all of
 * nghttp2's output at once (tests send little), reads wait in poll().
 */
#include "rawh2.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64

struct rawh2_conn {
  int fd;
  nghttp2_session *session;
  bool is_server;
  bool dead;
  rawh2_stream *streams, *streams_tail; /* every stream ever opened */
};

struct rawh2_server {
  int lfd;
  int port;
  int wake[2]; /* pipe: stop or exec */
  pthread_t tid;
  rawh2_request_cb cb;
  void *ud;
  rawh2_conn *conns[MAX_CONNS];
  int nconns;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int accepted;            /* [mu] */
  bool stop;               /* [mu] */
  void (*exec_fn)(void *); /* [mu] pending exec */
  void *exec_arg;
  unsigned exec_seq, exec_done; /* [mu] */
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- streams ---- */

static rawh2_stream *stream_new(rawh2_conn *c) {
  rawh2_stream *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->conn = c;
  s->id = -1;
  if (c->streams_tail)
    c->streams_tail->next = s;
  else
    c->streams = s;
  c->streams_tail = s;
  return s;
}

static void free_nv(nghttp2_nv *nv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(nv[i].name);
    free(nv[i].value);
  }
  free(nv);
}

static void free_hdrs(rawh2_hdr *h, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(h[i].name);
    free(h[i].value);
  }
  free(h);
}

static void stream_free(rawh2_stream *s) {
  free_hdrs(s->hdrs, s->nhdrs);
  free_hdrs(s->trls, s->ntrls);
  free(s->body);
  free(s->out);
  free_nv(s->tnv, s->ntnv);
  free(s);
}

static const char *find_hdr(const rawh2_hdr *h, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(h[i].name, name) == 0)
      return h[i].value;
  return NULL;
}

const char *rawh2_header(const rawh2_stream *s, const char *name) {
  return find_hdr(s->hdrs, s->nhdrs, name);
}

const char *rawh2_trailer(const rawh2_stream *s, const char *name) {
  if (s->header_blocks >= 2)
    return find_hdr(s->trls, s->ntrls, name);
  if (s->end_on_headers)
    return find_hdr(s->hdrs, s->nhdrs, name);
  return NULL;
}

static int append(uint8_t **buf, size_t *len, size_t *cap, const void *data,
                  size_t n) {
  if (*len + n > *cap) {
    size_t ncap = *cap ? *cap : 256;
    while (ncap < *len + n)
      ncap *= 2;
    uint8_t *b = realloc(*buf, ncap);
    if (!b)
      return -1;
    *buf = b;
    *cap = ncap;
  }
  if (n)
    memcpy(*buf + *len, data, n);
  *len += n;
  return 0;
}

/* ---- I/O ---- */

static void conn_kill(rawh2_conn *c) {
  if (c->fd >= 0)
    close(c->fd);
  c->fd = -1;
  c->dead = true;
}

static void flush(rawh2_conn *c) {
  if (c->dead)
    return;
  for (;;) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(c->session, &data);
    if (n < 0) {
      conn_kill(c);
      return;
    }
    if (n == 0)
      break;
    size_t off = 0;
    while (off < (size_t)n) {
      ssize_t w = send(c->fd, data + off, (size_t)n - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR)
        continue;
      if (w <= 0) {
        conn_kill(c);
        return;
      }
      off += (size_t)w;
    }
  }
  if (!nghttp2_session_want_read(c->session) &&
      !nghttp2_session_want_write(c->session))
    conn_kill(c); /* nghttp2 is done with the connection (GOAWAY) */
}

static void read_once(rawh2_conn *c) {
  uint8_t buf[16384];
  if (c->dead)
    return;
  ssize_t n = recv(c->fd, buf, sizeof buf, 0);
  if (n < 0 && errno == EINTR)
    return;
  if (n <= 0) {
    conn_kill(c);
    return;
  }
  if (nghttp2_session_mem_recv(c->session, buf, (size_t)n) < 0)
    conn_kill(c);
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *ss, const nghttp2_frame *f,
                            void *ud) {
  rawh2_conn *c = ud;
  if (f->hd.type != NGHTTP2_HEADERS)
    return 0;
  rawh2_stream *s = nghttp2_session_get_stream_user_data(ss, f->hd.stream_id);
  if (!s && c->is_server && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
    s = stream_new(c);
    if (!s)
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    s->id = f->hd.stream_id;
    nghttp2_session_set_stream_user_data(ss, f->hd.stream_id, s);
  }
  if (s)
    s->header_blocks++;
  return 0;
}

static int on_header(nghttp2_session *ss, const nghttp2_frame *f,
                     const uint8_t *name, size_t namelen, const uint8_t *value,
                     size_t valuelen, uint8_t flags, void *ud) {
  rawh2_stream *s = nghttp2_session_get_stream_user_data(ss, f->hd.stream_id);
  if (!s || f->hd.type != NGHTTP2_HEADERS)
    return 0;
  rawh2_hdr **list = s->header_blocks <= 1 ? &s->hdrs : &s->trls;
  size_t *n = s->header_blocks <= 1 ? &s->nhdrs : &s->ntrls;
  rawh2_hdr *h = realloc(*list, (*n + 1) * sizeof *h);
  if (!h)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  *list = h;
  h[*n].name = strndup((const char *)name, namelen);
  h[*n].value = strndup((const char *)value, valuelen);
  h[*n].valuelen = valuelen;
  (*n)++;
  return 0;
}

static int on_frame_recv(nghttp2_session *ss, const nghttp2_frame *f,
                         void *ud) {
  rawh2_stream *s = nghttp2_session_get_stream_user_data(ss, f->hd.stream_id);
  if (!s)
    return 0;
  if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
      (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    s->remote_closed = true;
    if (f->hd.type == NGHTTP2_HEADERS && s->header_blocks == 1)
      s->end_on_headers = true;
  }
  if (f->hd.type == NGHTTP2_HEADERS && s->header_blocks == 1)
    s->headers_done = true;
  if (f->hd.type == NGHTTP2_RST_STREAM) {
    s->rst_received = true;
    s->rst_code = f->rst_stream.error_code;
  }
  return 0;
}

static int on_data_chunk(nghttp2_session *ss, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *ud) {
  rawh2_stream *s = nghttp2_session_get_stream_user_data(ss, id);
  if (s && append(&s->body, &s->body_len, &s->body_cap, data, len) != 0)
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int on_stream_close(nghttp2_session *ss, int32_t id, uint32_t code,
                           void *ud) {
  rawh2_stream *s = nghttp2_session_get_stream_user_data(ss, id);
  if (s) {
    s->closed = true;
    s->close_code = code;
  }
  return 0;
}

static ssize_t read_body(nghttp2_session *ss, int32_t id, uint8_t *buf,
                         size_t len, uint32_t *flags, nghttp2_data_source *src,
                         void *ud) {
  rawh2_stream *s = src->ptr;
  size_t n = s->out_len - s->out_off;
  if (n > len)
    n = len;
  if (n)
    memcpy(buf, s->out + s->out_off, n);
  s->out_off += n;
  if (s->out_off < s->out_len)
    return (ssize_t)n;
  if (s->tnv) {
    *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
    s->provider_done = true;
    int rv = nghttp2_submit_trailer(ss, id, s->tnv, s->ntnv);
    free_nv(s->tnv, s->ntnv);
    s->tnv = NULL;
    s->ntnv = 0;
    if (rv != 0)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return (ssize_t)n;
  }
  if (s->out_eof) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    s->provider_done = true;
    return (ssize_t)n;
  }
  return n ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

static nghttp2_session_callbacks *make_callbacks(void) {
  nghttp2_session_callbacks *cb;
  if (nghttp2_session_callbacks_new(&cb) != 0)
    return NULL;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  return cb;
}

static rawh2_conn *conn_new(int fd, bool is_server) {
  rawh2_conn *c = calloc(1, sizeof *c);
  nghttp2_session_callbacks *cb = make_callbacks();
  int one = 1;
  if (!c || !cb)
    goto fail;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  c->fd = fd;
  c->is_server = is_server;
  int rv = is_server ? nghttp2_session_server_new(&c->session, cb, c)
                     : nghttp2_session_client_new(&c->session, cb, c);
  if (rv != 0)
    goto fail;
  nghttp2_session_callbacks_del(cb);
  nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, NULL, 0);
  return c;
fail:
  if (cb)
    nghttp2_session_callbacks_del(cb);
  free(c);
  close(fd);
  return NULL;
}

/* ---- both roles ---- */

void rawh2_write(rawh2_stream *s, const void *data, size_t len,
                 bool end_stream) {
  if (!s->has_provider || s->provider_done)
    return;
  append(&s->out, &s->out_len, &s->out_cap, data, len);
  if (end_stream)
    s->out_eof = true;
  if (!s->conn->dead)
    nghttp2_session_resume_data(s->conn->session, s->id);
}

void rawh2_trailers(rawh2_stream *s, const nghttp2_nv *nva, size_t n) {
  rawh2_conn *c = s->conn;
  if (c->dead)
    return;
  if (!s->has_provider || s->provider_done) {
    nghttp2_submit_headers(c->session, NGHTTP2_FLAG_END_STREAM, s->id, NULL,
                           nva, n, NULL);
    return;
  }
  nghttp2_nv *copy = calloc(n ? n : 1, sizeof *copy);
  if (!copy)
    return;
  for (size_t i = 0; i < n; i++) {
    copy[i].name = malloc(nva[i].namelen + 1);
    copy[i].value = malloc(nva[i].valuelen + 1);
    if (copy[i].name)
      memcpy(copy[i].name, nva[i].name, nva[i].namelen);
    if (copy[i].value)
      memcpy(copy[i].value, nva[i].value, nva[i].valuelen);
    copy[i].namelen = nva[i].namelen;
    copy[i].valuelen = nva[i].valuelen;
  }
  free_nv(s->tnv, s->ntnv);
  s->tnv = copy;
  s->ntnv = n;
  nghttp2_session_resume_data(c->session, s->id);
}

void rawh2_rst(rawh2_stream *s, uint32_t code) {
  if (!s->conn->dead)
    nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id, code);
}

void rawh2_goaway(rawh2_conn *c, int32_t last_stream_id, uint32_t code) {
  if (!c->dead)
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, last_stream_id, code,
                          NULL, 0);
}

void rawh2_close(rawh2_conn *c) {
  flush(c);
  conn_kill(c);
}

bool rawh2_dead(const rawh2_conn *c) { return c->dead; }

/* ---- client ---- */

rawh2_conn *rawh2_connect(int port) {
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return NULL;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return NULL;
  }
  return conn_new(fd, false);
}

rawh2_stream *rawh2_request(rawh2_conn *c, const nghttp2_nv *nva, size_t n,
                            bool end_stream) {
  rawh2_stream *s = stream_new(c);
  if (!s)
    return NULL;
  nghttp2_data_provider dp = {.source.ptr = s, .read_callback = read_body};
  s->has_provider = !end_stream;
  int32_t id = nghttp2_submit_request(c->session, NULL, nva, n,
                                      end_stream ? NULL : &dp, s);
  if (id < 0)
    return NULL; /* freed with the connection */
  s->id = id;
  return s;
}

bool rawh2_run(rawh2_conn *c, bool (*done)(void *arg), void *arg,
               int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    flush(c);
    if (!done)
      return !c->dead;
    if (done(arg))
      return true;
    if (c->dead)
      return false;
    int64_t left = deadline - now_ms();
    if (left <= 0)
      return false;
    struct pollfd p = {c->fd, POLLIN, 0};
    int r = poll(&p, 1, (int)left);
    if (r > 0)
      read_once(c);
  }
}

static bool stream_closed(void *arg) { return ((rawh2_stream *)arg)->closed; }

bool rawh2_wait_closed(rawh2_stream *s, int timeout_ms) {
  return rawh2_run(s->conn, stream_closed, s, timeout_ms);
}

void rawh2_free(rawh2_conn *c) {
  if (!c)
    return;
  conn_kill(c);
  nghttp2_session_del(c->session);
  rawh2_stream *s = c->streams;
  while (s) {
    rawh2_stream *next = s->next;
    stream_free(s);
    s = next;
  }
  free(c);
}

/* ---- server ---- */

void rawh2_respond(rawh2_stream *s, const nghttp2_nv *nva, size_t n,
                   bool end_stream) {
  if (s->conn->dead)
    return;
  nghttp2_data_provider dp = {.source.ptr = s, .read_callback = read_body};
  s->has_provider = !end_stream;
  nghttp2_submit_response(s->conn->session, s->id, nva, n,
                          end_stream ? NULL : &dp);
}

static void server_accept(rawh2_server *srv) {
  int fd = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0)
    return;
  if (srv->nconns == MAX_CONNS) {
    close(fd);
    return;
  }
  rawh2_conn *c = conn_new(fd, true);
  if (!c)
    return;
  srv->conns[srv->nconns++] = c;
  pthread_mutex_lock(&srv->mu);
  srv->accepted++;
  pthread_mutex_unlock(&srv->mu);
}

static void *server_main(void *arg) {
  rawh2_server *srv = arg;
  for (;;) {
    struct pollfd p[MAX_CONNS + 2];
    rawh2_conn *pc[MAX_CONNS + 2];
    int n = 0;
    p[n++] = (struct pollfd){srv->wake[0], POLLIN, 0};
    p[n++] = (struct pollfd){srv->lfd, POLLIN, 0};
    for (int i = 0; i < srv->nconns; i++) {
      if (srv->conns[i]->dead)
        continue;
      pc[n] = srv->conns[i];
      p[n++] = (struct pollfd){srv->conns[i]->fd, POLLIN, 0};
    }
    if (poll(p, (nfds_t)n, -1) < 0)
      continue;
    if (p[0].revents) {
      char b[64];
      if (read(srv->wake[0], b, sizeof b) < 0) {
        /* nothing: the flags below are what count */
      }
      pthread_mutex_lock(&srv->mu);
      if (srv->stop) {
        pthread_mutex_unlock(&srv->mu);
        break;
      }
      void (*fn)(void *) = srv->exec_fn;
      void *fa = srv->exec_arg;
      srv->exec_fn = NULL;
      pthread_mutex_unlock(&srv->mu);
      if (fn) {
        fn(fa);
        pthread_mutex_lock(&srv->mu);
        srv->exec_done++;
        pthread_cond_broadcast(&srv->cv);
        pthread_mutex_unlock(&srv->mu);
      }
    }
    if (p[1].revents)
      server_accept(srv);
    for (int i = 2; i < n; i++)
      if (p[i].revents)
        read_once(pc[i]);
    /* complete requests, in arrival order per connection */
    for (int i = 0; i < srv->nconns; i++) {
      rawh2_conn *c = srv->conns[i];
      for (rawh2_stream *s = c->streams; s && !c->dead; s = s->next) {
        if (s->remote_closed && !s->ready_reported) {
          s->ready_reported = s->headers_reported = true;
          srv->cb(s, srv->ud);
        } else if (s->headers_done && !s->headers_reported) {
          s->headers_reported = true;
          srv->cb(s, srv->ud);
        }
      }
    }
    for (int i = 0; i < srv->nconns; i++)
      flush(srv->conns[i]);
  }
  return NULL;
}

rawh2_server *rawh2_server_start(rawh2_request_cb cb, void *user_data) {
  rawh2_server *srv = calloc(1, sizeof *srv);
  struct sockaddr_in a = {0};
  socklen_t alen = sizeof a;
  if (!srv)
    return NULL;
  srv->cb = cb;
  srv->ud = user_data;
  srv->wake[0] = srv->wake[1] = -1;
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (srv->lfd < 0 || bind(srv->lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(srv->lfd, 16) != 0 ||
      getsockname(srv->lfd, (struct sockaddr *)&a, &alen) != 0 ||
      pipe2(srv->wake, O_CLOEXEC) != 0)
    goto fail;
  srv->port = ntohs(a.sin_port);
  pthread_mutex_init(&srv->mu, NULL);
  pthread_cond_init(&srv->cv, NULL);
  if (pthread_create(&srv->tid, NULL, server_main, srv) != 0) {
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cv);
    goto fail;
  }
  return srv;
fail:
  if (srv->lfd >= 0)
    close(srv->lfd);
  if (srv->wake[0] >= 0) {
    close(srv->wake[0]);
    close(srv->wake[1]);
  }
  free(srv);
  return NULL;
}

int rawh2_server_port(const rawh2_server *srv) { return srv->port; }

int rawh2_server_accepted(rawh2_server *srv) {
  pthread_mutex_lock(&srv->mu);
  int n = srv->accepted;
  pthread_mutex_unlock(&srv->mu);
  return n;
}

static void wake(rawh2_server *srv) {
  char b = 1;
  while (write(srv->wake[1], &b, 1) < 0 && errno == EINTR)
    ;
}

bool rawh2_server_exec(rawh2_server *srv, void (*fn)(void *arg), void *arg,
                       int timeout_ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += timeout_ms / 1000;
  ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
  if (ts.tv_nsec >= 1000000000) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000;
  }
  pthread_mutex_lock(&srv->mu);
  srv->exec_fn = fn;
  srv->exec_arg = arg;
  unsigned target = ++srv->exec_seq;
  wake(srv);
  bool ok = true;
  while (ok && srv->exec_done < target)
    ok = pthread_cond_timedwait(&srv->cv, &srv->mu, &ts) == 0;
  ok = srv->exec_done >= target;
  pthread_mutex_unlock(&srv->mu);
  return ok;
}

void rawh2_server_stop(rawh2_server *srv) {
  if (!srv)
    return;
  pthread_mutex_lock(&srv->mu);
  srv->stop = true;
  pthread_mutex_unlock(&srv->mu);
  wake(srv);
  pthread_join(srv->tid, NULL);
  for (int i = 0; i < srv->nconns; i++)
    rawh2_free(srv->conns[i]);
  close(srv->lfd);
  close(srv->wake[0]);
  close(srv->wake[1]);
  pthread_mutex_destroy(&srv->mu);
  pthread_cond_destroy(&srv->cv);
  free(srv);
}
