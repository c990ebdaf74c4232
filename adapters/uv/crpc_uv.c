/*
 * crpc_uv.c: drives a crpc_loop from libuv through crpc's socket-callback
 * mode: one uv_poll_t per descriptor crpc asks to watch, one uv_timer_t
 * for crpc's next deadline. The adapter's own handles use libc (libuv
 * frees them late, from close callbacks); the loop uses |mem|.
 */
#include <stdlib.h>
#include <string.h>

#include <crpc/uv.h>

typedef struct watch {
  uv_poll_t poll; /* first: the handle is the allocation */
  struct crpc_uv *cu;
  int fd;
} watch;

struct crpc_uv {
  uv_loop_t *uv;
  crpc_loop *loop;
  uv_timer_t *timer; /* its own allocation: closed asynchronously */
  watch **byfd;
  size_t nbyfd;
};

static void on_closed(uv_handle_t *h) { free(h); }

static void on_poll(uv_poll_t *p, int status, int events) {
  watch *w = (watch *)p;
  unsigned ev = 0;
  if (status < 0) /* an error on the socket: let crpc read and write it */
    ev = CRPC_LOOP_READ | CRPC_LOOP_WRITE;
  if (events & (UV_READABLE | UV_DISCONNECT))
    ev |= CRPC_LOOP_READ;
  if (events & UV_WRITABLE)
    ev |= CRPC_LOOP_WRITE;
  crpc_loop_fd_ready(w->cu->loop, w->fd, ev);
}

static void stop_watch(struct crpc_uv *cu, int fd) {
  watch *w = cu->byfd[fd];
  uv_poll_stop(&w->poll); /* crpc may close the fd right after */
  uv_close((uv_handle_t *)&w->poll, on_closed);
  cu->byfd[fd] = NULL;
}

static void on_watch(crpc_loop *loop, int fd, unsigned events, void *ud) {
  struct crpc_uv *cu = ud;
  (void)loop;
  watch *w = (size_t)fd < cu->nbyfd ? cu->byfd[fd] : NULL;
  if (!events) {
    if (w)
      stop_watch(cu, fd);
    return;
  }
  if (!w) {
    if ((size_t)fd >= cu->nbyfd) {
      size_t n = cu->nbyfd ? cu->nbyfd : 64;
      while (n <= (size_t)fd)
        n *= 2;
      watch **m = realloc(cu->byfd, n * sizeof *m);
      if (!m)
        return; /* crpc's deadlines still end the calls on this fd */
      memset(m + cu->nbyfd, 0, (n - cu->nbyfd) * sizeof *m);
      cu->byfd = m;
      cu->nbyfd = n;
    }
    if ((w = malloc(sizeof *w)) == NULL)
      return;
    if (uv_poll_init(cu->uv, &w->poll, fd) != 0) {
      free(w);
      return;
    }
    w->cu = cu;
    w->fd = fd;
    cu->byfd[fd] = w;
  }
  int uvev = (events & CRPC_LOOP_READ ? UV_READABLE | UV_DISCONNECT : 0) |
             (events & CRPC_LOOP_WRITE ? UV_WRITABLE : 0);
  uv_poll_start(&w->poll, uvev, on_poll);
}

static void on_uv_timer(uv_timer_t *t) {
  struct crpc_uv *cu = t->data;
  crpc_loop_timer_expired(cu->loop);
}

static void on_timer(crpc_loop *loop, int64_t ms, void *ud) {
  struct crpc_uv *cu = ud;
  (void)loop;
  if (ms < 0)
    uv_timer_stop(cu->timer);
  else
    uv_timer_start(cu->timer, on_uv_timer, (uint64_t)ms, 0);
}

int crpc_uv_new(crpc_uv **out, uv_loop_t *uv, const crpc_mem *mem) {
  if (!out || !uv)
    return CRPC_EINVAL;
  struct crpc_uv *cu = calloc(1, sizeof *cu);
  if (!cu)
    return CRPC_ENOMEM;
  cu->uv = uv;
  if ((cu->timer = malloc(sizeof *cu->timer)) == NULL) {
    free(cu);
    return CRPC_ENOMEM;
  }
  uv_timer_init(uv, cu->timer);
  cu->timer->data = cu;
  crpc_loop_opts lo = {
      .watch = on_watch, .timer = on_timer, .user_data = cu, .mem = mem};
  int rv = crpc_loop_new(&cu->loop, &lo);
  if (rv != 0) {
    crpc_uv_free(cu);
    return rv;
  }
  *out = cu;
  return 0;
}

crpc_loop *crpc_uv_loop(crpc_uv *cu) { return cu ? cu->loop : NULL; }

void crpc_uv_free(crpc_uv *cu) {
  if (!cu)
    return;
  for (size_t fd = 0; fd < cu->nbyfd; fd++)
    if (cu->byfd[fd])
      stop_watch(cu, (int)fd);
  uv_timer_stop(cu->timer);
  uv_close((uv_handle_t *)cu->timer, on_closed);
  crpc_loop_free(cu->loop); /* closes its descriptors: none is polled */
  free(cu->byfd);
  free(cu);
}
