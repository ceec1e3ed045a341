# Malformed requests get 400 and a closed connection; a header block over 60 KiB
# or more than 100 headers gets 431; wingman stays up throughout.
use strict;
use warnings;
use Test::More;
use Wingman;

# The md5 backend reads the whole body before it answers, so a broken body is
# seen by wingman before any response exists.
my $md5be = start_backend(mode => 'md5');
my $mp = $md5be->port;
my $ng = start_nginx(q{
	large_client_header_buffers 8 64k;
	location / { return 200 "ok\n"; }
});
my $np = $ng->port;
my $wm = start_web(<<"EOF", workers => 2);
    routes:
      - { name: md5, match: { prefix: /md5 }, route: { cluster: md5 } }
      - { name: all, match: { prefix: / }, route: { cluster: nginx } }
clusters:
  - { name: nginx, endpoints: [127.0.0.1:$np] }
  - { name: md5, endpoints: [127.0.0.1:$mp] }
EOF
my $port = $wm->port;

sub still_serving {
	my ($what) = @_;
	my $r = http_get($port, '/ok');
	is($r->{status}, 200, "still serving after $what");
}

# Sends $bytes, expects status $code and the connection closed by wingman.
sub expect_close {
	my ($name, $bytes, $code) = @_;
	my ($raw, $state) = http_raw($port, $bytes, timeout => scale(3));
	my ($r) = parse_responses($raw);
	is($r ? $r->{status} : substr($raw, 0, 40), $code, "$name: $code");
	ok($state != 0, "$name: connection closed");
	still_serving($name);
}

expect_close('garbage', "GARBAGE\r\n\r\n", 400);
expect_close('binary garbage', "\x00\x01\x02\xff\xfe junk\r\n\r\n", 400);
expect_close('bad request line', "GET\r\n\r\n", 400);
expect_close('header without colon', "GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", 400);
expect_close('space before colon', "GET / HTTP/1.1\r\nHost: x\r\nX-Bad : y\r\n\r\n", 400);
expect_close('bad chunk size', "POST /md5 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400);
expect_close('bad Content-Length', "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", 400);
expect_close('Content-Length and chunked', "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
	. "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400);

# A good request and then garbage on the same connection: the first is answered.
my ($raw, $state) = http_raw($port, "GET /first HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP AT ALL\r\n\r\n", timeout => scale(3));
my @r = parse_responses($raw);
is($r[0] && $r[0]{status}, 200, 'request before the garbage is answered');
is($r[1] && $r[1]{status}, 400, 'then 400 for the garbage');
ok($state != 0, 'and the connection closed');

# Header block over 60 KiB: 431.
my $big = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " . ('a' x (61 * 1024)) . "\r\n\r\n";
expect_close('one 61 KiB header', $big, 431);
my $many_small = "GET / HTTP/1.1\r\nHost: x\r\n" . join('', map { "X-F$_: " . ('b' x 1000) . "\r\n" } 1 .. 70) . "\r\n";
expect_close('70 headers of 1 KB (70 KiB block)', $many_small, 431);

# More than 100 headers: 431.
my $many = "GET / HTTP/1.1\r\nHost: x\r\n" . join('', map { "X-H$_: v\r\n" } 1 .. 101) . "\r\n";
expect_close('101 headers', $many, 431);

# Within the limits: 100 headers in all and a 50 KiB block are fine.
my $r = http_get($port, '/ok', headers => [map { ("X-H$_", 'v') } 1 .. 98]);
is($r->{status}, 200, '100 headers (Host, Connection and 98 more) are accepted');
$r = http_get($port, '/ok', headers => ['X-Big', 'c' x (50 * 1024)]);
is($r->{status}, 200, 'a 50 KiB header block is accepted');

ok($wm->stat('http.web.downstream_cx_protocol_error') >= 1, 'http.web.downstream_cx_protocol_error counted');
ok($wm->alive, 'wingman still running');
done_testing;
