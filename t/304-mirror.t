# Traffic mirroring per route: a fire-and-forget copy (headers and body) goes to
# the mirror cluster; the original never waits for it or fails with it, whether
# the mirror answers 500, hangs or refuses; percentage samples; host_suffix.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Digest::MD5 qw(md5_hex);
use Wingman;

my $main = start_backend(id => 'main', log => 1);
my $m500 = start_backend(id => 'm500', mode => '500');
my $mhang = start_backend(id => 'mhang', mode => 'delay:30:200');
my $dead = free_port();		# nothing listens here
my $msome = start_backend(id => 'msome', log => 1);
my $log = tmpdir() . '/mirror-access.log';
my ($mp, $m5, $mh, $ms) = ($main->port, $m500->port, $mhang->port, $msome->port);
my $wm = start_web(<<"EOF", access_log => $log, log_format => '%REQ(:PATH)% %RESPONSE_CODE% %UPSTREAM_CLUSTER%\n');
    routes:
      - { match: { prefix: /m500 }, route: { cluster: main }, mirror: { cluster: m500 } }
      - { match: { prefix: /mhang }, route: { cluster: main }, mirror: { cluster: mhang, host_suffix: true } }
      - { match: { prefix: /mdown }, route: { cluster: main }, mirror: { cluster: mdown, percentage: 100.0 } }
      - { match: { prefix: /half }, route: { cluster: main }, mirror: { cluster: msome, percentage: 50 } }
      - { match: { prefix: /never }, route: { cluster: main }, mirror: { cluster: msome, percentage: 0 } }
clusters:
  - { name: main, endpoints: [127.0.0.1:$mp] }
  - { name: m500, endpoints: [127.0.0.1:$m5] }
  - { name: mhang, endpoints: [127.0.0.1:$mh] }
  - { name: mdown, endpoints: [127.0.0.1:$dead] }
  - { name: msome, endpoints: [127.0.0.1:$ms] }
EOF
my $port = $wm->port;

# The mirror answers 500: the client gets the main answer; the mirror got the
# same request, body included.
my $body = join '', map { chr(97 + $_ % 26) } 1 .. 5000;
for my $i (1 .. 5) {
	my $r = http_request($port, 'POST', "/m500/$i", body => $body, headers => ['x-trace' => "t$i"]);
	is($r->{status}, 200, "mirror answers 500: main 200 ($i)");
}
ok(wait_for(sub { $m500->count == 5 }, scale(3)), 'the mirror saw all 5 requests');
my @seen = $m500->requests;
is(scalar(grep { $_->{body_md5} eq md5_hex($body) && $_->{body_length} == 5000 } @seen), 5,
	'every mirrored request carried the whole body');
is(join(',', sort map { $_->{headers}{'x-trace'} // '' } @seen), 't1,t2,t3,t4,t5', 'headers are copied');
is(join(',', sort map { $_->{path} } @seen), '/m500/1,/m500/2,/m500/3,/m500/4,/m500/5', 'paths are copied');
ok(wait_for(sub { $wm->stat('cluster.m500.upstream_rq_500') == 5 }, scale(3)), 'stats on the mirror cluster');

# An HTTP/2 client (h2c prior knowledge) is mirrored the same way, body included.
my $out = curl('--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_code} %{http_version}',
	'-H', 'x-trace: h2', '--data-binary', $body, "http://127.0.0.1:$port/m500/h2");
is($out, '200 2', 'HTTP/2 client: main 200 over h2');
ok(wait_for(sub { grep { ($_->{headers}{'x-trace'} // '') eq 'h2' } $m500->requests }, scale(3)),
	'HTTP/2 client: the mirror got the copy');
my ($h2copy) = grep { ($_->{headers}{'x-trace'} // '') eq 'h2' } $m500->requests;
is($h2copy && $h2copy->{body_md5}, md5_hex($body), 'HTTP/2 client: the copy carries the whole body');

# The mirror hangs: the main answer is not delayed; the copy's Host gets -shadow.
my $t0 = time;
for my $i (1 .. 3) {
	is(http_get($port, "/mhang/$i", host => 'was.example:8080')->{status}, 200,
		"mirror hangs: main 200 ($i)");
}
my $took = time - $t0;
ok($took < scale(2), sprintf('three requests took %.2fs despite a mirror that hangs 30s', $took));
ok(wait_for(sub { $mhang->count == 3 }, scale(3)), 'the hanging mirror received the copies');
is(($mhang->requests)[0]{headers}{host}, 'was.example-shadow:8080', 'host_suffix: Host gets -shadow before the port');
is(($main->requests)[-1]{headers}{host}, 'was.example:8080', 'the original keeps its Host');
ok($wm->stat('cluster.mhang.upstream_rq_active') >= 1, 'mirror requests still in flight');

# The mirror refuses connections: the main answer is unaffected.
for my $i (1 .. 3) {
	is(http_get($port, "/mdown/$i")->{status}, 200, "mirror refuses: main 200 ($i)");
}
ok(wait_for(sub { $wm->stat('cluster.mdown.upstream_cx_connect_fail') == 3 }, scale(3)),
	'the refused mirror connections are counted on the mirror cluster');

# Only the originals are in the access log.
wait_for(sub { (() = slurp($log) =~ /\n/g) >= 12 }, scale(3));
my @lines = grep { length } split /\n/, slurp($log);
is(scalar(@lines), 12, 'one access-log line per original request, none for copies');
ok(!grep({ !/ main$/ } @lines), 'every logged request went to the main cluster');

# percentage 50 samples roughly half; 0 never mirrors.
$msome->reset;
http_get($port, "/half/$_") for 1 .. 400;
my $n;
wait_for(sub { ($n = $msome->count) >= 140 }, scale(3));
# Let the copies still in flight land before counting from zero again.
my $prev = -1;
wait_for(sub { my $c = $msome->count; my $still = $c == $prev; $prev = $c; select(undef, undef, undef, 0.3); $still },
	scale(5));
$n = $prev;
ok($n >= 140 && $n <= 260, "percentage 50: $n of 400 mirrored (within 6 sigma of 200)");
$msome->reset;
http_get($port, "/never/$_") for 1 .. 50;
sleep(0.3);
is($msome->count, 0, 'percentage 0: nothing mirrored');

# An unknown mirror cluster is a config error with its position.
my ($code, $check_out) = wingman_check(<<"EOF");
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - { match: { prefix: / }, route: { cluster: main }, mirror: { cluster: nope } }
clusters:
  - { name: main, endpoints: [127.0.0.1:$mp] }
EOF
is($code, 1, 'unknown mirror cluster: -t fails');
like($check_out, qr/:5:\d+: mirror: unknown cluster "nope"/, 'the error names the line and the cluster');

# Draining does not wait for hanging mirror copies.
$wm->term;
is($wm->wait_exit(scale(4)), 0, 'drain exits 0 without waiting for the hanging mirror');

done_testing;
