# Istio's TCP metrics for TCP proxy connections (issue 15, issue 16):
# istio_tcp_connections_opened_total, _closed_total, istio_tcp_sent_bytes_total
# and istio_tcp_received_bytes_total on /stats/prometheus, under Istio's labels
# (no response_code, request_protocol="tcp"): an inbound listener reports as
# destination with node.service, an outbound one as source with the service of
# its Istio-named cluster; received counts the client's bytes, sent the
# server's (greeting and echo); a connect failure is opened and closed with UF.
# Without istio_metrics: true there is none.
use strict;
use warnings;
use IO::Socket::INET;
use Test::More;
use Wingman;

my ($pback, $pin, $pout, $pdead, $dead, $admin) = map { free_port() } 1 .. 6;

start_tcp_echo($pback, 'HI');

my $conf = <<"EOF";
workers: 2
node: { id: was-v2-1, cluster: was.blog, workload: was-v2, namespace: blog, version: v2,
        service: was.blog.svc.cluster.local }
admin: { address: 127.0.0.1:$admin }
access_log: { path: off }
listeners:
  - { name: in, address: 127.0.0.1:$pin, direction: inbound, protocol: tcp, tcp_proxy: { cluster: app } }
  - { name: out, address: 127.0.0.1:$pout, direction: outbound, protocol: tcp,
      tcp_proxy: { cluster: "outbound|9000||tcp-echo.shop.svc.cluster.local" } }
  - { name: dead, address: 127.0.0.1:$pdead, direction: outbound, protocol: tcp, tcp_proxy: { cluster: dead } }
clusters:
  - { name: app, endpoints: [127.0.0.1:$pback] }
  - { name: "outbound|9000||tcp-echo.shop.svc.cluster.local", endpoints: [127.0.0.1:$pback] }
  - { name: dead, endpoints: [127.0.0.1:$dead] }
EOF
my $wm = start_wingman("istio_metrics: true\n$conf");

# Sends $data, then a FIN; returns what came back up to the server's close.
sub talk {
	my ($port, $data) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or die "connect: $!";
	syswrite($s, $data) if length $data;
	shutdown($s, 1);
	my $in = '';
	while (sysread($s, $in, 65536, length $in)) {}
	close $s;
	return $in;
}

is(talk($pin, 'x' x 1000), "HI\n" . ('x' x 1000), 'inbound echo') for 1 .. 3;
is(talk($pout, 'y' x 500), "HI\n" . ('y' x 500), 'outbound echo') for 1 .. 2;
is(talk($pdead, 'z'), '', 'dead cluster: closed');

sub series { prom_series(@_) }
sub value {
	my ($text, $name, %want) = @_;
	my @m = grep { my $s = $_; !grep { ($s->{labels}{$_} // "\0") ne $want{$_} } keys %want } series($text, $name);
	return @m == 1 ? $m[0]{value} : 'found ' . scalar(@m);
}

my %in = (reporter => 'destination', destination_service => 'was.blog.svc.cluster.local',
	destination_service_name => 'was', destination_service_namespace => 'blog', request_protocol => 'tcp',
	response_flags => '-', destination_workload => 'was-v2', source_workload => 'unknown',
	connection_security_policy => 'none');
my %out = (reporter => 'source', destination_service => 'tcp-echo.shop.svc.cluster.local',
	destination_service_name => 'tcp-echo', destination_service_namespace => 'shop', request_protocol => 'tcp',
	response_flags => '-', source_workload => 'was-v2', destination_workload => 'unknown');
my %dead = (reporter => 'source', destination_service => 'dead', response_flags => 'UF');
# start_wingman() waits for each listener with a bare connect: one more
# connection per listener, no bytes from the client, the greeting back.
my $p;
# Connections are reported as they close, on the workers' side of the FIN.
wait_for(sub { $p = scalar $wm->admin('/stats/prometheus');
	value($p, 'istio_tcp_connections_closed_total', %in) eq '4' &&
	value($p, 'istio_tcp_connections_closed_total', %out) eq '3' }, scale(10));
for my $f (qw(istio_tcp_connections_opened_total istio_tcp_connections_closed_total istio_tcp_sent_bytes_total
		istio_tcp_received_bytes_total)) {
	like($p, qr/^# TYPE $f counter$/m, "$f is a counter");
}
is(value($p, 'istio_tcp_connections_opened_total', %in), 4, 'inbound: 4 opened');
is(value($p, 'istio_tcp_connections_closed_total', %in), 4, 'inbound: 4 closed');
is(value($p, 'istio_tcp_received_bytes_total', %in), 3000, 'inbound: received = client bytes');
is(value($p, 'istio_tcp_sent_bytes_total', %in), 3 * 1003 + 3, 'inbound: sent = server bytes');
is(value($p, 'istio_tcp_connections_opened_total', %out), 3, 'outbound: 3 opened');
is(value($p, 'istio_tcp_received_bytes_total', %out), 1000, 'outbound: received');
is(value($p, 'istio_tcp_sent_bytes_total', %out), 2 * 503 + 3, 'outbound: sent');
is(value($p, 'istio_tcp_connections_opened_total', %dead), 2, 'connect failure: opened, UF');
is(value($p, 'istio_tcp_connections_closed_total', %dead), 2, 'connect failure: closed, UF');
my ($one) = series($p, 'istio_tcp_sent_bytes_total');
ok(!exists $one->{labels}{response_code} && !exists $one->{labels}{grpc_response_status},
	'no response_code nor grpc_response_status on TCP series');
is(scalar(my @r = series($p, 'istio_requests_total')), 0, 'no request series from TCP connections');
unlike($p, qr/^# TYPE istio_requests_total/m, 'no empty request families');
note((grep { /istio_tcp_sent_bytes_total\{/ } split /\n/, $p)[0]);
Wingman::stop_process($wm->pid);

my $off = start_wingman($conf);
talk($pin, 'x');
unlike(scalar $off->admin('/stats/prometheus'), qr/istio_tcp_/, 'no istio_tcp_* without istio_metrics: true');
Wingman::stop_process($off->pid);
done_testing();
