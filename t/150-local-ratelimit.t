# Local rate limiting (issue 16), Envoy's local_ratelimit: token buckets per
# listener, virtual host and route (the most specific config wins, each with
# buckets of its own); 429 "local_rate_limited" with flag RL; Envoy's stats
# <stat_prefix>.http_local_rate_limit.*; the DRAFT_VERSION_03 x-ratelimit-*
# headers; descriptors from request headers and the client's address, with a
# bucket per value in a bounded table; shadow mode (filter_enforced: 0); and
# wrk at 5x a 200/s limit for 10 s on 2 workers: the accepted rate is the
# limit, within 5%, because every worker takes from the same atomic bucket.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use Wingman;

plan skip_all => 'wrk not installed (apt-get install wrk)' unless have_prog('wrk');

my ($ng, $np) = start_nginx_servers('ok');
my $echo = start_backend();
my ($port, $admin) = (free_port(), free_port());
my $ep = $echo->port;
my $log = tmpdir() . '/access-150.log';
my $wm = start_wingman(<<"EOF");
workers: 2
admin: { address: 127.0.0.1:$admin }
access_log: { path: $log, format: "%RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %REQ(:PATH)%\\n" }
listeners:
  - name: web
    address: 127.0.0.1:$port
    local_ratelimit:                        # the listener's: 200 requests/s, 20 at once
      stat_prefix: web_rl
      token_bucket: { max_tokens: 20, tokens_per_fill: 20, fill_interval: 100ms }
    virtual_hosts:
      - name: limited
        domains: ["limited.test"]
        local_ratelimit:                    # the virtual host's: 3, then one a minute
          stat_prefix: vhost_rl
          token_bucket: { max_tokens: 3, tokens_per_fill: 1, fill_interval: 60s }
          enable_x_ratelimit_headers: DRAFT_VERSION_03
          response_headers_to_add: { x-local-rate-limit: "true" }
        routes:
          - match: { prefix: /free }        # a route's own bucket overrides
            route: { cluster: ng }
            local_ratelimit:
              stat_prefix: free_rl
              token_bucket: { max_tokens: 1000, tokens_per_fill: 1000, fill_interval: 1s }
          - match: { prefix: /users }
            route: { cluster: echo }
            local_ratelimit:
              stat_prefix: users_rl
              always_consume_default_token_bucket: false
              max_dynamic_descriptors: 2
              descriptors:
                - entries: [{ key: user, value: vip }]
                  token_bucket: { max_tokens: 5, tokens_per_fill: 1, fill_interval: 60s }
                - entries: [{ key: user }]  # any other user: a bucket each
                  token_bucket: { max_tokens: 2, tokens_per_fill: 1, fill_interval: 60s }
              rate_limits:
                - actions: [{ request_headers: { header_name: x-user, descriptor_key: user } }]
              token_bucket: { max_tokens: 100, tokens_per_fill: 100, fill_interval: 1s }
              enable_x_ratelimit_headers: DRAFT_VERSION_03
          - match: { prefix: /ip }
            route: { cluster: echo }
            local_ratelimit:
              stat_prefix: ip_rl
              status: 503
              token_bucket: { max_tokens: 100, tokens_per_fill: 100, fill_interval: 1s }
              rate_limits:
                - actions: [{ remote_address: {} }, { generic_key: { descriptor_value: ip, descriptor_key: what } }]
              descriptors:
                - entries: [{ key: remote_address }, { key: what, value: ip }]
                  token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }
          - match: { prefix: /shadow }
            route: { cluster: echo }
            local_ratelimit:
              stat_prefix: shadow_rl
              token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }
              filter_enforced: 0
              request_headers_to_add_when_not_enforced: { x-local-ratelimited: "true" }
          - match: { prefix: /off }
            route: { cluster: echo }
            local_ratelimit:
              stat_prefix: off_rl
              token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }
              filter_enabled: 0
          - match: { prefix: /grpc }
            route: { cluster: echo }
            local_ratelimit:
              stat_prefix: grpc_rl
              token_bucket: { max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s }
              rate_limited_as_resource_exhausted: true
          - match: { prefix: / }
            route: { cluster: ng }
      - name: default
        domains: ["*"]
        routes: [{ match: { prefix: / }, route: { cluster: ng } }]
