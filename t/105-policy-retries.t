# Traffic policy, retries (issue 3), against backends that fail on purpose:
# retry_on tokens with Envoy's meanings (5xx, gateway-error, reset,
# connect-failure, retriable-4xx, retriable-status-codes and bare codes),
# x-envoy-attempt-count, retries preferring another host, per_try_timeout,
# URX with the last response returned, the request body replayed, no retry
# once the response has started, backoff, and the retry stats.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use Wingman;

my $dead = free_port();		# nothing listens here
# name => [backend options, route retries/timeout YAML]
my @sc = (
	[s5xx => { script => ['503', '500'] }, '{ attempts: 3, retry_on: "5xx" }'],
	[limit => { mode => '503' }, '{ attempts: 2, retry_on: "5xx" }'],
	[gw => { script => ['502', '504', '503'] }, '{ attempts: 3, retry_on: gateway-error }'],
	[gw500 => { mode => '500' }, '{ attempts: 3, retry_on: gateway-error }'],
	[x5reset => { script => ['reset'] }, '{ attempts: 1, retry_on: "5xx" }'],
	[reset => { script => ['reset', 'close'] }, '{ attempts: 2, retry_on: reset }'],
	[reset503 => { script => ['503'] }, '{ attempts: 2, retry_on: reset }'],
	[codes => { script => ['503'] }, '{ attempts: 2, retry_on: "503,reset" }'],
	[codes500 => { mode => '500' }, '{ attempts: 2, retry_on: "503,reset" }'],
	[codesreset => { script => ['reset'] }, '{ attempts: 2, retry_on: "503,reset" }'],
	[rsc => { script => ['429', '429'] }, '{ attempts: 2, retry_on: "retriable-status-codes,429" }'],
	[r4xx => { script => ['409'] }, '{ attempts: 2, retry_on: retriable-4xx }'],
	[r4xx404 => { mode => '404' }, '{ attempts: 2, retry_on: retriable-4xx }'],
	[cf503 => { mode => '503' }, '{ attempts: 2, retry_on: connect-failure }'],
	# A per-try timeout that a healthy attempt must beat is 1 s: with 300 ms the
	# healthy retry, answered by a freshly forked Perl process, once took longer
	# on a loaded 2-CPU machine and timed out too (a third attempt: '1,3').
	[pertry => { script => ['hang'] }, '{ attempts: 2, per_try_timeout: 1s, retry_on: "5xx" }'],
	[ptexhaust => { mode => 'hang' }, '{ attempts: 1, per_try_timeout: 200ms, retry_on: "5xx,reset" }'],
	[ptupload => { mode => 'md5' }, '{ attempts: 2, per_try_timeout: 1s, retry_on: "5xx" }'],
	[body => { script => ['503', '503'], mode => 'md5' }, '{ attempts: 3, retry_on: "5xx" }'],
	[chunked => { script => ['503'], mode => 'md5' }, '{ attempts: 3, retry_on: "5xx" }'],
	[bigbody => { script => ['503'], mode => 'md5' }, '{ attempts: 3, retry_on: "5xx" }'],
	[started => { mode => 'close_mid' }, '{ attempts: 3, retry_on: "5xx,reset" }'],
	[backoff => { mode => '503' }, '{ attempts: 3, retry_on: "5xx", backoff: 100ms }'],
	[late => { script => ['delay:1.5:echo'] }, '{ attempts: 2, per_try_timeout: 1s, retry_on: "5xx" }'],
	[dflt503 => { script => ['503'] }, '{ attempts: 2 }'],
	[dflt500 => { mode => '500' }, '{ attempts: 2 }'],
);
my (%be, $routes, $clusters);
for my $s (@sc) {
	my ($name, $bo, $retries) = @$s;
	$be{$name} = start_backend(id => $name, %$bo);
	$routes .= "      - { name: $name, match: { prefix: /$name/ }, route: { cluster: $name }, retries: $retries }\n";
	$clusters .= "  - { name: $name, endpoints: [127.0.0.1:" . $be{$name}->port . "] }\n";
}
# Connect failures: a dead endpoint next to a good one.
$be{cfgood} = start_backend(id => 'cfgood');
$routes .= "      - { name: cf, match: { prefix: /cf/ }, route: { cluster: cf }, retries: { attempts: 2, retry_on: connect-failure } }\n";
$clusters .= "  - { name: cf, connect_timeout: 1s, endpoints: [127.0.0.1:$dead, 127.0.0.1:" . $be{cfgood}->port . "] }\n";
# Retries prefer another host: round robin with weights 3:1 would pick p1
# twice in a row; every request's two attempts must reach both hosts.
$be{p1} = start_backend(id => 'p1', mode => '503');
$be{p2} = start_backend(id => 'p2', mode => '503');
$routes .= "      - { name: prefer, match: { prefix: /prefer/ }, route: { cluster: prefer }, retries: { attempts: 1, retry_on: \"5xx\" } }\n";
$clusters .= "  - name: prefer\n    endpoints: [{ address: \"127.0.0.1:" . $be{p1}->port
	. "\", weight: 3 }, { address: \"127.0.0.1:" . $be{p2}->port . "\", weight: 1 }]\n";

