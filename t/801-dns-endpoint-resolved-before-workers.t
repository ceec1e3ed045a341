# Regression: a DNS endpoint answered at once (/etc/hosts) during start-up swapped
# host sets before any worker existed and crashed in worker_barrier().
# Endpoints given as DNS names are resolved asynchronously (here from
# /etc/hosts: localhost) and shown in /clusters with their hostname; a name that
# does not resolve leaves the cluster without hosts (503 UH), not the process.
use strict;
use warnings;
use Test::More;
use Wingman;

my $be = start_backend(id => 'named', log => 1);
my $bport = $be->port;
my $wm = start_web(<<"EOF", workers => 2);
    routes:
      - { match: { prefix: /bad }, route: { cluster: unresolvable } }
      - { match: { prefix: / }, route: { cluster: named } }
clusters:
  - { name: named, endpoints: ["localhost:$bport"], connect_timeout: 1s }
  - { name: unresolvable, endpoints: ["no-such-host.invalid:80"], connect_timeout: 1s }
EOF
my $port = $wm->port;

my $r;
ok(wait_for(sub { ($r = http_get($port, '/x'))->{status} == 200 }, scale(5)), 'a request reaches localhost:PORT');
like($r->{body} // '', qr/./, 'the backend answered');
my $hosts = $wm->cluster_hosts('named');
my @addrs = keys %$hosts;
ok(scalar(@addrs) >= 1, 'the name resolved to at least one address: ' . join(', ', @addrs));
ok(!grep({ ($hosts->{$_}{hostname} // '') ne 'localhost' } @addrs), '/clusters shows hostname::localhost');
is(http_get($port, '/bad')->{status}, 503, 'an unresolvable name: 503');
like($wm->log_line(qr{/bad}, 1) . $wm->stderr, qr/no-such-host\.invalid/, 'the failed lookup is logged');
ok($wm->alive, 'wingman still running');
done_testing;
