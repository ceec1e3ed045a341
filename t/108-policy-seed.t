# Traffic policy, the seed users' scenario (issue 3): "3 retries x 2s per try
# within a 10s route timeout", scaled by 0.2 (400 ms per try, 2 s route
# timeout) with the proportions kept, against one healthy pod and one that
# hangs, a backend that hangs twice then answers, and one that always hangs.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use Wingman;

my $ok1 = start_backend(id => 'pod-1');
my $hung = start_backend(id => 'pod-2', mode => 'hang');
my $twice = start_backend(id => 'twice', script => ['hang', 'hang']);
my $never = start_backend(id => 'never', mode => 'hang');
my $flap = start_backend(id => 'flap', script => ['503', 'reset', '503']);
my ($p1, $p2, $pt, $pn, $pf) = map { $_->port } ($ok1, $hung, $twice, $never, $flap);
my $retries = '{ attempts: 3, per_try_timeout: 400ms, retry_on: "5xx,reset,connect-failure,refused-stream", backoff: 25ms }';
my $wm = start_web(<<"EOF", workers => 2, access_log => 'access-108.log', log_format => '%RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER% %REQ(:PATH)% %DURATION%\n');
    routes:
      - { name: pods, match: { prefix: /pods/ }, route: { cluster: pods }, timeout: 2s, retries: $retries }
      - { name: twice, match: { prefix: /twice/ }, route: { cluster: twice }, timeout: 2s, retries: $retries }
      - { name: never, match: { prefix: /never/ }, route: { cluster: never }, timeout: 2s, retries: $retries }
      - { name: flap, match: { prefix: /flap/ }, route: { cluster: flap }, timeout: 2s, retries: $retries }
clusters:
  - { name: pods, endpoints: [127.0.0.1:$p1, 127.0.0.1:$p2] }
  - { name: twice, endpoints: [127.0.0.1:$pt] }
  - { name: never, endpoints: [127.0.0.1:$pn] }
  - { name: flap, endpoints: [127.0.0.1:$pf] }
EOF
my $port = $wm->port;

# One healthy pod, one hung pod: every request succeeds; those that met the
# hung pod first took one per-try timeout longer.
my @r = http_parallel($port, [map { { path => "/pods/$_" } } 1 .. 6]);
is(join(',', map { $_->{status} } @r), '200,200,200,200,200,200', 'one pod hangs: every request still succeeds');
is(scalar(grep { ($_->{headers}{'x-backend-id'} // '') eq 'pod-1' } @r), 6, 'all answered by the healthy pod');
my $max = 0;
$_->{elapsed} > $max and $max = $_->{elapsed} for @r;
ok($max < scale(1.4), sprintf('slowest request %.2fs: one per-try timeout (0.4s) plus backoff', $max));
my $hits = $hung->count;
ok($hits >= 1, "the hung pod was tried ($hits times)");
ok(wait_for(sub { $wm->stat('cluster.pods.upstream_rq_per_try_timeout') == $hits }, scale(3)),
	'each attempt on the hung pod ended in a per-try timeout');
is($wm->stat('cluster.pods.upstream_rq_timeout'), 0, 'the route timeout never fired');
is($wm->stat('cluster.pods.upstream_rq_retry_success'), $hits, 'each of those retries succeeded');

# Hangs twice, then answers: the third attempt succeeds after ~0.8 s.
my $t = time;
my $r = http_get($port, '/twice/a', timeout => scale(5));
my $el = time - $t;
is($r->{status}, 200, 'hangs twice then answers: 200');
like($r->{body}, qr/^x-envoy-attempt-count: 3$/mi, 'on the third attempt');
ok($el >= 0.78 && $el < scale(1.6), sprintf('after two per-try timeouts (%.2fs)', $el));
is($wm->stat('cluster.twice.upstream_rq_per_try_timeout'), 2, 'two per-try timeouts counted');

# Always hangs: 4 attempts x 400 ms (+ backoff) fit in the 2 s route timeout;
# the client gets 504 "upstream request timeout" after the last per-try timeout.
$t = time;
$r = http_get($port, '/never/a', timeout => scale(5));
$el = time - $t;
is($r->{status}, 504, 'always hangs: 504');
is($r->{body}, 'upstream request timeout', "Envoy's body");
ok($el >= 1.55 && $el < scale(2.3), sprintf('after four per-try timeouts, within the route timeout (%.2fs)', $el));
is($never->count, 4, 'four attempts (1 + 3 retries)');
is(join(',', $never->attempts), '1,2,3,4', 'x-envoy-attempt-count 1..4');
like($wm->log_line(qr{ /never/a }), qr{^504 \S*UT\S* never /never/a }, 'access log: 504 UT');
ok(wait_for(sub { $wm->stat('cluster.never.upstream_rq_per_try_timeout') == 4 }, scale(3)), 'four per-try timeouts');
is($wm->stat('cluster.never.upstream_rq_retry'), 3, 'three retries');
is($wm->stat('cluster.never.upstream_rq_retry_limit_exceeded'), 1, 'retry limit exceeded once');

# 503, reset, 503, then 200: all within the retry budget.
$r = http_get($port, '/flap/a');
is($r->{status}, 200, '503, reset, 503, then 200');
is(join(',', $flap->attempts), '1,2,3,4', 'four attempts');
is($wm->stat('cluster.flap.upstream_rq_retry_success'), 1, 'retry success counted');
like($wm->log_line(qr{ /flap/a }), qr{^200 - flap /flap/a }, 'access log: 200 without flags');

ok($wm->alive, 'wingman still running');
done_testing;
