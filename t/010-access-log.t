# Access log: Envoy's default format exactly, custom formats with
# %RESPONSE_CODE_DETAILS% %UPSTREAM_CLUSTER% %ROUTE_NAME%, SIGUSR1 reopening
# the file after it was renamed, and json_format with omit_empty_values (each
# line read by a JSON parser).
use strict;
use warnings;
use POSIX qw(strftime);
use Test::More;
use Time::Local qw(timegm);
use JSON::PP;
use Wingman;

my $dir = tmpdir();
my $ng = start_nginx(q{ location / { return 200 "hello"; } });
my $np = $ng->port;

sub line_for {
	my ($file, $re) = @_;
	my $line;
	wait_for(sub { ($line) = grep { $_ =~ $re } split /\n/, slurp($file); $line }, scale(5));
	return $line // '';
}

# ---- default format
my $log = "$dir/default.log";
my $wm = start_web(<<"EOF", workers => 2, access_log => $log);
    virtual_hosts:
      - name: blog
        domains: ["*"]
        routes:
          - { name: api, match: { prefix: /log }, route: { cluster: web } }
clusters:
  - { name: web, endpoints: [127.0.0.1:$np] }
EOF
my ($port, $admin) = ($wm->port, $wm->admin_port);

my $t0 = time;
my $r = http_get($port, '/log/path?x=1', host => 'blog.local',
	headers => ['User-Agent', 'wingman-test/1.0', 'X-Request-Id', 'rid-123']);
