# Gateway API routes in the mesh (GAMMA), CiliumNetworkPolicy, Telemetry and
# Sidecar as the config: one sidecar of the "cart-api" workload in namespace
# shop reads a bundle of Services, EndpointSlices, Pods, an HTTPRoute and a
# GRPCRoute attached to the cart Service, a CiliumNetworkPolicy with L7 http
# rules, a Sidecar and a Telemetry, and derives its routes, clusters, rbac,
# tracing and access log from them. Proven with real backends: an 80/20
# split, a header match winning by precedence, whole-segment PathPrefix,
# URLRewrite (prefix and full path), header modifiers, a redirect, a GRPCRoute
# method match, Cilium's regex method/path rules (403 otherwise), a Sidecar's
# egress hosts, `config show` (Telemetry sampling, REGISTRY_ONLY), warnings
# for what is not supported and errors at FILE:LINE:COL.
#
# Not intercepted (mesh.intercept: false): each backend Service has its own
# EndpointSlice whose port is a test backend's.
use strict;
use warnings;
use Test::More;
use Wingman;

my $dir = tmpdir();
my $bin = wingman_bin();

# A backend answering "ID METHOD PATH" then the request headers.
sub backend {
	my ($id, %o) = @_;
	return start_backend(%o, handler => sub {
		my ($req) = @_;
		my $b = "$id $req->{method} $req->{path}\n";
		$b .= "$_->[0]: $_->[1]\n" for @{ $req->{hlist} };
		return make_response('200 OK', $b, 'x-drop-me', 'yes');
	});
}

my %be = map { $_ => backend($_) } qw(v1 v2 canary grpc other);
my %p = map { $_ => $be{$_}->port } keys %be;
my ($out, $in, $admin, $app) = map { free_port() } 1 .. 4;
my $api = backend('api', port => $app);

sub service {
	my ($name, $ns, $port) = @_;
	return <<"EOF";
---
apiVersion: v1
kind: Service
metadata: { name: $name, namespace: $ns }
spec:
  selector: { app: $name }
  ports: [{ name: http, port: 80 }]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: $name-1, namespace: $ns, labels: { kubernetes.io/service-name: $name } }
addressType: IPv4
ports: [{ name: http, port: $port, protocol: TCP }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true }, targetRef: { kind: Pod, name: $name-1 } }]
---
apiVersion: v1
kind: Pod
metadata: { name: $name-1, namespace: $ns, labels: { app: $name } }
spec: { containers: [{ name: app, image: app:1 }] }
EOF
}

mkdir "$dir/bundle";
mkdir "$dir/telemetry";
spew("$dir/bundle/services.yaml", <<"EOF" . join('', map { service("cart-$_", 'shop', $p{$_}) } qw(v1 v2 canary grpc))
---
apiVersion: v1
kind: Service
metadata: { name: cart, namespace: shop }
spec:
  selector: { app: cart }
  ports: [{ name: http, port: 80 }]
EOF
	. service('other', 'elsewhere', $p{other}) . service('legacy', 'shop', $p{other}));

