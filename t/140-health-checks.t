# Active health checks (Envoy's cluster health_checks, issue 16) against real
# peers: nginx endpoints whose /healthz is toggled down and up by a file,
# HTTP/1.1 and h2c checks, TCP connects (a closed port; send/receive payloads
# against an echo server), gRPC grpc.health.v1 against a @grpc/grpc-js server
# switching SERVING / NOT_SERVING, an endpoint that accepts and never answers
# (timeouts fail it, nothing leaks), degraded hosts, retriable statuses,
# no_traffic_interval, outlier detection combined with health checks (and the
# panic threshold over both), one checker however many workers, /clusters
# flags in text and JSON, health_check.* stats, and a reload keeping what the
# checks found.
use strict;
use warnings;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time sleep);
use Wingman;

my $lib = $INC{'Wingman.pm'} =~ s{/lib/[^/]+$}{}r;
BAIL_OUT('node modules missing: run ./bootstrap (npm ci --prefix t/node)')
	unless -d "$lib/node/node_modules/\@grpc/grpc-js";
my $ctl = tmpdir();

# ---- the peers
my %np = map { $_ => free_port() } qw(a b c d e f g n m);
my $servers = join '', map {
	my ($name, $healthz, $root) = @$_;
	"server { listen 127.0.0.1:$np{$name}; access_log $ctl/$name.log hc;\n"
	. "\tlocation = /healthz { $healthz }\n\tlocation / { add_header x-id $name always; $root }\n}\n"
} (
	[a => 'return 200 "ok\n";', 'return 200 "a\n";'],
	[b => "if (-f $ctl/b.down) { return 503; } return 200 \"ok\\n\";", 'return 200 "b\n";'],
	[c => "if (-f $ctl/c.429) { return 429; } return 200 \"ok\\n\";", 'return 200 "c\n";'],
	[d => 'add_header x-envoy-degraded 1 always; return 200 "ok\n";', 'return 200 "d\n";'],
	[e => 'return 503;', 'return 200 "e\n";'],
	[f => 'return 200 "ok\n";', 'return 503 "f\n";'],
	[g => 'return 200 "ok\n";', 'return 200 "g\n";'],
	[n => 'return 200 "ok\n";', 'return 200 "n\n";'],
	[m => 'return 503;', 'return 200 "m\n";'],
);
my $certs = test_certs();
$np{t} = free_port();
$servers .= "server { listen 127.0.0.1:$np{t} ssl http2; ssl_certificate $certs/was.pem; ssl_certificate_key $certs/was-key.pem;\n"
	. "\taccess_log $ctl/t.log hc; location = /healthz { return 200 \"ok\\n\"; } location / { return 200 \"t\\n\"; }\n}\n";
my $ng = start_nginx($servers, port => $np{a},
	http => q{log_format hc '$request_uri $host "$http_user_agent" "$http_x_hc" $connection $status $server_protocol';});
wait_for(sub { !grep { !port_open($np{$_}) } keys %np }, scale(10)) or BAIL_OUT('nginx servers not up');
my $hang = start_backend(mode => 'hang');
my $dead = free_port();
my $echo = free_port();
start_tcp_echo($echo, 'hello');
my $h2 = start_h2_backend();
my $gp = free_port();
spew("$ctl/grpc.state", "SERVING\n");
Wingman::spawn(cmd => ['node', "$lib/node/grpc-health-server.js", $gp, "$ctl/grpc.state"], stdout => "$ctl/grpc.out",
	stderr => "$ctl/grpc.err", name => 'grpc-health-server');
wait_for(sub { port_open($gp) }, scale(15)) or BAIL_OUT('gRPC health server did not start: ' . slurp("$ctl/grpc.err"));

sub hex_of { unpack('H*', $_[0]) }
my ($ping, $hello, $bye) = map { hex_of($_) } qw(ping hello bye);
my $fast = 'timeout: 1s, interval: 100ms, no_traffic_interval: 100ms';

