# Zipkin spans: two wingman hops (outbound then inbound) report one trace with
# parent/child links and 128-bit ids to a real HTTP collector, the payload is
# Zipkin v2 JSON, B3/traceparent come in and go out, sampling decisions are
# honoured, requests that match no route (404 NR) are traced too, and a dead
# or hanging collector never touches requests.
use strict;
use warnings;
use Encode ();
use JSON::PP;
use Test::More;
use Time::HiRes qw(time sleep);
use Wingman;

# The collector: stores "METHOD PATH CONTENT-TYPE\tBODY" per report, answers 202.
my $spans_file = tmpdir() . '/collector.txt';
my $col = start_backend(handler => sub {
	my ($req) = @_;
	open(my $fh, '>>', $spans_file) or die;
	print $fh "$req->{method} $req->{path} " . ($req->{headers}{'content-type'} // '') . "\t$req->{body}\n";
	close($fh);
	return make_response('202 Accepted', '');
});
my $cport = $col->port;

sub reports {
	my @r;
	for (split /\n/, slurp($spans_file)) {
		my ($head, $body) = split /\t/, $_, 2;
		push @r, { head => $head, body => $body };
	}
	return @r;
}
sub all_spans { map { @{ decode_json($_->{body}) } } reports() }

# The application behind hop 2 echoes the headers it got.
my $app = start_backend(handler => sub {
	my ($req) = @_;
	return make_response('200 OK', encode_json($req->{headers}), 'content-type', 'application/json');
});
my $aport = $app->port;
my ($p1, $p2, $a1, $a2) = (free_port(), free_port(), free_port(), free_port());
my ($dead, $p2api) = (free_port(), free_port());

my $hop2 = start_wingman(<<"EOF");
workers: 1
node: { id: was-1, cluster: was.blog, workload: was, namespace: blog, version: v2, mesh_id: mesh-1 }
admin: { address: 127.0.0.1:$a2 }
access_log: { path: off }
tracing: { zipkin: { address: 127.0.0.1:$cport, flush_interval: 100ms, min_flush_spans: 100 } }
listeners:
  - name: inbound
    address: 127.0.0.1:$p2
    direction: inbound
    routes: [ { match: { prefix: / }, route: { cluster: app } } ]
  - { name: api-only, address: 127.0.0.1:$p2api, direction: inbound,
      routes: [ { match: { prefix: /api }, route: { cluster: app } } ] }
clusters: [ { name: app, endpoints: [127.0.0.1:$aport] } ]
EOF
my $hop1 = start_wingman(<<"EOF");
workers: 1
node: { id: web-1, cluster: web.blog }
admin: { address: 127.0.0.1:$a1 }
access_log: { path: off }
tracing:
  zipkin: { address: 127.0.0.1:$cport, path: /api/v2/spans, sampling: 100.0, trace_id_128bit: true,
            shared_span_context: false, flush_interval: 100ms, min_flush_spans: 2, max_queue: 10000 }
listeners:
  - name: outbound
    address: 127.0.0.1:$p1
    direction: outbound
    routes:
      - { name: to-dead, match: { prefix: /dead }, route: { cluster: dead } }
      - { match: { prefix: / }, route: { cluster: was } }
clusters:
  - { name: was, endpoints: [127.0.0.1:$p2] }
  - { name: dead, endpoints: [127.0.0.1:$dead] }
EOF

my @seen = traced_requests($p1, 3, 'zk-test/1.0');
ok(wait_for(sub { scalar(all_spans()) >= 6 }, scale(5)), 'six spans reported');
my @spans = all_spans();
is(scalar @spans, 6, 'exactly one span per hop per request');
for (reports()) {
	is($_->{head}, 'POST /api/v2/spans application/json', 'report: POST application/json to the path');
}

# Zipkin v2: field types and required fields.
my $hex = sub { my ($v, $n) = @_; defined $v && !ref $v && $v =~ /^[0-9a-f]{$n}$/ };
my $isint = sub { my ($v) = @_; defined $v && !ref $v && B::svref_2object(\$v)->FLAGS & (B::SVp_IOK() | B::SVp_NOK()) && $v =~ /^\d+$/ };
require B;
my $bad = 0;
for my $s (@spans) {
	my @why;
	push @why, 'traceId' unless $hex->($s->{traceId}, 32);
	push @why, 'id' unless $hex->($s->{id}, 16);
	push @why, 'parentId' if exists $s->{parentId} && !$hex->($s->{parentId}, 16);
	push @why, 'kind' unless ($s->{kind} // '') =~ /^(SERVER|CLIENT)$/;
	push @why, 'name' unless defined $s->{name} && !ref $s->{name} && length $s->{name};
	push @why, 'timestamp' unless $isint->($s->{timestamp}) && $s->{timestamp} > 1.5e15;
	push @why, 'duration' unless $isint->($s->{duration}) && $s->{duration} >= 1;
	my $le = $s->{localEndpoint};
	push @why, 'localEndpoint' unless ref $le eq 'HASH' && !ref $le->{serviceName} && $le->{ipv4} eq '127.0.0.1'
		&& $isint->($le->{port});
	push @why, 'remoteEndpoint' unless ref $s->{remoteEndpoint} eq 'HASH' && $s->{remoteEndpoint}{ipv4} eq '127.0.0.1'
		&& $isint->($s->{remoteEndpoint}{port});
	push @why, 'tags' unless ref $s->{tags} eq 'HASH' && !grep { ref $_ || !defined $_ } values %{ $s->{tags} };
	for my $t (qw(http.method http.url http.status_code http.protocol upstream_cluster response_flags node_id
		guid:x-request-id peer.address request_size response_size component)) {
		push @why, "tag $t" unless defined $s->{tags}{$t};
	}
	my %known = map { $_ => 1 } qw(traceId id parentId kind name timestamp duration localEndpoint remoteEndpoint
		tags debug shared annotations);
	push @why, "unknown field $_" for grep { !$known{$_} } keys %$s;
	if (@why) {
		$bad++;
		diag("invalid span (@why): " . encode_json($s));
	}
}
is($bad, 0, 'every span is valid Zipkin v2');

# One trace per request: the CLIENT span of hop 1 is the root, the SERVER span
# of hop 2 its child, and the application sees hop 2's span as its parent.
my %by_trace;
push @{ $by_trace{ $_->{traceId} } }, $_ for @spans;
is(scalar keys %by_trace, 3, 'three traces');
for my $i (0 .. 2) {
	my $h = $seen[$i];
	my $t = $by_trace{ $h->{'x-b3-traceid'} // '' } // [];
	my ($client) = grep { $_->{kind} eq 'CLIENT' } @$t;
	my ($server) = grep { $_->{kind} eq 'SERVER' } @$t;
	ok($client && $server, "request $i: both spans in the trace the application saw");
	next unless $client && $server;
	ok(!exists $client->{parentId}, "request $i: client span is the root");
	is($server->{parentId}, $client->{id}, "request $i: server span is the client span's child");
	is($h->{'x-b3-spanid'}, $server->{id}, "request $i: application got hop 2's span id");
	is($h->{'x-b3-parentspanid'}, $client->{id}, "request $i: and hop 1's as parent");
	is($h->{'x-b3-sampled'}, '1', "request $i: sampled");
	is($h->{traceparent}, "00-$client->{traceId}-$server->{id}-01", "request $i: traceparent injected");
	is($client->{localEndpoint}{serviceName}, 'web.blog', 'client span: serviceName = node.cluster');
	is($server->{localEndpoint}{serviceName}, 'was.blog', 'server span: serviceName = node.cluster');
	is($client->{localEndpoint}{port}, $p1, 'client span: local port');
	is($client->{remoteEndpoint}{port}, $p2, 'client span: remote endpoint = upstream host');
	is($server->{remoteEndpoint}{port}, $aport, 'server span: remote endpoint = upstream host');
	is($client->{name}, 'was.blog.svc.cluster.local:8080/*', 'span name: host:port/*');
	my %ct = %{ $client->{tags} };
	is($ct{'http.method'}, 'GET', 'tag http.method');
	is($ct{'http.url'}, 'http://was.blog.svc.cluster.local:8080/items/' . ($i + 1) . '?x=1', 'tag http.url');
	is($ct{'http.status_code'}, '200', 'tag http.status_code');
	is($ct{'http.protocol'}, 'HTTP/1.1', 'tag http.protocol');
	is($ct{upstream_cluster}, 'was', 'tag upstream_cluster');
	is($ct{response_flags}, '-', 'tag response_flags');
	is($ct{node_id}, 'web-1', 'tag node_id');
	is($ct{'guid:x-request-id'}, $h->{'x-request-id'}, 'tag guid:x-request-id = the propagated x-request-id');
	is($server->{tags}{'guid:x-request-id'}, $h->{'x-request-id'}, 'x-request-id kept across hops');
	is($ct{'peer.address'}, '127.0.0.1', 'tag peer.address');
	is($ct{component}, 'proxy', 'tag component');
	ok(!exists $ct{error}, 'no error tag on 200');
	is($ct{user_agent}, 'zk-test/1.0', 'tag user_agent');
	is($ct{downstream_cluster}, 'web.blog', 'tag downstream_cluster (x-envoy-downstream-service-cluster)');
	is($ct{'upstream_cluster.name'}, 'was', 'tag upstream_cluster.name');
	ok(!grep({ /^istio\./ } keys %ct), 'a node without workload or namespace: no istio.* tags');
	my %st = %{ $server->{tags} };
	is($st{'istio.canonical_service'}, 'was', 'server span: istio.canonical_service = node.workload');
	is($st{'istio.canonical_revision'}, 'v2', '... istio.canonical_revision = node.version');
	is($st{'istio.namespace'}, 'blog', '... istio.namespace = node.namespace');
	is($st{'istio.mesh_id'}, 'mesh-1', '... istio.mesh_id = node.mesh_id');
}
is($hop1->stat('tracing.zipkin.spans_sent'), 3, 'hop 1: spans_sent');
cmp_ok($hop1->stat('tracing.zipkin.reports_sent'), '>=', 2, 'hop 1: batched reports sent');
is($hop1->stat('tracing.zipkin.spans_dropped'), 0, 'hop 1: nothing dropped');

# A 5xx (no upstream) is marked error with its response flags; the route name names the span.
truncate($spans_file, 0);
my $r = http_get($p1, '/dead', body => 'abc');
is($r->{status}, 503, 'dead upstream: 503');
http_get($p1, '/', host => 'x');	# second span: min_flush_spans 2
ok(wait_for(sub { scalar(all_spans()) >= 2 }, scale(5)), 'spans of the failing request reported');
my ($e) = grep { $_->{name} eq 'to-dead' } all_spans();
ok($e, 'span named after the route');
is($e && $e->{tags}{error}, 'true', 'error=true on 5xx');
is($e && $e->{tags}{response_flags}, 'UF', 'response_flags UF');
is($e && $e->{tags}{'http.status_code'}, '503', 'status 503');
is($e && $e->{tags}{request_size}, '3', 'request_size');

# No route: Envoy's local 404 with flag NR is traced too, as a child of the
# caller's span, and a 4xx is no error.
my $nrtid = '5b8aa5a2d2c872e8321cf37308d69df2';
my ($code) = curl('-o', '/dev/null', '-w', '%{http_code}', '-H', "x-b3-traceid: $nrtid",
	'-H', 'x-b3-spanid: 00000000000000a1', '-H', 'x-b3-sampled: 1', "http://127.0.0.1:$p2api/nowhere");
is($code, '404', 'no route: 404');
($code) = curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'x-b3-sampled: 0', "http://127.0.0.1:$p2api/nowhere");
is($code, '404', 'no route, not sampled: 404');
ok(wait_for(sub { grep { $_->{traceId} eq $nrtid } all_spans() }, scale(5)), 'no route: span reported');
my @nr = grep { $_->{traceId} eq $nrtid } all_spans();
is(scalar @nr, 1, 'no route: one span');
my %nt = %{ $nr[0]{tags} // {} };
is($nt{'http.status_code'}, '404', 'no route: http.status_code 404');
is($nt{response_flags}, 'NR', 'no route: response_flags NR');
ok(!exists $nt{error}, 'no route: no error tag');
is($nt{upstream_cluster}, '-', 'no route: no upstream cluster');
is($nt{'http.url'}, "http://127.0.0.1:$p2api/nowhere", 'no route: http.url');
is($nr[0]{parentId}, '00000000000000a1', "no route: the caller's span is the parent");
is($nr[0]{kind}, 'SERVER', 'no route: inbound listener, SERVER span');
is($nr[0]{name}, "127.0.0.1:$p2api/*", 'no route: span name host:port/*');
ok(!exists $nr[0]{remoteEndpoint}, 'no route: no remote endpoint');
sleep(0.3);	# three flush intervals: the unsampled one would be there by now
is(scalar(grep { $_->{tags}{response_flags} eq 'NR' } all_spans()), 1, 'no route, not sampled: no span');

# Incoming context: B3 single, x-b3-* (64-bit kept), traceparent; decisions honoured.
truncate($spans_file, 0);
my $tid = '463ac35c9f6413ad48485a3953bb6124';
$r = http_get($p2, '/', headers => ['b3', "$tid-0020000000000001-1-0010000000000001"]);
my $h = decode_json($r->{body});
is($h->{'x-b3-traceid'}, $tid, 'b3 single: trace id continued');
is($h->{'x-b3-parentspanid'}, '0020000000000001', 'b3 single: caller span becomes the parent');
like($h->{b3}, qr/^$tid-[0-9a-f]{16}-1-0020000000000001$/, 'b3 single: rewritten with our span');

$r = http_get($p2, '/', headers => ['x-b3-traceid', 'a0000000000000b1', 'x-b3-spanid', '00000000000000c1',
	'x-b3-sampled', '1', 'b3', 'garbage']);
$h = decode_json($r->{body});
is($h->{'x-b3-traceid'}, 'a0000000000000b1', 'x-b3-*: 64-bit trace id kept at 64 bits (malformed b3 ignored)');
is($h->{traceparent}, '00-0000000000000000a0000000000000b1-' . $h->{'x-b3-spanid'} . '-01', 'traceparent pads 64-bit ids');

$r = http_get($p2, '/', headers => ['traceparent', "00-$tid-00f067aa0ba902b7-00"]);
$h = decode_json($r->{body});
is($h->{'x-b3-traceid'}, $tid, 'traceparent: trace continued');
is($h->{'x-b3-parentspanid'}, '00f067aa0ba902b7', 'traceparent: parent');
is($h->{'x-b3-sampled'}, '0', 'traceparent flags 00: not sampled');

$r = http_get($p2, '/', headers => ['x-b3-sampled', '0']);
$h = decode_json($r->{body});
is($h->{'x-b3-sampled'}, '0', 'x-b3-sampled: 0 without ids: new trace, not sampled');
like($h->{'x-b3-traceid'}, qr/^[0-9a-f]{32}$/, 'new trace ids are 128-bit');

$r = http_get($p2, '/', headers => ['x-b3-flags', '1']);
$h = decode_json($r->{body});
is($h->{'x-b3-flags'}, '1', 'debug flag propagated');
ok(wait_for(sub { my @s = all_spans(); @s >= 3 && grep { $_->{debug} } @s }, scale(5)),
	'sampled spans of hop 2 flushed by the timer');
my @got = all_spans();
is(scalar(grep { $_->{traceId} eq $tid } @got), 1, 'only the sampled traceparent/b3 trace is reported once');
is(scalar(grep { $_->{debug} } @got), 1, 'debug span marked debug');

# A UTF-8 header value reaches the span as the same characters, in valid UTF-8
# (it used to come out as \u00XX per byte: Latin-1 mojibake); a byte that is
# not UTF-8 becomes U+FFFD.
my $utid = 'c0ffee00000000000000000000000001';
$r = http_get($p2, '/', headers => ['x-request-id', "h\xc3\xa9llo \xe2\x9c\x93 \xff", 'x-b3-traceid', $utid,
	'x-b3-spanid', '00000000000000b1', 'x-b3-sampled', '1']);
is($r->{status}, 200, 'UTF-8 header value: request answered');
ok(wait_for(sub { grep { $_->{traceId} eq $utid } all_spans() }, scale(5)), 'UTF-8 header value: span reported');
my ($ubody) = grep { index($_, $utid) >= 0 } map { $_->{body} } reports();
ok(defined $ubody && eval { Encode::decode('UTF-8', my $copy = $ubody, Encode::FB_CROAK); 1 },
	'UTF-8 header value: the report is valid UTF-8');
my ($us) = grep { $_->{traceId} eq $utid } all_spans();
is($us && $us->{tags}{'guid:x-request-id'}, "h\x{e9}llo \x{2713} \x{fffd}",
	'UTF-8 header value: decoded with JSON::PP, the same characters (the bad byte as U+FFFD)');

# sampling: 0 still propagates (unsampled) unless the caller asks for it.
my ($p3, $a3) = (free_port(), free_port());
my $hop3 = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$a3 }
access_log: { path: off }
tracing: { zipkin: { address: 127.0.0.1:$cport, sampling: 0, trace_id_128bit: false, shared_span_context: true,
                     flush_interval: 100ms, min_flush_spans: 1 } }
listeners:
  - { name: in, address: 127.0.0.1:$p3, direction: inbound, routes: [ { match: { prefix: / }, route: { cluster: app } } ] }
clusters: [ { name: app, endpoints: [127.0.0.1:$aport] } ]
EOF
truncate($spans_file, 0);
$h = decode_json(http_get($p3, '/')->{body});
is($h->{'x-b3-sampled'}, '0', 'sampling 0: not sampled');
like($h->{'x-b3-traceid'}, qr/^[0-9a-f]{16}$/, 'trace_id_128bit: false makes 64-bit ids');
my $unsampled = $h->{'x-b3-traceid'};
$h = decode_json(http_get($p3, '/', headers => ['x-b3-traceid', $tid, 'x-b3-spanid', '1111111111111111',
	'x-b3-sampled', '1'])->{body});
is($h->{'x-b3-spanid'}, '1111111111111111', 'shared_span_context: the caller span id is reused');
# Only this trace: the previous wingman may still flush into the same collector.
ok(wait_for(sub { grep { $_->{traceId} eq $tid } all_spans() }, scale(5)), 'caller-sampled span reported');
@got = grep { $_->{traceId} eq $tid } all_spans();
is(scalar @got, 1, 'the caller-sampled request reported once');
ok(!grep({ $_->{traceId} eq $unsampled } all_spans()), 'the unsampled request not reported');
ok($got[0] && $got[0]{shared}, 'shared span marked shared');
is($got[0] && $got[0]{id}, '1111111111111111', 'shared span keeps the id');

# A dead collector: requests unaffected, drops counted.
my ($p4, $a4, $nocol) = (free_port(), free_port(), free_port());
my $hop4 = start_wingman(<<"EOF", wait_ports => [$p4, $a4]);
workers: 1
admin: { address: 127.0.0.1:$a4 }
access_log: { path: off }
tracing: { zipkin: { address: 127.0.0.1:$nocol, flush_interval: 50ms, min_flush_spans: 5, max_queue: 10 } }
listeners:
  - { name: in, address: 127.0.0.1:$p4, direction: inbound, routes: [ { match: { prefix: / }, route: { cluster: app } } ] }
clusters: [ { name: app, endpoints: [127.0.0.1:$aport] } ]
EOF
my $ok = 0;
my $t0 = time;
$ok += http_get($p4, "/$_")->{status} == 200 for 1 .. 40;
is($ok, 40, 'collector down: every request answered');
cmp_ok(time - $t0, '<', scale(5), 'collector down: requests not slowed');
ok(wait_for(sub { $hop4->stat('tracing.zipkin.spans_dropped') == 40 }, scale(5)), 'collector down: all 40 spans counted as dropped');
cmp_ok($hop4->stat('tracing.zipkin.reports_failed'), '>=', 1, 'collector down: reports_failed');
is($hop4->stat('tracing.zipkin.spans_sent'), 0, 'collector down: nothing sent');

# A collector that accepts and never answers: queue bound, drops, no slowdown.
my $hang = start_backend(mode => 'hang');
my ($p5, $a5) = (free_port(), free_port());
my $hport = $hang->port;
my $hop5 = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$a5 }
access_log: { path: off }
tracing: { zipkin: { address: 127.0.0.1:$hport, flush_interval: 50ms, min_flush_spans: 1, max_queue: 5 } }
listeners:
  - { name: in, address: 127.0.0.1:$p5, direction: inbound, routes: [ { match: { prefix: / }, route: { cluster: app } } ] }
clusters: [ { name: app, endpoints: [127.0.0.1:$aport] } ]
EOF
$ok = 0;
$t0 = time;
$ok += http_get($p5, "/$_")->{status} == 200 for 1 .. 30;
is($ok, 30, 'hanging collector: every request answered');
cmp_ok(time - $t0, '<', scale(5), 'hanging collector: requests not slowed');
is($hop5->stat('tracing.zipkin.spans_dropped'), 30 - 1 - 5, 'hanging collector: beyond one report in flight and max_queue, spans dropped');

# The collector by name, as Istio's zipkin.istio-system:9411: a cluster whose
# endpoint is a DNS name (localhost here), Host from collector_hostname.
my $hosts_file = tmpdir() . '/collector-hosts.txt';
my $named = start_backend(handler => sub {
	my ($req) = @_;
	open(my $fh, '>>', $hosts_file) or die;
	print $fh ($req->{headers}{host} // '') . "\t$req->{body}\n";
	close($fh);
	return make_response('202 Accepted', '');
});
my ($p6, $a6) = (free_port(), free_port());
my $hop6 = start_wingman(<<"EOF", wait_ports => [$p6, $a6]);
workers: 1
admin: { address: 127.0.0.1:$a6 }
access_log: { path: off }
tracing: { zipkin: { collector_cluster: zipkin, collector_hostname: zipkin.istio-system, flush_interval: 50ms } }
listeners:
  - { name: in, address: 127.0.0.1:$p6, direction: inbound, routes: [ { match: { prefix: / }, route: { cluster: app } } ] }
clusters:
  - { name: app, endpoints: [127.0.0.1:$aport] }
  - { name: zipkin, endpoints: ["localhost:${\ $named->port}"] }
EOF
# The name resolves on the main thread; until then spans have nowhere to go.
ok(wait_for(sub { http_get($p6, '/named'); ($hop6->stat('tracing.zipkin.spans_sent') // 0) > 0 }, scale(10)),
	'collector_cluster: spans reach the collector behind a DNS name');
my ($host_seen, $body_seen) = split /\t/, (split /\n/, slurp($hosts_file))[0], 2;
is($host_seen, 'zipkin.istio-system', 'collector_cluster: Host is collector_hostname');
is(decode_json($body_seen)->[0]{tags}{'http.url'}, "http://127.0.0.1:$p6/named", 'collector_cluster: the span posted');

# Config errors.
my $bin = wingman_bin();
sub check_conf {
	my ($t, $clusters) = @_;
	my $f = tmpdir() . '/bad-tracing.yaml';
	spew($f, "tracing: $t\nlisteners: [{ name: l, address: 127.0.0.1:1, routes: [{ match: { prefix: / }, direct_response: { status: 200 } }] }]\n" . ($clusters ? "clusters: $clusters\n" : ''));
	return scalar `$bin -t -c $f 2>&1`;
}
like(check_conf('{ zipkin: { address: zipkin.istio-system:9411 } }'),
	qr/bad-tracing\.yaml:1:\d+: .*IP literal.*collector_cluster/, 'collector address must be an IP, or use a cluster');
like(check_conf('{ zipkin: { } }'), qr/:1:\d+: tracing\.zipkin needs either "address".*"collector_cluster"/,
	'address or collector_cluster required');
like(check_conf('{ zipkin: { address: 127.0.0.1:9411, collector_cluster: z } }', '[ { name: z, endpoints: [127.0.0.1:1] } ]'),
	qr/:1:\d+: tracing\.zipkin needs either/, 'not both address and collector_cluster');
like(check_conf('{ zipkin: { collector_cluster: nope } }'), qr/:1:\d+: collector_cluster: unknown cluster "nope"/,
	'collector_cluster must exist');
like(check_conf('{ zipkin: { collector_cluster: z } }', '[ { name: z, protocol: http2, endpoints: [127.0.0.1:1] } ]'),
	qr/:1:\d+: collector_cluster "z": .*plain HTTP\/1\.1/, 'collector_cluster must be plain HTTP/1.1');
like(check_conf('{ zipkin: { collector_cluster: z } }', '[ { name: z, endpoints: ["zipkin.example:9411"] } ]'),
	qr/successful/, 'a collector_cluster with a DNS endpoint is accepted');
like(check_conf('{ zipkin: { address: 127.0.0.1:9411, sampling: 120 } }'), qr/:1:\d+: /, 'sampling above 100');
like(check_conf('{ jaeger: { } }'), qr/:1:\d+: .*jaeger/, 'unknown tracer');
like(check_conf('{ zipkin: { address: 127.0.0.1:9411, path: "no-slash" } }'), qr/path must start with/, 'bad path');

done_testing;