spew("$dir/bundle/routes.yaml", <<"EOF");
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: cart, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: cart, port: 80 }]
  rules:
    - backendRefs:
        - { name: cart-v1, port: 80, weight: 80 }
        - { name: cart-v2, port: 80, weight: 20 }
    - matches: [{ headers: [{ name: x-canary, value: "true" }] }]
      backendRefs: [{ name: cart-canary, port: 80 }]
    - matches: [{ path: { type: PathPrefix, value: /old } }]
      filters:
        - type: URLRewrite
          urlRewrite: { hostname: rewritten.example, path: { type: ReplacePrefixMatch, replacePrefixMatch: /new } }
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{ name: x-set, value: one }]
            add: [{ name: x-added, value: two }]
            remove: [x-drop]
        - type: ResponseHeaderModifier
          responseHeaderModifier: { set: [{ name: x-resp, value: three }], remove: [x-drop-me] }
      backendRefs: [{ name: cart-canary, port: 80 }]
    - matches: [{ path: { type: Exact, value: /full } }]
      filters: [{ type: URLRewrite, urlRewrite: { path: { type: ReplaceFullPath, replaceFullPath: /replaced } } }]
      backendRefs: [{ name: cart-canary, port: 80 }]
    - matches: [{ path: { type: RegularExpression, value: "/re/[0-9]+" }, method: GET }]
      backendRefs: [{ name: cart-v2, port: 80 }]
      timeouts: { request: 5s }
    - matches: [{ path: { type: PathPrefix, value: /go } }]
      filters: [{ type: RequestRedirect, requestRedirect: { hostname: example.com, statusCode: 301 } }]
      sessionPersistence: { sessionName: s }
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: cart-grpc, namespace: shop }
spec:
  parentRefs: [{ kind: Service, name: cart }]
  rules:
    - matches: [{ method: { service: shop.Cart, method: Get } }]
      backendRefs: [{ name: cart-grpc, port: 80 }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: edge, namespace: shop }
spec:
  parentRefs: [{ name: public-gateway }]
  rules: [{ backendRefs: [{ name: cart-v1, port: 80 }] }]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: legacy, namespace: shop }
spec:
  parentRefs: [{ kind: Service, name: legacy }]
  rules: [{ backendRefs: [{ name: cart-v2, port: 80 }] }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: legacy, namespace: shop }
spec:
  hosts: [legacy]
  http: [{ route: [{ destination: { host: legacy } }] }]
---
apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: { name: tls, namespace: shop }
spec:
  parentRefs: [{ kind: Service, name: cart }]
  rules: [{ backendRefs: [{ name: cart-v1, port: 443 }] }]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: shop }
spec:
  egress: [{ hosts: ["./*", "istio-system/*"] }]
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
EOF

spew("$dir/bundle/cilium.yaml", <<"EOF");
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: api-l7, namespace: shop }
spec:
  endpointSelector: { matchLabels: { "k8s:app": cart-api } }
  ingress:
    - toPorts:
        - ports: [{ port: "$app", protocol: TCP }]
          rules:
            http:
              - { method: GET, path: "/api/.*" }
              - { method: "PUT|PATCH", path: /admin, headers: ["X-Admin: yes"] }
  egress: [{ toEndpoints: [{}] }]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: someone-else, namespace: shop }
spec:
  endpointSelector: { matchLabels: { app: cart-v1 } }
  ingress: [{}]
EOF

spew("$dir/telemetry/telemetry.yaml", <<"EOF");
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  tracing: [{ providers: [{ name: zipkin }], randomSamplingPercentage: 10 }]
  accessLogging: [{ providers: [{ name: envoy }] }]
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: cart-api, namespace: shop }
spec:
  selector: { matchLabels: { app: cart-api } }
  tracing: [{ randomSamplingPercentage: 25.5 }]
  metrics: [{ providers: [{ name: prometheus }] }]
EOF

my $mesh = <<"EOF";
  namespace: shop
  workload: { labels: { app: cart-api }, ports: [$app] }
  intercept: false
  outbound: 127.0.0.1:$out
  inbound: { "$app": 127.0.0.1:$in }
EOF
my $yaml = <<"EOF";
workers: 2
admin: { address: 127.0.0.1:$admin }
mesh:
  resources: [bundle/]
$mesh
EOF
spew("$dir/cart.yaml", $yaml);

# ---- -t: warnings for what is not supported
my ($rc, $msg) = wingman_check($yaml =~ s{resources: \[bundle/\]}{resources: [$dir/bundle/]}r);
is($rc, 0, 'wingman -t accepts the bundle') or diag($msg);
like($msg, qr{routes\.yaml:\d+:\d+: .*HTTPRoute/cart: field sessionPersistence is not supported \(ignored\)},
	'-t: an unsupported HTTPRoute field is a warning at its FILE:LINE:COL');
