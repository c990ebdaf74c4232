/*
 * metrics_call.c: where a call meets its recorder and the server's access
 * log. The call code calls these hooks at a call's start and end [loop];
 * with neither a recorder nor an access log they return at the first
 * test, so a server or channel without them pays one branch per call.
 *
 * Message bytes are counted by the transport as messages leave
 * (crpc__call_data_read) and arrive (crpc__call_on_message).
 */
#include <stdio.h>
#include <string.h>

#include "client_internal.h"
#include "server_internal.h"

/* ---- server ---- */

int crpc_server_set_access_log(crpc_server *s, crpc_access_log_cb cb,
                               void *user_data) {
  if (!s)
    return CRPC_EINVAL;
  if (s->state != SRV_NEW)
    return CRPC_ESTATE;
  s->access_log = cb;
  s->access_log_ud = user_data;
  return 0;
}

void crpc_access_log_stderr(const crpc_call_stats *st, const char *line,
                            void *user_data) {
  CRPC__UNUSED(st);
  CRPC__UNUSED(user_data);
  fprintf(stderr, "crpc access: %s\n", line);
}

/* The path as the client sent it, made printable: bytes outside
 * 0x21..0x7e, '\\' and '"' as \xHH, cut at |max| output bytes. */
static void escape_path(char *out, size_t max, const char *in) {
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  for (; *in && n + 5 < max; in++) {
    unsigned char ch = (unsigned char)*in;
    if (ch > 0x20 && ch < 0x7f && ch != '\\' && ch != '"') {
      out[n++] = (char)ch;
    } else {
      out[n++] = '\\';
      out[n++] = 'x';
      out[n++] = hex[ch >> 4];
      out[n++] = hex[ch & 15];
    }
  }
  if (*in && n + 3 < max) { /* cut: say so */
    memcpy(out + n, "...", 3);
    n += 3;
  }
  out[n] = '\0';
}

static void access_log(crpc_server *s, const crpc_call_stats *st) {
  char path[208], line[400];
  escape_path(path, 200, st->path[0] ? st->path : "-");
  snprintf(line, sizeof line,
           "peer=%s method=%s status=%s duration_ms=%.3f req_bytes=%llu "
           "resp_bytes=%llu",
           st->peer[0] ? st->peer : "-", path, crpc_code_name(st->status),
           st->duration_s * 1e3, (unsigned long long)st->rcvd_bytes,
           (unsigned long long)st->sent_bytes);
  s->access_log(st, line, s->access_log_ud);
}

void crpc__mx_server_start(crpc_call *c, crpc_server *s) {
  crpc_metrics *m = s->opts.metrics;
  if (!m && !s->access_log)
    return;
  c->mx_on = true;
  c->mx_start_ns = crpc__mx_now_ns();
  if (!m)
    return;
  crpc__mx_method *row;
  if (c->handler) { /* registered: its own row, found once per method */
    row = atomic_load_explicit(&c->handler->mx, memory_order_acquire);
    if (!row) {
      row = crpc__mx_find(m, CRPC__MX_SERVER, c->handler->method.path, true);
      atomic_store_explicit(&c->handler->mx, row, memory_order_release);
    }
  } else {
    row = crpc__mx_other(m, CRPC__MX_SERVER);
  }
  c->mx = row;
  atomic_fetch_add_explicit(&row->started, 1, memory_order_relaxed);
}

void crpc__mx_server_end(crpc_call *c, crpc_code code) {
  if (!c->mx_on || c->mx_done)
    return;
  c->mx_done = true;
  int64_t dur = crpc__mx_now_ns() - c->mx_start_ns;
  crpc_server *s = c->handler ? c->handler->srv : NULL;
  if (!s && c->conn)
    s = c->conn->server;
  crpc_call_stats st = {
      .kind = CRPC_STATS_SERVER_CALL,
      .method = c->mx ? c->mx->name
                : c->handler && c->handler->method.path[0] == '/'
                    ? c->handler->method.path + 1
                    : "other",
      .path = c->path ? c->path : "",
      .peer = c->peer,
      .status = code,
      .duration_s = (double)dur / 1e9,
      .sent_bytes = c->mx_tx,
      .rcvd_bytes = c->mx_rx,
  };
  if (c->mx) {
    crpc__mx_record(c->mx, code, dur, -1, c->mx_tx, c->mx_rx);
    if (c->mx->rec->cb)
      c->mx->rec->cb(&st, c->mx->rec->cb_ud);
  }
  if (s && s->access_log)
    access_log(s, &st);
}

/* ---- client ---- */

void crpc__mx_client_new(crpc_call *c) {
  crpc_metrics *m = c->channel->metrics;
  if (!m)
    return;
  c->mx_on = true;
  c->mx_call_ns = c->mx_start_ns = crpc__mx_now_ns();
  c->mx = crpc__mx_find(m, CRPC__MX_CLIENT, c->method->path, true);
}

void crpc__mx_client_start(crpc_call *c) {
  if (!c->mx_on)
    return;
  c->mx_start_ns = crpc__mx_now_ns();
  atomic_fetch_add_explicit(&c->mx->started, 1, memory_order_relaxed);
}

static void attempt_record(crpc_call *c, crpc_code code, int64_t att) {
  crpc_metrics *m = c->mx->rec;
  if (!m->cb)
    return;
  crpc_call_stats st = {
      .kind = CRPC_STATS_CLIENT_ATTEMPT,
      .method = c->mx->name,
      .path = c->method->path,
      .peer = "",
      .status = code,
      .duration_s = (double)att / 1e9,
      .sent_bytes = c->mx_tx,
      .rcvd_bytes = c->mx_rx,
  };
  m->cb(&st, m->cb_ud);
}

void crpc__mx_client_attempt_end(crpc_call *c, crpc_code code) {
  if (!c->mx_on || c->mx_done)
    return;
  int64_t att = crpc__mx_now_ns() - c->mx_start_ns;
  crpc__mx_record(c->mx, code, att, -1, c->mx_tx, c->mx_rx);
  attempt_record(c, code, att);
  c->mx_tx = c->mx_rx = 0;
}

void crpc__mx_client_end(crpc_call *c, crpc_code code) {
  if (!c->mx_on || c->mx_done)
    return;
  c->mx_done = true;
  int64_t now = crpc__mx_now_ns();
  int64_t att = now - c->mx_start_ns, call = now - c->mx_call_ns;
  crpc__mx_record(c->mx, code, att, call, c->mx_tx, c->mx_rx);
  crpc_metrics *m = c->mx->rec;
  if (!m->cb)
    return;
  attempt_record(c, code, att);
  crpc_call_stats st = {
      .kind = CRPC_STATS_CLIENT_CALL,
      .method = c->mx->name,
      .path = c->method->path,
      .peer = "",
      .status = code,
      .duration_s = (double)call / 1e9,
      .sent_bytes = c->mx_tx,
      .rcvd_bytes = c->mx_rx,
  };
  m->cb(&st, m->cb_ud);
}
