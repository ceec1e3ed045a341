# Istio standard metrics on /stats/prometheus: the four families with Istio's
# labels for inbound (reporter="destination") and outbound (reporter="source")
# listeners, the seed's Grafana query labels, summing over workers, requests
# that match no route (404 NR), and the per-worker cardinality bound.
use strict;
use warnings;
use Test::More;
use Wingman;

my $be = start_backend(handler => sub {
	my ($req) = @_;
	return make_response($req->{path} =~ /missing/ ? '404 Not Found' : '200 OK', 'twelve bytes');
});
my $bport = $be->port;
my ($pin, $pout, $admin) = (free_port(), free_port(), free_port());
my ($dead, $papi) = (free_port(), free_port());
my $wm = start_wingman(<<"EOF");
workers: 2
node: { id: was-v2-1, cluster: was.blog, workload: was-v2, namespace: blog, version: v2,
        service: was.blog.svc.cluster.local }
admin: { address: 127.0.0.1:$admin }
access_log: { path: off }
istio_metrics: true
listeners:
  - { name: inbound, address: 127.0.0.1:$pin, direction: inbound,
      routes: [ { match: { prefix: / }, route: { cluster: app } } ] }
  - name: outbound
    address: 127.0.0.1:$pout
    direction: outbound
    routes:
      - { match: { prefix: /dead }, route: { cluster: dead } }
      - { match: { prefix: / }, route: { cluster: app } }
  - { name: outbound-api, address: 127.0.0.1:$papi, direction: outbound,
      routes: [ { match: { prefix: /api }, route: { cluster: app } } ] }
clusters:
  - { name: app, endpoints: [127.0.0.1:$bport] }
  - { name: dead, endpoints: [127.0.0.1:$dead] }
EOF

http_get($pin, '/', body => 'hello') for 1 .. 3;
http_get($pin, '/missing');
http_get($pout, '/x', host => 'reviews.bookinfo.svc.cluster.local:9080') for 1 .. 2;
http_get($pout, '/dead', host => 'reviews.bookinfo.svc.cluster.local:9080');
my ($nrcode) = curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: ratings.bookinfo.svc.cluster.local:9080',
	"http://127.0.0.1:$papi/nowhere");

