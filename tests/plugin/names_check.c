/*
 * names_check: checks names.c's model of protoc-c against protoc-c itself.
 *
 *   names_check SET.pb OUT_DIR
 *
 * SET.pb is `protoc --include_imports --descriptor_set_out`, OUT_DIR holds
 * protoc-c's foo.pb-c.h/.c for every file of the set. For each file it
 * compares cg_pbc_names() with the identifiers in protoc-c's output (comments
 * and string literals skipped), both ways:
 *   - every name we predict occurs in protoc-c's output;
 *   - every identifier of protoc-c's output that contains "__" (all its
 *     generated names but top-level types of package-less files) is one we
 *     predict for some file of the set, or protobuf-c's own.
 * So the collision check in model.c sees exactly what protoc-c emits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  cg_buf b = {0};
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    cg_buf_append(&b, chunk, n);
  fclose(f);
  if (b.data == NULL)
    cg_buf_append(&b, "", 0);
  *len = b.len;
  return b.data;
}

static bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_ident_char(char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* Adds the identifiers of C source |s| to |out| (comments, strings,
 * character constants and numbers skipped). */
static void tokenize(cg_arena *a, const char *s, size_t n, cg_nameset *out) {
  size_t i = 0;
  while (i < n) {
    char c = s[i];
    if (c == '/' && i + 1 < n && s[i + 1] == '/') {
      while (i < n && s[i] != '\n')
        i++;
    } else if (c == '/' && i + 1 < n && s[i + 1] == '*') {
      i += 2;
      while (i + 1 < n && !(s[i] == '*' && s[i + 1] == '/'))
        i++;
      i += 2;
    } else if (c == '"' || c == '\'') {
      i++;
      while (i < n && s[i] != c) {
        if (s[i] == '\\')
          i++;
        i++;
      }
      i++;
    } else if (c >= '0' && c <= '9') {
      while (i < n && (is_ident_char(s[i]) || s[i] == '.'))
        i++;
    } else if (is_ident_start(c)) {
      size_t j = i;
      while (j < n && is_ident_char(s[j]))
        j++;
      cg_nameset_add(out, cg_strndup(a, s + i, j - i), CG_NAME_IDENT, false,
                     "");
      i = j;
    } else {
      i++;
    }
  }
}

static int by_name(const void *x, const void *y) {
  return strcmp(((const cg_name *)x)->name, ((const cg_name *)y)->name);
}

static bool contains(const cg_nameset *s, const char *name) {
  cg_name key = {name, NULL, CG_NAME_IDENT, false, 0};
  return bsearch(&key, s->v, s->n, sizeof(*s->v), by_name) != NULL;
}

static void sort(cg_nameset *s) {
  if (s->n)
    qsort(s->v, s->n, sizeof(*s->v), by_name);
}

/* protobuf-c's own names and the parts of protoc-c output that are not
 * per-proto names. */
static bool is_library_name(const char *t) {
  return strncmp(t, "PROTOBUF_C", 10) == 0 ||
         strncmp(t, "protobuf_c", 10) == 0 || strncmp(t, "__", 2) == 0 ||
         strcmp(t, "function_prefix__") == 0;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s SET.pb OUT_DIR\n", argv[0]);
    return 2;
  }
  size_t len;
  char *data = slurp(argv[1], &len);
  if (data == NULL) {
    perror(argv[1]);
    return 2;
  }
  Google__Protobuf__FileDescriptorSet *set =
      google__protobuf__file_descriptor_set__unpack(NULL, len,
                                                    (const uint8_t *)data);
  free(data);
  if (set == NULL) {
    fprintf(stderr, "%s: not a FileDescriptorSet\n", argv[1]);
    return 2;
  }

  cg_arena arena = {0};
  cg_arena *a = &arena;
  int failures = 0;
  size_t checked = 0;

  /* Every name we predict, over all files: a file's output also names
   * its imports' types. */
  cg_nameset all = {0};
  cg_nameset *per_file = cg_alloc(a, set->n_file * sizeof(*per_file));
  for (size_t i = 0; i < set->n_file; i++) {
    const char *err = NULL;
    if (cg_pbc_names(a, &per_file[i], set->file[i], &err) != 0) {
      fprintf(stderr, "%s: %s\n", set->file[i]->name, err);
      return 1;
    }
    for (size_t k = 0; k < per_file[i].n; k++)
      cg_nameset_add(&all, per_file[i].v[k].name, CG_NAME_IDENT, false, "");
  }
  sort(&all);

  for (size_t i = 0; i < set->n_file; i++) {
    const char *base = cg_strip_proto(a, set->file[i]->name);
    cg_nameset tokens = {0};
    bool any = false;
    static const char *const exts[] = {"pb-c.h", "pb-c.c"};
    for (size_t e = 0; e < 2; e++) {
      const char *path = cg_sprintf(a, "%s/%s.%s", argv[2], base, exts[e]);
      size_t n;
      char *src = slurp(path, &n);
      if (src == NULL)
        continue;
      any = true;
      tokenize(a, src, n, &tokens);
      free(src);
    }
    if (!any) /* e.g. protobuf-c.proto: no_generate */
      goto next;
    sort(&tokens);
    checked++;

    for (size_t k = 0; k < per_file[i].n; k++) {
      const char *name = per_file[i].v[k].name;
      size_t nl = strlen(name);
      /* _X_IS_INT_SIZE comes from PROTOBUF_C__FORCE_ENUM_TO_BE_INT_SIZE(X) */
      if (nl > 13 && name[0] == '_' &&
          strcmp(name + nl - 12, "_IS_INT_SIZE") == 0)
        name = cg_strndup(a, name + 1, nl - 13);
      if (!contains(&tokens, name)) {
        printf("%s: predicted \"%s\" (%s) is not in protoc-c's output\n",
               set->file[i]->name, per_file[i].v[k].name,
               per_file[i].v[k].origin);
        failures++;
      }
    }
    for (size_t k = 0; k < tokens.n; k++) {
      const char *t = tokens.v[k].name;
      if (k > 0 && strcmp(t, tokens.v[k - 1].name) == 0)
        continue;
      if (strstr(t, "__") == NULL || is_library_name(t))
        continue;
      /* PROTOBUF_C__FORCE_ENUM_TO_BE_INT_SIZE(X) makes _X_IS_INT_SIZE */
      if (contains(&all, cg_sprintf(a, "_%s_IS_INT_SIZE", t)))
        continue;
      if (!contains(&all, t)) {
        printf("%s: protoc-c emits \"%s\", which names.c does not predict\n",
               set->file[i]->name, t);
        failures++;
      }
    }
  next:
    cg_nameset_free(&tokens);
  }

  for (size_t i = 0; i < set->n_file; i++)
    cg_nameset_free(&per_file[i]);
  cg_nameset_free(&all);
  cg_arena_free(a);
  google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
  if (checked == 0) {
    printf("no protoc-c output found in %s\n", argv[2]);
    return 1;
  }
  printf("%zu file(s) checked, %d mismatch(es)\n", checked, failures);
  return failures ? 1 : 0;
}
