# Routing: prefix, exact path, regex, header and method matches, virtual hosts by
# Host (exact, "*", "*.suffix", "prefix.*"), weighted clusters, first match wins,
# 404 with flag NR when nothing matches.
use strict;
use warnings;
use Test::More;
use Wingman;

my ($ng, $pa, $pb, $pc) = start_nginx_servers(map { "$_ \$request_uri" } qw(A B C));
ok(wait_for(sub { port_open($pb) && port_open($pc) }), 'nginx serves three backends');

my $wm = start_web(<<"EOF", workers => 2, access_log => 'access-003.log');
    virtual_hosts:
      - name: api
        domains: ["api.example.com"]
        routes:
          - name: api-only
            match: { prefix: /only }
            route: { cluster: c }
      - name: wild-suffix
        domains: ["*.wild.test"]
        routes:
          - match: { prefix: / }
            route: { cluster: b }
      - name: wild-prefix
        domains: ["pre.*"]
        routes:
          - match: { prefix: / }
            route: { cluster: c }
      - name: default
        domains: ["*"]
        routes:
          - name: exact
            match: { path: /exact }
            route: { cluster: b }
          - name: regex
            match: { regex: "/r/[0-9]+" }
            route: { cluster: c }
          - name: re2-digits
            match: { regex: "/d/\\\\d+" }
            route: { cluster: c }
          - name: re2-nocase
            match: { regex: "(?i)/CI/[[:alpha:]]+" }
            route: { cluster: b }
          - name: canary
            match: { prefix: /h, headers: { x-canary: { exact: "yes" } } }
            route: { cluster: b }
          - name: hprefix
            match: { prefix: /h, headers: { x-tier: { prefix: "gold" } } }
            route: { cluster: c }
          - name: hregex
            match: { prefix: /h, headers: { x-ver: { regex: "v[0-9]+" } } }
            route: { cluster: b }
          - name: hpresent
            match: { prefix: /h, headers: { x-flag: { present: true } } }
            route: { cluster: c }
          - name: post-only
            match: { prefix: /m, methods: [POST, PUT] }
            route: { cluster: b }
          - name: api
            match: { prefix: /api }
            route: { cluster: c }
          - name: split
            match: { prefix: /split }
            route: { weighted: [{cluster: a, weight: 90}, {cluster: b, weight: 10}] }
          - name: first
            match: { prefix: /first }
            route: { cluster: b }
          - name: first-shadowed
            match: { prefix: /first }
            route: { cluster: c }
          - name: nothing-here
            match: { prefix: /none }
            route: { cluster: c }
          - name: rest
            match: { prefix: / }
            route: { cluster: a }
clusters:
  - name: a
    endpoints: [127.0.0.1:$pa]
  - name: b
    endpoints: [127.0.0.1:$pb]
  - name: c
    endpoints: [127.0.0.1:$pc]
EOF
my $port = $wm->port;

sub via {
	my ($path, %o) = @_;
	my $r = http_request($port, $o{method} // 'GET', $path, %o);
	return $r->{status} == 200 ? substr($r->{body}, 0, 1) : $r->{status};
}

is(via('/'), 'A', 'prefix / catches the rest');
is(via('/exact'), 'B', 'exact path');
is(via('/exact/more'), 'A', 'exact path does not match a longer path');
is(via('/exactly'), 'A', 'exact path does not act as a prefix');
is(via('/r/123'), 'C', 'regex');
is(via('/r/123?q=1'), 'C', 'regex ignores the query string');
is(via('/r/12a'), 'A', 'regex must match the whole path');
is(via('/x/r/123'), 'A', 'regex is anchored at the start');
is(via('/d/123'), 'C', 'regex is RE2, as Envoy and Istio read it: \\d is a digit');
is(via('/d/ddd'), 'A', '... not the letter d (POSIX ERE read it so)');
is(via('/ci/Abc'), 'B', 'RE2 (?i) and [[:alpha:]]');
is(via('/ci/ab1'), 'A', '... still a whole-path match');
is(via('/api'), 'C', 'prefix /api');
is(via('/api/v1/users'), 'C', 'prefix /api on a longer path');
is(via('/h'), 'A', 'header routes need their header');
is(via('/h', headers => ['X-Canary', 'yes']), 'B', 'header exact');
is(via('/h', headers => ['X-Canary', 'no']), 'A', 'header exact mismatch');
is(via('/h', headers => ['x-tier', 'gold-plus']), 'C', 'header prefix');
is(via('/h', headers => ['x-ver', 'v12']), 'B', 'header regex');
is(via('/h', headers => ['x-ver', 'v12x']), 'A', 'header regex is anchored');
is(via('/h', headers => ['X-Flag', '1']), 'C', 'header present');
is(via('/m'), 'A', 'GET does not match a POST/PUT route');
is(via('/m', method => 'POST', body => 'x'), 'B', 'POST matches methods');
is(via('/m', method => 'PUT', body => 'x'), 'B', 'PUT matches methods');
is(via('/first'), 'B', 'first matching route wins');

is(via('/only', host => 'api.example.com'), 'C', 'virtual host by exact Host');
is(via('/only', host => 'API.Example.COM'), 'C', 'Host match is case-insensitive');
is(via('/x', host => 'a.wild.test'), 'B', '*.suffix wildcard');
is(via('/x', host => 'a.b.wild.test'), 'B', '*.suffix wildcard, deeper');
is(via('/x', host => 'wild.test'), 'A', '*.suffix needs a label before the suffix');
is(via('/x', host => 'pre.anything.io'), 'C', 'prefix.* wildcard');
is(via('/x', host => 'other.example.org'), 'A', '"*" catches other hosts');

my $r = http_get($port, '/other', host => 'api.example.com');
is($r->{status}, 404, 'no route in the matched virtual host: 404');
is($r->{body}, '', '404 for no route has an empty body');
ok(wait_for(sub { (grep { m{"GET /other HTTP/1.1" 404 NR } } $wm->access_log_lines) ? 1 : 0 }, scale(5)),
	'access log shows 404 NR') or diag($wm->access_log);
ok($wm->stat('http.web.no_route') >= 1, 'http.web.no_route counted');

# Weighted 90/10 over 600 requests on keep-alive connections.
my %n = (A => 0, B => 0);
for my $conn (1 .. 12) {
	my $s = connect_port($port);
	send_bytes($s, join '', map { "GET /split/$_ HTTP/1.1\r\nHost: w\r\n\r\n" } 1 .. 50);
	for (1 .. 50) {
		my $resp = read_response($s) or last;
		$n{ substr($resp->{body}, 0, 1) }++;
	}
	close $s;
}
my $total = $n{A} + $n{B};
is($total, 600, 'all weighted requests answered');
my $fa = $total ? $n{A} / $total : 0;
ok($fa > 0.84 && $fa < 0.96, "weighted: a got $n{A}/$total (~90%)");
ok($n{B} > 0, "weighted: b got some ($n{B})");

ok($wm->alive, 'wingman still running');
done_testing;
