# conf/grafana/wingman.json against a real wingman: every metric its PromQL
# (panels and template variables) names appears in /stats/prometheus after
# traffic of several kinds (2xx, 5xx with retries, an outlier ejection, a
# circuit-breaker overflow, TCP), as python3-prometheus-client parses the
# scrape, with no series twice; and the panels the issue asks for are there
# (request rate, error rate, p50/p99 by destination, retries, ejections,
# overflows, CPU, memory) and see the traffic.
use strict;
use warnings;
use JSON::PP;
use Test::More;
use Wingman;

plan skip_all => 'python3-prometheus-client missing (bootstrap installs it)'
	unless system('/usr/bin/python3 -c "import prometheus_client" 2>/dev/null') == 0;

my $src = $ENV{WINGMAN_SRCDIR} // '.';
my $dash = eval { decode_json(slurp("$src/conf/grafana/wingman.json")) };
ok($dash, 'the dashboard is JSON') or diag($@);
is($dash->{uid}, 'wingman-sidecar', 'with a stable uid');

# The metric names a PromQL expression selects: what is left once strings,
# label matchers, ranges, grouping label lists and Grafana variables are cut
# out, and function names (an identifier before "(") and keywords set aside.
my %kw = map { $_ => 1 } qw(by without on ignoring group_left group_right bool and or unless offset);
sub metric_names {
	my ($e) = @_;
	$e =~ s/"(?:[^"\\]|\\.)*"//g;
	$e =~ s/\{[^}]*\}//g;
	$e =~ s/\[[^\]]*\]//g;
	$e =~ s/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)//g;
	$e =~ s/\$\w+//g;
	my @m;
	while ($e =~ /([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g) {
		push @m, $1 unless $2 || $kw{$1};
	}
	return @m;
}
is_deeply([metric_names('histogram_quantile(0.99, sum by (le, x) (rate(a_bucket{y=~"$v",z!="q{}"}[$__rate_interval])))'
			. ' / on (x) group_left b')], [qw(a_bucket b)], 'the extractor keeps metric names only');

my (%names, @exprs);
my @panels = @{ $dash->{panels} // [] };
while (my $p = shift @panels) {
	push @panels, @{ $p->{panels} // [] };
	push @exprs, map { $_->{expr} // () } @{ $p->{targets} // [] };
}
for my $v (@{ $dash->{templating}{list} // [] }) {
	my $q = ref $v->{query} ? $v->{query}{query} : $v->{query};
	$names{$1}++ if ($q // '') =~ /label_values\(\s*([a-zA-Z_:][\w:]*)\s*,/;
}
$names{$_}++ for map { metric_names($_) } @exprs;
ok(@exprs >= 20, scalar(@exprs) . ' queries, naming ' . scalar(keys %names) . ' metrics');
for (qw(istio_requests_total istio_request_duration_milliseconds_bucket envoy_cluster_upstream_rq_retry
	envoy_cluster_outlier_detection_ejections_enforced_total envoy_cluster_upstream_rq_pending_overflow
	process_cpu_seconds_total process_resident_memory_bytes envoy_server_memory_allocated)) {
	ok($names{$_}, "the dashboard queries $_");
}
ok(grep({ /histogram_quantile\(0\.5,.*istio_request_duration_milliseconds_bucket/s } @exprs)
   && grep({ /histogram_quantile\(0\.99,.*by \(le, destination_service\).*istio_request_duration_milliseconds_bucket/s } @exprs),
   'p50 and p99 by destination from the duration histogram');
ok(grep({ /response_code=~"5\.\."/ } @exprs), 'an error rate over the 5xx responses');

# ---- a real wingman and traffic of several kinds
my $ok = start_backend(mode => 'echo');
my $bad = start_backend(mode => '503');
my $slow = start_backend(mode => 'delay:0.5:echo');
my ($tcp, $echo) = (free_port(), free_port());
start_tcp_echo($echo, 'hi');
my $wm = start_web(<<"EOF", workers => 2, listener => 'ingress',
    routes:
      - { match: { prefix: /ok }, route: { cluster: ok } }
      - match: { prefix: /flaky }
        route: { cluster: flaky }
        retries: { attempts: 1, retry_on: "5xx" }
      - { match: { prefix: /slow }, route: { cluster: slow } }
  - { name: db, address: 127.0.0.1:$tcp, protocol: tcp, tcp_proxy: { cluster: echo } }
clusters:
  - { name: ok, endpoints: ["127.0.0.1:@{[ $ok->port ]}"] }
  - name: flaky
    endpoints: ["127.0.0.1:@{[ $bad->port ]}"]
    outlier_detection: { consecutive_5xx: 2, base_ejection_time: 60s, max_ejection_percent: 100 }
  - { name: slow, endpoints: ["127.0.0.1:@{[ $slow->port ]}"], connection_pool: { max_requests: 1 } }
  - { name: echo, endpoints: ["127.0.0.1:$echo"] }
EOF
	top => "node: { id: web-0, cluster: web.blog, workload: web, namespace: blog, service: web.blog.svc.cluster.local }\n"
	     . "istio_metrics: true\n");
my $port = $wm->port;
is(http_get($port, '/ok')->{status}, 200, '2xx') for 1 .. 5;
is(http_get($port, '/flaky')->{status}, 503, '5xx after a retry');
ok(wait_for(sub { $wm->stat('cluster.flaky.outlier_detection.ejections_active') == 1 }, scale(5)),
   'its two 503s eject the host');
is(http_get($port, '/flaky')->{status}, 503, 'then 503 UH');
my @r = http_parallel($port, [map { { path => "/slow/$_" } } 1 .. 3]);
is(scalar(grep { $_->{status} == 503 } @r), 2, 'three at once on max_requests 1: two overflow (UO)');
my $s = connect_port($tcp);
send_bytes($s, "ping\n");
close $s;
ok(wait_for(sub { my $st = $wm->stats;
		  ($st->{'http.ingress.downstream_rq_total'} // 0) >= 10 && ($st->{'cluster.echo.upstream_cx_total'} // 0) >= 1
		  && ($st->{'cluster.echo.upstream_cx_active'} // 1) == 0 }, scale(5)), 'traffic counted');

my $text = $wm->admin('/stats/prometheus');
my ($perr, $S, $T, $dups) = prom_parse($text);
ok(!defined $perr, 'python3-prometheus-client parses the scrape') or diag($perr);
is_deeply($dups, [], 'no series twice');
my %have = map { s/\{.*//sr => 1 } keys %$S;
for my $m (sort keys %names) {
	ok($have{$m}, "$m is in /stats/prometheus");
}

# The panels see the traffic.
sub total { my ($name, %l) = @_; my $t = 0; $t += $_->[1] for prom_find($S, $name, %l); return $t }
ok(total('istio_requests_total', response_code => '200') >= 5, 'request rate: the 2xx');
ok(total('istio_requests_total', response_code => '503') >= 4, 'error rate: the 5xx');
ok(total('istio_request_duration_milliseconds_bucket', le => '+Inf') >= 10, 'latency: every request in the histogram');
is(total('envoy_cluster_upstream_rq_retry', cluster_name => 'flaky'), 1, 'retries: the one retry');
is(total('envoy_cluster_outlier_detection_ejections_enforced_total', cluster_name => 'flaky'), 1, 'ejections: one');
is(total('envoy_cluster_upstream_rq_pending_overflow', cluster_name => 'slow'), 2, 'overflows: two');
ok(total('istio_tcp_connections_opened_total') >= 1, 'TCP: the connection');
ok(total('process_cpu_seconds_total') > 0, 'CPU seconds');
ok(total('process_resident_memory_bytes') > 1 << 20, 'RSS');
ok(total('envoy_server_memory_physical_size') > 1 << 20, 'envoy_server_memory_physical_size: RSS too');
is($T->{process_cpu_seconds_total}, 'counter', 'process_cpu_seconds_total is a counter');
done_testing();
