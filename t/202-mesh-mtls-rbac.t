# The seed scenario with two sidecars: web's outbound listener originates
# ISTIO_MUTUAL to was's PERMISSIVE inbound listener, whose AuthorizationPolicy
# lets only web's service account reach /api/* and /actuator/*. Covers pooled
# TLS reuse, the identity the backend sees, intruders, plaintext, path
# normalisation bypass attempts, a wrong upstream SAN and an untrusted
# upstream CA (503 UF with the transport failure reason), the rbac and
# cluster ssl stats, and TLS session resumption when the client reconnects.
use strict;
use warnings;
use Test::More;
use Wingman;

my $c = test_certs();
my $dir = tmpdir();
my $be = start_backend();
my $bp = $be->port;
my ($was_in, $was_admin, $web_out, $web_admin) = map { free_port() } 1 .. 4;
my $was_log = "$dir/was.log";
my $web_log = "$dir/web.log";
my $fmt = '"%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% peer=%DOWNSTREAM_PEER_URI_SAN% utf=%UPSTREAM_TRANSPORT_FAILURE_REASON%\n"';

my $was = start_wingman(<<"EOF");
workers: 2
admin: { address: 127.0.0.1:$was_admin }
access_log: { path: $was_log, format: $fmt }
rbac:
  - name: was-authz
    action: ALLOW
    rules:
      - from: [{ source: { principals: ["cluster.local/ns/blog-system/sa/default"], namespaces: ["blog-system"] } }]
        to:   [{ operation: { ports: ["$was_in"], paths: ["/api/*", "/actuator/*"], methods: ["GET","POST"] } }]
listeners:
  - name: inbound
    address: 127.0.0.1:$was_in
    direction: inbound
    tls: { mode: PERMISSIVE, cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes: [{ match: { prefix: / }, route: { cluster: app } }]
clusters:
  - { name: app, endpoints: [127.0.0.1:$bp] }
EOF

my $web = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$web_admin }
access_log: { path: $web_log, format: $fmt }
listeners:
  - name: outbound
    address: 127.0.0.1:$web_out
    direction: outbound
    routes:
      - { match: { prefix: /wrong-san }, route: { cluster: was-wrong-san } }
      - { match: { prefix: /rogue-ca }, route: { cluster: was-rogue-ca } }
      - { match: { prefix: /api/fresh }, route: { cluster: was-fresh } }
      - { match: { prefix: / }, route: { cluster: was } }
clusters:
  - name: was
    endpoints: [127.0.0.1:$was_in]
    tls: { mode: ISTIO_MUTUAL, cert: $c/web.pem, key: $c/web-key.pem, ca: $c/root.pem, sni: was-service,
           subject_alt_names: ["spiffe://cluster.local/ns/blog-system/sa/default"] }
  - name: was-fresh
    endpoints: [127.0.0.1:$was_in]
    connection_pool: { max_requests_per_connection: 1 }
    tls: { mode: ISTIO_MUTUAL, cert: $c/web.pem, key: $c/web-key.pem, ca: $c/root.pem, sni: was-service,
           subject_alt_names: ["spiffe://cluster.local/ns/blog-system/sa/default"] }
  - name: was-wrong-san
    endpoints: [127.0.0.1:$was_in]
    tls: { mode: ISTIO_MUTUAL, cert: $c/web.pem, key: $c/web-key.pem, ca: $c/root.pem,
           subject_alt_names: ["spiffe://cluster.local/ns/blog-system/sa/other"] }
  - name: was-rogue-ca
    endpoints: [127.0.0.1:$was_in]
    tls: { mode: MUTUAL, cert: $c/web.pem, key: $c/web-key.pem, ca: $c/rogue-root.pem }
EOF

sub line_in {
	my ($file, $re) = @_;
	my $line;
	wait_for(sub { ($line) = grep { $_ =~ $re } split /\n/, slurp($file); $line }, scale(5));
	return $line // '';
}

