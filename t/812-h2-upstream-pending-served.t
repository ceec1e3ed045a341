# Regression: with an HTTP/2 cluster at max_connections, requests queued for
# a stream (the upstream's SETTINGS_MAX_CONCURRENT_STREAMS all in use) were
# only served once the connection closed (its 60 s idle timeout): they waited
# out the route timeout and got 504. A stream that ends now hands its slot to
# the next queued request, as HTTP/1.1 connections hand themselves over.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use Wingman;

plan skip_all => 'node missing' unless have_prog('node');
plan skip_all => 'h2load missing' unless have_prog('h2load');

my $nodep = start_h2_backend(max_streams => 2);

my ($port, $admin) = (free_port(), free_port());
my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$admin }
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes: [{ match: { prefix: / }, route: { cluster: node }, timeout: 10s }]
clusters:
  - name: node
    protocol: http2
    endpoints: [127.0.0.1:$nodep]
    connection_pool: { max_connections: 1, max_pending_requests: 100 }
EOF

# The upstream connection first, so its SETTINGS (2 streams) are known:
# a request sent before they arrive is refused by the backend and retried,
# not queued, and the queueing below depends on the machine's speed (CI
# once saw upstream_rq_pending_total 0).
is(http_get($port, '/headers')->{status}, 200, 'the upstream connection is up');

# 8 at once over one upstream connection that takes 2 streams at a time:
# four waves of 300 ms.
my $t0 = time;
my $out = `h2load --h1 -n 8 -c 8 http://127.0.0.1:$port/slow 2>&1`;
my $took = time - $t0;
like($out, qr/status codes: 8 2xx/, 'all 8 queued requests answered 200') or diag($out);
cmp_ok($took, '<', 8, sprintf('... as streams free up (%.1f s), not after the route timeout', $took));
my $st = $wm->stats('cluster\.node\.');
is($st->{'cluster.node.upstream_cx_total'}, 1, 'one upstream connection');
cmp_ok($st->{'cluster.node.upstream_rq_pending_total'} // 0, '>=', 1, 'requests did queue (upstream_rq_pending_total)');

done_testing();