like($msg, qr{HTTPRoute/edge: parentRef to Gateway public-gateway: only Services \(GAMMA\) are supported}, '-t: a Gateway parent is skipped, said so');
like($msg, qr{HTTPRoute/legacy: host legacy\.shop\.svc\.cluster\.local has VirtualService shop/legacy, which wins}, '-t: a VirtualService wins over an HTTPRoute');
like($msg, qr{TLSRoute/tls: TLSRoute is not supported}, '-t: TLSRoute is skipped, said so');
like($msg, qr{CiliumNetworkPolicy/api-l7: egress rules are not enforced}, '-t: Cilium egress is said to be ignored');

# ---- traffic
my $wm = start_wingman($yaml, wait_ports => [$out, $in, $admin]);

my %n;
for (1 .. 500) {
	my $r = http_request($out, 'GET', '/cart', host => 'cart');
	$n{$1}++ if $r->{body} =~ /^(\w+) /;
}
my $v1 = $n{v1} // 0;
ok($v1 >= 375 && $v1 <= 425, "80/20 split over 500 requests: v1 got $v1 (400 +- 25)")
	or diag(explain(\%n));
is(($n{v1} // 0) + ($n{v2} // 0), 500, 'the split only goes to v1 and v2');

my $r = http_request($out, 'GET', '/cart', host => 'cart.shop.svc.cluster.local', headers => ['x-canary', 'true']);
like($r->{body}, qr/^canary GET \/cart\n/, 'a header match wins over the catch-all (more headers first)');

$r = http_request($out, 'GET', '/old/item?q=1', host => 'cart', headers => ['x-drop', 'gone', 'x-added', 'one']);
like($r->{body}, qr{^canary GET /new/item\?q=1\n}, 'URLRewrite ReplacePrefixMatch: /old/item -> /new/item, query kept');
like($r->{body}, qr/^host: rewritten\.example$/mi, 'URLRewrite hostname');
like($r->{body}, qr/^x-set: one$/mi, 'RequestHeaderModifier set');
like($r->{body}, qr/^x-added: two$/mi, 'RequestHeaderModifier add');
unlike($r->{body}, qr/^x-drop:/mi, 'RequestHeaderModifier remove');
is($r->{headers}{'x-resp'}, 'three', 'ResponseHeaderModifier set');
ok(!exists $r->{headers}{'x-drop-me'}, 'ResponseHeaderModifier remove');
$r = http_request($out, 'GET', '/old', host => 'cart');
like($r->{body}, qr{^canary GET /new\n}, 'PathPrefix /old matches /old itself');
$r = http_request($out, 'GET', '/oldies', host => 'cart');
like($r->{body}, qr{^v[12] GET /oldies\n}, 'PathPrefix /old does not match /oldies (whole segments)');
$r = http_request($out, 'GET', '/full?x=1', host => 'cart');
like($r->{body}, qr{^canary GET /replaced\?x=1\n}, 'URLRewrite ReplaceFullPath');
$r = http_request($out, 'GET', '/re/42', host => 'cart');
like($r->{body}, qr{^v2 GET /re/42\n}, 'RegularExpression path + method match');
$r = http_request($out, 'GET', '/go/there', host => 'cart');
is($r->{status}, 301, 'RequestRedirect with statusCode 301');
like($r->{headers}{location} // '', qr{^http://example\.com/go/there$}, 'RequestRedirect hostname');

$r = http_request($out, 'POST', '/shop.Cart/Get', host => 'cart', headers => ['content-type', 'application/grpc'], body => "\0\0\0\0\0");
like($r->{body}, qr{^grpc POST /shop\.Cart/Get\n}, 'GRPCRoute method {service, method} routes /service/method');
$r = http_request($out, 'POST', '/shop.Cart/List', host => 'cart', headers => ['content-type', 'application/grpc'], body => "\0\0\0\0\0");
like($r->{body}, qr{^v[12] POST /shop\.Cart/List\n}, 'another method falls to the HTTPRoute');

$r = http_request($out, 'GET', '/', host => 'legacy');
like($r->{body}, qr{^other GET /\n}, 'the VirtualService routes its host, not the HTTPRoute');
$r = http_request($out, 'GET', '/', host => 'other.elsewhere.svc.cluster.local');
is($r->{status}, 404, 'Sidecar egress: a host of another namespace is not imported (404)');

# ---- CiliumNetworkPolicy on the inbound port
$r = http_request($in, 'GET', '/api/items?page=2');
is($r->{status}, 200, 'Cilium: GET /api/.* allowed');
like($r->{body}, qr{^api GET /api/items}, '... and reaches the app');
$r = http_request($in, 'POST', '/api/x', body => '');
is($r->{status}, 403, 'Cilium: POST /api/x denied (method regex)');
$r = http_request($in, 'GET', '/other');
is($r->{status}, 403, 'Cilium: GET /other denied (path regex)');
$r = http_request($in, 'GET', '/api');
is($r->{status}, 403, 'Cilium: the path regex matches the whole path (/api is not /api/.*)');
$r = http_request($in, 'PATCH', '/admin', headers => ['X-Admin', 'yes'], body => '');
is($r->{status}, 200, 'Cilium: PUT|PATCH with the header allowed');
$r = http_request($in, 'PUT', '/admin', body => '');
is($r->{status}, 403, 'Cilium: ... without the header denied');
$r = http_request($in, 'PROPPATCH', '/admin', headers => ['X-Admin', 'yes'], body => '');
is($r->{status}, 403, 'Cilium: the method regex matches the whole method (PROPPATCH is not PATCH)');
$wm->term;

# ---- config show: routes, Telemetry, Sidecar
my $show = `cd $dir && $bin config show -c cart.yaml 2>/dev/null`;
like($show, qr{cluster: outbound\|80\|\|cart-v1\.shop\.svc\.cluster\.local\n\s+weight: 80}, 'config show: weighted backendRefs');
like($show, qr{name: shop\.cart\.2\n\s+source: .*routes\.yaml:\d+ HTTPRoute/shop/cart}, 'config show: a rule names its route');
like($show, qr{path: /old\n(?s:.*?)prefix: /old/\n}, 'config show: PathPrefix /old is /old and /old/');
like($show, qr{paths_regex:\n\s+- "?/api/\.\*"?}, 'config show: Cilium path as paths_regex');
like($show, qr{methods_regex:\n\s+- "?PUT\|PATCH"?}, 'config show: Cilium method as methods_regex');
like($show, qr{name: cilium\.shop\.api-l7\n\s+action: ALLOW}, 'config show: the Cilium ALLOW policy');

spew("$dir/tele.yaml", <<"EOF");
mesh:
  resources: [bundle/, telemetry/]
  extensionProviders:
    - { name: zipkin, zipkin: { service: zipkin.istio-system.svc.cluster.local, port: 9411 } }
    - { name: local, zipkin: { service: 127.0.0.1, port: 9412 } }
  namespace: shop
  workload: { labels: { app: cart-api }, ports: [$app] }
EOF
$show = `cd $dir && $bin config show -c tele.yaml 2>&1`;
like($show, qr{tracing:\n\s+zipkin:\n(?:\s+\w+: .*\n)*?\s+sampling: 25\.5}, 'config show: Telemetry randomSamplingPercentage as the sampling (the workload\'s Telemetry)');
like($show, qr{collector_cluster: "?outbound\|9411\|\|zipkin\.istio-system\.svc\.cluster\.local}, 'config show: the provider from mesh.extensionProviders');
like($show, qr{access_log:\n\s+path: /dev/stdout\n\s+format: .*%UPSTREAM_CLUSTER_RAW%}, 'config show: Istio\'s default access log');
like($show, qr{outbound_policy: REGISTRY_ONLY}, 'config show: Sidecar outboundTrafficPolicy REGISTRY_ONLY');
like($show, qr{Telemetry/cart-api: field metrics is not supported \(ignored\)}, 'Telemetry metrics: a warning');
unlike($show, qr{other\.elsewhere}, 'config show: the Sidecar imports no host of another namespace');

# accessLogging disabled
spew("$dir/telemetry/off.yaml", <<"EOF");
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: quiet, namespace: shop }
spec:
  accessLogging: [{ disabled: true }]
EOF
$show = `cd $dir && $bin config show -c tele.yaml 2>&1`;
like($show, qr{access_log:\n\s+path: "?off"?}, 'config show: accessLogging disabled turns the access log off');

# A native tracing or access_log wins over Telemetry's, and says so at its line.
spew("$dir/tele-native.yaml", slurp("$dir/tele.yaml") . <<"EOF");
tracing: { zipkin: { address: 127.0.0.1:9413 } }
access_log: { path: /dev/stderr }
EOF
$show = `cd $dir && $bin config show -c tele-native.yaml 2>&1`;
like($show, qr{tele-native\.yaml:8:\d+: the native tracing replaces the tracing of .*Telemetry/shop/cart-api}, 'native tracing wins over Telemetry: a warning at its line');
like($show, qr{tele-native\.yaml:9:\d+: the native access_log replaces the accessLogging of .*Telemetry/shop/quiet}, 'native access_log wins over Telemetry: a warning at its line');
like($show, qr{address: "?127\.0\.0\.1:9413}, '... and the native collector is the one used');

# ---- errors at FILE:LINE:COL
mkdir "$dir/bad";
spew("$dir/bad/bad.yaml", <<"EOF");
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: from-frontend, namespace: shop }
spec:
  endpointSelector: { matchLabels: { app: cart-api } }
  ingress:
    - fromEndpoints: [{ matchLabels: { role: frontend } }]
      toPorts:
        - ports: [{ port: "$app" }]
          rules: { kafka: [{ topic: orders }] }
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: bad, namespace: shop }
spec:
  parentRefs: [{ kind: Service, name: cart }]
  rules:
    - matches: [{ path: { type: Glob, value: /x } }]
      backendRefs: [{ name: cart-v1, port: 80 }]
    - matches: [{ path: { value: /y } }]
      backendRefs: [{ name: cart-v1 }]
EOF
($rc, $msg) = wingman_check(<<"EOF");
mesh:
  resources: [$dir/bundle/, $dir/bad/]
$mesh
EOF
isnt($rc, 0, '-t refuses what cannot be enforced');
like($msg, qr{bad\.yaml:7:\d+: .*CiliumNetworkPolicy/from-frontend: fromEndpoints: label role cannot be checked}, '-t: fromEndpoints labels: an error at FILE:LINE:COL');
like($msg, qr{bad\.yaml:10:\d+: .*rules\.kafka is not supported}, '-t: Cilium kafka rules: an error');
like($msg, qr{bad\.yaml:18:\d+: .*HTTPRoute/bad: path\.type: expected Exact, PathPrefix or RegularExpression}, '-t: a bad path type: an error');
like($msg, qr{bad\.yaml:21:\d+: .*HTTPRoute/bad: backendRef cart-v1: a Service needs port}, '-t: a backendRef without port: an error');

# ---- the native rewrite.path the Gateway API's ReplaceFullPath uses
($rc, $msg) = wingman_check(<<"EOF");
listeners:
  - name: web
    address: 127.0.0.1:$out
    routes:
      - match: { path: /a }
        rewrite: { path: /b }
        route: { cluster: be }
      - match: { prefix: /c }
        rewrite: { prefix: /d, path: /e }
        route: { cluster: be }
clusters: [{ name: be, endpoints: ["127.0.0.1:$p{v1}"] }]
EOF
like($msg, qr{:9:\d+: a rewrite takes prefix or path, not both}, '-t: rewrite.path or rewrite.prefix, not both');
unlike($msg, qr{:7:}, '-t: rewrite.path on an exact match is fine');

done_testing();
