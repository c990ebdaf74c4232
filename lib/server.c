/*
 * server.c: a server's life: registration of methods, listeners, the
 * reactor threads (or the program's loop) and graceful shutdown. Every
 * reactor thread watches every listener (EPOLLEXCLUSIVE), so an accepted
 * connection stays on the thread that accepted it (server_accept.c); each
 * call is dispatched in server_call.c.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "server_ext.h"
#include "server_internal.h"

/* ---- registration ---- */

int crpc_server_new(crpc_server **out, const crpc_server_opts *opts) {
  crpc_server_opts none = {0};
  crpc_mem mem;
  if (!out)
    return CRPC_EINVAL;
  crpc__mem_init(&mem, opts ? opts->mem : NULL);
  crpc_server *s = crpc__calloc(&mem, 1, sizeof *s);
  if (!s)
    return CRPC_ENOMEM;
  s->mem = mem;
  s->opts = opts ? *opts : none;
  s->opts.mem = NULL; /* copied, never kept */
  s->max_recv = s->opts.max_recv_msg_size ? s->opts.max_recv_msg_size
                                          : CRPC__DEFAULT_MAX_RECV;
  if (!s->opts.max_concurrent_streams)
    s->opts.max_concurrent_streams = 100;
  if (!s->opts.max_header_list_size)
    s->opts.max_header_list_size = 16 * 1024;
  if (!s->opts.handshake_timeout_ms)
    s->opts.handshake_timeout_ms = 20000;
  if (!s->opts.max_ping_strikes)
    s->opts.max_ping_strikes = 10;
  /* gRPC's connection management and keepalive defaults (server.h) */
  if (!s->opts.idle_timeout_ms && s->opts.max_connection_idle_ms > 0)
    s->opts.idle_timeout_ms = s->opts.max_connection_idle_ms;
  if (s->opts.idle_timeout_ms < 0)
    s->opts.idle_timeout_ms = 0;
  if (!s->opts.keepalive_time_ms)
    s->opts.keepalive_time_ms = 2 * 3600 * 1000;
  if (!s->opts.keepalive_timeout_ms)
    s->opts.keepalive_timeout_ms = 20000;
  if (!s->opts.keepalive_min_time_ms)
    s->opts.keepalive_min_time_ms = 5 * 60 * 1000;
  s->max_conn_out = s->opts.max_conn_output_bytes
                        ? s->opts.max_conn_output_bytes
                        : CRPC__DEFAULT_CONN_OUTPUT;
  s->out.limit = s->opts.max_output_bytes ? s->opts.max_output_bytes
                                          : CRPC__DEFAULT_SERVER_OUTPUT;
  s->out.on_drained = crpc__server_out_drained;
  s->out.owner = s;
  s->stall_ms = s->opts.write_stall_timeout_ms == 0
                    ? CRPC__DEFAULT_WRITE_STALL_MS
                    : (s->opts.write_stall_timeout_ms < 0
                           ? 0
                           : s->opts.write_stall_timeout_ms);
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cv, NULL);
  *out = s;
  return 0;
}

crpc__server_method *crpc__server_find_method(crpc_server *s, const char *path,
                                        size_t len) {
  for (size_t i = 0; i < s->nmethods; i++) {
    const char *p = s->methods[i].method.path;
    if (strlen(p) == len && memcmp(p, path, len) == 0)
      return &s->methods[i];
  }
  return NULL;
}

static int add_method(crpc_server *s, const crpc_method *m, crpc_handler h,
                      crpc_method_trampoline t, const void *handlers,
                      unsigned flags, void *ud) {
  if (!s || !m || !m->path || m->path[0] != '/' || !m->input || !m->output ||
      (!h && !t))
    return CRPC_EINVAL;
  if (s->state != SRV_NEW)
    return CRPC_ESTATE;
  if (crpc__server_find_method(s, m->path, strlen(m->path)))
    return CRPC_EEXIST;
  if (s->nmethods == s->capmethods) {
    size_t cap = s->capmethods ? 2 * s->capmethods : 16;
    crpc__server_method *nm = crpc__realloc(&s->mem, s->methods,
                                            cap * sizeof *nm);
    if (!nm)
      return CRPC_ENOMEM;
    s->methods = nm;
    s->capmethods = cap;
  }
  crpc__server_method *sm = &s->methods[s->nmethods++];
  memset(sm, 0, sizeof *sm); /* realloc'd: atomics start at zero */
  sm->method = *m;
  sm->handler = h;
  sm->tramp = t;
  sm->handlers = handlers;
  sm->flags = flags;
  sm->user_data = ud;
  sm->srv = s;
  return 0;
}

