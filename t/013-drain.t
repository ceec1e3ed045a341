# Draining: SIGTERM with a slow request in flight lets it finish (200, with
# Connection: close), /ready says 503 DRAINING meanwhile, new connections are
# refused, and wingman exits 0. drain_timeout cuts a request that is too slow.
# POST /quitquitquit drains the same way.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use Wingman;

my $slow = start_backend(mode => 'slow', delay => 2);
my $slower = start_backend(mode => 'slow', delay => 8);
my ($sp, $sp2) = ($slow->port, $slower->port);

sub start {
	my ($drain) = @_;
	my $wm = start_web(<<"EOF", workers => 2, top => "drain_timeout: $drain\n");
    routes:
      - { name: slower, match: { prefix: /slower }, route: { cluster: slower } }
      - { name: slow, match: { prefix: / }, route: { cluster: slow } }
clusters:
  - { name: slow, endpoints: [127.0.0.1:$sp] }
  - { name: slower, endpoints: [127.0.0.1:$sp2] }
EOF
	return ($wm, $wm->port, $wm->admin_port);
}

# Checks the drain state while a slow request is in flight.
sub check_draining {
	my ($wm, $port, $admin, $what) = @_;
	my ($code, $body);
	ok(wait_for(sub { ($code, $body) = eval { admin_get($admin, '/ready') }; ($code // 0) == 503 }, scale(2)),
		"$what: /ready is 503 while draining");
	like($body // '', qr/^DRAINING\s*$/, "$what: /ready says DRAINING");
	ok(wait_for(sub { !port_open($port) }, scale(2)), "$what: new connections are refused");
}

# ---- SIGTERM with a request in flight
my ($wm, $port, $admin) = start('10s');
my $s = connect_port($port);
send_bytes($s, "GET /inflight HTTP/1.1\r\nHost: x\r\n\r\n");
sleep 0.3;
my $t0 = time;
ok($wm->signal('TERM'), 'SIGTERM sent');
check_draining($wm, $port, $admin, 'SIGTERM');
my $r = read_response($s, timeout => scale(10));
is($r && $r->{status}, 200, 'in-flight request completes with 200');
is($r && $r->{body}, "slow\n", 'with the whole body');
like($r ? $r->{headers}{connection} // '' : '', qr/close/i, 'and Connection: close');
close $s;
my $st = $wm->wait_exit(scale(10));
ok(defined $st, 'wingman exits after the in-flight request');
is(defined $st ? $st >> 8 : -1, 0, 'exit code 0');
is(defined $st ? $st & 127 : -1, 0, 'not killed by a signal');
ok(time - $t0 < 8, 'exits well before drain_timeout');

# ---- SIGTERM with nothing in flight exits promptly
($wm, $port, $admin) = start('10s');
$t0 = time;
$st = $wm->term(scale(5));
ok(defined $st && time - $t0 < scale(3), 'idle: SIGTERM exits promptly');
is(defined $st ? $st >> 8 : -1, 0, 'idle: exit code 0');

# ---- SIGINT drains too
($wm, $port, $admin) = start('10s');
$st = $wm->signal('INT') && $wm->wait_exit(scale(5));
is(defined $st ? $st >> 8 : -1, 0, 'SIGINT: exit code 0');

# ---- drain_timeout cuts a request that is too slow
($wm, $port, $admin) = start('1s');
$s = connect_port($port);
send_bytes($s, "GET /slower HTTP/1.1\r\nHost: x\r\n\r\n");
sleep 0.3;
$t0 = time;
$wm->signal('TERM');
$st = $wm->wait_exit(scale(6));
my $took = time - $t0;
ok(defined $st, 'drain_timeout: wingman exits');
ok($took < 6, sprintf('drain_timeout: exit after %.1fs, before the 8s backend answers', $took));
ok($took >= 0.8, 'drain_timeout: not before drain_timeout');
is(defined $st ? $st >> 8 : -1, 0, 'drain_timeout: exit code 0');
my ($resp, $state) = read_response($s, timeout => scale(3));
ok(!$resp || $resp->{status} != 200, 'the too-slow request did not get a 200');
ok($state != 0 || $resp, 'its connection was closed');
close $s;

# ---- POST /quitquitquit
($wm, $port, $admin) = start('10s');
$s = connect_port($port);
send_bytes($s, "GET /inflight HTTP/1.1\r\nHost: x\r\n\r\n");
sleep 0.3;
my ($code) = admin_get($admin, '/quitquitquit', method => 'POST');
is($code, 200, 'POST /quitquitquit is 200');
check_draining($wm, $port, $admin, 'quitquitquit');
$r = read_response($s, timeout => scale(10));
is($r && $r->{status}, 200, 'quitquitquit: in-flight request completes');
close $s;
$st = $wm->wait_exit(scale(10));
is(defined $st ? $st >> 8 : -1, 0, 'quitquitquit: exit code 0');

done_testing;
