# Access log: Istio's default TEXT format (the mesh default, as istiod
# configures every sidecar) through real traffic, every field checked: a
# proxied 200 (%UPSTREAM_LOCAL_ADDRESS% is the address the backend saw),
# UF, NR, and TLS with SNI; a client that sent no x-forwarded-for logs "-"
# as an Istio sidecar does (use_remote_address false). Then Istio's JSON
# encoding (meshConfig accessLogEncoding: JSON) through 2xx, UF, NR, RBAC 403
# and HTTP/2, each line read by a JSON parser; and how meshConfig and
# Telemetry providers map onto access_log (config show).
use strict;
use warnings;
use JSON::PP;
use Test::More;
use Wingman;

my $c = test_certs();
my $dir = tmpdir();
my $be = start_backend(handler => sub {
	my ($req, $sock) = @_;
	return make_response('200 OK', 'peer=' . $sock->peerhost . ':' . $sock->peerport);
});
my $bp = $be->port;
my $dead = free_port();
my ($port, $tls, $admin) = map { free_port() } 1 .. 3;
my $log = "$dir/istio.log";
my $fmt = '[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% '
	. '%RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% '
	. '\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% %DURATION% '
	. '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" '
	. '\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% '
	. '%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% '
	. '%REQUESTED_SERVER_NAME% %ROUTE_NAME%\n';

my $yaml = <<"EOF";
workers: 2
admin: { address: 127.0.0.1:$admin }
access_log:
  path: $log
  format: "$fmt"
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - { name: ok, match: { prefix: /ok }, route: { cluster: be } }
      - { name: down, match: { prefix: /down }, route: { cluster: dead } }
  - name: tls
    address: 127.0.0.1:$tls
    tls:
      mode: SIMPLE
      cert: $c/was.pem
      key: $c/was-key.pem
      sni: [{ names: ["*.example.com"], cert: $c/wild.pem, key: $c/wild-key.pem }]
    routes: [{ name: secure, match: { prefix: / }, route: { cluster: be } }]
clusters:
  - { name: be, endpoints: [127.0.0.1:$bp] }
  - { name: dead, endpoints: [127.0.0.1:$dead] }
EOF
my ($rc, $out) = wingman_check($yaml);
is($rc, 0, "wingman -t accepts Istio's default format") or diag($out);
my $err;
my $wm = start_wingman($yaml);

sub log_line { log_line_in($log, @_) }

my $ts = qr{\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\]};
my $cli = qr{127\.0\.0\.1:\d+};

# ---- 2xx
my $r = http_get($port, '/ok/one', host => 'web.local', headers => ['User-Agent', 'ua-ok', 'X-Request-Id', 'rid-ok']);
is($r->{status}, 200, '2xx: served');
my ($seen) = $r->{body} =~ /^peer=(\S+)$/;
my $line = log_line(qr{rid-ok});
like($line, qr{^$ts "GET /ok/one HTTP/1\.1" 200 - via_upstream - "-" 0 \d+ \d+ \d+ "-" "ua-ok" "rid-ok" "web\.local" "127\.0\.0\.1:$bp" be 127\.0\.0\.1:\d+ 127\.0\.0\.1:$port $cli - ok$},
	'2xx: every field');
my ($ula) = $line =~ / be (\S+) /;
is($ula, $seen, '2xx: %UPSTREAM_LOCAL_ADDRESS% is the address the backend saw');

# ---- x-forwarded-for as the client sent it
$r = http_get($port, '/ok/xff', headers => ['X-Forwarded-For', '10.9.8.7', 'X-Request-Id', 'rid-xff']);
like(log_line(qr{rid-xff}), qr{ "10\.9\.8\.7" }, 'x-forwarded-for sent by the client is logged as sent');

