# Regression: a duplicate Host was accepted (the second silently dropped),
# absolute-form targets ("GET http://h/api/x HTTP/1.1") got 404 NR, and an
# HTTP/1.0 request without Host went upstream as HTTP/1.1 with no Host (a
# strict upstream answers 400). RFC 9112 3.2 and 3.2.2.
use strict;
use warnings;
use Test::More;
use Wingman;

my $be = start_backend();
my $strict = start_nginx('location / { return 200 "nginx host=$http_host uri=$request_uri\n"; }');
my ($p, $p10, $adm) = map { free_port() } 1 .. 3;
my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$adm }
listeners:
  - name: l
    address: 127.0.0.1:$p
    virtual_hosts:
      - { name: api, domains: [api.example], routes: [{ match: { prefix: / }, route: { cluster: be } }] }
      - { name: other, domains: ["*"], routes: [{ match: { prefix: / }, direct_response: { status: 200, body: "default vhost" } }] }
  - name: l10
    address: 127.0.0.1:$p10
    default_host_for_http_10: app.internal
    routes: [{ match: { prefix: / }, route: { cluster: strict } }]
clusters:
  - { name: be, endpoints: [127.0.0.1:${\ $be->port}] }
  - { name: strict, endpoints: [127.0.0.1:$strict->{port}] }
EOF

sub raw {
	my ($port, $req) = @_;
	my ($resp) = http_raw($port, $req);
	return $resp;
}

# Duplicate Host.
like(raw($p, "GET / HTTP/1.1\r\nHost: api.example\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'two Host fields: 400');
like(raw($p, "GET / HTTP/1.1\r\nHost: api.example\r\nhost: api.example\r\nConnection: close\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'two Host fields, same value: still 400');
like(raw($p, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n"), qr{^HTTP/1\.1 400 }, 'HTTP/1.1 without Host: 400');

# Absolute-form: authority and path from the URI.
my $r = raw($p, "GET http://api.example/api/x?q=1 HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n");
like($r, qr{^HTTP/1\.1 200 }, 'absolute-form: 200');
like($r, qr{^GET /api/x\?q=1 HTTP/1\.1$}m, 'absolute-form: the upstream gets origin-form');
like($r, qr{^host: api\.example$}mi, 'absolute-form: the upstream gets the URI authority as Host');
$r = raw($p, "GET http://API.example HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n");
like($r, qr{^GET / HTTP/1\.1$}m, 'absolute-form without a path: "/"');
$r = raw($p, "GET https://api.example/a/../b HTTP/1.1\r\nConnection: close\r\n\r\n");
like($r, qr{^GET /b HTTP/1\.1$}m, 'absolute-form without Host: the URI authority routes, the path is normalised');
like(raw($p, "GET http://api.example/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'absolute-form with a Host naming another authority: 400');
like(raw($p, "GET http://user\@api.example/x HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'absolute-form with userinfo: 400');
like(raw($p, "GET ftp://api.example/x HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'absolute-form with another scheme: 400');
like(raw($p, "GET http:///x HTTP/1.1\r\nHost: api.example\r\nConnection: close\r\n\r\n"),
     qr{^HTTP/1\.1 400 }, 'absolute-form with an empty authority: 400');
my ($out) = curl('-s', '-x', "http://127.0.0.1:$p", 'http://api.example/through-proxy');
like($out, qr{^GET /through-proxy HTTP/1\.1$}m, 'curl using wingman as its HTTP proxy is routed by the URI');

# HTTP/1.0 without Host: the listener's default host, else the endpoint's address.
$r = raw($p10, "GET /old HTTP/1.0\r\n\r\n");
like($r, qr{^HTTP/1\.[01] 200 .*nginx host=app\.internal uri=/old$}ms, 'HTTP/1.0 without Host: default_host_for_http_10');
$r = raw($p, "GET /old HTTP/1.0\r\n\r\n");
like($r, qr{^HTTP/1\.[01] 200 .*default vhost}s, 'HTTP/1.0 without Host routes by the default vhost');
my $p2 = free_port();
my $wm2 = start_wingman(<<"EOF");
workers: 1
listeners:
  - { name: l, address: 127.0.0.1:$p2, routes: [{ match: { prefix: / }, route: { cluster: strict } }] }
clusters:
  - { name: strict, endpoints: [127.0.0.1:$strict->{port}] }
EOF
$r = raw($p2, "GET /old HTTP/1.0\r\n\r\n");
like($r, qr{^HTTP/1\.[01] 200 .*nginx host=127\.0\.0\.1:$strict->{port} uri=/old$}ms,
     'HTTP/1.0 without Host: the upstream gets the endpoint address as Host, as nginx proxy_pass sends');

done_testing();
