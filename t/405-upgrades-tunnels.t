# Tunnels (Envoy's upgrade_configs): WebSocket over HTTP/1.1, TLS and HTTP/2
# extended CONNECT (RFC 8441) against a python3-websockets echo server; big
# messages both ways, closes from either side, RBAC stopping an upgrade, a
# route or listener that does not allow websocket (403 upgrade_failed), the
# access log line of a tunnel, the idle timeout, and CONNECT tunnels to a TCP
# echo, allowed and refused.
use strict;
use warnings;
use IO::Socket::INET;
use Test::More;
use Wingman;

my $src = $ENV{WINGMAN_SRCDIR} // '.';
plan skip_all => 'python3-websockets missing (bootstrap installs it)'
	unless system('/usr/bin/python3 -c "import websockets" 2>/dev/null') == 0;

my $c = test_certs();
my $dir = tmpdir();
my ($wsp, $tcpp, $plain, $tls, $nows, $admin) = map { free_port() } 1 .. 6;
my $log = "$dir/access.log";
Wingman::spawn(cmd => ["$src/t/ws/echo-server.py", $wsp, "$dir/hs.log"], stderr => "$dir/ws.err");
# A TCP echo: each connection gets back what it sends, and a close after the client's.
Wingman::spawn(cmd => ['perl', '-MIO::Socket::INET', '-e', <<'EOP', $tcpp], name => 'tcp-echo');
$SIG{CHLD} = 'IGNORE';
my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $ARGV[0], Listen => 16, ReuseAddr => 1) or die $!;
while (my $c = $l->accept) {
	next if fork;
	while (sysread($c, my $d, 65536)) { while (length $d) { my $n = syswrite($c, $d) or exit 0; substr($d, 0, $n) = ''; } }
	exit 0;
}
EOP
my $be = start_backend(mode => 'echo');
my $bp = $be->port;
wait_for(sub { port_open($wsp) && port_open($tcpp) }, scale(10)) or BAIL_OUT('helpers did not start');

my $wm = start_wingman(<<"EOF2");
workers: 1
admin: { address: 127.0.0.1:$admin }
access_log: { path: $log, format: "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% rx=%BYTES_RECEIVED% tx=%BYTES_SENT% %RESPONSE_CODE_DETAILS%\\n" }
rbac:
  - name: no-denied
    action: DENY
    rules: [{ to: [{ operation: { paths: ["/denied*"] } }] }]
listeners:
  - name: plain
    address: 127.0.0.1:$plain
    virtual_hosts:
      - name: tunnels
        domains: ["echo.test"]
        routes:
          - match: { connect_matcher: {} }
            route: { cluster: tcp }
            upgrade_configs: [{ upgrade_type: CONNECT, connect_config: {} }]
      - name: all
        domains: ["*"]
        routes:
          - { match: { connect_matcher: {} }, route: { cluster: tcp } }
          - { match: { prefix: /idle }, route: { cluster: ws }, idle_timeout: 1s }
          - match: { prefix: /nows }
            route: { cluster: be }
            upgrade_configs: [{ upgrade_type: websocket, enabled: false }]
          - { match: { prefix: / }, route: { cluster: ws } }
  - name: tls
    address: 127.0.0.1:$tls
    tls: { mode: SIMPLE, cert: $c/was.pem, key: $c/was-key.pem, alpn: [h2, http/1.1] }
    routes: [{ match: { prefix: / }, route: { cluster: ws } }]
  - name: nows
    address: 127.0.0.1:$nows
    upgrade_configs: [{ upgrade_type: websocket, enabled: false }]
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
clusters:
  - { name: ws, endpoints: [127.0.0.1:$wsp] }
  - { name: be, endpoints: [127.0.0.1:$bp] }
  - { name: tcp, endpoints: [127.0.0.1:$tcpp] }
EOF2

sub ws { my $o = `timeout 60 $src/t/ws/client.py @_ 2>&1`; return ($o, $? >> 8) }
sub h2ws { my $o = `timeout 60 node $src/t/ws/h2-client.js @_ 2>&1`; return ($o, $? >> 8) }

