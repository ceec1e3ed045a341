#!/bin/sh
# Test PKI for the TLS tests, made fresh in DIR at test time (no key is ever
# committed): a root CA, SPIFFE workload certificates for the blog-system
# services web and was, one for an intruder from another namespace, a second
# "rogue" CA with a certificate for web that our CA did not sign, and a
# wildcard server certificate for SNI tests.
#
#   t/lib/mkcerts.sh DIR
#
# Files: root.pem root-key.pem, NAME.pem NAME-key.pem for web, was, intruder,
# rogue-web, wild (and rogue-root.pem). Leaf certificates carry DNS:localhost,
# DNS:NAME and IP:127.0.0.1 besides their SPIFFE URI, so curl can verify them.
set -eu
dir=$1
mkdir -p "$dir"
cd "$dir"
days=3650
quiet() { "$@" >/dev/null 2>&1 || { echo "mkcerts: failed: $*" >&2; "$@"; exit 1; }; }

ca() {	# name
	quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$1-key.pem" -out "$1.pem" -days $days -subj "/O=wingman-test/CN=$1" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

leaf() {	# name ca san...
	name=$1 signer=$2
	shift 2
	san=$(printf '%s,' "$@")
	quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$name-key.pem" -out "$name.csr" -subj "/O=wingman-test/CN=$name"
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' \
		"${san%,}" > "$name.ext"
	quiet openssl x509 -req -in "$name.csr" -CA "$signer.pem" -CAkey "$signer-key.pem" \
		-CAcreateserial -out "$name.pem" -days $days -extfile "$name.ext"
	rm -f "$name.csr" "$name.ext"
}

ca root
ca rogue-root
common="DNS:localhost,IP:127.0.0.1"
leaf web root "URI:spiffe://cluster.local/ns/blog-system/sa/default" "DNS:web" $common
leaf was root "URI:spiffe://cluster.local/ns/blog-system/sa/default" "DNS:was" $common
leaf intruder root "URI:spiffe://cluster.local/ns/intruder/sa/intruder" "DNS:intruder" $common
leaf rogue-web rogue-root "URI:spiffe://cluster.local/ns/blog-system/sa/default" "DNS:web" $common
leaf wild root "DNS:*.example.com" $common
