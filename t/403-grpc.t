# gRPC through wingman with real peers: @grpc/grpc-js client and server (h2c
# listener -> h2 upstream cluster) for a unary and a server-streaming method,
# retries on a trailers-only UNAVAILABLE, deadlines (grpc-timeout and the route
# timeout -> DEADLINE_EXCEEDED), and every local reply to a gRPC request turned
# into a trailers-only gRPC response (no route, connection failure, fault abort
# with grpc_status or an HTTP status), grpc.* stats per cluster, and outlier
# detection counting a trailers-only UNAVAILABLE as a 503.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time);
use Wingman;

BAIL_OUT("node modules missing: run ./bootstrap (npm ci --prefix t/node)") unless have_grpc_node();

my $dir = tmpdir();
my $gp = start_grpc_server();

# An HTTP/1.1 backend that never answers, for deadlines only wingman can end
# (the grpc-js server honours grpc-timeout itself and would race wingman).
my $hang = start_backend(mode => 'hang');
my ($p, $pshort, $pfault, $pod, $admin, $dead) = map { free_port() } 1 .. 6;
my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$admin }
access_log: { path: $dir/access.log, format: "%REQ(:PATH)% %REQ(X-CASE)% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\\n" }
listeners:
  - name: grpc
    address: 127.0.0.1:$p
    routes:
      - { match: { prefix: /, headers: { x-case: { exact: dead } } }, route: { cluster: dead } }
      - { match: { prefix: /, headers: { x-case: { exact: abort403 } } }, route: { cluster: grpc },
          fault: { abort: { status: 403, percentage: 100 } } }
      - { match: { prefix: /, headers: { x-case: { exact: hang } } }, route: { cluster: hang }, timeout: 10s }
      - { match: { prefix: /, headers: { x-case: { exact: shorthang } } }, route: { cluster: hang }, timeout: 300ms }
      - { match: { prefix: /wingman.test.Echo/ }, route: { cluster: grpc }, timeout: 10s,
          retries: { attempts: 2, retry_on: "unavailable,internal" } }
  - name: short
    address: 127.0.0.1:$pshort
    routes: [ { match: { prefix: / }, route: { cluster: grpc }, timeout: 400ms } ]
  - name: fault
    address: 127.0.0.1:$pfault
    routes: [ { match: { prefix: / }, route: { cluster: grpc },
                fault: { abort: { grpc_status: UNAVAILABLE, percentage: 100 } } } ]
  - name: od
    address: 127.0.0.1:$pod
    routes: [ { match: { prefix: / }, route: { cluster: grpc_od } } ]
clusters:
  - { name: grpc, protocol: http2, endpoints: [127.0.0.1:$gp] }
  - { name: grpc_od, protocol: http2, endpoints: [127.0.0.1:$gp],
      outlier_detection: { consecutive_5xx: 2, base_ejection_time: 30s } }
  - { name: dead, protocol: http2, endpoints: [127.0.0.1:$dead] }
  - { name: hang, endpoints: ["127.0.0.1:@{[ $hang->port ]}"] }
EOF


# --- real client and server: unary, streaming
my $r = grpc_call($p, 'Unary', { text => 'hello' });
is($r->{code}, 0, 'unary through wingman: OK') or diag explain $r;
is($r->{messages}[0]{text}, 'hello', '... with the answer');
$r = grpc_call($p, 'Stream', { text => 'st', count => 5, delay_ms => 20 });
is($r->{code}, 0, 'server streaming: OK (grpc-status 0 in real trailers)') or diag explain $r;
is_deeply([map { $_->{seq} } @{ $r->{messages} }], [0 .. 4], '... five messages in order');

# --- retries: a trailers-only UNAVAILABLE is retried (retry_on: unavailable)
$r = grpc_call($p, 'Unary', { text => 'flaky-u', mode => 'flaky' });
is($r->{code}, 0, 'unary failing UNAVAILABLE once: retried, OK') or diag explain $r;
is($r->{messages}[0]{calls}, 2, '... the server saw two calls');
$r = grpc_call($p, 'Stream', { text => 'flaky-s', mode => 'flaky', count => 2 });
is($r->{code}, 0, 'stream failing UNAVAILABLE once (trailers-only): retried') or diag explain $r;
is(scalar @{ $r->{messages} }, 2, '... and streamed');
is($wm->stat('cluster.grpc.upstream_rq_retry'), 2, 'two retries counted');
# grpc-status INTERNAL in real trailers comes after the messages: too late to retry.
$r = grpc_call($p, 'Stream', { text => 'late', mode => 'fail-late', count => 2 });
is($r->{code}, 13, 'INTERNAL in trailers after messages reaches the client') or diag explain $r;
is(scalar @{ $r->{messages} }, 2, '... after both messages');
is($wm->stat('cluster.grpc.upstream_rq_retry'), 2, '... and is not retried (Envoy: grpc-status in headers only)');

