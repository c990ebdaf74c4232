/*
 * printer.c: the plugin's memory and text output. An arena holds every
 * string the plugin computes (freed once at exit); cg_buf is a growable
 * byte buffer; cg_printer indents lines as protobuf's io::Printer does.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

static void out_of_memory(void) {
  fputs("protoc-gen-crpc: out of memory\n", stderr);
  exit(2);
}

void *cg_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (p == NULL)
    out_of_memory();
  return p;
}

void *cg_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL)
    out_of_memory();
  return q;
}

/* ---- arena ---- */

struct cg_arena_block {
  cg_arena_block *next;
  max_align_t data[]; /* keeps every allocation suitably aligned */
};

void *cg_alloc(cg_arena *a, size_t n) {
  /* One block per allocation: the plugin makes few and small ones, and
   * this keeps the arena trivially correct. */
  if (n > SIZE_MAX - sizeof(cg_arena_block))
    out_of_memory();
  cg_arena_block *b = cg_xmalloc(sizeof(*b) + n);
  b->next = a->head;
  a->head = b;
  memset(b->data, 0, n);
  return b->data;
}

char *cg_strndup(cg_arena *a, const char *s, size_t n) {
  char *d = cg_alloc(a, n + 1);
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *cg_strdup(cg_arena *a, const char *s) {
  return cg_strndup(a, s, strlen(s));
}

char *cg_sprintf(cg_arena *a, const char *fmt, ...) {
  cg_buf b = {0};
  va_list ap;
  va_start(ap, fmt);
  cg_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  char *s = cg_strndup(a, b.data ? b.data : "", b.len);
  cg_buf_free(&b);
  return s;
}

void cg_arena_free(cg_arena *a) {
  cg_arena_block *b = a->head;
  while (b != NULL) {
    cg_arena_block *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
}

/* ---- buffer ---- */

static void buf_reserve(cg_buf *b, size_t extra) {
  if (extra > SIZE_MAX / 2 - b->len)
    out_of_memory();
  size_t need = b->len + extra + 1;
  if (need <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  b->data = cg_xrealloc(b->data, cap);
  b->cap = cap;
}

void cg_buf_append(cg_buf *b, const char *s, size_t n) {
  buf_reserve(b, n);
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void cg_buf_puts(cg_buf *b, const char *s) { cg_buf_append(b, s, strlen(s)); }

void cg_buf_putc(cg_buf *b, char c) { cg_buf_append(b, &c, 1); }

void cg_buf_vprintf(cg_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) {
    fputs("protoc-gen-crpc: bad format string\n", stderr);
    exit(2);
  }
  buf_reserve(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void cg_buf_printf(cg_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  cg_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

void cg_buf_free(cg_buf *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

/* ---- printer ---- */

static void print_text(cg_printer *p, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    const char *nl = memchr(s + i, '\n', n - i);
    size_t end = nl ? (size_t)(nl - s) + 1 : n;
    /* Empty lines stay empty: no trailing spaces in generated files. */
    if (p->at_line_start && s[i] != '\n')
      for (int k = 0; k < p->indent; k++)
        cg_buf_puts(&p->out, "  ");
    cg_buf_append(&p->out, s + i, end - i);
    p->at_line_start = nl != NULL;
    i = end;
  }
}

void cg_print(cg_printer *p, const char *fmt, ...) {
  cg_buf tmp = {0};
  va_list ap;
  va_start(ap, fmt);
  cg_buf_vprintf(&tmp, fmt, ap);
  va_end(ap);
  print_text(p, tmp.data ? tmp.data : "", tmp.len);
  cg_buf_free(&tmp);
}

void cg_indent(cg_printer *p) { p->indent++; }

void cg_outdent(cg_printer *p) {
  if (p->indent > 0)
    p->indent--;
}

void cg_print_call(cg_printer *p, const char *head, const char *const *params,
                   size_t n_params, const char *tail) {
  enum { COLS = 80, CONT = 4 };
  size_t base = (size_t)p->indent * 2;
  size_t one_line = base + strlen(head) + 1 + strlen(tail) + 1;
  for (size_t i = 0; i < n_params; i++)
    one_line += strlen(params[i]) + (i ? 2 : 0);
  cg_buf line = {0};
  cg_buf_puts(&line, head);
  cg_buf_putc(&line, '(');
  if (one_line <= COLS) {
    for (size_t i = 0; i < n_params; i++) {
      if (i)
        cg_buf_puts(&line, ", ");
      cg_buf_puts(&line, params[i]);
    }
  } else {
    /* Break after "(" and fill; a parameter too long for a line of its
     * own still gets one. */
    size_t col = COLS; /* force a break before the first parameter */
    for (size_t i = 0; i < n_params; i++) {
      size_t w = strlen(params[i]) + (i + 1 < n_params ? 1 : strlen(tail) + 1);
      if (col + 1 + w > COLS) {
        cg_buf_putc(&line, '\n');
        for (size_t k = 0; k < CONT; k++)
          cg_buf_putc(&line, ' ');
        col = base + CONT;
      } else {
        cg_buf_putc(&line, ' ');
        col++;
      }
      cg_buf_puts(&line, params[i]);
      col += strlen(params[i]);
      if (i + 1 < n_params) {
        cg_buf_putc(&line, ',');
        col++;
      }
    }
  }
  cg_buf_putc(&line, ')');
  cg_buf_puts(&line, tail);
  cg_buf_putc(&line, '\n');
  print_text(p, line.data, line.len);
  cg_buf_free(&line);
}
