#!/bin/sh
# make-creds.sh DIR: TLS credentials for the tests, laid out as ferry (and
# QEMU) take them. DIR/x509: a CA, the destination's certificate
# (CN ferry-dest, DNS ferry-dest) and the source's (CN ferry-source);
# DIR/x509-stranger: the same names under a CA nobody trusts;
# DIR/x509-rogue: the real CA, but the stranger's source certificate;
# DIR/x509-other: the real CA and a source certificate it signed for
# another name (CN ferry-other);
# DIR/x509-expired: the real CA and a source certificate it signed that
# expired yesterday;
# DIR/psk and DIR/psk-wrong: keys.psk, the same identity, different keys.
set -e
D=$1
mkdir -p "$D/x509" "$D/x509-stranger" "$D/x509-rogue" "$D/x509-other" "$D/x509-expired" "$D/psk" \
	"$D/psk-wrong"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
# ca DIR NAME: a CA in DIR; cert DIR WHO CN: WHO-cert.pem signed by it.
ca() {
	key "$1/ca-key.pem"
	openssl req -x509 -new -key "$1/ca-key.pem" -out "$1/ca-cert.pem" -subj "/CN=$2" -days 2 2>/dev/null
}
cert() { # DIR WHO CN [DAYS]
	key "$1/$2-key.pem"
	openssl req -new -key "$1/$2-key.pem" -out "$1/$2.csr" -subj "/CN=$3" 2>/dev/null
	printf 'subjectAltName=DNS:%s\n' "$3" >"$1/$2.ext"
	openssl x509 -req -in "$1/$2.csr" -CA "$1/ca-cert.pem" -CAkey "$1/ca-key.pem" \
		-CAcreateserial -out "$1/$2-cert.pem" -days "${4:-2}" -extfile "$1/$2.ext" 2>/dev/null
}
for dir in x509 x509-stranger; do
	ca "$D/$dir" "ferry test CA ($dir)"
	cert "$D/$dir" server ferry-dest
	cert "$D/$dir" client ferry-source
done
cp "$D/x509/ca-cert.pem" "$D/x509-rogue/"
cp "$D/x509/ca-cert.pem" "$D/x509/ca-key.pem" "$D/x509-other/"
cert "$D/x509-other" client ferry-other
cp "$D/x509/ca-cert.pem" "$D/x509/ca-key.pem" "$D/x509-expired/"
cert "$D/x509-expired" client ferry-source -1 # not after yesterday
cp "$D/x509-stranger/client-cert.pem" "$D/x509-stranger/client-key.pem" "$D/x509-rogue/"
echo "ferry-source:$(openssl rand -hex 32)" >"$D/psk/keys.psk"
echo "ferry-source:$(openssl rand -hex 32)" >"$D/psk-wrong/keys.psk"