# --- deadlines
$r = grpc_call($pshort, 'Unary', { text => 'slow1', delay_ms => 3000 }, 5000);
is($r->{code}, 4, 'route timeout 400ms < client deadline 5s: DEADLINE_EXCEEDED') or diag explain $r;
is($r->{details}, 'upstream request timeout', '... from wingman (grpc-message)');
cmp_ok($r->{ms}, '<', scale(2500), '... well before the server answers');
# The client's own timer races wingman's here (both ~400ms): either ends the call.
$r = grpc_call($p, 'Unary', { text => 'slow2', delay_ms => 3000 }, 400);
is($r->{code}, 4, 'client deadline 400ms (grpc-timeout) < route timeout 10s: DEADLINE_EXCEEDED') or diag explain $r;
cmp_ok($r->{ms}, '<', scale(2500), '... in time');

# grpc-timeout from a client without a deadline of its own (nghttp) to a
# backend that never answers, so only wingman can end the call. The body is a
# gRPC frame with Req{text: "c", delay_ms: 3000}.
# (nghttp rather than curl: curl 7.88 can miss a response that ends before its
# upload does, which is what a trailers-only local reply does.) Returns the
# response as "HTTP/2 <status>\r\n" and "name: value\r\n" lines, then
# "DATA\r\n" per DATA frame, and the seconds it took.
my $msg = "\x0a\x01c\x10\xb8\x17";
spew("$dir/req.bin", pack('CN', 0, length $msg) . $msg);
sub grpc_curl {
	my ($port, $path, @h) = @_;
	my $t0 = time;
	my @cmd = ('nghttp', '-v', '-t', scale(20), '-H', 'content-type: application/grpc', '-H', 'te: trailers',
		(map { ('-H', $_) } @h), '-d', "$dir/req.bin", "http://127.0.0.1:$port$path");
	my $pid = open(my $fh, '-|') // die "fork: $!";
	if ($pid == 0) {
		open(STDERR, '>&', \*STDOUT);
		exec(@cmd) or POSIX::_exit(127);
	}
	my $out = '';
	while (my $l = <$fh>) {
		if ($l =~ /recv \(stream_id=\d+\) :status: (\d+)/) {
			$out .= "HTTP/2 $1\r\n";
		} elsif ($l =~ /recv \(stream_id=\d+\) ([^:\s][^:]*): (.*)$/) {
			$out .= "$1: $2\r\n";
		} elsif ($l =~ /recv DATA frame/) {
			$out .= "DATA\r\n";
		}
	}
	close($fh);
	return ($out, time - $t0);
}
my ($out, $took) = grpc_curl($p, '/wingman.test.Echo/Unary', 'grpc-timeout: 300m', 'x-case: hang');
like($out, qr{^HTTP/2 200\r\n}, 'grpc-timeout 300m: HTTP 200 (trailers-only gRPC error)') or diag $out;
like($out, qr{\r\ncontent-type: application/grpc\r\n}, '... content-type application/grpc') or diag $out;
like($out, qr{\r\ngrpc-status: 4\r\n}, '... grpc-status 4 DEADLINE_EXCEEDED');
like($out, qr{\r\ngrpc-message: upstream request timeout\r\n}, '... grpc-message upstream request timeout') or diag $out;
unlike($out, qr{DATA}, '... and no body');
cmp_ok($took, '<', scale(2), sprintf('... after ~300ms (took %.2fs)', $took));
cmp_ok($took, '>=', 0.25, '... not before');
like($wm->log_line(qr{^/wingman.test.Echo/Unary hang 200 UT upstream_response_timeout}), qr/UT/,
	'access log: 200 UT upstream_response_timeout');
($out, $took) = grpc_curl($p, '/wingman.test.Echo/Unary', 'grpc-timeout: 20S', 'x-case: shorthang');
like($out, qr{\r\ngrpc-status: 4\r\n}, 'route timeout 300ms < grpc-timeout 20S: the route timeout fires');
cmp_ok($took, '<', scale(2), '... after ~300ms');

# --- local replies become trailers-only gRPC responses
($out) = grpc_curl($p, '/nowhere/Method');
like($out, qr{^HTTP/2 200\r\n}, 'no route: HTTP 200') or diag $out;
like($out, qr{\r\ngrpc-status: 12\r\n}, '... grpc-status 12 UNIMPLEMENTED (404)');
($out) = grpc_curl($p, '/wingman.test.Echo/Unary', 'x-case: dead');
like($out, qr{\r\ngrpc-status: 14\r\n}, 'connection failure: grpc-status 14 UNAVAILABLE (503)') or diag $out;
like($out, qr{\r\ngrpc-message: upstream connect error or disconnect/reset before headers\. reset reason: connection failure},
	'... grpc-message = the local reply body');
