# RBAC through a running wingman: DENY precedence over a matching ALLOW,
# conditions on headers, operations on paths and methods, AUDIT, an ALLOW
# policy without rules denying everything, stats and config errors.
use strict;
use warnings;
use Test::More;
use Wingman;

my $be = start_backend();
my $bp = $be->port;
my ($port, $admin, $port2, $port3) = map { free_port() } 1 .. 4;
my $dir = tmpdir();
my $log = "$dir/rbac.log";

my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$admin }
access_log: { path: $log, format: "%REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_CODE_DETAILS%\\n" }
rbac:
  - name: no-admin
    action: DENY
    rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
  - name: not-from-elsewhere
    action: DENY
    rules: [{ from: [{ source: { notIpBlocks: ["127.0.0.0/8", "::1"] } }] }]
  - name: tenant-a
    action: ALLOW
    rules: [{ when: [{ key: "request.headers[x-tenant]", values: ["a"] }] }]
  - name: public
    action: ALLOW
    rules: [{ to: [{ operation: { paths: ["/public/*"], methods: ["GET"] } }] }]
  - name: audit-public
    action: AUDIT
    rules: [{ to: [{ operation: { paths: ["/public/*"] } }] }]
listeners:
  - name: l
    address: 127.0.0.1:$port
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
clusters:
  - { name: be, endpoints: [127.0.0.1:$bp] }
EOF

is(http_get($port, '/public/x')->{status}, 200, 'ALLOW by path and method');
is(http_request($port, 'POST', '/public/x', body => 'b')->{status}, 403, 'method outside the ALLOW: 403');
is(http_get($port, '/other', headers => ['X-Tenant', 'a'])->{status}, 200, 'ALLOW by a header condition');
is(http_get($port, '/other', headers => ['X-Tenant', 'b'])->{status}, 403, 'header condition not met: 403');
my $r = http_get($port, '/admin/users', headers => ['X-Tenant', 'a']);
is($r->{status}, 403, 'DENY wins over a matching ALLOW');
is($r->{body}, 'RBAC: access denied', '403 body');
$r = http_get($port, '/public/../admin', headers => ['X-Tenant', 'a']);
is($r->{status}, 403, 'DENY matches the normalised path');
my $text = '';
# Logged as normalised: the path that was decided on (Envoy logs the normalised :path too).
wait_for(sub { $text = slurp($log); $text =~ m{^/admin 403 }m }, scale(5));
like($text, qr{^/admin/users 403 rbac_access_denied_matched_policy\[no-admin\]$}m, 'details name the DENY policy');
like($text, qr{^/other 403 rbac_access_denied_matched_policy\[none\]$}m, 'details [none] when no ALLOW matched');
like($text, qr{^/public/x 200 via_upstream$}m, 'allowed requests go upstream');
unlike($be->log, qr{admin}, 'denied requests never reach the backend');
is($wm->stat('http.l.rbac.allowed'), 2, 'rbac.allowed');
is($wm->stat('http.l.rbac.denied'), 4, 'rbac.denied');
is($wm->stat('http.l.rbac.logged'), 2, 'rbac.logged counts AUDIT matches');
is($wm->stat('http.l.rbac.not_logged'), 4, 'rbac.not_logged');
is($wm->stat('http.l.downstream_rq_4xx'), 4, 'denials are 4xx responses');

# An ALLOW policy without rules matches nothing: everything is denied.
my $wm2 = start_wingman(<<"EOF");
workers: 1
rbac:
  - name: allow-nothing
    action: ALLOW
listeners:
  - name: l2
    address: 127.0.0.1:$port2
    routes: [{ match: { prefix: / }, route: { cluster: be } }]
  - name: l3
    address: 127.0.0.1:$port3
    routes: [{ match: { prefix: /api }, route: { cluster: be } }]
clusters:
  - { name: be, endpoints: [127.0.0.1:$bp] }
EOF
is(http_get($port2, '/')->{status}, 403, 'empty ALLOW denies all: /');
is(http_get($port2, '/public/x', headers => ['X-Tenant', 'a'])->{status}, 403, 'empty ALLOW denies all: anything');
# A request that matches no route goes nowhere: only tracing and metrics see it.
is(http_get($port3, '/nowhere')->{status}, 404, 'no route: 404 NR, RBAC not consulted');

# Config errors are located.
my $bad = "$dir/bad.yaml";
spew($bad, <<"EOF");
rbac:
  - name: x
    action: PERMIT
    rules:
      - from: [{ source: { principals: ["a*b*"] } }]
        to: [{ operation: { ports: ["http"] } }]
listeners:
  - name: l
    address: 127.0.0.1:1
    routes: [{ match: { prefix: / }, route: { cluster: be }, rbac: [{ name: y, action: NOPE }] }]
clusters:
  - { name: be, endpoints: [127.0.0.1:2] }
EOF
my $chk = `${\wingman_bin()} -t -c $bad 2>&1`;
like($chk, qr{bad\.yaml:3:13: expected one of ALLOW, DENY, AUDIT}, 'bad action');
like($chk, qr{bad\.yaml:5:41: principals: "a\*b\*": expected exact}, 'bad pattern');
like($chk, qr{bad\.yaml:6:37: ports: expected a port number}, 'bad port');
like($chk, qr{bad\.yaml:10:\d+: expected one of ALLOW, DENY, AUDIT}, 'bad action in a route');

# A route's policies replace the top-level ones for that route (Envoy's
# RBACPerRoute): /open has none, /closed its own DENY.
my $port4 = free_port();
my $wm3 = start_wingman(<<"EOF");
workers: 1
rbac: [{ name: top, action: DENY, rules: [{ to: [{ operation: { paths: ["/*"] } }] }] }]
listeners:
  - name: l
    address: 127.0.0.1:$port4
    routes:
      - { match: { prefix: /open }, route: { cluster: be }, rbac: [] }
      - match: { prefix: /closed }
        route: { cluster: be }
        rbac: [{ name: route-deny, action: DENY, rules: [{ to: [{ operation: { methods: [POST] } }] }] }]
      - { match: { prefix: / }, route: { cluster: be } }
clusters:
  - { name: be, endpoints: [127.0.0.1:$bp] }
EOF
is(http_get($port4, '/open')->{status}, 200, 'route rbac: [] lifts the top-level DENY');
is(http_get($port4, '/closed')->{status}, 200, 'route policy replaces the top-level one: GET allowed');
is(http_request($port4, 'POST', '/closed', body => '')->{status}, 403, 'route policy: POST denied');
is(http_get($port4, '/other')->{status}, 403, 'other routes keep the top-level policy');
$wm3->term;

$wm2->term;
$wm->term;
done_testing();
