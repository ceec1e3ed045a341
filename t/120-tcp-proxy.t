# TCP proxy listeners (Envoy's tcp_proxy, issue 16): protocol: tcp with a
# cluster or weighted_clusters in front of server-first, MySQL-like backends
# (a greeting line, then an echo): bytes both ways (5 MB), half-close, the
# weighted spread, the circuit breaker (max_connections: 1 refuses the second
# client, UO, upstream_cx_overflow), a dead first host retried on the live one
# (max_connect_attempts: 2), UF then UH once outlier detection ejected the only
# host, the idle timeout, the tcp.<stat_prefix>.* stats and the access-log line
# per connection; then -t errors for bad tcp listeners.
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use Test::More;
use Wingman;

my $dir = tmpdir();
my ($pa, $pb, $dead, $echo, $split, $cb, $retry, $deadl, $idle, $admin) = map { free_port() } 1 .. 10;
my $log = "$dir/access.log";

start_tcp_echo($pa, 'A');
start_tcp_echo($pb, 'B');

my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$admin }
access_log: { path: $log, format: "%UPSTREAM_CLUSTER% %RESPONSE_FLAGS% %UPSTREAM_HOST% rx=%BYTES_RECEIVED% tx=%BYTES_SENT% d=%DURATION% from=%DOWNSTREAM_REMOTE_ADDRESS% to=%DOWNSTREAM_LOCAL_ADDRESS% %REQ(:METHOD)% %PROTOCOL% %RESPONSE_CODE%\\n" }
listeners:
  - name: echo
    address: 127.0.0.1:$echo
    protocol: tcp
    tcp_proxy: { cluster: a }
  - name: split
    address: 127.0.0.1:$split
    protocol: tcp
    tcp_proxy:
      stat_prefix: weighted
      weighted_clusters: { clusters: [{ name: a, weight: 1 }, { name: b, weight: 1 }] }
  - name: cb
    address: 127.0.0.1:$cb
    protocol: tcp
    tcp_proxy: { cluster: one }
  - name: retry
    address: 127.0.0.1:$retry
    protocol: tcp
    tcp_proxy: { cluster: halfdead, max_connect_attempts: 2 }
  - name: dead
    address: 127.0.0.1:$deadl
    protocol: tcp
    direction: outbound
    tcp_proxy: { cluster: dead, max_connect_attempts: 2 }
  - name: idle
    address: 127.0.0.1:$idle
    protocol: tcp
    tcp_proxy: { cluster: a, idle_timeout: 1s }
clusters:
  - { name: a, endpoints: [127.0.0.1:$pa] }
  - { name: b, endpoints: [127.0.0.1:$pb] }
  - { name: one, endpoints: [127.0.0.1:$pa], connection_pool: { max_connections: 1 } }
  - { name: halfdead, connect_timeout: 1s, endpoints: [127.0.0.1:$dead, 127.0.0.1:$pb] }
  - name: dead
    endpoints: [127.0.0.1:$dead]
    outlier_detection: { consecutive_5xx: 2, max_ejection_percent: 100, base_ejection_time: 60s }
EOF

sub conn { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $_[0], Timeout => 5) or die "connect $_[0]: $!" }

