# Traffic policy, load balancing (issue 3): ROUND_ROBIN order, per-endpoint
# weights, RANDOM, RING_HASH on a header / cookie / source IP and MAGLEV on a
# header (same key → same host, many keys → every host), and LEAST_REQUEST
# steering away from a slow host.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use Wingman;

my @b = map { start_backend(id => $_) } qw(a b c);
my ($pa, $pb, $pc) = map { $_->port } @b;
my $slow = start_backend(id => 'slow', mode => 'delay:0.3:echo');
my $fast = start_backend(id => 'fast');
my ($ps, $pf) = ($slow->port, $fast->port);
my $wm = start_web(<<"EOF");
    routes:
      - { match: { prefix: /rr/ }, route: { cluster: rr } }
      - { match: { prefix: /weighted }, route: { cluster: weighted } }
      - { match: { prefix: /random }, route: { cluster: random } }
      - { match: { prefix: /hdr }, route: { cluster: hdr } }
      - { match: { prefix: /maglev }, route: { cluster: maglev } }
      - { match: { prefix: /cookie }, route: { cluster: cookie } }
      - { match: { prefix: /srcip }, route: { cluster: srcip } }
      - { match: { prefix: /least/ }, route: { cluster: least } }
      - { match: { prefix: /leastw/ }, route: { cluster: leastw } }
      - { match: { prefix: /rrslow/ }, route: { cluster: rrslow } }
clusters:
  - { name: rr, lb: ROUND_ROBIN, endpoints: [127.0.0.1:$pa, 127.0.0.1:$pb, 127.0.0.1:$pc] }
  - name: weighted
    endpoints: [{ address: "127.0.0.1:$pa", weight: 3 }, "127.0.0.1:$pb"]
  - { name: random, lb: RANDOM, endpoints: [127.0.0.1:$pa, 127.0.0.1:$pb] }
  - name: hdr
    lb: { type: RING_HASH, hash_on: { header: x-user } }
    endpoints: [127.0.0.1:$pa, 127.0.0.1:$pb, 127.0.0.1:$pc]
  - name: maglev
    lb: { type: MAGLEV, hash_on: { header: x-user } }
    endpoints: [127.0.0.1:$pa, 127.0.0.1:$pb, 127.0.0.1:$pc]
  - name: cookie
    lb: { type: RING_HASH, hash_on: { cookie: sid } }
    endpoints: [127.0.0.1:$pa, 127.0.0.1:$pb, 127.0.0.1:$pc]
  - name: srcip
    lb: { type: RING_HASH, hash_on: { source_ip: true } }
    endpoints: [127.0.0.1:$pa, 127.0.0.1:$pb, 127.0.0.1:$pc]
  - { name: least, lb: LEAST_REQUEST, endpoints: [127.0.0.1:$ps, 127.0.0.1:$pf, 127.0.0.1:$pa, 127.0.0.1:$pb] }
  - name: leastw
    lb: { type: LEAST_REQUEST, active_request_bias: 1.0 }
    endpoints: [{ address: "127.0.0.1:$ps", weight: 3 }, 127.0.0.1:$pf, 127.0.0.1:$pa, 127.0.0.1:$pb]
  - { name: rrslow, lb: ROUND_ROBIN, endpoints: [127.0.0.1:$ps, 127.0.0.1:$pf, 127.0.0.1:$pa, 127.0.0.1:$pb] }
EOF
my $port = $wm->port;

# Sends $n requests on one keep-alive connection; returns the backend ids in order.
sub ids {
	my ($path, $n, @h) = @_;
	my $s = connect_port($port);
	my $hdr = '';
	while (my ($k, $v) = splice(@h, 0, 2)) {
		$hdr .= "$k: $v\r\n";
	}
	send_bytes($s, join '', map { "GET $path/$_ HTTP/1.1\r\nHost: x\r\n$hdr\r\n" } 1 .. $n);
	my @ids;
	for (1 .. $n) {
		my $r = read_response($s) or last;
		push @ids, $r->{headers}{'x-backend-id'} // '?';
	}
	close $s;
	return @ids;
}

sub tally {
	my %n;
	$n{$_}++ for @_;
	return \%n;
}