# ---- HTTP/1.1: echo, 10 MB both ways, client close; the log line comes at the end
my ($out, $rc) = ws("ws://127.0.0.1:$plain/chat", 'send:hello', 'big:10000000', 'close');
is($rc, 0, 'ws: session ok') or diag($out);
like($out, qr/^echo hello$/m, 'ws: small message echoed');
like($out, qr/^big 10000000 ok$/m, 'ws: 10 MB message echoed intact');
like($out, qr/^closed 1000$/m, 'ws: client close');
my $line = $wm->log_line(qr{^GET /chat HTTP/1.1 101 });
# hello: 2+4+5, 10 MB binary: 10+4+N, close 1000: 2+4+2; back: 2+5, 10+N, 2+2.
is($line, "GET /chat HTTP/1.1 101 - rx=10000033 tx=10000021 via_upstream",
	'access log: 101 with the tunnel bytes each way, written at the end');

# ---- the server closes
($out, $rc) = ws("ws://127.0.0.1:$plain/srvclose", 'send:x', 'wait-close');
like($out, qr/^closed by server 1000 bye$/m, 'ws: server close reaches the client') or diag($out);
ok($wm->log_line(qr{^GET /srvclose HTTP/1.1 101 - }), 'ws: server-closed tunnel logged');

# ---- TLS listener
($out, $rc) = ws("wss://localhost:$tls/secure", '--ca', "$c/root.pem", 'send:over-tls', 'big:1000000', 'close');
is($rc, 0, 'wss: session ok') or diag($out);
like($out, qr/^echo over-tls$/m, 'wss: echoed');
like($out, qr/^big 1000000 ok$/m, 'wss: 1 MB echoed intact');