int crpc_server_register(crpc_server *s, const crpc_method *m, crpc_handler h,
                         unsigned flags, void *user_data) {
  if (!h)
    return CRPC_EINVAL;
  return add_method(s, m, h, NULL, NULL, flags, user_data);
}

int crpc_server_register_service(crpc_server *s, const crpc_service *svc,
                                 const void *handlers, unsigned flags,
                                 void *user_data) {
  if (!s || !svc || !handlers || !svc->methods || !svc->trampolines)
    return CRPC_EINVAL;
  if (s->state != SRV_NEW)
    return CRPC_ESTATE;
  for (size_t i = 0; i < svc->n_methods; i++)
    if (crpc__server_find_method(s, svc->methods[i].path, strlen(svc->methods[i].path)))
      return CRPC_EEXIST;
  void **tables = crpc__realloc(&s->mem, s->tables,
                                (s->ntables + 1) * sizeof *tables);
  if (!tables)
    return CRPC_ENOMEM;
  s->tables = tables;
  void *copy = crpc__malloc(&s->mem, svc->handlers_size);
  if (!copy)
    return CRPC_ENOMEM;
  memcpy(copy, handlers, svc->handlers_size);
  s->tables[s->ntables++] = copy;
  const crpc_service **svcs =
      crpc__realloc(&s->mem, s->svcs, (s->nsvcs + 1) * sizeof *svcs);
  if (!svcs)
    return CRPC_ENOMEM;
  s->svcs = svcs;
  s->svcs[s->nsvcs++] = svc;
  for (size_t i = 0; i < svc->n_methods; i++) {
    int rv = add_method(s, &svc->methods[i], NULL, svc->trampolines[i], copy,
                        flags, user_data);
    if (rv != 0)
      return rv;
  }
  return 0;
}

void crpc__server_ext_add(crpc_server *s, crpc__server_ext *e) {
  e->next = s->ext;
  s->ext = e;
}

crpc__server_ext *crpc__server_ext_find(const crpc_server *s,
                                        const void *key) {
  for (crpc__server_ext *e = s->ext; e; e = e->next)
    if (e->key == key)
      return e;
  return NULL;
}

size_t crpc__server_services(const crpc_server *s,
                             const crpc_service *const **out) {
  *out = s->svcs;
  return s->nsvcs;
}

const char *crpc__server_method_path(const crpc_server *s, size_t i) {
  return i < s->nmethods ? s->methods[i].method.path : NULL;
}

int crpc_server_listen(crpc_server *s, const char *addr,
                       const crpc_tls_server_opts *tls, int *port_out) {
  crpc__addr addrs[4];
  if (!s || !addr)
    return CRPC_EINVAL;
  if (s->state != SRV_NEW)
    return CRPC_ESTATE;
  if (s->nlisteners == MAX_LISTENERS)
    return CRPC_ENOMEM;
  /* ":port" means every interface */
  char buf[300];
  if (addr[0] == ':' && strlen(addr) < 200) {
    snprintf(buf, sizeof buf, "[::]%s", addr);
    addr = buf;
  }
  int n = crpc__resolve(addr, true, addrs, 1, NULL, &s->mem);
  if (n < 0)
    return n == CRPC_ENOMEM ? n : CRPC_ETARGET;
  void *ctx = NULL;
  if (tls) {
    const char *why = NULL;
    int rv = crpc__tls_server_ctx_new(tls, &s->mem, &ctx, &why);
    if (rv != 0) {
      crpc__log_error("TLS listener %s: %s", addr, why ? why : "failed");
      return rv;
    }
  }
  int port = 0;
  int fd = crpc__sock_listen(&addrs[0], &port);
  if (fd < 0 && addr == buf) {
    /* no IPv6: fall back to IPv4 any */
    snprintf(buf, sizeof buf, "0.0.0.0%s", strrchr(buf, ':'));
    if (crpc__resolve(buf, true, addrs, 1, NULL, &s->mem) > 0)
      fd = crpc__sock_listen(&addrs[0], &port);
  } else if (fd >= 0 && addr == buf) {
    /* [::] with V6ONLY: add the IPv4 side on the same port */
    char v4[64];
    snprintf(v4, sizeof v4, "0.0.0.0:%d", port);
    crpc__addr a4;
    if (crpc__resolve(v4, true, &a4, 1, NULL, &s->mem) > 0 &&
        s->nlisteners + 1 < MAX_LISTENERS) {
      int fd4 = crpc__sock_listen(&a4, NULL);
      if (fd4 >= 0) {
        s->listeners[s->nlisteners].fd = fd4;
        s->listeners[s->nlisteners].port = port;
        s->listeners[s->nlisteners].tls = ctx; /* shared with the v6 one */
        s->nlisteners++;
      }
    }
  }
  if (fd < 0) {
    if (ctx)
      crpc__tls_ctx_free(ctx);
    return fd;
  }
  s->listeners[s->nlisteners].fd = fd;
  s->listeners[s->nlisteners].port = port;
  s->listeners[s->nlisteners].tls = ctx;
  s->nlisteners++;
  if (port_out)
    *port_out = port;
  return 0;
}

