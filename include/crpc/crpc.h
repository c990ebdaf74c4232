/**
 * \file
 * crpc.h: the umbrella header. See README.md for a tour.
 */
#ifndef CRPC_CRPC_H
#define CRPC_CRPC_H

#include <crpc/common.h>
#include <crpc/status.h>
#include <crpc/metadata.h>
#include <crpc/method.h>
#include <crpc/call.h>
#include <crpc/loop.h>
#include <crpc/tls.h>
#include <crpc/resolver.h>
#include <crpc/channel.h>
#include <crpc/server.h>
#include <crpc/health.h>
#include <crpc/reflection.h>
#include <crpc/metrics.h>
#include <crpc/interceptor.h>

#endif /* CRPC_CRPC_H */
