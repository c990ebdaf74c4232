/*
 * resolver_dns.c: DNS lookups on a crpc loop with c-ares: its sockets are
 * watched by the loop (ARES_OPT_SOCK_STATE_CB) and its timeouts are a loop
 * timer, so a slow or silent DNS server never blocks the loop or a call.
 * AAAA and A (ares_getaddrinfo, AF_UNSPEC), /etc/hosts first (c-ares
 * would read $CARES_HOSTS instead only with ARES_AI_ENVHOSTS in the hints,
 * which is not set: tests replace /etc/hosts in a mount namespace). No
 * thread.
 */
#include "resolver_dns.h"

#include <ares.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include "internal.h"

/* A silent server fails a lookup after about tries x timeout. */
#define DNS_TIMEOUT_MS 1000
#define DNS_TRIES 2

typedef struct dns_sock {
  crpc__io io;
  crpc__dns *d;
  struct dns_sock *next;
} dns_sock;

struct crpc__dns {
  crpc__loop *loop;
  crpc_mem mem;
  ares_channel ch;
  dns_sock *socks;
  crpc__timer timer;
  crpc__dns_cb cb;
  void *ud;
  bool busy;     /* a lookup is outstanding */
  bool closing;  /* ares_destroy() runs: its callbacks are dropped */
  unsigned gen;  /* lookups started; a late callback of an old one is
                    dropped */
  char *port;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_rv;
static void lib_init(void) { lib_rv = ares_library_init(ARES_LIB_INIT_ALL); }

static void arm_timer(crpc__dns *d);

static void on_sock(crpc__io *io, uint32_t events) {
  dns_sock *s = (dns_sock *)io;
  crpc__dns *d = s->d;
  ares_socket_t fd = io->fd;
  bool rd = events & (EPOLLIN | EPOLLERR | EPOLLHUP);
  bool wr = events & EPOLLOUT;
  ares_process_fd(d->ch, rd ? fd : ARES_SOCKET_BAD, wr ? fd : ARES_SOCKET_BAD);
  arm_timer(d);
}

/* c-ares opens, changes or closes a socket. */
static void sock_state(void *data, ares_socket_t fd, int readable,
                       int writable) {
  crpc__dns *d = data;
  dns_sock **pp = &d->socks, *s;
  for (; (s = *pp); pp = &s->next)
    if (s->io.fd == fd)
      break;
  if (!readable && !writable) {
    if (s) {
      crpc__io_unwatch(d->loop, &s->io);
      *pp = s->next;
      crpc__free(&d->mem, s);
    }
    return;
  }
  if (!s) {
    if (!(s = crpc__calloc(&d->mem, 1, sizeof *s)))
      return; /* the lookup times out instead */
    s->io.fd = fd;
    s->io.cb = on_sock;
    s->d = d;
    s->next = d->socks;
    d->socks = s;
  }
  crpc__io_watch(d->loop, &s->io,
                 (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u));
}

static void on_timer(crpc__timer *t) {
  crpc__dns *d = (crpc__dns *)((char *)t - offsetof(crpc__dns, timer));
  ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
  arm_timer(d);
}

static void arm_timer(crpc__dns *d) {
  struct timeval tv, *next = ares_timeout(d->ch, NULL, &tv);
  crpc__timer_stop(d->loop, &d->timer);
  if (!next || d->closing)
    return;
  int64_t ms = (int64_t)next->tv_sec * 1000 + next->tv_usec / 1000 + 1;
  d->timer.cb = on_timer;
  crpc__timer_start(d->loop, &d->timer, crpc__now_ms() + ms);
}

int crpc__dns_new(crpc__dns **out, crpc__loop *loop, const char *server,
                  const crpc_mem *mem, crpc__dns_cb cb, void *ud) {
  pthread_once(&lib_once, lib_init);
  if (lib_rv != ARES_SUCCESS)
    return CRPC_ESYS;
  crpc__dns *d = crpc__calloc(mem, 1, sizeof *d);
  if (!d)
    return CRPC_ENOMEM;
  d->loop = loop;
  d->mem = *mem;
  d->cb = cb;
  d->ud = ud;
  struct ares_options o;
  memset(&o, 0, sizeof o);
  o.sock_state_cb = sock_state;
  o.sock_state_cb_data = d;
  o.timeout = DNS_TIMEOUT_MS;
  o.tries = DNS_TRIES;
  int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
  int rv = ares_init_options(&d->ch, &o, mask);
  if (rv != ARES_SUCCESS) {
    crpc__free(mem, d);
    return rv == ARES_ENOMEM ? CRPC_ENOMEM : CRPC_ESYS;
  }
  if (server && ares_set_servers_ports_csv(d->ch, server) != ARES_SUCCESS) {
    ares_destroy(d->ch);
    crpc__free(mem, d);
    return CRPC_ETARGET;
  }
  *out = d;
  return 0;
}

typedef struct lookup {
  crpc__dns *d;
  unsigned gen;
  int port;
} lookup;

static void on_addrinfo(void *arg, int status, int timeouts,
                        struct ares_addrinfo *res) {
  lookup *l = arg;
  crpc__dns *d = l->d;
  CRPC__UNUSED(timeouts);
  bool mine = !d->closing && l->gen == d->gen;
  int port = l->port;
  crpc__free(&d->mem, l);
  if (!mine) {
    if (res)
      ares_freeaddrinfo(res);
    return;
  }
  d->busy = false;
  if (status != ARES_SUCCESS || !res) {
    char why[128];
    snprintf(why, sizeof why, "%s", status == ARES_ENOTFOUND
                                        ? "no such name (NXDOMAIN)"
                                        : ares_strerror(status));
    if (res)
      ares_freeaddrinfo(res);
    d->cb(d->ud, NULL, 0, why);
    return;
  }
  size_t n = 0;
  for (struct ares_addrinfo_node *ai = res->nodes; ai; ai = ai->ai_next)
    n++;
  if (n > CRPC__RESOLVER_MAX_ADDRS)
    n = CRPC__RESOLVER_MAX_ADDRS;
  crpc__addr *addrs = n ? crpc__calloc(&d->mem, n, sizeof *addrs) : NULL;
  size_t k = 0;
  for (struct ares_addrinfo_node *ai = res->nodes; ai && addrs && k < n;
       ai = ai->ai_next) {
    if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
        ai->ai_addrlen > sizeof addrs[k].ss)
      continue; /* a malformed answer never becomes an address */
    memcpy(&addrs[k].ss, ai->ai_addr, ai->ai_addrlen);
    addrs[k].len = (socklen_t)ai->ai_addrlen;
    if (ai->ai_family == AF_INET)
      ((struct sockaddr_in *)&addrs[k].ss)->sin_port = htons((uint16_t)port);
    else
      ((struct sockaddr_in6 *)&addrs[k].ss)->sin6_port =
          htons((uint16_t)port);
    k++;
  }
  ares_freeaddrinfo(res);
  if (n && !addrs)
    d->cb(d->ud, NULL, 0, "out of memory");
  else if (k == 0)
    d->cb(d->ud, NULL, 0, "no address in the answer");
  else
    d->cb(d->ud, addrs, k, NULL);
  crpc__free(&d->mem, addrs);
}

int crpc__dns_lookup(crpc__dns *d, const char *host, int port) {
  if (d->busy)
    return 0; /* the answer on its way serves this request too */
  lookup *l = crpc__malloc(&d->mem, sizeof *l);
  if (!l)
    return CRPC_ENOMEM;
  l->d = d;
  l->gen = ++d->gen;
  l->port = port;
  d->busy = true;
  struct ares_addrinfo_hints hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  /* may answer at once (a number, /etc/hosts): then on_addrinfo ran */
  ares_getaddrinfo(d->ch, host, NULL, &hints, on_addrinfo, l);
  arm_timer(d);
  return 0;
}

void crpc__dns_free(crpc__dns *d) {
  if (!d)
    return;
  d->closing = true; /* outstanding callbacks (ARES_EDESTRUCTION) drop */
  crpc__timer_stop(d->loop, &d->timer);
  ares_destroy(d->ch); /* closes its sockets through sock_state */
  while (d->socks) {
    dns_sock *s = d->socks;
    d->socks = s->next;
    crpc__io_unwatch(d->loop, &s->io);
    crpc__free(&d->mem, s);
  }
  crpc_mem mem = d->mem;
  crpc__free(&mem, d);
}
