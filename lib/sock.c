/*
 * sock.c: gRPC target syntax, getaddrinfo and the socket calls, kept apart
 * so the transport never touches sockaddr details.
 */
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "internal.h"

static int resolve_unix(const char *path, crpc__addr *a, char **host_out,
                        const crpc_mem *mem) {
  struct sockaddr_un *un = (struct sockaddr_un *)&a->ss;
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof un->sun_path)
    return CRPC_ETARGET;
  memset(a, 0, sizeof *a);
  un->sun_family = AF_UNIX;
  memcpy(un->sun_path, path, n + 1);
  a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  if (host_out && !(*host_out = crpc__strdup(mem, "localhost")))
    return CRPC_ENOMEM;
  return 1;
}

/* Splits "host:port" / "[v6]:port" into host and port (pointers into the
 * copy |buf|). */
static int split_host_port(char *buf, char **host, char **port) {
  char *colon;
  if (buf[0] == '[') {
    char *close = strchr(buf, ']');
    if (!close || close[1] != ':')
      return -1;
    *close = '\0';
    *host = buf + 1;
    *port = close + 2;
  } else {
    colon = strrchr(buf, ':');
    if (!colon || strchr(buf, ':') != colon)
      return -1; /* bare IPv6 needs brackets */
    *colon = '\0';
    *host = buf;
    *port = colon + 1;
  }
  if (**port == '\0' || strspn(*port, "0123456789") != strlen(*port) ||
      strlen(*port) > 5 || atoi(*port) > 65535)
    return -1;
  return 0;
}

int crpc__resolve(const char *target, bool passive, crpc__addr *addrs,
                  int max, char **host_out, const crpc_mem *mem) {
  int family = AF_UNSPEC;
  if (host_out)
    *host_out = NULL;
  if (!target || !*target || max < 1)
    return CRPC_ETARGET;
  if (strncmp(target, "unix:", 5) == 0) {
    const char *p = target + 5;
    if (strncmp(p, "//", 2) == 0)
      p += 2; /* unix:///abs -> /abs */
    return resolve_unix(p, &addrs[0], host_out, mem);
  }
  if (strncmp(target, "ipv4:", 5) == 0) {
    target += 5;
    family = AF_INET;
  } else if (strncmp(target, "ipv6:", 5) == 0) {
    target += 5;
    family = AF_INET6;
  } else if (strncmp(target, "dns:///", 7) == 0) {
    target += 7;
  } else if (strncmp(target, "dns:", 4) == 0) {
    target += 4;
  }
  char *buf = crpc__strdup(mem, target), *host, *port;
  if (!buf)
    return CRPC_ENOMEM;
  if (split_host_port(buf, &host, &port) != 0) {
    crpc__free(mem, buf);
    return CRPC_ETARGET;
  }
  /* the host is known even when it does not resolve (TLS name) */
  if (host_out &&
      !(*host_out = crpc__strdup(mem, *host ? host : "localhost"))) {
    crpc__free(mem, buf);
    return CRPC_ENOMEM;
  }
  struct addrinfo hints = {0}, *res = NULL, *ai;
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const char *node = *host ? host : (passive ? NULL : "localhost");
  if (getaddrinfo(node, port, &hints, &res) != 0 || !res) {
    crpc__free(mem, buf);
    return CRPC_ESYS; /* well-formed, but does not resolve (now) */
  }
  int n = 0;
  for (ai = res; ai && n < max; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof addrs[n].ss)
      continue;
    memset(&addrs[n], 0, sizeof addrs[n]);
    memcpy(&addrs[n].ss, ai->ai_addr, ai->ai_addrlen);
    addrs[n].len = ai->ai_addrlen;
    n++;
  }
  freeaddrinfo(res);
  crpc__free(mem, buf);
  return n > 0 ? n : CRPC_ESYS;
}

