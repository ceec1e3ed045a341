#!/usr/bin/perl
# Loading a large Istio bundle: `wingman -t -c` on a sidecar config whose
# mesh: section reads BENCH_MESH_RESOURCES (5,000) generated resources, the
# mix of a cluster dump: per namespace Services with an EndpointSlice each and
# the Pods it points at, VirtualServices (header match, weighted subsets,
# retries), DestinationRules (subsets, pool, outlier detection) and
# AuthorizationPolicies; one workload (app svc-0 of ns-0) whose sidecar
# derives every host of the mesh, as Istio does without a Sidecar resource.
# Prints the median wall time of BENCH_MESH_RUNS (5) loads. Part of `make
# bench`; `perl -It/lib t/bench-mesh.pl` runs it alone.
use strict;
use warnings;
use Time::HiRes qw(time);
use Wingman;
use WingmanBench;

my $total = $ENV{BENCH_MESH_RESOURCES} // 5000;
my $runs = $ENV{BENCH_MESH_RUNS} // 5;
my $per_ns = 20;	# Services per namespace

# One namespace's resources, each a YAML document.
sub namespace_docs {
	my ($ns) = @_;
	my @d;
	for my $i (0 .. $per_ns - 1) {
		my $svc = "svc-$i";
		my $ip = sprintf('10.%d.%d', $ns % 250, $i);
		push @d, <<"EOF";
apiVersion: v1
kind: Service
metadata: { name: $svc, namespace: ns-$ns, labels: { app: $svc } }
spec:
  clusterIP: 172.20.$ns.$i
  selector: { app: $svc }
  ports: [{ name: http, port: 8080, targetPort: 8080 }]
EOF
		push @d, <<"EOF";
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: $svc-x7k2p
  namespace: ns-$ns
  labels: { kubernetes.io/service-name: $svc, endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io }
addressType: IPv4
ports: [{ name: http, port: 8080, protocol: TCP }]
endpoints:
  - addresses: ["$ip.1"]
    conditions: { ready: true }
    targetRef: { kind: Pod, name: $svc-v1-6d4cf56db6-a1, namespace: ns-$ns }
  - addresses: ["$ip.2"]
    conditions: { ready: true }
    targetRef: { kind: Pod, name: $svc-v2-7f8b9c5d4-b2, namespace: ns-$ns }
EOF
		for my $v ([1, 'v1-6d4cf56db6-a1'], [2, 'v2-7f8b9c5d4-b2']) {
			push @d, <<"EOF";
apiVersion: v1
kind: Pod
metadata: { name: $svc-$v->[1], namespace: ns-$ns, labels: { app: $svc, version: v$v->[0] } }
EOF
		}
		next if $i % 2;
		push @d, <<"EOF";
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: $svc, namespace: ns-$ns }
spec:
  hosts: [$svc]
  http:
    - name: canary
      match: [{ headers: { x-canary: { exact: "true" } }, uri: { prefix: /api } }]
      route: [{ destination: { host: $svc, subset: v2 } }]
    - name: split
      route:
        - { destination: { host: $svc, subset: v1 }, weight: 90 }
        - { destination: { host: $svc, subset: v2 }, weight: 10 }
      timeout: 5s
      retries: { attempts: 3, perTryTimeout: 1s, retryOn: "5xx,connect-failure" }
EOF
		push @d, <<"EOF";
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: $svc, namespace: ns-$ns }
spec:
  host: $svc
  trafficPolicy:
    connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 64 } }
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s }
  subsets:
    - { name: v1, labels: { version: v1 } }
    - { name: v2, labels: { version: v2 } }
EOF
		next if $i % 4;
		push @d, <<"EOF";
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: $svc-allow, namespace: ns-$ns }
spec:
  selector: { matchLabels: { app: $svc } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/ns-$ns/sa/svc-1"] } }]
      to: [{ operation: { methods: [GET, POST], paths: ["/api/*"] } }]
EOF
	}
	return @d;
}

my $dir = tmpdir() . '/mesh-bench';
mkdir $dir;
mkdir "$dir/istio";
my @docs;
for (my $ns = 0; @docs < $total; $ns++) {
	push @docs, namespace_docs($ns);
}
splice @docs, $total;
my %kinds;
$kinds{$_}++ for map { /^kind: (\w+)/m } @docs;
# One file per namespace-sized chunk, as kubectl get -o yaml per namespace writes them.
my $chunk = 104;
for (my $i = 0; $i * $chunk < @docs; $i++) {
	my $end = ($i + 1) * $chunk - 1;
	$end = $#docs if $end > $#docs;
	spew(sprintf('%s/istio/%03d.yaml', $dir, $i), join("---\n", @docs[$i * $chunk .. $end]));
}
spew("$dir/w.yaml", <<'EOF');
admin: { address: 127.0.0.1:15000 }
mesh:
  resources: [istio/]
  namespace: ns-0
  workload: { labels: { app: svc-0, version: v1 } }
EOF

my $bin = Wingman::wingman_bin();
my @t;
for (1 .. $runs) {
	my $t0 = time;
	my $out = `$bin -t -c $dir/w.yaml 2>&1`;
	my $rc = $? >> 8;
	push @t, time - $t0;
	die "bench-mesh: wingman -t failed (rc $rc):\n" . substr($out, 0, 4000) . "\n" if $rc;
}
my $bytes = 0;
$bytes += -s $_ for glob("$dir/istio/*.yaml");
printf "\n| mesh bundle load (`wingman -t -c`, median of %d) | value |\n|---|---:|\n", $runs;
printf "| %d resources (%s), %.1f MB of YAML | %.0f ms |\n", scalar(@docs),
	join(', ', map { "$kinds{$_} $_" } sort keys %kinds), $bytes / 1e6, median(@t) * 1000;
printf "| fastest / slowest run | %.0f / %.0f ms |\n", (sort { $a <=> $b } @t)[0] * 1000,
	(sort { $b <=> $a } @t)[0] * 1000;
