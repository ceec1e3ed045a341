# The admin endpoints: /ready, /stats (Envoy names, counts matching the traffic),
# /stats?filter=, /stats/prometheus, /clusters, /config_dump, /server_info,
# and GET on a mutating path → 405.
use strict;
use warnings;
use JSON::PP;
use Test::More;
use Wingman;

my $ng = start_nginx(q{
	location = /teapot { return 418 "short and stout\n"; }
	location = /missing { return 404 "nope\n"; }
	location / { return 200 "ok\n"; }
});
my $np = $ng->port;
my $wm = start_web(<<"EOF", workers => 2, listener => 'ingress', top => "node: { id: web-0, cluster: web.blog-system }\n");
    routes:
      - { name: all, match: { prefix: / }, route: { cluster: "outbound|80||web.blog.svc.cluster.local" } }
clusters:
  - name: "outbound|80||web.blog.svc.cluster.local"
    endpoints: [127.0.0.1:$np]
    connect_timeout: 1s
EOF
my ($port, $admin) = ($wm->port, $wm->admin_port);
my $c = 'outbound|80||web.blog.svc.cluster.local';

my ($code, $body) = admin_get($admin, '/ready');
is($code, 200, '/ready 200');
is($body =~ s/\s+$//r, 'LIVE', '/ready says LIVE');

http_get($port, '/') for 1 .. 7;
http_get($port, '/missing') for 1 .. 2;
http_get($port, '/teapot');

my $st;
ok(wait_for(sub {
	$st = $wm->stats;
	($st->{"cluster.$c.upstream_rq_total"} // 0) >= 10 && ($st->{'http.ingress.downstream_rq_total'} // 0) >= 10
}, scale(5)),
	'stats caught up');
is($st->{"cluster.$c.upstream_rq_total"}, 10, 'cluster.<c>.upstream_rq_total');
is($st->{"cluster.$c.upstream_rq_2xx"}, 7, 'upstream_rq_2xx');
is($st->{"cluster.$c.upstream_rq_4xx"}, 3, 'upstream_rq_4xx');
is($st->{"cluster.$c.upstream_rq_5xx"} // 0, 0, 'upstream_rq_5xx');
is($st->{"cluster.$c.upstream_rq_200"}, 7, 'upstream_rq_200');
is($st->{"cluster.$c.upstream_rq_404"}, 2, 'upstream_rq_404');
is($st->{"cluster.$c.upstream_rq_418"}, 1, 'upstream_rq_418');
ok(!exists $st->{"cluster.$c.upstream_rq_500"}, 'codes never seen are not listed');
ok(($st->{"cluster.$c.upstream_cx_total"} // 0) >= 1, 'upstream_cx_total');
ok(exists $st->{"cluster.$c.upstream_cx_active"}, 'upstream_cx_active listed');
is($st->{"cluster.$c.upstream_cx_connect_fail"}, 0, 'upstream_cx_connect_fail 0');
is($st->{'http.ingress.downstream_rq_total'}, 10, 'http.<listener>.downstream_rq_total');
is($st->{'http.ingress.downstream_rq_2xx'}, 7, 'http.<listener>.downstream_rq_2xx');
is($st->{'http.ingress.downstream_rq_4xx'}, 3, 'http.<listener>.downstream_rq_4xx');
ok(exists $st->{'http.ingress.downstream_cx_active'}, 'downstream_cx_active listed');
ok(($st->{'http.ingress.downstream_cx_total'} // 0) >= 10, 'downstream_cx_total');
ok(exists $st->{'server.config_reload'}, 'server.config_reload listed');
ok(exists $st->{'server.uptime'}, 'server.uptime listed');
is($st->{'server.concurrency'}, 2, 'server.concurrency is the worker count');

# Every line is "name: value"; histograms use Envoy's quantile summary.
my $raw = $wm->admin('/stats');
my @bad = grep { !/^[^\s:][^\s]*: (?:-?\d+(?:\.\d+)?|No recorded values|(?:P[\d.]+\([^)]*\) ?)+)$/ } split /\n/, $raw;
is(scalar(@bad), 0, 'every /stats line is "name: value"') or diag(join "\n", @bad[0 .. ($#bad > 5 ? 5 : $#bad)]);

# ?filter=REGEX
my $f = $wm->stats('upstream_rq_2');
ok(scalar(keys %$f) >= 2, '/stats?filter= returns matches');
is(scalar(grep { !/upstream_rq_2/ } keys %$f), 0, 'only matching names');
$f = $wm->stats('^http\.ingress\.downstream_rq_total$');
is_deeply([keys %$f], ['http.ingress.downstream_rq_total'], 'anchored filter regex');
($code) = admin_get($admin, '/stats?filter=(');
is($code, 400, 'a broken filter regex is a 400');
$f = $wm->stats('(?i)^HTTP\.ingress\.downstream_rq_\dxx$');
ok(exists $f->{'http.ingress.downstream_rq_2xx'} && !grep({ !/^http\.ingress\.downstream_rq_\dxx$/ } keys %$f),
   'filter is RE2, as Envoy reads it: (?i) and \d');
($code, $body) = admin_get($admin, '/stats?filter=(a)\\1');
is($code, 400, 'a backreference (not RE2) is a 400');

# Prometheus.
($code, $body) = admin_get($admin, '/stats/prometheus');
is($code, 200, '/stats/prometheus 200');
like($body, qr/^# TYPE envoy_cluster_upstream_rq_total counter$/m, '# TYPE line for a counter');
like($body, qr/^envoy_cluster_upstream_rq_total\{cluster_name="\Q$c\E"\} 10$/m, 'cluster_name label like Istio');
like($body, qr/^# TYPE envoy_cluster_upstream_cx_active gauge$/m, '# TYPE gauge');
like($body, qr/^envoy_http_ingress_downstream_rq_total 10$/m, 'http stats: a name prefix stays in the name (Istio)');
my @hist = $body =~ /^# TYPE (envoy_\w+) histogram$/mg;
ok(scalar(@hist) >= 1, 'request-duration histograms: ' . join(' ', @hist));
my ($h) = grep { /upstream_rq_time/ } @hist;
$h //= $hist[0] // 'envoy_cluster_upstream_rq_time';
like($body, qr/^${h}_bucket\{[^}]*le="[\d.]+"[^}]*\} \d+$/m, 'histogram buckets');
like($body, qr/^${h}_bucket\{cluster_name="\Q$c\E",le="\+Inf"\} 10$/m, '+Inf bucket counts every request');
like($body, qr/^${h}_count\{cluster_name="\Q$c\E"\} 10$/m, '_count');
like($body, qr/^${h}_sum\{cluster_name="\Q$c\E"\} [\d.e+]+$/m, '_sum');
my @les = map { $_ eq '+Inf' ? 9**9**9 : $_ } $body =~ /^${h}_bucket\{cluster_name="\Q$c\E",le="([^"]+)"\}/mg;
is_deeply(\@les, [sort { $a <=> $b } @les], 'buckets in ascending order');
my @counts = $body =~ /^${h}_bucket\{cluster_name="\Q$c\E",le="[^"]+"\} (\d+)$/mg;
is_deeply(\@counts, [sort { $a <=> $b } @counts], 'bucket counts are cumulative');
@bad = grep { !/^#/ && !/^[a-zA-Z_:][\w:]*(\{[^}]*\})? \S+$/ } grep { length } split /\n/, $body;
is(scalar(@bad), 0, 'every prometheus line is well-formed') or diag(join "\n", @bad[0 .. ($#bad > 5 ? 5 : $#bad)]);

# /clusters: Envoy's per-host text lines.
($code, $body) = admin_get($admin, '/clusters');
is($code, 200, '/clusters 200');
my $host = "\Q$c\E::127\.0\.0\.1:$np";
like($body, qr/^${host}::cx_active::\d+$/m, 'cx_active line');
like($body, qr/^${host}::rq_total::10$/m, 'rq_total line counts the requests');
like($body, qr/^${host}::rq_error::\d+$/m, 'rq_error line');
like($body, qr/^${host}::health_flags::healthy$/m, 'health_flags line');
like($body, qr/^${host}::weight::1$/m, 'weight line');

# /config_dump: the effective config in Envoy's v3 shape.
my $dump;
($dump, $code) = config_dump($admin);
is($code, 200, '/config_dump 200');
ok($dump, '/config_dump parses as JSON');
my $res = dump_resources($dump);
is($res->{listeners}{ingress}{address}{socket_address}{port_value}, $port, 'listener in the dump, with its port');
is($res->{routes}{ingress}{virtual_hosts}[0]{routes}[0]{route}{cluster}, $c, 'its route to the cluster');
my $eps = $res->{clusters}{$c}{load_assignment}{endpoints}[0]{lb_endpoints} // [];
is_deeply([map { $_->{endpoint}{address}{socket_address} } @$eps], [{ address => '127.0.0.1', port_value => $np }],
	  'cluster in the dump with its endpoint');

# /server_info
($code, $body) = admin_get($admin, '/server_info');
is($code, 200, '/server_info 200');
my $info = eval { decode_json($body) };
ok($info, '/server_info parses as JSON') or diag($@);
$info //= {};
like($info->{version} // '', qr/\d+\.\d+\.\d+/, 'version');
is($info->{state}, 'LIVE', 'state LIVE');
ok((grep { /uptime/ } keys %$info), 'uptime');
my $node = JSON::PP->new->canonical->encode($info->{node} // {});
like($node, qr/web-0/, 'node id');
like($node, qr/web\.blog-system/, 'node cluster');

# Mutating endpoints need POST; unknown paths are 404.
($code) = admin_get($admin, '/quitquitquit');
is($code, 405, 'GET /quitquitquit is 405');
ok($wm->alive, 'and wingman did not quit');
($code) = admin_get($admin, '/no-such-admin-path');
is($code, 404, 'unknown admin path is 404');
($code, $body) = admin_get($admin, '/ready');
is($code, 200, 'still LIVE');

done_testing;