my $wm = start_web(<<"EOF", access_log => 'access-105.log', log_format => '%RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER% %REQ(:PATH)%\n');
    routes:
$routes
clusters:
$clusters
EOF
my $port = $wm->port;

sub stat_is {
	my ($name, $want, $what) = @_;
	my $v;
	wait_for(sub { ($v = $wm->stat($name)) == $want }, scale(3));
	is($v, $want, "$what: $name = $want");
}

sub flags {
	my ($path) = @_;
	my $l = $wm->log_line(qr{ \Q$path\E$});
	return (split / /, $l)[1] // '';
}

# 5xx: 503 then 500 then success.
my $r = http_get($port, '/s5xx/a');
is($r->{status}, 200, '5xx: 503, 500, then 200 → 200');
like($r->{body}, qr/^x-envoy-attempt-count: 3$/mi, 'the successful attempt carried x-envoy-attempt-count: 3');
is(join(',', $be{s5xx}->attempts), '1,2,3', 'the backend saw attempts 1, 2, 3');
is(flags('/s5xx/a'), '-', 'no response flag after a successful retry');
stat_is('cluster.s5xx.upstream_rq_retry', 2, '5xx');
stat_is('cluster.s5xx.upstream_rq_retry_success', 1, '5xx');
stat_is('cluster.s5xx.upstream_rq_retry_limit_exceeded', 0, '5xx');

# Retries used up: the last response goes to the client, flag URX.
$r = http_get($port, '/limit/a');
is($r->{status}, 503, 'retries exhausted: the last 503 is returned');
is($r->{body}, "limit 503\n", "it is the backend's response, not a local reply");
is($r->{headers}{'x-backend-id'}, 'limit', 'with the backend headers');
is($be{limit}->count, 3, 'attempts: 1 + 2 retries');
is(join(',', $be{limit}->attempts), '1,2,3', 'x-envoy-attempt-count 1..3');
like(flags('/limit/a'), qr/\bURX\b/, 'access log flag URX');
stat_is('cluster.limit.upstream_rq_retry', 2, 'limit');
stat_is('cluster.limit.upstream_rq_retry_limit_exceeded', 1, 'limit');
stat_is('cluster.limit.upstream_rq_retry_success', 0, 'limit');
stat_is('cluster.limit.upstream_rq_503', 3, 'every attempt counted by code');

# Two pipelined requests on one keep-alive connection, each retried to the limit.
my $s = connect_port($port);
send_bytes($s, "GET /limit/k1 HTTP/1.1\r\nHost: x\r\n\r\nGET /limit/k2 HTTP/1.1\r\nHost: x\r\n\r\n");
my $k1 = read_response($s);
my $k2 = read_response($s);
close $s;
is(($k1 && $k1->{status}) . ' ' . ($k2 && $k2->{status}), '503 503', 'keep-alive: both pipelined requests answered');
is($be{limit}->count, 9, 'keep-alive: three attempts each');
stat_is('cluster.limit.upstream_rq_retry_limit_exceeded', 3, 'limit after keep-alive');
like($wm->admin('/stats/prometheus'), qr/^envoy_cluster_upstream_rq_retry\{cluster_name="limit"\} 6$/m,
	'prometheus: envoy_cluster_upstream_rq_retry{cluster_name="limit"}');

# gateway-error: 502, 504, 503 are retried; 500 is not.
$r = http_get($port, '/gw/a');
is($r->{status}, 200, 'gateway-error: 502, 504, 503 retried');
is($be{gw}->count, 4, 'gateway-error: four attempts');
$r = http_get($port, '/gw500/a');
is($r->{status}, 500, 'gateway-error does not retry 500');
is($be{gw500}->count, 1, 'gateway-error: 500 tried once');
stat_is('cluster.gw500.upstream_rq_retry', 0, 'gateway-error on 500');

