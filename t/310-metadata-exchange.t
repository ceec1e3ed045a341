# Istio's HTTP metadata exchange between two sidecars, web → was over
# ISTIO_MUTUAL: each side's istio_requests_total names the other workload
# (workload, namespace, app, version, canonical service and revision,
# cluster) and both principals, was's says connection_security_policy
# "mutual_tls"; the x-envoy-peer-metadata headers never reach the app behind
# was nor web's client. Metadata is believed only over mTLS: a plaintext
# client, with or without forged headers, and an upstream reached in
# plaintext that answers with forged ones, stay "unknown". The headers are
# checked against Google's protobuf (python3-protobuf): what was answers
# parses and is the deterministic serialization of its Struct, and a Struct
# that library serialized, as an Istio sidecar sends it, is read. The
# scrapes parse with python3-prometheus-client, no series twice.
use strict;
use warnings;
use Test::More;
use Wingman;

for my $m (qw(prometheus_client google.protobuf.struct_pb2)) {
	plan skip_all => "python3 $m missing (bootstrap installs it)"
		unless system("/usr/bin/python3 -c 'import $m' 2>/dev/null") == 0;
}

my $c = test_certs();
my $dir = tmpdir();
my $app = start_backend();		# echoes the request head it got
my $ap = $app->port;

# Struct <-> base64 with Google's protobuf: "encode JSON" prints the header
# value of a Struct given as JSON; "decode B64" prints the Struct as JSON and
# whether B64 is byte for byte its deterministic serialization.
spew("$dir/pbs.py", <<'PY');
import base64, json, sys
from google.protobuf import struct_pb2, json_format
s = struct_pb2.Struct()
if sys.argv[1] == "encode":
    s.update(json.loads(sys.argv[2]))
    print(base64.b64encode(s.SerializeToString(deterministic=True)).decode())
else:
    raw = base64.b64decode(sys.argv[2])
    s.ParseFromString(raw)
    print(json.dumps(json_format.MessageToDict(s), sort_keys=True))
    print("deterministic" if s.SerializeToString(deterministic=True) == raw else "not deterministic")
PY
sub pbs {
	my ($op, $arg) = @_;
	$arg =~ s/'/'\\''/g;
	my $out = `/usr/bin/python3 $dir/pbs.py $op '$arg' 2>&1`;
	die "pbs.py $op: $out" if $?;
	return $out;
}

# An upstream outside the mesh, reached in plaintext, that answers with
# metadata of a workload it is not.
my $forged = pbs('encode', '{"WORKLOAD_NAME": "evil", "NAMESPACE": "evil", "LABELS": {"app": "evil"}}');
chomp $forged;
my $ext = start_backend(handler => sub {
	return make_response('200 OK', "ext\n", 'x-envoy-peer-metadata', $forged, 'x-envoy-peer-metadata-id', 'evil');
});
my $ep = $ext->port;

my ($was_in, $was_admin, $web_out, $web_admin) = map { free_port() } 1 .. 4;
my $fmt = '"%REQ(:PATH)% %RESPONSE_CODE% local=%DOWNSTREAM_LOCAL_URI_SAN% up_peer=%UPSTREAM_PEER_URI_SAN% up_local=%UPSTREAM_LOCAL_URI_SAN%\n"';
my $spiffe = 'spiffe://cluster.local/ns/blog-system/sa/default';

my $was = start_wingman(<<"EOF");
workers: 2
node: { id: "sidecar~127.0.0.1~was-v2-7d9f.blog-system~blog-system.svc.cluster.local", workload: was-v2,
        namespace: blog-system, version: v2, service: was-service.blog-system.svc.cluster.local,
        cluster_id: Kubernetes, labels: { app: was, version: v2 } }
