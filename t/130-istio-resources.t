# Istio resources as the config (issue 13): two sidecars, web and was, read
# the same bundle of Services, EndpointSlices, Pods, VirtualServices,
# DestinationRules, PeerAuthentications and AuthorizationPolicies, as
# kubectl would apply it, and derive their listeners, routes, clusters, TLS
# and RBAC from it. Proven end to end with real backends: the header canary,
# a 90/10 split, retries and perTryTimeout, a route timeout, faults,
# mirroring, outlier ejection bounded by maxEjectionPercent, ISTIO_MUTUAL to
# a STRICT port, PERMISSIVE accepting plaintext, AuthorizationPolicy ports
# meaning the workload's ports, `config show`, /config_dump sources, -t
# warnings and errors, and a ConfigMap-style symlink swap changing routing
# under load without a failed request.
#
# Not intercepted (mesh.intercept: false): the EndpointSlices give the test
# backends' ports, and the api Service's endpoint is the was sidecar's
# inbound listener, where a pod IP would be in a cluster.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);
use Wingman;

my $c = test_certs();
my $dir = tmpdir();
my %be = (
	stable => start_backend(id => 'stable'),
	canary => start_backend(id => 'canary'),
	shadow => start_backend(id => 'shadow', log => 1),
	flaky  => start_backend(id => 'flaky', script => ['503', '503']),
	hang   => start_backend(id => 'hang', script => ['hang']),
	slow   => start_backend(id => 'slow', mode => 'delay:2:200'),
	bad1   => start_backend(id => 'bad1', mode => '503'),
	bad2   => start_backend(id => 'bad2', mode => '503'),
	app1   => start_backend(id => 'app1'),
	app2   => start_backend(id => 'app2'),
);
my %p = map { $_ => $be{$_}->port } keys %be;
my ($web_out, $web_api, $web_admin, $was_in1, $was_in2, $was_admin) = map { free_port() } 1 .. 6;
my ($mysql1, $mysql2, $web_mysql) = map { free_port() } 1 .. 3;
start_tcp_echo($mysql1, 'mysql-v1');
start_tcp_echo($mysql2, 'mysql-v2');

# One EndpointSlice per subset (a slice's port is its endpoints'), each
# endpoint's labels from its Pod.
sub slice {
	my ($svc, $name, $port, $labels) = @_;
	my $l = join(', ', map { "$_: $labels->{$_}" } sort keys %$labels);
	return <<"EOF";
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: $svc-$name, namespace: blog-system, labels: { kubernetes.io/service-name: $svc } }
addressType: IPv4
ports: [{ name: http, port: $port, protocol: TCP }]
endpoints: [{ addresses: ["127.0.0.1"], conditions: { ready: true }, targetRef: { kind: Pod, name: $svc-$name } }]
---
apiVersion: v1
kind: Pod
metadata: { name: $svc-$name, namespace: blog-system, labels: { $l } }
spec: { containers: [{ name: app, image: was:1 }] }
EOF
}

mkdir "$dir/istio";
spew("$dir/istio/services.yaml", <<"EOF" . join('', map { slice('was-service', $_, $p{$_}, { app => 'was', version => $_, /bad/ ? (pool => 'outlier') : () }) } qw(stable canary shadow flaky hang slow bad1 bad2)) . slice('api', 'was-1', $was_in1, { app => 'api' }) . join('', map { slice('mysql', $_, $_ eq 'v1' ? $mysql1 : $mysql2, { app => 'mysql', version => $_ }) } qw(v1 v2)));
apiVersion: v1
kind: Service
metadata: { name: was-service, namespace: blog-system }
spec:
  selector: { app: was }
  ports:
    - { name: http, port: 8080, targetPort: $p{app1} }
    - { name: http-public, port: 9090, targetPort: $p{app2} }
---
apiVersion: v1
kind: Service
metadata: { name: api, namespace: blog-system }
spec:
  selector: { app: api }
  ports: [{ name: http, port: 80, targetPort: $was_in1 }]
---
apiVersion: v1
kind: Service
metadata: { name: mysql, namespace: blog-system }
spec:
  selector: { app: mysql }
  ports: [{ name: mysql, port: 3306 }]
---
# A real cluster dump holds kinds wingman has no use for.
apiVersion: apps/v1
kind: Deployment
metadata: { name: was, namespace: blog-system }
spec: { replicas: 1 }
EOF

