# Traffic policy, routing (issue 3): the canary header route, query-parameter
# matches (exact, regex, present) combined with paths, headers and methods,
# first match wins, and a 90/10 weighted split that stays within ±3% over 2000
# requests.
use strict;
use warnings;
use Test::More;
use Wingman;

my ($ng, $pa, $pb, $pc) = start_nginx_servers(map { "$_ \$request_uri" } qw(stable canary other));
ok(wait_for(sub { port_open($pb) && port_open($pc) }), 'nginx serves three backends');

my $wm = start_web(<<"EOF", workers => 2, access_log => 'access-101.log', log_format => '%RESPONSE_CODE% %ROUTE_NAME% %UPSTREAM_CLUSTER% %REQ(:PATH)%\n');
    routes:
      - name: canary
        match: { prefix: /, headers: { x-canary-test: { exact: "true" } } }
        route: { cluster: canary }
      - name: q-exact
        match: { prefix: /q, query_params: { v: { exact: "2" } } }
        route: { cluster: canary }
      - name: q-regex
        match: { prefix: /q, query_params: { ver: { regex: "[0-9]+" } } }
        route: { cluster: other }
      - name: q-present
        match: { prefix: /q, query_params: { debug: { present: true } } }
        route: { cluster: other }
      - name: q-both
        match:
          path: /both
          methods: [POST]
          headers: { x-team: { exact: "blue" } }
          query_params: { a: { exact: "1" }, b: { present: true } }
        route: { cluster: canary }
      - name: regex-path
        match: { regex: "/items/[0-9]+/edit", query_params: { mode: { exact: "full" } } }
        route: { cluster: other }
      - name: split
        match: { prefix: /split }
        route: { weighted: [{cluster: stable, weight: 90}, {cluster: canary, weight: 10}] }
      - name: split3
        match: { prefix: /three }
        route:
          weighted:
            - { cluster: stable, weight: 50 }
            - { cluster: canary, weight: 30 }
            - { cluster: other, weight: 20 }
      - name: stable
        match: { prefix: / }
        route: { cluster: stable }
clusters:
  - { name: stable, endpoints: [127.0.0.1:$pa] }
  - { name: canary, endpoints: [127.0.0.1:$pb] }
  - { name: other, endpoints: [127.0.0.1:$pc] }
EOF
my $port = $wm->port;

sub via {
	my ($path, %o) = @_;
	my $r = http_request($port, $o{method} // 'GET', $path, %o);
	return $r->{status} == 200 ? (split / /, $r->{body})[0] : $r->{status};
}

# The seed's canary: x-canary-test: "true" goes to the canary, anything else to stable.
is(via('/api/users'), 'stable', 'no canary header: stable');
is(via('/api/users', headers => ['x-canary-test', 'true']), 'canary', 'x-canary-test: true → canary');
is(via('/api/users', headers => ['X-Canary-Test', 'true']), 'canary', 'header names are case-insensitive');
is(via('/api/users', headers => ['x-canary-test', 'false']), 'stable', 'x-canary-test: false → stable');
is(via('/api/users', headers => ['x-canary-test', 'TRUE']), 'stable', 'exact match is case-sensitive on the value');
like($wm->log_line(qr{^200 canary canary /api/users$}), qr/canary/, 'access log names the canary route and cluster');

# Query parameters.
is(via('/q?v=2'), 'canary', 'query exact');
is(via('/q/deeper?x=1&v=2'), 'canary', 'query exact, second parameter');
is(via('/q?v=22'), 'stable', 'query exact does not match a longer value');
is(via('/q?v=1'), 'stable', 'query exact mismatch');
is(via('/q?vv=2'), 'stable', 'query names match exactly');
is(via('/q?V=2'), 'stable', 'query names are case-sensitive');
is(via('/q'), 'stable', 'no query string');
is(via('/q?ver=123'), 'other', 'query regex');
is(via('/q?ver=12a'), 'stable', 'query regex matches the whole value');
is(via('/q?ver=x123'), 'stable', 'query regex is anchored at the start');
is(via('/q?debug'), 'other', 'query present, no value');
is(via('/q?debug=0'), 'other', 'query present, with a value');
is(via('/q?x=debug'), 'stable', 'query present looks at names, not values');
is(via('/r?v=2'), 'stable', 'the route path still has to match');

# Everything in a match has to hold.
my @both = (method => 'POST', body => 'x', headers => ['x-team', 'blue']);
is(via('/both?a=1&b=', @both), 'canary', 'path + method + header + query params');
is(via('/both?b=2&a=1', @both), 'canary', 'query parameter order does not matter');
is(via('/both?a=1', @both), 'stable', 'one query parameter missing');
is(via('/both?a=1&b', method => 'POST', body => 'x'), 'stable', 'header missing');
is(via('/both?a=1&b', method => 'POST', body => 'x', headers => ['x-team', 'red']), 'stable', 'header differs');
is(via('/both?a=1&b', headers => ['x-team', 'blue']), 'stable', 'method differs');
is(via('/both/x?a=1&b', @both), 'stable', 'exact path differs');
is(via('/items/42/edit?mode=full'), 'other', 'regex path + query param');
is(via('/items/42/edit?mode=lite'), 'stable', 'regex path, query param differs');
is(via('/items/4x/edit?mode=full'), 'stable', 'regex path differs');
like($wm->log_line(qr{ /items/42/edit\?mode=full$}), qr/^200 regex-path other /, 'route name logged');

# The query string reaches the upstream untouched.
my $r = http_get($port, '/q?ver=7&z=a%20b');
is($r->{body}, 'other /q?ver=7&z=a%20b', 'query string forwarded as sent');

# Weighted 90/10: 2000 requests on 20 keep-alive connections, 100 pipelined each.
sub split_counts {
	my ($prefix, $conns, $per) = @_;
	my %n;
	for my $c (1 .. $conns) {
		my $s = connect_port($port);
		send_bytes($s, join '', map { "GET $prefix/$c/$_ HTTP/1.1\r\nHost: w\r\n\r\n" } 1 .. $per);
		for (1 .. $per) {
			my $resp = read_response($s) or last;
			$n{ (split / /, $resp->{body})[0] }++;
		}
		close $s;
	}
	return \%n;
}

my $n = split_counts('/split', 20, 100);
my $total = 0;
$total += $_ for values %$n;
is($total, 2000, 'all 2000 weighted requests answered');
my $share = $total ? ($n->{stable} // 0) / $total : 0;
ok($share >= 0.87 && $share <= 0.93, sprintf('90/10 split: stable got %.1f%% (%d/%d), within 90±3%%',
	100 * $share, $n->{stable} // 0, $total));
is(join(',', sort keys %$n), 'canary,stable', 'only the two weighted clusters answered');

$n = split_counts('/three', 10, 100);
$total = 0;
$total += $_ for values %$n;
my %want = (stable => 0.5, canary => 0.3, other => 0.2);
for my $c (sort keys %want) {
	my $f = $total ? ($n->{$c} // 0) / $total : 0;
	ok(abs($f - $want{$c}) <= 0.05, sprintf('50/30/20 split: %s got %.1f%%', $c, 100 * $f));
}

my $st = $wm->stats;
ok(($st->{'cluster.canary.upstream_rq_total'} // 0) >= 150, 'canary cluster counted its share');
ok($wm->alive, 'wingman still running');
done_testing;