# ---- HTTP/2 extended CONNECT (RFC 8441)
($out, $rc) = h2ws("http://127.0.0.1:$plain/h2chat", 'send:over-h2', 'big:10000000', 'close');
like($out, qr/^settings connect_protocol=1$/m, 'h2: SETTINGS_ENABLE_CONNECT_PROTOCOL advertised') or diag($out);
like($out, qr/^status 200$/m, 'h2: extended CONNECT answered 200');
like($out, qr/^echo over-h2$/m, 'h2: echoed over DATA frames');
like($out, qr/^big 10000000 ok$/m, 'h2: 10 MB echoed intact');
like($out, qr/^closed 1000$/m, 'h2: close handshake');
like($wm->log_line(qr{^GET /h2chat }), qr{^GET /h2chat HTTP/2 200 - rx=1000\d+ tx=1000\d+ }, 'h2: logged as 200 with bytes');
my ($hs) = grep { /"path": "\/h2chat"/ } split /\n/, slurp("$dir/hs.log");
like($hs // '', qr/"upgrade": "websocket"/, 'h2: upstream got GET + Upgrade: websocket');
($out, $rc) = h2ws("https://localhost:$tls/h2tls", '--ca', "$c/root.pem", 'send:h2-tls', 'close');
like($out, qr/^echo h2-tls$/m, 'h2 over TLS (ALPN h2): echoed') or diag($out);
($out) = h2ws("http://127.0.0.1:$nows/x");
like($out, qr/^settings connect_protocol=0$/m, 'h2: not advertised where websocket is disabled');

# ---- RBAC stops the upgrade
($out, $rc) = ws("ws://127.0.0.1:$plain/denied");
like($out, qr/^status 403$/m, 'RBAC DENY: 403, no upgrade') or diag($out);
unlike(slurp("$dir/hs.log"), qr{"/denied}, 'RBAC DENY: the backend never saw the handshake');

# ---- an upgrade the route or listener does not allow: 403 upgrade_failed (Envoy)
my @up = ('-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket');
my $seen = () = slurp("$dir/hs.log") =~ /"path"/g;
sub be_requests { curl("http://127.0.0.1:$admin/stats") =~ /^cluster\.be\.upstream_rq_total: (\d+)$/m ? $1 : 0 }
my $be_before = be_requests();
($out) = curl('-i', @up, "http://127.0.0.1:$plain/nows/x");
like($out, qr{\AHTTP/1.1 403 }, 'route without websocket: 403');
ok($wm->log_line(qr{^GET /nows/x HTTP/1.1 403 - .* upgrade_failed$}), 'route without websocket: logged upgrade_failed');
($out) = curl('-i', @up, "http://127.0.0.1:$nows/y");
like($out, qr{\AHTTP/1.1 403 }, 'listener without websocket: 403');
($out) = curl('-i', '-H', 'Connection: Upgrade', '-H', 'Upgrade: foo/1', "http://127.0.0.1:$plain/any");
like($out, qr{\AHTTP/1.1 403 }, 'an upgrade token nobody allowed: 403');
($out) = curl('-i', '-H', 'Connection: Upgrade', '-H', 'Upgrade: h2c', "http://127.0.0.1:$nows/h2c");
like($out, qr{\AHTTP/1.1 200 }, 'Upgrade: h2c where h2c is not taken: ignored, a plain request');
unlike($out, qr/^(upgrade|connection): *(upgrade|h2c)/mi, 'h2c: no Upgrade sent on');
is(scalar(() = slurp("$dir/hs.log") =~ /"path"/g), $seen, 'refused upgrades never reached the ws backend');
is(be_requests(), $be_before + 1, 'nor the plain one (only the h2c request did)');
($out) = curl("http://127.0.0.1:$admin/stats");
like($out, qr/^http\.plain\.downstream_rq_ws_on_non_ws_route: 2$/m, 'stat downstream_rq_ws_on_non_ws_route') or diag($out);
like($out, qr/^http\.nows\.downstream_rq_ws_on_non_ws_route: 1$/m, 'counted on the listener that refused it');
like($out, qr/^http\.plain\.downstream_cx_upgrades_total: [1-9]/m, 'stat downstream_cx_upgrades_total');
like($out, qr/^http\.plain\.downstream_cx_upgrades_active: 0$/m, 'downstream_cx_upgrades_active back to 0');

# ---- idle timeout (route idle_timeout: 1s)
($out, $rc) = ws("ws://127.0.0.1:$plain/idle", 'send:one', 'idle:5');
like($out, qr/^echo one$/m, 'idle: tunnel works first') or diag($out);
like($out, qr/^closed by server 1006$/m, 'idle: an idle tunnel is closed');
like($wm->log_line(qr{^GET /idle }), qr{^GET /idle HTTP/1.1 101 SI }, 'idle: logged 101 with SI');
($out, $rc) = h2ws("http://127.0.0.1:$plain/idle2", 'send:two', 'idle:5');
like($out, qr/^echo two$/m, 'h2 idle: tunnel works first') or diag($out);
like($out, qr/^reset by server \d+$/m, 'h2 idle: an idle HTTP/2 tunnel is reset (route idle_timeout)');
like($wm->log_line(qr{^GET /idle2 }), qr{^GET /idle2 HTTP/2 200 SI }, 'h2 idle: logged 200 with SI');

# ---- CONNECT tunnels
sub connect_to {
	my ($target, $payload) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $plain, Timeout => 5) or die $!;
	print $s "CONNECT $target HTTP/1.1\r\nHost: $target\r\n\r\n";
	my $head = '';
	$head .= getc($s) // last until $head =~ /\r\n\r\n\z/;
	my $got = '';
	if ($head =~ m{^HTTP/1.1 200 }) {
		my $pid = fork;
		if (!$pid) { syswrite($s, $payload); shutdown($s, 1); exit 0 }
		1 while sysread($s, $got, 65536, length $got);
		waitpid($pid, 0);
	}
	return ($head, $got);
}
my $payload = join '', map { chr(int(rand(256))) } 1 .. 300000;
my ($head, $got) = connect_to('echo.test:7', $payload);
like($head, qr{^HTTP/1.1 200 }, 'CONNECT opted in: 200');
ok($got eq $payload, 'CONNECT: 300 kB echoed through the tunnel, then closed after the half-close');
like($wm->log_line(qr{^CONNECT echo.test:7 }), qr{^CONNECT echo.test:7 HTTP/1.1 200 - rx=300000 tx=300000 },
	'CONNECT: logged with the tunnel bytes');
($head) = connect_to('other.test:7', '');
like($head, qr{^HTTP/1.1 403 }, 'CONNECT to a route without CONNECT: 403 (upgrade_failed)');
ok($wm->log_line(qr{^CONNECT other.test:7 HTTP/1.1 403 - .* upgrade_failed$}), 'refused CONNECT logged');

# ---- HTTP/2 CONNECT (no :protocol)
$out = `timeout 30 node $src/t/ws/h2-connect.js http://127.0.0.1:$plain echo.test:7 3000000 2>&1`;
like($out, qr/^status 200$/m, 'h2 CONNECT opted in: 200') or diag($out);
like($out, qr/^echoed 3000000 ok$/m, 'h2 CONNECT: 3 MB echoed over DATA frames, END_STREAM both ways');
ok($wm->log_line(qr{^CONNECT echo.test:7 HTTP/2 200 - rx=3000000 tx=3000000 }), 'h2 CONNECT logged with its bytes');
$out = `timeout 30 node $src/t/ws/h2-connect.js http://127.0.0.1:$plain other.test:7 10 2>&1`;
like($out, qr/^status 403$/m, 'h2 CONNECT without opt-in: 403');

done_testing();
