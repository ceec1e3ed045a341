# Traffic policy, per-route actions (issue 3): rewrite (prefix and host, the
# original path in x-envoy-original-path and in the default access log),
# direct_response, and redirect with Location built like Envoy's (host, path,
# prefix, scheme, port, response code, strip_query).
use strict;
use warnings;
use Test::More;
use Wingman;

my $be = start_backend(id => 'was');
my $bp = $be->port;
my $wm = start_web(<<"EOF", access_log => 'access-102.log');
    routes:
      - name: old
        match: { prefix: /old }
        route: { cluster: was }
        rewrite: { prefix: /new }
      - name: api
        match: { prefix: /api/ }
        route: { cluster: was }
        rewrite: { prefix: / }
      - name: host
        match: { prefix: /host }
        route: { cluster: was }
        rewrite: { host: was-service }
      - name: both
        match: { prefix: /both }
        route: { cluster: was }
        rewrite: { prefix: /v2, host: was-service.blog-system.svc.cluster.local }
        headers:
          request: { set: { x-route: both } }
          response: { set: { x-rewritten: "yes" } }
      - name: maintenance
        match: { prefix: /maint }
        direct_response: { status: 503, body: "down for maintenance\\n" }
      - name: empty
        match: { path: /health }
        direct_response: { status: 200 }
      - name: teapot
        match: { path: /teapot }
        direct_response: { status: 418, body: "I'm a teapot" }
      - { name: r-host, match: { prefix: /r/host }, redirect: { host: new.example } }
      - { name: r-path, match: { prefix: /r/path }, redirect: { path: /landing } }
      - { name: r-prefix, match: { prefix: /r/old }, redirect: { prefix: /new } }
      - { name: r-https, match: { prefix: /r/https }, redirect: { scheme: https } }
      - { name: r-port, match: { prefix: /r/port }, redirect: { port: 8443 } }
      - { name: r-302, match: { prefix: /r/302 }, redirect: { host: h2.example, response_code: 302 } }
      - { name: r-307, match: { prefix: /r/307 }, redirect: { path: /t, response_code: 307 } }
      - { name: r-308, match: { prefix: /r/308 }, redirect: { path: /t, response_code: 308 } }
      - { name: r-303, match: { prefix: /r/303 }, redirect: { path: /t, response_code: 303 } }
      - { name: r-strip, match: { prefix: /r/strip }, redirect: { path: /p, strip_query: true } }
      - { name: r-keep, match: { prefix: /r/keep }, redirect: { prefix: /kept } }
      - name: r-all
        match: { prefix: /r/all }
        redirect: { scheme: https, host: secure.example, port: 8443, path: /all, response_code: 301 }
      - name: rest
        match: { prefix: / }
        route: { cluster: was }
clusters:
  - { name: was, endpoints: [127.0.0.1:$bp] }
EOF
my $port = $wm->port;

