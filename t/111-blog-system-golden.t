# conf/blog-system as wingman reads it: `wingman config show` of the shipped
# web.yaml and was.yaml, with the cluster's EndpointSlices and Pods
# (t/golden/blog-system-endpoints.yaml) dropped into a copy of istio/, is
# t/golden/blog-system-{web,was}.yaml. A change to the resources or to the
# derivation shows here as a diff to read; when it is what was meant:
#
#   WINGMAN_REGEN_GOLDEN=1 prove -It/lib t/111-blog-system-golden.t
#
# and commit the new golden files with the change.
use strict;
use warnings;
use Test::More;
use Wingman;

my $top = $ENV{WINGMAN_SRCDIR} // '.';
my $src = "$top/conf/blog-system";
my $golden = "$top/t/golden";
my $bin = wingman_bin();
my $dir = tmpdir() . '/blog-system';
test_certs();			# tmpdir()/certs: the files' certs/ paths, loaded by -t

mkdir $dir or die "mkdir $dir: $!";
mkdir "$dir/istio" or die;
symlink('../certs', "$dir/certs") or die;
spew("$dir/$_", slurp("$src/$_")) for qw(web.yaml was.yaml);
opendir(my $dh, "$src/istio") or die "$src/istio: $!";
my @res = sort grep { /\.yaml$/ } readdir $dh;
closedir $dh;
ok(@res, 'conf/blog-system/istio/ holds resources: ' . join(' ', @res));
spew("$dir/istio/$_", slurp("$src/istio/$_")) for @res;
ok(!-e "$dir/istio/endpoints.yaml", 'istio/ ships no endpoints of its own');
spew("$dir/istio/endpoints.yaml", slurp("$golden/blog-system-endpoints.yaml"));

for my $side (qw(web was)) {
	my $show = `cd $dir && $bin config show -c $side.yaml 2>$dir/$side.err`;
	is($?, 0, "$side.yaml: config show accepts it") or diag(slurp("$dir/$side.err"));
	# A kind wingman does not read may be skipped; anything else said is a
	# field or value of the shipped resources wingman does not apply.
	my @said = grep { !/: kind \w+ is not supported \(skipped\)$/ } split /\n/, slurp("$dir/$side.err");
	is(join("\n", @said), '', "$side.yaml: no warning about the shipped resources");
	my $file = "$golden/blog-system-$side.yaml";
	if ($ENV{WINGMAN_REGEN_GOLDEN}) {
		spew($file, $show);
		diag("wrote $file");
	}
	my $want = slurp($file);
	next if ok($show eq $want, "config show $side.yaml is t/golden/blog-system-$side.yaml");
	spew("$dir/$side.show", $show);
	diag(scalar `diff -u $file $dir/$side.show`);
	diag('if the change is meant: WINGMAN_REGEN_GOLDEN=1 prove -It/lib t/111-blog-system-golden.t, '
		. 'and commit t/golden/');
}
done_testing();
