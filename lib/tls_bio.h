/*
 * tls_bio.h: the socket BIO under crpc's TLS connections (tls_bio.c): no
 * SIGPIPE, and the records of one write gathered into one send().
 * Everything here runs on the thread that drives the connection.
 */
#ifndef CRPC_TLS_BIO_H
#define CRPC_TLS_BIO_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/bio.h>

#include <crpc/common.h>

/* A BIO over |fd|, its state from |mem|; freed with the SSL it is set on
 * (SSL_free). NULL when out of memory. */
BIO *crpc__tls_bio_new(int fd, const crpc_mem *mem);

/* Until crpc__tls_bio_end_gather(), records are kept in |scratch| (|cap|
 * bytes, lent by the caller: the loop's) and sent when it fills. */
void crpc__tls_bio_gather(BIO *b, uint8_t *scratch, size_t cap);
/* Sends what the scratch buffer holds and gives it back; what the socket
 * does not take stays in the BIO (see crpc__tls_bio_flush). 0, or -1 with
 * errno. */
int crpc__tls_bio_end_gather(BIO *b);

/* Sends records an earlier write left in the BIO: 0 when none is left, 1
 * when the socket is full, -1 with errno on an error. */
int crpc__tls_bio_flush(BIO *b);

#endif
