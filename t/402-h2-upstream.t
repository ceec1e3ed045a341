# HTTP/2 upstreams (cluster protocol: http2) against nginx (h2c) and Node's
# http2 module: h1 and h2 clients through one multiplexed connection, bodies
# both ways, request and response trailers (chunked h1 <-> h2), TE: trailers
# forwarded, a trailers-only response, REFUSED_STREAM retried (retry_on:
# refused-stream), and a GOAWAY after nginx's 1000 requests per connection
# costing no request.
use strict;
use warnings;
use Test::More;
use Wingman;

plan skip_all => 'node missing' unless have_prog('node');
plan skip_all => 'h2load missing' unless have_prog('h2load');

my $dir = tmpdir();
my $ngp = free_port();
my $ng = start_nginx(qq{
	server {
		listen 127.0.0.1:$ngp http2;
		location = /small { return 200 "small h2\\n"; }
	}
}, port => $ngp);
my $nodep = start_h2_backend();

my ($port, $admin) = (free_port(), free_port());
my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$admin }
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - { match: { prefix: /refuse }, route: { cluster: node }, retries: { attempts: 3, retry_on: refused-stream } }
      - { match: { prefix: /small }, route: { cluster: nginx } }
      - { match: { prefix: / }, route: { cluster: node } }
clusters:
  - { name: nginx, protocol: http2, endpoints: [127.0.0.1:$ngp] }
  - { name: node, protocol: http2, endpoints: [127.0.0.1:$nodep] }
EOF

my ($out) = curl('-i', "http://127.0.0.1:$port/small");
like($out, qr{^HTTP/1.1 200.*small h2\n$}s, 'h1 client -> h2 upstream (nginx)');
($out) = curl('--http2-prior-knowledge', "http://127.0.0.1:$port/small");
is($out, "small h2\n", 'h2 client -> h2 upstream');
my $h2l = `h2load -n 3000 -c 4 -m 50 http://127.0.0.1:$port/small 2>&1`;
like($h2l, qr/status codes: 3000 2xx/, '3000 requests across nginx GOAWAYs (1000 per connection): all 2xx') or diag $h2l;
my $st = $wm->stats;
cmp_ok($st->{'cluster.nginx.upstream_cx_total'}, '<=', 12, 'multiplexed: a handful of upstream connections');

($out) = curl("http://127.0.0.1:$port/big");
is(length $out, 2 * 1024 * 1024, '2 MiB response from an h2 upstream');
my $body = 'z' x 300000;
spew("$dir/body", $body);
($out) = curl('--data-binary', "\@$dir/body", "http://127.0.0.1:$port/echo");
is($out, Digest::MD5::md5_hex($body), 'h1 request body (300 kB) -> h2 upstream intact');

# Trailers both ways: h1 chunked request trailers become an h2 trailing HEADERS.
my ($resp) = http_raw($port, "POST /echo HTTP/1.1\r\nHost: x\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\n"
	. "Connection: close\r\n\r\n5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n");
like($resp, qr/\r\nx-seen-te: trailers\r\n/i, 'TE: trailers forwarded to the h2 upstream');
like($resp, qr/\r\n0\r\n(?:[^\r]*\r\n)*x-echo-x-checksum: abc\r\n/,
	'request trailers reached the upstream, response trailers came back chunked');
like($resp, qr/\Q@{[Digest::MD5::md5_hex('hello')]}\E/, 'chunked body translated to DATA');

my $ng_out = `nghttp -v http://127.0.0.1:$port/trailers 2>&1`;
like($ng_out, qr/grpc-status: 0.*grpc-message: fine.*recv HEADERS frame[^\n]*\n\s*; END_STREAM/s,
	'h2 -> h2: gRPC-style trailers pass through');
$ng_out = `nghttp -v http://127.0.0.1:$port/only 2>&1`;
like($ng_out, qr/:status: 200.*grpc-status: 14.*recv HEADERS frame[^\n]*\n\s*; END_STREAM/s,
	'trailers-only response stays one HEADERS frame with END_STREAM');

# REFUSED_STREAM: the Node backend refuses each /refuse* path twice. Without a
# body the request goes again on its own (the server never processed it);
# with one, the retry policy decides (retry_on: refused-stream) and replays it.
($out) = curl("http://127.0.0.1:$port/refuse-get");
is($out, "third time\n", 'GET refused twice: sent again transparently');
is($wm->stats->{'cluster.node.upstream_rq_retry'} // 0, 0, '... without using the retry budget');
($out) = curl('--data-binary', 'payload', "http://127.0.0.1:$port/refuse-post");
is($out, "third time\n", 'POST refused twice: retried by the retry policy');
is($wm->stats->{'cluster.node.upstream_rq_retry'} // 0, 2, '... two retries counted');

done_testing();
