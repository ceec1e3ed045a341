# /stats/prometheus names Envoy's stats as an Istio sidecar does on 15090:
# the tag extraction of Istio's bootstrap (stats_tags in istio/istio
# tools/packaging/common/envoy_bootstrap.json). After traffic of every kind
# (2xx, 5xx, UF, NR, RBAC 403, HTTP/2, TLS, TCP) the whole scrape, Istio's own
# families included, is read by python3-prometheus-client's parser: it parses,
# no series appears twice, and the series dashboards query carry the values
# the traffic made, under Istio's names and labels.
use strict;
use warnings;
use IO::Socket::INET;
use Test::More;
use Wingman;

plan skip_all => 'python3-prometheus-client missing (bootstrap installs it)'
	unless system('/usr/bin/python3 -c "import prometheus_client" 2>/dev/null') == 0;

my $ng = start_nginx(q{
	location = /api/fail { return 503 "down\n"; }
	location / { return 200 "ok\n"; }
});
my $np = $ng->port;
my $c = test_certs();
my ($port, $tport, $tcp, $admin, $dead) = map { free_port() } 1 .. 5;
my $wm = start_wingman(<<"EOF");
workers: 2
node: { id: web-0, cluster: web.blog, workload: web, namespace: blog, service: web.blog.svc.cluster.local }
admin: { address: 127.0.0.1:$admin }
access_log: { path: off }
istio_metrics: true
rbac:
  - name: api-only
    action: ALLOW
    rules: [{ to: [{ operation: { paths: ["/api/*", "/uf", "/nr/*"] } }] }]
