# wrk drives keep-alive traffic through wingman while it is reloaded 50 times
# with SIGHUP: zero non-2xx responses and zero socket errors.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(sleep time);
use Wingman;

plan skip_all => 'wrk not installed (apt-get install wrk)' unless have_prog('wrk');

my $ng = start_nginx(q{ location / { return 200 "ok\n"; } });
my $np = $ng->port;
my $port = free_port();
my $admin = free_port();

sub conf {
	my ($i) = @_;
	return web_conf(<<"EOF", port => $port, admin => $admin, workers => 2);
    routes:
      - name: gen-$i
        match: { prefix: / }
        route: { cluster: web-$i }
        headers: { response: { set: { x-generation: "$i" } } }
clusters:
  - { name: web-$i, endpoints: [127.0.0.1:$np] }
  - { name: web, endpoints: [127.0.0.1:$np] }
EOF
}

my $wm = start_wingman(conf(0));
is(http_get($port, '/')->{headers}{'x-generation'}, '0', 'generation 0 serving');

my $out = tmpdir() . '/wrk-012.out';
my $wrk = Wingman::spawn(cmd => ['wrk', '-t2', '-c16', '-d', scale(60) . 's', '--timeout', '5s',
	"http://127.0.0.1:$port/"], stdout => $out, stderr => $out, name => 'wrk');
sleep 1;

my $reloaded = 0;
for my $i (1 .. 50) {
	$wm->write_conf(conf($i));
	$wm->hup;
	$reloaded++ if wait_for(sub { $wm->stat('server.config_reload') == $i }, scale(5), 0.01);
	sleep 0.05;
}
is($reloaded, 50, '50 reloads applied while wrk runs');
sleep 1;
Wingman::stop_process($wrk, 'INT', 10);
my $w = Wingman::wrk_parse(slurp($out));
diag("wrk: " . ($w->{requests} // '?') . " requests, " . ($w->{rps} // '?') . " rps");
ok(($w->{requests} // 0) > 1000, 'wrk completed requests') or diag($w->{raw});
is($w->{non2xx}, 0, 'zero non-2xx responses');
is($w->{connect} + $w->{read} + $w->{write} + $w->{timeout}, 0, 'zero socket errors')
	or diag($w->{raw});
is($wm->stat('server.config_reload_failed'), 0, 'no failed reload');
is(http_get($port, '/')->{headers}{'x-generation'}, '50', 'the last generation serves');
ok($wm->stat('http.web.downstream_rq_5xx') == 0, 'no 5xx counted by wingman');
ok($wm->alive, 'wingman still running');
done_testing;