my %o = (workers => 4, top => '');
my $clusters = <<"EOF";
clusters:
  - name: web
    endpoints: [127.0.0.1:$np{a}, 127.0.0.1:$np{b}]
    health_checks:
      - timeout: 3s
        interval: 100ms
        interval_jitter: 10ms
        no_traffic_interval: 100ms
        unhealthy_interval: 150ms
        unhealthy_threshold: 2
        healthy_threshold: 3
        healthy_edge_interval: 1500ms
        http_health_check:
          path: /healthz
          host: web.health
          expected_statuses: [{ start: 200, end: 300 }]
          request_headers_to_add: [{ header: { key: x-hc, value: "1" } }]
  - name: retr
    endpoints: [127.0.0.1:$np{c}]
    health_checks:
      - { $fast, unhealthy_edge_interval: 1500ms, unhealthy_threshold: 2, healthy_threshold: 1,
          http_health_check: { path: /healthz, retriable_statuses: [{ start: 429, end: 430 }] } }
  - name: deg
    endpoints: [127.0.0.1:$np{a}, 127.0.0.1:$np{d}]
    health_checks:
      - { $fast, unhealthy_threshold: 1, healthy_threshold: 1, reuse_connection: false,
          http_health_check: { path: /healthz } }
  - name: combo
    endpoints: [127.0.0.1:$np{g}, 127.0.0.1:$np{e}, 127.0.0.1:$np{f}]
    outlier_detection: { consecutive_5xx: 2, interval: 10s, base_ejection_time: 60s, max_ejection_percent: 100,
                         min_health_percent: 50 }
    health_checks:
      - { $fast, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: /healthz } }
  - name: tcp-closed
    endpoints: [127.0.0.1:$dead]
    health_checks:
      - { $fast, unhealthy_threshold: 2, healthy_threshold: 1, tcp_health_check: {} }
  - name: tcp-echo
    endpoints: [127.0.0.1:$echo]
    health_checks:
      - { $fast, unhealthy_threshold: 1, healthy_threshold: 1, reuse_connection: false,
          tcp_health_check: { send: { text: "$ping" }, receive: [{ text: "$hello" }, { text: "$ping" }] } }
  - name: tcp-mute
    endpoints: [127.0.0.1:$echo]
    health_checks:
      - { timeout: 300ms, interval: 100ms, no_traffic_interval: 100ms, unhealthy_threshold: 1, healthy_threshold: 1,
          tcp_health_check: { receive: [{ text: "$bye" }] } }
  - name: hang
    endpoints: [127.0.0.1:${\ $hang->port}, 127.0.0.1:$np{g}]
    health_checks:
      - { timeout: 200ms, interval: 50ms, no_traffic_interval: 50ms, unhealthy_threshold: 2, healthy_threshold: 1,
          http_health_check: { path: /healthz } }
  - name: grpc
    protocol: http2
    endpoints: [127.0.0.1:$gp]
    health_checks:
      - { $fast, unhealthy_threshold: 2, healthy_threshold: 2,
          grpc_health_check: { service_name: wingman.test.Echo, authority: grpc.health } }
  - name: grpc-unknown
    protocol: http2
    endpoints: [127.0.0.1:$gp]
    health_checks:
      - { $fast, unhealthy_threshold: 2, healthy_threshold: 2, grpc_health_check: { service_name: no.such.Service } }
  - name: h2c
    protocol: http2
    endpoints: [127.0.0.1:$h2]
    health_checks:
      - { $fast, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: /headers } }
  - name: h2c-as-h1
    protocol: http2
    endpoints: [127.0.0.1:$h2]
    health_checks:
      - { $fast, unhealthy_threshold: 1, healthy_threshold: 1,
          http_health_check: { path: /headers, codec_client_type: HTTP1 } }
  - name: tls
    endpoints: [127.0.0.1:$np{t}]
    tls: { mode: SIMPLE, ca: $certs/root.pem, sni: was }
    health_checks:
      - { $fast, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: /healthz, host: tls.health } }
  - name: tls-h2
    protocol: http2
    endpoints: [127.0.0.1:$np{t}]
    tls: { mode: SIMPLE, ca: $certs/root.pem, sni: was }
    health_checks:
      - { $fast, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: /healthz, host: h2.health } }
  - name: tls-rogue
    endpoints: [127.0.0.1:$np{t}]
    tls: { mode: SIMPLE, ca: $certs/rogue-root.pem, sni: was }
    health_checks:
      - { $fast, unhealthy_threshold: 1, healthy_threshold: 1, http_health_check: { path: /healthz } }
  - name: idle
    endpoints: [127.0.0.1:$np{n}]
    health_checks:
      - { timeout: 1s, interval: 50ms, no_traffic_interval: 2s, no_traffic_healthy_interval: 700ms,
          initial_jitter: 50ms, interval_jitter_percent: 10, unhealthy_threshold: 1, healthy_threshold: 1,
          http_health_check: { path: /healthz } }
  - name: idle-down
    endpoints: [127.0.0.1:$np{m}]
    health_checks:
      - { timeout: 1s, interval: 50ms, unhealthy_interval: 50ms, no_traffic_interval: 600ms,
          no_traffic_healthy_interval: 5s, unhealthy_threshold: 1, healthy_threshold: 1,
          http_health_check: { path: /healthz } }