admin: { address: 127.0.0.1:$was_admin }
access_log: { path: $dir/was.log, format: $fmt }
istio_metrics: true
metadata_exchange: true
listeners:
  - name: inbound
    address: 127.0.0.1:$was_in
    direction: inbound
    tls: { mode: PERMISSIVE, cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes: [{ match: { prefix: / }, route: { cluster: app } }]
clusters:
  - { name: app, endpoints: [127.0.0.1:$ap] }
EOF

my $web = start_wingman(<<"EOF");
workers: 1
node: { id: web-0, workload: web, namespace: blog-system, version: v1, cluster_id: Kubernetes,
        labels: { app.kubernetes.io/name: web } }
admin: { address: 127.0.0.1:$web_admin }
access_log: { path: $dir/web.log, format: $fmt }
istio_metrics: true
metadata_exchange: true
listeners:
  - name: outbound
    address: 127.0.0.1:$web_out
    direction: outbound
    routes:
      - { match: { prefix: /ext }, route: { cluster: ext } }
      - { match: { prefix: / }, route: { cluster: was } }
clusters:
  - name: was
    endpoints: [127.0.0.1:$was_in]
    tls: { mode: ISTIO_MUTUAL, cert: $c/web.pem, key: $c/web-key.pem, ca: $c/root.pem, sni: was-service,
           subject_alt_names: ["$spiffe"] }
  - { name: ext, endpoints: [127.0.0.1:$ep] }
EOF

my $host = 'was-service.blog-system.svc.cluster.local:8080';
# ---- web's app calls was through both sidecars (HTTP/1.1, then HTTP/2 to web's sidecar)
for (1 .. 2) {
	my $r = http_get($web_out, "/api/posts/$_", host => $host, headers => ['x-envoy-peer-metadata', 'from-the-app']);
	is($r->{status}, 200, "web → was /api/posts/$_: 200");
	unlike($r->{body}, qr/^x-envoy-peer-metadata/mi, 'the app behind was sees no peer metadata header');
	like($r->{body}, qr/^x-forwarded-client-cert: .*URI=\Q$spiffe\E/mi, 'over mTLS');
	ok(!grep({ /^x-envoy-peer-metadata/ } keys %{ $r->{headers} }), 'web\'s client sees none in the response');
}
my ($h2) = curl('-s', '-D', '-', '--http2-prior-knowledge', '-H', "Host: $host", "http://127.0.0.1:$web_out/api/h2");
like($h2, qr{^HTTP/2 200}m, 'web → was over HTTP/2 to web\'s sidecar: 200');
unlike($h2, qr/^x-envoy-peer-metadata/mi, 'no peer metadata in its response or in what the app saw');

# ---- an upstream outside the mesh answers with forged metadata
my $r = http_get($web_out, '/ext', host => 'ext.example.com');
is($r->{status}, 200, 'web → a plaintext upstream: 200');
ok(!grep({ /^x-envoy-peer-metadata/ } keys %{ $r->{headers} }), 'its forged metadata is removed');

# ---- clients of was without its sidecar's mTLS: plain, and plain with forged headers
$r = http_get($was_in, '/api/plain', host => $host);
is($r->{status}, 200, 'plaintext to was: 200');
$r = http_get($was_in, '/api/forged', host => $host,
	headers => ['x-envoy-peer-metadata', $forged, 'x-envoy-peer-metadata-id', 'sidecar~1.2.3.4~evil.evil~evil.svc']);
is($r->{status}, 200, 'plaintext with forged metadata: 200');
unlike($r->{body}, qr/^x-envoy-peer-metadata/mi, 'forged headers never reach the app');
ok(!grep({ /^x-envoy-peer-metadata/ } keys %{ $r->{headers} }), 'and nothing is answered to an outsider');

# ---- a mesh client whose sidecar is Istio's: metadata serialized by Google's protobuf
my $istio = pbs('encode', '{"NAME": "sleep-5f7c", "NAMESPACE": "tools", "WORKLOAD_NAME": "sleep", "CLUSTER_ID": "east",
	"OWNER": "kubernetes://apis/apps/v1/namespaces/tools/deployments/sleep", "ISTIO_VERSION": "1.24.0",
	"APP_CONTAINERS": "sleep", "MESH_ID": "cluster.local", "INTERCEPTION_MODE": "REDIRECT", "pi": 3.25, "on": true,
	"none": null, "PLATFORM_METADATA": {}, "POD_PORTS": [{"containerPort": 80, "protocol": "TCP"}, "x", [1, [2]]],
	"LABELS": {"app": "sleep-old", "app.kubernetes.io/name": "sleep", "version": "v0", "app.kubernetes.io/version": "v9",
		"service.istio.io/canonical-name": "sleep-svc", "service.istio.io/canonical-revision": "r9",
		"pod-template-hash": "5f7c"}}');
chomp $istio;
my ($out) = curl('-s', '-D', '-', '--cacert', "$c/root.pem", '--cert', "$c/web.pem", '--key', "$c/web-key.pem",
	'-H', "Host: $host", '-H', "x-envoy-peer-metadata: $istio", '-H', 'x-envoy-peer-metadata-id: sidecar~10.0.0.9~sleep-5f7c.tools~tools.svc.cluster.local',
	"https://127.0.0.1:$was_in/api/istio");
like($out, qr{^HTTP/[\d.]+ 200}m, 'an Istio sidecar\'s request over mTLS: 200');
unlike($out, qr/^x-envoy-peer-metadata: \Q$istio\E/mi, 'its metadata does not reach the app');
my ($mine) = $out =~ /^x-envoy-peer-metadata: (\S+)\r?$/mi;
my ($mine_id) = $out =~ /^x-envoy-peer-metadata-id: (\S+)\r?$/mi;
is($mine_id, 'sidecar~127.0.0.1~was-v2-7d9f.blog-system~blog-system.svc.cluster.local',
	'was answers with its id: node.id');
my ($json, $det) = split /\n/, pbs('decode', $mine // '');
is($json, '{"CLUSTER_ID": "Kubernetes", "LABELS": {"app": "was", "service.istio.io/canonical-name": "was", '
	. '"service.istio.io/canonical-revision": "v2", "version": "v2"}, "NAME": "was-v2-7d9f", "NAMESPACE": "blog-system", '
	. '"WORKLOAD_NAME": "was-v2"}', 'and with its metadata: a Struct Google\'s protobuf reads');
is($det, 'deterministic', 'serialized as protobuf\'s deterministic serialization');

like(slurp("$dir/was.log"), qr{^/api/posts/1 200 local=\Q$spiffe\E up_peer=- up_local=-$}m,
	'%DOWNSTREAM_LOCAL_URI_SAN%: was\'s certificate');
like(slurp("$dir/web.log"), qr{^/api/posts/1 200 local=- up_peer=\Q$spiffe\E up_local=\Q$spiffe\E$}m,
	'%UPSTREAM_PEER_URI_SAN% and %UPSTREAM_LOCAL_URI_SAN%');

# ---- the scrapes
sub scrape {
	my ($wm, $what) = @_;
	my ($err, $S, $T, $dups) = prom_parse(scalar $wm->admin('/stats/prometheus'));
	ok(!defined $err, "$what: python3-prometheus-client parses the scrape") or diag($err);
	is_deeply($dups, [], "$what: no series twice");
	return $S;
}
# The istio_requests_total samples whose labels include %want: { labels => value }.
sub requests {
	my ($S, %want) = @_;
	my %out;
	for my $k (keys %$S) {
		next unless $k =~ /^istio_requests_total\{/;
		my $l = labels_of($k);
		next if grep { ($l->{$_} // "\0") ne $want{$_} } keys %want;
		$out{$k} = $S->{$k};
	}
	return \%out;
}
sub labels_of {
	my ($k) = @_;
	my %l;
	$l{$1} = $2 while $k =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
	return \%l;
}
my %web_side = (source_workload => 'web', source_workload_namespace => 'blog-system', source_principal => $spiffe,
	source_app => 'web', source_version => 'v1', source_canonical_service => 'web', source_canonical_revision => 'v1',
	source_cluster => 'Kubernetes');
my %was_side = (destination_workload => 'was-v2', destination_workload_namespace => 'blog-system',
	destination_principal => $spiffe, destination_app => 'was', destination_version => 'v2',
	destination_canonical_service => 'was', destination_canonical_revision => 'v2', destination_cluster => 'Kubernetes');

# Metrics are counted as each stream ends: wait for the last of each side.
sub total {
	my ($wm) = @_;
	my $n = 0;
	$n += $_->{value} for prom_series(scalar $wm->admin('/stats/prometheus'), 'istio_requests_total');
	return $n;
}
ok(wait_for(sub { total($was) == 6 && total($web) == 4 }, scale(5)), 'every request counted on both sides');
my $S = scrape($was, 'was');
my $in = requests($S, reporter => 'destination', %web_side);
is(scalar keys %$in, 1, 'was: one series from web') or diag(join "\n", keys %$S);
my ($k) = keys %$in;
is($k && $in->{$k}, 3, 'was: web\'s three requests');
is_deeply($k && { map { $_ => labels_of($k)->{$_} } keys %was_side, 'connection_security_policy',
		  'destination_service', 'destination_service_namespace' },
	{ %was_side, connection_security_policy => 'mutual_tls', destination_service => 'was-service.blog-system.svc.cluster.local',
	  destination_service_namespace => 'blog-system' },
	'was: its own side, mutual_tls');
my $unknown = requests($S, reporter => 'destination', source_workload => 'unknown');
is(scalar keys %$unknown, 1, 'was: plaintext clients in one series');
($k) = keys %$unknown;
is($k && $unknown->{$k}, 2, 'was: the plain and the forged request are unknown');
is_deeply($k && { map { $_ => labels_of($k)->{$_} } qw(source_workload_namespace source_principal source_app
		  source_version source_canonical_service source_canonical_revision source_cluster destination_principal
		  connection_security_policy) },
	{ source_workload_namespace => 'unknown', source_principal => 'unknown', source_app => 'unknown',
	  source_version => 'unknown', source_canonical_service => 'unknown', source_canonical_revision => 'latest',
	  source_cluster => 'unknown', destination_principal => 'unknown', connection_security_policy => 'none' },
	'was: every source label unknown, no principal, no mTLS');
ok(!%{ requests($S, source_workload => 'evil') }, 'was: the forged workload appears nowhere');
my $sleep = requests($S, reporter => 'destination', source_workload => 'sleep');
($k) = keys %$sleep;
is_deeply($k && { map { $_ => labels_of($k)->{$_} } qw(source_workload_namespace source_app source_version
		  source_canonical_service source_canonical_revision source_cluster source_principal connection_security_policy) },
	{ source_workload_namespace => 'blog-system', source_app => 'sleep', source_version => 'v9',
	  source_canonical_service => 'sleep-svc', source_canonical_revision => 'r9', source_cluster => 'east',
	  source_principal => $spiffe, connection_security_policy => 'mutual_tls' },
	'was: the Istio sidecar\'s labels; its namespace from its SPIFFE id, as Istio reads it');

$S = scrape($web, 'web');
my $out_s = requests($S, reporter => 'source', %was_side);
is(scalar keys %$out_s, 1, 'web: one series to was') or diag(join "\n", keys %$S);
($k) = keys %$out_s;
is($k && $out_s->{$k}, 3, 'web: its three requests');
is_deeply($k && { map { $_ => labels_of($k)->{$_} } keys %web_side, 'connection_security_policy',
		  'destination_service', 'destination_service_namespace' },
	{ %web_side, connection_security_policy => 'unknown', destination_service => 'was-service.blog-system.svc.cluster.local',
	  destination_service_namespace => 'blog-system' },
	'web: its own side as the source');
my $ext_s = requests($S, reporter => 'source', destination_service => 'ext.example.com');
($k) = keys %$ext_s;
is_deeply($k && { map { $_ => labels_of($k)->{$_} } qw(destination_workload destination_app destination_principal
		  destination_service_namespace source_principal) },
	{ destination_workload => 'unknown', destination_app => 'unknown', destination_principal => 'unknown',
	  destination_service_namespace => 'unknown', source_principal => 'unknown' },
	'web: the plaintext upstream\'s forged metadata is not believed');

done_testing();
