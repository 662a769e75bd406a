#!/usr/bin/env bash
# Writes a throw-away certificate authority and a server certificate for 127.0.0.1/localhost
# into DIR, for development and tests only (never for production, never committed):
#
#   scripts/dev-certs.sh DIR     -> DIR/ca.pem, DIR/ca-key.pem, DIR/server.pem, DIR/server-key.pem
#
# config/secure/standalone.toml reads ./certs/{server.pem,server-key.pem,ca.pem}; clients trust
# DIR/ca.pem (Java: ssl.truststore.type=PEM, ssl.truststore.location=DIR/ca.pem; librdkafka:
# ssl.ca.location=DIR/ca.pem). Needs the openssl CLI (installed with apt-get when missing).
# Existing files in DIR are replaced. The certificates are valid for 365 days.
set -euo pipefail
if [ $# -ne 1 ]; then echo "usage: $0 DIR" >&2; exit 2; fi
DIR=$1
if ! command -v openssl >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
    $SUDO apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q openssl >/dev/null
fi
mkdir -p "$DIR"
cd "$DIR"
umask 077   # the keys are readable by their owner only
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=chronik development CA" \
    -keyout ca-key.pem -out ca.pem 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server-key.pem -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 365 \
    -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 644 ca.pem server.pem
echo "[dev-certs] wrote $(pwd)/{ca.pem,ca-key.pem,server.pem,server-key.pem} (development only)"
