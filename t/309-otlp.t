# OpenTelemetry tracing: spans exported as OTLP/HTTP protobuf to a collector
# that decodes them with the official OpenTelemetry protobuf definitions
# (t/node/otlp-collector.js, @opentelemetry/otlp-transformer). Two wingman
# hops, the first configured natively (Envoy's OpenTelemetryConfig), the
# second from Istio's mesh.extensionProviders opentelemetry + Telemetry,
# report one trace with parent/child ids; B3 and traceparent propagate as
# with Zipkin; Envoy's tags and Istio's are attributes; 5xx (and a CLIENT
# span's 4xx) have status ERROR; strings arrive as valid UTF-8.
use strict;
use warnings;
use JSON::PP;
use Test::More;
use Wingman;

plan skip_all => 'node not found (./bootstrap deps installs it)' unless have_prog('node');

my $col = start_otlp_collector();
my $cport = $col->{port};
sub reports { $col->{reports}->() }
sub spans_of {
	my ($r) = @_;
	return map { @{ $_->{spans} // [] } } map { @{ $_->{scopeSpans} // [] } } @{ $r->{request}{resourceSpans} // [] };
}
sub all_spans { map { spans_of($_) } reports() }
sub attrs { my ($s) = @_; return { map { $_->{key} => $_->{value}{stringValue} } @{ $s->{attributes} // [] } } }
sub service_of {
	my ($r) = @_;
	my ($rs) = @{ $r->{request}{resourceSpans} // [] };
	my ($a) = grep { $_->{key} eq 'service.name' } @{ $rs->{resource}{attributes} // [] };
	return $a && $a->{value}{stringValue};
}

# The application behind hop 2 echoes the headers it got.
my $app = start_backend(handler => sub {
	my ($req) = @_;
	return make_response('200 OK', encode_json($req->{headers}), 'content-type', 'application/json');
});
my $aport = $app->port;
my ($p1, $p2, $a1, $a2, $dead) = map { free_port() } 1 .. 5;

# Hop 2: tracing from Istio's resources, the collector an IP (the tracer's own address).
my $dir = tmpdir() . '/mesh';
mkdir $dir;
mkdir "$dir/telemetry";
spew("$dir/telemetry/telemetry.yaml", "{ apiVersion: telemetry.istio.io/v1, kind: Telemetry,\n"
	. "  metadata: { name: mesh-default, namespace: istio-system },\n"
	. "  spec: { tracing: [{ providers: [{ name: otel }], randomSamplingPercentage: 100 }] } }\n");
my $hop2_conf = <<"EOF";
workers: 1
node: { id: was-1, cluster: was.blog, workload: was, namespace: blog, version: v2, mesh_id: mesh-1 }
admin: { address: 127.0.0.1:$a2 }
access_log: { path: off }
mesh:
  resources: [$dir/telemetry/]
  namespace: blog
  workload: { labels: { app: was } }
  intercept: false
  extensionProviders:
    - name: otel
      opentelemetry: { service: 127.0.0.1, port: $cport, http: { path: /v1/traces, timeout: 2s } }
listeners:
  - name: inbound
    address: 127.0.0.1:$p2
    direction: inbound
    routes: [ { match: { prefix: / }, route: { cluster: app } } ]
clusters: [ { name: app, endpoints: [127.0.0.1:$aport] } ]
EOF
spew("$dir/hop2.yaml", $hop2_conf);
my $bin = wingman_bin();
my $show = `$bin config show -c $dir/hop2.yaml 2>&1`;
like($show, qr{tracing:\n\s+opentelemetry:\n\s+http_service:\n\s+http_uri:\n\s+uri: "?http://127\.0\.0\.1:$cport/v1/traces"?\n\s+timeout: 2s\n(?s:.*?)\s+sampling: 100},
	'Istio opentelemetry provider (an IP) + Telemetry: tracing.opentelemetry, uri, timeout, sampling');
my $hop2 = start_wingman($hop2_conf);

# Hop 1: native, Envoy's field names.
my $hop1 = start_wingman(<<"EOF");
workers: 1
node: { id: web-1, cluster: web.blog }
admin: { address: 127.0.0.1:$a1 }
access_log: { path: off }
tracing:
  opentelemetry:
    service_name: web-frontend
    sampling: 100.0
    flush_interval: 100ms
    min_flush_spans: 2
    max_queue: 10000
    http_service:
      http_uri: { uri: "http://127.0.0.1:$cport/v1/traces", timeout: 3s }
      request_headers_to_add:
        - header: { key: X-Tenant, value: blog }
        - header: { key: authorization, value: "Bearer t0k3n" }
listeners:
  - name: outbound
    address: 127.0.0.1:$p1
    direction: outbound
    routes: [ { name: to-dead, match: { prefix: /dead }, route: { cluster: dead } },
              { match: { prefix: /items }, route: { cluster: was } } ]
clusters: [ { name: was, endpoints: [127.0.0.1:$p2] }, { name: dead, endpoints: [127.0.0.1:$dead] } ]
EOF

my @seen = traced_requests($p1, 3, 'otel-test/1.0');
ok(wait_for(sub { scalar(all_spans()) >= 6 }, scale(5)), 'six spans reported');
my @reports = reports();
is(scalar(grep { $_->{error} } @reports), 0, 'every report decodes as an ExportTraceServiceRequest');
is(scalar(grep { !$_->{canonical} } @reports), 0,
	'every report re-encodes to the same bytes (valid UTF-8 strings, standard encoding)');
for my $r (@reports) {
	is("$r->{method} $r->{path} $r->{headers}{'content-type'}", 'POST /v1/traces application/x-protobuf',
		'report: POST application/x-protobuf to /v1/traces');
	like($r->{headers}{'user-agent'}, qr{^OTel-OTLP-Exporter-wingman/\d}, 'report: the OTLP exporter User-Agent');
	is($r->{headers}{host}, "127.0.0.1:$cport", "report: Host is the uri's");
}
my @hop1_reports = grep { ($_->{headers}{'x-tenant'} // '') eq 'blog' } @reports;
ok(@hop1_reports >= 1, 'hop 1: request_headers_to_add on its reports');
is(scalar(grep { ($_->{headers}{authorization} // '') ne 'Bearer t0k3n' } @hop1_reports), 0,
	'hop 1: every added header');
is(service_of($hop1_reports[0]), 'web-frontend', 'hop 1: resource service.name = service_name');
my ($hop2_report) = grep { !defined $_->{headers}{'x-tenant'} } @reports;
is(service_of($hop2_report), 'was.blog', 'hop 2: resource service.name = node.cluster (as Istio sets it)');

my @spans = all_spans();
is(scalar @spans, 6, 'exactly one span per hop per request');
# What makes a span well-formed here, and why one is not.
sub span_faults {
	my ($s) = @_;
	my %f = (
		traceId => ($s->{traceId} // '') =~ /^[0-9a-f]{32}$/ && $s->{traceId} !~ /^0+$/,
		spanId => ($s->{spanId} // '') =~ /^[0-9a-f]{16}$/,
		parentSpanId => !exists $s->{parentSpanId} || $s->{parentSpanId} =~ /^[0-9a-f]{16}$/,
		kind => ($s->{kind} // '') =~ /^SPAN_KIND_(SERVER|CLIENT)$/,
		start => ($s->{startTimeUnixNano} // 0) > 1.5e18,
		end => ($s->{endTimeUnixNano} // 0) >= ($s->{startTimeUnixNano} // 1e30),
		'no status' => !exists $s->{status},
	);
	return grep { !$f{$_} } sort keys %f;
}
my @faulty = grep { span_faults($_) } @spans;
is(scalar @faulty, 0, 'every span: 16-byte trace id, 8-byte ids, kind, times in ns, no status on 200')
	or diag(join "\n", map { join(' ', span_faults($_)) . ': ' . encode_json($_) } @faulty);

# Per request, the trace the application saw (x-b3-traceid): hop 1's CLIENT
# span the root, hop 2's SERVER span its child, whose ids went upstream.
is(scalar(keys %{ { map { $_->{traceId} => 1 } @spans } }), 3, 'three traces');
for my $i (0 .. 2) {
	my $h = $seen[$i];
	my %in = map { $_->{kind} => $_ } grep { $_->{traceId} eq ($h->{'x-b3-traceid'} // '') } @spans;
	my ($client, $server) = @in{qw(SPAN_KIND_CLIENT SPAN_KIND_SERVER)};
	ok($client && $server, "request $i: a CLIENT and a SERVER span in its trace");
	next unless $client && $server;
	is(join(' ', $client->{parentSpanId} // 'root', $server->{parentSpanId}, $h->{'x-b3-spanid'}, $h->{traceparent}),
		join(' ', 'root', $client->{spanId}, $server->{spanId}, "00-$client->{traceId}-$server->{spanId}-01"),
		"request $i: CLIENT the root, SERVER its child, its ids in x-b3-spanid and traceparent upstream");
	is("$client->{name} $server->{name}", 'was.blog.svc.cluster.local:8080/* was.blog.svc.cluster.local:8080/*',
		'span name host:port/* on both hops');
	my %ca = %{ attrs($client) };
	is($ca{'http.method'}, 'GET', 'attribute http.method');
	is($ca{'http.url'}, 'http://was.blog.svc.cluster.local:8080/items/' . ($i + 1) . '?x=1', 'attribute http.url');
	is($ca{'http.status_code'}, '200', 'attribute http.status_code');
	is($ca{'http.protocol'}, 'HTTP/1.1', 'attribute http.protocol');
	is($ca{upstream_cluster}, 'was', 'attribute upstream_cluster');
	is($ca{'upstream_cluster.name'}, 'was', 'attribute upstream_cluster.name');
	is($ca{response_flags}, '-', 'attribute response_flags');
	is($ca{node_id}, 'web-1', 'attribute node_id');
	is($ca{component}, 'proxy', 'attribute component');
	is($ca{'peer.address'}, '127.0.0.1', 'attribute peer.address');
	is($ca{user_agent}, 'otel-test/1.0', 'attribute user_agent');
	is($ca{downstream_cluster}, 'web.blog', 'attribute downstream_cluster');
	is($ca{'guid:x-request-id'}, $h->{'x-request-id'}, 'attribute guid:x-request-id: the propagated x-request-id');
	ok(!exists $ca{error}, 'no error attribute on 200');
	ok(!grep({ /^istio\./ } keys %ca), 'a node without workload or namespace: no istio.* attributes');
	my %sa = %{ attrs($server) };
	is($sa{'istio.canonical_service'}, 'was', 'hop 2: istio.canonical_service');
	is($sa{'istio.canonical_revision'}, 'v2', 'hop 2: istio.canonical_revision');
	is($sa{'istio.namespace'}, 'blog', 'hop 2: istio.namespace');
	is($sa{'istio.mesh_id'}, 'mesh-1', 'hop 2: istio.mesh_id');
	is($sa{node_id}, 'was-1', 'hop 2: node_id');
}
is($hop1->stat('tracing.opentelemetry.spans_sent'), 3, 'hop 1: tracing.opentelemetry.spans_sent');
cmp_ok($hop1->stat('tracing.opentelemetry.http_reports_sent'), '>=', 2, 'hop 1: http_reports_sent');
is($hop1->stat('tracing.opentelemetry.http_reports_success'), $hop1->stat('tracing.opentelemetry.http_reports_sent'),
	'hop 1: every report a success');
is($hop1->stat('tracing.opentelemetry.http_reports_failed'), 0, 'hop 1: http_reports_failed 0');
is($hop1->stat('tracing.opentelemetry.spans_dropped'), 0, 'hop 1: nothing dropped');
is($hop1->stat('tracing.zipkin.spans_sent'), 0, 'hop 1: the Zipkin tracer is not the one configured');

# Status: ERROR on a 5xx (and the error attribute), on a CLIENT span's 4xx,
# not on a SERVER span's 4xx.
my $before = scalar(all_spans());
is(http_get($p1, '/dead')->{status}, 503, 'dead upstream: 503');
is(http_get($p1, '/nowhere')->{status}, 404, 'hop 1, no route: 404');
is(http_get($p2, '/', headers => ['x-b3-sampled', '1'])->{status}, 200, 'hop 2 direct');
ok(wait_for(sub { scalar(all_spans()) >= $before + 3 }, scale(5)), 'their spans reported');
my ($e) = grep { $_->{name} eq 'to-dead' } all_spans();
is($e && $e->{status}{code}, 'STATUS_CODE_ERROR', '503: status ERROR');
is($e && attrs($e)->{error}, 'true', '503: error attribute');
is($e && attrs($e)->{response_flags}, 'UF', '503: response_flags UF');
my ($nr) = grep { (attrs($_)->{response_flags} // '') eq 'NR' } all_spans();
is($nr && $nr->{kind}, 'SPAN_KIND_CLIENT', 'no route on the outbound listener: a CLIENT span');
is($nr && $nr->{status}{code}, 'STATUS_CODE_ERROR', "a CLIENT span's 404: status ERROR");
ok($nr && !exists attrs($nr)->{error}, "... but no error attribute (Envoy's is for 5xx)");

my $nrtid = '5b8aa5a2d2c872e8321cf37308d69df2';
# A wingman with one inbound listener to the application (routes under
# prefix), traced by opentelemetry settings $otel (flow-style YAML keys).
sub start_traced {
	my ($otel, $prefix) = @_;
	my ($p, $a) = (free_port(), free_port());
	my $w = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$a }
access_log: { path: off }
tracing: { opentelemetry: { $otel } }
listeners:
  - { name: in, address: 127.0.0.1:$p, direction: inbound, routes: [ { match: { prefix: $prefix }, route: { cluster: app } } ] }
clusters: [ { name: app, endpoints: [127.0.0.1:$aport] } ]
EOF
	return ($w, $p);
}

my ($hop3, $p3) = start_traced(qq{http_service: { http_uri: { uri: "http://127.0.0.1:$cport" } },
                            flush_interval: 50ms, min_flush_spans: 100}, '/api');
is(http_get($p3, '/nowhere', headers => ['traceparent', "00-$nrtid-00f067aa0ba902b7-01"])->{status}, 404,
	'inbound, no route: 404');
ok(wait_for(sub { grep { $_->{traceId} eq $nrtid } all_spans() }, scale(5)),
	'a uri without a path posts to /v1/traces; the timer flushes below min_flush_spans');
my ($s404) = grep { $_->{traceId} eq $nrtid } all_spans();
is($s404 && $s404->{kind}, 'SPAN_KIND_SERVER', 'inbound: a SERVER span');
ok($s404 && !exists $s404->{status}, "a SERVER span's 404: no status");
is($s404 && $s404->{parentSpanId}, '00f067aa0ba902b7', "traceparent in: the caller's span is the parent");
is($s404 && $s404->{name}, "127.0.0.1:$p3/*", 'span name host:port/* from the listener');
is((grep { $_->{path} ne '/v1/traces' } reports()), 0, 'every report to /v1/traces');
cmp_ok($hop3->stat('tracing.opentelemetry.timer_flushed'), '>=', 1, 'timer_flushed');

# Incoming context: B3 single and multi continue the trace, as with Zipkin.
my $tid = '463ac35c9f6413ad48485a3953bb6124';
my $h = decode_json(http_get($p2, '/', headers => ['b3', "$tid-0020000000000001-1"])->{body});
is($h->{'x-b3-traceid'}, $tid, 'b3 single: trace continued');
is($h->{traceparent}, "00-$tid-$h->{'x-b3-spanid'}-01", 'b3 single: traceparent with our span');
$h = decode_json(http_get($p2, '/', headers => ['x-b3-traceid', 'a0000000000000b1', 'x-b3-spanid', '00000000000000c1',
	'x-b3-sampled', '1'])->{body});
is($h->{'x-b3-traceid'}, 'a0000000000000b1', 'x-b3-*: a 64-bit trace id continued');
ok(wait_for(sub { grep { $_->{traceId} eq '0000000000000000a0000000000000b1' } all_spans() }, scale(5)),
	'x-b3-*: its span has the 64-bit id in 16 bytes');
my ($s64) = grep { $_->{traceId} eq '0000000000000000a0000000000000b1' } all_spans();
is($s64 && $s64->{parentSpanId}, '00000000000000c1', "x-b3-*: the caller's span is the parent");

# A UTF-8 header value arrives as the same characters; a byte that is not
# UTF-8 becomes U+FFFD; the report stays canonical protobuf.
my $utid = 'c0ffee00000000000000000000000001';
my $r = http_get($p2, '/', headers => ['x-request-id', "h\xc3\xa9llo \xe2\x9c\x93 \xff", 'x-b3-traceid', $utid,
	'x-b3-spanid', '00000000000000b1', 'x-b3-sampled', '1']);
is($r->{status}, 200, 'UTF-8 header value: request answered');
ok(wait_for(sub { grep { $_->{traceId} eq $utid } all_spans() }, scale(5)), 'UTF-8 header value: span reported');
my ($ur) = grep { grep { $_->{traceId} eq $utid } spans_of($_) } reports();
ok($ur && $ur->{canonical}, 'UTF-8 header value: the report re-encodes to the same bytes (valid UTF-8)');
my ($us) = grep { $_->{traceId} eq $utid } all_spans();
is($us && attrs($us)->{'guid:x-request-id'}, "h\x{e9}llo \x{2713} \x{fffd}",
	'UTF-8 header value: the same characters, the bad byte as U+FFFD');

# A collector that refuses: reports failed, spans dropped, requests unaffected.
my $refuse = start_otlp_collector(status => 503);
my ($hop4, $p4) = start_traced(qq{http_service: { http_uri: { uri: "http://127.0.0.1:$refuse->{port}/v1/traces" } },
                            flush_interval: 50ms, min_flush_spans: 1}, '/');
my $ok = 0;
$ok += http_get($p4, "/$_")->{status} == 200 for 1 .. 5;
is($ok, 5, 'collector answering 503: every request answered');
ok(wait_for(sub { ($hop4->stat('tracing.opentelemetry.spans_dropped') // 0) == 5 }, scale(5)),
	'collector answering 503: spans_dropped');
cmp_ok($hop4->stat('tracing.opentelemetry.http_reports_failed'), '>=', 1, 'collector answering 503: http_reports_failed');
is($hop4->stat('tracing.opentelemetry.http_reports_success'), 0, '... no success');
is($hop4->stat('tracing.opentelemetry.spans_sent'), 0, '... nothing sent');
ok(scalar($refuse->{reports}->()) >= 1, '... though the reports were posted');

# A collector that never answers: one report in flight, max_queue spans
# wait, the rest are dropped; requests are not slowed.
my $hang = start_backend(mode => 'hang');
my ($hop5, $p5) = start_traced(qq{max_queue: 3, min_flush_spans: 1, flush_interval: 50ms,
                   http_service: { http_uri: { uri: "http://127.0.0.1:${\ $hang->port}/v1/traces", timeout: 30s } }}, '/');
$ok = 0;
$ok += http_get($p5, "/$_")->{status} == 200 for 1 .. 10;
is($ok, 10, 'hanging collector: every request answered');
is($hop5->stat('tracing.opentelemetry.spans_dropped'), 10 - 1 - 3,
	'hanging collector: beyond the report in flight and max_queue, spans dropped');
is($hop5->stat('tracing.opentelemetry.http_reports_sent'), 1, 'hanging collector: one report in flight');

# The Istio mapping for a collector by name: its cluster, Host, path, timeout
# default, headers; gRPC export refused.
spew("$dir/named.yaml", <<"EOF");
mesh:
  resources: [telemetry/]
  namespace: blog
  workload: { labels: { app: was } }
  intercept: false
  extensionProviders:
    - name: otel
      opentelemetry:
        service: opentelemetry-collector.observability.svc.cluster.local
        port: 4318
        http: { path: /v1/traces, headers: [ { name: x-scope, value: blog } ] }
listeners:
  - { name: in, address: 127.0.0.1:1, routes: [ { match: { prefix: / }, direct_response: { status: 200 } } ] }
EOF
$show = `$bin config show -c $dir/named.yaml 2>&1`;
like($show, qr{uri: "?http://opentelemetry-collector\.observability\.svc\.cluster\.local/v1/traces"?\n\s+cluster: "?outbound\|4318\|\|opentelemetry-collector\.observability\.svc\.cluster\.local"?\n\s+timeout: 3s},
	"Istio opentelemetry provider by name: uri with the Host, cluster outbound|PORT||HOST, Istio's 3s timeout");
like($show, qr{request_headers_to_add:\n\s+- header:\n\s+key: x-scope\n\s+value: blog}, 'http.headers as request_headers_to_add');
like($show, qr{- name: "?outbound\|4318\|\|opentelemetry-collector\.observability\.svc\.cluster\.local"?\n\s+endpoints:\n\s+- "?opentelemetry-collector\.observability\.svc\.cluster\.local:4318},
	'the collector cluster is derived');
like(`$bin -t -c $dir/named.yaml 2>&1`, qr/successful/, 'the derived config is valid');
(my $grpc = slurp("$dir/named.yaml")) =~ s/\n\s+http: \{[^\n]*\}//;
spew("$dir/grpc.yaml", $grpc);
like(`$bin -t -c $dir/grpc.yaml 2>&1`, qr{grpc\.yaml:\d+:\d+: opentelemetry: only OTLP over HTTP is supported},
	'an opentelemetry provider without http (gRPC export): an error at its line');

# Config errors.
sub check_conf {
	my ($t, $clusters) = @_;
	my $f = tmpdir() . '/bad-otel.yaml';
	spew($f, "tracing: $t\nlisteners: [{ name: l, address: 127.0.0.1:1, routes: [{ match: { prefix: / }, direct_response: { status: 200 } }] }]\n" . ($clusters ? "clusters: $clusters\n" : ''));
	return scalar `$bin -t -c $f 2>&1`;
}
my $uri = 'http_service: { http_uri: { uri: "http://127.0.0.1:4318/v1/traces" } }';
like(check_conf("{ opentelemetry: { $uri }, zipkin: { address: 127.0.0.1:9411 } }"), qr/:1:\d+: tracing needs one tracer/,
	'zipkin and opentelemetry together');
like(check_conf('{ opentelemetry: { grpc_service: { envoy_grpc: { cluster_name: otel } } } }'),
	qr/:1:\d+: grpc_service is not supported/, 'grpc_service refused with a reason');
like(check_conf('{ opentelemetry: { http_service: { http_uri: { uri: "https://127.0.0.1:4318/v1/traces" } } } }'),
	qr/:1:\d+: uri "https:.*plain HTTP/, 'https uri refused');
like(check_conf('{ opentelemetry: { http_service: { http_uri: { uri: "http://otel.example:4318/v1/traces" } } } }'),
	qr/:1:\d+: collector address "otel\.example:4318" must be an IP literal.*set cluster/, 'a name without a cluster');
like(check_conf('{ opentelemetry: { http_service: { http_uri: { uri: "http://otel.example:4318/v1/traces", cluster: otel } } } }',
	'[ { name: otel, endpoints: ["otel.example:4318"] } ]'), qr/successful/, 'a name with a cluster');
like(check_conf('{ opentelemetry: { http_service: { http_uri: { uri: "http://otel:4318/v1/traces", cluster: nope } } } }'),
	qr/:1:\d+: cluster: unknown cluster "nope"/, 'unknown cluster');
like(check_conf("{ opentelemetry: { http_service: { http_uri: { uri: \"http://127.0.0.1:4318/v1/traces\" }, request_headers_to_add: [ { header: { key: \"bad key\", value: v } } ] } } }"),
	qr/:1:\d+: header name "bad key" is not a valid token/, 'a bad header name');
like(check_conf("{ opentelemetry: { http_service: { http_uri: { uri: \"http://127.0.0.1:4318/v1/traces\" }, request_headers_to_add: [ { header: { key: content-type, value: v } } ] } } }"),
	qr/:1:\d+: header "content-type" is the exporter's own/, "the exporter's own headers are not added");
like(check_conf("{ opentelemetry: { $uri, service_name: \"\" } }"), qr/:1:\d+: /, 'an empty service_name');
like(check_conf('{ opentelemetry: { } }'), qr/:1:\d+: tracing\.opentelemetry needs http_service/, 'http_service required');

done_testing;
