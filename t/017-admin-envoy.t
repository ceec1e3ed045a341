# The admin API in Envoy's shapes (admin.v3 protos as proto3 JSON): /listeners,
# /clusters?format=json, /stats?usedonly, ?histogram_buckets= (text, JSON,
# Prometheus), /stats/prometheus?filter=&usedonly,
# /logging, /reset_counters, /memory, /certs, /healthcheck/fail|ok with
# /ready, /drain_listeners, /server_info, /help and POST-only endpoints.
use strict;
use warnings;
use JSON::PP;
use Test::More;
use Wingman;

my $ng = start_nginx(q{
	location = /fail { return 503 "down\n"; }
	location / { return 200 "ok\n"; }
});
my $c = test_certs();
my ($tport, $dead) = (free_port(), free_port());
my $np = $ng->port;
my $wm = start_web(<<"EOF", workers => 2, listener => 'ingress', top => "node: { id: web-0, cluster: web.blog-system }\n");
    routes:
      - { match: { prefix: /uf }, route: { cluster: dead } }
      - { match: { prefix: /nr }, direct_response: { status: 404 } }
      - { match: { prefix: / }, route: { cluster: web } }
  - name: secure
    address: 127.0.0.1:$tport
    tls: { mode: SIMPLE, cert: $c/was.pem, key: $c/was-key.pem, ca: $c/root.pem }
    routes: [{ match: { prefix: / }, route: { cluster: web } }]
clusters:
  - name: web
    endpoints: [127.0.0.1:$np]
    connection_pool: { max_connections: 77 }
  - { name: dead, endpoints: [127.0.0.1:$dead], connect_timeout: 1s }
EOF
my ($port, $admin) = ($wm->port, $wm->admin_port);
my $J = JSON::PP->new;
sub jget { my ($p) = @_; my ($code, $body) = admin_get($admin, $p); return ($code, eval { $J->decode($body) }, $body) }
sub post { my ($p) = @_; return admin_get($admin, $p, method => 'POST') }

