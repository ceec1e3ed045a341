# Traffic policy, circuit breakers (issue 3): connection_pool limits with
# Envoy's overflow reply (503, "reset reason: overflow", x-envoy-overloaded,
# flag UO, upstream_rq_pending_overflow), never retried and never counted by
# outlier detection; the seed's fortio-like run; max_requests_per_connection;
# max_retries (upstream_rq_retry_overflow).
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Wingman;

my $overflow_body = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';
my $slow = start_backend(id => 'slow', mode => 'delay:0.5:echo');
my $fortio = start_backend(id => 'fortio', mode => 'delay:0.2:echo');
my $plain = start_backend(id => 'plain');
my $plain2 = start_backend(id => 'plain2');
my $r503 = start_backend(id => 'r503', mode => 'delay:0.3:503');
my ($ps, $pf, $pp, $pp2, $pr) = map { $_->port } ($slow, $fortio, $plain, $plain2, $r503);
my $wm = start_web(<<"EOF", access_log => 'access-106.log', log_format => '%RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER% %REQ(:PATH)%\n');
    routes:
      - name: one
        match: { prefix: /one/ }
        route: { cluster: one }
        retries: { attempts: 3, retry_on: "5xx,reset,connect-failure,refused-stream" }
      - { name: perconn, match: { prefix: /perconn/ }, route: { cluster: perconn } }
      - { name: nolimit, match: { prefix: /nolimit/ }, route: { cluster: nolimit } }
      - name: retrycap
        match: { prefix: /retrycap/ }
        route: { cluster: retrycap }
        retries: { attempts: 2, retry_on: "5xx" }
clusters:
  - name: one
    endpoints: [127.0.0.1:$ps]
    connection_pool: { max_connections: 1, max_pending_requests: 1 }
    outlier_detection: { consecutive_5xx: 2, interval: 10s, base_ejection_time: 30s, max_ejection_percent: 100 }
  - name: perconn
    endpoints: [127.0.0.1:$pp]
    connection_pool: { max_requests_per_connection: 2 }
  - { name: nolimit, endpoints: [127.0.0.1:$pp2] }
  - name: retrycap
    endpoints: [127.0.0.1:$pr]
    connection_pool: { max_retries: 1 }
EOF
my $port = $wm->port;

