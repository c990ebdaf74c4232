/*
 * server_ext.h: what server.c shows the built-in services (reflection.c)
 * of a server, beyond the public API. Never installed.
 *
 * The registered services and methods are fixed once the server has
 * started (registration refuses with CRPC_ESTATE after that), so the
 * accessors may be called from any thread then, without a lock; before
 * that, only from the thread that sets the server up.
 */
#ifndef CRPC_SERVER_EXT_H
#define CRPC_SERVER_EXT_H

#include <stddef.h>

#include <crpc/server.h>

/* State a built-in keeps per server and the server frees with itself,
 * after every handler has returned. Embed it first in the owner's struct;
 * |key| tells the owners apart (the address of one of the owner's
 * statics). */
typedef struct crpc__server_ext crpc__server_ext;
struct crpc__server_ext {
  crpc__server_ext *next;
  const void *key;
  void (*free)(crpc__server_ext *e);
};

/* Attaches |e| to |s| (from the set-up thread, before start). */
void crpc__server_ext_add(crpc_server *s, crpc__server_ext *e);
/* The extension attached under |key|, or NULL. */
crpc__server_ext *crpc__server_ext_find(const crpc_server *s, const void *key);

/* The services registered through crpc_server_register_service(), in
 * registration order: |*out| gets the array, the count is returned. */
size_t crpc__server_services(const crpc_server *s,
                             const crpc_service *const **out);
/* The path ("/pkg.Service/Method") of registered method |i|, or NULL when
 * |i| is past the last one. Covers crpc_server_register() too. */
const char *crpc__server_method_path(const crpc_server *s, size_t i);

#endif /* CRPC_SERVER_EXT_H */
