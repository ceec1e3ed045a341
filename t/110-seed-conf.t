# conf/blog-system as shipped: the seed scenario's Istio resources (istio/)
# and the web and was sidecar files that say which workload each is, run as
# in a pod but not intercepted (mesh.intercept: false, the outbound and
# inbound ports bound where the test says), the addresses, ports and log
# paths swapped for the test's, and an EndpointSlice per was version for what
# the API server would tell. Two was sidecars (v1 and the canary, v2) in front
# of two apps, and a Zipkin collector, the mesh's tracing provider that
# istio/telemetry.yaml names. Through web's outbound listener: mTLS to was,
# RBAC at was, the x-canary-test route, 100% mirroring to the canary,
# retries, outlier ejection, one trace across both sidecars, Istio metrics.
use strict;
use warnings;
use File::Spec;
use JSON::PP;
use Test::More;
use Wingman;

my $src = File::Spec->rel2abs(($ENV{WINGMAN_SRCDIR} // '.') . '/conf/blog-system');
my $c = test_certs();		# tmpdir()/certs, where the configs' certs/ paths land
my $dir = tmpdir();

# Apps: answer "<name> <path>", log each request; /api/flaky fails once, /api/broken always.
sub app {
	my ($name) = @_;
	my $log = "$dir/app-$name.log";
	spew($log, '');
	my $be = start_backend(handler => sub {
		my ($req) = @_;
		open(my $fh, '>>', $log) or die;
		print $fh "$req->{path}\n";
		close($fh);
		my $n = () = slurp($log) =~ /^\Q$req->{path}\E$/mg;
		return make_response('503 Service Unavailable', 'flaky') if $req->{path} eq '/api/flaky' && $n == 1;
		return make_response('500 Internal Server Error', 'broken') if $req->{path} eq '/api/broken';
		return make_response('200 OK', "$name $req->{path}");
	});
	return ($be, $log);
}
my ($v1, $v1_log) = app('v1');
my ($canary, $canary_log) = app('canary');
sub seen { my ($log, $path) = @_; scalar(() = slurp($log) =~ /^\Q$path\E$/mg) }

my $spans_file = "$dir/spans.txt";
my $col = start_backend(handler => sub {
	my ($req) = @_;
	open(my $fh, '>>', $spans_file) or die;
	print $fh "$req->{body}\n";
	close($fh);
	return make_response('202 Accepted', '');
});
sub spans { map { @{ decode_json($_) } } grep { length } split /\n/, (slurp($spans_file) // '') }

my ($was_in, $was_admin, $can_in, $can_admin, $web_out, $web_in, $web_admin) = map { free_port() } 1 .. 7;

# What the API server would tell: an EndpointSlice per was version (a
# slice's port is its endpoints'), each endpoint's labels from its Pod; the
# endpoint is the was sidecar's inbound listener, where a pod IP would be.
sub slice {
	my ($version, $port) = @_;
	return <<"EOF";
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: was-service-$version, namespace: blog-system, labels: { kubernetes.io/service-name: was-service } }
addressType: IPv4
ports: [{ name: http, port: $port, protocol: TCP }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true }, targetRef: { kind: Pod, name: was-$version } }]
---
apiVersion: v1
kind: Pod
metadata: { name: was-$version, namespace: blog-system, labels: { app: was, version: $version } }
spec: { serviceAccountName: default, containers: [{ name: was, image: was:1 }] }
EOF
}
spew("$dir/endpoints.yaml", slice('v1', $was_in) . slice('v2', $can_in));

# The shipped file with the test's addresses; its mesh: section, last,
# gets the bound ports of a sidecar that is not intercepted ($mesh).
sub conf {
	my ($file, $mesh, %sub) = @_;
	my $yaml = slurp("$src/$file");
	ok(length $yaml, "conf/blog-system/$file read");
	$sub{'service: jaeger-collector.observability.svc.cluster.local, port: 9411'}
		= 'service: 127.0.0.1, port: ' . $col->port;
	$sub{'resources: [istio/]'} = "resources: [$src/istio/, $dir/endpoints.yaml]";
	for my $from (sort { length $b <=> length $a } keys %sub) {
		my $n = $yaml =~ s/\Q$from\E/$sub{$from}/g;
		ok($n, "$file: " . ($from =~ s/\n/\\n/gr) . ' replaced');
	}
	like($yaml, qr/^mesh:\n(?:  .*\n)+\z/m, "$file: mesh: is the last section");
	return $yaml . "  intercept: false\n" . join('', map { "  $_: $mesh->{$_}\n" } sort keys %$mesh);
}

# The app behind a was sidecar: Istio's inbound|8080|| goes to the pod's
# 127.0.0.1:8080; here each app has a port of its own.
sub was_conf {
	my ($app, $admin, $in, %sub) = @_;
	return conf('was.yaml', { inbound => "{ \"8080\": 127.0.0.1:$in }" },
		'127.0.0.1:15000' => "127.0.0.1:$admin", "istio_metrics: true\n" => "istio_metrics: true\nclusters:\n"
		. "  - { name: \"inbound|8080||\", endpoints: [127.0.0.1:${\$app->port}], connect_timeout: 1s }\n", %sub);
}
my $was = start_wingman(was_conf($v1, $was_admin, $was_in, 'path: /dev/stdout' => "path: $dir/was.log"),
	wait_ports => [$was_in, $was_admin]);
my $was_canary = start_wingman(was_conf($canary, $can_admin, $can_in, 'path: /dev/stdout' => "path: $dir/was-canary.log",
	'id: was,' => 'id: was-canary,', 'version: v1' => 'version: v2'), wait_ports => [$can_in, $can_admin]);
my $web = start_wingman(conf('web.yaml', { outbound => "{ \"8080\": 127.0.0.1:$web_out }",
	inbound => "{ \"80\": 127.0.0.1:$web_in }" }, '127.0.0.1:15000' => "127.0.0.1:$web_admin",
	'path: /dev/stdout' => "path: $dir/web.log"), wait_ports => [$web_out, $web_in, $web_admin]);
my $stable = 'outbound|8080|stable|was-service.blog-system.svc.cluster.local';
my $host = 'was-service.blog-system.svc.cluster.local:8080';

# web → was over mTLS, allowed by was's policy; mirrored to the canary.
my $r = http_get($web_out, '/api/posts', host => $host);
is($r->{status}, 200, 'web → was /api/posts: 200');
is($r->{body}, 'v1 /api/posts', 'answered by was v1');
is($web->stat("cluster.$stable.ssl.handshake"), 1, 'web → was is TLS');
ok(wait_for(sub { slurp("$dir/was.log") =~ m{"GET /api/posts HTTP/1\.1" 200 } }, scale(5)), 'was logged it');
ok(wait_for(sub { seen($canary_log, '/api/posts') == 1 }, scale(5)), 'mirrored: the canary got a copy');
is(http_get($web_out, '/actuator/health', host => $host)->{status}, 200, '/actuator/health allowed');

# x-canary-test: true goes to the canary, not to v1 (and is not mirrored).
$r = http_get($web_out, '/api/new-feature', host => $host, headers => ['x-canary-test', 'true']);
is($r->{body}, 'canary /api/new-feature', 'x-canary-test: true → canary');
is(seen($v1_log, '/api/new-feature'), 0, 'v1 did not see the canary request');

# RBAC at was: other paths, and callers without web's identity, are refused.
$r = http_get($web_out, '/admin', host => $host);
is($r->{status}, 403, '/admin from web: 403');
is($r->{body}, 'RBAC: access denied', 'RBAC body');
my ($out) = curl('--cacert', "$c/root.pem", '--cert', "$c/intruder.pem", '--key', "$c/intruder-key.pem",
	'-w', '\n%{http_code}', "https://127.0.0.1:$was_in/api/posts");
like($out, qr{\n403$}, 'another namespace\'s certificate: 403');
is(http_get($was_in, '/api/posts')->{status}, 403, 'plaintext straight to was: 403');
is(http_get($web_in, '/')->{status}, 403, 'web answers the ingress namespace only: plaintext gets 403');

# Retries: a 503 from was is retried (2 s per try, 3 attempts).
$r = http_get($web_out, '/api/flaky', host => $host);
is($r->{status}, 200, 'a 5xx is retried: 200');
is(seen($v1_log, '/api/flaky'), 2, 'the app saw the failure and the retry');
is($web->stat("cluster.$stable.upstream_rq_retry"), 1, 'upstream_rq_retry of the stable subset');

# One trace across both sidecars: web's CLIENT span is the parent of was's SERVER span.
my $tid;
ok(wait_for(sub {
	my @s = grep { ($_->{tags}{'http.url'} // '') =~ m{/api/posts$} } spans();
	my ($client) = grep { $_->{kind} eq 'CLIENT' } @s;
	my ($server) = grep { $_->{kind} eq 'SERVER' && $_->{localEndpoint}{serviceName} eq 'was.blog-system'
		&& $client && $_->{traceId} eq $client->{traceId} } @s;
	return 0 unless $server && ($server->{parentId} // '') eq $client->{id};
	$tid = $client->{traceId};
}, scale(5)), 'web and was spans reach the Telemetry provider as one trace');
like($tid // '', qr/^[0-9a-f]{32}$/, '128-bit trace id');

# Istio metrics on both sides.
my $prom = http_get($web_admin, '/stats/prometheus')->{body};
like($prom, qr/^istio_requests_total\{reporter="source",[^}]*destination_service="was-service\.blog-system\.svc\.cluster\.local",[^}]*response_code="200"[^}]*\} [1-9]/m,
	'web: istio_requests_total as the source');
# The sidecars exchanged their metadata over mTLS: each names the other (Kiali's edge web → was).
like($prom, qr/^istio_requests_total\{reporter="source",source_workload="web",[^}]*destination_workload="was",[^}]*destination_app="was",destination_version="v1",[^}]*response_code="200"[^}]*\} [1-9]/m,
	'web: was is the destination workload, app and version');
$prom = http_get($was_admin, '/stats/prometheus')->{body};
like($prom, qr/^istio_requests_total\{reporter="destination",[^}]*destination_version="v1",[^}]*response_code="403"[^}]*\} [1-9]/m,
	'was: 403s counted as the destination');
like($prom, qr/^istio_requests_total\{reporter="destination",source_workload="web",source_workload_namespace="blog-system",source_principal="spiffe:\/\/cluster\.local\/ns\/blog-system\/sa\/default",source_app="web",source_version="v1",[^}]*connection_security_policy="mutual_tls",[^}]*response_code="200"[^}]*\} [1-9]/m,
	'was: web is the source workload, over mutual_tls');

# Outlier detection: 5 consecutive 5xx (each request tries 4 times) eject the was pod.
http_get($web_out, '/api/broken', host => $host) for 1 .. 2;
ok(wait_for(sub { $web->stat("cluster.$stable.outlier_detection.ejections_enforced_total") >= 1 }, scale(5)),
	'5 consecutive 5xx: the was host is ejected');
is($web->cluster_hosts($stable)->{"127.0.0.1:$was_in"}{health_flags}, '/failed_outlier_check', '/clusters: failed_outlier_check');

$web->term;
$was->term;
$was_canary->term;
done_testing();
