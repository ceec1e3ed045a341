# Envoy's connection counters after real traffic over HTTP/1.1, HTTP/2, TLS
# and TCP: downstream_cx_rx/tx_bytes_total and upstream_cx_rx/tx_bytes_total
# count every byte (TLS: plaintext, as Envoy), upstream_cx_destroy splits into
# _local (wingman closed it) and _remote (the server closed or refused it) for
# every protocol, upstream_cx_http1_total/http2_total count connections by
# protocol, and upstream_cx_connect_ms, upstream_cx_length_ms and
# downstream_cx_length_ms are histograms with a sample per connection.
use strict;
use warnings;
use IO::Socket::INET;
use Test::More;
use Wingman;

my $ng = start_nginx(q{
	keepalive_timeout 1s;
	location = /close { add_header Connection close; return 200 "bye\n"; }
	location / { return 200 "0123456789\n"; }
});
my $np = $ng->port;
my $h2p = start_h2_backend();
my $c = test_certs();
my ($tport, $tcp, $dead) = map { free_port() } 1 .. 3;
my $wm = start_web(<<"EOF", listener => 'plain');
    routes:
      - { match: { prefix: /only }, route: { cluster: grpcish } }
      - { match: { prefix: /dead }, route: { cluster: dead } }
      - { match: { prefix: / }, route: { cluster: web } }
  - name: secure
    address: 127.0.0.1:$tport
    tls: { mode: SIMPLE, cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes: [{ match: { prefix: / }, route: { cluster: web } }]
  - { name: db, address: 127.0.0.1:$tcp, protocol: tcp, tcp_proxy: { stat_prefix: db, cluster: tcpweb } }
clusters:
  - { name: web, endpoints: [127.0.0.1:$np] }
  - { name: tcpweb, endpoints: [127.0.0.1:$np] }
  - { name: grpcish, protocol: http2, endpoints: [127.0.0.1:$h2p] }
  - { name: dead, endpoints: [127.0.0.1:$dead], connect_timeout: 1s }
EOF
my $port = $wm->port;
sub st { $wm->stats->{ $_[0] } // 0 }
my %before = map { $_ => st($_) } qw(http.plain.downstream_cx_rx_bytes_total http.plain.downstream_cx_total);

# HTTP/1.1: two requests on one connection; what the client sent and got is known exactly.
my $req = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 5) or die $!;
print $s $req;
my $resp = '';
$resp .= $_ while <$s>;
close $s;
like($resp, qr/0123456789.*0123456789/s, 'two responses');
ok(wait_for(sub { st('http.plain.downstream_cx_tx_bytes_total') >= length $resp }, scale(5)), 'tx counted');
is(st('http.plain.downstream_cx_rx_bytes_total'), length $req, 'downstream_cx_rx_bytes_total: every byte the client sent');
is(st('http.plain.downstream_cx_tx_bytes_total'), length $resp, 'downstream_cx_tx_bytes_total: every byte it got');
ok(st('cluster.web.upstream_cx_tx_bytes_total') > 2 * length("GET /a HTTP/1.1\r\n"), 'upstream_cx_tx_bytes_total');
ok(st('cluster.web.upstream_cx_rx_bytes_total') >= 2 * length("0123456789\n"), 'upstream_cx_rx_bytes_total');
is(st('cluster.web.upstream_cx_http1_total'), 1, 'one HTTP/1.1 upstream connection, reused');
is(st('cluster.web.upstream_cx_http2_total'), 0, 'no HTTP/2 one');

# nginx closes the idle pooled connection after its keepalive_timeout: _remote.
ok(wait_for(sub { st('cluster.web.upstream_cx_destroy') >= 1 }, scale(5)), 'idle upstream connection gone');
is(st('cluster.web.upstream_cx_destroy_remote'), 1, 'the server closed it: destroy_remote');
is(st('cluster.web.upstream_cx_destroy_local'), 0, 'not ours');
# A response with Connection: close: wingman closes it once read, as Envoy's pool does: _local.
http_get($port, '/close');
ok(wait_for(sub { st('cluster.web.upstream_cx_destroy') >= 2 }, scale(5)), 'second upstream connection gone');
is(st('cluster.web.upstream_cx_destroy_local'), 1, 'closed after Connection: close: destroy_local');
is(st('cluster.web.upstream_cx_http1_total'), 2, 'two HTTP/1.1 upstream connections in all');

# Refused: connect_fail, and _remote as Envoy counts a refused connect.
http_get($port, '/dead');
ok(wait_for(sub { st('cluster.dead.upstream_cx_destroy') >= 1 }, scale(5)), 'refused connection destroyed');
is(st('cluster.dead.upstream_cx_destroy_remote'), 1, 'refused: destroy_remote');

# HTTP/2 upstream and downstream.
my ($code) = curl('-s', '-o', '/dev/null', '-w', '%{http_code}', '--http2-prior-knowledge', "http://127.0.0.1:$port/only");
is($code, '200', 'HTTP/2 client to an HTTP/2 cluster');
is(st('cluster.grpcish.upstream_cx_http2_total'), 1, 'upstream_cx_http2_total');
ok(st('cluster.grpcish.upstream_cx_rx_bytes_total') > 9, 'HTTP/2 upstream bytes in (frames)');
ok(st('cluster.grpcish.upstream_cx_tx_bytes_total') > 24, 'HTTP/2 upstream bytes out (preface and frames)');

# TLS: plaintext bytes, as Envoy counts them.
my $tls_before = st('http.secure.downstream_cx_tx_bytes_total');
my ($body) = curl('-sk', "https://127.0.0.1:$tport/tls");
is($body, "0123456789\n", 'TLS request');
ok(wait_for(sub { st('http.secure.downstream_cx_rx_bytes_total') > 0 }, scale(5)), 'TLS rx counted');
my $tls_tx = st('http.secure.downstream_cx_tx_bytes_total') - $tls_before;
ok($tls_tx > length($body) && $tls_tx < 1000, "TLS tx is the plaintext response ($tls_tx bytes), not the records");

# TCP proxy: the cluster's byte counters too, and destroy split (start_wingman's
# readiness probe made a connection of its own: deltas).
my %tb = map { $_ => st("cluster.tcpweb.$_") }
	qw(upstream_cx_tx_bytes_total upstream_cx_rx_bytes_total upstream_cx_destroy upstream_cx_destroy_remote);
$s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $tcp, Timeout => 5) or die $!;
my $treq = "GET / HTTP/1.0\r\n\r\n";
print $s $treq;
my $tresp = '';
$tresp .= $_ while <$s>;
close $s;
sub tcpd { st("cluster.tcpweb.$_[0]") - $tb{ $_[0] } }
ok(wait_for(sub { tcpd('upstream_cx_destroy') >= 1 }, scale(5)), 'TCP upstream closed');
is(tcpd('upstream_cx_tx_bytes_total'), length $treq, 'TCP: upstream_cx_tx_bytes_total');
is(tcpd('upstream_cx_rx_bytes_total'), length $tresp, 'TCP: upstream_cx_rx_bytes_total');
is(tcpd('upstream_cx_destroy_remote'), 1, 'TCP: the HTTP/1.0 server closed it: destroy_remote');

