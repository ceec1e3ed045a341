# Regression: the Upgrade header was stripped as hop-by-hop, so a WebSocket
# handshake reached the backend as a plain GET and failed. Now Connection:
# upgrade + Upgrade: websocket go through (websocket is enabled by default,
# as Istio configures Envoy), the 101 comes back and messages are echoed.
use strict;
use warnings;
use Test::More;
use Wingman;

my $src = $ENV{WINGMAN_SRCDIR} // '.';
plan skip_all => 'python3-websockets missing (bootstrap installs it)'
	unless system('/usr/bin/python3 -c "import websockets" 2>/dev/null') == 0;

my $dir = tmpdir();
my ($wsp, $port) = (free_port(), free_port());
Wingman::spawn(cmd => ["$src/t/ws/echo-server.py", $wsp, "$dir/hs.log"], stderr => "$dir/ws.err");
wait_for(sub { port_open($wsp) }, scale(10)) or BAIL_OUT('echo server did not start');
my $wm = start_wingman(<<"EOF2");
workers: 1
listeners:
  - name: l
    address: 127.0.0.1:$port
    routes: [{ match: { prefix: / }, route: { cluster: ws } }]
clusters:
  - { name: ws, endpoints: [127.0.0.1:$wsp] }
EOF2

my $out = `timeout 20 $src/t/ws/client.py ws://127.0.0.1:$port/chat send:hello close 2>&1`;
is($?, 0, 'WebSocket handshake through wingman succeeds') or diag($out);
like($out, qr/^echo hello$/m, 'message echoed');
like($out, qr/^closed 1000$/m, 'client close completes');
my $hs = slurp("$dir/hs.log");
like($hs, qr/"upgrade": "websocket"/, 'backend saw Upgrade: websocket');
like($hs, qr/"connection": "upgrade"/, 'backend saw Connection: upgrade');

done_testing();