# ---- web → was over ISTIO_MUTUAL, allowed
my $r = http_get($web_out, '/api/posts', host => 'was');
is($r->{status}, 200, 'web → was /api/posts over mTLS: 200');
like($r->{body}, qr{^x-forwarded-client-cert: By=spiffe://cluster\.local/ns/blog-system/sa/default;Hash=[0-9a-f]+;.*URI=spiffe://cluster\.local/ns/blog-system/sa/default}m,
	'was sees web\'s SPIFFE identity');
like(line_in($was_log, qr{^/api/posts }), qr{^/api/posts 200 - via_upstream peer=spiffe://cluster\.local/ns/blog-system/sa/default },
	'was access log: peer URI SAN');
is(http_request($web_out, 'POST', '/actuator/health', body => 'x')->{status}, 200, 'POST /actuator/health allowed');
for (1 .. 4) {
	http_get($web_out, "/api/posts/$_");
}
is($web->stat('cluster.was.upstream_cx_total'), 1, 'pooled TLS connection reused (one connection for six requests)');
is($web->stat('cluster.was.ssl.handshake'), 1, 'cluster ssl.handshake');
is($was->stat("listener.127.0.0.1_$was_in.ssl.handshake"), 1, 'was listener ssl.handshake');

# ---- denied
$r = http_get($web_out, '/admin');
is($r->{status}, 403, 'web → was /admin: 403');
is($r->{body}, 'RBAC: access denied', '403 body');
like(line_in($was_log, qr{^/admin }), qr{^/admin 403 - rbac_access_denied_matched_policy\[none\] },
	'%RESPONSE_CODE_DETAILS% names no matching ALLOW policy');
is(http_request($web_out, 'DELETE', '/api/posts/1')->{status}, 403, 'DELETE not in methods: 403');

# Bypass attempts: curl --path-as-is sends the target untouched. Dot-segments
# resolve to a path RBAC denies; escaped slashes and "..;", which backends read
# differently, are refused by the web sidecar's listener before anything else.
for my $p ('/api/../admin', '/api/%2e%2e/admin', '/api\\..\\admin', '/actuator/./../admin') {
	my ($out, $rc) = curl('--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', "http://127.0.0.1:$web_out$p");
	is($out, '403', "normalisation: $p does not pass the /api/* ALLOW");
}
for my $p ('/API%2F..', '/api/..%2Fadmin', '/api/..%2fadmin/x', '/api/..;/admin') {
	my ($out, $rc) = curl('--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', "http://127.0.0.1:$web_out$p");
	is($out, '400', "normalisation: $p is refused");
}
my ($out) = curl('--path-as-is', '-w', '\n%{http_code}', "http://127.0.0.1:$web_out//api//./posts?x=/../admin");
like($out, qr{\n200$}, 'normalisation: //api//./posts?x=/../admin is /api/posts');

# Intruder with a valid certificate from another namespace, and plaintext.
($out) = curl('--cacert', "$c/root.pem", '--cert', "$c/intruder.pem", '--key', "$c/intruder-key.pem",
	'-w', '\n%{http_code}', "https://127.0.0.1:$was_in/api/posts");
like($out, qr{^RBAC: access denied\n403$}, 'intruder: 403');
like(line_in($was_log, qr{peer=spiffe://cluster\.local/ns/intruder}), qr{403 - rbac_access_denied_matched_policy\[none\]},
	'intruder logged with its identity');
is(http_get($was_in, '/api/posts')->{status}, 403, 'plaintext (no identity) to was: 403');
# Allowed: 6 + the normalised one; denied: /admin, DELETE, 4 bypasses, intruder, plaintext.
wait_for(sub { $was->stat('http.inbound.rbac.denied') >= 8 }, scale(5));
is($was->stat('http.inbound.rbac.allowed'), 7, 'http.inbound.rbac.allowed');
is($was->stat('http.inbound.rbac.denied'), 8, 'http.inbound.rbac.denied');

# ---- reconnecting resumes the TLS session (one request per connection)
for my $i (1 .. 3) {
	$r = http_get($web_out, "/api/fresh/$i", host => 'was');
	is($r->{status}, 200, "web → was /api/fresh/$i on a new connection: 200");
	like($r->{body}, qr{^x-forwarded-client-cert: By=spiffe://cluster\.local/ns/blog-system/sa/default;.*URI=spiffe://cluster\.local/ns/blog-system/sa/default}m,
		"... was still sees web's identity");
}
like(line_in($was_log, qr{^/api/fresh/3 }), qr{ 200 - via_upstream peer=spiffe://cluster\.local/ns/blog-system/sa/default },
	'resumed: was logs the peer URI SAN from the session');
is($web->stat('cluster.was-fresh.upstream_cx_total'), 3, 'three connections');
is($web->stat('cluster.was-fresh.ssl.handshake'), 3, 'three handshakes');
is($web->stat('cluster.was-fresh.ssl.session_reused'), 2, 'the second and third resume the first one\'s session');
is($was->stat("listener.127.0.0.1_$was_in.ssl.session_reused"), 2, 'was: two resumed handshakes');

# ---- upstream verification failures: 503 UF with the reason
$r = http_get($web_out, '/wrong-san');
is($r->{status}, 503, 'wrong upstream SAN: 503');
like($r->{body}, qr{reset reason: connection failure, transport failure reason: TLS_error:.*verify cert failed: SAN matcher},
	'503 body names the transport failure');
like(line_in($web_log, qr{^/wrong-san }), qr{^/wrong-san 503 UF upstream_reset_before_response_started\{connection_failure\} peer=- utf=TLS_error:\|\d+:SSL_routines:certificate_verify_failed:verify_cert_failed:_SAN_matcher:TLS_error_end$},
	'access log: UF and %UPSTREAM_TRANSPORT_FAILURE_REASON% (spaces as _, as Envoy logs it)');
is($web->stat('cluster.was-wrong-san.ssl.fail_verify_san'), 1, 'cluster ssl.fail_verify_san');
is($web->stat('cluster.was-wrong-san.ssl.connection_error'), 1, 'cluster ssl.connection_error');
$r = http_get($web_out, '/rogue-ca');
is($r->{status}, 503, 'untrusted upstream CA: 503');
like(line_in($web_log, qr{^/rogue-ca }), qr{ UF .*utf=TLS_error:.*verify_cert_failed:_(self-signed_certificate_in_certificate_chain|unable_to_get_local_issuer_certificate)},
	'untrusted CA reason logged');
is($web->stat('cluster.was-rogue-ca.ssl.fail_verify_error'), 1, 'cluster ssl.fail_verify_error');
is($web->stat('cluster.was.ssl.connection_error'), 0, 'the good cluster saw no TLS errors');

$web->term;
$was->term;
done_testing();