# Histograms: one sample per finished connection.
sub hist_count {
	my ($metric, $labels) = @_;
	my $p = $wm->admin('/stats/prometheus');
	my $series = defined $labels ? "${metric}_count{$labels}" : "${metric}_count";
	return $p =~ /^\Q$series\E (\d+)$/m ? $1 : -1;
}
is(hist_count('envoy_cluster_upstream_cx_connect_ms', 'cluster_name="web"'), st('cluster.web.upstream_cx_total'),
	'upstream_cx_connect_ms: a sample per connect');
is(hist_count('envoy_cluster_upstream_cx_length_ms', 'cluster_name="web"'), st('cluster.web.upstream_cx_destroy'),
	'upstream_cx_length_ms: a sample per close');
is(hist_count('envoy_cluster_upstream_cx_connect_ms', 'cluster_name="dead"'), 0, 'no connect_ms for a refused connect');
ok(wait_for(sub { hist_count('envoy_http_plain_downstream_cx_length_ms') >= 3 }, scale(5)),
	'downstream_cx_length_ms: a sample per closed client connection');
like($wm->admin('/stats?filter=downstream_cx_length_ms'), qr/^listener\.127\.0\.0\.1_$tcp\.downstream_cx_length_ms: P0/m,
	'the TCP listener has listener.<address>.downstream_cx_length_ms');

done_testing();
