# Bandwidth limits (issue 16): bandwidth_limit on a listener and on a cluster,
# bytes per second each way from one token bucket shared by all the
# connections (and workers). Measured with curl: a download and an upload
# through a limited listener, a download through a limited cluster (Envoy's
# limit_kbps/enable_mode form) and through a limited protocol: tcp listener,
# each within 10% of the limit (the burst, two fill_intervals' worth, is 2.5%
# of these transfers). Reading is paused, not buffered: while a fast
# nginx sends 8 MB into a 2 MiB/s download, wingman has read from it only what
# the limit let out (upstream_cx_rx_bytes_total) and its memory stays flat.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Wingman;

my $MiB = 1024 * 1024;
my ($ng, $big, $md5) = start_nginx_big_file(8 * $MiB);
spew($ng->html . '/files/small.bin', substr(slurp($big), 0, 2 * $MiB));
my $sink = start_backend(mode => 'md5');
my ($np, $sp) = ($ng->port, $sink->port);
my ($port, $cport, $tport, $admin) = map { free_port() } 1 .. 4;
my $wm = start_wingman(<<"EOF");
workers: 2
admin: { address: 127.0.0.1:$admin }
access_log: { path: off }
listeners:
  - name: web
    address: 127.0.0.1:$port
    bandwidth_limit: { download: 2MiB, upload: 512KiB, fill_interval: 50ms, stat_prefix: web_bw }
    routes:
      - { match: { prefix: /files/ }, route: { cluster: ng } }
      - { match: { prefix: / }, route: { cluster: sink } }
  - name: via-cluster
    address: 127.0.0.1:$cport
    routes: [{ match: { prefix: / }, route: { cluster: ng_limited } }]
  - name: tcp
    address: 127.0.0.1:$tport
    protocol: tcp
    bandwidth_limit: { download: 2MiB }
    tcp_proxy: { cluster: ng }
clusters:
  - { name: ng, endpoints: [127.0.0.1:$np] }
  - { name: sink, endpoints: [127.0.0.1:$sp] }
  - name: ng_limited
    endpoints: [127.0.0.1:$np]
    bandwidth_limit: { limit_kbps: 2048, enable_mode: RESPONSE, fill_interval: 50ms, stat_prefix: ng_bw }
EOF

sub rss_kb {
	my $s = slurp('/proc/' . $wm->pid . '/status');
	return $s =~ /^VmRSS:\s+(\d+)/m ? $1 : 0;
}

sub within {
	my ($got, $want, $what) = @_;
	diag(sprintf('%s: %.0f B/s for a limit of %d (%+.1f%%)', $what, $got, $want, 100 * ($got - $want) / $want));
	cmp_ok(abs($got - $want) / $want, '<=', 0.10, "$what within 10% of the limit");
}

# Download through the listener: 8 MB at 2 MiB/s, with curl in the background
# so that wingman can be watched meanwhile.
my $out = tmpdir() . '/curl-151.out';
my $rx0 = $wm->stat('cluster.ng.upstream_cx_rx_bytes_total');
my $rss0 = rss_kb();
my $t0 = time;
my $curl = Wingman::spawn(cmd => ['curl', '-sS', '-o', tmpdir() . '/big.out', '-w', '%{http_code} %{speed_download}',
	'--max-time', scale(30), "http://127.0.0.1:$port/files/big.bin"], stdout => $out);
sleep 1.5;
my $rx = $wm->stat('cluster.ng.upstream_cx_rx_bytes_total') - $rx0;
my $elapsed = time - $t0;	# after the read: an upper bound of the time it covers
my $rss = rss_kb();
diag(sprintf('after %.1f s: %d bytes read from nginx, RSS %d kB (was %d kB)', $elapsed, $rx, $rss, $rss0));
cmp_ok($rx, '<=', 2 * $MiB * $elapsed + $MiB, 'nginx sent 8 MB at once, wingman read only what the limit let out');
cmp_ok($rx, '>=', $MiB, '... and it did read');
SKIP: {
	skip 'RSS means nothing under ASan (freed memory is quarantined)', 1 if $ENV{WINGMAN_SANITIZERS};
	cmp_ok($rss - $rss0, '<', 4 * 1024, 'wingman holds nothing back: RSS grew by less than 4 MB');
}
wait_for(sub { waitpid($curl, Wingman::WNOHANG()) == $curl }, scale(30));
my ($code, $speed) = split ' ', slurp($out);
is($code, 200, 'download done');
is(md5_file(tmpdir() . '/big.out'), $md5, 'every byte arrived');
within($speed, 2 * $MiB, 'listener download');

