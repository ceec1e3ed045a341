# The seed topology as pods (t/lib/Pod.pm): web (nginx proxying /api to
# was-service:8080, plus wingman), was (an HTTP app, a TCP echo, plus
# wingman), intruder (no sidecar; an HTTP server and TCP echoes). Traffic is
# intercepted either by `wingman intercept` (eBPF, no iptables rule at all) or
# by istio-init's iptables REDIRECT rules; run() checks that both behave the
# same. was-service is a virtual IP that nothing routes: only the outbound
# sidecar's original-destination routing makes it reachable, as in Kubernetes.
package PodSeed;

use strict;
use warnings;

use Test::More;
use Wingman ();
use Pod;

our $VIP = '10.96.0.10';
our $MYSQL_VIP = '10.96.0.11';	# a TCP service: the intruder's echo on 7000 stands in

sub wingman_yaml {
	my (%o) = @_;
	my $policy = $o{registry_only} ? "\n    outbound_policy: REGISTRY_ONLY" : '';
	my $top = $o{top} // '';
	return <<"YAML";
${top}admin: { address: 127.0.0.1:15000 }
workers: 2
listeners:
  - name: virtualOutbound
    address: 127.0.0.1:15001
    direction: outbound
    original_dst: true$policy
  - name: virtualInbound
    address: 0.0.0.0:15006
    direction: inbound
    original_dst: true
$o{listeners}
clusters:
$o{clusters}
YAML
}

sub web_wingman {
	my ($was_ip, $intr_ip, %o) = @_;
	return wingman_yaml(%o, listeners => <<"L", clusters => <<"C");
  - name: was-service_8080
    address: $VIP:8080
    bind_to_port: false
    direction: outbound
    routes:
      - match: { prefix: / }
        route: { cluster: "outbound|8080||was-service" }
  - name: ${MYSQL_VIP}_3306
    address: $MYSQL_VIP:3306
    bind_to_port: false
    direction: outbound
    protocol: tcp
    tcp_proxy: { cluster: "outbound|3306||mysql" }
L
  - name: "outbound|8080||was-service"
    endpoints: [ "$was_ip:8080" ]
  - name: "outbound|3306||mysql"
    endpoints: [ "$intr_ip:7000" ]
C
}

# Only the web pod may call the app (Istio AuthorizationPolicy semantics; by
# source IP, which is what the was sidecar sees of an intercepted connection).
sub was_wingman {
	my ($web_ip) = @_;
	return wingman_yaml(top => <<"T", listeners => <<"L", clusters => <<"C");
rbac:
  - name: only-web
    action: ALLOW
    rules:
      - from: [ { source: { ipBlocks: [ "$web_ip/32" ] } } ]
T
  - name: inbound_8080
    address: 0.0.0.0:8080
    bind_to_port: false
    direction: inbound
    routes:
      - match: { prefix: / }
        route: { cluster: "inbound|8080||" }
L
  - name: "inbound|8080||"
    endpoints: [ "127.0.0.1:8080" ]
    source_address: 127.0.0.6
C
}

sub stat_value {
	my ($pod, $name) = @_;
	my (undef, $out) = $pod->curl("http://127.0.0.1:15000/stats");
	return $out =~ /^\Q$name\E: (\d+)/m ? $1 : -1;
}