sub prom { scalar $wm->admin('/stats/prometheus') }
# { "name{labels}" => value } for one metric name, labels as a hash.
sub series { prom_series(@_) }
sub find {
	my ($list, %want) = @_;
	return grep { my $s = $_; !grep { ($s->{labels}{$_} // "\0") ne $want{$_} } keys %want } @$list;
}

my $p = prom();
like($p, qr/^# TYPE istio_requests_total counter$/m, 'istio_requests_total is a counter');
like($p, qr/^# TYPE istio_request_duration_milliseconds histogram$/m, 'duration is a histogram');
like($p, qr/^# TYPE istio_request_bytes histogram$/m, 'request bytes histogram');
like($p, qr/^# TYPE istio_response_bytes histogram$/m, 'response bytes histogram');

my @total = series($p, 'istio_requests_total');
my @labels = qw(reporter source_workload source_workload_namespace source_principal source_app source_version
	source_canonical_service source_canonical_revision source_cluster destination_workload
	destination_workload_namespace destination_principal destination_app destination_version destination_service
	destination_service_name destination_service_namespace destination_canonical_service
	destination_canonical_revision destination_cluster request_protocol response_code grpc_response_status
	response_flags connection_security_policy);
my @missing = grep { my $l = $_; grep { !exists $_->{labels}{$l} } @total } @labels;
is_deeply(\@missing, [], "every series has Istio's labels");

# The seed's Grafana query: sum(rate(istio_requests_total{destination_service=…, destination_version="v2"}[1m]))
my @inb = find(\@total, reporter => 'destination', destination_service => 'was.blog.svc.cluster.local',
	destination_version => 'v2');
my $sum = 0;
$sum += $_->{value} for @inb;
is($sum, 4, 'seed query labels select the 4 inbound requests');
my ($ok) = find(\@total, reporter => 'destination', response_code => '200');
is($ok && $ok->{value}, 3, 'inbound 200s: one series summed over both workers');
is_deeply($ok && { map { $_ => $ok->{labels}{$_} } qw(destination_workload destination_workload_namespace
	destination_app destination_canonical_service destination_canonical_revision destination_service_name
	destination_service_namespace source_workload source_principal destination_principal request_protocol
	response_flags connection_security_policy) },
	{ destination_workload => 'was-v2', destination_workload_namespace => 'blog', destination_app => 'was',
	  destination_canonical_service => 'was', destination_canonical_revision => 'v2',
	  destination_service_name => 'was', destination_service_namespace => 'blog', source_workload => 'unknown',
	  source_principal => 'unknown', destination_principal => 'unknown', request_protocol => 'http',
	  response_flags => '-', connection_security_policy => 'none' }, 'inbound labels');
my ($nf) = find(\@total, reporter => 'destination', response_code => '404');
is($nf && $nf->{value}, 1, 'inbound 404 is its own series');

my ($out) = find(\@total, reporter => 'source', response_code => '200');
is($out && $out->{value}, 2, 'outbound 200s');
is_deeply($out && { map { $_ => $out->{labels}{$_} } qw(source_workload source_workload_namespace source_version
	destination_service destination_service_name destination_service_namespace destination_workload
	connection_security_policy) },
	{ source_workload => 'was-v2', source_workload_namespace => 'blog', source_version => 'v2',
	  destination_service => 'reviews.bookinfo.svc.cluster.local', destination_service_name => 'reviews',
	  destination_service_namespace => 'bookinfo', destination_workload => 'unknown',
	  connection_security_policy => 'unknown' }, 'outbound labels: this workload is the source');
my ($uf) = find(\@total, reporter => 'source', response_code => '503');
is($uf && $uf->{labels}{response_flags}, 'UF', 'response_flags label on a failed upstream');

# No route: Envoy's local 404 NR is counted like any other response.
is($nrcode, '404', 'no route: 404');
my @nr = find(\@total, response_flags => 'NR');
is(scalar @nr, 1, 'no route: one series');
is_deeply(@nr ? { map { $_ => $nr[0]{labels}{$_} } qw(reporter response_code response_flags destination_service
	destination_service_name destination_service_namespace source_workload) } : undef,
	{ reporter => 'source', response_code => '404', response_flags => 'NR',
	  destination_service => 'ratings.bookinfo.svc.cluster.local', destination_service_name => 'ratings',
	  destination_service_namespace => 'bookinfo', source_workload => 'was-v2' }, 'no route: labels');
is(@nr && $nr[0]{value}, 1, 'no route: counted once');
my ($nrc) = find([series($p, 'istio_request_duration_milliseconds_count')], response_flags => 'NR');
is($nrc && $nrc->{value}, 1, 'no route: duration recorded');

# Histograms: buckets cumulative up to +Inf = count; sums in their units.
my @cnt = series($p, 'istio_request_duration_milliseconds_count');
my ($dc) = find(\@cnt, reporter => 'destination', response_code => '200');
is($dc && $dc->{value}, 3, 'duration count');
my @inf = find([series($p, 'istio_request_duration_milliseconds_bucket')], reporter => 'destination',
	response_code => '200', le => '+Inf');
is($inf[0] && $inf[0]{value}, 3, 'duration +Inf bucket');
my @le = map { $_->{value} } find([series($p, 'istio_request_duration_milliseconds_bucket')],
	reporter => 'destination', response_code => '200');
is_deeply(\@le, [sort { $a <=> $b } @le], 'buckets are cumulative');
my ($rb) = find([series($p, 'istio_request_bytes_sum')], reporter => 'destination', response_code => '200');
is($rb && $rb->{value}, 15, 'request bytes sum (3 x 5-byte bodies)');
my ($sb) = find([series($p, 'istio_response_bytes_sum')], reporter => 'destination', response_code => '200');
is($sb && $sb->{value}, 36, 'response bytes sum (3 x 12 bytes)');

# Cardinality: one worker, 1100 distinct hosts → at most 1024 series plus an overflow series.
my ($p2, $a2) = (free_port(), free_port());
my $w2 = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$a2 }
access_log: { path: off }
istio_metrics: true
listeners:
  - { name: outbound, address: 127.0.0.1:$p2, direction: outbound,
      routes: [ { match: { prefix: / }, route: { cluster: app } } ] }
clusters: [ { name: app, endpoints: [127.0.0.1:$bport] } ]
EOF
my $c = connect_port($p2);
for my $i (1 .. 1100) {
	send_bytes($c, "GET / HTTP/1.1\r\nHost: svc$i.ns.svc.cluster.local\r\n\r\n");
	read_response($c) or last;
}
close($c);
my @all = series(scalar $w2->admin('/stats/prometheus'), 'istio_requests_total');
is(scalar @all, 1025, '1024 series and one overflow series');
my ($of) = find(\@all, destination_service => 'overflow');
is($of && $of->{value}, 76, 'the overflow series counts the rest');
is($w2->stat('istio_metrics.series_overflow'), 76, 'istio_metrics.series_overflow counted');

# Off by default; a bad value is a located config error.
my ($p3, $a3) = (free_port(), free_port());
my $w3 = start_wingman(<<"EOF");
admin: { address: 127.0.0.1:$a3 }
access_log: { path: off }
listeners: [ { name: l, address: 127.0.0.1:$p3, routes: [ { match: { prefix: / }, route: { cluster: app } } ] } ]
clusters: [ { name: app, endpoints: [127.0.0.1:$bport] } ]
EOF
http_get($p3, '/');
unlike(scalar $w3->admin('/stats/prometheus'), qr/^istio_/m, 'no istio_ series without istio_metrics');
my $f = tmpdir() . '/bad-istio.yaml';
spew($f, "istio_metrics: sometimes\nlisteners: []\n");
my $bin = wingman_bin();
like(scalar `$bin -t -c $f 2>&1`, qr/bad-istio\.yaml:1:\d+: /, 'istio_metrics takes a boolean');
spew($f, "node: { workload: [a] }\nlisteners: []\n");
like(scalar `$bin -t -c $f 2>&1`, qr/bad-istio\.yaml:1:\d+: /, 'node.workload must be a string');

done_testing;
