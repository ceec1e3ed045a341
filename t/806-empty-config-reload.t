# Regression: an empty config file was valid, so ": > live.yaml; kill -HUP"
# closed every data listener. A config without listeners is now an error at
# start, in -t and on reload (which keeps the old config and counts
# server.config_reload_failed); so are a NUL in a string and nesting past 64
# levels. Listener and cluster validation is linear (it was quadratic: a
# SIGHUP with 96k listeners held the main thread for minutes).
use strict;
use warnings;
use Test::More;
use Wingman;

my $bin = wingman_bin();
my $dir = tmpdir();
my ($p, $adm) = map { free_port() } 1 .. 2;
my $good = <<"EOF";
workers: 1
admin: { address: 127.0.0.1:$adm }
listeners:
  - { name: l, address: 127.0.0.1:$p, routes: [{ match: { prefix: / }, direct_response: { status: 200, body: "gen1" } }] }
EOF
my $wm = start_wingman($good);
is(http_get($p, '/')->{body}, 'gen1', 'serving');

sub check {
	my ($name, $text) = @_;
	my $f = "$dir/$name.yaml";
	spew($f, $text);
	my $out = `$bin -t -c $f 2>&1`;
	return ($? >> 8, $out, $f);
}

for my $case (['empty', ''], ['only a comment', "# nothing\n"], ['null document', "~\n"],
	      ['no listeners', "admin: { address: 127.0.0.1:$adm }\n"], ['empty listener list', "listeners: []\n"]) {
	my ($name, $text) = @$case;
	(my $fname = $name) =~ s/\W/-/g;
	my ($rc, $out, $f) = check($fname, $text);
	isnt($rc, 0, "-t: $name is refused");
	like($out, qr{^\Q$f\E:\d+:\d+: .*no listeners}m, "-t: $name names file:line:col");
}

# Reload into an empty file: refused, the old config keeps serving.
spew($wm->conf, '');
$wm->hup;
wait_for(sub { $wm->stat('server.config_reload_failed') >= 1 }, scale(5));
is($wm->stat('server.config_reload_failed'), 1, 'server.config_reload_failed counts the empty reload');
like($wm->stderr, qr{\Q${\ $wm->conf}\E:1:1: no listeners}, 'the log says why, with file:line:col');
is(http_get($p, '/')->{body}, 'gen1', 'the old config still serves');
ok(port_open($p), 'the listener is still open');
(my $gen2 = $good) =~ s/gen1/gen2/;
spew($wm->conf, $gen2);
$wm->hup;
wait_for(sub { http_get($p, '/')->{body} eq 'gen2' }, scale(5));
is(http_get($p, '/')->{body}, 'gen2', 'a good config after it reloads');

# A NUL in a string would cut a name short.
my ($rc, $out, $f) = check('nul', "listeners:\n  - { name: \"l\\0x\", address: 127.0.0.1:$p, routes: [] }\n");
isnt($rc, 0, '-t: a NUL in a string is refused');
like($out, qr{^\Q$f\E:2:\d+: a NUL character in a string}m, '-t: NUL names file:line:col');

# Nesting past 64 levels.
($rc, $out, $f) = check('deep', "listeners: " . ('[' x 100) . (']' x 100) . "\n");
isnt($rc, 0, '-t: nesting 100 deep is refused');
like($out, qr{^\Q$f\E:1:\d+: collections nested deeper than 64 levels}m, '-t: nesting names file:line:col');

# Many listeners and clusters, with duplicates found by name and address.
my $n = 20000;
my $big = "listeners:\n";
for my $i (0 .. $n - 1) {
	my $addr = sprintf('10.%d.%d.%d:8080', int($i / 62500), int($i / 250) % 250, $i % 250 + 1);
	my $c = $i % 1000;
	$big .= "  - { name: l$i, address: '$addr', bind_to_port: false, direction: inbound, " .
		"routes: [{ match: { prefix: / }, route: { cluster: c$c } }] }\n";
}
$big .= "clusters:\n";
$big .= sprintf("  - { name: c%d, endpoints: ['127.0.0.1:%d'] }\n", $_, 1000 + $_) for 0 .. 999;
($rc, $out) = check('big', $big);
is($rc, 0, "-t: $n listeners and 1000 clusters load") or diag(substr($out, 0, 500));
($rc, $out, $f) = check('bigdup', $big . "  - { name: c7, endpoints: ['127.0.0.1:1'] }\n");
like($out, qr{^\Q$f\E:\d+:\d+: duplicate cluster name "c7" \(first at line \d+\)}m, 'a duplicate cluster among many');
$big =~ s/name: l19999, address: '[^']*'/name: l19999, address: '10.0.0.1:8080'/;
($rc, $out, $f) = check('bigdupaddr', $big);
like($out, qr{duplicate listener address "10\.0\.0\.1:8080" \(listener "l0" at line 2 uses it\)}, 'a duplicate address among many');

done_testing();
