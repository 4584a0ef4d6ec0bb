#!/bin/sh
# TLS 1.3 on every connection (ferry run --incoming --tls-creds, ferry
# migrate --tls-creds), with credentials tests/tls/make-creds.sh makes.
# Mutual x509 moves a 2-vCPU dirtying guest on four data channels, --verify
# clean, the destination naming its source; so does PSK on one. Refused,
# each with a sentence in the source's report and its guest running on
# intact: a source in the clear, a source under another CA, a source whose
# own certificate another CA signed, a source whose certificate expired, a
# destination whose name is not the one
# asked, a source --tls-authz does not list, a wrong PSK; and a data channel
# that presents the migration's token under another source's identity.
. "$(dirname "$0")/lib.sh"
need_kvm
: "${MAKE_TLS_CREDS:?set MAKE_TLS_CREDS to tests/tls/make-creds.sh}"
: "${BAD_SOURCE:?set BAD_SOURCE to the bad_source binary}"
command -v openssl >/dev/null || { echo "no openssl here: skipped"; exit 77; }
"$MAKE_TLS_CREDS" "$TMP/creds" || { echo "FAIL: cannot make TLS credentials"; exit 1; }
C=$TMP/creds
WORKLOAD=dirty:wss=64M,rate=20M,pattern=random,write=byte

note "options"
usage_refused "--tls-creds goes with --incoming" --tls-creds "$C/x509"
usage_refused "--tls-authz goes with --tls-creds" --incoming "unix:$TMP/x.sock" --tls-authz a

# refused WHAT WORDS ARGS...: migrate src with ARGS fails, the reason has
# WORDS, and the source guest runs on intact.
refused() {
	_r_what=$1 _r_words=$2; shift 2
	migrate src "unix:$TMP/in.sock" "$@" && { fail "$_r_what: migrated"; return; }
	report "j.get('reason','')" | grep -q "$_r_words" ||
		fail "$_r_what: reason: $(report "j.get('reason')") $(cat "$TMP/migrate.err")"
	note "$_r_what: $(report "j.get('reason')")"
	expect_guest_ok src
	wait_incoming dst waiting || fail "$_r_what: the destination does not wait again"
}

note "x509: refusals, then a migration on four data channels"
vm dst --incoming "unix:$TMP/in.sock" --tls-creds "$C/x509" --tls-authz ferry-source,admin
vm src --mem 128M --vcpus 2 --workload "$WORKLOAD"
refused "a source in the clear" "this destination takes TLS only"
refused "a source under another CA" "certificate is refused" --tls-creds "$C/x509-stranger"
refused "a destination of another name" "hostname mismatch" --tls-creds "$C/x509" \
	--tls-hostname ferry-elsewhere
refused "a source's certificate from another CA" "refused this side's credentials (unknown CA)" \
	--tls-creds "$C/x509-rogue"
refused "a source's expired certificate" "certificate expired" --tls-creds "$C/x509-expired"
# --downtime-ms 3000: this test is about TLS; a slow host's switchover
# (hashing memory for --verify) must not fail it.
migrate src "unix:$TMP/in.sock" --verify --downtime-ms 3000 --channels 4 --tls-creds "$C/x509" \
	--tls-hostname ferry-dest || fail "x509: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
expect_guest_ok dst
grep -q "TLS: the source is 'ferry-source'" "$TMP/dst.log" || fail "the destination did not name its source"
ctl src quit >/dev/null; ctl dst quit >/dev/null

note "x509: a data channel under another source's identity, with the right token, is turned away"
vm dst --incoming "unix:$TMP/in.sock" --tls-creds "$C/x509"
"$BAD_SOURCE" intruder-tls "unix:$TMP/in.sock" "$C" >"$TMP/bad-intruder.out" 2>&1 ||
	fail "bad_source intruder-tls: $(cat "$TMP/bad-intruder.out")"
grep -q "refused a data channel: TLS: the peer is 'ferry-other', not 'ferry-source'" "$TMP/dst.log" ||
	fail "the destination did not turn the other identity away"
ctl dst quit >/dev/null

note "x509: a source --tls-authz does not list"
vm dst --incoming "unix:$TMP/in.sock" --tls-creds "$C/x509" --tls-authz admin
vm src --mem 128M --vcpus 2 --workload "$WORKLOAD"
refused "a source authz does not list" "the peer 'ferry-source' is not one --tls-authz lets in" \
	--tls-creds "$C/x509"
ctl src quit >/dev/null; ctl dst quit >/dev/null

note "PSK: a wrong key, then the right one, on one data channel"
vm dst --incoming "unix:$TMP/in.sock" --tls-creds "$C/psk"
vm src --mem 128M --vcpus 2 --workload "$WORKLOAD"
refused "a wrong PSK" "TLS" --tls-creds "$C/psk-wrong"
migrate src "unix:$TMP/in.sock" --verify --downtime-ms 3000 --channels 1 --tls-creds "$C/psk" ||
	fail "psk: $(cat "$TMP/migrate.err") $(report "j.get('reason')")"
expect_guest_ok dst
ctl src quit >/dev/null; ctl dst quit >/dev/null
finish tls
