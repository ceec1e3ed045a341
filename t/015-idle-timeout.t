# Listener idle_timeout (Envoy's connection idle timeout): a connection with no
# request in flight and nothing from the client for that long is closed, for
# HTTP/1.1 and HTTP/2; a request in flight keeps its connection however long it
# takes; http.<listener>.downstream_cx_idle_timeout counts the closes.
use strict;
use warnings;
use Test::More;
use IO::Select;
use Time::HiRes qw(time sleep);
use Wingman;

my $be = start_backend(mode => 'echo');
my $slow = start_backend(mode => 'slow', delay => 1);
my ($bport, $sport) = ($be->port, $slow->port);
my $wm = start_web(<<"EOF");
    idle_timeout: 400ms
    routes:
      - { match: { prefix: /slow }, route: { cluster: slow } }
      - { match: { prefix: / }, route: { cluster: be } }
clusters:
  - { name: be, endpoints: [127.0.0.1:$bport] }
  - { name: slow, endpoints: [127.0.0.1:$sport] }
EOF
my $port = $wm->port;
my $admin = $wm->admin_port;

# Seconds until the server closes $s (reads and drops what comes), or undef.
sub closed_after {
	my ($s, $max) = @_;
	my $t0 = time;
	my $sel = IO::Select->new($s);
	while (time - $t0 < $max) {
		next unless $sel->can_read(0.05);
		my $n = sysread($s, my $buf, 65536);
		return time - $t0 if !$n;
	}
	return undef;
}

# A connection that never sends anything.
my $s = connect_port($port);
my $t = closed_after($s, scale(3));
ok(defined $t && $t >= 0.3, sprintf('a silent connection is closed after the idle timeout (%.2fs)', $t // -1));

# A keep-alive connection after its answer.
$s = connect_port($port);
send_bytes($s, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
my ($r) = read_response($s);
is($r && $r->{status}, 200, 'keep-alive request answered');
$t = closed_after($s, scale(3));
ok(defined $t && $t >= 0.3, sprintf('then closed after being idle (%.2fs)', $t // -1));

# Activity postpones it: a request every 100 ms keeps the connection for 1.6 s,
# four idle timeouts. Wingman's idle timer restarts when an answer is done, so
# the gap it sees is the pause plus this client's own time between reading an
# answer and sending the next request: 250 ms pauses left 150 ms for that, too
# little on a loaded machine (the connection went idle); 100 ms pauses leave
# 300 ms. The widest gap the client saw is reported.
$s = connect_port($port);
my ($ok, $gap, $t_ans) = (1, 0, undef);
my $t_start = time;
for (my $i = 1; $i <= 6 || time - $t_start < 1.6; $i++) {
	$gap = time - $t_ans if defined $t_ans && time - $t_ans > $gap;
	send_bytes($s, "GET /k$i HTTP/1.1\r\nHost: x\r\n\r\n");
	my ($x) = read_response($s);
	$t_ans = time;
	$ok &&= $x && $x->{status} == 200;
	last unless $ok;
	sleep 0.1;
}
ok($ok, sprintf('a connection in use every 100 ms outlives the 400 ms idle timeout (for %.2fs, widest client gap %.2fs)',
	time - $t_start, $gap));

# A request in flight for 1 s keeps its connection.
$s = connect_port($port);
send_bytes($s, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
($r) = read_response($s, timeout => scale(5));
is($r && $r->{status}, 200, 'a request slower than the idle timeout is answered');



# HTTP/2 (prior knowledge): an idle session gets GOAWAY and is closed too.
$s = connect_port($port);
send_bytes($s, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . pack('CnCCN', 0, 0, 4, 0, 0));	# preface + empty SETTINGS
my ($got, $goaway) = ('', 0);
my $t0 = time;
my $sel = IO::Select->new($s);
while (time - $t0 < scale(3)) {
	next unless $sel->can_read(0.05);
	last unless sysread($s, my $buf, 65536);
	$got .= $buf;
}
my $took = time - $t0;
for (my $o = 0; $o + 9 <= length $got;) {	# walk the frames for a GOAWAY (type 7)
	my ($hi, $lo, $type) = unpack('CnC', substr($got, $o, 4));
	$goaway ||= $type == 7;
	$o += 9 + ($hi << 16 | $lo);
}
ok($goaway, 'an idle HTTP/2 connection gets GOAWAY');
ok($took >= 0.3 && $took < scale(3), sprintf('and is closed after the idle timeout (%.2fs)', $took));

ok($wm->stat('http.web.downstream_cx_idle_timeout') >= 3, 'downstream_cx_idle_timeout counted');

# 0 disables it.
my $wm2 = start_web(<<"EOF");
    idle_timeout: 0s
    routes: [ { match: { prefix: / }, route: { cluster: be } } ]
clusters:
  - { name: be, endpoints: [127.0.0.1:$bport] }
EOF
$s = connect_port($wm2->port);
ok(!defined closed_after($s, 1.0), 'idle_timeout 0: a silent connection stays open');
my $hcm = dump_resources(config_dump($admin))->{listeners}{web}{filter_chains}[0]{filters}[0]{typed_config} // {};
is($hcm->{common_http_protocol_options}{idle_timeout}, '0.400s',
	'/config_dump shows idle_timeout where Envoy has it (common_http_protocol_options), as a Duration');
done_testing;
