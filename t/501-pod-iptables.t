# The same seed pods as 500-pod-ebpf.t, intercepted the istio-init way
# (iptables REDIRECT, nat table): wingman behaves the same. Needs root.
use strict;
use warnings;
use Test::More;
use Wingman;
use Pod;
use PodSeed;

my $why = Pod::unavailable();
plan skip_all => $why if $why;

PodSeed::run('iptables');
done_testing;