clusters:
  - { name: ng, endpoints: [127.0.0.1:$np] }
  - { name: echo, endpoints: [127.0.0.1:$ep] }
EOF

sub get {
	my ($path, @h) = @_;
	return http_request($port, 'GET', $path, host => 'limited.test', headers => [@h]);
}

# The virtual host's bucket: 3 requests, then 429 as Envoy answers it.
my @r = map { get('/x') } 1 .. 4;
is_deeply([map { $_->{status} } @r], [200, 200, 200, 429], 'the virtual host allows 3, then 429');
is($r[3]{body}, 'local_rate_limited', "Envoy's body");
is($r[3]{headers}{'x-local-rate-limit'}, 'true', 'response_headers_to_add on the 429');
is($r[0]{headers}{'x-local-rate-limit'}, undef, '... and only on it');
is($r[0]{headers}{'x-ratelimit-limit'}, '3', 'x-ratelimit-limit: the bucket size');
is_deeply([map { $_->{headers}{'x-ratelimit-remaining'} } @r], [2, 1, 0, 0], 'x-ratelimit-remaining counts down');
is($r[0]{headers}{'x-ratelimit-reset'}, '0', 'x-ratelimit-reset 0 while tokens are left');
is($r[3]{headers}{'x-ratelimit-reset'}, '60', '... and the 60 s a token takes once none is');
like($wm->log_line(qr{^429 RL local_rate_limited /x$}), qr/^429/, 'logged 429 with flag RL and the details');

# A route's own config overrides the virtual host's.
is(get('/free')->{status}, 200, 'a route with its own bucket is not limited by the spent virtual host bucket');

# Descriptors: a bucket per x-user value, independent; vip has its own.
my %st;
for my $u (qw(a a a b b b vip vip vip)) {
	push @{ $st{$u} }, get('/users', 'x-user' => $u)->{status};
}
is_deeply($st{a}, [200, 200, 429], 'user a: 2 tokens, then 429');
is_deeply($st{b}, [200, 200, 429], 'user b: a bucket of its own, untouched by a');
is_deeply($st{vip}, [200, 200, 200], 'user vip: the bucket configured for its value');
is(get('/users')->{status}, 200, 'no x-user: no descriptor, the route default bucket decides');
my $h = get('/users', 'x-user' => 'b');
is($h->{headers}{'x-ratelimit-limit'}, '2', 'x-ratelimit-limit of the descriptor that decided');
# max_dynamic_descriptors 2: c and d take the table, a's spent bucket is gone.
get('/users', 'x-user' => $_) for qw(c d);
is(get('/users', 'x-user' => 'a')->{status}, 200, 'a bounded table: a fresh bucket once a was pushed out');

# The client's address and a generic key; status 503.
is_deeply([map { get('/ip')->{status} } 1 .. 2], [200, 503], 'remote_address + generic_key: 1 token, then the status asked for');

# Shadow mode: counted, not enforced, the upstream told.
my @sh = map { get('/shadow') } 1 .. 2;
is_deeply([map { $_->{status} } @sh], [200, 200], 'filter_enforced: 0 never answers 429');
unlike($sh[0]{body}, qr/x-local-ratelimited/i, 'a request under the limit carries no mark');
like($sh[1]{body}, qr/x-local-ratelimited: true/i, 'the one over it reaches the upstream marked');
is_deeply([map { get('/off')->{status} } 1 .. 3], [200, 200, 200], 'filter_enabled: 0 consults no bucket');

# gRPC: a trailers-only reply, RESOURCE_EXHAUSTED when asked.
my @g = map { get('/grpc', 'content-type' => 'application/grpc') } 1 .. 2;
is($g[1]{status}, 200, 'gRPC: HTTP 200');
is($g[1]{headers}{'grpc-status'}, '8', 'grpc-status RESOURCE_EXHAUSTED (rate_limited_as_resource_exhausted)');

