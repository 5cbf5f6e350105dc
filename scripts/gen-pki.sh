#!/usr/bin/env bash
# Test PKI for the integration tests' control plane (tests/support/control_plane.rs), with openssl.
#
#   bash scripts/gen-pki.sh DIR
#       DIR/ca.{crt,key}           serving CA (the kubeconfig's certificate-authority)
#       DIR/apiserver.{crt,key}    kube-apiserver serving cert: CN=localhost, SAN 127.0.0.1 + localhost
#       DIR/client-ca.{crt,key}    client CA (--client-ca-file)
#       DIR/admin.{crt,key}        client cert CN=admin, O=system:masters
#       DIR/sa.{key,pub}           service-account token signing key pair
#
#   bash scripts/gen-pki.sh DIR client PREFIX USER [GROUP...]
#       PREFIX.{crt,key}           client cert CN=USER, one O=GROUP per group, signed by DIR/client-ca
#                                  (kube-apiserver maps CN to the user name and O to its groups)
#
# Keys are ECDSA P-256, certificates are valid for 7 days: the PKI lives in a test's temp dir.
# Nothing here is a secret worth protecting; never use it outside tests.
set -euo pipefail

dir="${1:?usage: gen-pki.sh DIR [client PREFIX USER [GROUP...]]}"
mkdir -p "$dir"
days=7
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

# An RDN value for -subj, with openssl's separators escaped.
rdn() {
	local v="${1//\\/\\\\}"
	v="${v//\//\\/}"
	v="${v//+/\\+}"
	printf '%s' "$v"
}

# self_signed_ca NAME CN
self_signed_ca() {
	openssl req -x509 "${ec[@]}" -days "$days" -subj "/CN=$(rdn "$2")" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,digitalSignature,keyCertSign,cRLSign" \
		-keyout "$dir/$1.key" -out "$dir/$1.crt" 2>/dev/null
}

# issue CA PREFIX SUBJECT EXTENSIONS: a key and CSR for SUBJECT, signed by CA with EXTENSIONS
issue() {
	local ca="$1" prefix="$2" subject="$3" extensions="$4"
	openssl req "${ec[@]}" -subj "$subject" -keyout "$prefix.key" -out "$prefix.csr" 2>/dev/null
	openssl x509 -req -in "$prefix.csr" -CA "$dir/$ca.crt" -CAkey "$dir/$ca.key" \
		-set_serial "0x$(openssl rand -hex 16)" -days "$days" \
		-extfile <(printf '%s\n' "$extensions") -out "$prefix.crt" 2>/dev/null
	rm -f "$prefix.csr"
}

client_extensions='basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth'

# client PREFIX USER [GROUP...]
client() {
	local prefix="$1" subject=""
	shift
	local user="$1"
	shift
	for group in "$@"; do
		subject+="/O=$(rdn "$group")"
	done
	subject+="/CN=$(rdn "$user")"
	issue client-ca "$prefix" "$subject" "$client_extensions"
}

if [ "${2:-}" = client ]; then
	[ $# -ge 4 ] || {
		echo "usage: gen-pki.sh DIR client PREFIX USER [GROUP...]" >&2
		exit 2
	}
	[ -s "$dir/client-ca.key" ] || {
		echo "gen-pki.sh: $dir has no client CA; run gen-pki.sh $dir first" >&2
		exit 1
	}
	client "$3" "$4" "${@:5}"
	exit 0
fi

self_signed_ca ca lyncdr-test-serving-ca
issue ca "$dir/apiserver" "/CN=localhost" 'basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost'
self_signed_ca client-ca lyncdr-test-client-ca
client "$dir/admin" admin system:masters
openssl ecparam -name prime256v1 -genkey -noout -out "$dir/sa.key"
openssl ec -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
