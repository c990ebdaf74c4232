/*
 * sock.h: target parsing, name resolution and non-blocking sockets.
 */
#ifndef CRPC_SOCK_H
#define CRPC_SOCK_H

#include <stdbool.h>
#include <sys/socket.h>

#include <crpc/common.h>

typedef struct crpc__addr {
  struct sockaddr_storage ss;
  socklen_t len;
} crpc__addr;

/*
 * Parses and resolves |target| ("host:port", "ipv4:a.b.c.d:p",
 * "ipv6:[::1]:p", "[::1]:p", "dns:///host:p", "unix:path", "unix:///path",
 * and for |passive| listeners ":p" meaning every interface). Fills up to
 * |max| addresses. |host_out| (may be NULL) receives the host part (the
 * default :authority / TLS name; from |mem|, NULL: libc). Returns the
 * number of addresses
 * (> 0), or CRPC_ETARGET (malformed), CRPC_ESYS (well-formed but
 * it does not resolve) or CRPC_ENOMEM.
 */
int crpc__resolve(const char *target, bool passive, crpc__addr *addrs,
                  int max, char **host_out, const crpc_mem *mem);

/*
 * The default :authority and TLS name of a client |target| (any form
 * crpc__resolve takes, plus "dns://server/name:port" and comma-separated
 * "ipv4:"/"ipv6:" lists, whose first entry counts): "name:port" into
 * |authority_out| and "name" into |host_out| (both from |mem|; "localhost"
 * for unix: targets). No name is looked up. Returns 0, CRPC_ETARGET or
 * CRPC_ENOMEM.
 */
int crpc__target_names(const char *target, char **authority_out,
                       char **host_out, const crpc_mem *mem);

/* A listening, non-blocking socket; |port_out| receives the bound port (0
 * for unix sockets). Returns the fd, or CRPC_EADDRINUSE / CRPC_ESYS. */
int crpc__sock_listen(const crpc__addr *a, int *port_out);

/* Starts a non-blocking connect. Returns the fd (connection may still be in
 * progress: wait for writability, then crpc__sock_connect_result), or
 * CRPC_ESYS. */
int crpc__sock_connect(const crpc__addr *a);
/* 0 when connected, else the errno of the failed connect. */
int crpc__sock_connect_result(int fd);

/* Accepts one connection (non-blocking, close-on-exec, TCP_NODELAY).
 * Returns the fd, or -1 (errno set; EAGAIN when none is waiting). */
int crpc__sock_accept(int lfd);

/* "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", "unix:/path". */
void crpc__sock_peer_string(int fd, char *buf, size_t len);

#endif