int crpc_server_set_auth_hook(crpc_server *s, crpc_auth_hook hook,
                              void *user_data) {
  if (!s)
    return CRPC_EINVAL;
  if (s->state != SRV_NEW)
    return CRPC_ESTATE;
  if (hook) {
    int rv = crpc__server_auth_interceptor(s);
    if (rv != 0)
      return rv;
  }
  s->auth_hook = hook;
  s->auth_ud = user_data;
  return 0;
}

int crpc_server_reload_tls(crpc_server *s) {
  int rv = 0;
  if (!s)
    return CRPC_EINVAL;
  for (int i = 0; i < s->nlisteners; i++) {
    void *ctx = s->listeners[i].tls;
    const char *why = NULL;
    if (!ctx || (i > 0 && s->listeners[i - 1].tls == ctx))
      continue; /* a [::] listener's IPv4 twin shares the context */
    int r = crpc__tls_ctx_reload(ctx, &why);
    if (r != 0) {
      crpc__log_error("TLS reload (port %d): %s", s->listeners[i].port,
                      why ? why : crpc_strerror(r));
      rv = CRPC_ETLS;
    }
  }
  return rv;
}

int crpc_server_start(crpc_server *s) {
  if (!s)
    return CRPC_EINVAL;
  if (s->state != SRV_NEW || s->nlisteners == 0)
    return CRPC_ESTATE;
  long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
  s->nthreads = s->opts.reactor_threads
                    ? s->opts.reactor_threads
                    : (unsigned)(ncpu > 0 ? (ncpu > 64 ? 64 : ncpu) : 1);
  if (s->opts.loop)
    s->nthreads = 1; /* the program's loop is the one reactor */
  int rv = crpc__workers_new(&s->workers, s->opts.max_workers, &s->mem);
  if (rv != 0)
    return rv;
  s->threads = crpc__calloc(&s->mem, s->nthreads, sizeof *s->threads);
  if (!s->threads)
    return CRPC_ENOMEM;
  for (unsigned i = 0; i < s->nthreads; i++) {
    srv_thread *t = &s->threads[i];
    t->srv = s;
    t->park_timer.cb = crpc__server_park_expired;
    if (s->opts.loop) {
      t->loop = (crpc__loop *)s->opts.loop;
      t->borrowed_loop = true;
    } else if ((rv = crpc__loop_new(&t->loop, &s->mem)) != 0) {
      return rv;
    }
    for (int j = 0; j < s->nlisteners; j++) {
      t->lio[j].t = t;
      t->lio[j].idx = j;
      t->lio[j].io.fd = s->listeners[j].fd;
      t->lio[j].io.cb = crpc__server_on_accept;
      if (crpc__io_watch_exclusive(t->loop, &t->lio[j].io) != 0)
        return CRPC_ESYS;
    }
  }
  for (unsigned i = 0; i < s->nthreads && !s->opts.loop; i++)
    if ((rv = crpc__loop_thread_start(s->threads[i].loop,
                                      &s->threads[i].tid)) != 0)
      return rv; /* threads started so far are stopped by free */
  pthread_mutex_lock(&s->mu);
  s->state = SRV_STARTED;
  pthread_mutex_unlock(&s->mu);
  return 0;
}