# The backend echoes "METHOD PATH VERSION" then the request headers.
sub seen {
	my ($path, %o) = @_;
	my $r = http_get($port, $path, %o);
	my %h;
	my ($line, @rest) = split /\n/, $r->{body};
	for (@rest) {
		last if $_ eq '';
		$h{ lc $1 } = $2 if /^([^:]+): (.*)$/;
	}
	return ($r, (split / /, $line // '')[1] // '', \%h);
}

my ($r, $path, $h) = seen('/old/x?q=1');
is($r->{status}, 200, 'rewrite: 200');
is($path, '/new/x?q=1', 'prefix rewrite replaces the matched prefix, keeps the rest and the query');
is($h->{'x-envoy-original-path'}, '/old/x?q=1', 'x-envoy-original-path carries the original path');
like($wm->log_line(qr{"GET /old/x\?q=1 HTTP/1\.1"}), qr{ 200 }, 'default access log shows the original path');

($r, $path, $h) = seen('/old');
is($path, '/new', 'prefix rewrite of the bare prefix');
($r, $path, $h) = seen('/api/users/7');
is($path, '/users/7', 'prefix /api/ rewritten to /');
is($h->{'x-envoy-original-path'}, '/api/users/7', 'original path for /api/ → /');

($r, $path, $h) = seen('/host/a', host => 'web.example');
is($path, '/host/a', 'host rewrite alone keeps the path');
is($h->{host}, 'was-service', 'host rewrite replaces Host');
ok(!exists $h->{'x-envoy-original-path'}, 'no x-envoy-original-path when the path is unchanged');

($r, $path, $h) = seen('/both/z');
is($path, '/v2/z', 'rewrite prefix and host together: path');
is($h->{host}, 'was-service.blog-system.svc.cluster.local', 'rewrite prefix and host together: host');
is($h->{'x-route'}, 'both', 'route request headers still applied');
is($r->{headers}{'x-rewritten'}, 'yes', 'route response headers still applied');

($r, $path, $h) = seen('/plain?x=1');
is($path, '/plain?x=1', 'routes without rewrite are untouched');
ok(!exists $h->{'x-envoy-original-path'}, 'and get no x-envoy-original-path');

# direct_response: no upstream involved.
$be->reset;
$r = http_get($port, '/maint/page');
is($r->{status}, 503, 'direct_response status');
is($r->{body}, "down for maintenance\n", 'direct_response body');
is($r->{headers}{'content-length'}, length("down for maintenance\n"), 'direct_response Content-Length');
$r = http_get($port, '/health');
is($r->{status}, 200, 'direct_response 200 without a body');
is($r->{body}, '', 'empty body');
is($r->{headers}{'content-length'} // '0', '0', 'Content-Length: 0');
$r = http_get($port, '/teapot');
is($r->{status}, 418, 'direct_response with any status');
is($r->{body}, "I'm a teapot", 'and its body');
$r = http_request($port, 'POST', '/maint/x', body => 'payload' x 100);
is($r->{status}, 503, 'direct_response to a POST with a body');
my $s = connect_port($port);
send_bytes($s, "GET /maint/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /teapot HTTP/1.1\r\nHost: x\r\n\r\n");
my $r1 = read_response($s);
my $r2 = read_response($s);
is(($r1 && $r1->{status}) . ' ' . ($r2 && $r2->{status}), '503 418', 'direct responses on a keep-alive connection');
close $s;
is($be->count, 0, 'no direct response reached the upstream');

# Redirects, with a Host without a port so the Location is unambiguous.
sub redirect {
	my ($path) = @_;
	my $r = http_get($port, $path, host => 'shop.example');
	return ($r->{status}, $r->{headers}{location} // '', $r);
}

my @cases = (
	['/r/host/a?x=1', 301, 'http://new.example/r/host/a?x=1', 'host'],
	['/r/path/a', 301, 'http://shop.example/landing', 'path'],
	['/r/old/a/b?x=1', 301, 'http://shop.example/new/a/b?x=1', 'prefix'],
	['/r/https/a', 301, 'https://shop.example/r/https/a', 'scheme'],
	['/r/port/a', 301, 'http://shop.example:8443/r/port/a', 'port'],
	['/r/302', 302, 'http://h2.example/r/302', 'response_code 302'],
	['/r/307', 307, 'http://shop.example/t', 'response_code 307'],
	['/r/308', 308, 'http://shop.example/t', 'response_code 308'],
	['/r/303', 303, 'http://shop.example/t', 'response_code 303'],
	['/r/strip?a=1&b=2', 301, 'http://shop.example/p', 'strip_query'],
	['/r/keep/x?a=1', 301, 'http://shop.example/kept/x?a=1', 'prefix keeps the query'],
	['/r/all/x?y=1', 301, 'https://secure.example:8443/all?y=1', 'scheme + host + port + path'],
);
for my $c (@cases) {
	my ($p, $code, $loc, $what) = @$c;
	my ($st, $l, $resp) = redirect($p);
	is("$st $l", "$code $loc", "redirect $what: $p");
	is($resp->{body}, '', "redirect $what: empty body");
}
my ($st, $l) = redirect('/r/path/a?keep=1');
is($l, 'http://shop.example/landing?keep=1', 'path redirect keeps the query unless strip_query');
is($be->count, 0, 'no redirect reached the upstream');

ok($wm->alive, 'wingman still running');
done_testing;
