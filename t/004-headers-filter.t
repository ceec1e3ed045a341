# The headers filter on a route: request and response set/add/remove.
use strict;
use warnings;
use Test::More;
use Wingman;

# Echoes the request headers it got, and sends a few response headers the
# filter will change.
my $be = start_backend(handler => sub {
	my ($req) = @_;
	my $body = join '', map { lc($_->[0]) . ": $_->[1]\n" } @{ $req->{hlist} };
	return make_response('200 OK', $body, 'content-type', 'text/plain',
		'x-backend-secret', 'hunter2', 'x-resp-set', 'from-backend', 'x-resp-add', 'from-backend',
		'x-keep', 'kept');
});

my $bport = $be->port;
my $wm = start_web(<<"EOF");
    routes:
      - name: with-headers
        match: { prefix: /f }
        route: { cluster: echo }
        headers:
          request:
            set: { x-set: "s1", x-overwrite: "new" }
            add: { x-add: "a1" }
            remove: [x-remove-me, X-Remove-Too]
          response:
            set: { x-resp-set: "rs" }
            add: { x-resp-add: "ra", x-resp-new: "n1" }
            remove: [x-backend-secret]
      - name: plain
        match: { prefix: / }
        route: { cluster: echo }
clusters:
  - name: echo
    endpoints: [127.0.0.1:$bport]
EOF
my $port = $wm->port;

sub upstream_headers {
	my ($r) = @_;
	my %h;
	for (split /\n/, $r->{body}) {
		my ($k, $v) = /^([^:]+): (.*)$/ or next;
		push @{ $h{$k} }, $v;
	}
	return \%h;
}

my $r = http_get($port, '/f', headers => [
	'X-Overwrite', 'old', 'X-Add', 'a0', 'X-Remove-Me', 'gone', 'X-Remove-Too', 'gone2', 'X-Other', 'o',
]);
is($r->{status}, 200, '200 through the headers filter');
my $up = upstream_headers($r);
is_deeply($up->{'x-set'}, ['s1'], 'request set adds a missing header');
is_deeply($up->{'x-overwrite'}, ['new'], 'request set replaces an existing header');
is_deeply([sort @{ $up->{'x-add'} // [] }], ['a0', 'a1'], 'request add appends to the existing value');
ok(!exists $up->{'x-remove-me'}, 'request remove deletes the header');
ok(!exists $up->{'x-remove-too'}, 'request remove is case-insensitive');
is_deeply($up->{'x-other'}, ['o'], 'other headers untouched');

my $h = $r->{headers};
is($h->{'x-resp-set'}, 'rs', 'response set replaces');
like($h->{'x-resp-add'}, qr/^(from-backend, ra|ra, from-backend)$/, 'response add appends') or diag($r->{raw});
is(scalar(grep { lc $_->[0] eq 'x-resp-add' } @{ $r->{hlist} }) >= 1, 1, 'x-resp-add present');
is($h->{'x-resp-new'}, 'n1', 'response add of a new header');
ok(!exists $h->{'x-backend-secret'}, 'response remove deletes the header');
is($h->{'x-keep'}, 'kept', 'other response headers untouched');

$r = http_get($port, '/plain', headers => ['X-Remove-Me', 'stays']);
$up = upstream_headers($r);
is_deeply($up->{'x-remove-me'}, ['stays'], 'a route without the filter changes nothing upstream');
ok(!exists $up->{'x-set'}, 'no x-set without the filter');
is($r->{headers}{'x-backend-secret'}, 'hunter2', 'a route without the filter changes nothing downstream');

ok($wm->alive, 'wingman still running');
done_testing;
