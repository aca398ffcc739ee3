#!/bin/sh
# Regenerates the TLS fixtures in tests/fixtures/tls (long-lived, test-only keys).
# ca.pem/ca.key        test CA
# server.pem/.key      CN=localhost, SAN localhost + 127.0.0.1 + ::1, signed by the CA
# server_ec.pem/.key   the same identity with an ECDSA P-256 key (the bench's second TLS listener)
# other.pem/.key       CN=inherits (a second server identity), signed by the CA
# sni_mail.pem/.key    CN=mail.example.org (SNI tests), signed by the CA
# sni_wild.pem/.key    CN=*.example.net (SNI tests, a wildcard certificate), signed by the CA
# server_enc.key       server.key encrypted with pass phrase "mailgate" (for ssl_password_file)
# client.pem/.key      CN=client.example.com, signed by the CA
# selfsigned.pem/.key  CN=1.example.com, self-signed (an unknown client CA)
# expired.pem/.key     CN=expired.example, self-signed, valid 2020-01-01 to 2021-01-01
# auth_https.pem/.key  CN=auth.mailgate.test (the HTTPS auth service of tests), signed by the CA
# auth_expired.pem/.key the same name, signed by the CA, valid 2020-01-01 to 2021-01-01
set -eu
d=$(dirname "$0")/../tests/fixtures/tls
mkdir -p "$d"; cd "$d"
days=36500
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days $days -subj "/CN=mailgate test CA" 2>/dev/null
mk() { # name cn san [key options]
  # shellcheck disable=SC2086 # the key options are several words
  openssl req ${4:--newkey rsa:2048} -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\n' "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days $days -extfile "$1.ext" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
mk server localhost "DNS:localhost,IP:127.0.0.1,IP:::1"
mk server_ec localhost "DNS:localhost,IP:127.0.0.1,IP:::1" "-newkey ec -pkeyopt ec_paramgen_curve:P-256"
mk other inherits "DNS:inherits"
mk sni_mail mail.example.org "DNS:mail.example.org"
mk sni_wild "*.example.net" "DNS:*.example.net"
mk client client.example.com "DNS:client.example.com"
mk auth_https auth.mailgate.test "DNS:auth.mailgate.test"
openssl pkey -in server.key -aes256 -passout pass:mailgate -out server_enc.key
printf 'wrong\nmailgate\n' > password_file
openssl req -x509 -newkey rsa:2048 -nodes -keyout selfsigned.key -out selfsigned.pem -days $days -subj "/CN=1.example.com" 2>/dev/null
# An already-expired certificate needs explicit dates: `openssl ca` takes them.
t=$(mktemp -d)
mkdir "$t/new"; : > "$t/index.txt"; echo 01 > "$t/serial"
printf '[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\nnew_certs_dir=%s/new\nserial=%s/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' "$t" "$t" "$t" > "$t/ca.cnf"
openssl req -new -newkey rsa:2048 -nodes -keyout expired.key -subj "/CN=expired.example" -out "$t/expired.csr" 2>/dev/null
openssl ca -batch -config "$t/ca.cnf" -selfsign -keyfile expired.key -in "$t/expired.csr" \
  -startdate 20200101000000Z -enddate 20210101000000Z -out expired.pem 2>/dev/null
rm -rf "$t"
t=$(mktemp -d)
mkdir "$t/new"; : > "$t/index.txt"; echo 02 > "$t/serial"
printf '[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\nnew_certs_dir=%s/new\nserial=%s/serial\ndefault_md=sha256\npolicy=p\ncopy_extensions=copy\n[p]\ncommonName=supplied\n' "$t" "$t" "$t" > "$t/ca.cnf"
openssl req -new -newkey rsa:2048 -nodes -keyout auth_expired.key -subj "/CN=auth.mailgate.test" \
  -addext "subjectAltName=DNS:auth.mailgate.test" -out "$t/e.csr" 2>/dev/null
openssl ca -batch -config "$t/ca.cnf" -cert ca.pem -keyfile ca.key -in "$t/e.csr" \
  -startdate 20200101000000Z -enddate 20210101000000Z -out auth_expired.pem 2>/dev/null
rm -rf "$t"
rm -f ca.srl
ls
