# HTTP/2 downstream: h2c prior knowledge and ALPN h2 on one `auto` listener
# next to HTTP/1.1, `protocol: http1|http2`, many streams at once (1000-stream
# fan-in), bodies both ways byte-exact, per-stream flow control (a stream
# whose reader stalls does not hold up another), trailers from an HTTP/1.1
# chunked upstream to h2 and h1 clients, 431 on a huge header block,
# %PROTOCOL%, a rapid-reset attack (GOAWAY ENHANCE_YOUR_CALM), GOAWAY on drain,
# and the http2 config block.
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Test::More;
use Time::HiRes ();
use Wingman;

plan skip_all => 'nghttp/h2load missing (Debian nghttp2-client)' unless have_prog('nghttp') && have_prog('h2load');

my $c = test_certs();
my $dir = tmpdir();
my ($ng, $big, $big_md5) = start_nginx_big_file(3 * 1024 * 1024);
my $md5be = start_backend(mode => 'md5');
my $hang = start_backend(mode => 'hang');
my $drip = start_backend(mode => 'slow_body', pieces => 4, delay => 0.5);
my $trl = start_backend(handler => sub {
	my ($req) = @_;
	return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-type: application/grpc\r\n\r\n"
		. "4\r\ndata\r\n0\r\ngrpc-status: 0\r\ngrpc-message: all good\r\n\r\n";
});

my ($auto, $h1only, $h2only, $tlsp, $admin) = map { free_port() } 1 .. 5;
my $log = "$dir/access-401.log";
my ($np, $mp, $hp, $tp, $dp) = ($ng->port, $md5be->port, $hang->port, $trl->port, $drip->port);
my $routes = <<"EOF";
    routes:
      - { match: { prefix: /md5 }, route: { cluster: md5 } }
      - { match: { prefix: /hang }, route: { cluster: hang } }
      - { match: { prefix: /trailers }, route: { cluster: trl } }
      - { match: { prefix: /drip }, route: { cluster: drip } }
      - { match: { prefix: / }, route: { cluster: nginx } }
EOF
my $wm = start_wingman(<<"EOF");
workers: 2
admin: { address: 127.0.0.1:$admin }
access_log:
  path: $log
  format: "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_SENT%\\n"
listeners:
  - name: auto
    address: 127.0.0.1:$auto
    http2: { max_concurrent_streams: 100, initial_stream_window: 64KiB, initial_connection_window: 1MiB }
$routes
  - name: h1only
    address: 127.0.0.1:$h1only
    protocol: http1
$routes
  - name: h2only
    address: 127.0.0.1:$h2only
    protocol: http2
$routes
  - name: tls
    address: 127.0.0.1:$tlsp
    tls: { mode: SIMPLE, cert: $c/was.pem, key: $c/was-key.pem }
$routes
clusters:
  - { name: nginx, endpoints: [127.0.0.1:$np] }
  - { name: md5, endpoints: [127.0.0.1:$mp] }
  - { name: hang, endpoints: [127.0.0.1:$hp] }
  - { name: trl, endpoints: [127.0.0.1:$tp] }
  - { name: drip, endpoints: [127.0.0.1:$dp] }
EOF

# ---- prior knowledge, ALPN, HTTP/1.1 on the same listener
my ($out, $rc, $err) = curl('--http2-prior-knowledge', '-i', "http://127.0.0.1:$auto/small");
like($out, qr{^HTTP/2 200}, 'h2c prior knowledge: HTTP/2 200');
like($out, qr/small body$/, 'h2c: body');
($out) = curl('-i', "http://127.0.0.1:$auto/small");
like($out, qr{^HTTP/1.1 200}, 'auto listener still speaks HTTP/1.1');
($out) = curl('--cacert', "$c/root.pem", '--http2', '-w', '%{http_version}', '-o', '/dev/null',
	"https://localhost:$tlsp/small");
is($out, '2', 'TLS: ALPN h2 chosen by default');
($out) = curl('--cacert', "$c/root.pem", '--http1.1', '-w', '%{http_version}', '-o', '/dev/null',
	"https://localhost:$tlsp/small");
is($out, '1.1', 'TLS: a client offering only http/1.1 gets HTTP/1.1');
($out, $rc) = curl('--http2-prior-knowledge', "http://127.0.0.1:$h1only/small");
isnt($rc, 0, 'protocol: http1 refuses the h2c preface');
($out) = curl("http://127.0.0.1:$h1only/small");
is($out, "small body\n", 'protocol: http1 serves HTTP/1.1');
($out, $rc) = curl("http://127.0.0.1:$h2only/small");
isnt($rc, 0, 'protocol: http2 does not serve HTTP/1.1');
($out) = curl('--http2-prior-knowledge', "http://127.0.0.1:$h2only/small");
is($out, "small body\n", 'protocol: http2 serves h2c');