void crpc_server_shutdown(crpc_server *s, int64_t grace_ms) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  if (s->state != SRV_STARTED) {
    while (s->state == SRV_STOPPING)
      pthread_cond_wait(&s->cv, &s->mu);
    if (s->state == SRV_NEW)
      s->state = SRV_STOPPED;
    pthread_mutex_unlock(&s->mu);
    return;
  }
  s->state = SRV_STOPPING;
  pthread_mutex_unlock(&s->mu);
  for (unsigned i = 0; i < s->nthreads; i++) {
    srv_thread *t = &s->threads[i];
    t->grace_ms = grace_ms;
    t->shutdown_task.fn = crpc__server_thread_shutdown;
    t->shutdown_task.arg = t;
    crpc__loop_post_task(t->loop, &t->shutdown_task);
  }
  pthread_mutex_lock(&s->mu);
  while (s->threads_drained < s->nthreads) {
    if (s->opts.loop && crpc_loop_is_current(s->opts.loop)) {
      /* the program's loop, and we are its thread: drive it ourselves */
      pthread_mutex_unlock(&s->mu);
      crpc__loop_run_once(s->threads[0].loop, 100);
      pthread_mutex_lock(&s->mu);
      continue;
    }
    pthread_cond_wait(&s->cv, &s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  /* handlers may still be running on cancelled calls: let them return */
  crpc__workers_free(s->workers);
  s->workers = NULL;
  for (unsigned i = 0; i < s->nthreads && !s->opts.loop; i++) {
    crpc__loop_stop(s->threads[i].loop);
    pthread_join(s->threads[i].tid, NULL);
  }
  if (s->opts.loop) /* what the drained connections posted */
    crpc__loop_run_once(s->threads[0].loop, 0);
  pthread_mutex_lock(&s->mu);
  s->state = SRV_STOPPED;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

size_t crpc_server_output_bytes(const crpc_server *s, size_t *peak) {
  if (peak)
    *peak = s ? atomic_load(&s->out.peak) : 0;
  return s ? atomic_load(&s->out.used) : 0;
}

void crpc_server_wait(crpc_server *s) {
  if (!s)
    return;
  pthread_mutex_lock(&s->mu);
  while (s->state != SRV_STOPPED)
    pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

static void server_free_now(crpc_server *s);

static void server_free_task(void *arg) { server_free_now(arg); }

void crpc_server_free(crpc_server *s) {
  if (!s)
    return;
  if (s->opts.loop && s->threads &&
      crpc__loop_in_round(s->threads[0].loop)) {
    /* from inside one of its loop's callbacks: the stack still holds the
     * connection (and nghttp2's session) that called us. Shut down and
     * free once the callbacks have unwound, in the loop's own work of
     * this turn or the next. */
    s->free_task.fn = server_free_task;
    s->free_task.arg = s;
    s->free_task.heap = false;
    crpc__loop_post_own(s->threads[0].loop, &s->free_task);
    return;
  }
  server_free_now(s);
}

static void server_free_now(crpc_server *s) {
  crpc_server_shutdown(s, 0);
  for (unsigned i = 0; s->threads && i < s->nthreads; i++)
    if (!s->threads[i].borrowed_loop)
      crpc__loop_free(s->threads[i].loop);
  crpc__free(&s->mem, s->threads);
  crpc__workers_free(s->workers);
  for (int i = 0; i < s->nlisteners; i++) {
    if (s->listeners[i].fd >= 0)
      close(s->listeners[i].fd);
    if (s->listeners[i].tls &&
        (i + 1 >= s->nlisteners ||
         s->listeners[i + 1].tls != s->listeners[i].tls))
      crpc__tls_ctx_free(s->listeners[i].tls);
  }
  for (size_t i = 0; i < s->ntables; i++)
    crpc__free(&s->mem, s->tables[i]);
  crpc__free(&s->mem, s->tables);
  crpc__free(&s->mem, s->methods);
  crpc__free(&s->mem, s->svcs);
  while (s->ext) {
    crpc__server_ext *e = s->ext;
    s->ext = e->next;
    e->free(e);
  }
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cv);
  crpc_mem mem = s->mem; /* the last free must not read the server */
  crpc__free(&mem, s);
}
