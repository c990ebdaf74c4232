#!/bin/sh
# make_test_certs.sh DIR: the PKI of the security tests, made fresh at test
# time (nothing committed can expire). On top of examples/tls/make_certs.sh
# (ca, server, client):
#   alice.pem/key          client: every SAN kind (DNS, IP, URI, email)
#   other_ca.pem/key       a second CA nobody trusts
#   other_server.pem/key   server cert for localhost signed by other_ca
#   other_client.pem/key   client cert signed by other_ca
#   expired_server.pem/key server cert for localhost, expired in 2020
#   wronghost_server.pem/key  server cert for wrong.example only
set -eu

dir=${1:?usage: make_test_certs.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
CERT_DAYS=2 sh "$here/../../examples/tls/make_certs.sh" "$dir" >/dev/null
cd "$dir"

newkey() {
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
    -out "$1.key" 2>/dev/null
}

newcsr() {
  newkey "$1"
  openssl req -new -key "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%s\n' "basicConstraints=CA:FALSE" "$3" >"$1.ext"
}

leaf() { # NAME CA SUBJECT EXT
  newcsr "$1" "$3" "$4"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" \
    -set_serial "0x$(openssl rand -hex 8)" -days 2 -sha256 \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}

newkey other_ca
openssl req -x509 -new -key other_ca.key -out other_ca.pem -days 2 \
  -subj "/O=elsewhere/CN=untrusted CA" \
  -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null

srv="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
leaf other_server other_ca "/CN=localhost" "$srv"
leaf other_client other_ca "/CN=intruder" "extendedKeyUsage=clientAuth"
leaf wronghost_server ca "/CN=wrong.example" "subjectAltName=DNS:wrong.example"
leaf alice ca "/O=crpc test/OU=people/CN=alice" \
  "subjectAltName=DNS:alice.crpc.test,IP:10.0.0.7,URI:spiffe://crpc.test/alice,email:alice@crpc.test"

# An expired certificate needs explicit dates: `openssl ca` takes them.
newcsr expired_server "/CN=localhost" "$srv"
mkdir -p ca_db
: >ca_db/index.txt
cat >ca_db/ca.cnf <<CNF
[ ca ]
default_ca = test_ca
[ test_ca ]
database = ca_db/index.txt
new_certs_dir = ca_db
serial = ca_db/serial
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
CNF
openssl rand -hex 8 >ca_db/serial
openssl ca -batch -config ca_db/ca.cnf -cert ca.pem -keyfile ca.key \
  -in expired_server.csr -out expired_server.pem -notext \
  -startdate 20200101000000Z -enddate 20200102000000Z \
  -extfile expired_server.ext 2>/dev/null
rm -rf ca_db expired_server.csr expired_server.ext
chmod 600 ./*.key
