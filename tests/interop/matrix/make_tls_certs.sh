#!/bin/sh
# make_tls_certs.sh DIR: the throw-away PKI of the TLS interop matrix, made
# at test time (nothing committed can expire or leak).
#
#   DIR/ca.pem, ca.key          a test certificate authority
#   DIR/server.pem, server.key  SANs foo.test.google.fr (the name gRPC's
#                               interop clients pass as
#                               --server_host_override), localhost,
#                               127.0.0.1
#
# Valid for 2 days: a build tree left around does not keep usable keys.
set -eu

dir=${1:?usage: make_tls_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
rm -f ca.pem ca.key server.pem server.key server.csr server.ext

# EC P-256: quick to make, accepted by OpenSSL, BoringSSL and grpcio.
newkey() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$1.key" 2>/dev/null
}

newkey ca
openssl req -x509 -new -key ca.key -out ca.pem -days 2 \
  -subj "/O=crpc interop test/CN=crpc interop test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

newkey server
openssl req -new -key server.key -out server.csr \
  -subj "/O=crpc interop test/CN=*.test.google.fr" 2>/dev/null
printf '%s\n' "basicConstraints=CA:FALSE" \
  "keyUsage=critical,digitalSignature,keyEncipherment" \
  "extendedKeyUsage=serverAuth" \
  "subjectAltName=DNS:foo.test.google.fr,DNS:localhost,IP:127.0.0.1" \
  >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key \
  -set_serial "0x$(openssl rand -hex 8)" -days 2 -sha256 \
  -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext
chmod 600 ./*.key
# Fail the fixture (and so every TLS pair, plainly) if the chain is wrong.
openssl verify -CAfile ca.pem server.pem >/dev/null