# Builds the pods and sidecars; mode is 'ebpf' or 'iptables'. Returns
# (net, web, was, intruder).
sub setup {
	my ($mode) = @_;
	my $net = Pod::Net->new;
	my $web = $net->pod('web', hosts => "$VIP was-service\n");
	my $was = $net->pod('was');
	my $intr = $net->pod('intruder', hosts => "$VIP was-service\n");

	$was->start_nginx(<<'NGX', wait_ports => [8080]);
server {
	listen 0.0.0.0:8080;
	location / { return 200 "app host=$http_host uri=$request_uri peer=$remote_addr\n"; }
}
NGX
	$was->start_tcp_echo(7000);
	$intr->start_nginx(<<'NGX', wait_ports => [8081]);
server {
	listen 0.0.0.0:8081;
	location / { return 200 "intruder says hi\n"; }
}
NGX
	$intr->start_tcp_echo(7000);
	$intr->start_tcp_echo(7001);
	$web->start_nginx(<<'NGX', wait_ports => [80]);
server {
	listen 127.0.0.1:80;
	location /api/ { proxy_pass http://was-service:8080; }
}
NGX
	# The init container's job, before the sidecars start.
	for my $pod ($web, $was) {
		if ($mode eq 'ebpf') {
			my ($rc, $out) = $pod->intercept('install', '--exclude-ports', '7001,15000');
			is($rc, 0, "$pod->{name}: intercept install") or diag($out);
		} else {
			$pod->iptables_redirect(exclude_ports => [7001]);
		}
	}
	$web->start_wingman(web_wingman($was->{ip}, $intr->{ip}));
	$was->start_wingman(was_wingman($web->{ip}));
	return ($net, $web, $was, $intr);
}

sub run {
	my ($mode) = @_;
	my ($net, $web, $was, $intr) = setup($mode);
	my ($rc, $out);

	if ($mode eq 'ebpf') {
		is($web->nat_rules . $was->nat_rules, '', 'no iptables rules in the pods');
		($rc, $out) = $web->intercept('status');
		is($rc, 0, 'status: everything attached') or diag($out);
		like($out, qr/cgroup\/connect4\s+attached(?s:.*)sk_lookup\s+attached/, 'status lists the links');
		like($out, qr/exclude ports: .*7001/, 'status shows the excluded ports');
		like($out, qr/inbound listening sockets: [1-9]/, 'the sidecar inbound listener was registered');
	} else {
		like($web->nat_rules, qr/REDIRECT --to-ports 15001/, 'istio-init rules in place');
	}

	# web-nginx → web-wingman (outbound, by original destination) →
	# was-wingman (inbound) → app, which sees the original Host.
	($rc, $out) = $web->curl('-i', 'http://127.0.0.1/api/hello?x=1');
	like($out, qr/^HTTP\/1\.1 200/, 'web → was-service: 200');
	like($out, qr/^app host=was-service:8080 uri=\/api\/hello\?x=1 peer=127\.0\.0\.6$/m,
		'the app sees the original Host, reached from 127.0.0.6');
	like($out, qr/^x-envoy-upstream-service-time: \d+/mi, 'answered through wingman');
	cmp_ok(stat_value($web, 'http.was-service_8080.downstream_rq_2xx'), '>=', 1,
		'web sidecar routed it by the original destination');
	cmp_ok(stat_value($web, 'cluster.outbound|8080||was-service.upstream_rq_2xx'), '>=', 1,
		'… to the was-service cluster');
	cmp_ok(stat_value($was, 'http.inbound_8080.downstream_rq_2xx'), '>=', 1, 'was sidecar took it inbound');

	($rc, $out) = $web->curl('http://127.0.0.1/api/a', 'http://127.0.0.1/api/b');
	like($out, qr/uri=\/api\/a.*\n.*uri=\/api\/b/, 'two requests in a row');

	# Not HTTP, unknown destination: PassthroughCluster, byte-exact, half-close.
	my ($head, $ok) = $web->tcp_echo($intr->{ip}, 7000, 300_000);
	ok($ok, 'outbound plain TCP passthrough is byte-exact both ways') or diag($head);
	like($head, qr/^peer=\Q$web->{ip}\E len=300000/, '… from the web pod, after the half-close');

	# A TCP service (as Istio's VIP_PORT listener): its tcp_proxy, not the passthrough.
	($head, $ok) = $web->tcp_echo($MYSQL_VIP, 3306, 200_000);
	ok($ok, 'TCP service by its VIP: byte-exact both ways through its tcp listener') or diag($head);
	like($head, qr/^peer=\Q$web->{ip}\E len=200000/, '… to the service\'s endpoint');
	cmp_ok(stat_value($web, "cluster.outbound|3306||mysql.upstream_cx_total"), '>=', 1, '… counted on its cluster');

	# Inbound plain TCP to a port with no listener: InboundPassthroughCluster.
	($head, $ok) = $intr->tcp_echo($was->{ip}, 7000, 100_000);
	ok($ok, 'inbound plain TCP is byte-exact both ways') or diag($head);
	like($head, qr/^peer=127\.0\.0\.6 len=100000/, '… through the was sidecar (from 127.0.0.6)');

	# HTTP to an unknown destination passes through (ALLOW_ANY).
	($rc, $out) = $web->curl("http://$intr->{ip}:8081/");
	is($out, "intruder says hi\n", 'ALLOW_ANY: unknown HTTP destination passes through');

	# The intruder (no sidecar) reaching the app is intercepted inbound too,
	# and refused by the was sidecar's RBAC.
	($rc, $out) = $intr->curl('-i', "http://$was->{ip}:8080/x");
	like($out, qr/^HTTP\/1\.1 403/, 'intruder → was: 403 from the was sidecar (RBAC)');
	like($out, qr/RBAC: access denied/, '… RBAC: access denied');
	cmp_ok(stat_value($was, 'http.inbound_8080.rbac.denied'), '>=', 1, 'counted as rbac.denied');

	# REGISTRY_ONLY: unknown destinations are refused, known ones still work,
	# excluded ports are not intercepted at all.
	Wingman::spew($web->{wingman_conf}, web_wingman($was->{ip}, $intr->{ip}, registry_only => 1));
	kill 'HUP', $web->{wingman_pid};
	ok(Wingman::wait_for(sub { $web->wingman_stderr =~ /config reloaded/ }, Wingman::scale(5)), 'reloaded');
	($rc, $out) = $web->curl('-i', "http://$intr->{ip}:8081/");
	like($out, qr/^HTTP\/1\.1 502/, 'REGISTRY_ONLY: unknown HTTP destination gets 502 (BlackHoleCluster)');
	($head, $ok) = $web->tcp_echo($intr->{ip}, 7000, 1000);
	ok(!$ok, 'REGISTRY_ONLY: unknown TCP destination is closed') or diag($head);
	($head, $ok) = $web->tcp_echo($intr->{ip}, 7001, 1000);
	ok($ok, 'an excluded port is not intercepted') or diag($head);
	($head, $ok) = $web->tcp_echo($MYSQL_VIP, 3306, 1000);
	ok($ok, 'REGISTRY_ONLY: a known TCP service still works') or diag($head);
	($rc, $out) = $web->curl('http://127.0.0.1/api/still');
	like($out, qr/^app host=was-service:8080 uri=\/api\/still/m, 'REGISTRY_ONLY: known service still works');

	if ($mode eq 'ebpf') {
		my $pins = "/sys/fs/bpf/wingman/cg" . (stat $web->{cgroup})[1];
		for my $pod ($web, $was) {
			($rc, $out) = $pod->intercept('remove');
			is($rc, 0, "$pod->{name}: intercept remove") or diag($out);
			($rc, $out) = $pod->intercept('status');
			is($rc, 1, "$pod->{name}: status after remove: not installed");
			$pod->{intercepted} = 0;
		}
		ok(!-e $pins, 'pins are gone');
		($rc, $out) = $web->curl('-o', '/dev/null', '-w', '%{http_code}', 'http://127.0.0.1/api/gone');
		isnt($out, '200', 'without interception was-service is unreachable');
	}
	$net->cleanup;
	ok(!-d $web->{cgroup} && !-e "/run/netns/$web->{ns}", 'pods cleaned up');
}

1;
