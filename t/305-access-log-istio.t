# Access log: Istio's default TEXT format (the mesh default, as istiod
# configures every sidecar) through real traffic, every field checked: a
# proxied 200 (%UPSTREAM_LOCAL_ADDRESS% is the address the backend saw),
# UF, NR, and TLS with SNI; a client that sent no x-forwarded-for logs "-"
# as an Istio sidecar does (use_remote_address false).
use strict;
use warnings;
use Test::More;
use Wingman;

my $c = test_certs();
my $dir = tmpdir();
my $be = start_backend(handler => sub {
	my ($req, $sock) = @_;
	return make_response('200 OK', 'peer=' . $sock->peerhost . ':' . $sock->peerport);
});
my $bp = $be->port;
my $dead = free_port();
my ($port, $tls, $admin) = map { free_port() } 1 .. 3;
my $log = "$dir/istio.log";
my $fmt = '[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% '
	. '%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% '
	. '\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
	. '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" '
	. '\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% '
	. '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% '
	. '%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

my $yaml = <<"EOF";
workers: 2
admin: { address: 127.0.0.1:$admin }
access_log:
  path: $log
  format: "$fmt"
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - { name: ok, match: { prefix: /ok }, route: { cluster: be } }
      - { name: down, match: { prefix: /down }, route: { cluster: dead } }
  - name: tls
    address: 127.0.0.1:$tls
    tls:
      mode: SIMPLE
      cert: $c/was.pem
      key: $c/was-key.pem
      sni: [{ names: ["*.example.com"], cert: $c/wild.pem, key: $c/wild-key.pem }]
    routes: [{ name: secure, match: { prefix: / }, route: { cluster: be } }]
clusters:
  - { name: be, endpoints: [127.0.0.1:$bp] }
  - { name: dead, endpoints: [127.0.0.1:$dead] }
EOF
my ($rc, $out) = wingman_check($yaml);
is($rc, 0, "wingman -t accepts Istio's default format") or diag($out);
my $err;
my $wm = start_wingman($yaml);

sub log_line {
	my ($re) = @_;
	my $line;
	wait_for(sub { ($line) = grep { $_ =~ $re } split /\n/, slurp($log); $line }, scale(5));
	return $line // '';
}

my $ts = qr{\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\]};
my $cli = qr{127\.0\.0\.1:\d+};

# ---- 2xx
my $r = http_get($port, '/ok/one', host => 'web.local', headers => ['User-Agent', 'ua-ok', 'X-Request-Id', 'rid-ok']);
is($r->{status}, 200, '2xx: served');
my ($seen) = $r->{body} =~ /^peer=(\S+)$/;
my $line = log_line(qr{rid-ok});
like($line, qr{^$ts "GET /ok/one HTTP/1\.1" 200 - via_upstream - "-" 0 \d+ \d+ \d+ "-" "ua-ok" "rid-ok" "web\.local" "127\.0\.0\.1:$bp" be 127\.0\.0\.1:\d+ 127\.0\.0\.1:$port $cli - ok$},
	'2xx: every field');
my ($ula) = $line =~ / be (\S+) /;
is($ula, $seen, '2xx: %UPSTREAM_LOCAL_ADDRESS% is the address the backend saw');

# ---- x-forwarded-for as the client sent it
$r = http_get($port, '/ok/xff', headers => ['X-Forwarded-For', '10.9.8.7', 'X-Request-Id', 'rid-xff']);
like(log_line(qr{rid-xff}), qr{ "10\.9\.8\.7" }, 'x-forwarded-for sent by the client is logged as sent');

# ---- UF
$r = http_get($port, '/down', headers => ['User-Agent', 'ua-uf', 'X-Request-Id', 'rid-uf']);
is($r->{status}, 503, 'UF: 503');
like(log_line(qr{rid-uf}), qr{^$ts "GET /down HTTP/1\.1" 503 UF upstream_reset_before_response_started\{connection_failure\S*\} - "[^"]*" 0 \d+ \d+ - "-" "ua-uf" "rid-uf" "127\.0\.0\.1:$port" "127\.0\.0\.1:$dead" dead - 127\.0\.0\.1:$port $cli - down$},
	'UF: every field, no upstream local address');

# ---- NR
$r = http_get($port, '/nowhere', headers => ['User-Agent', 'ua-nr', 'X-Request-Id', 'rid-nr']);
is($r->{status}, 404, 'NR: 404');
like(log_line(qr{rid-nr}), qr{^$ts "GET /nowhere HTTP/1\.1" 404 NR route_not_found - "-" 0 0 \d+ - "-" "ua-nr" "rid-nr" "127\.0\.0\.1:$port" "-" - - 127\.0\.0\.1:$port $cli - -$},
	'NR: every field');

# ---- TLS with SNI
($out, $rc, $err) = curl('--cacert', "$c/root.pem", '--resolve', "a.example.com:$tls:127.0.0.1", '--http1.1',
	'-A', 'ua-tls', '-H', 'X-Request-Id: rid-tls', "https://a.example.com:$tls/sec");
is($rc, 0, 'TLS: served') or diag($err);
like(log_line(qr{rid-tls}), qr{^$ts "GET /sec HTTP/1\.1" 200 - via_upstream - "-" 0 \d+ \d+ \d+ "-" "ua-tls" "rid-tls" "a\.example\.com:$tls" "127\.0\.0\.1:$bp" be 127\.0\.0\.1:\d+ 127\.0\.0\.1:$tls $cli a\.example\.com secure$},
	'TLS: every field, %REQUESTED_SERVER_NAME% is the SNI');

is(($wm->term // -1) >> 8, 0, 'SIGTERM exit 0');
done_testing;
