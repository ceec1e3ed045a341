# Downstream TLS: STRICT rejects plaintext and certless clients, PERMISSIVE
# serves plaintext and mTLS on one port, SIMPLE with SNI certificates and ALPN,
# min_version, session resumption, the peer identity in the access log and in
# x-forwarded-client-cert (sanitised on input), listener ssl.* stats and
# config errors.
use strict;
use warnings;
use Test::More;
use Wingman;

my $c = test_certs();
my $dir = tmpdir();
my $be = start_backend();
my $bp = $be->port;
my ($strict, $perm, $simple, $v13, $admin) = map { free_port() } 1 .. 5;
my $log = "$dir/tls.log";

my $wm = start_wingman(<<"EOF");
workers: 2
admin: { address: 127.0.0.1:$admin }
access_log:
  path: $log
  format: "%REQ(:PATH)% %RESPONSE_CODE% peer=%DOWNSTREAM_PEER_URI_SAN% tls=%DOWNSTREAM_TLS_VERSION% sni=%REQUESTED_SERVER_NAME%\\n"
listeners:
  - name: strict
    address: 127.0.0.1:$strict
    tls: { mode: STRICT, cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
  - name: perm
    address: 127.0.0.1:$perm
    tls: { mode: PERMISSIVE, cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
  - name: simple
    address: 127.0.0.1:$simple
    tls:
      mode: SIMPLE
      cert: $c/was.pem
      key: $c/was-key.pem
      alpn: [h2, http/1.1]
      sni: [{ names: ["*.example.com"], cert: $c/wild.pem, key: $c/wild-key.pem }]
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
  - name: v13
    address: 127.0.0.1:$v13
    tls: { mode: SIMPLE, cert: $c/was.pem, key: $c/was-key.pem, min_version: TLSv1.3 }
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
clusters:
  - { name: be, endpoints: [127.0.0.1:$bp] }
EOF

my @web = ('--cacert', "$c/root.pem", '--cert', "$c/web.pem", '--key', "$c/web-key.pem");

sub log_line {
	my ($re) = @_;
	my $line;
	wait_for(sub { ($line) = grep { $_ =~ $re } split /\n/, slurp($log); $line }, scale(5));
	return $line // '';
}

# ---- STRICT
my ($out, $rc, $err) = curl(@web, '-H', 'X-Forwarded-Client-Cert: By=spiffe://evil;URI=spiffe://evil',
	"https://127.0.0.1:$strict/strict-ok");
is($rc, 0, 'STRICT: mTLS client served') or diag($err);
like($out, qr{^GET /strict-ok HTTP/1\.1}m, 'STRICT: request reached the backend');
like($out, qr{^x-forwarded-client-cert: By=spiffe://cluster\.local/ns/blog-system/sa/default;Hash=[0-9a-f]{64};Subject="CN=web,O=wingman-test";URI=spiffe://cluster\.local/ns/blog-system/sa/default;DNS=web;DNS=localhost$}m,
	'STRICT: x-forwarded-client-cert in Envoy format');
unlike($out, qr{spiffe://evil}, 'STRICT: the client-sent x-forwarded-client-cert is dropped');
like($out, qr{^x-forwarded-proto: https$}m, 'x-forwarded-proto is https');
like(log_line(qr{/strict-ok}), qr{^/strict-ok 200 peer=spiffe://cluster\.local/ns/blog-system/sa/default tls=TLSv1\.3 sni=-$},
	'access log: %DOWNSTREAM_PEER_URI_SAN% and %DOWNSTREAM_TLS_VERSION%');

($out, $rc) = curl("http://127.0.0.1:$strict/plain");
isnt($rc, 0, 'STRICT: plaintext HTTP is refused');
unlike($out, qr{GET /plain}, 'STRICT: plaintext request never reaches the backend');
($out, $rc) = curl('--cacert', "$c/root.pem", "https://127.0.0.1:$strict/nocert");
isnt($rc, 0, 'STRICT: a client without certificate is refused');
($out, $rc) = curl('--cacert', "$c/root.pem", '--cert', "$c/rogue-web.pem", '--key', "$c/rogue-web-key.pem",
	"https://127.0.0.1:$strict/rogue");
isnt($rc, 0, 'STRICT: a certificate from another CA is refused');
unlike($be->log . slurp($log), qr{/nocert|/rogue}, 'refused clients never got a request through');

my $lp = "listener.127.0.0.1_$strict.ssl";
wait_for(sub { $wm->stat("$lp.connection_error") >= 3 }, scale(5));
is($wm->stat("$lp.handshake"), 1, 'listener ssl.handshake');
ok($wm->stat("$lp.connection_error") >= 3, 'listener ssl.connection_error counts plaintext, certless, rogue');
is($wm->stat("$lp.no_certificate"), 1, 'listener ssl.no_certificate');
is($wm->stat("$lp.fail_verify_error"), 1, 'listener ssl.fail_verify_error');

# ---- PERMISSIVE: both on one port
($out, $rc) = curl('-H', 'X-Forwarded-Client-Cert: By=spiffe://evil', "http://127.0.0.1:$perm/perm-plain");
is($rc, 0, 'PERMISSIVE: plaintext served');
like($out, qr{^GET /perm-plain}m, 'PERMISSIVE: plaintext reached the backend');
unlike($out, qr{x-forwarded-client-cert}i, 'PERMISSIVE plaintext: client x-forwarded-client-cert sanitised');
($out, $rc) = curl(@web, "https://127.0.0.1:$perm/perm-tls");
is($rc, 0, 'PERMISSIVE: mTLS served on the same port');
like($out, qr{^x-forwarded-client-cert: .*URI=spiffe://cluster\.local/ns/blog-system/sa/default}m,
	'PERMISSIVE mTLS: peer identity forwarded');
like(log_line(qr{/perm-plain}), qr{peer=- tls=- }, 'access log: plaintext has no peer and no TLS version');
my $r = http_raw($perm, "GET /perm-raw HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
like($r, qr{^HTTP/1\.1 200}, 'PERMISSIVE: raw plaintext request with keep-alive framing');

# ---- SIMPLE, SNI, ALPN, min_version
($out, $rc, $err) = curl('--cacert', "$c/root.pem", '-w', '%{http_version}', "https://localhost:$simple/simple");
is($rc, 0, 'SIMPLE: server-only TLS served') or diag($err);
($out, $rc, $err) = curl('--cacert', "$c/root.pem", '--resolve', "a.example.com:$simple:127.0.0.1",
	'--http2', '-w', '\n%{http_version}', "https://a.example.com:$simple/sni");
is($rc, 0, 'SNI: *.example.com gets the wildcard certificate (verified by curl)') or diag($err);
like($out, qr{\n2$}, 'ALPN: h2 is configured and served (SNI certificate and h2 together)');
like(log_line(qr{/sni}), qr{sni=a\.example\.com$}, 'access log: %REQUESTED_SERVER_NAME%');
my $subj = `openssl s_client -connect 127.0.0.1:$simple -servername b.example.com </dev/null 2>/dev/null | openssl x509 -noout -subject`;
like($subj, qr{CN\s*=\s*wild}, 'SNI: wildcard certificate by name');
$subj = `openssl s_client -connect 127.0.0.1:$simple -servername other.org </dev/null 2>/dev/null | openssl x509 -noout -subject`;
like($subj, qr{CN\s*=\s*was}, 'SNI: other names get the default certificate');

($out, $rc) = curl('--cacert', "$c/root.pem", '--tls-max', '1.2', "https://localhost:$v13/old");
isnt($rc, 0, 'min_version TLSv1.3 refuses a TLS 1.2 client');
($out, $rc) = curl('--cacert', "$c/root.pem", '--tls-max', '1.1', '--tlsv1.1', "https://localhost:$simple/old");
isnt($rc, 0, 'TLS 1.1 is never offered');

# ---- resumption with session tickets
my $sess = "$dir/sess.pem";
`openssl s_client -connect 127.0.0.1:$simple -tls1_2 -sess_out $sess </dev/null 2>&1`;
my $again = `openssl s_client -connect 127.0.0.1:$simple -tls1_2 -sess_in $sess </dev/null 2>&1`;
like($again, qr{^Reused, }m, 'session ticket resumption');
wait_for(sub { $wm->stat("listener.127.0.0.1_$simple.ssl.session_reused") >= 1 }, scale(5));
ok($wm->stat("listener.127.0.0.1_$simple.ssl.session_reused") >= 1, 'listener ssl.session_reused');

# ---- config errors
my $bad = "$dir/bad.yaml";
spew($bad, <<"EOF");
listeners:
  - name: a
    address: 127.0.0.1:1
    tls: { mode: STRICT, cert: $c/missing.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
  - name: b
    address: 127.0.0.1:2
    tls: { mode: STRICT, cert: $c/was.pem, key: $c/was-key.pem }
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
  - name: c
    address: 127.0.0.1:3
    tls: { mode: MUTUAL }
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
  - name: d
    address: 127.0.0.1:4
    tls: { mode: SIMPLE, cert: $c/was.pem, key: $c/web-key.pem, min_version: TLSv1.1 }
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
clusters:
  - name: be
    endpoints: [127.0.0.1:$bp]
    tls: { mode: ISTIO_MUTUAL, cert: $c/web.pem, key: $c/web-key.pem }
EOF
my $chk = `${\wingman_bin()} -t -c $bad 2>&1`;
isnt($? >> 8, 0, 'bad tls config fails -t');
like($chk, qr{bad\.yaml:4:10: tls \(listener a\): cannot load certificate \S+missing\.pem}, 'missing certificate file located');
like($chk, qr{bad\.yaml:8:10: tls mode STRICT needs ca}, 'STRICT without ca');
like($chk, qr{bad\.yaml:12:18: expected one of DISABLE, SIMPLE, STRICT, PERMISSIVE}, 'cluster mode on a listener');
like($chk, qr{bad\.yaml:16:\d+: expected TLSv1\.2 or TLSv1\.3}, 'min_version below 1.2 refused');
like($chk, qr{bad\.yaml:21:10: tls mode ISTIO_MUTUAL needs ca}, 'ISTIO_MUTUAL without ca');

$wm->term;
done_testing();