like($wm->log_line(qr{ dead 200 UF }), qr/UF/, 'access log: 200 UF');
($out) = grpc_curl($p, '/wingman.test.Echo/Unary', 'x-case: abort403');
like($out, qr{\r\ngrpc-status: 7\r\n}, 'fault abort status 403: grpc-status 7 PERMISSION_DENIED') or diag $out;
like($out, qr{\r\ngrpc-message: fault filter abort\r\n}, '... grpc-message fault filter abort');
($out) = curl('-i', "http://127.0.0.1:$p/wingman.test.Echo/Unary", '-H', 'x-case: abort403');
like($out, qr{^HTTP/1.1 403 .*fault filter abort$}s, 'the same abort for a non-gRPC request: plain 403');
($out) = curl('-i', '-H', 'content-type: application/grpc', "http://127.0.0.1:$p/nowhere");
like($out, qr{^HTTP/1.1 200 .*\r\ngrpc-status: 12\r\n.*\r\ncontent-length: 0\r\n}s,
	'an HTTP/1.1 gRPC request gets it too (content-length 0)') or diag $out;

# fault abort with grpc_status, seen by a real client
$r = grpc_call($pfault, 'Unary', { text => 'f' });
is($r->{code}, 14, 'fault abort grpc_status UNAVAILABLE: the client sees UNAVAILABLE') or diag explain $r;
is($r->{details}, 'fault filter abort', '... with details fault filter abort');
($out) = curl('-i', "http://127.0.0.1:$pfault/x");
like($out, qr{^HTTP/1.1 200 .*fault filter abort$}s, '... a non-gRPC request gets HTTP 200 fault filter abort');

# --- outlier detection: trailers-only UNAVAILABLE counts as 503
for (1 .. 2) {
	$r = grpc_call($pod, 'Unary', { text => "od$_", mode => 'unavailable' });
	is($r->{code}, 14, "UNAVAILABLE $_ from the server");
}
is($wm->stat('cluster.grpc_od.outlier_detection.ejections_enforced_consecutive_5xx'), 1,
	'two trailers-only UNAVAILABLE (grpc 14 -> 503) eject the host');
$r = grpc_call($pod, 'Unary', { text => 'od3' });
is($r->{code}, 14, 'then: no healthy upstream -> UNAVAILABLE') or diag explain $r;
is($r->{details}, 'no healthy upstream', '... grpc-message no healthy upstream');

# --- stats per grpc-status
my $st = $wm->stats;
cmp_ok($st->{'cluster.grpc.grpc.0'} // 0, '>=', 3, 'cluster.grpc.grpc.0 counts OK responses');
is($st->{'cluster.grpc.grpc.13'}, 1, 'cluster.grpc.grpc.13: INTERNAL from real trailers');
cmp_ok($st->{'cluster.grpc.grpc.4'} // 0, '>=', 1, 'cluster.grpc.grpc.4: the route timeout');
is($st->{'cluster.hang.grpc.4'}, 2, 'cluster.hang.grpc.4: both deadlines wingman ended');
is($st->{'cluster.grpc_od.grpc.14'}, 3, 'cluster.grpc_od.grpc.14: trailers-only and local UNAVAILABLE');
is($st->{'cluster.grpc.grpc.total'}, ($st->{'cluster.grpc.grpc.success'} // 0) + ($st->{'cluster.grpc.grpc.failure'} // 0),
	'grpc.total = grpc.success + grpc.failure');
is($st->{'cluster.grpc.grpc.success'}, $st->{'cluster.grpc.grpc.0'}, 'grpc.success = grpc.0');
ok(!exists $st->{'cluster.grpc.grpc.2'}, 'codes never seen are not listed');
my $prom = $wm->admin('/stats/prometheus');
like($prom, qr/^envoy_cluster_grpc_14\{cluster_name="grpc_od"\} 3$/m, 'Prometheus: envoy_cluster_grpc_14');

# --- config validation
for my $bad (['{ grpc_status: 17 }', qr/16/], ['{ grpc_status: NOPE }', qr/gRPC status code 0-16 or its name/],
	     ['{ grpc_status: 14, status: 503 }', qr/not both/]) {
	my $conf = "listeners: [ { name: l, address: 127.0.0.1:1, routes: [ { match: { prefix: / }, route: { cluster: c },"
		. " fault: { abort: $bad->[0] } } ] } ]\nclusters: [ { name: c, endpoints: [127.0.0.1:1] } ]\n";
	my ($rc, $err) = wingman_check($conf);
	isnt($rc, 0, "abort $bad->[0] rejected");
	like($err, $bad->[1], '... with a clear message');
	like($err, qr/:\d+:\d+: /, '... at FILE:LINE:COL');
}

done_testing();
