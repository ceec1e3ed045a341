# /stats/prometheus names Envoy's stats as an Istio sidecar does on 15090:
# the tag extraction of Istio's bootstrap (stats_tags in istio/istio
# tools/packaging/common/envoy_bootstrap.json). After traffic of every kind
# (2xx, 5xx, UF, UO, NR, RBAC 403, HTTP/2, TLS, TCP, gRPC OK and UNAVAILABLE)
# the whole scrape, Istio's own families included, is read by
# python3-prometheus-client's parser: it parses, no series appears twice, and
# the series dashboards query carry the values the traffic made, under
# Istio's names and labels (grpc_response_status, response_flags="UO" …);
# also as summaries (?histogram_buckets=summary).
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
my ($port, $tport, $tcp, $admin, $dead, $cbp, $gport) = map { free_port() } 1 .. 7;
my $slow = start_backend(mode => 'delay:0.5:echo');
my $grpc = have_grpc_node() ? start_grpc_server() : undef;
my $gp = $grpc // free_port();
my $wm = start_wingman(<<"EOF");
workers: 2
node: { id: web-0, cluster: web.blog, workload: web, namespace: blog, service: web.blog.svc.cluster.local }
admin: { address: 127.0.0.1:$admin }
access_log: { path: off }
istio_metrics: true
rbac:
  - name: api-only
    action: ALLOW
    rules: [{ to: [{ operation: { paths: ["/api/*", "/uf", "/nr/*", "/wingman.test.Echo/*"] } }] }]
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
  - name: breaker
    address: 127.0.0.1:$cbp
    routes: [{ match: { prefix: /api }, route: { cluster: slow } }]
  - name: grpc
    address: 127.0.0.1:$gport
    routes: [{ match: { prefix: / }, route: { cluster: grpc } }]
