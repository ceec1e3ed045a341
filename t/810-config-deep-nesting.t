# Regression: a config nesting flow collections 200 000 deep ("a: [[[[…", 400 KB)
# kept `wingman -t` (and a reload) busy for minutes in libyaml's scanner, whose
# time grows with the square of the depth; found by fuzz/fuzz-config. Nesting is
# now refused past 64 levels, at the line and column of the collection that
# goes too deep, before libyaml scans on.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use Wingman;

my $deep = 200_000;
my $t0 = time;
my ($rc, $out, $file) = wingman_check('a: ' . ('[' x $deep) . (']' x $deep) . "\n", 'deep-flow');
my $took = time - $t0;
is($rc, 1, 'a 200000-deep flow sequence is refused');
like($out, qr/^\Q$file\E:1:67: collections nested deeper than 64 levels$/m, 'the error names where the 65th level opens');
cmp_ok($took, '<', scale(5), sprintf('within seconds (%.2fs)', $took));

($rc, $out, $file) = wingman_check(join('', map { (' ' x $_) . "k$_:\n" } 0 .. 99) . (' ' x 100) . "v: 1\n",
				   'deep-block');
is($rc, 1, '100 nested block maps are refused');
like($out, qr/^\Q$file\E:65:65: collections nested deeper than 64 levels$/m, 'at the 65th map');

# The depth real configs use is far from the bound.
($rc, $out) = wingman_check(<<'EOF2', 'shallow');
listeners:
  - name: web
    address: 127.0.0.1:1
    routes:
      - name: deep-enough
        match: { prefix: /, headers: { x-a: { exact: b } }, query_params: { q: { present: true } } }
        direct_response: { status: 200, body: ok }
EOF2
is($rc, 0, 'a config of ordinary depth passes') or diag($out);
done_testing;