# ROUND_ROBIN: strict rotation (one worker).
my @ids = ids('/rr', 9);
is(scalar(@ids), 9, 'round robin: 9 answers');
my $first = join '', @ids[0 .. 2];
is(join('', sort split //, $first), 'abc', 'round robin: the first three hit three hosts');
is(join('', @ids), $first x 3, 'round robin: the same rotation repeats');

# Endpoint weight 3:1.
my $n = tally(ids('/weighted', 400));
is(($n->{a} // 0) + ($n->{b} // 0), 400, 'weighted endpoints: 400 answers');
ok(abs(($n->{a} // 0) - 300) <= 12, "weight 3 endpoint got ~75% ($n->{a})");

# RANDOM: both hosts used, roughly even, not a strict alternation.
@ids = ids('/random', 300);
$n = tally(@ids);
ok(($n->{a} // 0) >= 105 && ($n->{a} // 0) <= 195, "random: a got $n->{a}/300");
ok(($n->{b} // 0) >= 105, "random: b got $n->{b}/300");
my $repeats = grep { $ids[$_] eq $ids[$_ - 1] } 1 .. $#ids;
ok($repeats > 50, "random: not a rotation ($repeats repeats in a row)");

# RING_HASH on a header: one user sticks to one host.
for my $u (qw(alice bob carol)) {
	$n = tally(ids('/hdr', 20, 'x-user', $u));
	is(scalar(keys %$n), 1, "ring hash: x-user $u always hits the same host (" . join(',', keys %$n) . ')');
}
# ... and the same user from separate connections too.
my %hosts;
$hosts{ http_get($port, '/hdr/sep', headers => ['x-user', 'dave'])->{headers}{'x-backend-id'} // '?' }++ for 1 .. 5;
is(scalar(keys %hosts), 1, 'ring hash: same host across connections');
# Many users spread over every host.
my %by_host;
for my $i (1 .. 150) {
	my ($id) = ids('/hdr', 1, 'x-user', "user-$i");
	$by_host{$id // '?'}++;
}
is(join(',', sort keys %by_host), 'a,b,c', 'ring hash: 150 users use all three hosts');
ok(!grep({ $_ < 15 } values %by_host), 'ring hash: every host gets at least 10% of the users ('
	. join(' ', map { "$_=$by_host{$_}" } sort keys %by_host) . ')');
# A request without the header still gets an answer.
is(http_get($port, '/hdr/none')->{status}, 200, 'ring hash without the header still routes');

# MAGLEV (Envoy's table of 65537) on the same header: sticky, and spread.
for my $u (qw(alice bob carol)) {
	$n = tally(ids('/maglev', 20, 'x-user', $u));
	is(scalar(keys %$n), 1, "maglev: x-user $u always hits the same host (" . join(',', keys %$n) . ')');
}
%by_host = ();
$by_host{ (ids('/maglev', 1, 'x-user', "user-$_"))[0] // '?' }++ for 1 .. 150;
is(join(',', sort keys %by_host), 'a,b,c', 'maglev: 150 users use all three hosts');
ok(!grep({ $_ < 25 } values %by_host), 'maglev: every host gets at least a sixth of the users ('
	. join(' ', map { "$_=$by_host{$_}" } sort keys %by_host) . ')');
is(http_get($port, '/maglev/none')->{status}, 200, 'maglev without the header still routes');

# RING_HASH on a cookie.
for my $sid (qw(s1 s2 s3)) {
	$n = tally(ids('/cookie', 10, 'Cookie', "theme=dark; sid=$sid; lang=en"));
	is(scalar(keys %$n), 1, "ring hash on cookie sid=$sid sticks");
}
%by_host = ();
$by_host{ (ids('/cookie', 1, 'Cookie', "sid=k$_"))[0] // '?' }++ for 1 .. 60;
ok(keys(%by_host) >= 2, 'ring hash on cookie: many sessions use several hosts (' . join(',', sort keys %by_host) . ')');

# RING_HASH on the source IP: one client address sticks; many addresses spread.
%hosts = ();
$hosts{ $_->{headers}{'x-backend-id'} // '?' }++
	for http_parallel($port, [map { { path => '/srcip/1', local_addr => '127.0.0.7' } } 1 .. 10]);
is(scalar(keys %hosts), 1, 'ring hash on source IP: one address, one host');
%by_host = ();
$by_host{ $_->{headers}{'x-backend-id'} // '?' }++
	for http_parallel($port, [map { { path => '/srcip/2', local_addr => "127.0.1.$_" } } 1 .. 60]);
ok(keys(%by_host) >= 2 && !$by_host{'?'}, 'ring hash on source IP: 60 addresses use several hosts ('
	. join(' ', map { "$_=$by_host{$_}" } sort keys %by_host) . ')');

# LEAST_REQUEST (equal weights: the least busy of choice_count draws) versus
# ROUND_ROBIN over four hosts, one slow (300 ms), with 6
# clients in a closed loop: round robin gives the slow host its quarter of the
# requests; least request (two random choices, the less busy wins) only picks
# it when both choices land on it.
sub slow_share {
	my ($path) = @_;
	my @r = http_loop($port, clients => 6, duration => 2, path => $path);
	my $slow = grep { ($_->{headers}{'x-backend-id'} // '') eq 'slow' } @r;
	my $bad = grep { $_->{status} != 200 } @r;
	return (@r ? $slow / @r : 1, scalar(@r), $bad);
}
my ($lr, $lr_n, $lr_bad) = slow_share('/least/x');
my ($rr, $rr_n, $rr_bad) = slow_share('/rrslow/x');
diag(sprintf 'slow host share: least-request %.1f%% of %d, round-robin %.1f%% of %d', 100 * $lr, $lr_n, 100 * $rr, $rr_n);
ok(!$lr_bad && !$rr_bad, 'every request answered 200');
ok($rr >= 0.18, 'round robin: the slow host gets about a quarter');
ok($lr < 0.15, 'least request: the slow host gets under 15%');
ok($lr < 0.6 * $rr, 'least request sends the slow host far less than round robin');
ok($lr > 0, 'least request: the slow host is still used');
# Unequal weights (Envoy: EDF on weight / (active + 1)^bias): by weight alone
# the slow host would get half; its requests in flight cut its share.
my ($lw, $lw_n, $lw_bad) = slow_share('/leastw/x');
diag(sprintf 'slow host (weight 3 of 6) share, weighted least-request: %.1f%% of %d', 100 * $lw, $lw_n);
ok(!$lw_bad, 'weighted least request: every request answered 200');
ok($lw > 0 && $lw < 0.3, 'weighted least request: the heavy but slow host gets well under its half');

ok($wm->alive, 'wingman still running');
done_testing;