# The traffic rules, as a List (kubectl get -o yaml prints one).
spew("$dir/istio/traffic.yaml", <<"EOF");
apiVersion: v1
kind: List
items:
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: { name: was, namespace: blog-system }
    spec:
      hosts: [was-service]
      http:
        - name: canary-header
          match: [{ headers: { x-canary-test: { exact: "true" } } }]
          route: [{ destination: { host: was-service, subset: canary } }]
        - name: retry
          match: [{ uri: { prefix: /retry } }]
          route: [{ destination: { host: was-service, subset: flaky } }]
          retries: { attempts: 3, retryOn: 5xx }
        - name: per-try
          match: [{ uri: { prefix: /per-try } }]
          route: [{ destination: { host: was-service, subset: hang } }]
          retries: { attempts: 2, perTryTimeout: 500ms, retryOn: "reset,connect-failure" }
        - name: timeout
          match: [{ uri: { prefix: /timeout } }]
          route: [{ destination: { host: was-service, subset: slow } }]
          timeout: 500ms
        - name: abort
          match: [{ uri: { prefix: /abort } }]
          fault: { abort: { httpStatus: 418, percentage: { value: 100 } } }
          route: [{ destination: { host: was-service, subset: stable } }]
        - name: delay
          match: [{ uri: { prefix: /delay } }]
          fault: { delay: { fixedDelay: 400ms, percentage: { value: 100 } } }
          route: [{ destination: { host: was-service, subset: stable } }]
        - name: mirror
          match: [{ uri: { prefix: /mirror } }]
          route: [{ destination: { host: was-service, subset: stable } }]
          mirror: { host: was-service, subset: shadow }
          mirrorPercentage: { value: 100.0 }
        - name: outlier
          match: [{ uri: { prefix: /outlier } }]
          route: [{ destination: { host: was-service, subset: pool } }]
          retries: { attempts: 0 }
        - name: authority
          match: [{ uri: { prefix: /authority }, authority: { prefix: was-service.blog-system } }]
          route: [{ destination: { host: was-service, subset: canary } }]
        - name: re2
          match: [{ uri: { regex: '(?i)/re2/v\\d+' } }]
          route: [{ destination: { host: was-service, subset: canary } }]
        - name: not-split
          match: [{ uri: { prefix: /authority } }, { uri: { prefix: /re2 } }]
          route: [{ destination: { host: was-service, subset: stable } }]
        - name: split
          route:
            - { destination: { host: was-service, subset: stable }, weight: 90 }
            - { destination: { host: was-service, subset: canary }, weight: 10 }
  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: { name: was, namespace: blog-system }
    spec:
      host: was-service.blog-system.svc.cluster.local
      trafficPolicy:
        connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 100 } }
      subsets:
        - { name: stable, labels: { version: stable } }
        - { name: canary, labels: { version: canary } }
        - { name: shadow, labels: { version: shadow } }
        - { name: flaky, labels: { version: flaky } }
        - { name: hang, labels: { version: hang } }
        - { name: slow, labels: { version: slow } }
        - name: pool
          labels: { pool: outlier }
          trafficPolicy:
            outlierDetection: { consecutive5xxErrors: 2, interval: 200ms, baseEjectionTime: 60s, maxEjectionPercent: 50 }
  - apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: { name: mysql, namespace: blog-system }
    spec:
      hosts: [mysql]
      tcp:
        - match: [{ port: 3306 }]
          route:
            - { destination: { host: mysql, subset: v1 }, weight: 50 }
            - { destination: { host: mysql, subset: v2 }, weight: 50 }
  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: { name: mysql, namespace: blog-system }
    spec:
      host: mysql
      trafficPolicy: { connectionPool: { tcp: { maxConnections: 2 } } }
      subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
  - apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: { name: api, namespace: blog-system }
    spec:
      host: api
      trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }
EOF

spew("$dir/istio/security.yaml", <<"EOF");
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: blog-system }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: was, namespace: blog-system }
spec:
  selector: { matchLabels: { app: was } }
  portLevelMtls: { "$p{app2}": { mode: PERMISSIVE } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: was-authz, namespace: blog-system }