int crpc__target_names(const char *target, char **authority_out,
                       char **host_out, const crpc_mem *mem) {
  *authority_out = *host_out = NULL;
  if (!target || !*target)
    return CRPC_ETARGET;
  if (strncmp(target, "unix:", 5) == 0) {
    *authority_out = crpc__strdup(mem, "localhost");
    *host_out = crpc__strdup(mem, "localhost");
    return *authority_out && *host_out ? 0 : CRPC_ENOMEM;
  }
  const char *t = target;
  if (strncmp(t, "ipv4:", 5) == 0 || strncmp(t, "ipv6:", 5) == 0) {
    t += 5;
  } else if (strncmp(t, "dns://", 6) == 0) {
    t = strchr(t + 6, '/'); /* dns://[server]/name:port */
    if (!t)
      return CRPC_ETARGET;
    t++;
  } else if (strncmp(t, "dns:", 4) == 0) {
    t += 4;
  }
  size_t n = strcspn(t, ",");
  char *buf = crpc__malloc(mem, n + 1), *host, *port;
  if (!buf)
    return CRPC_ENOMEM;
  memcpy(buf, t, n);
  buf[n] = '\0';
  *authority_out = crpc__strdup(mem, buf);
  if (!*authority_out) {
    crpc__free(mem, buf);
    return CRPC_ENOMEM;
  }
  if (split_host_port(buf, &host, &port) != 0) {
    crpc__free(mem, buf);
    crpc__free(mem, *authority_out);
    *authority_out = NULL;
    return CRPC_ETARGET;
  }
  *host_out = crpc__strdup(mem, *host ? host : "localhost");
  crpc__free(mem, buf);
  if (!*host_out) {
    crpc__free(mem, *authority_out);
    *authority_out = NULL;
    return CRPC_ENOMEM;
  }
  return 0;
}

int crpc__sock_listen(const crpc__addr *a, int *port_out) {
  int one = 1;
  int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (fd < 0)
    return CRPC_ESYS;
  if (a->ss.ss_family != AF_UNIX)
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (a->ss.ss_family == AF_INET6)
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
    int e = errno;
    close(fd);
    return e == EADDRINUSE ? CRPC_EADDRINUSE : CRPC_ESYS;
  }
  if (listen(fd, 1024) != 0) {
    close(fd);
    return CRPC_ESYS;
  }
  if (port_out) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    *port_out = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
      if (ss.ss_family == AF_INET)
        *port_out = ntohs(((struct sockaddr_in *)&ss)->sin_port);
      else if (ss.ss_family == AF_INET6)
        *port_out = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
  }
  return fd;
}

static void tune(int fd, int family) {
  int one = 1;
  if (family != AF_UNIX)
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int crpc__sock_connect(const crpc__addr *a) {
  int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (fd < 0)
    return CRPC_ESYS;
  tune(fd, a->ss.ss_family);
  if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0 &&
      errno != EINPROGRESS && errno != EAGAIN) {
    close(fd);
    return CRPC_ESYS;
  }
  return fd;
}

int crpc__sock_connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return errno;
  return err;
}

int crpc__sock_accept(int lfd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int fd = accept4(lfd, (struct sockaddr *)&ss, &len,
                   SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0)
    return -1;
  tune(fd, ss.ss_family);
  return fd;
}

void crpc__sock_peer_string(int fd, char *buf, size_t len) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char ip[INET6_ADDRSTRLEN];
  if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
    snprintf(buf, len, "unknown");
    return;
  }
  if (ss.ss_family == AF_INET) {
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    snprintf(buf, len, "ipv4:%s:%u", ip, ntohs(in->sin_port));
  } else if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    snprintf(buf, len, "ipv6:[%s]:%u", ip, ntohs(in6->sin6_port));
  } else {
    struct sockaddr_un un;
    socklen_t ul = sizeof un;
    if (getsockname(fd, (struct sockaddr *)&un, &ul) == 0 &&
        ul > offsetof(struct sockaddr_un, sun_path))
      snprintf(buf, len, "unix:%s", un.sun_path);
    else
      snprintf(buf, len, "unix:");
  }
}
