# Listener request timeouts, Envoy's HttpConnectionManager ones:
# request_headers_timeout (first byte to end of the request head; a slowloris
# client trickling header bytes gets 408 and the connection closes),
# request_timeout (the whole request), stream_idle_timeout (nothing moving
# either way: 408 "stream timeout" while the request is incomplete, 504 once it
# is complete, a reset once the response started; SI in the access log), for
# HTTP/1.1 and per HTTP/2 stream; a request slow only because its upstream is
# slow is not cut by request_headers_timeout; their stats, /config_dump and
# config errors.
use strict;
use warnings;
use IO::Select;
use JSON::PP qw(decode_json);
use Test::More;
use Time::HiRes qw(time sleep);
use Wingman;

my $dir = tmpdir();
my $echo = start_backend(mode => 'echo');
my $slow = start_backend(mode => 'slow', delay => 2);
my $drip = start_backend(mode => 'slow_body', pieces => 4, delay => 0.6);
my $stall = start_backend(mode => 'slow_body', pieces => 2, delay => 2.5);
my $silent = start_backend(mode => 'slow', delay => 5);	# answers long after any timeout here
my $late = start_backend(handler => sub {	# headers after 0.7 s, the body 0.7 s later
	my ($req, $c) = @_;
	sleep 0.7;
	syswrite($c, "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n");
	sleep 0.7;
	return "late\n";
});
my ($ep, $sp, $dp, $tp, $lp, $qp) = ($echo->port, $slow->port, $drip->port, $stall->port, $late->port, $silent->port);
my ($hdr, $idle, $rqt, $admin) = map { free_port() } 1 .. 4;
my $log = "$dir/access-016.log";
my $routes = <<"EOF";
    routes:
      - { match: { prefix: /silent }, route: { cluster: silent } }
      - { match: { prefix: /slow }, route: { cluster: slow } }
      - { match: { prefix: /drip }, route: { cluster: drip } }
      - { match: { prefix: /cut }, route: { cluster: stall } }
      - { match: { prefix: /late }, route: { cluster: late } }
      - { match: { prefix: / }, route: { cluster: echo } }
EOF
my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$admin }
access_log: { path: $log, format: "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% code=%RESPONSE_CODE% flags=%RESPONSE_FLAGS% details=%RESPONSE_CODE_DETAILS%\\n" }
listeners:
  - name: hdr
    address: 127.0.0.1:$hdr
    request_headers_timeout: 1s
$routes
  - name: idle
    address: 127.0.0.1:$idle
    stream_idle_timeout: 1s
$routes
  - name: rqt
    address: 127.0.0.1:$rqt
    request_timeout: 1s
    stream_idle_timeout: 0s
$routes
clusters:
  - { name: echo, endpoints: [127.0.0.1:$ep] }
  - { name: silent, endpoints: [127.0.0.1:$qp] }
  - { name: slow, endpoints: [127.0.0.1:$sp] }
  - { name: drip, endpoints: [127.0.0.1:$dp] }
  - { name: stall, endpoints: [127.0.0.1:$tp] }
  - { name: late, endpoints: [127.0.0.1:$lp] }
EOF

# Sends @pieces one every $every seconds (then nothing) while reading; returns
# (bytes read, seconds until the first byte came back, seconds until EOF),
# undef for what did not happen within $max seconds.
sub trickle {
	my ($port, $every, $max, @pieces) = @_;
	my $s = connect_port($port) or return ('', undef, undef);
	my $sel = IO::Select->new($s);
	my ($got, $t_first, $t_eof) = ('');
	my $t0 = time;
	my $next = $t0;
	while (time - $t0 < $max) {
		if (@pieces && time >= $next) {
			send_bytes($s, shift @pieces);
			$next += $every;
		}
		next unless $sel->can_read(0.02);
		my $n = sysread($s, my $buf, 65536);
		if (!$n) {
			$t_eof = time - $t0;
			last;
		}
		$t_first //= time - $t0;
		$got .= $buf;
	}
	close($s);
	return ($got, $t_first, $t_eof);
}

