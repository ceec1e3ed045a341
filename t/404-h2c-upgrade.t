# HTTP/1.1 "Upgrade: h2c" (RFC 7540 3.2) on a plaintext `auto` listener: the
# request is answered over HTTP/2 as stream 1, keep-alive requests follow on
# the same connection over HTTP/2, requests with a body and malformed
# HTTP2-Settings stay HTTP/1.1, `protocol: http1` never upgrades, and the
# access log gives the upgraded request's protocol as it arrived (HTTP/1.1).
use strict;
use warnings;
use Test::More;
use Wingman;

my $dir = tmpdir();
my $echo = start_backend(mode => 'echo');
# The echo backend answers HEAD with a body; this one does it right.
my $headbe = start_backend(handler => sub { "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n" });
my ($auto, $h1only, $admin) = map { free_port() } 1 .. 3;
my $log = "$dir/access-404.log";
my ($ep, $hp) = ($echo->port, $headbe->port);
my $wm = start_wingman(<<"EOF2");
workers: 1
admin: { address: 127.0.0.1:$admin }
access_log:
  path: $log
  format: "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL% %RESPONSE_CODE%\\n"
listeners:
  - name: auto
    address: 127.0.0.1:$auto
    routes:
      - { match: { prefix: /up/head }, route: { cluster: head } }
      - { match: { prefix: / }, route: { cluster: echo } }
  - name: h1only
    address: 127.0.0.1:$h1only
    protocol: http1
    routes:
      - { match: { prefix: / }, route: { cluster: echo } }
clusters:
  - { name: echo, endpoints: [127.0.0.1:$ep] }
  - { name: head, endpoints: [127.0.0.1:$hp] }
EOF2

# ---- curl --http2 on plain http:// sends the Upgrade; the answer comes over h2
my ($out, $rc, $err) = curl('--http2', '-w', '\n%{http_version}', "http://127.0.0.1:$auto/up/one");
is($rc, 0, 'curl --http2 succeeded') or diag($err);
like($out, qr{\AGET /up/one HTTP/1.1\n}, 'upgraded request reached the HTTP/1.1 backend');
unlike($out, qr{^(upgrade|http2-settings|connection):}mi, 'upgrade headers are not forwarded');
like($out, qr{\n2\z}, 'response came over HTTP/2');

# ---- a second request on the same connection goes over h2 too
($out, $rc, $err) = curl('--http2', '-w', '%{http_version} %{num_connects}\n', '-o', '/dev/null', '-o', '/dev/null',
	"http://127.0.0.1:$auto/up/first", "http://127.0.0.1:$auto/up/second");
is($out, "2 1\n2 0\n", 'keep-alive: both requests over HTTP/2 on one connection') or diag($err);

# ---- HEAD upgrades too: no body on stream 1
($out, $rc, $err) = curl('--http2', '-I', "http://127.0.0.1:$auto/up/head");
like($out, qr{^HTTP/2 200}m, 'HEAD upgraded: HTTP/2 200') or diag($err);
like($out, qr{^content-length: 5\r?$}mi, 'HEAD: content-length kept');

# ---- a request with a body is served over HTTP/1.1 (whatever curl asks for)
($out, $rc, $err) = curl('--http2', '-d', 'hello body', '-w', '\n%{http_version}', "http://127.0.0.1:$auto/post");
like($out, qr{\APOST /post HTTP/1.1\n}, 'POST through curl --http2 reaches the backend');
like($out, qr{\n\nhello body\n(1\.1|2)\z}, 'POST body intact');
like($out, qr{\n1\.1\z}, 'request with a body: not upgraded');

# ---- the exact 101, then HTTP/2 frames (a SETTINGS frame first)
my $up = "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n";
my $settings = 'AAMAAABkAAQAAP__';	# MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 65535
my $preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . pack('CnCCN', 0, 0, 0x04, 0, 0);	# + empty SETTINGS
my ($raw) = http_raw($auto, "${up}HTTP2-Settings: $settings\r\n\r\n$preface", timeout => scale(1));
like($raw, qr{\AHTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n}, 'raw: 101 with Connection/Upgrade');
my $frames = $raw =~ s/\A.*?\r\n\r\n//sr;
ok(length($frames) >= 9 && unpack('x3 C', $frames) == 4, 'raw: first frame after the 101 is SETTINGS');

# ---- malformed HTTP2-Settings: served over HTTP/1.1
for my $bad ('!!!not-base64!!!', 'AAMAAABk_w', 'AAMAAABkAA') {
	($raw) = http_raw($auto, "${up}HTTP2-Settings: $bad\r\nConnection: close\r\n\r\n");
	like($raw, qr{\AHTTP/1.1 200 OK\r\n}, "malformed HTTP2-Settings '$bad': HTTP/1.1 answer");
}
# two HTTP2-Settings fields: not an upgrade either
($raw) = http_raw($auto, "${up}HTTP2-Settings: $settings\r\nHTTP2-Settings: $settings\r\nConnection: close\r\n\r\n");
like($raw, qr{\AHTTP/1.1 200 OK\r\n}, 'two HTTP2-Settings fields: HTTP/1.1 answer');
# missing HTTP2-Settings token in Connection
($raw) = http_raw($auto, "GET /raw HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: h2c\r\n"
	. "HTTP2-Settings: $settings\r\n\r\n");
like($raw, qr{\AHTTP/1.1 200 OK\r\n}, 'Connection without HTTP2-Settings: HTTP/1.1 answer');

# ---- protocol: http1 listeners never upgrade
($out, $rc, $err) = curl('--http2', '-w', '\n%{http_version}', "http://127.0.0.1:$h1only/h1/one");
like($out, qr{\AGET /h1/one HTTP/1.1\n.*\n1\.1\z}s, 'protocol http1: served over HTTP/1.1') or diag($err);

# ---- %PROTOCOL%: the upgraded request arrived as HTTP/1.1, the next one as HTTP/2
my $text;
wait_for(sub { $text = slurp($log) // ''; $text =~ m{^GET /h1/one } }, scale(5));
like($text, qr{^GET /up/one HTTP/1.1 200$}m, 'access log: upgraded request logged as HTTP/1.1');
like($text, qr{^GET /up/second HTTP/2 200$}m, 'access log: following request logged as HTTP/2');
like($text, qr{^HEAD /up/head HTTP/1.1 200$}m, 'access log: HEAD upgraded');

done_testing();
