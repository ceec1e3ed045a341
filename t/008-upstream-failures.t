# Upstream failures as Envoy reports them: connect failure → 503 with Envoy's
# body and flag UF; upstream closing mid-response → the client's response is
# cut short and the access log says UC.
use strict;
use warnings;
use Test::More;
use Wingman;

my $dir = tmpdir();
my $dead = free_port();		# nothing listens here
my $mid = start_backend(mode => 'close_mid');
my $reset = start_backend(mode => 'reset');
my $ng = start_nginx(q{ location / { return 200 "ok\n"; } });
my ($mp, $rp, $np) = ($mid->port, $reset->port, $ng->port);
my $log = "$dir/access-008.log";
my $wm = start_web(<<"EOF", access_log => $log, log_format => '%RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER% %REQ(:PATH)% %BYTES_SENT%\n');
    routes:
      - { name: dead, match: { prefix: /dead }, route: { cluster: dead } }
      - { name: mid, match: { prefix: /mid }, route: { cluster: mid } }
      - { name: reset, match: { prefix: /reset }, route: { cluster: reset } }
      - { name: ok, match: { prefix: / }, route: { cluster: ok } }
clusters:
  - { name: dead, endpoints: [127.0.0.1:$dead], connect_timeout: 1s }
  - { name: mid, endpoints: [127.0.0.1:$mp] }
  - { name: reset, endpoints: [127.0.0.1:$rp] }
  - { name: ok, endpoints: [127.0.0.1:$np] }
EOF
my $port = $wm->port;

sub log_line {
	my ($path) = @_;
	my $line;
	wait_for(sub { ($line) = grep { / \Q$path\E / } split /\n/, slurp($log); $line }, scale(5));
	return $line // '';
}

my $body = 'upstream connect error or disconnect/reset before headers. reset reason: connection failure';
my $r = http_get($port, '/dead');
is($r->{status}, 503, 'nothing listening: 503');
is($r->{body}, $body, "503 body is Envoy's");
is($r->{headers}{'content-length'}, length $body, 'with its Content-Length');
like(log_line('/dead'), qr/^503 UF dead \/dead \d+$/, 'access log: 503 UF');
ok($wm->stat('cluster.dead.upstream_cx_connect_fail') >= 1, 'cluster.dead.upstream_cx_connect_fail counted');
ok($wm->stat('cluster.dead.upstream_rq_503') >= 1 || $wm->stat('cluster.dead.upstream_rq_5xx') >= 1,
	'503 counted on the cluster');

# Keep-alive: a local 503 does not have to close the client's connection.
my $s = connect_port($port);
send_bytes($s, "GET /dead/1 HTTP/1.1\r\nHost: x\r\n\r\n");
$r = read_response($s);
is($r && $r->{status}, 503, 'keep-alive connection: 503');
send_bytes($s, "GET /fine HTTP/1.1\r\nHost: x\r\n\r\n");
$r = read_response($s);
is($r && $r->{status}, 200, 'the same connection serves the next request');
close $s;

# Upstream closes after 1000 of 100000 body bytes: the client sees a short
# body and a closed connection, never a complete response.
my ($raw, $state) = http_raw($port, "GET /mid HTTP/1.1\r\nHost: x\r\n\r\n", timeout => scale(5));
my ($resp) = parse_responses($raw);
is($resp && $resp->{status}, 200, 'mid-response close: status line came through');
ok($resp && !$resp->{complete}, 'mid-response close: response is incomplete');
ok(length($resp ? $resp->{body} : '') < 100000, 'mid-response close: body truncated');
ok($state != 0, 'mid-response close: connection closed');
like(log_line('/mid'), qr/^200 UC mid \/mid \d+$/, 'access log: UC');

# Upstream resets before sending headers: 503 with flag UC.
$r = http_get($port, '/reset');
is($r->{status}, 503, 'upstream reset before headers: 503');
like($r->{body}, qr/^upstream connect error or disconnect\/reset before headers\. reset reason: /,
	'reset before headers: Envoy body');
like(log_line('/reset'), qr/^503 UC reset \/reset \d+$/, 'access log: 503 UC');

is(http_get($port, '/fine')->{status}, 200, 'healthy route still fine');
ok($wm->alive, 'wingman still running');
done_testing;