# ---- bodies both ways, several streams on one connection
($out) = curl('--http2-prior-knowledge', "http://127.0.0.1:$auto/files/big.bin");
is(Digest::MD5::md5_hex($out), $big_md5, '3 MB response over h2 byte-exact');
($out) = curl('--http2-prior-knowledge', '--data-binary', "\@$big", "http://127.0.0.1:$auto/md5");
like($out, qr/\Q$big_md5\E/, '3 MB request body over h2 reaches an HTTP/1.1 upstream intact (chunked)');
my $ngout = `nghttp -n -s http://127.0.0.1:$auto/small http://127.0.0.1:$auto/files/big.bin http://127.0.0.1:$auto/small?2 2>&1`;
is(scalar(() = $ngout =~ /^\s*\d+\s+\+\S+\s+\+\S+\s+\S+\s+200\b/mg), 3, 'nghttp: three concurrent streams, all 200');

# ---- 1000-stream fan-in
my $before = scalar(my @l1 = split /\n/, slurp($ng->dir . '/access.log'));
my $h2l = `h2load -n 1000 -c 4 -m 100 http://127.0.0.1:$auto/small 2>&1`;
like($h2l, qr/status codes: 1000 2xx/, 'h2load: 1000 streams over 4 connections, 100 at a time: all 2xx')
	or diag $h2l;
my $after;
wait_for(sub { $after = scalar(my @l2 = split /\n/, slurp($ng->dir . '/access.log')); $after - $before >= 1000 },
	scale(5));
is($after - $before, 1000, 'the upstream saw exactly 1000 requests');

# ---- trailers: HTTP/1.1 chunked upstream → h2 and h1 clients
$ngout = `nghttp -v http://127.0.0.1:$auto/trailers 2>&1`;
like($ngout, qr/recv DATA frame.*\n.*\n?.*recv \(stream_id=\d+\) grpc-status: 0.*\n.*grpc-message: all good.*\n.*recv HEADERS frame[^\n]*\n\s*; END_STREAM/s,
	'h2 client: upstream chunked trailers arrive as a trailing HEADERS frame with END_STREAM');
my ($resp) = http_raw($auto, "GET /trailers HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nConnection: close\r\n\r\n");
like($resp, qr/\r\n0\r\ngrpc-status: 0\r\ngrpc-message: all good\r\n\r\n$/, 'h1 client: trailers after the last chunk');

# ---- header limits (clients themselves refuse to send blocks over 64 kB, so the count limit is what shows)
($out) = curl('--http2-prior-knowledge', '-o', '/dev/null', '-w', '%{http_code}', (map { ('-H', "x-h$_: v") } 1 .. 110),
	"http://127.0.0.1:$auto/small");
is($out, '431', '110 request headers get 431');

# ---- access log
my $line;
wait_for(sub { ($line) = grep { m{^GET /small HTTP/2 200} } split /\n/, slurp($log); $line }, scale(5));
like($line // '', qr{^GET /small HTTP/2 200 - 11$}, '%PROTOCOL% is HTTP/2');

# ---- raw HTTP/2 client for flow control and rapid reset
sub frame { my ($type, $flags, $id, $payload) = @_;
	return substr(pack('N', length $payload), 1) . pack('CCN', $type, $flags, $id) . $payload }
# GET path with :authority x, HPACK without the dynamic table.
sub req_block { my ($path) = @_;
	return "\x82\x86" . "\x04" . chr(length $path) . $path . "\x01\x01x" }
sub h2_connect { my ($port, $window) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Proto => 'tcp') or die "connect: $!";
	binmode $s;
	print $s "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . frame(4, 0, 0, pack('nN', 4, $window));
	return $s;
}
# Reads frames until $until->(type, flags, id, payload) is true or $t seconds pass.
sub read_frames { my ($s, $t, $until) = @_;
	my $buf = '';
	my $sel = IO::Select->new($s);
	my $end = Time::HiRes::time() + $t;
	while (Time::HiRes::time() < $end) {
		last unless $sel->can_read(0.2) || length $buf >= 9;
		my $n = sysread($s, $buf, 65536, length $buf);
		while (length $buf >= 9) {
			my $len = unpack('N', "\0" . substr($buf, 0, 3));
			last if length $buf < 9 + $len;
			my ($type, $flags, $id) = unpack('CCN', substr($buf, 3, 6));
			my $p = substr($buf, 9, $len);
			substr($buf, 0, 9 + $len, '');
			print $s frame(4, 1, 0, '') if $type == 4 && !($flags & 1);
			return 1 if $until->($type, $flags, $id & 0x7fffffff, $p);
		}
		return 0 if defined $n && $n == 0 && length $buf < 9;
	}
	return 0;
}