# max_connections 1, max_pending_requests 1: one request in flight, one
# waiting, the other two overflow at once.
my $first = connect_port($port);
send_bytes($first, "GET /one/0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
sleep 0.15;
my $t = time;
my @r = http_parallel($port, [map { { path => "/one/$_" } } 1 .. 3]);
my $r0 = read_response($first, timeout => scale(5));
close $first;
is($r0 && $r0->{status}, 200, 'the request in flight succeeds');
my @ok = grep { $_->{status} == 200 } @r;
my @over = grep { $_->{status} == 503 } @r;
is(scalar(@ok), 1, 'one more request waited in the pending queue and succeeded');
is(scalar(@over), 2, 'two requests overflowed');
for my $o (@over) {
	is($o->{body}, $overflow_body, "overflow body ($o->{req}{path})");
	is($o->{headers}{'x-envoy-overloaded'}, 'true', "x-envoy-overloaded: true ($o->{req}{path})");
	ok($o->{elapsed} < 0.3, sprintf('overflow answered at once (%.2fs)', $o->{elapsed}));
	like($wm->log_line(qr{ \Q$o->{req}{path}\E$}), qr/^503 UO one /, "access log: 503 UO ($o->{req}{path})");
}
is($slow->count, 2, 'overflowed requests were not retried (retry_on 5xx,reset,...)');
my $v;
ok(wait_for(sub { ($v = $wm->stat('cluster.one.upstream_rq_pending_overflow')) == 2 }, scale(3)),
	"cluster.one.upstream_rq_pending_overflow = 2 ($v)");
ok($wm->stat('cluster.one.upstream_cx_overflow') >= 1, 'cluster.one.upstream_cx_overflow counted');
is($wm->stat('cluster.one.upstream_rq_retry'), 0, 'no retries counted');
is($wm->stat('cluster.one.upstream_rq_retry_overflow'), 0, 'no retry overflow counted');
is($slow->conns, 1, 'the waiting request went on the one upstream connection');
# Overflow is not an upstream failure: consecutive_5xx 2 did not eject the host.
is(http_get($port, '/one/after')->{status}, 200, 'the host still takes requests after two overflows');
is($wm->stat('cluster.one.outlier_detection.ejections_enforced_total'), 0, 'overflows are not outlier errors');

# The seed's fortio-like run: max_connections 1, max_pending_requests 1 and
# four concurrent clients; rounds of four parallel requests over two workers
# (like Envoy, a worker without a connection may open one past the limit).
my $wm2 = start_web(<<"EOF", workers => 2);
    routes:
      - { name: f, match: { prefix: / }, route: { cluster: fortio } }
clusters:
  - name: fortio
    endpoints: [127.0.0.1:$pf]
    connection_pool: { max_connections: 1, max_pending_requests: 1, max_requests_per_connection: 1 }
EOF
my $port2 = $wm2->port;
my (%codes, $bad);
for my $round (1 .. 6) {
	for my $x (http_parallel($port2, [map { { path => "/f/$round/$_" } } 1 .. 4], timeout => scale(5))) {
		$codes{ $x->{status} }++;
		$bad++ if $x->{status} == 503
			&& ($x->{body} ne $overflow_body || ($x->{headers}{'x-envoy-overloaded'} // '') ne 'true');
	}
}
diag('fortio-like: ' . join(' ', map { "$_ x$codes{$_}" } sort keys %codes));
ok(($codes{503} // 0) >= 3, 'a share of the requests overflowed (503)');
ok(($codes{200} // 0) >= 6, 'a share succeeded');
is(($codes{200} // 0) + ($codes{503} // 0), 24, 'nothing but 200 and 503');
ok(!$bad, 'every 503 is the overflow reply with x-envoy-overloaded');
ok(wait_for(sub { $wm2->stat('cluster.fortio.upstream_rq_pending_overflow') == ($codes{503} // -1) }, scale(3)),
	'upstream_rq_pending_overflow equals the 503s');
$wm2->kill_now;

# max_requests: at most two requests in flight, the pending queue holds one.
my $wm3 = start_web(<<"EOF", workers => 2);
    routes:
      - { name: f, match: { prefix: / }, route: { cluster: maxrq } }
clusters:
  - name: maxrq
    endpoints: [127.0.0.1:$pf]
    connection_pool: { max_requests: 2, max_pending_requests: 1 }
EOF
my $port3 = $wm3->port;
%codes = ();
$bad = 0;
for my $round (1 .. 4) {
	for my $x (http_parallel($port3, [map { { path => "/m/$round/$_" } } 1 .. 4], timeout => scale(5))) {
		$codes{ $x->{status} }++;
		$bad++ if $x->{status} == 503 && $x->{body} ne $overflow_body;
	}
}
diag('max_requests 2: ' . join(' ', map { "$_ x$codes{$_}" } sort keys %codes));
ok(($codes{503} // 0) >= 4, 'max_requests 2 with 4 concurrent clients: overflows');
ok(($codes{200} // 0) >= 4, 'max_requests 2: some succeed');
ok(!$bad, 'max_requests overflow is the overflow reply');
ok(wait_for(sub { $wm3->stat('cluster.maxrq.upstream_rq_pending_overflow') == ($codes{503} // -1) }, scale(3)),
	'max_requests overflow counts upstream_rq_pending_overflow');
$wm3->kill_now;

# max_requests_per_connection 2: six sequential requests use three connections.
http_get($port, "/perconn/$_") for 1 .. 6;
is($plain->count, 6, 'six requests served');
is($plain->conns, 3, 'max_requests_per_connection 2: three upstream connections');
http_get($port, "/nolimit/$_") for 1 .. 6;
is($plain2->conns, 1, 'without the limit the connection is reused for all six');

# max_retries 1: four requests fail at once, only one may retry at a time.
@r = http_parallel($port, [map { { path => "/retrycap/$_" } } 1 .. 4]);
is(join(',', map { $_->{status} } @r), '503,503,503,503', 'every request ends 503 (the backend always fails)');
ok(wait_for(sub { $wm->stat('cluster.retrycap.upstream_rq_retry_overflow') >= 1 }, scale(3)),
	'cluster.retrycap.upstream_rq_retry_overflow counted (' . $wm->stat('cluster.retrycap.upstream_rq_retry_overflow') . ')');
ok($r503->count < 12, 'fewer attempts than 4 requests x 3 tries (' . $r503->count . ')');
my @uo = grep { m{ /retrycap/\d$} && /^503 \S*UO/ } $wm->access_log_lines;
ok(scalar(@uo) >= 1, 'requests whose retry overflowed are logged with flag UO');
ok(!grep({ $_->{body} eq $overflow_body } @r), 'retry overflow returns the upstream response, not a local reply');

ok($wm->alive, 'wingman still running');
done_testing;