# Traffic of a few kinds: 2xx, 5xx, UF (nothing listens), TLS.
http_get($port, '/') for 1 .. 3;
http_get($port, '/fail');
http_get($port, '/uf');
curl('-sk', "https://127.0.0.1:$tport/");
ok(wait_for(sub { ($wm->stats->{'cluster.web.upstream_rq_total'} // 0) >= 5 }, scale(5)), 'traffic counted');

# /listeners
my ($code, $body) = admin_get($admin, '/listeners');
is($code, 200, '/listeners 200');
is($body, "ingress::127.0.0.1:$port\nsecure::127.0.0.1:$tport\n", '/listeners text is name::address per line');
my ($j, $raw);
($code, $j) = jget('/listeners?format=json');
is_deeply($j, { listener_statuses => [
	{ name => 'ingress', local_address => { socket_address => { address => '127.0.0.1', port_value => $port } } },
	{ name => 'secure', local_address => { socket_address => { address => '127.0.0.1', port_value => $tport } } },
] }, '/listeners?format=json is admin.v3.Listeners');

# /clusters?format=json; the text form is unchanged.
($code, $j) = jget('/clusters?format=json');
is($code, 200, '/clusters?format=json 200');
my ($web) = grep { $_->{name} eq 'web' } @{ $j->{cluster_statuses} // [] };
ok($web, 'cluster_statuses has web');
is($web->{added_via_api}, JSON::PP::true, 'added_via_api true: from the reloadable file, a dynamic cluster in /config_dump');
is($web->{circuit_breakers}{thresholds}[0]{priority}, 'DEFAULT', 'thresholds priority DEFAULT');
is($web->{circuit_breakers}{thresholds}[0]{max_connections}, 77, 'max_connections from the config');
ok(defined $web->{circuit_breakers}{thresholds}[0]{$_}, "threshold $_") for qw(max_pending_requests max_requests max_retries);
my $h = $web->{host_statuses}[0];
is_deeply($h->{address}, { socket_address => { address => '127.0.0.1', port_value => $np } }, 'host address');
my %hs = map { $_->{name} => $_ } @{ $h->{stats} };
is($hs{rq_total}{value}, '5', 'host rq_total (uint64 as a string, proto3 JSON)');
is($hs{rq_total}{type}, 'COUNTER', 'rq_total is a COUNTER');
is($hs{cx_active}{type}, 'GAUGE', 'cx_active is a GAUGE');
is($h->{health_status}{eds_health_status}, 'HEALTHY', 'eds_health_status');
is($h->{health_status}{failed_outlier_check}, JSON::PP::false, 'failed_outlier_check false');
is($h->{weight}, 1, 'weight');
($code, $body) = admin_get($admin, '/clusters');
like($body, qr/^web::127\.0\.0\.1:$np\::rq_total::5$/m, '/clusters text as before');

# /stats?usedonly, with filter and format=json; /stats/prometheus honours both.
my $all = $wm->admin('/stats');
my $used = $wm->admin('/stats?usedonly');
ok(length($used) < length($all), 'usedonly lists fewer stats');
like($used, qr/^cluster\.web\.upstream_rq_total: 5$/m, 'a used counter is listed');
unlike($used, qr/^cluster\.web\.upstream_rq_retry: /m, 'a never-used counter is not');
like($all, qr/^cluster\.web\.upstream_rq_retry: 0$/m, 'but is without usedonly');
($code, $j) = jget('/stats?usedonly&filter=^cluster\.web\.&format=json');
my @names = map { $_->{name} // () } @{ $j->{stats} };
ok(@names && !grep({ !/^cluster\.web\./ } @names), 'usedonly + filter + json: only matching names');
ok(!grep({ $_ eq 'cluster.web.upstream_rq_retry' } @names), 'usedonly + json: unused left out');
($code, $body) = admin_get($admin, '/stats/prometheus?filter=upstream_rq_total');
is($code, 200, 'prometheus with a filter 200');
my @fam = $body =~ /^# TYPE (\S+)/mg;
is_deeply(\@fam, ['envoy_cluster_upstream_rq_total'], 'prometheus filter on the Envoy name');
like($body, qr/^envoy_cluster_upstream_rq_total\{cluster_name="web"\} 5$/m, 'filtered series');
($code, $body) = admin_get($admin, '/stats/prometheus?usedonly');
unlike($body, qr/upstream_rq_retry\{/, 'prometheus usedonly leaves unused out');
like($body, qr/^envoy_cluster_upstream_rq_total\{cluster_name="web"\} 5$/m, 'and keeps used ones');
($code) = admin_get($admin, '/stats/prometheus?filter=(');
is($code, 400, 'prometheus: a broken filter is a 400');

# ?histogram_buckets= (Envoy's modes) on cluster.web.upstream_rq_time: 5 samples.
my $h5 = qr/cluster\.web\.upstream_rq_time/;
($code, $body) = admin_get($admin, '/stats?filter=upstream_rq_time&histogram_buckets=cumulative');
my ($cum) = $body =~ /^$h5: (.*)$/m;
my @cb = ($cum // '') =~ /B([\d.e+]+)\((\d+),(\d+)\)/g;
is(scalar(@cb), 57, 'cumulative: B<bound>(interval,cumulative) for each of the 19 bounds');
is_deeply([@cb[0, 54, 56]], ['0.5', '3.6e+06', 5], '  bounds as Envoy prints them (%g), the last counting all 5');
my @cums = @cb[map { 3 * $_ + 2 } 0 .. 18];
ok(!grep({ $cums[$_] < $cums[$_ - 1] } 1 .. 18), '  never decreasing');
($code, $body) = admin_get($admin, '/stats?filter=upstream_rq_time&histogram_buckets=disjoint');
my ($dis) = $body =~ /^$h5: (.*)$/m;
my $sum = 0;
$sum += $_ for ($dis // '') =~ /B[\d.e+]+\(\d+,(\d+)\)/g;
is($sum, 5, 'disjoint: the buckets\' own counts add up to the samples');
($code, $body) = admin_get($admin, '/stats?filter=upstream_rq_time&histogram_buckets=detailed');
like($body, qr/^$h5:\n  totals=[\d.]+,[\d.]+:\d+.*\n  intervals=.*\n  summary=P0\(/m, 'detailed: totals, intervals, summary');
my ($tot) = $body =~ /^$h5:\n  totals=(.*)$/m;
$sum = 0;
$sum += $_ for ($tot // '') =~ /:(\d+)/g;
is($sum, 5, '  the used buckets count the 5 samples');
for my $m (qw(summary none)) {
	($code, $body) = admin_get($admin, "/stats?filter=upstream_rq_time&histogram_buckets=$m");
	like($body, qr/^$h5: P0\([\d.]+,[\d.]+\) P25\(/m, "$m: the quantile summary");
}
($code, $j) = jget('/stats?filter=upstream_rq_time&histogram_buckets=cumulative&format=json');
my ($jh) = grep { $_->{name} eq 'cluster.web.upstream_rq_time' } @{ ($j->{stats}[-1] // {})->{histograms} // [] };
is(scalar(@{ $jh->{buckets} // [] }), 19, 'json cumulative: {name, buckets[{upper_bound, interval, cumulative}]}');
is_deeply([@{ $jh->{buckets}[-1] }{qw(upper_bound cumulative)}], [3600000, 5], '  up to 3600000, all 5');
($code, $j) = jget('/stats?filter=upstream_rq_time&histogram_buckets=detailed&format=json');
my $det = ($j->{stats}[-1] // {})->{histograms} // {};
is($det->{supported_percentiles}[2], 50, 'json detailed: supported_percentiles');
($jh) = grep { $_->{name} eq 'cluster.web.upstream_rq_time' } @{ $det->{details} // [] };
$sum = 0;
$sum += $_->{count} for @{ $jh->{totals} // [] };
is($sum, 5, '  details[].totals[{lower_bound, width, count}] count the samples');
is(scalar(@{ $jh->{percentiles} // [] }), 10, '  with the percentiles');
($code, $body) = admin_get($admin, '/stats?histogram_buckets=bogus');
is($code, 400, 'an unknown mode: 400');
is($body, "usage: /stats?histogram_buckets=(cumulative|disjoint|detailed|summary)\n", '  with Envoy\'s usage');
($code, $body) = admin_get($admin, '/stats/prometheus?filter=upstream_rq_time&histogram_buckets=summary');
like($body, qr/^# TYPE envoy_cluster_upstream_rq_time summary$/m, 'prometheus summary: the family is a summary');
like($body, qr/^envoy_cluster_upstream_rq_time\{cluster_name="web",quantile="0.99"\} [\d.]+$/m, '  with quantile series');
like($body, qr/^envoy_cluster_upstream_rq_time_count\{cluster_name="web"\} 5$/m, '  and _count');
($code, $body) = admin_get($admin, '/stats/prometheus?filter=upstream_rq_time&histogram_buckets=cumulative');
like($body, qr/^envoy_cluster_upstream_rq_time_bucket\{cluster_name="web",le="\+Inf"\} 5$/m,
     'prometheus cumulative: the classic buckets');
for my $m (qw(disjoint detailed)) {
	($code, $body) = admin_get($admin, "/stats/prometheus?histogram_buckets=$m");
	is($code, 400, "prometheus $m: 400, as Envoy");
	is($body, "unsupported prometheus histogram bucket mode\n", '  with Envoy\'s text');
}

# /reset_counters zeroes counters, not gauges.
($code) = admin_get($admin, '/reset_counters');
is($code, 405, 'GET /reset_counters is 405');
($code, $body) = post('/reset_counters');
is($code, 200, 'POST /reset_counters 200');
my $st = $wm->stats;
is($st->{'cluster.web.upstream_rq_total'}, 0, 'counter zeroed');
ok(!exists $st->{'cluster.web.upstream_rq_200'}, 'per-code counters zeroed (unlisted when 0)');
is($st->{'server.concurrency'}, 2, 'gauge kept');
http_get($port, '/');
ok(wait_for(sub { ($wm->stats->{'cluster.web.upstream_rq_total'} // 0) == 1 }, scale(5)), 'counts again from 0');

# /logging
($code, $body) = admin_get($admin, '/logging');
is($code, 200, 'GET /logging lists the levels');
like($body, qr/^active loggers:\n  wingman: \w+$/m, '... one logger and its level');
($code) = admin_get($admin, '/logging?level=debug');
is($code, 405, 'GET /logging?level= is 405: a change needs POST (Envoy: mutating)');
($code, $body) = post('/logging');
is($code, 200, 'POST /logging lists');
like($body, qr/^active loggers:\n  wingman: info\n/m, 'active loggers in Envoy text');
($code, $body) = post('/logging?level=warning');
like($body, qr/^  wingman: warning$/m, 'level=warning applied');
($code, $body) = post('/logging?paths=wingman:debug');
like($body, qr/^  wingman: debug$/m, 'paths=wingman:debug applied');
like($body, qr/compiled out|trace is debug/, 'says whether debug lines exist in this build');
($code, $body) = post('/logging?level=loud');
is($code, 404, 'unknown level: 404 with usage');
like($body, qr/^usage: \/logging\?level=<level>/m, 'usage');
($code) = post('/logging?nosuch=info');
is($code, 404, 'unknown logger: 404');
post('/logging?level=info');

# /memory
($code, $j) = jget('/memory');
is($code, 200, '/memory 200');
is_deeply([sort keys %$j], [sort qw(allocated heap_size pageheap_unmapped pageheap_free total_thread_cache total_physical_bytes)],
	  'admin.v3.Memory fields');
ok(!grep({ !/^\d+$/ } values %$j), 'uint64 strings');
ok($j->{total_physical_bytes} > 0, 'RSS non-zero');
# allocated comes from glibc's mallinfo2(), which sees nothing of an ASan
# build's allocations (ASan's allocator replaces malloc): 0 there.
SKIP: {
	skip 'under the sanitizers mallinfo2() does not see the allocations', 1 if $ENV{WINGMAN_SANITIZERS};
	ok($j->{allocated} > 0, 'allocated non-zero');
}

# /certs
($code, $j, $raw) = jget('/certs');
is($code, 200, '/certs 200');
my @certs = @{ $j->{certificates} // [] };
is(scalar(@certs), 1, 'one TLS context, one entry');
my $chain = $certs[0]{cert_chain}[0] // {};
is($chain->{path}, "$c/was.pem", 'cert_chain path');
like($chain->{serial_number} // '', qr/^[0-9a-f]+$/, 'serial_number hex');
like($chain->{days_until_expiration} // '', qr/^\d+$/, 'days_until_expiration');
like($chain->{$_} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, "$_ RFC 3339") for qw(valid_from expiration_time);
my @sans = @{ $chain->{subject_alt_names} // [] };
ok((grep { exists $_->{uri} } @sans) && (grep { exists $_->{dns} } @sans), 'subject_alt_names as {uri} and {dns}');
is($certs[0]{ca_cert}[0]{path}, "$c/root.pem", 'ca_cert');
unlike($raw, qr/key\.pem|PRIVATE/, 'no private key material');

# /server_info
($code, $j) = jget('/server_info');
is($j->{state}, 'LIVE', 'state LIVE');
like($j->{uptime_current_epoch}, qr/^\d+s$/, 'uptime_current_epoch a Duration');
ok(exists $j->{hot_restart_version}, 'hot_restart_version');
is($j->{command_line_options}{concurrency}, 2, 'command_line_options.concurrency');
is($j->{node}{id}, 'web-0', 'node.id');
is($j->{node}{cluster}, 'web.blog-system', 'node.cluster');
is(ref $j->{node}{metadata}, 'HASH', 'node.metadata');

# /healthcheck/fail and ok
($code) = post('/healthcheck/fail');
is($code, 200, 'POST /healthcheck/fail');
($code, $body) = admin_get($admin, '/ready');
is("$code $body", "503 DRAINING\n", '/ready 503 DRAINING while failed');
($code, $j) = jget('/server_info');
is($j->{state}, 'DRAINING', 'server_info state DRAINING');
is($wm->stats->{'server.state'}, 1, 'server.state 1');
post('/healthcheck/ok');
($code, $body) = admin_get($admin, '/ready');
is("$code $body", "200 LIVE\n", '/ready LIVE again after /healthcheck/ok');

# /help lists every endpoint; POST-only ones answer GET with 405.
($code, $body) = admin_get($admin, '/help');
for my $p (qw(/certs /clusters /config_dump /drain_listeners /healthcheck/fail /healthcheck/ok /help /listeners
	      /logging /memory /quitquitquit /ready /reset_counters /server_info /stats /stats/prometheus)) {
	like($body, qr/^  \Q$p\E: \S/m, "/help lists $p");
}
my $r;
($code, $body, $r) = admin_get($admin, '/healthcheck/fail');
is($code, 405, 'GET /healthcheck/fail 405');
like($body, qr/^Method GET not allowed, POST required\./, "Envoy's 405 text");
is($r->{headers}{allow}, 'POST', 'Allow: POST');

# /drain_listeners: stop accepting, keep running.
($code) = post('/drain_listeners?inboundonly');
is($code, 200, 'drain_listeners?inboundonly 200 (no inbound listener here: nothing stops)');
ok(port_open($port), 'listener still accepting');
($code) = post('/drain_listeners');
is($code, 200, 'POST /drain_listeners 200');
ok(wait_for(sub { !port_open($port) && !port_open($tport) }, scale(5)), 'listeners stopped accepting');
ok($wm->alive, 'wingman still running');
($code, $body) = admin_get($admin, '/ready');
is($code, 200, 'admin still answers');

done_testing;
