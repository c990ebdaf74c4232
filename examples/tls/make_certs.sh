#!/bin/sh
# make_certs.sh DIR: a throw-away test PKI for the mTLS greeter.
#
#   DIR/ca.pem, ca.key          a test certificate authority
#   DIR/server.pem, server.key  CN=localhost; SANs localhost, 127.0.0.1, ::1
#   DIR/client.pem, client.key  CN=greeter-client; SANs
#                               URI:spiffe://crpc.test/greeter-client,
#                               DNS:client.crpc.test
#
# Every certificate is valid for CERT_DAYS days (default 30). Never use
# these keys for anything but tests: they sit unencrypted on disk.
set -eu

dir=${1:?usage: make_certs.sh DIR}
days=${CERT_DAYS:-30}
mkdir -p "$dir"
cd "$dir"

# EC P-256 keys: quick to make, and every gRPC stack accepts them.
newkey() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$1.key" 2>/dev/null
}

# ca NAME "SUBJECT": a self-signed CA.
ca() {
  newkey "$1"
  openssl req -x509 -new -key "$1.key" -out "$1.pem" -days "$days" \
    -subj "$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}

# leaf NAME CA "SUBJECT" "EXTENSIONS": a certificate signed by CA.
leaf() {
  newkey "$1"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "$3" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "$4" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days "$days" -sha256 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

ca ca "/O=crpc test/CN=crpc test CA"
leaf server ca "/O=crpc test/CN=localhost" \
  "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1
extendedKeyUsage=serverAuth"
leaf client ca "/O=crpc test/CN=greeter-client" \
  "subjectAltName=URI:spiffe://crpc.test/greeter-client,DNS:client.crpc.test
extendedKeyUsage=clientAuth"
chmod 600 ./*.key
echo "test certificates in $(pwd)"
