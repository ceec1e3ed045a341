# Regression: RBAC decided on a normalised path while the router matched and
# forwarded the raw one, so with an ALLOW on /api/* and a /admin route,
# "/admin/../api/x" was allowed by RBAC and routed to the admin service (and
# "/admin/..;/api/x" reached nginx's "location /admin"). Now one path is
# decided on, routed and forwarded, over HTTP/1.1 and HTTP/2, and a path that
# backends would read differently is refused with 400.
use strict;
use warnings;
use Test::More;
use Wingman;

plan skip_all => 'curl not found' unless have_prog('curl');

my $loc = 'location /admin { return 200 "SVC-admin $request_uri\n"; } ' .
	  'location / { return 200 "SVC $request_uri\n"; }';
(my $admin_conf = $loc) =~ s/SVC/adminsvc/g;
(my $app_conf = $loc) =~ s/SVC/app/g;
my $adminsvc = start_nginx($admin_conf);
my $app = start_nginx($app_conf);
my ($p, $decode, $redirect, $none, $envoy, $adm) = map { free_port() } 1 .. 6;
my $dir = tmpdir();
my $log = "$dir/access.log";

my $routes = "[{ match: { prefix: /admin }, route: { cluster: adminsvc } }, " .
	     "{ match: { prefix: / }, route: { cluster: app } }]";
my $wm = start_wingman(<<"EOF");
workers: 1
admin: { address: 127.0.0.1:$adm }
access_log: { path: $log, format: "%PROTOCOL% %REQ(:PATH)% %RESPONSE_CODE% %RESPONSE_CODE_DETAILS%\\n" }
rbac:
  - name: api-only
    action: ALLOW
    rules: [{ to: [{ operation: { paths: ["/api/*"] } }] }]
listeners:
  - { name: l, address: 127.0.0.1:$p, routes: $routes }
  - { name: decode, address: 127.0.0.1:$decode, path_normalization: DECODE_AND_MERGE_SLASHES, routes: $routes }
  - { name: redirect, address: 127.0.0.1:$redirect, path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT,
      routes: $routes }
  - { name: none, address: 127.0.0.1:$none, path_normalization: NONE, routes: $routes }
  - { name: envoy, address: 127.0.0.1:$envoy, normalize_path: false, merge_slashes: false,
      path_with_escaped_slashes_action: KEEP_UNCHANGED, routes: $routes }
clusters:
  - { name: adminsvc, endpoints: [127.0.0.1:$adminsvc->{port}] }
  - { name: app, endpoints: [127.0.0.1:$app->{port}] }
EOF