my $s = $wm->stats;
is($s->{'vhost_rl.http_local_rate_limit.enabled'}, 4, 'enabled: every request consulted');
is($s->{'vhost_rl.http_local_rate_limit.ok'}, 3, 'ok');
is($s->{'vhost_rl.http_local_rate_limit.rate_limited'}, 1, 'rate_limited');
is($s->{'vhost_rl.http_local_rate_limit.enforced'}, 1, 'enforced');
is($s->{'shadow_rl.http_local_rate_limit.rate_limited'}, 1, 'shadow: rate_limited counted');
is($s->{'shadow_rl.http_local_rate_limit.enforced'}, 0, 'shadow: nothing enforced');
is($s->{'off_rl.http_local_rate_limit.enabled'}, 0, 'filter_enabled 0: not enabled');
like($wm->admin('/stats/prometheus'), qr/^envoy_vhost_rl_http_local_rate_limit_enforced 1$/m,
	'Prometheus: the name an Istio sidecar shows');

my $rc = dump_resources(config_dump($wm->admin_port))->{routes}{web};
my ($vh) = grep { $_->{name} eq 'limited' } @{ $rc->{virtual_hosts} };
my $lrl = $vh->{typed_per_filter_config}{'envoy.filters.http.local_ratelimit'};
is($lrl->{stat_prefix}, 'vhost_rl', "config_dump: the virtual host's typed_per_filter_config carries its LocalRateLimit");
like($lrl->{'@type'}, qr/local_ratelimit\.v3\.LocalRateLimit$/, '... with its type');
ok($lrl->{token_bucket}{max_tokens} >= 1 && $lrl->{token_bucket}{fill_interval} =~ /s$/, '... and its token_bucket');
my $lsn = dump_resources(config_dump($wm->admin_port))->{listeners}{web};
my ($hf) = grep { $_->{name} eq 'envoy.filters.http.local_ratelimit' }
	@{ $lsn->{filter_chains}[0]{filters}[0]{typed_config}{http_filters} };
is($hf->{typed_config}{stat_prefix}, 'web_rl', "config_dump: the listener's config is its http_filters entry");
is($hf->{typed_config}{token_bucket}{max_tokens}, 20, '... with its bucket');

# 5x the limit for 10 s on 2 workers: wrk's 12 connections each send one
# request per 10 ms (~1000/s), the listener's bucket admits 200/s.
my $lua = tmpdir() . '/pace.lua';
spew($lua, "function delay() return 10 end\n");
my $ok0 = $wm->stat('web_rl.http_local_rate_limit.ok');
my $w = wrk_run('-t2', '-c12', '-d10s', '--timeout', '5s', '-s', $lua, "http://127.0.0.1:$port/");
my $ok = $wm->stat('web_rl.http_local_rate_limit.ok') - $ok0;
my $limited = $wm->stat('web_rl.http_local_rate_limit.enforced');
ok(($w->{requests} // 0) > 0 && $w->{secs}, 'wrk ran') or diag($w->{raw});
my $secs = $w->{secs} || 10;
my $offered = ($w->{requests} // 0) / $secs;
my $want = 20 + 200 * $secs;	# the full bucket, then 200/s
diag(sprintf('wrk: %d requests in %.2f s (%.0f/s offered), %d accepted (%.1f/s), %d answered 429; '
	. 'expected %d: error %+.2f%%', $w->{requests} // 0, $secs, $offered, $ok, $ok / $secs, $limited, $want,
	100 * ($ok - $want) / $want));
cmp_ok($offered, '>=', 4 * 200, 'offered at least 4x the limit');
cmp_ok(abs($ok - $want) / $want, '<=', 0.05, 'accepted rate within 5% of the 200/s limit across 2 workers');
# wrk stops with up to one request per connection unanswered.
cmp_ok(abs($ok + $limited - ($w->{requests} // 0)), '<=', 12, 'every request counted once: ok + enforced = what wrk sent');
cmp_ok(abs($w->{non2xx} - $limited), '<=', 12, "wrk's non-2xx are the 429s");

done_testing();
