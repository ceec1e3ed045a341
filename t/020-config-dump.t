# /config_dump in Envoy's v3 shape against a real wingman: the dumps and
# their order, listeners (HttpConnectionManager, PERMISSIVE's two filter
# chains, TcpProxy), routes (retry_policy, weighted clusters, RBAC),
# clusters (STRICT_DNS, outlier_detection, circuit breakers, upstream TLS),
# secrets (private keys redacted, never read), ?resource=, ?mask=,
# ?name_regex=, ?include_eds (an ejected host UNHEALTHY), Envoy's error
# texts, version_info after a reload, and `wingman config show` unchanged.
use strict;
use warnings;
use JSON::PP;
use Test::More;
use Wingman;

my $c = test_certs();
my $bad = start_backend(mode => '503');
my $ok = start_backend(mode => 'echo');
my ($tport, $tcp_port, $echo) = (free_port(), free_port(), free_port());
start_tcp_echo($echo, "hi");
my $conf = <<"EOF";
    routes:
      - name: api
        match: { prefix: /api, methods: [GET] }
        route: { weighted: [{ cluster: web, weight: 3 }, { cluster: flaky, weight: 1 }] }
        timeout: 2s
        retries: { attempts: 2, retry_on: "5xx,connect-failure", per_try_timeout: 500ms }
      - { name: flaky, match: { prefix: /flaky }, route: { cluster: flaky } }
      - { match: { prefix: / }, route: { cluster: web } }
  - name: mtls
    address: 127.0.0.1:$tport
    direction: inbound
    tls: { mode: PERMISSIVE, cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes:
      - match: { prefix: / }
        route: { cluster: web }
        rbac:
          - name: blog-system.was-authz
            action: ALLOW
            rules: [{ from: [{ source: { principals: ["cluster.local/ns/blog-system/sa/web"] } }],
                      to: [{ operation: { paths: ["/api/*"] } }] }]
  - name: tcp
    address: 127.0.0.1:$tcp_port
    protocol: tcp
    tcp_proxy: { cluster: echo }
clusters:
  - name: web
    endpoints: [127.0.0.1:${\ $ok->port}]
    connection_pool: { max_connections: 50, max_retries: 4 }
  - name: flaky
    endpoints: [127.0.0.1:${\ $bad->port}]
    outlier_detection: { consecutive_5xx: 2, base_ejection_time: 60s, max_ejection_percent: 100 }
  - name: dns
    endpoints: ["localhost:${\ $ok->port}"]
    tls: { mode: MUTUAL, cert: $c/web.pem, key: $c/web-key.pem, ca: $c/root.pem, sni: was,
           subject_alt_names: ["spiffe://cluster.local/ns/blog-system/sa/was"] }
  - { name: echo, endpoints: ["127.0.0.1:$echo"] }
EOF
my $wm = start_web($conf, listener => 'ingress', top => "node: { id: web-0, cluster: web.blog-system }\n");
my ($port, $admin) = ($wm->port, $wm->admin_port);

# ---- the whole dump
my ($d, $code, $raw) = config_dump($admin);
is($code, 200, '/config_dump 200');
is_deeply([map { $_->{'@type'} =~ s{^type\.googleapis\.com/envoy\.admin\.v3\.}{}r } @{$d->{configs}}],
	  [qw(BootstrapConfigDump ClustersConfigDump ListenersConfigDump ScopedRoutesConfigDump RoutesConfigDump
	      SecretsConfigDump)], "configs in Envoy's order, each with its \@type");
my $boot = dump_of($d, 'BootstrapConfigDump');
is($boot->{bootstrap}{node}{id}, 'web-0', 'bootstrap.node.id');
is($boot->{bootstrap}{admin}{address}{socket_address}{port_value}, $admin, 'bootstrap.admin.address');
like($boot->{last_updated}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$/, 'last_updated is an RFC 3339 Timestamp');
is(dump_of($d, 'ListenersConfigDump')->{version_info}, '1', 'version_info: the first generation');
my $r = dump_resources($d);

# listeners
my $l = $r->{listeners}{ingress};
is($l->{'@type'}, 'type.googleapis.com/envoy.config.listener.v3.Listener', 'a listener is a Listener');
is_deeply($l->{address}, { socket_address => { address => '127.0.0.1', port_value => $port } }, '  its address');
my $hcm = $l->{filter_chains}[0]{filters}[0];
is($hcm->{name}, 'envoy.filters.network.http_connection_manager', '  an HttpConnectionManager');
is($hcm->{typed_config}{rds}{route_config_name}, 'ingress', '  naming its route config by rds');
is($hcm->{typed_config}{http_filters}[-1]{name}, 'envoy.filters.http.router', '  the router last');
is($hcm->{typed_config}{stream_idle_timeout}, '300s', '  Durations in proto3 form');
my $m = $r->{listeners}{mtls};
is($m->{traffic_direction}, 'INBOUND', 'direction: traffic_direction');
is_deeply([map { $_->{filter_chain_match}{transport_protocol} } @{$m->{filter_chains}}], [qw(tls raw_buffer)],
	  "PERMISSIVE: Istio's two filter chains");
is($m->{listener_filters}[0]{name}, 'envoy.filters.listener.tls_inspector', '  behind a tls_inspector');
my $dtls = $m->{filter_chains}[0]{transport_socket}{typed_config};
is($dtls->{'@type'}, 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
   '  a DownstreamTlsContext');
ok($dtls->{require_client_certificate}, '  asking for a client certificate');
is($dtls->{common_tls_context}{tls_certificate_sds_secret_configs}[0]{name}, "file-cert:$c/was.pem~$c/was-key.pem",
   "  its certificate by SDS, under Istio's file-cert name");
ok(grep({ $_->{name} eq 'envoy.filters.http.rbac' } @{$m->{filter_chains}[0]{filters}[0]{typed_config}{http_filters}}),
   'RBAC on a route: the RBAC filter in the connection manager');
my $rbac = $r->{routes}{mtls}{virtual_hosts}[0]{routes}[0]{typed_per_filter_config}{'envoy.filters.http.rbac'} // {};
is($rbac->{'@type'}, 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute', '  the route\'s an RBACPerRoute');
my $pol = $rbac->{rbac}{rules}{policies}{'ns[blog-system]-policy[was-authz]-rule[0]'};
ok($pol, "  Istio's policy name");
is($pol->{principals}[0]{and_ids}{ids}[0]{or_ids}{ids}[0]{authenticated}{principal_name}{exact},
   'spiffe://cluster.local/ns/blog-system/sa/web', '  the principal as a SPIFFE ID');
is($pol->{permissions}[0]{and_rules}{rules}[0]{or_rules}{rules}[0]{url_path}{path}{prefix}, '/api/',
   '  the path as a url_path prefix');
my $t = $r->{listeners}{tcp}{filter_chains}[0]{filters}[0]{typed_config};
is_deeply([@$t{qw(stat_prefix cluster)}], [qw(tcp echo)], 'a tcp listener: a TcpProxy');

# routes
my @routes = @{$r->{routes}{ingress}{virtual_hosts}[0]{routes}};
my $api = $routes[0];
is($api->{name}, 'api', 'route name');
is_deeply($api->{match}{headers}, [{ name => ':method', string_match => { exact => 'GET' } }],
	  'a method is a :method header match');
is_deeply($api->{route}{weighted_clusters}{clusters}, [{ name => 'web', weight => 3 }, { name => 'flaky', weight => 1 }],
	  'weighted_clusters');
is($api->{route}{timeout}, '2s', 'route timeout');
is_deeply([@{$api->{route}{retry_policy}}{qw(retry_on num_retries per_try_timeout)}], ['5xx,connect-failure', 2, '0.500s'],
	  'retries: the RouteAction\'s retry_policy');
is($routes[2]{route}{timeout}, '0s', 'no timeout: 0s, as Istio writes it');

# clusters
my $web = $r->{clusters}{web};
is($web->{'@type'}, 'type.googleapis.com/envoy.config.cluster.v3.Cluster', 'a cluster is a Cluster');
is($web->{type}, 'STATIC', 'IP endpoints: STATIC');
is($web->{connect_timeout}, '5s', 'connect_timeout 5s');
ok(!exists $web->{lb_policy}, 'ROUND_ROBIN, the enum\'s zero, is left out');
is_deeply($web->{circuit_breakers}{thresholds}[0],
	  { max_connections => 50, max_pending_requests => 1024, max_requests => 1024, max_retries => 4 },
	  'circuit_breakers thresholds');
is_deeply($web->{load_assignment}{endpoints}[0]{lb_endpoints}[0]{endpoint}{address}{socket_address},
	  { address => '127.0.0.1', port_value => $ok->port }, 'load_assignment endpoint');
is_deeply([@{$r->{clusters}{flaky}{outlier_detection}}{qw(consecutive_5xx base_ejection_time max_ejection_percent)}],
	  [2, '60s', 100], 'outlier_detection');
my $dns = $r->{clusters}{dns};
is($dns->{type}, 'STRICT_DNS', 'a name among the endpoints: STRICT_DNS');
my $utls = $dns->{transport_socket}{typed_config};
is($utls->{'@type'}, 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
   'upstream TLS: an UpstreamTlsContext');
is($utls->{sni}, 'was', '  sni');
is_deeply($utls->{common_tls_context}{combined_validation_context}{default_validation_context}{match_typed_subject_alt_names},
	  [{ san_type => 'URI', matcher => { exact => 'spiffe://cluster.local/ns/blog-system/sa/was' } }],
	  '  the accepted SANs');

# secrets
my $sec = $r->{secrets}{"file-cert:$c/was.pem~$c/was-key.pem"};
is($sec->{tls_certificate}{certificate_chain}{filename}, "$c/was.pem", 'secret: the chain');
is_deeply($sec->{tls_certificate}{private_key}, { filename => '[redacted]' }, 'secret: the private key redacted');
is($r->{secrets}{"file-root:$c/root.pem"}{validation_context}{trusted_ca}{filename}, "$c/root.pem", 'secret: the CA');
my $key = slurp("$c/was-key.pem");
my ($key_line) = grep { length > 20 && !/^-----/ } split /\n/, $key;
ok($key_line && index($raw, $key_line) < 0, 'no byte of a private key in the dump');

# ---- ?resource=, ?mask=, ?name_regex=
($d) = config_dump($admin, 'resource=dynamic_listeners');
is_deeply([map { $_->{'@type'} } @{$d->{configs}}],
	  [('type.googleapis.com/envoy.admin.v3.ListenersConfigDump.DynamicListener') x 3],
	  'resource=dynamic_listeners: the items, each a config of its own type');
is_deeply([map { $_->{name} } @{$d->{configs}}], [qw(ingress mtls tcp)], '  in order');
($d) = config_dump($admin, 'resource=dynamic_active_clusters&mask=cluster.name,cluster.type');
is_deeply($d->{configs}[1], { '@type' => 'type.googleapis.com/envoy.admin.v3.ClustersConfigDump.DynamicCluster',
			      cluster => { '@type' => 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
					   name => 'flaky', type => 'STATIC' } },
	  'mask on each item: only the paths, @type kept');
($d) = config_dump($admin, 'mask=bootstrap.node.id');
is_deeply($d, { configs => [{ '@type' => 'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump',
			      bootstrap => { node => { id => 'web-0' } } }] },
	  'mask without resource: only the dumps it fits');
($d) = config_dump($admin, 'resource=dynamic_active_clusters&name_regex=fl.*&mask=cluster.name');
is_deeply([map { $_->{cluster}{name} } @{$d->{configs}}], ['flaky'], 'name_regex matches whole names');
($d) = config_dump($admin, 'resource=dynamic_listeners&mask=name,active_state.listener.filter_chains.filter_chain_match');
is_deeply($d->{configs}[1]{active_state}{listener}{filter_chains}[1], { filter_chain_match => { transport_protocol => 'raw_buffer' } },
	  'a mask path goes on into each element of an array');

my @errs = (
	['resource=bootstrap', 400, 'bootstrap is not a repeated field. Use ?mask=bootstrap to get only this field'],
	['resource=nope', 404, 'nope not found in config dump'],
	['mask=nope', 400, qq{FieldMask paths: "nope"\n could not be successfully applied to any configs.}],
	['resource=dynamic_listeners&mask=nope', 400, qq{FieldMask paths: "nope"\n could not be successfully used.}],
	['resource=dynamic_endpoint_configs', 404, 'dynamic_endpoint_configs not found in config dump'],
);
for my $e (@errs) {
	my ($q, $want, $text) = @$e;
	my (undef, $got, $body) = config_dump($admin, $q);
	is($got, $want, "?$q: $want");
	is($body, $text, '  with Envoy\'s text');
}
(undef, $code, $raw) = config_dump($admin, 'name_regex=(');
is($code, 400, 'a bad name_regex: 400');
like($raw, qr/^INVALID_ARGUMENT: Error while parsing name_regex from \(: /, '  Envoy\'s text');

# ---- ?include_eds: the hosts as they are; an ejected one UNHEALTHY
http_get($port, '/flaky') for 1 .. 2;
ok(wait_for(sub { $wm->stat('cluster.flaky.outlier_detection.ejections_active') == 1 }, scale(5)),
   'two 503s eject the flaky host');
($d) = config_dump($admin, 'include_eds');
ok(dump_of($d, 'EndpointsConfigDump'), 'include_eds adds an EndpointsConfigDump');
my %la = map { $_->{endpoint_config}{cluster_name} => $_->{endpoint_config} }
	@{dump_of($d, 'EndpointsConfigDump')->{dynamic_endpoint_configs} // []};
is($la{flaky}{endpoints}[0]{lb_endpoints}[0]{health_status}, 'UNHEALTHY', 'the ejected host is UNHEALTHY');
is($la{web}{endpoints}[0]{lb_endpoints}[0]{health_status}, 'HEALTHY', 'the others HEALTHY');
is($la{dns}{endpoints}[0]{lb_endpoints}[0]{endpoint}{hostname}, 'localhost', 'a resolved host keeps its hostname');

# ---- a reload is the next version
(my $conf2 = $conf) =~ s/timeout: 2s/timeout: 3s/;
$wm->write_conf(web_conf($conf2, admin => $admin, port => $port, listener => 'ingress',
			 top => "node: { id: web-0, cluster: web.blog-system }\n"));
$wm->hup;
ok(wait_for(sub { (dump_of(scalar(config_dump($admin)), 'ListenersConfigDump')->{version_info} // '') eq '2' }, scale(5)),
   'after SIGHUP: version_info 2');
is(dump_resources(config_dump($admin))->{routes}{ingress}{virtual_hosts}[0]{routes}[0]{route}{timeout}, '3s',
   '  with the new route timeout');

# ---- `wingman config show` still prints the native YAML
my $bin = wingman_bin();
my $f = $wm->conf;
my $show = `$bin config show -c $f 2>&1`;
is($?, 0, 'config show exits 0');
like($show, qr/^listeners:$/m, 'config show: native keys');
like($show, qr/retries:.*attempts: 2/s, '  as written, not Envoy\'s shape');
unlike($show, qr/"\@type"|configs:/, '  no /config_dump shape');
done_testing;
