/**
 * @file resolver.h
 * A resolver of the program's own: the channel asks it for addresses and
 * the program answers with crpc_channel_set_addresses(), so a service
 * discovery system of its own (a registry, a config file it watches) feeds
 * a channel without DNS. Built-in schemes need none of this: "dns:",
 * "ipv4:", "ipv6:" and "unix:" targets resolve inside crpc (channel.h).
 */
#ifndef CRPC_RESOLVER_H
#define CRPC_RESOLVER_H

#include <stddef.h>

#include <crpc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct crpc_channel; /* channel.h */

/** A program's resolver, given as crpc_channel_opts.resolver (copied).
 * With one, the channel's target is only a name (its authority and TLS
 * name unless overridden); the addresses come from the program. */
typedef struct crpc_resolver {
  /** Called when the channel wants addresses: before its first connection,
   * and again when a connection is lost or refused or the server sends
   * GOAWAY (no more often than crpc_channel_opts.min_resolution_interval_ms).
   * Runs on the channel's loop thread; must not block. The program answers
   * with crpc_channel_set_addresses(), from inside or later from any
   * thread; until it does, calls wait (wait-for-ready) or fail UNAVAILABLE
   * once the channel has been told an error. */
  void (*resolve)(struct crpc_channel *ch, const char *target, void *user_data);
  void *user_data; /**< passed to |resolve| */
} crpc_resolver;

/**
 * Gives a channel with a crpc_resolver its addresses: |n| strings
 * "1.2.3.4:80", "[::1]:80" or "unix:/path" (copied; the order is the
 * preference order for pick_first). With |n| 0, |error| (copied; NULL: "no
 * addresses") says why resolution failed: calls that do not wait for
 * ready fail UNAVAILABLE with it. The latest update replaces the previous
 * one. Any thread, also from inside |resolve|.
 * Returns 0; CRPC_EINVAL (no crpc_resolver on this channel, or a NULL
 * argument); CRPC_ETARGET (an entry that is not an address: nothing
 * changes); CRPC_ENOMEM.
 */
CRPC_API int crpc_channel_set_addresses(struct crpc_channel *ch,
                                        const char *const *addrs, size_t n,
                                        const char *error);

#ifdef __cplusplus
}
#endif

#endif
