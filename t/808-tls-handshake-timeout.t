# Regression: a TLS handshake (or a PERMISSIVE listener's wait for the first
# bytes) that stalled was bounded only by idle_timeout, an hour. Envoy's
# transport_socket_connect_timeout now bounds it (default 10 s), counted as
# listener.<address>.downstream_cx_transport_socket_connect_timeout; a
# connection past its handshake is not cut by it.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use Wingman;

plan skip_all => 'openssl not found' unless have_prog('openssl');

my $c = test_certs();
my ($strict, $perm, $adm) = map { free_port() } 1 .. 3;
my $tls = "{ mode: SIMPLE, cert: $c/was.pem, key: $c/was-key.pem }";
my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$adm }
listeners:
  - { name: strict, address: 127.0.0.1:$strict, transport_socket_connect_timeout: 1s, tls: $tls,
      routes: [{ match: { prefix: / }, direct_response: { status: 200, body: ok } }] }
  - name: perm
    address: 127.0.0.1:$perm
    transport_socket_connect_timeout: 1s
    tls: { mode: PERMISSIVE, cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes: [{ match: { prefix: / }, direct_response: { status: 200, body: ok } }]
EOF

# Seconds until the server closes a connection that sent $bytes, or undef.
sub closed_after {
	my ($port, $bytes) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or return undef;
	syswrite($s, $bytes) if length $bytes;
	my $t0 = time;
	my $sel = IO::Select->new($s);
	while (time - $t0 < scale(8)) {
		next unless $sel->can_read(0.2);
		my $n = sysread($s, my $buf, 4096);
		return time - $t0 if !$n;
	}
	return undef;
}

my $t = closed_after($strict, '');
ok(defined $t, 'TLS listener: a client that sends nothing is closed');
cmp_ok($t // 99, '<', scale(5), '... after transport_socket_connect_timeout, not idle_timeout');
$t = closed_after($strict, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
ok(defined $t, 'TLS listener: a ClientHello that stalls half-way is closed');
$t = closed_after($perm, '');
ok(defined $t, 'PERMISSIVE listener: a client that sends nothing is closed');
$t = closed_after($perm, "\x16");
ok(defined $t, 'PERMISSIVE listener: one byte that could be TLS, then nothing: closed');
wait_for(sub { $wm->stat("listener.127.0.0.1_$strict.downstream_cx_transport_socket_connect_timeout") >= 2 }, scale(5));
is($wm->stat("listener.127.0.0.1_$strict.downstream_cx_transport_socket_connect_timeout"), 2,
   'listener downstream_cx_transport_socket_connect_timeout (strict)');
is($wm->stat("listener.127.0.0.1_$perm.downstream_cx_transport_socket_connect_timeout"), 2,
   'listener downstream_cx_transport_socket_connect_timeout (permissive)');

# Past the handshake the deadline is gone: a request 2 s later is answered.
my $cmd = "(sleep 2; printf 'GET / HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n'; sleep 1) | " .
	  "openssl s_client -quiet -connect 127.0.0.1:$strict 2>/dev/null";
like(scalar `$cmd`, qr{^HTTP/1\.1 200 }m, 'a TLS connection idle after its handshake is not cut');
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $perm);
sleep 0.1;
syswrite($s, "GET / HTTP/1.1\r\nHost: a\r\n");
sleep 1.5;
syswrite($s, "\r\n");
my $r = '';
IO::Select->new($s)->can_read(scale(3)) and sysread($s, $r, 4096);
like($r, qr{^HTTP/1\.1 200 }, 'PERMISSIVE plaintext past the sniff is not cut by it');
is($wm->stat("listener.127.0.0.1_$perm.downstream_cx_transport_socket_connect_timeout"), 2, 'nothing more counted');

# Config.
my ($rc, $out) = wingman_check("listeners:\n  - { name: l, address: 127.0.0.1:1, transport_socket_connect_timeout: soon, " .
	"routes: [{ match: { prefix: / }, direct_response: { status: 200 } }] }\n");
isnt($rc, 0, 'a bad transport_socket_connect_timeout is refused');
like($out, qr{:2:\d+: expected a duration}, '... with file:line:col');

done_testing();
