# Bodies: chunked requests and responses, 10 MB both ways byte-exact,
# Content-Length, Expect: 100-continue, HEAD, HTTP/1.0 with and without keep-alive.
use strict;
use warnings;
use IO::Select;
use Test::More;
use Time::HiRes ();
use Wingman;

my $dir = tmpdir();
my ($ng, $big, $big_md5) = start_nginx_big_file(10 * 1024 * 1024);

my $md5be = start_backend(mode => 'md5');
my $echo = start_backend(handler => sub {
	my ($req) = @_;
	return make_response('200 OK', $req->{body}, 'content-type', 'application/octet-stream');
});
my $chunky = start_backend(handler => sub {
	my ($req) = @_;
	my @parts = ('first chunk;', 'x' x 70000, ';third', "\n");
	return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-type: text/plain\r\n\r\n"
		. join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } @parts) . "0\r\n\r\n";
});

my $dripper = start_backend(mode => 'slow_body', pieces => 4, delay => 0.5);

my ($np, $mp, $ep, $cp, $dp) = ($ng->port, $md5be->port, $echo->port, $chunky->port, $dripper->port);
my $wm = start_web(<<"EOF", workers => 2, access_log => 'access-005.log');
    routes:
      - { name: md5, match: { prefix: /md5 }, route: { cluster: md5 } }
      - { name: echo, match: { prefix: /echo }, route: { cluster: echo } }
      - { name: chunky, match: { prefix: /chunky }, route: { cluster: chunky } }
      - { name: drip, match: { prefix: /drip }, route: { cluster: drip } }
      - { name: nginx, match: { prefix: / }, route: { cluster: nginx } }
clusters:
  - { name: nginx, endpoints: [127.0.0.1:$np] }
  - { name: md5, endpoints: [127.0.0.1:$mp] }
  - { name: echo, endpoints: [127.0.0.1:$ep] }
  - { name: chunky, endpoints: [127.0.0.1:$cp] }
  - { name: drip, endpoints: [127.0.0.1:$dp] }
EOF
my $port = $wm->port;
my $base = "http://127.0.0.1:$port";

# 10 MB download from nginx.
my ($out, $rc) = curl('-o', "$dir/down.bin", '-D', "$dir/down.hdr", "$base/files/big.bin");
is($rc, 0, '10 MB download: curl exit 0');
is(-s "$dir/down.bin", 10 * 1024 * 1024, '10 MB download: size');
is(md5_file("$dir/down.bin"), $big_md5, '10 MB download: byte-exact');
like(slurp("$dir/down.hdr"), qr/^content-length: 10485760\r?$/mi, 'Content-Length passed through');

# 10 MB upload with Content-Length.
($out, $rc) = curl('--data-binary', "\@$big", '-H', 'Expect:', "$base/md5");
is($rc, 0, '10 MB upload: curl exit 0');
is($out, "$big_md5 10485760 0\n", '10 MB upload with Content-Length: byte-exact');

# 10 MB upload, chunked.
($out, $rc) = curl('--data-binary', "\@$big", '-H', 'Transfer-Encoding: chunked', '-H', 'Expect:', "$base/md5");
is($rc, 0, '10 MB chunked upload: curl exit 0');
like($out, qr/^\Q$big_md5\E 10485760 [01]\n$/, '10 MB chunked upload: byte-exact');

# 10 MB both ways in one request.
($out, $rc) = curl('--data-binary', "\@$big", '-H', 'Expect:', '-o', "$dir/echo.bin", "$base/echo");
is($rc, 0, '10 MB echo: curl exit 0');
is(md5_file("$dir/echo.bin"), $big_md5, '10 MB up and back down: byte-exact');

