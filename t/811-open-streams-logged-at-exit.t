# Regression: streams still open when wingman exits (a WebSocket tunnel over
# HTTP/1.1 or HTTP/2, a request to a backend that never answers, all past
# drain_timeout) were closed without their access log line: the workers
# handed their last log lines over before closing what was left. Each now
# gets its line, flagged DC, with the bytes it moved.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep);
use Wingman;

my $src = $ENV{WINGMAN_SRCDIR} // '.';
plan skip_all => 'python3-websockets missing (bootstrap installs it)'
	unless system('/usr/bin/python3 -c "import websockets" 2>/dev/null') == 0;

my $dir = tmpdir();
my ($wsp, $port) = map { free_port() } 1 .. 2;
my $log = "$dir/access.log";
Wingman::spawn(cmd => ["$src/t/ws/echo-server.py", $wsp, "$dir/hs.log"], stderr => "$dir/ws.err");
my $hang = start_backend(mode => 'hang');
wait_for(sub { port_open($wsp) }, scale(10)) or BAIL_OUT('echo server did not start');

my $wm = start_wingman(<<"EOF2");
workers: 1
drain_timeout: 1s
access_log: { path: $log, format: "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% rx=%BYTES_RECEIVED% tx=%BYTES_SENT%\\n" }
listeners:
  - name: plain
    address: 127.0.0.1:$port
    routes:
      - { match: { prefix: /hang }, route: { cluster: hang }, timeout: 0s }
      - { match: { prefix: / }, route: { cluster: ws } }
clusters:
  - { name: ws, endpoints: [127.0.0.1:$wsp] }
  - { name: hang, endpoints: [127.0.0.1:${\ $hang->port}] }
EOF2

my @clients = (
	Wingman::spawn(cmd => ["$src/t/ws/client.py", "ws://127.0.0.1:$port/h1", 'send:hello', 'idle:30'],
		stdout => "$dir/c1.out", name => 'ws-h1'),
	Wingman::spawn(cmd => ['node', "$src/t/ws/h2-client.js", "http://127.0.0.1:$port/h2", 'send:hi', 'idle:30'],
		stdout => "$dir/c2.out", name => 'ws-h2'),
	Wingman::spawn(cmd => ['curl', '-s', '--max-time', '30', "http://127.0.0.1:$port/hang"], name => 'curl-hang'),
);
ok(wait_for(sub { slurp("$dir/c1.out") =~ /^echo hello$/m && slurp("$dir/c2.out") =~ /^echo hi$/m }, scale(10)),
   'both tunnels open and echoing');
sleep 0.5;
my $st = $wm->term(scale(10));
ok(defined $st, 'wingman exits after drain_timeout with the streams still open');
my $lines = slurp($log);
like($lines, qr{^GET /h1 HTTP/1.1 101 DC rx=11 tx=7$}m, 'HTTP/1.1 tunnel logged at exit, with its bytes') or diag($lines);
like($lines, qr{^GET /h2 HTTP/2 200 DC rx=8 tx=4$}m, 'HTTP/2 tunnel logged at exit, with its bytes');
like($lines, qr{^GET /hang HTTP/1.1 0 DC }m, 'unanswered request logged at exit');
Wingman::stop_process($_) for @clients;

done_testing();