# Reads one line (the greeting) within $t seconds; '' on EOF or timeout.
sub greeting {
	my ($s, $t) = @_;
	my ($buf, $sel) = ('', IO::Select->new($s));
	while ($buf !~ /\n/) {
		last unless $sel->can_read($t // scale(5));
		my $n = sysread($s, $buf, 1, length $buf);
		last unless $n;
	}
	return $buf;
}

# Sends $data and a FIN while reading; returns everything read up to EOF.
sub exchange {
	my ($s, $data) = @_;
	my ($in, $off) = ('', 0);
	$s->blocking(0);
	my $sel = IO::Select->new($s);
	my $end = time + scale(30);
	my $shut = 0;
	while (time < $end) {
		my ($r, $w) = IO::Select->select($sel, $shut ? undef : $sel, undef, 1);
		if ($w && @$w) {
			my $n = syswrite($s, $data, 65536, $off);
			$off += $n if $n;
			if ($off >= length $data) { shutdown($s, 1); $shut = 1 }
		}
		if ($r && @$r) {
			my $n = sysread($s, $in, 65536, length $in);
			last if defined $n && $n == 0;
		}
	}
	return $in;
}

# ---- bytes both ways, 5 MB, half-close: the echo only closes after our FIN
my $s = conn($echo);
is(greeting($s), "A\n", 'echo: the server-first greeting comes through');
my $big = join('', map { chr(48 + $_ % 64) } 0 .. 5 * 1024 * 1024 - 1);
my $back = exchange($s, $big);
is(length $back, length $big, 'echo: 5 MB back after our FIN (half-close both ways)');
ok($back eq $big, 'echo: intact');
close $s;
my $line = $wm->log_line(qr/^a - .* rx=5242880 /);
like($line, qr/^a - 127\.0\.0\.1:$pa rx=5242880 tx=5242882 d=\d+ from=127\.0\.0\.1:\d+ to=127\.0\.0\.1:$echo - - 0$/,
	'log: cluster, no flags, host, bytes both ways, addresses; HTTP operators print -') or diag($line);

# ---- weighted_clusters spreads connections
my %seen;
for (1 .. 40) {
	my $c = conn($split);
	$seen{greeting($c)}++;
	close $c;
}
ok(($seen{"A\n"} // 0) >= 5 && ($seen{"B\n"} // 0) >= 5, 'weighted: both clusters get connections')
	or diag(explain(\%seen));

# ---- circuit breaker: max_connections 1 refuses the second client
my $first = conn($cb);
is(greeting($first), "A\n", 'breaker: first client connected');
my $second = conn($cb);
is(greeting($second), '', 'breaker: second client refused (closed without a byte)');
close $second;
ok(wait_for(sub { $wm->stat('cluster.one.upstream_cx_overflow') >= 1 }, scale(5)),
	'breaker: cluster.one.upstream_cx_overflow counted');
like($wm->log_line(qr/^one UO /), qr/^one UO \S+ rx=0 tx=0 /, 'breaker: log line flagged UO');
close $first;

# ---- a dead host, then the live one: max_connect_attempts 2
my $ok = 0;
for (1 .. 4) {
	my $c = conn($retry);
	$ok++ if greeting($c) eq "B\n";
	close $c;
}
is($ok, 4, 'retry: every connection reaches the live host');
ok($wm->stat('cluster.halfdead.upstream_cx_connect_fail') >= 1, 'retry: connect failures counted')
	or diag($wm->stat('cluster.halfdead.upstream_cx_connect_fail'));

# ---- only a dead host: UF; outlier detection ejects it; then UH
for (1 .. 2) {
	my $c = conn($deadl);
	is(greeting($c), '', 'dead: client closed');
	close $c;
}
like($wm->log_line(qr/^dead UF /), qr/^dead UF 127\.0\.0\.1:$dead /, 'dead: log line flagged UF with the host tried');
like($wm->log_line(qr/^dead UH /), qr/^dead UH /, 'dead: once ejected, no healthy host: UH');
ok($wm->stat('cluster.dead.upstream_cx_connect_fail') >= 2, 'dead: both attempts counted as connect failures');
is($wm->stat('cluster.dead.outlier_detection.ejections_enforced_total'), 1,
	'dead: connect failures fed outlier detection (ejected once)');

# ---- idle timeout
my $t0 = time;
my $ic = conn($idle);
is(greeting($ic), "A\n", 'idle: connected');
my $eof = greeting($ic, scale(10));
is($eof, '', 'idle: closed by the proxy');
ok(time - $t0 < scale(8), 'idle: within the idle_timeout (1s) and a bit');
ok(wait_for(sub { $wm->stat('tcp.idle.idle_timeout') == 1 }, scale(5)), 'idle: tcp.idle.idle_timeout counted');

# ---- stats names
my $st = $wm->stats;
for my $n (qw(downstream_cx_total downstream_cx_no_route downstream_cx_tx_bytes_total downstream_cx_rx_bytes_total
	      downstream_flow_control_paused_reading_total downstream_flow_control_resumed_reading_total idle_timeout)) {
	ok(exists $st->{"tcp.echo.$n"}, "stats: tcp.echo.$n");
}
ok($st->{'tcp.echo.downstream_cx_rx_bytes_total'} >= 5242880, 'stats: rx bytes counted');
ok($st->{'tcp.echo.downstream_cx_tx_bytes_total'} >= 5242882, 'stats: tx bytes counted');
ok($st->{'tcp.weighted.downstream_cx_total'} >= 40, 'stats: stat_prefix names the block');
ok($st->{"listener.127.0.0.1_$echo.downstream_cx_total"} >= 1, 'stats: listener.<address>.downstream_cx_total');
ok(exists $st->{"listener.127.0.0.1_$echo.downstream_cx_active"}, 'stats: listener downstream_cx_active');
ok(!grep(/^http\.echo\./, keys %$st), 'stats: a tcp listener has no http.<name>.* stats');
ok($st->{'cluster.a.upstream_cx_rx_bytes_total'} >= 5242880 && $st->{'cluster.a.upstream_cx_tx_bytes_total'} >= 5242880,
	'stats: cluster byte counters');
ok(wait_for(sub { $wm->stat('cluster.a.upstream_cx_active') == 0 }, scale(5)), 'stats: cluster.a.upstream_cx_active back to 0');
my $tcpf = dump_resources(config_dump($wm->admin_port))->{listeners}{split}{filter_chains}[0]{filters}[0] // {};
is($tcpf->{name}, 'envoy.filters.network.tcp_proxy', 'config_dump: the listener\'s filter is a tcp_proxy');
is($tcpf->{typed_config}{'@type'}, 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
	'  typed as Envoy\'s TcpProxy');
is($tcpf->{typed_config}{stat_prefix}, 'weighted', '  stat_prefix');
is($tcpf->{typed_config}{weighted_clusters}{clusters}[0]{name}, 'a', '  weighted_clusters with Envoy\'s names');
my $prom = $wm->admin('/stats/prometheus');
like($prom, qr/^envoy_tcp_downstream_cx_total\{tcp_prefix="echo"\} \d+$/m, 'prometheus: envoy_tcp_* labelled tcp_prefix (Istio)');


# ---- -t refuses bad tcp listeners, at the offending line
my $head = "listeners:\n  - name: t\n    address: 127.0.0.1:15999\n    protocol: tcp\n";
my $cl = "clusters:\n  - { name: a, endpoints: [127.0.0.1:1] }\n";
my @cases = (
	['routes', $head . "    tcp_proxy: { cluster: a }\n    routes: [] #E\n" . $cl, qr/not for a protocol: tcp listener/],
	['unknown cluster', $head . "    tcp_proxy: { cluster: nope } #E\n" . $cl, qr/unknown cluster "nope"/],
	['both', $head . "    tcp_proxy: { cluster: a, weighted_clusters: { clusters: [{ name: a, weight: 1 }] } } #E\n" . $cl,
	 qr/exactly one of cluster, weighted_clusters/],
	['no tcp_proxy', $head . "    direction: inbound #E\n" . $cl, qr/tcp_proxy/, 4],
	['attempts', $head . "    tcp_proxy: { cluster: a, max_connect_attempts: 0 } #E\n" . $cl, qr/./],
	['weighted unknown', $head . "    tcp_proxy: { weighted_clusters: { clusters: [{ name: x, weight: 1 }] } } #E\n" . $cl,
	 qr/unknown cluster "x"/],
	['http listener', "listeners:\n  - name: h\n    address: 127.0.0.1:15999\n    tcp_proxy: { cluster: a } #E\n"
	 . "    routes: [{ match: { prefix: / }, route: { cluster: a } }]\n" . $cl, qr/needs protocol: tcp/],
);
for my $c (@cases) {
	my ($name, $yaml, $re, $before) = @$c;
	my @lines = split /\n/, $yaml;
	my ($l) = grep { $lines[$_ - 1] =~ /#E$/ } 1 .. @lines;
	$l = '(?:' . join('|', $l - ($before // 0) .. $l) . ')';
	(my $fname = $name) =~ s/\W+/-/g;
	my ($rc, $out, $f) = wingman_check($yaml, "tcp-$fname");
	is($rc, 1, "-t $name: exits 1");
	like($out, qr/^\Q$f\E:$l:\d+: .*$re/m, "-t $name: located error") or diag($out);
}
my ($rc, $out) = wingman_check("listeners:\n  - name: t\n    address: 127.0.0.1:15999\n    protocol: tcp\n"
	. "    tcp_proxy: { stat_prefix: mysql, idle_timeout: 10m, max_connect_attempts: 3, "
	. "weighted_clusters: { clusters: [{ name: a, weight: 9 }, { name: b, weight: 1 }] } }\n"
	. "clusters:\n  - { name: a, endpoints: [127.0.0.1:1] }\n  - { name: b, endpoints: [127.0.0.1:2] }\n", 'tcp-good');
is($rc, 0, '-t accepts a full tcp listener') or diag($out);

done_testing;
