# A GET goes through wingman to a real nginx; Host is preserved and the proxy
# headers x-forwarded-for, x-forwarded-proto and x-request-id are added upstream;
# hop-by-hop headers are not forwarded.
use strict;
use warnings;
use Test::More;
use Wingman;

my $ng = start_nginx(q{
	location = /hello { return 200 "hello from nginx\n"; }
	location = /echo {
		return 200 "host=$http_host|xff=$http_x_forwarded_for|xfp=$http_x_forwarded_proto|rid=$http_x_request_id|hop=$http_x_hop|ka=$http_keep_alive";
	}
});
my $nport = $ng->port;
my $wm = start_web(<<"EOF", workers => 2, access_log => 'access-001.log', listener => 'ingress');
    routes:
      - name: all
        match: { prefix: / }
        route: { cluster: web }
clusters:
  - name: web
    endpoints: [127.0.0.1:$nport]
    connect_timeout: 1s
EOF
my $port = $wm->port;

sub upstream_view {
	my ($r) = @_;
	return map { split /=/, $_, 2 } split /\|/, $r->{body};
}

my $r = http_get($port, '/hello');
is($r->{status}, 200, 'GET through wingman is 200');
is($r->{body}, "hello from nginx\n", 'body from nginx');
is($r->{headers}{'content-length'}, 17, 'content-length kept');

$r = http_get($port, '/echo', host => 'blog.example.com');
is($r->{status}, 200, 'echo 200');
my %up = upstream_view($r);
is($up{host}, 'blog.example.com', 'Host preserved upstream');
is($up{xff}, '127.0.0.1', 'x-forwarded-for is the client address');
is($up{xfp}, 'http', 'x-forwarded-proto: http');
like($up{rid}, qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
	'x-request-id is a UUIDv4 when absent');

my %seen;
for (1 .. 5) {
	my %u = upstream_view(http_get($port, '/echo'));
	$seen{ $u{rid} }++;
}
is(scalar(keys %seen), 5, 'each request gets its own x-request-id');

$r = http_get($port, '/echo', headers => ['X-Request-Id', 'my-request-1', 'X-Forwarded-For', '10.1.2.3']);
%up = upstream_view($r);
is($up{rid}, 'my-request-1', 'an existing x-request-id is kept');
is($up{xff}, '10.1.2.3, 127.0.0.1', 'x-forwarded-for is appended to');

# Hop-by-hop: Keep-Alive and headers named in Connection are not forwarded.
$r = http_get($port, '/echo', keepalive => 1,
	headers => ['Connection', 'keep-alive, X-Hop', 'X-Hop', 'secret', 'Keep-Alive', 'timeout=5']);
%up = upstream_view($r);
is($up{hop}, '', 'header named in Connection is stripped');
is($up{ka}, '', 'Keep-Alive is stripped');

my ($out, $rc) = curl("http://127.0.0.1:$port/hello");
is($rc, 0, 'curl exit 0');
is($out, "hello from nginx\n", 'curl body');

ok(wait_for(sub { scalar(() = $wm->access_log_lines) >= 10 }, scale(5)), 'one access log line per request');
ok($wm->alive, 'wingman still running');
is(($wm->term // -1) >> 8, 0, 'SIGTERM: exit 0');

done_testing;