clusters:
  - { name: web, endpoints: [127.0.0.1:$np] }
  - { name: dead, endpoints: [127.0.0.1:$dead], connect_timeout: 1s }
  - { name: slow, endpoints: ["127.0.0.1:@{[ $slow->port ]}"], connection_pool: { max_requests: 1 } }
  - { name: grpc, protocol: http2, endpoints: [127.0.0.1:$gp] }
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
# UO: max_requests 1 and three at once on a slow host: two overflow.
my @cb = http_parallel($cbp, [map { { path => "/api/slow$_" } } 1 .. 3]);
is(scalar(grep { $_->{status} == 503 && ($_->{headers}{'x-envoy-overloaded'} // '') eq 'true' } @cb), 2,
   'two requests overflow the circuit breaker (503 UO)');
# gRPC: one OK, one trailers-only UNAVAILABLE (HTTP 200 both).
my $ngrpc = 0;
if ($grpc) {
	is(grpc_call($gport, 'Unary', { text => 'ok' })->{code}, 0, 'gRPC OK');
	is(grpc_call($gport, 'Unary', { text => 'u', mode => 'unavailable' })->{code}, 14, 'gRPC UNAVAILABLE');
	$ngrpc = 2;
}
ok(wait_for(sub { my $st = $wm->stats;
		  ($st->{'cluster.web.upstream_rq_total'} // 0) >= 8 && ($st->{'tcp.mysql.downstream_cx_total'} // 0) >= 1
		  && ($st->{'http.breaker.downstream_rq_total'} // 0) >= 3 && ($st->{'http.grpc.downstream_rq_total'} // 0) >= $ngrpc },
	    scale(5)), 'traffic counted');

my $text = $wm->admin('/stats/prometheus');
my ($perr, $S, $T, $dups) = prom_parse($text);
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

# UO, in Envoy's and Istio's names.
is(sample('envoy_cluster_upstream_rq_pending_overflow{cluster_name="slow"}'), 2,
   'upstream_rq_pending_overflow → envoy_cluster_upstream_rq_pending_overflow{cluster_name}');
ok(defined sample('envoy_cluster_circuit_breakers_default_rq_open{cluster_name="slow"}'),
   'circuit_breakers.default.rq_open → envoy_cluster_circuit_breakers_default_rq_open{cluster_name}');
is(sample('envoy_http_breaker_downstream_rq{response_code_class="5xx"}'), 2, 'the overflows are the listener\'s 5xx');
my @uo = prom_find($S, 'istio_requests_total', response_flags => 'UO', response_code => '503');
is(scalar(@uo), 1, 'one istio_requests_total series with response_flags="UO", response_code="503"');
is($uo[0][1], 2, '  counting both overflows');
is($uo[0][0]{destination_service}, 'web.blog.svc.cluster.local', '  to this workload\'s service (node.service)');
is($uo[0][0]{request_protocol}, 'http', '  request_protocol http');
is($uo[0][0]{grpc_response_status}, '', '  grpc_response_status empty for plain HTTP, as Istio');
is((prom_find($S, 'istio_request_duration_milliseconds_count', response_flags => 'UO'))[0][1], 2,
   '  and the duration histogram');

# gRPC: request_protocol="grpc" and the final grpc-status.
SKIP: {
	skip 'node modules missing: run ./bootstrap (npm ci --prefix t/node)', 7 unless $grpc;
	my @ok = prom_find($S, 'istio_requests_total', request_protocol => 'grpc', grpc_response_status => '0');
	is(scalar(@ok), 1, 'istio_requests_total{request_protocol="grpc",grpc_response_status="0"}');
	is($ok[0][1], 1, '  one call');
	is($ok[0][0]{response_code}, '200', '  HTTP 200');
	my @un = prom_find($S, 'istio_requests_total', request_protocol => 'grpc', grpc_response_status => '14');
	is(scalar(@un) && $un[0][1], 1, 'the trailers-only UNAVAILABLE: grpc_response_status="14"');
	is($un[0][0]{response_code}, '200', '  still HTTP 200');
	is(sample('envoy_cluster_grpc_0{cluster_name="grpc"}'), 1, 'grpc.0 → envoy_cluster_grpc_0{cluster_name}');
	is(sample('envoy_cluster_grpc_14{cluster_name="grpc"}'), 1, 'grpc.14 → envoy_cluster_grpc_14{cluster_name}');
}

my @old = grep { /_xx\{|envoy_tcp_prefix=|http_conn_manager_prefix="ingress"/ } keys %$S;
is_deeply(\@old, [], "none of the shapes Istio does not make");

# ?filter= is searched in the Envoy name, then the match is named as above.
($perr, $S) = prom_parse(scalar $wm->admin('/stats/prometheus?filter=%5Ecluster%5C.web%5C.upstream_rq_2xx%24'));
is_deeply($S, { 'envoy_cluster_upstream_rq{cluster_name="web",response_code_class="2xx"}' => 6 },
	'a filter on cluster.web.upstream_rq_2xx gives that one series');

# ?histogram_buckets=summary: every histogram, Istio's too, a summary the parser reads.
my $sum_text = $wm->admin('/stats/prometheus?histogram_buckets=summary');
($perr, $S, $T, $dups) = prom_parse($sum_text);
ok(!defined $perr, 'the summary scrape parses') or diag($perr);
is_deeply($dups, [], '  no series twice');
is($T->{envoy_cluster_upstream_rq_time}, 'summary', '  envoy_cluster_upstream_rq_time is a summary');
is($T->{istio_request_duration_milliseconds}, 'summary', '  and istio_request_duration_milliseconds');
is(sample('envoy_cluster_upstream_rq_time_count{cluster_name="web"}'), 8, '  with its _count');
ok(defined sample('envoy_cluster_upstream_rq_time{cluster_name="web",quantile="0.99"}'), '  and quantiles');
ok(!grep({ /_bucket\{/ } keys %$S), '  and no buckets');

done_testing();