# ---- UF
$r = http_get($port, '/down', headers => ['User-Agent', 'ua-uf', 'X-Request-Id', 'rid-uf']);
is($r->{status}, 503, 'UF: 503');
like(log_line(qr{rid-uf}), qr{^$ts "GET /down HTTP/1\.1" 503 UF upstream_reset_before_response_started\{connection_failure\S*\} - "[^"]*" 0 \d+ \d+ - "-" "ua-uf" "rid-uf" "127\.0\.0\.1:$port" "127\.0\.0\.1:$dead" dead - 127\.0\.0\.1:$port $cli - down$},
	'UF: every field, no upstream local address');

# ---- NR
$r = http_get($port, '/nowhere', headers => ['User-Agent', 'ua-nr', 'X-Request-Id', 'rid-nr']);
is($r->{status}, 404, 'NR: 404');
like(log_line(qr{rid-nr}), qr{^$ts "GET /nowhere HTTP/1\.1" 404 NR route_not_found - "-" 0 0 \d+ - "-" "ua-nr" "rid-nr" "127\.0\.0\.1:$port" "-" - - 127\.0\.0\.1:$port $cli - -$},
	'NR: every field');

# ---- TLS with SNI
($out, $rc, $err) = curl('--cacert', "$c/root.pem", '--resolve', "a.example.com:$tls:127.0.0.1", '--http1.1',
	'-A', 'ua-tls', '-H', 'X-Request-Id: rid-tls', "https://a.example.com:$tls/sec");
is($rc, 0, 'TLS: served') or diag($err);
like(log_line(qr{rid-tls}), qr{^$ts "GET /sec HTTP/1\.1" 200 - via_upstream - "-" 0 \d+ \d+ \d+ "-" "ua-tls" "rid-tls" "a\.example\.com:$tls" "127\.0\.0\.1:$bp" be 127\.0\.0\.1:\d+ 127\.0\.0\.1:$tls $cli a\.example\.com secure$},
	'TLS: every field, %REQUESTED_SERVER_NAME% is the SNI');