spec:
  selector: { matchLabels: { app: was } }
  action: ALLOW
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/blog-system/sa/default"] } }]
      to: [{ operation: { paths: ["/api/*"], ports: ["$p{app1}"] } }]
    - from: [{ source: { namespaces: ["blog-system"] } }]
      to: [{ operation: { paths: ["/ns/*"] } }]
    - to: [{ operation: { paths: ["/public/*"], methods: ["GET"] } }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: no-admin, namespace: blog-system }
spec:
  selector: { matchLabels: { app: was } }
  action: DENY
  rules: [{ to: [{ operation: { paths: ["/api/admin*"] } }] }]
EOF

my $web_conf = <<"EOF";
workers: 1
admin: { address: 127.0.0.1:$web_admin }
mesh:
  resources: [istio/]
  namespace: blog-system
  cluster_domain: cluster.local
  root_namespace: istio-system
  app_address: 127.0.0.1
  workload: { labels: { app: web } }
  tls: { cert: $c/web.pem, key: $c/web-key.pem, ca: $c/root.pem }
  intercept: false
  outbound: { "8080": 127.0.0.1:$web_out, "80": 127.0.0.1:$web_api, "3306": 127.0.0.1:$web_mysql }
EOF
spew("$dir/web.yaml", $web_conf);
spew("$dir/was.yaml", <<"EOF");
workers: 1
admin: { address: 127.0.0.1:$was_admin }
mesh:
  resources: [istio/]
  namespace: blog-system
  workload: { labels: { app: was, version: stable } }
  tls: { cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
  intercept: false
  inbound: { "$p{app1}": 127.0.0.1:$was_in1, "$p{app2}": 127.0.0.1:$was_in2 }
  trust_domain: cluster.local
EOF

# ---- -t and config show
my $bin = wingman_bin();
my $chk = `$bin -t -c $dir/web.yaml 2>&1`;
is($?, 0, 'web: -t accepts the bundle') or diag($chk);
like($chk, qr{istio/services\.yaml:\d+:\d+: Deployment/was: kind Deployment is not supported \(skipped\)},
	'an unknown kind is skipped with a warning that says where');
my $show = `cd $dir && $bin config show -c web.yaml 2>/dev/null`;
like($show, qr{cluster: outbound\|8080\|canary\|was-service\.blog-system\.svc\.cluster\.local}, 'config show: subset cluster');
like($show, qr{- 127\.0\.0\.1:$p{canary}\n}, 'config show: the canary endpoint from its EndpointSlice');
like($show, qr{name: 0\.0\.0\.0_8080\n\s+address: 127\.0\.0\.1:$web_out}, 'config show: port 8080 bound where mesh.outbound says');

my $web = start_wingman($web_conf);
my $was = start_wingman(slurp("$dir/was.yaml"));

sub get { my ($path, %o) = @_; return http_get($web_out, $path, host => 'was-service', %o) }
sub backend_of { $_[0]->{headers}{'x-backend-id'} // "status $_[0]->{status}" }

# ---- routing
is(backend_of(get('/', headers => ['x-canary-test', 'true'])), 'canary', 'x-canary-test: true → the canary subset');
is(backend_of(http_get($web_out, '/', host => 'was-service.blog-system.svc.cluster.local:8080',
	headers => ['x-canary-test', 'true'])), 'canary', 'the FQDN with the port names the same host');
is(backend_of(http_get($web_out, '/authority', host => 'was-service.blog-system')), 'canary', 'authority match');
is(backend_of(get('/authority')), 'stable', 'authority match: another name for the host does not match');
is(backend_of(get('/RE2/v12')), 'canary', 'uri regex is RE2: (?i) and \\d');
is(backend_of(get('/re2/vx')), 'stable', 'uri regex: \\d is a digit');
is(backend_of(get('/re2/v1/more')), 'stable', 'uri regex: the whole path must match');
my %n;
$n{ backend_of(get('/split')) }++ for 1 .. 1000;
my $canary = ($n{canary} // 0) / 1000;
ok($canary >= 0.07 && $canary <= 0.13, "90/10 split over 1,000 requests: canary ${\($canary * 100)}%")
	or diag(explain(\%n));
is(($n{stable} // 0) + ($n{canary} // 0), 1000, 'every request of the split answered by a subset');

# ---- retries, timeouts, faults, mirroring
my $r = get('/retry');
is($r->{status}, 200, 'retries: two 503s, then 200');
is_deeply([$be{flaky}->attempts], [1, 2, 3], 'retries: three attempts, counted in x-envoy-attempt-count');
my $t0 = time;
$r = get('/per-try');
is($r->{status}, 200, 'perTryTimeout: the hung attempt is abandoned, the next answers');
is($be{hang}->count, 2, 'perTryTimeout: two attempts');
$r = get('/timeout');
is($r->{status}, 504, 'route timeout: 504');
like($r->{body}, qr/upstream request timeout/, 'route timeout: the body says so');
$r = get('/abort');
is($r->{status}, 418, 'fault abort: the httpStatus given');
$t0 = time;
$r = get('/delay');
my $dt = time - $t0;
is($r->{status}, 200, 'fault delay: then served');
ok($dt >= 0.38, sprintf('fault delay: %.2fs >= 400ms', $dt));
$be{shadow}->reset;
is(get("/mirror/$_")->{status}, 200, "mirror: request $_ served by stable") for 1 .. 5;
is($be{shadow}->wait_count(5), 5, 'mirror 100%: the shadow subset saw every request');
like(join(' ', map { $_->{headers}{host} } $be{shadow}->requests), qr/^(was-service-shadow ?){5}$/,
	"mirror: Host gets Envoy's -shadow suffix");

# ---- outlier detection: both pool hosts answer 503; maxEjectionPercent 50 ejects one only.
my $pool = 'outbound|8080|pool|was-service.blog-system.svc.cluster.local';
get('/outlier') for 1 .. 12;
ok(wait_for(sub { ($web->stat("cluster.$pool.outlier_detection.ejections_active") // 0) == 1 }, scale(3)),
	'outlier: one host ejected');
is($web->stat("cluster.$pool.outlier_detection.ejections_active"), 1, 'outlier: maxEjectionPercent 50 keeps the other');
my %left;
$left{ backend_of(get('/outlier')) }++ for 1 .. 6;
is(scalar(keys %left), 1, 'outlier: traffic goes to the host left in') or diag(explain(\%left));

# ---- security: STRICT mTLS on app1's port, PERMISSIVE on app2's (a workload-level portLevelMtls)
sub tls_get {
	my ($port, $path, $who) = @_;
	my @id = $who ? ('--cert', "$c/$who.pem", '--key', "$c/$who-key.pem") : ();
	my ($out, $rc) = curl('-o', '/dev/null', '-w', '%{http_code}', '--cacert', "$c/root.pem", @id,
		'--resolve', "was:$port:127.0.0.1", "https://was:$port$path");
	return $rc ? "curl $rc" : $out;
}
is(tls_get($was_in1, '/api/x', 'web'), 200, 'ALLOW: the principal, path and workload port match');
is(tls_get($was_in1, '/api/admin/x', 'web'), 403, 'DENY wins over a matching ALLOW');
is(tls_get($was_in1, '/ns/x', 'web'), 200, 'ALLOW by source namespace');
is(tls_get($was_in1, '/api/x', 'intruder'), 403, 'another namespace\'s principal: 403');
is(tls_get($was_in1, '/other', 'web'), 403, 'no rule for the path: 403');
$r = http_get($was_in1, '/public/x');
is($r->{status}, 0, 'STRICT: a plaintext request gets no answer');
is(tls_get($was_in2, '/public/x', 'web'), 200, 'PERMISSIVE: mTLS accepted');
$r = http_get($was_in2, '/public/x');
is($r->{status}, 200, 'PERMISSIVE: plaintext accepted');
is($r->{headers}{'x-backend-id'}, 'app2', 'PERMISSIVE port: the workload port behind it');
$r = http_get($was_in2, '/ns/x');
is($r->{status}, 403, 'plaintext has no namespace: 403');
is($r->{body}, 'RBAC: access denied', "Envoy's body");
is(tls_get($was_in2, '/api/x', 'web'), 403, 'ports: ["<app1 port>"] is the workload port: not this one');

# Through both sidecars: web originates ISTIO_MUTUAL (the api DestinationRule).
$r = http_get($web_api, '/api/x', host => 'api');
is($r->{status}, 200, 'web → was over ISTIO_MUTUAL: allowed');
is($r->{headers}{'x-backend-id'}, 'app1', 'web → was: the workload behind port app1');
like($r->{body}, qr{^x-forwarded-client-cert: .*URI=spiffe://cluster\.local/ns/blog-system/sa/default}mi,
	"web → was: was saw web's identity");
$r = http_get($web_api, '/other', host => 'api');
is($r->{status}, 403, 'web → was: a path no rule allows: 403');

# ---- a TCP service: the VirtualService's tcp route splits connections, the
# DestinationRule's maxConnections is a circuit breaker.
sub greeting {
	my ($s) = @_;
	my ($buf, $sel) = ('', IO::Select->new($s));
	while ($buf !~ /\n/ && $sel->can_read(scale(5))) {
		last unless sysread($s, $buf, 1, length $buf);
	}
	return $buf;
}
sub mysql_conn { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $web_mysql, Timeout => 5) or die "connect: $!" }
my @sub = map { "cluster.outbound|3306|$_|mysql.blog-system.svc.cluster.local" } qw(v1 v2);
sub tcp_idle { wait_for(sub { $web->stat("$sub[0].upstream_cx_active") + $web->stat("$sub[1].upstream_cx_active") == 0 }, scale(5)) }
my %tcp;
for (1 .. 40) {
	my $s = mysql_conn();
	$tcp{ greeting($s) }++;
	close $s;
	tcp_idle();	# closing is asynchronous: the next one must not meet the circuit breaker
}
is(join(',', sort keys %tcp), "mysql-v1\n,mysql-v2\n", 'tcp route: 50/50 over two subsets') or diag(explain(\%tcp));
# Two per subset (each subset is a cluster with the policy, as in Istio): of
# five connections held open, one subset gets a third, which is refused.
ok(tcp_idle(), 'tcp: the 40 connections closed upstream too');
my @held = map { mysql_conn() } 1 .. 5;
my $refused = grep { greeting($_) eq '' } @held;
ok($refused >= 1 && $refused <= 3, "maxConnections 2 per subset: $refused of 5 held connections closed at once");
ok(wait_for(sub { $web->stat("$sub[0].upstream_cx_overflow") + $web->stat("$sub[1].upstream_cx_overflow") == $refused }, scale(3)),
	'… counted upstream_cx_overflow');
close $_ for @held;

# ---- /config_dump says where derived objects came from
# as Istio says it (metadata.filter_metadata.istio.config), with the file and line.
my $res = dump_resources(config_dump($web_admin));
my @rmeta = map { $_->{metadata}{filter_metadata} // () } map { @{$_->{routes}} } map { @{$_->{virtual_hosts}} }
	values %{$res->{routes}};
my @cmeta = map { $_->{metadata}{filter_metadata} // () } values %{$res->{clusters}};
ok(grep({ ($_->{istio}{config} // '') eq '/apis/networking.istio.io/v1/namespaces/blog-system/virtual-service/was' } @rmeta),
	'/config_dump: a route carries its VirtualService as Istio writes it');
ok(grep({ ($_->{wingman}{source} // '') =~ m{istio/traffic\.yaml:\d+ VirtualService/blog-system/was$} } @rmeta),
	'  and its file and line');
ok(grep({ ($_->{istio}{config} // '') eq '/apis/networking.istio.io/v1/namespaces/blog-system/destination-rule/was' } @cmeta),
	'/config_dump: a cluster carries its DestinationRule as Istio writes it');
ok(grep({ ($_->{wingman}{source} // '') =~ m{istio/traffic\.yaml:\d+ DestinationRule/blog-system/was$} } @cmeta),
	'  and its file and line');

# ---- bad bundles
mkdir "$dir/bad";
spew("$dir/bad/vs.yaml", <<"EOF");
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: broken, namespace: blog-system }
spec:
  hosts: [was-service]
  tls: [{ match: [{ sniHosts: [was-service] }], route: [{ destination: { host: was-service } }] }]
  http:
    - route: [{ destination: { host: was-service, subset: nope, port: { number: 8080 } } }]
      corsPolicy: { allowOrigins: [{ exact: "*" }] }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: custom, namespace: blog-system }
spec:
  action: CUSTOM
  provider: { name: ext-authz }
  rules: [{}]
---
kind: VirtualService
metadata: [oops
EOF
spew("$dir/bad.yaml", "mesh:\n  resources: [bad/, istio/services.yaml]\n  namespace: blog-system\n"
	. "  workload: { labels: { app: was } }\n  intercept: false\n  outbound: 127.0.0.1:1\n");
$chk = `$bin -t -c $dir/bad.yaml 2>&1`;
isnt($?, 0, '-t refuses a bad bundle');
like($chk, qr{bad/vs\.yaml:2[01]:\d+: did not find expected ',' or ']'}, 'malformed YAML: FILE:LINE:COL');
$chk = do { spew("$dir/bad/vs.yaml", join("\n", (split /\n/, slurp("$dir/bad/vs.yaml"))[0 .. 16]) . "\n"); `$bin -t -c $dir/bad.yaml 2>&1` };
like($chk, qr{bad/vs\.yaml:6:3: VirtualService/broken: field tls is not supported}, 'unsupported field: a warning at its line');
like($chk, qr{bad/vs\.yaml:9:7: VirtualService/broken: field corsPolicy is not supported}, 'unsupported field in a route');
like($chk, qr{bad/vs\.yaml:\d+:\d+: VirtualService/broken: .*subset "nope"}, 'an unknown subset is an error');
like($chk, qr{bad/vs\.yaml:15:\d+: AuthorizationPolicy/custom: .*CUSTOM}, 'action CUSTOM is an error, never allowed');

# ---- a ConfigMap-style symlink swap changes routing under load
my ($live_port, $live_admin) = (free_port(), free_port());
my $live = "$dir/live";
mkdir $live;
sub live_version {
	my ($name, $subset) = @_;
	mkdir "$live/$name";
	spew("$live/$name/vs.yaml", <<"EOF");
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: was, namespace: blog-system }
spec:
  hosts: [was-service]
  http: [{ route: [{ destination: { host: was-service, subset: $subset } }] }]
EOF
}
live_version('..2026_12_05_01', 'stable');
live_version('..2026_12_05_02', 'canary');
symlink('..2026_12_05_01', "$live/..data") or die;
symlink('..data/vs.yaml', "$live/vs.yaml") or die;
spew("$dir/live-dr.yaml", <<"EOF");
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: was, namespace: blog-system }
spec:
  host: was-service
  subsets: [{ name: stable, labels: { version: stable } }, { name: canary, labels: { version: canary } }]
EOF
my $live_conf = <<"EOF";
workers: 2
admin: { address: 127.0.0.1:$live_admin }
mesh:
  resources: [live/, live-dr.yaml, istio/services.yaml]
  namespace: blog-system
  workload: { labels: { app: web } }
  intercept: false
  outbound: { "8080": 127.0.0.1:$live_port }
EOF
my $lw = start_wingman($live_conf);
is(backend_of(http_get($live_port, '/', host => 'was-service')), 'stable', 'live: routes to stable');
my $pid = fork // die;
if (!$pid) {
	my ($ok, $bad, %seen) = (0, 0);
	my $end = time + scale(6);
	while (time < $end) {
		my $x = http_get($live_port, '/', host => 'was-service');
		$x->{status} == 200 ? $ok++ : $bad++;
		$seen{ $x->{headers}{'x-backend-id'} // '' }++;
		select(undef, undef, undef, 0.01);
	}
	spew("$dir/load.out", "$ok $bad " . join(',', sort keys %seen));
	exit 0;
}
select(undef, undef, undef, 0.5);
symlink('..2026_12_05_02', "$live/..data_tmp") or die;
rename("$live/..data_tmp", "$live/..data") or die;
ok(wait_for(sub { backend_of(http_get($live_port, '/', host => 'was-service')) eq 'canary' }, scale(5)),
	'live: the swapped ConfigMap routes to canary, no SIGHUP');
waitpid($pid, 0);
my ($ok, $bad, $seen) = split / /, slurp("$dir/load.out");
is($bad, 0, "live: no failed request under load ($ok answered)");
is($seen, 'canary,stable', 'live: load saw both versions');
is($lw->stat('server.config_reload'), 1, 'live: one reload');

# A bad swap keeps the working config, and says why.
spew("$live/..2026_12_05_02/vs.yaml", "kind: VirtualService\nmetadata: { name: was }\nspec: { http: 3 }\n");
ok(wait_for(sub { ($lw->stat('server.config_reload_failed') // 0) == 1 }, scale(5)), 'live: a bad bundle fails the reload');
is(backend_of(http_get($live_port, '/', host => 'was-service')), 'canary', 'live: the old config keeps routing');
select(undef, undef, undef, 1.5);
is($lw->stat('server.config_reload_failed'), 1, 'live: a bad bundle is tried once, not every second');

$lw->term;
$web->term;
$was->term;
done_testing();
