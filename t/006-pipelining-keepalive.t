# Pipelined requests in one write are answered in order; downstream keep-alive
# works; upstream connections are reused (upstream_cx_total < requests).
use strict;
use warnings;
use Test::More;
use Wingman;

my $ng = start_nginx(q{
	location / { return 200 "u=$request_uri"; }
});
my $md5be = start_backend(mode => 'md5');
my ($np, $mp) = ($ng->port, $md5be->port);
my $wm = start_web(<<"EOF");
    routes:
      - { name: md5, match: { prefix: /md5 }, route: { cluster: md5 } }
      - { name: all, match: { prefix: / }, route: { cluster: nginx } }
clusters:
  - { name: nginx, endpoints: [127.0.0.1:$np] }
  - { name: md5, endpoints: [127.0.0.1:$mp] }
EOF
my $port = $wm->port;

# Ten pipelined GETs in one write.
my $s = connect_port($port);
send_bytes($s, join '', map { "GET /p$_ HTTP/1.1\r\nHost: x\r\n\r\n" } 1 .. 10);
my @got;
for (1 .. 10) {
	my $r = read_response($s) or last;
	push @got, $r->{body};
}
is_deeply(\@got, [map { "u=/p$_" } 1 .. 10], 'ten pipelined requests answered in order');

# Pipelined requests with bodies between GETs, across two clusters.
send_bytes($s, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
	. "POST /md5 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	. "GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
	. "POST /md5 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
	. "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
@got = ();
for (1 .. 5) {
	my $r = read_response($s) or last;
	push @got, $r->{body};
}
is(scalar(@got), 5, 'five pipelined responses');
is_deeply([@got[0, 1, 2, 4]], ['u=/a', md5_hex('hello') . " 5 0\n", 'u=/b', 'u=/c'],
	'pipelined mix answered in order') or diag(explain(\@got));
like($got[3] // '', qr/^\Q${\ md5_hex('abc')}\E 3 [01]\n$/, 'pipelined chunked body in place');
my ($none, $state) = read_response($s, timeout => scale(2));
is($state, 1, 'Connection: close on the last pipelined request closes the connection');
close $s;

# Pipelined requests written byte by byte in small pieces.
my $req = join '', map { "GET /q$_ HTTP/1.1\r\nHost: x\r\n\r\n" } 1 .. 3;
my $raw = http_raw($port, [map { substr($req, $_ * 7, 7) } 0 .. int(length($req) / 7)], pause => 0.01,
	responses => 3);
is_deeply([map { $_->{body} } parse_responses($raw)], ['u=/q1', 'u=/q2', 'u=/q3'],
	'requests split at odd boundaries are answered');

# Downstream keep-alive: many sequential requests on one connection.
$s = connect_port($port);
my $ok = 0;
for my $i (1 .. 50) {
	send_bytes($s, "GET /k$i HTTP/1.1\r\nHost: x\r\n\r\n");
	my $r = read_response($s) or last;
	$ok++ if $r->{body} eq "u=/k$i";
}
is($ok, 50, '50 sequential requests on one keep-alive connection');
close $s;

# Upstream reuse: 40 requests on separate downstream connections, one worker.
my $before = $wm->stat('cluster.nginx.upstream_cx_total');
my $rq_before = $wm->stat('cluster.nginx.upstream_rq_total');
for my $i (1 .. 40) {
	http_get($port, "/r$i");
}
my $cx = $wm->stat('cluster.nginx.upstream_cx_total') - $before;
my $rq = $wm->stat('cluster.nginx.upstream_rq_total') - $rq_before;
is($rq, 40, 'cluster.nginx.upstream_rq_total counts the 40 requests');
ok($cx < $rq, "upstream connections reused: upstream_cx_total +$cx for $rq requests");
ok($cx <= 2, "at most a couple of new upstream connections ($cx)");
ok($wm->stat('cluster.nginx.upstream_cx_active') >= 1, 'idle upstream connection kept open (upstream_cx_active)');

ok($wm->alive, 'wingman still running');
done_testing;
