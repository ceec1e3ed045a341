# Fault injection per route: delays that do not block the worker, aborts that
# never reach the upstream, independent percentages within statistical bounds,
# flags DI/FI, stats, and config errors.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Socket qw(SOL_SOCKET SO_LINGER);
use Wingman;

my $be = start_backend(mode => 'echo');
my $bport = $be->port;
my $log = tmpdir() . '/fault-access.log';
my $wm = start_web(<<"EOF", access_log => $log, log_format => '%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS%\n');
    routes:
      - { match: { prefix: /abort }, route: { cluster: aborted }, fault: { abort: { status: 503, percentage: 100 } } }
      - { match: { prefix: /delay }, route: { cluster: be }, fault: { delay: { fixed: 1s, percentage: 100.0 } } }
      - match: { prefix: /both }
        route: { cluster: be }
        fault: { delay: { fixed: 200ms, percentage: 100 }, abort: { status: 418, percentage: 100 } }
      - match: { prefix: /pct }
        route: { cluster: be }
        fault: { delay: { fixed: 1ms, percentage: 20 }, abort: { status: 500, percentage: 30 } }
      - { match: { prefix: /none }, route: { cluster: be }, fault: { delay: { fixed: 5s }, abort: { status: 500 } } }
      - { match: { prefix: / }, route: { cluster: be } }
clusters:
  - { name: be, endpoints: [127.0.0.1:$bport] }
  - { name: aborted, endpoints: [127.0.0.1:$bport] }
EOF
my $port = $wm->port;

sub log_lines { grep { length } split /\n/, slurp($log) }
sub log_for {
	my ($path) = @_;
	wait_for(sub { scalar grep { /^\Q$path\E / } log_lines() }, scale(3));
	my ($l) = grep { /^\Q$path\E / } log_lines();
	return $l // '';
}

# Abort: the status and Envoy's body, FI, and the upstream never sees it.
my $r = http_get($port, '/abort/x');
is($r->{status}, 503, 'abort: configured status');
is($r->{body}, 'fault filter abort', 'abort: Envoy body');
like(log_for('/abort/x'), qr{^/abort/x 503 FI fault_filter_abort$}, 'abort: FI flag and details in the access log');
is($wm->stat('cluster.aborted.upstream_rq_total'), 0, 'abort: never reached the upstream');
is($wm->stat('http.web.fault.aborts_injected'), 1, 'abort: aborts_injected counted');

# Delay: the request waits 1 s while other requests on the same worker flow.
my $slow = connect_port($port);
my $t0 = time;
send_bytes($slow, "GET /delay/x HTTP/1.1\r\nHost: a\r\n\r\n");
sleep 0.1;
my @fast;
for (1 .. 5) {
	my $t = time;
	my $f = http_get($port, '/fast');
	push @fast, [$f->{status}, time - $t];
}
is_deeply([map { $_->[0] } @fast], [(200) x 5], 'delay: other requests answered during the delay');
my $maxfast = (sort { $b <=> $a } map { $_->[1] } @fast)[0];
cmp_ok($maxfast, '<', 0.5, 'delay: other requests are not held behind it');
my $d = read_response($slow, timeout => scale(5));
my $took = time - $t0;
is($d && $d->{status}, 200, 'delay: the delayed request then goes upstream');
cmp_ok($took, '>=', 0.95, 'delay: held about 1 s');
cmp_ok($took, '<', 1 + scale(1), 'delay: not much longer');
like(log_for('/delay/x'), qr{^/delay/x 200 DI via_upstream$}, 'delay: DI flag in the access log');
close($slow);

# Delay then abort.
$t0 = time;
$r = http_get($port, '/both');
is($r->{status}, 418, 'delay+abort: aborted after the delay');
cmp_ok(time - $t0, '>=', 0.19, 'delay+abort: the delay came first');
like(log_for('/both'), qr{^/both 418 DI,FI fault_filter_abort$}, 'delay+abort: both flags');

# Percentage unset = 0: never injected.
$r = http_get($port, '/none');
is($r->{status}, 200, 'unset percentages inject nothing');