# ---- request_headers_timeout (HTTP/1.1): a header byte every 200 ms never ends the head.
my @slowloris = ("GET /loris HTTP/1.1\r\nHost: x\r\n", map { "X-Pad-$_: y\r\n" } 1 .. 40);
my ($got, $t_first, $t_eof) = trickle($hdr, 0.2, scale(8), @slowloris);
my ($r) = parse_responses($got);
is($r && $r->{status}, 408, 'slowloris: a head trickled past request_headers_timeout gets 408');
is($r && $r->{body}, 'request header timeout', 'with Envoy\'s body');
like($r && $r->{headers}{connection} // '', qr/close/, 'and connection: close');
ok(defined $t_first && $t_first >= 0.9 && $t_first < scale(3),
	sprintf('after about the 1 s timeout (%.2fs), though bytes kept coming', $t_first // -1));
ok(defined $t_eof, sprintf('then the connection is closed (%.2fs)', $t_eof // -1));
is($wm->stat('http.hdr.downstream_rq_header_timeout'), 1, 'http.hdr.downstream_rq_header_timeout counted');
like($wm->log_line(qr{/loris}), qr{^GET /loris HTTP/1\.1 code=408 flags=- details=request_header_timeout$},
	'access log: 408, request_header_timeout');

# A head that arrives whole is not timed, however slow the upstream.
my $t0 = time;
$r = http_get($hdr, '/slow/upstream');
is($r->{status}, 200, 'a complete request to a 2 s upstream is answered');
ok(time - $t0 >= 1.9, 'after the upstream\'s 2 s: request_headers_timeout measures the client\'s head only');
is($r->{body}, "slow\n", 'with the upstream\'s body');

# The deadline is per request: a keep-alive connection outlives it.
my $s = connect_port($hdr);
my $ok = 1;
for my $i (1 .. 4) {
	send_bytes($s, "GET /ka$i HTTP/1.1\r\nHost: x\r\n\r\n");
	my ($x) = read_response($s);
	$ok &&= $x && $x->{status} == 200;
	sleep 0.4;
}
ok($ok, 'requests every 400 ms on one connection for 1.6 s: all 200');
close($s);
is($wm->stat('http.hdr.downstream_rq_header_timeout'), 1, 'no other header timeout counted');

# ---- stream_idle_timeout (HTTP/1.1)
# Headers, 10 of 100 body bytes, then nothing.
($got, $t_first, $t_eof) = trickle($idle, 0.1, scale(6),
	"POST /stalled-body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", '0123456789');
($r) = parse_responses($got);
is($r && $r->{status}, 408, 'a request body stalled past stream_idle_timeout gets 408');
is($r && $r->{body}, 'stream timeout', 'body "stream timeout"');
like($r && $r->{headers}{connection} // '', qr/close/, 'connection: close (the request never ended)');
ok(defined $t_first && $t_first >= 0.9 && $t_first < scale(3), sprintf('after about 1 s (%.2fs)', $t_first // -1));
ok(defined $t_eof, 'and the connection is closed');
like($wm->log_line(qr{/stalled-body}), qr{^POST /stalled-body HTTP/1\.1 code=408 flags=SI details=stream_idle_timeout$},
	'access log: 408 with the SI flag');

# A complete request whose upstream says nothing: 504 (Envoy, the request was
# fully received), and the connection stays usable. The upstream is silent for
# 5 s, so "before it would have answered" does not hang on wingman answering
# within 0.8 s of its 1 s timeout on a loaded machine (the 2 s upstream did).
$s = connect_port($idle);
send_bytes($s, "GET /silent/idle HTTP/1.1\r\nHost: x\r\n\r\n");
$t0 = time;
($r) = read_response($s, timeout => scale(5));
my $el = time - $t0;
is($r && $r->{status}, 504, 'a silent upstream past stream_idle_timeout: 504');
is($r && $r->{body}, 'stream timeout', 'body "stream timeout"');
ok($el >= 0.9 && $el < 4, sprintf('at the 1 s timeout, before the upstream would have answered at 5 s (%.2fs)', $el));
send_bytes($s, "GET /after-504 HTTP/1.1\r\nHost: x\r\n\r\n");
($r) = read_response($s);
is($r && $r->{status}, 200, 'the keep-alive connection serves the next request');
close($s);
like($wm->log_line(qr{/silent/idle}), qr{code=504 flags=SI details=stream_idle_timeout$}, 'access log: 504 SI');

# Response bytes every 600 ms keep a stream alive although the client is silent.
$r = http_get($idle, '/drip', timeout => scale(6));
is($r->{status}, 200, 'a response streaming every 600 ms outlives the 1 s stream_idle_timeout');
is($r->{body}, "part1\npart2\npart3\npart4\n", 'whole');

# Response headers count as activity too: 0.7 s to them, 0.7 s more to the body.
$r = http_get($idle, '/late', timeout => scale(5));
is($r->{status}, 200, 'headers at 0.7 s and the body 0.7 s later: no 1 s gap, not cut');
is($r->{body}, "late\n", 'whole');

# A body that keeps coming, two bytes every 500 ms, is not idle.
($got) = trickle($idle, 0.5, scale(6), "POST /steady HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n"
	. "Connection: close\r\n\r\n", 'ab', 'cd', 'ef', 'gh');
($r) = parse_responses($got);
is($r && $r->{status}, 200, 'a request body arriving every 500 ms outlives the 1 s stream_idle_timeout');
like($r && $r->{body} // '', qr/abcdefgh$/, 'and reaches the upstream whole');

# Once the response started, an idle stream can only be reset.
($got, $t_first, $t_eof) = trickle($idle, 0.1, scale(6), "GET /cut HTTP/1.1\r\nHost: x\r\n\r\n");
like($got, qr{^HTTP/1\.1 200 }, 'stalled response: the status line went out');
unlike($got, qr/part2/, 'then it is cut');
ok(defined $t_eof && $t_eof < 2.4, sprintf('by closing the connection (%.2fs)', $t_eof // -1));
like($wm->log_line(qr{/cut }), qr{code=200 flags=SI }, 'access log: 200 with SI');
is($wm->stat('http.idle.downstream_rq_idle_timeout'), 3, 'http.idle.downstream_rq_idle_timeout counted 3');
is($wm->stat('http.idle.downstream_rq_header_timeout'), 0, 'no header timeout there');

# ---- request_timeout: a body trickled byte by byte is not idle but never ends.
($got, $t_first) = trickle($rqt, 0.2, scale(6),
	"POST /trickled-body HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n", split(//, 'x' x 50));
($r) = parse_responses($got);
is($r && $r->{status}, 408, 'request_timeout: a body trickled past it gets 408');
is($r && $r->{body}, 'request timeout', 'body "request timeout"');
ok(defined $t_first && $t_first >= 0.9 && $t_first < scale(3), sprintf('after about 1 s (%.2fs)', $t_first // -1));
is($wm->stat('http.rqt.downstream_rq_timeout'), 1, 'http.rqt.downstream_rq_timeout counted');
like($wm->log_line(qr{/trickled-body}), qr{code=408 flags=- details=request_overall_timeout$}, 'access log');
$t0 = time;
is(http_get($rqt, '/slow/complete')->{status}, 200, 'request_timeout ends with the request: a slow upstream is fine');

# ---- HTTP/2 (prior knowledge, raw frames): a header block that never ends.
sub frame {
	my ($type, $flags, $id, $payload) = @_;
	return pack('CnCCN', length($payload) >> 16, length($payload) & 0xffff, $type, $flags, $id) . $payload;
}
sub lit {	# HPACK literal without indexing, new name
	my ($n, $v) = @_;
	return pack('CC', 0, length $n) . $n . pack('C', length $v) . $v;
}
my $block = pack('C', 0x82) . pack('C', 0x86) . pack('CC', 0x04, 13) . '/h2-slowloris' . pack('CC', 0x01, 1) . 'x';
($got, $t_first, $t_eof) = trickle($hdr, 0.2, scale(8),
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . frame(4, 0, 0, '') . frame(1, 0x1, 1, $block),	# HEADERS, END_STREAM, no END_HEADERS
	map { frame(9, 0, 1, lit("x-pad-$_", 'y')) } 1 .. 40);			# CONTINUATION
my (%types, $data);
for (my $o = 0; $o + 9 <= length $got;) {
	my ($hi, $lo, $type, $flags, $id) = unpack('CnCCN', substr($got, $o, 9));
	my $len = $hi << 16 | $lo;
	$types{$type}++;
	$data .= substr($got, $o + 9, $len) if $type == 0 && ($id & 0x7fffffff) == 1;
	$o += 9 + $len;
}
ok($types{1}, 'h2 slowloris: stream 1 gets a response HEADERS');
is($data, 'request header timeout', 'with the 408 body');
ok($types{7}, 'and GOAWAY: a header block in progress holds the whole connection');
ok(defined $t_eof, sprintf('which is closed (%.2fs)', $t_eof // -1));
is($wm->stat('http.hdr.downstream_rq_header_timeout'), 2, 'counted');
like($wm->log_line(qr{/h2-slowloris}), qr{^GET /h2-slowloris HTTP/2 code=408 flags=- details=request_header_timeout$},
	'access log: HTTP/2 408');

# ---- HTTP/2 stream idle, per stream (Node's http2 client): a stalled body
# gets 408 on its stream; the session goes on serving other streams.
SKIP: {
	skip 'node missing', 7 unless have_prog('node');
	my $js = "$dir/h2-stall.js";
	spew($js, <<'EOF');
const http2 = require('http2');
const port = process.argv[2];
const out = {};
const t0 = Date.now();
const c = http2.connect(`http://127.0.0.1:${port}`);
c.on('error', (e) => { out.error = String(e); });
const stalled = c.request({ ':method': 'POST', ':path': '/h2-stalled' });
stalled.write('abc');	/* and never end it */
let body = '';
stalled.on('response', (h) => { out.status = h[':status']; out.ms = Date.now() - t0; });
stalled.on('data', (d) => { body += d; });
stalled.on('error', () => {});
stalled.on('close', () => {
	out.body = body;
	out.rst = stalled.rstCode;
	const ok = c.request({ ':path': '/h2-after' });
	ok.on('response', (h) => { out.after = h[':status']; });
	ok.resume();
	ok.on('end', () => { console.log(JSON.stringify(out)); c.close(); });
});
setTimeout(() => { console.log(JSON.stringify(out)); process.exit(0); }, 8000);
EOF
	my $res = eval { decode_json(`node $js $idle 2>&1`) } // {};
	is($res->{status}, 408, 'h2: a stalled request body gets 408 on its stream');
	is($res->{body}, 'stream timeout', 'body "stream timeout"');
	ok(($res->{ms} // 0) >= 900 && ($res->{ms} // 1e9) < scale(3000), "after about 1 s ($res->{ms} ms)");
	is($res->{rst}, 0, 'then RST_STREAM NO_ERROR ends the stream the client could not finish');
	ok($wm->stat('http.idle.http2.tx_reset') >= 1, 'http2.tx_reset counts it');
	is($res->{after}, 200, 'the connection serves another stream afterwards');
	like($wm->log_line(qr{/h2-stalled}), qr{^POST /h2-stalled HTTP/2 code=408 flags=SI details=stream_idle_timeout$},
		'access log: HTTP/2 408 SI');
}

# ---- /config_dump: the values, and the defaults (60 s, off, Envoy's 5 min).
# They are the HttpConnectionManager's (Envoy's names and Durations).
my $lst = dump_resources(config_dump($admin))->{listeners};
my %hcm = map { $_ => $lst->{$_}{filter_chains}[0]{filters}[0]{typed_config} // {} } qw(hdr rqt);
is_deeply([@{$hcm{hdr}}{qw(request_headers_timeout request_timeout stream_idle_timeout)}], ['1s', '0s', '300s'],
	'/config_dump: request_headers_timeout given, the others default');
is_deeply([@{$hcm{rqt}}{qw(request_headers_timeout request_timeout stream_idle_timeout)}], ['60s', '1s', '0s'],
	'/config_dump: default request_headers_timeout 60s; request_timeout; stream_idle_timeout 0 disables');

# ---- config errors name FILE:LINE:COL.
my $n = 0;
for my $c (['request_headers_timeout', '5 parsecs'], ['request_timeout', '-1s'], ['stream_idle_timeout', '10']) {
	my ($key, $val) = @$c;
	my $f = "$dir/bad-$key.yaml";
	spew($f, <<"EOF");
listeners:
  - name: a
    address: 127.0.0.1:15006
    $key: $val
    routes:
      - { match: { prefix: / }, route: { cluster: web } }
clusters:
  - { name: web, endpoints: [127.0.0.1:8081] }
EOF
	my $out = `${\ wingman_bin()} -t -c $f 2>&1`;
	isnt($? >> 8, 0, "$key: $val: -t fails");
	like($out, qr/^\Q$f\E:4:\d+: expected a duration/m, "$key: $val: the error names line 4 and what is expected")
		or diag($out);
}

done_testing;