listeners:
  - name: ingress
    address: 127.0.0.1:$port
    routes:
      - { match: { prefix: /uf }, route: { cluster: dead } }
      - { match: { prefix: /api }, route: { cluster: web } }
      - { match: { prefix: /secret }, route: { cluster: web } }
  - name: secure
    address: 127.0.0.1:$tport
    tls: { mode: SIMPLE, cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes: [{ match: { prefix: / }, route: { cluster: web } }]
  - { name: db, address: 127.0.0.1:$tcp, protocol: tcp, tcp_proxy: { stat_prefix: mysql, cluster: web } }
clusters:
  - { name: web, endpoints: [127.0.0.1:$np] }
  - { name: dead, endpoints: [127.0.0.1:$dead], connect_timeout: 1s }
EOF

http_get($port, '/api/x') for 1 .. 4;				# 200
http_get($port, '/api/fail') for 1 .. 2;			# 503 from nginx
http_get($port, '/uf');						# 503 UF
http_get($port, '/nr/x');					# 404 NR
http_get($port, '/secret');					# 403 RBAC
curl('-s', '-o', '/dev/null', '--http2-prior-knowledge', "http://127.0.0.1:$port/api/h2");	# 200 over HTTP/2
curl('-sk', '-o', '/dev/null', "https://127.0.0.1:$tport/api/tls");				# 200 over TLS
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $tcp, Timeout => 5) or die "connect: $!";
print $s "GET / HTTP/1.0\r\n\r\n";
1 while <$s>;
close $s;
ok(wait_for(sub { ($wm->stats->{'cluster.web.upstream_rq_total'} // 0) >= 8
		  && ($wm->stats->{'tcp.mysql.downstream_cx_total'} // 0) >= 1 }, scale(5)), 'traffic counted');

# Parses Prometheus text with the real client library; returns the samples as
# { "name{k="v",...}" (labels sorted) => value }, the family types, and the
# series seen more than once.
sub parse_prom {
	my ($text) = @_;
	my $py = <<'PY';
import re, sys
from prometheus_client.parser import text_string_to_metric_families
text = sys.stdin.read()
# The client renames a counter's samples to <family>_total (OpenMetrics);
# the text's own names come back from its # TYPE lines, which the families follow.
declared = re.findall(r"^# TYPE (\S+) ", text, re.M)
seen = set()
for fam, name in zip(text_string_to_metric_families(text), declared):
    print("T\t%s\t%s" % (name, fam.type))
    for s in fam.samples:
        sname = s.name
        if fam.type == "counter" and sname == fam.name + "_total":
            sname = name
        key = sname + "{" + ",".join('%s="%s"' % kv for kv in sorted(s.labels.items())) + "}"
        if key in seen:
            print("D\t" + key)
        seen.add(key)
        print("S\t%s\t%r" % (key, s.value))
PY
	my $dir = tmpdir();
	spew("$dir/prom.txt", $text);
	spew("$dir/parse.py", $py);
	my $out = `/usr/bin/python3 $dir/parse.py < $dir/prom.txt 2>&1`;
	my (%samples, %types, @dups);
	for (split /\n/, $out) {
		my ($k, @f) = split /\t/;
		if ($k eq 'S') { $samples{ $f[0] } = $f[1] + 0 }
		elsif ($k eq 'T') { $types{ $f[0] } = $f[1] }
		elsif ($k eq 'D') { push @dups, $f[0] }
	}
	return ($? == 0 ? undef : $out, \%samples, \%types, \@dups);
}

my $text = $wm->admin('/stats/prometheus');
my ($perr, $S, $T, $dups) = parse_prom($text);
ok(!defined $perr, 'python3-prometheus-client parses the whole scrape') or diag($perr);
is_deeply($dups, [], 'no series twice');
ok(scalar(keys %$S) > 100, scalar(keys %$S) . ' samples');

# A sample by name and labels ("{}" appended when it has none).
sub sample { my ($k) = @_; $k .= '{}' unless $k =~ /\}$/; return $S->{$k} }
is(sample('envoy_cluster_upstream_rq{cluster_name="web",response_code_class="2xx"}'), 6,
	'upstream_rq_2xx → envoy_cluster_upstream_rq{response_code_class="2xx",cluster_name}');
is(sample('envoy_cluster_upstream_rq{cluster_name="web",response_code_class="5xx"}'), 2, '5xx class');
is(sample('envoy_cluster_upstream_rq{cluster_name="web",response_code="200"}'), 6,
	'upstream_rq_200 → envoy_cluster_upstream_rq{response_code="200",cluster_name}');
is(sample('envoy_cluster_upstream_rq{cluster_name="web",response_code="503"}'), 2, 'response_code 503');
is(sample('envoy_cluster_upstream_rq_total{cluster_name="web"}'), 8, 'upstream_rq_total');
is(sample('envoy_cluster_upstream_cx_connect_fail{cluster_name="dead"}'), 1, 'connect_fail of the dead cluster');
is(sample('envoy_cluster_upstream_rq_time_count{cluster_name="web"}'), 8, 'upstream_rq_time histogram count');
ok(defined sample('envoy_cluster_upstream_rq_time_bucket{cluster_name="web",le="+Inf"}'), 'and its +Inf bucket');
is($T->{envoy_cluster_upstream_rq_time}, 'histogram', 'histogram family type');
is($T->{envoy_cluster_upstream_rq}, 'counter', 'code family type');

# http.<prefix>.*: Istio's rule takes only address-like prefixes, so a name stays in the metric.
is(sample('envoy_http_ingress_downstream_rq{response_code_class="2xx"}'), 5, 'http.ingress.downstream_rq_2xx');
is(sample('envoy_http_ingress_downstream_rq{response_code_class="4xx"}'), 2, 'NR 404 and RBAC 403 are 4xx');
is(sample('envoy_http_ingress_downstream_rq{response_code_class="5xx"}'), 3, '5xx and UF');
is(sample('envoy_http_ingress_no_route'), 1, 'no_route');
is(sample('envoy_http_ingress_rbac{authz_enforce_result="denied"}'), 1, 'rbac.denied → authz_enforce_result');
is(sample('envoy_http_ingress_rbac{authz_enforce_result="allowed"}'), 8, 'rbac.allowed');
is(sample('envoy_http_ingress_downstream_cx_http2_total'), 1, 'downstream_cx_http2_total');
is(sample('envoy_http_secure_downstream_rq_total'), 1, 'the TLS listener');
# (start_wingman's readiness probe is a connection too)
ok(sample("envoy_listener_downstream_cx_total{listener_address=\"127.0.0.1_$tport\"}") >= 1,
	'listener.<address>.* → listener_address');
is(sample("envoy_listener_ssl_handshake{listener_address=\"127.0.0.1_$tport\"}"), 1, 'ssl.handshake');
ok(sample('envoy_tcp_downstream_cx_total{tcp_prefix="mysql"}') >= 1, 'tcp.<stat_prefix>.* → tcp_prefix');
ok(sample('envoy_tcp_downstream_cx_tx_bytes_total{tcp_prefix="mysql"}') > 0, 'and its bytes');
ok(sample('envoy_server_uptime') >= 0, 'server.uptime unlabelled');
ok(defined sample('envoy_server_concurrency'), 'server.concurrency');
ok((grep { /^istio_requests_total\{/ } keys %$S) >= 1, "Istio's own families in the same scrape");

my @old = grep { /_xx\{|envoy_tcp_prefix=|http_conn_manager_prefix="ingress"/ } keys %$S;
is_deeply(\@old, [], "none of the shapes Istio does not make");

# ?filter= is searched in the Envoy name, then the match is named as above.
($perr, $S) = parse_prom(scalar $wm->admin('/stats/prometheus?filter=%5Ecluster%5C.web%5C.upstream_rq_2xx%24'));
is_deeply($S, { 'envoy_cluster_upstream_rq{cluster_name="web",response_code_class="2xx"}' => 6 },
	'a filter on cluster.web.upstream_rq_2xx gives that one series');

done_testing();