# A client that resets mid-delay (a FIN alone is a half-close, which still gets
# its answer): the stream and its timer go at once, nothing fires later.
my $gone = connect_port($port);
send_bytes($gone, "GET /delay/gone HTTP/1.1\r\nHost: a\r\n\r\n");
sleep 0.2;
setsockopt($gone, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
close($gone);
ok(wait_for(sub { $wm->stat('http.web.downstream_rq_active') == 0 }, 0.5),
	'client gone mid-delay: stream released before the delay ends');
sleep 1.0;
ok($wm->alive, 'wingman survives past the timer of a finished stream');
like(log_for('/delay/gone'), qr{^/delay/gone 0 (?:DC,DI|DI,DC) downstream_remote_disconnect$}, "client gone mid-delay: logged DI and DC");

# 1000 requests: independent shares within 5 standard deviations.
my $n = 1000;
my $before_d = $wm->stat('http.web.fault.delays_injected');
my $before_a = $wm->stat('http.web.fault.aborts_injected');
my $c = connect_port($port);
my ($aborted, $other) = (0, 0);
for my $i (1 .. $n) {
	send_bytes($c, "GET /pct/$i HTTP/1.1\r\nHost: a\r\n\r\n");
	my $x = read_response($c);
	last unless $x;
	if ($x->{status} == 500 && $x->{body} eq 'fault filter abort') {
		$aborted++;
	} elsif ($x->{status} == 200) {
		$other++;
	}
}
close($c);
is($aborted + $other, $n, "$n requests answered");
my $delays = $wm->stat('http.web.fault.delays_injected') - $before_d;
my $aborts = $wm->stat('http.web.fault.aborts_injected') - $before_a;
is($aborts, $aborted, 'aborts_injected matches the aborted responses');
cmp_ok(abs($aborted - 300), '<', 5 * sqrt($n * 0.3 * 0.7), "abort share ($aborted/1000) near 30%");
cmp_ok(abs($delays - 200), '<', 5 * sqrt($n * 0.2 * 0.8), "delay share ($delays/1000) near 20%");
wait_for(sub { (grep { m{^/pct/} } log_lines()) >= $n }, scale(3));
my $both = grep { m{^/pct/\d+ 500 DI,FI } } log_lines();
# Independence: P(delay and abort) = 0.06.
cmp_ok(abs($both - 60), '<', 5 * sqrt($n * 0.06 * 0.94), "delay and abort independent ($both both)");

# Config errors, located and explained.
my $bin = wingman_bin();
sub check_conf {
	my ($fault) = @_;
	my $f = tmpdir() . '/bad-fault.yaml';
	spew($f, <<"EOF");
listeners:
  - name: l
    address: 127.0.0.1:1
    routes:
      - match: { prefix: / }
        route: { cluster: c }
        fault: $fault
clusters: [ { name: c, endpoints: [127.0.0.1:2] } ]
EOF
	return scalar `$bin -t -c $f 2>&1`;
}
unlike(check_conf('{ abort: { grpc_status: 14, percentage: 10 } }'), qr/error|:7:\d+: /,
	'grpc_status is accepted (served by t/403-grpc.t)');
like(check_conf('{ abort: { grpc_status: 20 } }'), qr/bad-fault\.yaml:7:\d+: /, 'grpc_status out of range');
like(check_conf('{ abort: { percentage: 10 } }'), qr/:7:\d+: fault\.abort needs "status"/, 'abort without status');
like(check_conf('{ abort: { status: 99 } }'), qr/:7:\d+: /, 'abort status out of range');
like(check_conf('{ delay: { percentage: 10 } }'), qr/fault\.delay needs "fixed"/, 'delay without fixed');
like(check_conf('{ delay: { fixed: 1s, percentage: 101 } }'), qr/:7:\d+: /, 'percentage above 100');
like(check_conf('{ delay: { fixed: soon } }'), qr/:7:\d+: /, 'bad duration');
like(check_conf('{ bogus: 1 }'), qr/:7:\d+: .*bogus/, 'unknown key');

done_testing;