is($r->{status}, 200, 'request 200');
my $line = line_for($log, qr/rid-123/);
my $re = qr{^\[(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.\d{3}Z\] "GET /log/path\?x=1 HTTP/1\.1" 200 - 0 5 (\d+) (\d+|-) "(-|127\.0\.0\.1)" "wingman-test/1\.0" "rid-123" "blog\.local" "127\.0\.0\.1:$np"$};
like($line, $re, "default format line matches Envoy's default format");
if (my @t = $line =~ $re) {
	my $ts = timegm($t[5], $t[4], $t[3], $t[2], $t[1] - 1, $t[0]);
	ok(abs($ts - $t0) <= 60, 'START_TIME is UTC now');
}
is(scalar(() = slurp($log) =~ /\n/g), scalar(() = slurp($log) =~ /^\[/mg), 'one line per request, newline-terminated');

$r = http_request($port, 'POST', '/log/post', body => 'hello world', headers => ['User-Agent', 'ua2']);
$line = line_for($log, qr{/log/post});
like($line, qr{^\[[^\]]+\] "POST /log/post HTTP/1\.1" 200 - 11 5 \d+ (\d+|-) "[^"]*" "ua2" "[0-9a-f-]{36}" "127\.0\.0\.1:$port" "127\.0\.0\.1:$np"$},
	'POST: BYTES_RECEIVED counts the body; generated request id logged');

$r = http_raw($port, "GET /nowhere HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
$line = line_for($log, qr{/nowhere});
like($line, qr{^\[[^\]]+\] "GET /nowhere HTTP/1\.1" 404 NR 0 0 \d+ - "[^"]*" "-" "[0-9a-f-]{36}" "h" "-"$},
	'no route: 404 NR, empty fields are "-"');

$r = http_raw($port, "GET /log/10 HTTP/1.0\r\nHost: h10\r\n\r\n");
$line = line_for($log, qr{/log/10 });
like($line, qr{"GET /log/10 HTTP/1\.0" 200 }, '%PROTOCOL% HTTP/1.0');

# ---- SIGUSR1 reopens after a rename
rename($log, "$log.1") or die "rename: $!";
http_get($port, '/log/before-reopen', headers => ['User-Agent', 'before']);
ok(line_for("$log.1", qr{/log/before-reopen}), 'before SIGUSR1 lines go to the renamed file');
ok($wm->usr1, 'SIGUSR1 sent');
ok(wait_for(sub { -e $log }, scale(5)), 'SIGUSR1 re-creates the log file');
http_get($port, '/log/after-reopen', headers => ['User-Agent', 'after']);
ok(line_for($log, qr{/log/after-reopen}), 'after SIGUSR1 lines go to the new file');
unlike(slurp("$log.1"), qr{/log/after-reopen}, 'and not to the old one');
ok($wm->alive, 'wingman alive after SIGUSR1');
is(($wm->term // -1) >> 8, 0, 'SIGTERM exit 0');

# ---- custom format
my $clog = "$dir/custom.log";
my $cfmt = 'code=%RESPONSE_CODE% details=%RESPONSE_CODE_DETAILS% cluster=%UPSTREAM_CLUSTER% route=%ROUTE_NAME% '
	. 'flags=%RESPONSE_FLAGS% x=%REQ(X-CUSTOM)% path=%REQ(:PATH)% proto=%PROTOCOL%\n';
$wm = start_web(<<"EOF", access_log => $clog, log_format => $cfmt);
    virtual_hosts:
      - name: blog
        domains: ["*"]
        routes:
          - { name: api-route, match: { prefix: /api }, route: { cluster: backend } }
clusters:
  - { name: backend, endpoints: [127.0.0.1:$np] }
EOF
$port = $wm->port;
http_get($port, '/api/one', headers => ['X-Custom', 'custom-v']);
is(line_for($clog, qr{path=/api/one}),
	'code=200 details=via_upstream cluster=backend route=api-route flags=- x=custom-v path=/api/one proto=HTTP/1.1',
	'custom format: proxied request');
http_get($port, '/other');
is(line_for($clog, qr{path=/other}),
	'code=404 details=route_not_found cluster=- route=- flags=NR x=- path=/other proto=HTTP/1.1',
	'custom format: no route');

# ---- json_format with omit_empty_values: a JSON object per line, keys
# sorted, absent values left out, typed values, nested maps and literals
my $jlog = "$dir/json.log";
$port = free_port();
$admin = free_port();
$wm = start_wingman(<<"EOF");
admin: { address: 127.0.0.1:$admin }
access_log:
  path: $jlog
  omit_empty_values: true
  json_format:
    status: "%RESPONSE_CODE%"
    took_ms: "%DURATION%"
    req: { method: "%REQ(:METHOD)%", path: "%REQ_WITHOUT_QUERY(:PATH)%", ua: "%REQ(USER-AGENT):5%" }
    custom: "%REQ(X-CUSTOM)%"
    line: "%REQ(:METHOD)% %REQ(X-CUSTOM)%"
    peer_port: "%DOWNSTREAM_REMOTE_PORT%"
    schema: 2
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - { name: r, match: { prefix: /j }, route: { cluster: backend } }
clusters:
  - { name: backend, endpoints: [127.0.0.1:$np] }
EOF
http_get($port, '/j/one?secret=1', headers => ['User-Agent', 'json-agent', 'X-Custom', 'c1']);
http_get($port, '/j/two', headers => ['User-Agent', 'json-agent']);
my @j;
wait_for(sub { @j = split /\n/, slurp($jlog); @j >= 2 }, scale(5));
my $json = JSON::PP->new;
my ($one) = map { $json->decode($_) } grep { /one/ } @j;
my ($two) = map { $json->decode($_) } grep { /two/ } @j;
is_deeply($one, { status => 200, took_ms => $one->{took_ms}, custom => 'c1', line => 'GET c1',
	peer_port => $one->{peer_port}, schema => 2, req => { method => 'GET', path => '/j/one', ua => 'json-' } },
	'json_format: every value');
like($json->encode([$one->{status}, $one->{took_ms}, $one->{peer_port}, $one->{schema}]), qr{^\[200,\d+,\d+,2\]$},
	'json_format: numbers are JSON numbers');
ok(!exists $two->{custom}, 'omit_empty_values: an absent value leaves its key out');
is($two->{line}, 'GET ', 'omit_empty_values: an absent part of a string is empty');
my ($raw) = grep { /two/ } @j;
is(join(',', $raw =~ /"(\w+)":/g), 'line,peer_port,req,method,path,ua,schema,status,took_ms',
	'json_format: members written sorted by key, as Envoy does');
$wm->term;

# ---- json_format errors at FILE:LINE:COL
my ($crc, $cout) = wingman_check("access_log:\n  path: /dev/null\n  format: \"x\"\n  json_format: { a: \"%PROTOCOL%\" }\nlisteners: []\n");
is($crc, 1, 'format and json_format together: refused');
like($cout, qr{:4:16: access_log: give format or json_format, not both}, '... at json_format');
($crc, $cout) = wingman_check("access_log:\n  path: /dev/null\n  json_format:\n    a: { b: \"x %NOPE%\" }\nlisteners: []\n");
like($cout, qr{:4:13: invalid access log format at offset 2: unknown command}, 'a bad command: the value\'s position and the offset');

# ---- access_log off writes nothing anywhere
$port = free_port();
$admin = free_port();
$wm = start_wingman(<<"EOF");
admin: { address: 127.0.0.1:$admin }
access_log: { path: off }
listeners:
  - name: web
    address: 127.0.0.1:$port
    routes:
      - { name: r, match: { prefix: / }, route: { cluster: backend } }
clusters:
  - { name: backend, endpoints: [127.0.0.1:$np] }
EOF
is(http_get($port, '/quiet')->{status}, 200, 'access_log off: request served');
sleep 0.3;
is($wm->stdout, '', 'access_log off: nothing on stdout');
unlike($wm->stderr, qr{/quiet}, 'access_log off: nothing on stderr');

done_testing;