# 5xx covers resets too (Envoy counts a reset as a 5xx).
$r = http_get($port, '/x5reset/a');
is($r->{status}, 200, '5xx retries a connection reset');
is($be{x5reset}->count, 2, '5xx on reset: two attempts');

# reset: resets and closes before the headers are retried, 503 responses are not.
$r = http_get($port, '/reset/a');
is($r->{status}, 200, 'reset: reset then close then 200');
is($be{reset}->count, 3, 'reset: three attempts');
$r = http_get($port, '/reset503/a');
is($r->{status}, 503, 'reset does not retry a 503 response');
is($be{reset503}->count, 1, 'reset on 503: one attempt');

# Bare status codes ("503,reset" like Istio).
$r = http_get($port, '/codes/a');
is($r->{status}, 200, '"503,reset": 503 retried');
is($be{codes}->count, 2, '"503,reset": two attempts');
$r = http_get($port, '/codes500/a');
is($r->{status}, 500, '"503,reset": 500 not retried');
is($be{codes500}->count, 1, '"503,reset": 500 tried once');
$r = http_get($port, '/codesreset/a');
is($r->{status}, 200, '"503,reset": reset retried');
$r = http_get($port, '/rsc/a');
is($r->{status}, 200, 'retriable-status-codes,429: 429 retried');
is($be{rsc}->count, 3, 'retriable-status-codes: three attempts');

# retriable-4xx is 409 only.
$r = http_get($port, '/r4xx/a');
is($r->{status}, 200, 'retriable-4xx: 409 retried');
is($be{r4xx}->count, 2, 'retriable-4xx: two attempts');
$r = http_get($port, '/r4xx404/a');
is($r->{status}, 404, 'retriable-4xx: 404 not retried');
is($be{r4xx404}->count, 1, 'retriable-4xx: 404 tried once');

# Without retry_on, Istio's default (connect-failure, refused-stream,
# unavailable, cancelled, 503).
$r = http_get($port, '/dflt503/a');
is($r->{status}, 200, 'default retry_on: 503 retried');
is($be{dflt503}->count, 2, 'default retry_on: two attempts');
$r = http_get($port, '/dflt500/a');
is($r->{status}, 500, 'default retry_on: 500 not retried');
is($be{dflt500}->count, 1, 'default retry_on: 500 tried once');

# connect-failure: the dead endpoint's attempts move to the good one.
my @st = map { http_get($port, "/cf/$_")->{status} } 1 .. 4;
is(join(',', @st), '200,200,200,200', 'connect-failure: every request succeeds beside a dead endpoint');
is($be{cfgood}->count, 4, 'connect-failure: the good endpoint served each request once');
ok($wm->stat('cluster.cf.upstream_cx_connect_fail') >= 1, 'connect failures happened');
ok($wm->stat('cluster.cf.upstream_rq_retry') >= 1, 'and were retried');
$r = http_get($port, '/cf503/a');
is($r->{status}, 503, 'connect-failure does not retry a 503 response');
is($be{cf503}->count, 1, 'connect-failure on 503: one attempt');

# Retries prefer another host.
http_get($port, "/prefer/$_") for 1 .. 8;
is($be{p1}->count . '/' . $be{p2}->count, '8/8', 'each request tried both hosts once (weights 3:1 notwithstanding)');

# per_try_timeout: a hanging first attempt is abandoned and retried.
my $t = time;
$r = http_get($port, '/pertry/a');
my $el = time - $t;
is($r->{status}, 200, 'per_try_timeout: hang, then 200');
ok($el >= 0.98 && $el < 1 + scale(1.5), sprintf('after one per-try timeout (%.2fs)', $el));
$be{pertry}->wait_count(2);
is(join(',', $be{pertry}->attempts), '1,2', 'two attempts');
stat_is('cluster.pertry.upstream_rq_per_try_timeout', 1, 'per-try timeout');
stat_is('cluster.pertry.upstream_rq_retry', 1, 'per-try timeout');
stat_is('cluster.pertry.upstream_rq_retry_success', 1, 'per-try timeout');
is(flags('/pertry/a'), '-', 'no flag after the retry succeeded');

# ... the abandoned attempt's late answer never reaches the client: the retry
# runs on a fresh upstream connection.
$r = http_get($port, '/late/a');
is($r->{status}, 200, 'late first answer: the retry answers');
like($r->{body}, qr/^x-envoy-attempt-count: 2$/mi, "the client got the second attempt's response");
$be{late}->wait_count(2);
is(join(',', $be{late}->attempts), '1,2', 'two attempts');
is($be{late}->conns, 2, 'on two upstream connections');