# Stream 1 reads 3 MB but never grants window; stream 3 must still complete.
{
	my $s = h2_connect($auto, 65535);
	print $s frame(8, 0, 0, pack('N', 16 * 1024 * 1024));	# connection window: plenty
	print $s frame(1, 5, 1, req_block('/files/big.bin'));
	Time::HiRes::sleep(0.2);
	print $s frame(1, 5, 3, req_block('/small'));
	my (%bytes, %ended);
	read_frames($s, scale(5), sub {
		my ($type, $flags, $id, $p) = @_;
		$bytes{$id} += length $p if $type == 0;
		$ended{$id} = 1 if ($type == 0 || $type == 1) && ($flags & 1);
		return $ended{3};
	});
	ok($ended{3}, 'a stream whose reader stalls does not block another stream');
	ok(($bytes{1} // 0) <= 65535 && !$ended{1}, 'the stalled stream got no more than its window') or diag $bytes{1};
	close $s;
}

# Rapid reset: HEADERS + RST_STREAM, 300 times, as fast as the socket takes it.
{
	# wingman may close while the burst is still being written: not a failure.
	local $SIG{PIPE} = 'IGNORE';
	my $s = h2_connect($auto, 65535);
	my $burst = '';
	for (my $id = 1; $id < 600; $id += 2) {
		$burst .= frame(1, 5, $id, req_block('/hang')) . frame(3, 0, $id, pack('N', 8));
	}
	print $s $burst;
	my $code;
	read_frames($s, scale(5), sub {
		my ($type, $flags, $id, $p) = @_;
		$code = unpack('N', substr($p, 4, 4)) if $type == 7;
		return defined $code;
	});
	is($code, 11, 'rapid reset: GOAWAY ENHANCE_YOUR_CALM');
	close $s;
	my $st = $wm->stats;
	cmp_ok($st->{'http.auto.downstream_rq_too_many_premature_resets'} // 0, '>=', 1,
		'downstream_rq_too_many_premature_resets counted');
	cmp_ok($st->{'http.auto.http2.rx_reset'} // 0, '>=', 100, 'http2.rx_reset counted');
}
($out) = curl('--http2-prior-knowledge', "http://127.0.0.1:$auto/small");
is($out, "small body\n", 'still serving after the attack');

my $st = $wm->stats;
cmp_ok($st->{'http.auto.downstream_cx_http2_total'}, '>=', 5, 'downstream_cx_http2_total');
cmp_ok($st->{'http.auto.downstream_cx_http1_total'}, '>=', 2, 'downstream_cx_http1_total');

# ---- drain: GOAWAY, the stream in flight still finishes
{
	my $s = h2_connect($auto, 16 * 1024 * 1024);
	print $s frame(8, 0, 0, pack('N', 16 * 1024 * 1024));
	print $s frame(1, 5, 1, req_block('/drip'));
	my ($goaway, $ended, $termed) = (0, 0, 0);
	read_frames($s, scale(10), sub {
		my ($type, $flags, $id, $p) = @_;
		if ($type == 1 && !$termed++) {
			$wm->term;	# response headers are here, the body is still dripping
		}
		$goaway = 1 if $type == 7;
		$ended = 1 if $type == 0 && $id == 1 && ($flags & 1);
		return $goaway && $ended;
	});
	ok($goaway, 'drain: GOAWAY sent');
	ok($ended, 'drain: the stream in flight completes');
	close $s;
	$wm->wait_exit(scale(10));
}

# ---- config errors
for my $case (
	['protocol: http3', qr/expected auto, http1 or http2/],
	['http2: { initial_stream_window: 1KiB }', qr/initial_stream_window: expected a size/],
	['http2: { max_concurrent_streams: 0 }', qr/./],
	['http2: { bogus: 1 }', qr/unknown key "bogus"/],
) {
	my $conf = "$dir/bad-401.yaml";
	spew($conf, <<"EOF");
listeners:
  - name: l
    address: 127.0.0.1:1
    $case->[0]
    routes: [{ match: { prefix: / }, route: { cluster: c } }]
clusters:
  - { name: c, endpoints: [127.0.0.1:2] }
EOF
	my $o = `${\ wingman_bin()} -t -c $conf 2>&1`;
	like($o, qr/bad-401.yaml:4:\d+: .*$case->[1]/, "config error: $case->[0]");
}

done_testing();