sub get {
	my ($port, $path, @opt) = @_;
	my ($out) = curl('--path-as-is', '-s', @opt, '-w', '\n%{http_code}', "http://127.0.0.1:$port$path");
	my ($body, $code) = $out =~ /^(.*?)\n*\n(\d+)$/s;
	return ($code // 0, $body // '');
}

# Dot-segments: resolved before routing, so the request is /api/x everywhere.
my @resolved = ('/admin/../api/x', '/admin/%2e%2e/api/x', '/admin/./../api/x', '/admin\\..\\api\\x',
		'/admin/%2E%2e/api/x', '/x/../../api/x');
# Ambiguous: escaped slashes and dot-segments with ";parameters".
my @refused = ('/admin%2f..%2fapi/x', '/admin%2F..%2Fapi/x', '/admin/..;/api/x', '/admin%5c..%5capi/x',
	       '/admin/.;/../api/x', '/api/x%00', '/admin/%zz/../api/x');

for my $proto (['HTTP/1.1'], ['HTTP/2', '--http2-prior-knowledge']) {
	my ($name, @opt) = @$proto;
	for my $path (@resolved) {
		my ($code, $body) = get($p, $path, @opt);
		is("$code $body", "200 app /api/x", "$name $path: routed, authorized and forwarded as /api/x");
	}
	for my $path (@refused) {
		my ($code) = get($p, $path, @opt);
		is($code, 400, "$name $path: refused");
	}
	my ($code, $body) = get($p, '/admin/x', @opt);
	is($code, 403, "$name /admin/x: denied by the /api/* ALLOW");
	($code, $body) = get($p, '/api//x?next=/../admin', @opt);
	is("$code $body", "200 app /api/x?next=/../admin", "$name: slashes merged, query untouched");
}
unlike(slurp("$adminsvc->{dir}/access.log"), qr{\S}, 'nothing reached the admin service');

my $text = '';
wait_for(sub { $text = slurp($log); $text =~ m{^HTTP/2 /admin/x 403 }m }, scale(5));
like($text, qr{^HTTP/1\.1 /api/x 200 via_upstream$}m, 'the access log shows the normalised path');
like($text, qr{^HTTP/1\.1 /admin%2f\.\.%2fapi/x 400 path_normalization_failed$}m,
     'a refused path is logged as sent, with path_normalization_failed');
is($wm->stat('http.l.downstream_rq_failed_path_normalization'), 2 * @refused,
   'http.l.downstream_rq_failed_path_normalization');
is($wm->stat('http.l.no_route'), 0, 'refusals are not no_route');

# Istio's DECODE_AND_MERGE_SLASHES: escaped slashes are slashes.
my ($code, $body) = get($decode, '/admin%2f..%2fapi/x');
is("$code $body", "200 app /api/x", 'DECODE_AND_MERGE_SLASHES: %2f decoded, then normalised');
($code) = get($decode, '/admin/..;/api/x');
is($code, 400, 'DECODE_AND_MERGE_SLASHES: "..;" still refused');

# Envoy's UNESCAPE_AND_REDIRECT: 307 to the unescaped, normalised path.
my ($out) = curl('--path-as-is', '-s', '-D', '-', '-o', '/dev/null', "http://127.0.0.1:$redirect/admin%2F..%2Fapi/x?q=1");
like($out, qr{^HTTP/1\.1 307 }, 'UNESCAPE_AND_REDIRECT: 307');
like($out, qr{^location: /api/x\?q=1\r?$}mi, 'UNESCAPE_AND_REDIRECT: location is the normalised path');
is($wm->stat('http.redirect.downstream_rq_redirected_with_normalized_path'), 1,
   'downstream_rq_redirected_with_normalized_path');
($code, $body) = get($redirect, '/api/x');
is("$code $body", "200 app /api/x", 'UNESCAPE_AND_REDIRECT: plain paths pass');

# NONE: nothing normalised, and RBAC still decides on what is forwarded.
($code) = get($none, '/admin/../api/x');
is($code, 403, 'NONE: the raw path is what RBAC sees, and it is not /api/*');
($code, $body) = get($none, '/api/x');
is("$code $body", "200 app /api/x", 'NONE: plain paths pass');

# Envoy's own keys turn it all off too: the path is forwarded as sent, and RBAC sees that.
($code, $body) = get($envoy, '/api//x');
is("$code $body", "200 app /api//x", 'normalize_path: false, merge_slashes: false: forwarded as sent');
($code, $body) = get($envoy, '/api/../admin/x');
is("$code $body", "200 app-admin /api/../admin/x",
   'normalize_path: false: RBAC passes /api/../admin/x as sent and nginx serves /admin (why it is on by default)');

# Config: bad values name file:line:col.
my $bad = "$dir/bad.yaml";
spew($bad, "listeners:\n  - name: l\n    address: 127.0.0.1:$p\n    path_normalization: STRICT\n" .
	   "    path_with_escaped_slashes_action: DROP\n    routes: $routes\n" .
	   "clusters:\n  - { name: adminsvc, endpoints: [127.0.0.1:1] }\n  - { name: app, endpoints: [127.0.0.1:1] }\n");
my $err = `${\ wingman_bin()} -t -c $bad 2>&1`;
isnt($? >> 8, 0, '-t refuses bad path options');
like($err, qr{\Q$bad\E:4:\d+: .*NONE, BASE, MERGE_SLASHES or DECODE_AND_MERGE_SLASHES}, 'path_normalization error names file:line');
like($err, qr{\Q$bad\E:5:\d+: .*KEEP_UNCHANGED, REJECT_REQUEST}, 'path_with_escaped_slashes_action error names file:line');

done_testing();