is(($wm->term // -1) >> 8, 0, 'SIGTERM exit 0');

# ---- Istio's JSON encoding (meshConfig accessLogFile + accessLogEncoding:
# JSON, no accessLogFormat): Istio's default keys, each line parsed by a
# real JSON parser, types as Envoy writes them (numbers, strings, null)
my $jdir = "$dir/mesh";
mkdir $jdir;
mkdir "$jdir/res";
my $jlog = "$dir/istio.json";
my ($jport, $jadmin) = map { free_port() } 1 .. 2;
my $jyaml = <<"EOF";
workers: 2
admin: { address: 127.0.0.1:$jadmin }
mesh:
  resources: [$jdir/res/]
  namespace: shop
  accessLogFile: $jlog
  accessLogEncoding: JSON
rbac:
  - name: no-secrets
    action: DENY
    rules: [{ to: [{ operation: { paths: ["/secret*"] } }] }]
listeners:
  - name: web
    address: 127.0.0.1:$jport
    routes:
      - { name: ok, match: { prefix: /ok }, route: { cluster: be } }
      - { name: down, match: { prefix: /down }, route: { cluster: dead } }
      - { name: secret, match: { prefix: /secret }, route: { cluster: be } }
clusters:
  - { name: be, endpoints: [127.0.0.1:$bp] }
  - { name: dead, endpoints: [127.0.0.1:$dead] }
EOF
$wm = start_wingman($jyaml);
my @istio_keys = sort qw(start_time route_name method path protocol response_code response_flags
	response_code_details connection_termination_details bytes_received bytes_sent duration
	upstream_service_time x_forwarded_for user_agent request_id authority upstream_host upstream_cluster
	upstream_local_address downstream_local_address downstream_remote_address requested_server_name
	upstream_transport_failure_reason);
my $json = JSON::PP->new;

# The line of request id $rid: its text and the object a JSON parser reads.
sub json_line {
	my ($rid) = @_;
	my $l = log_line_in($jlog, qr{"request_id":"\Q$rid\E"});
	my $o = eval { $json->decode($l) };
	return ($l, $o);
}

# The first line of file matching re, once written.
sub log_line_in {
	my ($file, $re) = @_;
	my $line;
	wait_for(sub { ($line) = grep { $_ =~ $re } split /\n/, slurp($file); $line }, scale(5));
	return $line // '';
}

# JSON's type of a value as parsed: number, string or null.
sub jtype {
	my ($v) = @_;
	return 'null' unless defined $v;
	return $json->allow_nonref->encode($v) =~ /^"/ ? 'string' : 'number';
}

http_get($jport, '/ok/j', headers => ['User-Agent', 'ua-j', 'X-Request-Id', 'rid-j200']);
my ($l, $o) = json_line('rid-j200');
ok($o, '2xx: the line is JSON') or diag($l);
is_deeply([sort keys %$o], \@istio_keys, "Istio's default JSON keys (EnvoyJSONLogFormatIstio)");
is(join(',', $l =~ /"(\w+)":/g), join(',', @istio_keys), 'keys written sorted, as Envoy does');
is(jtype($o->{$_}), 'number', "2xx: $_ is a number") for qw(response_code bytes_received bytes_sent duration);
is($o->{response_code}, 200, '2xx: response_code 200');
is(jtype($o->{upstream_service_time}), 'string', '2xx: upstream_service_time (a header) is a string');
is(jtype($o->{$_}), 'null', "2xx: absent $_ is null")
	for qw(x_forwarded_for requested_server_name connection_termination_details upstream_transport_failure_reason);
is_deeply([@$o{qw(method path protocol response_flags response_code_details route_name upstream_cluster user_agent)}],
	['GET', '/ok/j', 'HTTP/1.1', '-', 'via_upstream', 'ok', 'be', 'ua-j'], '2xx: strings');
is($o->{upstream_host}, "127.0.0.1:$bp", '2xx: upstream_host');
like($o->{upstream_local_address}, qr{^127\.0\.0\.1:\d+$}, '2xx: upstream_local_address');
is($o->{downstream_local_address}, "127.0.0.1:$jport", '2xx: downstream_local_address');
like($o->{start_time}, qr{^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$}, '2xx: start_time a string in Envoy\'s format');

http_get($jport, '/down', headers => ['X-Request-Id', 'rid-juf']);
($l, $o) = json_line('rid-juf');
is_deeply([@$o{qw(response_code response_flags upstream_local_address upstream_service_time)}], [503, 'UF', undef, undef],
	'503 UF: code, flags; no upstream local address or service time (null)');
like($o->{response_code_details}, qr{^upstream_reset_before_response_started\{connection_failure}, '503 UF: details');
is(jtype($o->{duration}), 'number', '503 UF: duration a number');

http_get($jport, '/nowhere', headers => ['X-Request-Id', 'rid-jnr']);
($l, $o) = json_line('rid-jnr');
is_deeply([@$o{qw(response_code response_flags response_code_details route_name upstream_host upstream_cluster)}],
	[404, 'NR', 'route_not_found', undef, undef, undef], '404 NR: no route, host or cluster (null)');

http_get($jport, '/secret/x', headers => ['X-Request-Id', 'rid-jrbac']);
($l, $o) = json_line('rid-jrbac');
is_deeply([@$o{qw(response_code response_code_details route_name upstream_host)}],
	[403, 'rbac_access_denied_matched_policy[no-secrets]', 'secret', undef], 'RBAC 403: code and details, no upstream');
is(jtype($o->{bytes_sent}), 'number', 'RBAC 403: bytes_sent a number');

($out, $rc, $err) = curl('--http2-prior-knowledge', '-H', 'X-Request-Id: rid-jh2', "http://127.0.0.1:$jport/ok/h2");
is($rc, 0, "HTTP/2: served") or diag($err);
($l, $o) = json_line('rid-jh2');
is_deeply([@$o{qw(protocol response_code method path)}], ['HTTP/2', 200, 'GET', '/ok/h2'], 'HTTP/2: protocol and code');
my @all = grep { length } split /\n/, slurp($jlog);
is(scalar(grep { !eval { $json->decode($_); 1 } } @all), 0, 'every line is one JSON object');
is(($wm->term // -1) >> 8, 0, 'SIGTERM exit 0');

# ---- how Istio's settings map onto access_log (wingman config show)
my $bin = wingman_bin();
spew("$jdir/fmt.yaml", <<'EOF');
mesh:
  resources: [res/]
  accessLogFile: /dev/stdout
  accessLogEncoding: JSON
  accessLogFormat: '{"code": "%RESPONSE_CODE%", "peer": "%DOWNSTREAM_PEER_URI_SAN%"}'
EOF
my $show = `cd $jdir && $bin config show -c fmt.yaml 2>&1`;
like($show, qr{access_log:\n\s+path: /dev/stdout\n\s+json_format:\n\s+code: "%RESPONSE_CODE%"\n\s+peer: "%DOWNSTREAM_PEER_URI_SAN%"},
	'accessLogFormat read as JSON with accessLogEncoding JSON');
spew("$jdir/text.yaml", <<'EOF');
mesh:
  resources: [res/]
  accessLogFile: /tmp/x.log
  accessLogEncoding: TEXT
EOF
$show = `cd $jdir && $bin config show -c text.yaml 2>&1`;
like($show, qr{access_log:\n\s+path: /tmp/x\.log\n\s+format: .*%UPSTREAM_CLUSTER_RAW% }, 'TEXT: Istio\'s default text format');
spew("$jdir/badjson.yaml", <<'EOF');
mesh:
  resources: [res/]
  accessLogFile: /dev/stdout
  accessLogEncoding: JSON
  accessLogFormat: "%RESPONSE_CODE%"
EOF
$show = `cd $jdir && $bin config show -c badjson.yaml 2>&1`;
like($show, qr{badjson\.yaml:5:\d+: mesh\.accessLogFormat: not a JSON object}, 'a format that is not JSON: warned, as istiod logs it');
like($show, qr{json_format:\n\s+start_time:}, '... and Istio\'s default JSON used');

# Telemetry providers: envoyFileAccessLog labels (JSON), text, empty labels
mkdir "$jdir/tele";
spew("$jdir/tele/t.yaml", <<'EOF');
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: logs, namespace: istio-system }
spec:
  accessLogging: [{ providers: [{ name: json-log }] }]
EOF
my $providers = <<'EOF';
mesh:
  resources: [tele/]
  extensionProviders:
    - name: json-log
      envoyFileAccessLog:
        path: /dev/stderr
        omitEmptyValues: true
        logFormat: { labels: { code: "%RESPONSE_CODE%", flags: "%RESPONSE_FLAGS%" } }
    - name: text-log
      envoyFileAccessLog: { logFormat: { text: "%REQ(:PATH)% %RESPONSE_CODE%" } }
    - name: default-json
      envoyFileAccessLog: { path: /tmp/j.log, logFormat: { labels: {} } }
EOF
spew("$jdir/prov.yaml", $providers);
$show = `cd $jdir && $bin config show -c prov.yaml 2>&1`;
like($show, qr{access_log:\n\s+path: /dev/stderr\n\s+omit_empty_values: true\n\s+json_format:\n\s+code: "%RESPONSE_CODE%"\n\s+flags: "%RESPONSE_FLAGS%"},
	'envoyFileAccessLog labels: json_format, omitEmptyValues: omit_empty_values');
(my $t2 = slurp("$jdir/tele/t.yaml")) =~ s/json-log/text-log/;
spew("$jdir/tele/t.yaml", $t2);
$show = `cd $jdir && $bin config show -c prov.yaml 2>&1`;
like($show, qr{access_log:\n\s+path: /dev/stdout\n\s+format: "%REQ\(:PATH\)% %RESPONSE_CODE%"}, 'envoyFileAccessLog text: format, path /dev/stdout');
$t2 =~ s/text-log/default-json/;
spew("$jdir/tele/t.yaml", $t2);
$show = `cd $jdir && $bin config show -c prov.yaml 2>&1`;
like($show, qr{access_log:\n\s+path: /tmp/j\.log\n\s+json_format:\n\s+start_time: "%START_TIME%"}, 'empty labels: Istio\'s default JSON');

done_testing;