# A small chunked request, raw.
my $r;
my $raw = http_raw($port, "POST /md5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
	. "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
($r) = parse_responses($raw);
is($r->{status}, 200, 'chunked request: 200');
like($r->{body}, qr/^\Q${\ md5_hex('hello world')}\E 11 [01]\n$/, 'chunked request body arrives whole');

# The same, written in pieces with pauses.
$raw = http_raw($port, ["POST /md5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
	"5\r\nhel", "lo\r\n6\r\n wor", "ld\r\n0\r\n", "\r\n"], pause => 0.1);
($r) = parse_responses($raw);
like($r->{body} // '', qr/^\Q${\ md5_hex('hello world')}\E 11 [01]\n$/, 'chunked request in pieces arrives whole');

# A chunked response.
$raw = http_raw($port, "GET /chunky HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
($r) = parse_responses($raw);
is($r->{status}, 200, 'chunked response: 200');
is($r->{body}, 'first chunk;' . ('x' x 70000) . ";third\n", 'chunked response body intact');
ok($r->{chunked} || $r->{until_close}, 'response without length is chunked (or close-delimited)');
($out) = curl("$base/chunky");
is(length $out, 12 + 70000 + 7, 'curl reads the chunked response');

# A response body is streamed, not buffered: the first piece arrives long
# before the backend has sent the last one (4 pieces, 0.5 s apart).
{
	my $s = connect_port($port);
	my $t0 = Time::HiRes::time();
	send_bytes($s, "GET /drip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	my ($buf, $first) = ('', undef);
	my $sel = IO::Select->new($s);
	while ($sel->can_read(scale(5))) {
		my $n = sysread($s, $buf, 65536, length $buf) or last;
		$first //= Time::HiRes::time() - $t0 if $buf =~ /\r\n\r\npart1/;
	}
	my $all = Time::HiRes::time() - $t0;
	my ($d) = parse_responses($buf);
	is($d && $d->{body}, "part1\npart2\npart3\npart4\n", 'dripped body arrives whole');
	ok(defined $first && $first < $all - 0.8,
		sprintf('response body is streamed: first piece after %.2fs, all after %.2fs', $first // -1, $all));
	close $s;
}

# Expect: 100-continue.
my $s = connect_port($port);
send_bytes($s, "POST /md5 HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n");
my $cont = read_response($s, want_1xx => 1, timeout => scale(3));
is($cont && $cont->{status}, 100, 'Expect: 100-continue gets 100 Continue');
send_bytes($s, 'hello world');
$r = read_response($s);
is($r && $r->{status}, 200, 'then the final 200');
like($r ? $r->{body} : '', qr/^\Q${\ md5_hex('hello world')}\E 11 0\n$/, 'body after 100-continue arrives');
close $s;

# HEAD: headers only, and the connection stays usable.
$s = connect_port($port);
send_bytes($s, "HEAD /small HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n");
$r = read_response($s, head => 1);
is($r && $r->{status}, 200, 'HEAD 200');
is($r && $r->{headers}{'content-length'}, 11, 'HEAD keeps Content-Length');
$r = read_response($s);
is($r && $r->{body}, "small body\n", 'next request after HEAD on the same connection');
close $s;

# HTTP/1.0 without keep-alive: answered, then closed by wingman.
my $state;
($raw, $state) = http_raw($port, "GET /small HTTP/1.0\r\nHost: x\r\n\r\n", timeout => scale(3));
($r) = parse_responses($raw);
is($r->{status}, 200, 'HTTP/1.0: 200');
is($r->{body}, "small body\n", 'HTTP/1.0: body');
is($state, 1, 'HTTP/1.0 without keep-alive: connection closed after the response');
unlike($r->{headers}{'transfer-encoding'} // '', qr/chunked/i, 'no chunked encoding to an HTTP/1.0 client');

($raw, $state) = http_raw($port, "GET /chunky HTTP/1.0\r\nHost: x\r\n\r\n", timeout => scale(3));
($r) = parse_responses($raw);
is($r->{body}, 'first chunk;' . ('x' x 70000) . ";third\n", 'HTTP/1.0 client gets a chunked upstream body de-chunked');
unlike($r->{headers}{'transfer-encoding'} // '', qr/chunked/i, 'and without Transfer-Encoding');

# HTTP/1.0 with keep-alive: the connection stays open for a second request.
$s = connect_port($port);
send_bytes($s, "GET /small HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
$r = read_response($s);
is($r && $r->{status}, 200, 'HTTP/1.0 keep-alive: first response');
like($r ? $r->{headers}{connection} // '' : '', qr/keep-alive/i, 'HTTP/1.0 keep-alive: Connection: keep-alive');
send_bytes($s, "GET /small HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
$r = read_response($s);
is($r && $r->{body}, "small body\n", 'HTTP/1.0 keep-alive: second request on the same connection');
close $s;

# HTTP/1.0 POST with Content-Length.
($raw) = http_raw($port, "POST /md5 HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
($r) = parse_responses($raw);
like($r->{body} // '', qr/^\Q${\ md5_hex('hello')}\E 5 0\n$/, 'HTTP/1.0 POST body arrives');

ok($wm->alive, 'wingman still running');
done_testing;
