# Soak: for 60 s of keep-alive load (wrk) and a second client opening a new
# connection per request, wingman is sent 100 SIGHUPs over configs that
# alternate good, broken and empty. Broken and empty ones are refused (the
# running config keeps serving, server.config_reload_failed counts them),
# good ones take effect; not one request fails.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use Wingman;

plan skip_all => 'wrk not installed (apt-get install wrk)' unless have_prog('wrk');

my $ng = start_nginx(q{ location / { return 200 "ok\n"; } });
my $np = $ng->port;
my ($port, $admin) = map { free_port() } 1 .. 2;

sub good {
	my ($i) = @_;
	return web_conf(<<"EOF", port => $port, admin => $admin, workers => 2);
    routes:
      - match: { prefix: / }
        route: { cluster: web-$i }
        headers: { response: { set: { x-generation: "$i" } } }
clusters:
  - { name: web-$i, endpoints: [127.0.0.1:$np] }
EOF
}
my @broken = (
	"listeners:\n  - { name: web, address: 127.0.0.1:$port, routes: [{ match: { prefix: / }, route: { cluster: nope } }] }\n",
	"listeners: [\n",
	"workers: 2\nlisteners:\n  - { name: web, address: 127.0.0.1:$port, idle_timeout: soon, routes: [] }\n",
	"\0\0\0",
);

my $wm = start_wingman(good(0));
is(http_get($port, '/')->{headers}{'x-generation'}, '0', 'generation 0 serving');

my $secs = scale(60);
# New connections too: a reload must not drop a connection being accepted.
my $load = start_load($port, secs => $secs, margin => 2);

my ($good, $refused, $gen) = (0, 0, 0);
my $t0 = time;
for my $i (1 .. 100) {
	my $kind = $i % 3;	# 0: good, 1: broken, 2: empty
	if ($kind == 0) {
		$wm->write_conf(good(++$gen));
		$good++;
	} else {
		$wm->write_conf($kind == 1 ? $broken[$i % @broken] : '');
		$refused++;
	}
	$wm->hup;
	wait_for(sub { $wm->stat('server.config_reload') + $wm->stat('server.config_reload_failed') >= $i }, scale(5), 0.01);
	my $left = $t0 + ($secs - 4) * $i / 100 - time;
	sleep($left) if $left > 0;
}
is($wm->stat('server.config_reload'), $good, "$good good configs reloaded");
is($wm->stat('server.config_reload_failed'), $refused, "$refused broken or empty configs refused");
my ($w, $fresh) = $load->finish;
diag("wrk: " . ($w->{requests} // '?') . " requests, " . ($w->{rps} // '?') . " rps over ${secs}s");
ok(($w->{requests} // 0) > 1000, 'wrk completed requests') or diag($w->{raw});
is($w->{non2xx}, 0, 'wrk: zero non-2xx responses');
is($w->{connect} + $w->{read} + $w->{write} + $w->{timeout}, 0, 'wrk: zero socket errors') or diag($w->{raw});
ok($fresh->{n} > 100, "a new connection per request: $fresh->{n} requests");
is($fresh->{bad}, 0, 'a new connection per request: none failed');
is(http_get($port, '/')->{headers}{'x-generation'}, $gen, 'the last good generation serves');
is($wm->stat('http.web.downstream_rq_5xx'), 0, 'no 5xx counted by wingman');
ok($wm->alive, 'wingman still running');
done_testing;