EOF
my $routes = join '', map { "      - { match: { prefix: /$_/ }, route: { cluster: $_ } }\n" }
	qw(web retr deg combo tcp-closed hang idle);
my ($port, $admin) = (free_port(), free_port());
my $conf = sub { web_conf("    routes:\n$routes" . ($_[0] // ''), port => $port, admin => $admin, %o) . ($_[1] // $clusters) };
my $wm = start_wingman($conf->());

sub flags {
	my ($c, $p) = @_;
	my $h = $wm->cluster_hosts($c)->{"127.0.0.1:$p"};
	return $h ? $h->{health_flags} : '(no such host)';
}
sub hc { $wm->stat("cluster.$_[0].health_check.$_[1]") }
sub lines { grep { length } split /\n/, slurp("$ctl/$_[0].log") }
sub ids {
	my ($path, $n) = @_;
	return map { my $r = http_get($port, "$path$_"); ($r->{headers}{'x-id'} // '-') . ":$r->{status}" } 1 .. $n;
}

# ---- every host starts healthy and is checked at once, by one checker
ok(wait_for(sub { hc('web', 'success') >= 2 }, scale(5)), 'the first checks ran at start');
is(flags('web', $np{a}), 'healthy', 'web: a healthy');
is(flags('web', $np{b}), 'healthy', 'web: b healthy');
is(hc('web', 'healthy'), 2, 'health_check.healthy = 2');
my @web = grep { /^\/healthz web\.health / } lines('a');
like($web[0] // '', qr{^/healthz web\.health "Envoy/HC" "1" \d+ 200 HTTP/1\.1$}, "the check: GET /healthz, Host web.health, user-agent Envoy/HC, x-hc: 1");
my %conns = map { (split / /)[-3] => 1 } @web;
ok(keys %conns <= 2, 'reuse_connection (default): the checks share a connection (' . scalar(keys %conns) . ')');
# With 4 workers, one checker: about one check per interval (100ms) per host, not four.
my $n0 = grep { /^\/healthz web\.health / } lines('a');
my $t0 = time;
sleep 2;
my $per_s = ((grep { /^\/healthz web\.health / } lines('a')) - $n0) / (time - $t0);
ok($per_s >= 2 && $per_s <= 15, sprintf('checks of one host: %.1f/s with 4 workers (one checker: <= 10/s)', $per_s));
my %deg_conns = map { (split / /)[-3] => 1 } grep { /^\/healthz deg / } lines('d');
my $deg_checks = grep { /^\/healthz deg / } lines('d');
ok($deg_checks >= 2 && keys %deg_conns == $deg_checks, "reuse_connection: false: a connection per check ($deg_checks)");

my $dc = dump_resources(config_dump($admin))->{clusters}{web};
is_deeply($dc->{health_checks}[0]{http_health_check}, { path => '/healthz', host => 'web.health',
	expected_statuses => [{ start => '200', end => '300' }] },
	'/config_dump shows the health check (Envoy\'s HealthCheck; HTTP1 is the enum\'s zero, left out)');
is($dc->{health_checks}[0]{unhealthy_threshold}, 2, '... with its thresholds');

# ---- HTTP: /healthz answers 503: failed at once (Envoy: an active failure ignores unhealthy_threshold)
spew("$ctl/b.down", '');
ok(wait_for(sub { flags('web', $np{b}) eq '/failed_active_hc' }, scale(3)), 'b fails its checks: /failed_active_hc')
	or diag($wm->admin('/clusters'));
ok(hc('web', 'failure') >= 1, 'health_check.failure counted');
is(hc('web', 'network_failure'), 0, 'a 503 is not a network failure');
is(hc('web', 'healthy'), 1, 'health_check.healthy = 1');
my @got = ids('/web/', 20);
is(scalar(grep { $_ eq 'a:200' } @got), 20, 'while b fails its checks every request succeeds, on a');
my $json = decode_json(scalar $wm->admin('/clusters?format=json'));
my ($cs) = grep { $_->{name} eq 'web' } @{ $json->{cluster_statuses} };
my ($hb) = grep { $_->{address}{socket_address}{port_value} == $np{b} } @{ $cs->{host_statuses} };
is($hb->{health_status}{failed_active_health_check}, JSON::PP::true, 'JSON: failed_active_health_check true');
is($hb->{health_status}{failed_outlier_check}, JSON::PP::false, 'JSON: failed_outlier_check false');
is($hb->{health_status}{pending_active_hc}, JSON::PP::false, 'JSON: pending_active_hc false');

# ---- it comes back after healthy_threshold (3) successes, healthy_edge_interval (1.5s) apart
my $oks = sub { scalar grep { /^\/healthz web\.health .* 200 / } lines('b') };
my $ok0 = $oks->();
unlink "$ctl/b.down";
my $t_up = time;
ok(wait_for(sub { $oks->() > $ok0 }, scale(2)), 'b answers its check with 200 again');
sleep 0.5;
is(flags('web', $np{b}), '/failed_active_hc', 'one success is not enough: still failed 0.5s after it');
ok(wait_for(sub { flags('web', $np{b}) eq 'healthy' }, scale(6)), 'healthy again after healthy_threshold successes');
ok(time - $t_up >= 2.8, sprintf('three successes a healthy_edge_interval apart took %.1fs', time - $t_up));
@got = ids('/web/again', 10);
ok((grep { $_ eq 'b:200' } @got) >= 3, 'b takes traffic again');

# ---- retriable_statuses: a 429 counts toward unhealthy_threshold (2), unhealthy_edge_interval apart
is(flags('retr', $np{c}), 'healthy', 'retr: healthy');
# With traffic, so that the edge interval applies rather than no_traffic_interval.
is(http_get($port, '/retr/x')->{status}, 200, 'retr has traffic');
spew("$ctl/c.429", '');
ok(wait_for(sub { hc('retr', 'failure') >= 1 }, scale(3)), 'retr: a 429 fails a check');
is(flags('retr', $np{c}), 'healthy', 'one retriable failure leaves the host healthy');
ok(wait_for(sub { flags('retr', $np{c}) eq '/failed_active_hc' }, scale(4)), 'the second fails it');

# ---- degraded: x-envoy-degraded on /healthz
ok(wait_for(sub { flags('deg', $np{d}) eq '/degraded_active_hc' }, scale(3)), 'deg: /degraded_active_hc')
	or diag($wm->admin('/clusters'));
is(hc('deg', 'degraded'), 1, 'health_check.degraded = 1');
is(hc('deg', 'healthy'), 2, 'a degraded host is still healthy');
@got = ids('/deg/', 10);
is(scalar(grep { $_ eq 'a:200' } @got), 10, 'a degraded host takes no traffic while a healthy one is left');

# ---- TCP: a closed port fails after unhealthy_threshold network failures
ok(wait_for(sub { flags('tcp-closed', $dead) eq '/failed_active_hc' }, scale(3)), 'tcp connect to a closed port: /failed_active_hc');
ok(hc('tcp-closed', 'network_failure') >= 2, 'network_failure counted (' . hc('tcp-closed', 'network_failure') . ')');
my $r = http_get($port, '/tcp-closed/x');
is("$r->{status} $r->{body}", '503 no healthy upstream', 'its only host failing: 503 no healthy upstream');
# ... send/receive payloads: "ping" out, "hello" then "ping" back (in order); the greeting
# comes once per connection, so not reused

ok(wait_for(sub { hc('tcp-echo', 'success') >= 2 }, scale(3)), 'tcp send/receive: the echo passes');
is(flags('tcp-echo', $echo), 'healthy', 'tcp-echo healthy');
ok(wait_for(sub { flags('tcp-mute', $echo) eq '/failed_active_hc/active_hc_timeout' }, scale(3)),
	'tcp receive never matched: timeout, /failed_active_hc/active_hc_timeout');

# ---- an endpoint that accepts and never answers: timeouts, no leak, no stall
ok(wait_for(sub { flags('hang', $hang->port) eq '/failed_active_hc/active_hc_timeout' }, scale(3)),
	'hanging /healthz: /failed_active_hc/active_hc_timeout');
my $fds = sub { my @f = glob('/proc/' . $wm->pid . '/fd/*'); scalar @f };
my ($fd0, $fail0) = ($fds->(), hc('hang', 'network_failure'));
sleep 4;
ok(hc('hang', 'network_failure') - $fail0 >= 8, 'timeouts keep counting as network failures (' . (hc('hang', 'network_failure') - $fail0) . ' in 4s)');
# A leak would keep one descriptor per timed-out check (8 or more by now);
# checks of other clusters in flight at either moment account for a few.
ok($fds->() <= $fd0 + 5, "no descriptor leak: $fd0 then " . $fds->());
@got = ids('/hang/', 10);
is(scalar(grep { $_ eq 'g:200' } @got), 10, 'every request goes to the answering host, at once');
($cs) = grep { $_->{name} eq 'hang' } @{ decode_json(scalar $wm->admin('/clusters?format=json'))->{cluster_statuses} };
($hb) = grep { $_->{address}{socket_address}{port_value} == $hang->port } @{ $cs->{host_statuses} };
is($hb->{health_status}{active_hc_timeout}, JSON::PP::true, 'JSON: active_hc_timeout true');

# ---- gRPC grpc.health.v1: SERVING, NOT_SERVING, back; an unknown service is NOT_FOUND
ok(wait_for(sub { hc('grpc', 'success') >= 1 }, scale(3)), 'gRPC check: SERVING passes');
is(flags('grpc', $gp), 'healthy', 'grpc healthy');
like(slurp("$ctl/grpc.out"), qr/^check wingman\.test\.Echo grpc\.health Envoy\/HC deadline$/m,
	'the check: service_name, authority, user-agent Envoy/HC, a grpc-timeout');
ok(wait_for(sub { flags('grpc-unknown', $gp) eq '/failed_active_hc' }, scale(3)), 'an unknown service (NOT_FOUND) fails');
spew("$ctl/grpc.state", "NOT_SERVING\n");
ok(wait_for(sub { flags('grpc', $gp) eq '/failed_active_hc' }, scale(3)), 'NOT_SERVING: /failed_active_hc');
spew("$ctl/grpc.state", "SERVING\n");
ok(wait_for(sub { flags('grpc', $gp) eq 'healthy' }, scale(3)), 'SERVING again: healthy after healthy_threshold');

# ---- HTTP/2: the cluster's protocol (h2c); codec_client_type HTTP1 against an h2c-only server fails
ok(wait_for(sub { hc('h2c', 'success') >= 2 }, scale(3)), 'h2c check passes');
is(flags('h2c', $h2), 'healthy', 'h2c healthy');
ok(wait_for(sub { flags('h2c-as-h1', $h2) eq '/failed_active_hc' }, scale(3)), 'HTTP/1.1 check of an h2c-only server fails');

# ---- TLS: the cluster's tls block (HTTP/1.1, and HTTP/2 by ALPN); a server it does not trust fails
ok(wait_for(sub { hc('tls', 'success') >= 1 && hc('tls-h2', 'success') >= 1 }, scale(3)), 'checks over TLS pass');
is(flags('tls', $np{t}), 'healthy', 'tls healthy');
like(slurp("$ctl/t.log"), qr{^/healthz tls\.health "Envoy/HC" "-" \d+ 200 HTTP/1\.1$}m, 'an HTTP/1.1 check over TLS');
like(slurp("$ctl/t.log"), qr{^/healthz h2\.health "Envoy/HC" "-" \d+ 200 HTTP/2\.0$}m, 'an HTTP/2 check over TLS');
ok(wait_for(sub { flags('tls-rogue', $np{t}) eq '/failed_active_hc' }, scale(3)), 'an untrusted certificate fails the check');
ok(hc('tls-rogue', 'network_failure') >= 1, '... as a network failure');

# ---- no traffic: no_traffic_healthy_interval (700ms) for a healthy host, no_traffic_interval (600ms) for a failing one
my ($i0, $d0) = (hc('idle', 'attempt'), hc('idle-down', 'attempt'));
sleep 2.1;
my ($i1, $d1) = (hc('idle', 'attempt') - $i0, hc('idle-down', 'attempt') - $d0);
ok($i1 >= 1 && $i1 <= 6, "idle, healthy: $i1 checks in 2.1s (700ms apart, not interval's 50ms)");
ok($d1 >= 2 && $d1 <= 8, "idle, failing: $d1 checks in 2.1s (600ms apart)");
is(flags('idle-down', $np{m}), '/failed_active_hc', 'idle-down failed');
is(http_get($port, '/idle/x')->{status}, 200, 'a request: the cluster has had traffic');
sleep 1;
$i0 = hc('idle', 'attempt');
sleep 1;
ok(hc('idle', 'attempt') - $i0 >= 6, 'with traffic the checks are interval (50ms) apart: ' . (hc('idle', 'attempt') - $i0) . ' in 1s');

# ---- outlier detection and health checks together, and the panic threshold over both
ok(wait_for(sub { flags('combo', $np{e}) eq '/failed_active_hc' }, scale(3)), 'combo: e fails its checks');
my @seen;
for my $i (1 .. 12) {
	push @seen, ids("/combo/$i-", 1);
	last if flags('combo', $np{f}) eq '/failed_outlier_check';
}
is(flags('combo', $np{f}), '/failed_outlier_check', 'f, passing its checks, is ejected by outlier detection');
is(scalar(grep { /^e:/ } @seen), 0, 'no request reached e (failing its checks) meanwhile: ' . join(',', @seen));
@got = ids('/combo/panic', 12);
ok((grep { /^e:/ } @got) >= 2, 'two of three hosts out (one by each): below min_health_percent 50, panic uses all: ' . join(',', @got));

# ---- reload: a host keeps what its checks found; a host that joins waits for its first check
spew("$ctl/b.down", '');
ok(wait_for(sub { flags('web', $np{b}) eq '/failed_active_hc' }, scale(3)), 'b fails again');
my $att = hc('web', 'attempt');
unlink "$ctl/b.down";
$wm->write_conf($conf->("      - { match: { prefix: /new/ }, route: { cluster: web } }\n"));
$wm->hup;
ok(wait_for(sub { $wm->stat('server.config_reload') == 1 }, scale(5)), 'reloaded (a route added)');
is(flags('web', $np{b}), '/failed_active_hc', 'b is still failed after the reload (3 successes needed, 1.5s apart)');
ok(hc('web', 'attempt') >= $att, 'health_check.attempt carries on');
is(http_get($port, '/new/x')->{headers}{'x-id'}, 'a', 'the new route uses the checked hosts');
ok(wait_for(sub { flags('web', $np{b}) eq 'healthy' }, scale(5)), 'then b heals as before');

(my $more = $clusters) =~ s/endpoints: \[127\.0\.0\.1:$np{a}, 127\.0\.0\.1:$np{b}\]/endpoints: [127.0.0.1:$np{a}, 127.0.0.1:$np{b}, 127.0.0.1:${\ $hang->port}]/;
$wm->write_conf($conf->(undef, $more));
$wm->hup;
ok(wait_for(sub { $wm->stat('server.config_reload') == 2 }, scale(5)), 'reloaded (an endpoint that hangs added)');
is(flags('web', $hang->port), '/failed_active_hc/pending_active_hc', 'a joining host waits for its first check: /failed_active_hc/pending_active_hc');
@got = ids('/web/join', 6);
is(scalar(grep { /^[ab]:200$/ } @got), 6, 'no request goes to it');
ok(wait_for(sub { flags('web', $hang->port) eq '/failed_active_hc/active_hc_timeout' }, scale(6)),
	'its first check times out: /failed_active_hc/active_hc_timeout');
is(flags('web', $np{a}), 'healthy', 'the others keep their state');

(my $none = $clusters) =~ s/(  - name: web\n    endpoints: [^\n]+\n)    health_checks:\n(?:      [^\n]*\n)+/$1/;
spew("$ctl/b.down", '');
ok(wait_for(sub { flags('web', $np{b}) eq '/failed_active_hc' }, scale(3)), 'b fails once more');
$wm->write_conf($conf->(undef, $none));
$wm->hup;
ok(wait_for(sub { $wm->stat('server.config_reload') == 3 }, scale(5)), 'reloaded without web\'s health_checks');
is(flags('web', $np{b}), 'healthy', 'no checks: nothing flags b');
ok(!grep({ /^cluster\.web\.health_check\./ } keys %{ $wm->stats }), 'no health_check stats for web any more');
ok(grep({ /^cluster\.retr\.health_check\.attempt$/ } keys %{ $wm->stats }), 'the other clusters keep theirs');

ok($wm->alive, 'wingman still running');
is($wm->term(scale(10)), 0, 'exits cleanly');
done_testing;