# ... every attempt hangs: 504 after the last per-try timeout.
$t = time;
$r = http_get($port, '/ptexhaust/a');
$el = time - $t;
is($r->{status}, 504, 'per-try timeouts exhausted: 504');
is($r->{body}, 'upstream request timeout', 'body');
ok($el >= 0.38 && $el < scale(1.5), sprintf('after two per-try timeouts (%.2fs)', $el));
# The second attempt's request is logged by its forked backend process,
# which may run after wingman's 504 came back.
is($be{ptexhaust}->wait_count(2), 2, 'two attempts');
like(flags('/ptexhaust/a'), qr/\bUT\b/, 'flag UT');
stat_is('cluster.ptexhaust.upstream_rq_per_try_timeout', 2, 'exhausted');
stat_is('cluster.ptexhaust.upstream_rq_retry_limit_exceeded', 1, 'exhausted');

# ... and the per-try timer starts once the request is complete.
my $body = join '', map { chr(65 + $_ % 26) } 1 .. 3000;
my ($raw) = http_raw($port, ["POST /ptupload/a HTTP/1.1\r\nHost: x\r\nContent-Length: 3000\r\nConnection: close\r\n\r\n"
	. substr($body, 0, 1000), substr($body, 1000, 1000), substr($body, 2000)], pause => 0.6);
my ($resp) = parse_responses($raw);
is($resp && $resp->{status}, 200, 'slow upload longer than per_try_timeout: 200');
is($be{ptupload}->count, 1, 'no per-try timeout while the request was still arriving');

# The request body is replayed on every attempt.
$body = join '', map { sprintf "%07d\n", $_ } 1 .. 12800;	# 100 KiB
$r = http_request($port, 'POST', '/body/a', body => $body);
is($r->{status}, 200, 'POST 100 KiB: 503, 503, then 200');
is($r->{body}, md5_hex($body) . " 102400 0\n", 'the successful attempt got the whole body');
my @q = $be{body}->requests;
is(scalar(@q), 3, 'three attempts');
is(scalar(grep { $_->{body_length} == 102400 && $_->{body_md5} eq md5_hex($body) } @q), 3,
	'every attempt carried the whole body');
my $chunks = join '', map { sprintf("%x\r\n%s\r\n", length $_, $_) } ('a' x 1000, 'b' x 5000, 'c' x 10);
($raw) = http_raw($port, "POST /chunked/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunks}0\r\n\r\n");
($resp) = parse_responses($raw);
my $want = ('a' x 1000) . ('b' x 5000) . ('c' x 10);
is($resp && $resp->{status}, 200, 'chunked POST: 503 then 200');
like($resp ? $resp->{body} : '', qr/^\Q${\ md5_hex($want)}\E 6010 /, 'chunked body replayed intact');

# A body over the retry buffer (1 MiB) streams through and is not retried.
my $big = 'z' x (2 << 20);
$r = http_request($port, 'POST', '/bigbody/a', body => $big, timeout => scale(10));
is($r->{status}, 503, 'body over the retry buffer: the 503 is returned, not retried');
@q = $be{bigbody}->requests;
is(scalar(@q), 1, 'one attempt');
is($q[0] && $q[0]{body_length}, 2 << 20, 'the whole 2 MiB body reached the upstream');
is(http_request($port, 'POST', '/bigbody/b', body => 'small')->{status}, 200, 'a small body to the same route works');

# No retry once the response has started: the client sees the truncated response.
($raw, my $state) = http_raw($port, "GET /started/a HTTP/1.1\r\nHost: x\r\n\r\n", timeout => scale(5));
($resp) = parse_responses($raw);
is($resp && $resp->{status}, 200, 'response started: status line passed through');
ok($resp && !$resp->{complete}, 'response started: truncated, not retried');
is($be{started}->count, 1, 'response started: one attempt only');
stat_is('cluster.started.upstream_rq_retry', 0, 'response started');

# Backoff: three retries with a 100 ms base take some time, bounded by 10x base each.
$t = time;
$r = http_get($port, '/backoff/a');
$el = time - $t;
is($r->{status}, 503, 'backoff: retries exhausted');
is($be{backoff}->count, 4, 'backoff: four attempts');
ok($el >= 0.03 && $el < scale(3.5), sprintf('backoff: jittered waits between attempts (%.2fs)', $el));
my @ts = map { $_->{t} } $be{backoff}->requests;
ok(!grep({ $ts[$_] < $ts[$_ - 1] } 1 .. $#ts), 'attempts in order');

ok($wm->alive, 'wingman still running');
done_testing;