# Upload through the listener: 2 MB at 512 KiB/s into a backend that reads it all.
my ($body, $rc) = curl('-H', 'Expect:', '-T', $ng->html . '/files/small.bin', '-w', '\n%{http_code} %{speed_upload}',
	"http://127.0.0.1:$port/upload");
my ($sum, $line) = (split /\n/, $body)[0, -1];
($code, $speed) = split ' ', $line // '';
is($code, 200, 'upload done');
is((split ' ', $sum // '')[1], 2 * $MiB, 'the backend got the whole body');
within($speed, 512 * 1024, 'listener upload');

# The cluster's limit, Envoy's form: limit_kbps 2048 (KiB/s), responses only.
($line) = curl('-o', '/dev/null', '-w', '%{http_code} %{speed_download}', "http://127.0.0.1:$cport/files/big.bin");
($code, $speed) = split ' ', $line;
is($code, 200, 'download through the limited cluster');
within($speed, 2 * $MiB, 'cluster download (limit_kbps)');

# A protocol: tcp listener: the same sockets, the same limit.
($line) = curl('-o', '/dev/null', '-w', '%{http_code} %{speed_download}', "http://127.0.0.1:$tport/files/big.bin");
($code, $speed) = split ' ', $line;
is($code, 200, 'download through the tcp_proxy listener');
within($speed, 2 * $MiB, 'tcp listener download');

my $s = $wm->stats;
cmp_ok($s->{'web_bw.http_bandwidth_limit.response_allowed_total_size'}, '>=', 8 * $MiB,
	'response_allowed_total_size counts the bytes sent');
cmp_ok($s->{'web_bw.http_bandwidth_limit.request_allowed_total_size'}, '>=', 2 * $MiB,
	'request_allowed_total_size counts the bytes read');
cmp_ok($s->{'web_bw.http_bandwidth_limit.response_enforced'}, '>', 0, 'response_enforced: sockets waited for tokens');
cmp_ok($s->{'web_bw.http_bandwidth_limit.request_enforced'}, '>', 0, 'request_enforced too');
cmp_ok($s->{'web_bw.http_bandwidth_limit.request_enabled'}, '>=', 2, 'request_enabled: the limited connections');
is($s->{'web_bw.http_bandwidth_limit.response_pending'}, 0, 'response_pending: none waiting now');
cmp_ok($s->{'ng_bw.http_bandwidth_limit.response_allowed_total_size'}, '>=', 8 * $MiB, "the cluster's stats");
is($s->{'ng_bw.http_bandwidth_limit.request_enabled'}, 0, 'enable_mode RESPONSE limits no request');
cmp_ok($s->{'tcp.http_bandwidth_limit.response_enforced'}, '>', 0, 'stat_prefix defaults to the listener name');

is_deeply(dump_resources(config_dump($wm->admin_port))->{listeners}{web}{metadata}{filter_metadata}{wingman}{bandwidth_limit},
	  { download => 2097152, upload => 524288, fill_interval => '0.050s', stat_prefix => 'web_bw' },
	  'config_dump: the limits in bytes per second, in the listener\'s metadata');

# Where a limit cannot work, the config says so.
my ($st, $msg) = wingman_check(<<"EOF");
listeners:
  - name: od
    address: 127.0.0.1:15001
    original_dst: true
    bandwidth_limit: { download: 1MiB }
  - name: l
    address: 127.0.0.1:$port
    bandwidth_limit: { upload: 1MiB, fill_interval: 5s }
    routes: [{ match: { prefix: / }, route: { cluster: c } }]
clusters:
  - name: c
    endpoints: [127.0.0.1:1]
    bandwidth_limit: { limit_kbps: 10 }
EOF
is($st, 1, 'bad limits refused');
like($msg, qr/:5:\d+: an original_dst listener hands connections on: configure bandwidth_limit/,
	'not on an original_dst listener');
like($msg, qr/:8:\d+: fill_interval must be from 20ms to 1s/, "fill_interval within Envoy's bounds");
like($msg, qr/limit_kbps and enable_mode go together/, "limit_kbps needs enable_mode (Envoy's default limits nothing)");

done_testing();
