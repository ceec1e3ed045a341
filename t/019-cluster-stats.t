# Envoy's request and cluster stats that dashboards and alerts read:
# upstream_rq_completed, upstream_rq_cancelled (given up while pending),
# upstream_rq_tx_reset (reset by wingman mid-request), upstream_cx_none_healthy
# (503 UH), membership_healthy (hosts not ejected), the
# circuit_breakers.default.*_open gauges at their limits, server.live,
# server.version and cluster_manager.active_clusters.
use strict;
use warnings;
use IO::Socket::INET;
use Test::More;
use Wingman;

my $ng = start_nginx(q{
	location = /od { return 503 "bad\n"; }
	location / { return 200 "ok\n"; }
});
my $np = $ng->port;
my $hang = start_backend(mode => 'hang');
my $wm = start_web(<<"EOF", listener => 'in');
    routes:
      - { match: { prefix: /slowb }, route: { cluster: slow }, timeout: 500ms }
      - { match: { prefix: /slow }, route: { cluster: slow }, timeout: 2s }
      - { match: { prefix: /od }, route: { cluster: od } }
      - { match: { prefix: / }, route: { cluster: web } }
clusters:
  - { name: web, endpoints: [127.0.0.1:$np] }
  - name: slow
    endpoints: ["127.0.0.1:${\ $hang->port }"]
    connection_pool: { max_connections: 1, max_pending_requests: 1 }
  - name: od
    endpoints: [127.0.0.1:$np]
    outlier_detection: { consecutive_5xx: 1, base_ejection_time: 60s, max_ejection_percent: 100,
                         min_health_percent: 0 }
EOF
my $port = $wm->port;
sub st { $wm->stats->{ $_[0] } // 0 }

http_get($port, '/') for 1 .. 3;
is(st('cluster.web.upstream_rq_completed'), 3, 'upstream_rq_completed: three whole responses');
is(st('cluster.web.membership_healthy'), 1, 'membership_healthy');
is(st('cluster.web.membership_total'), 1, 'membership_total');
is(st('server.live'), 1, 'server.live');
like(st('server.version'), qr/^\d+$/, 'server.version is a number');
is(st('cluster_manager.active_clusters'), 3, 'cluster_manager.active_clusters');
is(st('cluster_manager.warming_clusters'), 0, 'cluster_manager.warming_clusters');
is(st("cluster.slow.circuit_breakers.default.$_"), 0, "$_ closed while idle") for qw(cx_open rq_pending_open);

# One request holds slow's only connection, a second waits for it; the
# backend never answers.
my @c = map { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or die $! } 1 .. 2;
print { $c[0] } "GET /slow/a HTTP/1.1\r\nHost: x\r\n\r\n";
ok(wait_for(sub { st('cluster.slow.upstream_rq_active') == 1 }, scale(5)), 'first request in flight');
print { $c[1] } "GET /slowb HTTP/1.1\r\nHost: x\r\n\r\n";
ok(wait_for(sub { st('cluster.slow.upstream_rq_pending_active') == 1 }, scale(5)), 'second one pending');
is(st('cluster.slow.circuit_breakers.default.cx_open'), 1, 'cx_open: at max_connections');
is(st('cluster.slow.circuit_breakers.default.rq_pending_open'), 1, 'rq_pending_open: at max_pending_requests');
is(st('cluster.slow.circuit_breakers.default.rq_open'), 0, 'rq_open: below max_requests');

# Route timeouts end both: the waiting one's first (cancelled), then the
# one in flight (reset by wingman).
my @r = map { scalar read_response($_) } @c;
is_deeply([map { $_->{status} } @r], [504, 504], 'both time out: 504');
close $_ for @c;
is(st('cluster.slow.upstream_rq_cancelled'), 1, 'upstream_rq_cancelled: the pending one');
is(st('cluster.slow.upstream_rq_tx_reset'), 1, 'upstream_rq_tx_reset: the one in flight');
is(st('cluster.slow.upstream_rq_completed'), 0, 'neither completed');
ok(wait_for(sub { st('cluster.slow.circuit_breakers.default.cx_open') == 0 }, scale(5)), 'cx_open closes again');

# od's only host is ejected after one 5xx; with min_health_percent 0 nothing panics: UH.
my $r = http_get($port, '/od');
is($r->{status}, 503, 'a 5xx ejects the host');
is(st('cluster.od.membership_healthy'), 0, 'membership_healthy 0 once ejected');
is(st('cluster.od.membership_total'), 1, 'membership_total still 1');
$r = http_get($port, '/od');
is($r->{status}, 503, 'no healthy host: 503');
is(st('cluster.od.upstream_cx_none_healthy'), 1, 'upstream_cx_none_healthy');

done_testing();
